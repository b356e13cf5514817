/* filter.h - trigger filters: the legacy exact map and the Subscriptions API dialects
 * (exact, prefix, suffix, all, any, not) as Knative implements them, plus cesql.
 *
 * A filter is a tree compiled once when the trigger file is loaded (config.c builds it) and
 * evaluated on the loop thread for every event. An attribute that is absent never matches
 * exact/prefix/suffix. Matching is case-sensitive. A filter that is NULL matches everything.
 *
 * Ownership: td_filter_new returns a node the caller owns; adding a child or a pair transfers
 * or copies as documented; td_filter_free frees the whole tree.
 */
#ifndef TD_FILTER_H
#define TD_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "kv.h"

struct td_event;

enum td_filter_kind {
    TD_FILTER_EXACT,
    TD_FILTER_PREFIX,
    TD_FILTER_SUFFIX,
    TD_FILTER_ALL,
    TD_FILTER_ANY,
    TD_FILTER_NOT,
    TD_FILTER_CESQL
};

struct td_filter {
    enum td_filter_kind kind;
    struct td_kv_list attrs;     /* exact/prefix/suffix: attribute -> value, all must hold */
    struct td_filter **children; /* all/any/not (not: exactly one) */
    size_t nchildren;
    char *expression; /* cesql source text */
    void *compiled;   /* cesql compiled form, owned */
};

struct td_filter *td_filter_new(enum td_filter_kind kind);
void td_filter_free(struct td_filter *f);
/* Copies key and value into an exact/prefix/suffix node. 0 or -1. */
int td_filter_add_attr(struct td_filter *f, const char *key, const char *value);
/* Takes ownership of child. 0 or -1 (then the child is freed). */
int td_filter_add_child(struct td_filter *f, struct td_filter *child);
/* Compiles a cesql expression (cesql.h) once; NULL with "column N: message" in err when it does
 * not parse or names an unknown function. At match time any CESQL error, or a value that is
 * not a boolean, is a non-match (logged at debug level). */
struct td_filter *td_filter_new_cesql(const char *expression, char *err, size_t errlen);

/* True when the event passes. Thread: any (the filter is read-only). */
bool td_filter_match(const struct td_filter *f, const struct td_event *ev);

#endif
