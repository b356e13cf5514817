/* conf_filter.c - a trigger's filter: (Knative's legacy exact map) and filters: (exact, prefix,
 * suffix, all, any, not, cesql) into one struct td_filter tree (broker/match/filter.h): every
 * filter the trigger names must hold, so they all go under one ALL root.
 *
 * Thread: any.
 */
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "filter.h"
#include "secret.h"

static const char *const filter_names[] = {"exact", "prefix", "suffix", "all",
                                           "any",   "not",    "cesql",  NULL};
static const enum td_filter_kind filter_kinds[] = {
    TD_FILTER_EXACT, TD_FILTER_PREFIX, TD_FILTER_SUFFIX, TD_FILTER_ALL,
    TD_FILTER_ANY,   TD_FILTER_NOT,    TD_FILTER_CESQL};

/* An exact/prefix/suffix node from a mapping of attribute -> value. NULL after reporting.
 * The caller owns the result. */
static struct td_filter *build_attrs(struct td_conf_loader *ld, const struct td_ynode *map,
                                     enum td_filter_kind kind, const char *what)
{
    size_t before = ld->nerrors;
    struct td_filter *f = NULL;

    if (map->kind != TD_YMAP) {
        ERR_AT(ld, map, "'%s' must be a mapping of attribute to value (got %s)", what,
               td_conf_kind_name(map));
        goto fail;
    }
    if (map->n == 0) {
        ERR_AT(ld, map, "'%s' needs at least one attribute", what);
        goto fail;
    }
    f = td_filter_new(kind);
    if (!f) {
        ERR_AT(ld, map, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const struct td_ynode *key = map->items[i];
        struct td_conf_sval v;
        if (!td_conf_good_key(ld, map, i)) {
            continue;
        }
        if (!td_conf_check_attr(ld, key)) {
            continue;
        }
        if (td_conf_scalar(ld, map->items[i + 1], key->value, &v) < 0) {
            continue;
        }
        if (td_filter_add_attr(f, key->value, v.s) < 0) {
            ERR_AT(ld, key, "out of memory");
        }
        td_secret_free(v.s);
    }
    if (ld->nerrors != before) {
        goto fail;
    }
    return f;
fail:
    td_filter_free(f);
    return NULL;
}

/* One item of filters: a mapping with exactly one of filter_names. NULL after reporting. */
static struct td_filter *build_filter(struct td_conf_loader *ld, const struct td_ynode *node)
{
    size_t before = ld->nerrors;
    const struct td_ynode *key = NULL;
    const struct td_ynode *val = NULL;
    struct td_filter *f = NULL;
    char hint[128];
    char err[512];
    int index = -1;

