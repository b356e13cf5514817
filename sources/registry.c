/* registry.c - every source kind this build has: the only list of them. A new kind is its own
 * file with a `const struct td_source_ops td_source_NAME_ops` and one X(NAME) line here. */
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
