/* registry.c - every sink kind this build has: the only list of them. A new kind is its own
 * file with a `const struct td_sink_desc td_sink_NAME` (its settings struct and key table in
 * the same file, or a small NAME_sink.h beside it when other code reads the settings) and one
 * X(NAME) line here. The loader takes every kind's keys from here (td_conf_sink_kind). */
#include <stddef.h>

#include "sink.h"

#define TD_SINK_PLUGINS(X)                                                                         \
    X(http)                                                                                        \
    X(openfaas)                                                                                    \
    X(lambda)                                                                                      \
    X(redis)                                                                                       \
    X(kafka)                                                                                       \
    X(rabbitmq)                                                                                    \
    X(file)

#define DECLARE(name) extern const struct td_sink_desc td_sink_##name;
#define ENTRY(name)   &td_sink_##name,

TD_SINK_PLUGINS(DECLARE)

static const struct td_sink_desc *const registry[] = {TD_SINK_PLUGINS(ENTRY)};

/* The loader's view of the registry (conf_table.h): each kind's name and settings table. */
const struct td_conf_kind *td_conf_sink_kind(size_t i)
{
    return i < sizeof(registry) / sizeof(registry[0]) ? &registry[i]->conf : NULL;
}

const struct td_sink_desc *td_sink_desc_of(const struct td_conf_sink *conf)
{
    for (size_t i = 0; conf && i < sizeof(registry) / sizeof(registry[0]); i++) {
        if (&registry[i]->conf == conf->plugin) {
            return registry[i];
        }
    }
    return NULL;
}

const struct td_sink_desc *td_sink_desc_for(enum td_sink_kind kind)
{
    for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++) {
        if (registry[i]->kind == kind) {
            return registry[i];
        }
    }
    return NULL;
}

const char *td_sink_kind_name(enum td_sink_kind kind)
{
    const struct td_sink_desc *d = td_sink_desc_for(kind);
    return d ? d->name : NULL;
}