    if (node->kind != TD_YMAP) {
        ERR_AT(ld, node, "a filter must be a mapping (got %s)", td_conf_kind_name(node));
        goto fail;
    }
    if (node->n == 0) {
        ERR_AT(ld, node,
               "empty filter: expected one of exact, prefix, suffix, all, any, not, "
               "cesql");
        goto fail;
    }
    for (size_t i = 0; i + 1 < node->n; i += 2) {
        int which;
        if (!td_conf_good_key(ld, node, i)) {
            continue;
        }
        if (!td_conf_in_list(node->items[i]->value, filter_names, &which)) {
            td_conf_suggest(node->items[i]->value, filter_names, 7, hint, sizeof(hint));
            ERR_AT(ld, node->items[i], "unknown key '%s' in filter%s", node->items[i]->value, hint);
            continue;
        }
        if (key) {
            ERR_AT(ld, node->items[i],
                   "'%s' and '%s' cannot both be given in one filter (combine them with all)",
                   key->value, node->items[i]->value);
            continue;
        }
        key = node->items[i];
        val = node->items[i + 1];
        index = which;
    }
    if (ld->nerrors != before || !key) {
        goto fail;
    }
    enum td_filter_kind kind = filter_kinds[index];
    if (kind == TD_FILTER_EXACT || kind == TD_FILTER_PREFIX || kind == TD_FILTER_SUFFIX) {
        return build_attrs(ld, val, kind, key->value);
    }
    if (kind == TD_FILTER_CESQL) {
        struct td_conf_sval v;
        if (td_conf_scalar(ld, val, "cesql", &v) < 0) {
            goto fail;
        }
        f = td_filter_new_cesql(v.s, err, sizeof(err));
        td_secret_free(v.s);
        if (!f) {
            ERR_AT(ld, val, "cesql: %s", err);
        }
        return f;
    }
    f = td_filter_new(kind);
    if (!f) {
        ERR_AT(ld, node, "out of memory");
        goto fail;
    }
    if (kind == TD_FILTER_NOT) {
        struct td_filter *child = build_filter(ld, val);
        if (!child || td_filter_add_child(f, child) < 0) {
            goto fail;
        }
        return f;
    }
    if (val->kind != TD_YSEQ) {
        ERR_AT(ld, val, "'%s' must be a list of filters (got %s)", key->value,
               td_conf_kind_name(val));
        goto fail;
    }
    if (val->n == 0) {
        ERR_AT(ld, val, "'%s' needs at least one filter", key->value);
        goto fail;
    }
    for (size_t i = 0; i < val->n; i++) {
        struct td_filter *child = build_filter(ld, val->items[i]);
        if (child && td_filter_add_child(f, child) < 0) {
            ERR_AT(ld, val->items[i], "out of memory");
        }
    }
    if (ld->nerrors != before) {
        goto fail;
    }
    return f;
fail:
    td_filter_free(f);
    return NULL;
}

/* Adds F (owned) under the trigger's ALL root, creating the root on first use. */
static int add_trigger_filter(struct td_conf_loader *ld, struct td_conf_trigger *trg,
                              struct td_filter *f, const struct td_ynode *at)
{
    if (!trg->filter) {
        trg->filter = td_filter_new(TD_FILTER_ALL);
    }
    if (!trg->filter || td_filter_add_child(trg->filter, f) < 0) {
        if (!trg->filter) {
            td_filter_free(f);
        }
        ERR_AT(ld, at, "out of memory");
        return -1;
    }
    return 0;
}

int td_conf_filter_key(struct td_conf_loader *ld, const struct td_ynode *val, void *base)
{
    struct td_filter *f = build_attrs(ld, val, TD_FILTER_EXACT, "filter");
    if (!f) {
        return -1;
    }
    /* Knative's legacy filter: an empty value means "present, with any value". A prefix ""
     * is exactly that, so such pairs move to a prefix node beside the exact one. */
    struct td_filter *any = NULL;
    for (size_t i = 0; i < f->attrs.n; i++) {
        if (f->attrs.items[i].value[0] != '\0') {
            continue;
        }
        if ((!any && !(any = td_filter_new(TD_FILTER_PREFIX))) ||
            td_filter_add_attr(any, f->attrs.items[i].key, "") < 0) {
            td_filter_free(any);
            td_filter_free(f);
            ERR_AT(ld, val, "out of memory");
            return -1;
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < f->attrs.n; i++) {
        if (f->attrs.items[i].value[0] == '\0') {
            free(f->attrs.items[i].key);
            free(f->attrs.items[i].value);
        } else {
            f->attrs.items[kept++] = f->attrs.items[i];
        }
    }
    f->attrs.n = kept;
    if (any && add_trigger_filter(ld, base, any, val) < 0) {
        td_filter_free(f);
        return -1;
    }
    return add_trigger_filter(ld, base, f, val);
}

int td_conf_filters_key(struct td_conf_loader *ld, const struct td_ynode *val, void *base)
{
    if (val->kind != TD_YSEQ) {
        ERR_AT(ld, val, "'filters' must be a list of filters (got %s)", td_conf_kind_name(val));
        return -1;
    }
    for (size_t i = 0; i < val->n; i++) {
        struct td_filter *f = build_filter(ld, val->items[i]);
        if (f) {
            add_trigger_filter(ld, base, f, val->items[i]);
        }
    }
    return 0;
}
