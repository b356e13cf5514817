/* filter.c - building and evaluating trigger filters (see filter.h). CloudEvents SQL is
 * compiled once here (cesql.h) and kept in the node; an expression that fails to evaluate for
 * an event (any CESQL error, or a value that is not a boolean) is a non-match, logged at
 * debug level, as the specification asks of a filter. */
#include "filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cesql.h"
#include "cloudevent.h"
#include "log.h"

struct td_filter *td_filter_new(enum td_filter_kind kind)
{
    struct td_filter *f = calloc(1, sizeof(*f));
    if (f) {
        f->kind = kind;
    }
    return f;
}

void td_filter_free(struct td_filter *f)
{
    if (!f) {
        return;
    }
    for (size_t i = 0; i < f->attrs.n; i++) {
        free(f->attrs.items[i].key);
        free(f->attrs.items[i].value);
    }
    free(f->attrs.items);
    for (size_t i = 0; i < f->nchildren; i++) {
        td_filter_free(f->children[i]);
    }
    free(f->children);
    free(f->expression);
    td_cesql_free(f->compiled);
    free(f);
}

int td_filter_add_attr(struct td_filter *f, const char *key, const char *value)
{
    struct td_kv *items = realloc(f->attrs.items, (f->attrs.n + 1) * sizeof(*items));
    if (!items) {
        return -1;
    }
    f->attrs.items = items;
    char *k = strdup(key);
    char *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    items[f->attrs.n].key = k;
    items[f->attrs.n].value = v;
    f->attrs.n++;
    return 0;
}

int td_filter_add_child(struct td_filter *f, struct td_filter *child)
{
    struct td_filter **children = realloc(f->children, (f->nchildren + 1) * sizeof(*children));
    if (!children) {
        td_filter_free(child);
        return -1;
    }
    f->children = children;
    children[f->nchildren++] = child;
    return 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

static bool match_attrs(const struct td_filter *f, const struct td_event *ev)
{
    for (size_t i = 0; i < f->attrs.n; i++) {
        const char *have = td_event_get(ev, f->attrs.items[i].key);
        const char *want = f->attrs.items[i].value;
        if (!have) {
            return false;
        }
        bool ok = false;
        switch (f->kind) {
        case TD_FILTER_EXACT:
            ok = strcmp(have, want) == 0;
            break;
        case TD_FILTER_PREFIX:
            ok = strncmp(have, want, strlen(want)) == 0;
            break;
        case TD_FILTER_SUFFIX:
            ok = has_suffix(have, want);
            break;
        default:
            break;
        }
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool match_cesql(const struct td_filter *f, const struct td_event *ev)
{
    struct td_cesql_error err;
    if (!f->compiled) {
        return false;
    }
    bool ok = td_cesql_match(f->compiled, ev, &err);
    if (!ok && err.kind != TD_CESQL_OK && td_log_enabled(TD_LOG_DEBUG)) {
        td_log_debug(NULL, NULL, td_event_get(ev, "id"), "cesql filter \"%s\": %s error: %s",
                     f->expression, td_cesql_errkind_name(err.kind), err.message);
    }
    return ok;
}

bool td_filter_match(const struct td_filter *f, const struct td_event *ev)
{
    if (!f) {
        return true;
    }
    switch (f->kind) {
    case TD_FILTER_EXACT:
    case TD_FILTER_PREFIX:
    case TD_FILTER_SUFFIX:
        return match_attrs(f, ev);
    case TD_FILTER_ALL:
        for (size_t i = 0; i < f->nchildren; i++) {
            if (!td_filter_match(f->children[i], ev)) {
                return false;
            }
        }
        return true;
    case TD_FILTER_ANY:
        for (size_t i = 0; i < f->nchildren; i++) {
            if (td_filter_match(f->children[i], ev)) {
                return true;
            }
        }
        return false;
    case TD_FILTER_NOT:
        return f->nchildren == 1 && !td_filter_match(f->children[0], ev);
    case TD_FILTER_CESQL:
        return match_cesql(f, ev);
    }
    return false;
}

struct td_filter *td_filter_new_cesql(const char *expression, char *err, size_t errlen)
{
    struct td_cesql_error cerr;
    struct td_filter *f = td_filter_new(TD_FILTER_CESQL);
    if (!f || !(f->expression = strdup(expression ? expression : ""))) {
        snprintf(err, errlen, "column 1: out of memory");
        goto fail;
    }
    f->compiled = td_cesql_compile(expression, &cerr);
    if (!f->compiled) {
        snprintf(err, errlen, "column %d: %s", cerr.column > 0 ? cerr.column : 1, cerr.message);
        goto fail;
    }
    return f;
fail:
    td_filter_free(f);
    return NULL;
}
