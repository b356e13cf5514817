/* registry.c - every source kind this build has: the only list of them. A new kind is its own
 * file with a `const struct td_source_ops td_source_NAME_ops` (its settings struct and key table
 * in the same file, or a small NAME_source.h beside it when other code reads the settings) and
 * one X(NAME) line here. The loader takes every kind's keys from here (td_conf_source_kind). */
#include <stddef.h>

#include "source.h"

#define TD_SOURCE_PLUGINS(X)                                                                       \
    X(redis)                                                                                       \
    X(kafka)                                                                                       \
    X(rabbitmq)                                                                                    \
    X(http)

#define DECLARE(name) extern const struct td_source_ops td_source_##name##_ops;
#define ENTRY(name)   &td_source_##name##_ops,

TD_SOURCE_PLUGINS(DECLARE)

static const struct td_source_ops *const registry[] = {TD_SOURCE_PLUGINS(ENTRY)};

const struct td_source_ops *td_source_kind_at(size_t i)
{
    return i < sizeof(registry) / sizeof(registry[0]) ? registry[i] : NULL;
}

/* The loader's view of the registry (conf_table.h): each kind's name and settings table. */
const struct td_conf_kind *td_conf_source_kind(size_t i)
{
    return i < sizeof(registry) / sizeof(registry[0]) ? &registry[i]->conf : NULL;
}

const struct td_source_ops *td_source_ops_of(const struct td_conf_source *conf)
{
    for (size_t i = 0; conf && i < sizeof(registry) / sizeof(registry[0]); i++) {
        if (&registry[i]->conf == conf->plugin) {
            return registry[i];
        }
    }
    return NULL;
}

const struct td_source_ops *td_source_ops_for(enum td_source_kind kind)
{
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++) {
        if (registry[i]->kind == kind) {
            return registry[i];
        }
    }
    return NULL;
}

const char *td_source_kind_name(enum td_source_kind kind)
{
    const struct td_source_ops *ops = td_source_ops_for(kind);
    return ops ? ops->name : NULL;
}
