/* conf_walk.c - the generic key-table walker: applies a table of keys (config_internal.h) to
 * a YAML mapping, converting and range-checking each value into the struct the table
 * describes, and frees what a table filled.
 *
 * Thread: any.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "secret.h"

static int check_range(struct td_conf_loader *ld, const struct td_ynode *node,
                       const struct td_conf_key *d, long long n)
{
    if (n < d->min) {
        ERR_AT(ld, node, "'%s' must be at least %lld", d->name, d->min);
        return -1;
    }
    if (n > d->max) {
        ERR_AT(ld, node, "'%s' must be at most %lld", d->name, d->max);
        return -1;
    }
    return 0;
}

static void apply_strlist(struct td_conf_loader *ld, const struct td_conf_key *d,
                          const struct td_ynode *val, void *base)
{
    char ***slot = FIELD(base, d->off, char **);
    size_t *count = FIELD(base, d->off2, size_t);

    if (val->kind != TD_YSEQ) {
        ERR_AT(ld, val, "'%s' must be a list of strings (got %s)", d->name, td_conf_kind_name(val));
        return;
    }
    if ((long long)val->n < d->min) {
        ERR_AT(ld, val, "'%s' must not be empty", d->name);
        return;
    }
    char **items = calloc(val->n + 1, sizeof(*items));
    if (!items) {
        ERR_AT(ld, val, "out of memory");
        return;
    }
    for (size_t i = 0; i < *count; i++) {
        td_secret_free((*slot)[i]);
    }
    free(*slot);
    *slot = items;
    *count = 0;
    for (size_t i = 0; i < val->n; i++) {
        struct td_conf_sval v;
        if (td_conf_scalar(ld, val->items[i], d->name, &v) == 0) {
            items[(*count)++] = v.s;
        }
    }
}

static void apply_intlist(struct td_conf_loader *ld, const struct td_conf_key *d,
                          const struct td_ynode *val, void *base)
{
    int **slot = FIELD(base, d->off, int *);
    size_t *count = FIELD(base, d->off2, size_t);
    char shown_buf[128];

    if (val->kind != TD_YSEQ) {
        ERR_AT(ld, val, "'%s' must be a list of integers (got %s)", d->name,
               td_conf_kind_name(val));
        return;
    }
    int *items = calloc(val->n + 1, sizeof(*items));
    if (!items) {
        ERR_AT(ld, val, "out of memory");
        return;
    }
    free(*slot);
    *slot = items;
    *count = 0;
    for (size_t i = 0; i < val->n; i++) {
        struct td_conf_sval v;
        long long n;
        if (td_conf_scalar(ld, val->items[i], d->name, &v) < 0) {
            continue;
        }
        if (td_conf_parse_int(&v, &n) < 0) {
            ERR_AT(ld, val->items[i], "'%s' items must be integers (got %s)", d->name,
                   td_conf_shown(&v, shown_buf, sizeof(shown_buf)));
        } else if (check_range(ld, val->items[i], d, n) == 0) {
            items[(*count)++] = (int)n;
        }
        td_secret_free(v.s);
    }
}

/* An HTTP header name (RFC 9110 token). */
static bool header_name_ok(const char *s)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s)) {
            return false;
        }
    }
    return true;
}

/* An HTTP header value: no control character but HTAB (a CR or LF would add headers). */
static bool header_value_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            return false;
        }
    }
    return true;
}

static void apply_strmap(struct td_conf_loader *ld, const struct td_conf_key *d,
                         const struct td_ynode *val, void *base)
{
    struct td_kv_list *list = FIELD(base, d->off, struct td_kv_list);

    if (val->kind != TD_YMAP) {
        ERR_AT(ld, val, "'%s' must be a mapping of strings (got %s)", d->name,
               td_conf_kind_name(val));
        return;
    }
    for (size_t i = 0; i + 1 < val->n; i += 2) {
        const struct td_ynode *key = val->items[i];
        struct td_conf_sval v;
        if (!td_conf_good_key(ld, val, i)) {
            continue;
        }
        if (d->attrs && !td_conf_check_attr(ld, key)) {
            continue;
        }
        if (d->hdrs && !header_name_ok(key->value)) {
            ERR_AT(ld, key, "'%s': invalid header name '%.64s'", d->name, key->value);
            continue;
        }
        if (td_conf_scalar(ld, val->items[i + 1], key->value, &v) < 0) {
            continue;
        }
        if (d->hdrs && !header_value_ok(v.s)) {
            /* Never the value: it may come from a secret. */
            ERR_AT(ld, val->items[i + 1],
                   "header '%s' must not hold control characters (CR, LF...): it would break "
                   "out of its request header",
                   key->value);
            td_secret_free(v.s);
            continue;
        }
        struct td_kv *items = realloc(list->items, (list->n + 1) * sizeof(*items));
        char *k = strdup(key->value);
        if (!items || !k) {
            if (items) {
                list->items = items;
            }
            free(k);
            td_secret_free(v.s);
            ERR_AT(ld, key, "out of memory");
            return;
        }
        list->items = items;
        items[list->n].key = k;
        items[list->n].value = v.s;
        list->n++;
    }
}

static void remember_secret_ref(struct td_conf_loader *ld, const struct td_pos *pos,
                                const struct td_conf_sval *v)
{
    if (v->secret && ld->nsecret_refs < TD_CONF_MAX_SECRET_REFS) {
        struct td_conf_secret_ref *ref = &ld->secret_refs[ld->nsecret_refs++];
        ref->pos = *pos;
        snprintf(ref->from, sizeof(ref->from), "%s", v->from);
    }
}

static void apply(struct td_conf_loader *ld, const struct td_conf_key *d,
                  const struct td_ynode *val, void *base)
{
    struct td_conf_sval v = {0};
    char buf[128];
    char names[256];
    long long n;
    int64_t i64;
    int index;

    if (d->outer) {
        base = ld->outer; /* a key every kind has, kept in the source or sink itself */
    }
    switch (d->type) {
    case TD_K_NESTED:
        td_conf_walk(ld, d->sub, val, FIELD(base, d->off, char));
        return;
    case TD_K_CUSTOM:
        d->fn(ld, val, base);
        return;
    case TD_K_STRLIST:
        apply_strlist(ld, d, val, base);
        return;
    case TD_K_INTLIST:
        apply_intlist(ld, d, val, base);
        return;
    case TD_K_STRMAP:
        apply_strmap(ld, d, val, base);
        return;
    default:
        break;
    }
    if (td_conf_scalar(ld, val, d->name, &v) < 0) {
        return;
    }
    switch (d->type) {
    case TD_K_STR:
        if (d->names && !td_conf_in_list(v.s, d->names, NULL)) {
            td_conf_join_names(d->names, names, sizeof(names));
            ERR_AT(ld, val, "'%s' must be one of %s (got %s)", d->name, names,
                   td_conf_shown(&v, buf, sizeof(buf)));
            break;
        }
        if (d->cred && !td_secret_header_safe(v.s)) {
            /* Never the value: it is a credential, and td_conf_shown() would print a literal one.
             */
            ERR_AT(ld, val,
                   "'%s' is a credential and must not be empty or hold blanks or control "
                   "characters (CR, LF...): it would break out of its request header",
                   d->name);
            break;
        }
        td_secret_free(*FIELD(base, d->off, char *));
        *FIELD(base, d->off, char *) = v.s;
        v.s = NULL;
        if (d->pos) {
            *FIELD(base, d->off2, struct td_pos) = td_conf_pos(ld, val);
            remember_secret_ref(ld, FIELD(base, d->off2, struct td_pos), &v);
        }
        break;
    case TD_K_INT:
    case TD_K_I64:
        if (td_conf_parse_int(&v, &n) < 0) {
            ERR_AT(ld, val, "'%s' must be an integer (got %s)", d->name,
                   td_conf_shown(&v, buf, sizeof(buf)));
        } else if (check_range(ld, val, d, n) == 0) {
            if (d->type == TD_K_INT) {
                *FIELD(base, d->off, int) = (int)n;
            } else {
                *FIELD(base, d->off, int64_t) = n;
            }
        }
        break;
    case TD_K_BOOL:
        if (v.plain &&
            (strcmp(v.s, "true") == 0 || strcmp(v.s, "True") == 0 || strcmp(v.s, "TRUE") == 0)) {
            *FIELD(base, d->off, bool) = true;
        } else if (v.plain && (strcmp(v.s, "false") == 0 || strcmp(v.s, "False") == 0 ||
                               strcmp(v.s, "FALSE") == 0)) {
            *FIELD(base, d->off, bool) = false;
        } else {
            ERR_AT(ld, val, "'%s' must be true or false (got %s)", d->name,
                   td_conf_shown(&v, buf, sizeof(buf)));
        }
        break;
    case TD_K_DUR:
    case TD_K_DUR_S:
        if (td_parse_duration(v.s, &i64) < 0) {
            ERR_AT(ld, val, "'%s' must be a duration such as 250ms, 10s, 5m, 1h (got %s)", d->name,
                   td_conf_shown(&v, buf, sizeof(buf)));
        } else if (i64 < d->min) {
            /* 0 would mean "forever" to the server (XREADGROUP BLOCK 0) or the client */
            ERR_AT(ld, val, "'%s' must be at least %lldms", d->name, d->min);
        } else if (d->type == TD_K_DUR) {
            *FIELD(base, d->off, int64_t) = i64;
        } else if (i64 / 1000 > INT_MAX) {
            ERR_AT(ld, val, "'%s' is too long", d->name);
        } else {
            *FIELD(base, d->off, int) = (int)(i64 / 1000);
        }
        break;
    case TD_K_SIZE:
        if (td_parse_size(v.s, &i64) < 0) {
            ERR_AT(ld, val, "'%s' must be a size such as 512, 64KiB, 1MiB (got %s)", d->name,
                   td_conf_shown(&v, buf, sizeof(buf)));
        } else {
            *FIELD(base, d->off, int64_t) = i64;
        }
        break;
    case TD_K_ENUM:
        if (!td_conf_in_list(v.s, d->names, &index)) {
            td_conf_join_names(d->names, names, sizeof(names));
            ERR_AT(ld, val, "'%s' must be one of %s (got %s)", d->name, names,
                   td_conf_shown(&v, buf, sizeof(buf)));
        } else {
            *FIELD(base, d->off, int) = index;
        }
        break;
    default:
        break;
    }
    td_secret_free(v.s);
}

/* Sets the defaults of T's own keys (not of its nested tables) in the struct at BASE. */
static void own_defaults(struct td_conf_loader *ld, const struct td_conf_table *t, void *base)
{
    char buf[256];

    for (size_t i = 0; i < t->nkeys; i++) {
        const struct td_conf_key *d = &t->keys[i];
        const char *text = d->dflt;
        if (d->dflt_fn) {
            d->dflt_fn(buf, sizeof(buf));
            text = buf;
        }
        if (!text) {
            continue;
        }
        /* Through apply, as if the file said it: one conversion for values and defaults. */
        struct td_ynode node = {
            .kind = TD_YSCALAR, .value = (char *)text, .len = strlen(text), .plain = true};
        apply(ld, d, &node, base);
    }
}

/* The defaults of the nested tables of T that are not alternatives and were not written
 * (PRESENT[i]: key i was), recursively. */
static void nested_defaults(struct td_conf_loader *ld, const struct td_conf_table *t,
                            const bool *present, void *base)
{
    for (size_t i = 0; i < t->nkeys; i++) {
        const struct td_conf_key *d = &t->keys[i];
        if (d->type == TD_K_NESTED && !d->group && !(present && present[i])) {
            td_conf_defaults(ld, d->sub, FIELD(base, d->off, char));
        }
    }
}

void td_conf_defaults(struct td_conf_loader *ld, const struct td_conf_table *t, void *base)
{
    own_defaults(ld, t, base);
    nested_defaults(ld, t, NULL, base);
}

/* The number of kinds T chooses from (0 for a table without kinds). */
static size_t nkinds(const struct td_conf_table *t)
{
    size_t n = 0;
    while (t->kind && t->kind(n)) {
        n++;
    }
    return n;
}

/* The kind chosen in a source or sink (BASE): its id and descriptor are stored, and its own
 * table fills a settings block of the size its plugin gives. */
static void walk_kind(struct td_conf_loader *ld, const struct td_conf_table *t,
                      const struct td_conf_kind *kind, const struct td_ynode *map, void *base)
{
    void *settings = calloc(1, kind->size ? kind->size : 1);
    if (!settings) {
        ERR_AT(ld, map, "out of memory");
        return;
    }
    *FIELD(base, t->kind_off, int) = kind->id;
    *FIELD(base, t->plugin_off, const struct td_conf_kind *) = kind;
    *FIELD(base, t->settings_off, void *) = settings;
    void *outer = ld->outer;
    ld->outer = base;
    td_conf_walk(ld, kind->table, map, settings);
    ld->outer = outer;
}

void td_conf_walk(struct td_conf_loader *ld, const struct td_conf_table *t,
                  const struct td_ynode *map, void *base)
{
    bool present[TD_CONF_MAX_TABLE_KEYS] = {false};
    const struct td_ynode *group_key = NULL;
    const char *names[2 * TD_CONF_MAX_TABLE_KEYS + 1];
    size_t kinds = nkinds(t);
    char hint[128];

    if (map->kind != TD_YMAP) {
        ERR_AT(ld, map, "%s must be a mapping (got %s)", t->what, td_conf_kind_name(map));
        return;
    }
    own_defaults(ld, t, base);
    /* The kinds first: they are what a reader of the message looks for. */
    for (size_t i = 0; i < kinds; i++) {
        names[i] = t->kind(i)->name;
    }
    for (size_t i = 0; i < t->nkeys; i++) {
        names[kinds + i] = t->keys[i].name;
    }
    names[kinds + t->nkeys] = NULL;
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const struct td_ynode *key = map->items[i];
        const struct td_conf_key *d = NULL;
        const struct td_conf_kind *kind = NULL;
        size_t index = 0;
        if (!td_conf_good_key(ld, map, i)) {
            continue;
        }
        for (size_t j = 0; j < kinds && !kind; j++) {
            if (strcmp(t->kind(j)->name, key->value) == 0) {
                kind = t->kind(j);
                index = j;
            }
        }
        for (size_t j = 0; j < t->nkeys && !kind; j++) {
            if (strcmp(t->keys[j].name, key->value) == 0) {
                d = &t->keys[j];
                index = j;
            }
        }
        if (!d && !kind) {
            td_conf_suggest(key->value, names, kinds + t->nkeys, hint, sizeof(hint));
            ERR_AT(ld, key, "unknown key '%s' in %s%s", key->value, t->what, hint);
            continue;
        }
        if (kind || d->group) {
            if (group_key) {
                ERR_AT(ld, key, "'%s' and '%s' cannot both be given in %s", group_key->value,
                       key->value, t->what);
                continue;
            }
            group_key = key;
        }
        if (kind) {
            walk_kind(ld, t, kind, map->items[i + 1], base);
            continue;
        }
        present[index] = true;
        apply(ld, d, map->items[i + 1], base);
    }
    for (size_t j = 0; j < t->nkeys; j++) {
        if (!t->keys[j].required || present[j]) {
            continue;
        }
        if (ld->owner && t == ld->owner_table) {
            ERR_AT(ld, map, "%s: missing required key '%s'", ld->owner, t->keys[j].name);
        } else if (ld->owner) {
            ERR_AT(ld, map, "%s: missing required key '%s' in %s", ld->owner, t->keys[j].name,
                   t->what);
        } else {
            ERR_AT(ld, map, "missing required key '%s' in %s", t->keys[j].name, t->what);
        }
    }
    nested_defaults(ld, t, present, base);
    if (t->group_required && !group_key) {
        char list[256];
        size_t used = 0;
        list[0] = '\0';
        for (size_t j = 0; j < kinds + t->nkeys && used < sizeof(list); j++) {
            if (j < kinds || t->keys[j - kinds].group) {
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "",
                                         names[j]);
            }
        }
        if (ld->owner && t == ld->owner_table) {
            ERR_AT(ld, map, "%s: expected exactly one of %s", ld->owner, list);
        } else {
            ERR_AT(ld, map, "%s%sexpected exactly one of %s in %s", ld->owner ? ld->owner : "",
                   ld->owner ? ": " : "", list, t->what);
        }
    }
    if (t->check) {
        t->check(ld, map, base);
    }
}

void td_conf_free_table(const struct td_conf_table *t, void *base)
{
    for (size_t i = 0; i < t->nkeys; i++) {
        const struct td_conf_key *d = &t->keys[i];
        if (d->outer) {
            continue; /* in the source or sink, and never an allocation */
        }
        switch (d->type) {
        case TD_K_STR:
            td_secret_free(*FIELD(base, d->off, char *)); /* any may be a secret */
            break;
        case TD_K_STRLIST: {
            char **items = *FIELD(base, d->off, char **);
            size_t n = *FIELD(base, d->off2, size_t);
            for (size_t j = 0; j < n; j++) {
                td_secret_free(items[j]);
            }
            free(items);
            break;
        }
        case TD_K_INTLIST:
            free(*FIELD(base, d->off, int *));
            break;
        case TD_K_STRMAP: {
            struct td_kv_list *list = FIELD(base, d->off, struct td_kv_list);
            for (size_t j = 0; j < list->n; j++) {
                free(list->items[j].key);
                td_secret_free(list->items[j].value); /* e.g. an API key header */
            }
            free(list->items);
            break;
        }
        case TD_K_NESTED:
            td_conf_free_table(d->sub, FIELD(base, d->off, char));
            break;
        default:
            break;
        }
    }
    if (t->kind) {
        const struct td_conf_kind *kind = *FIELD(base, t->plugin_off, const struct td_conf_kind *);
        void *settings = *FIELD(base, t->settings_off, void *);
        if (kind && settings) {
            td_conf_free_table(kind->table, settings);
        }
        free(settings);
    }
}

static bool str_same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Whether the keys of T hold the same values in the structs at A and B. */
static bool same_table(const struct td_conf_table *t, const void *a, const void *b)
{
    for (size_t i = 0; i < t->nkeys; i++) {
        const struct td_conf_key *d = &t->keys[i];
        const void *pa = (const char *)a + d->off, *pb = (const char *)b + d->off;
        bool same = true;
        if (d->outer) {
            continue; /* the owner's, compared with the owner */
        }
        switch (d->type) {
        case TD_K_STR:
            same = str_same(*(char *const *)pa, *(char *const *)pb);
            break;
        case TD_K_INT:
        case TD_K_DUR_S:
        case TD_K_ENUM:
            same = *(const int *)pa == *(const int *)pb;
            break;
        case TD_K_I64:
        case TD_K_DUR:
        case TD_K_SIZE:
            same = *(const int64_t *)pa == *(const int64_t *)pb;
            break;
        case TD_K_BOOL:
            same = *(const bool *)pa == *(const bool *)pb;
            break;
        case TD_K_STRLIST:
        case TD_K_INTLIST: {
            size_t n = *(const size_t *)(const void *)((const char *)a + d->off2);
            same = n == *(const size_t *)(const void *)((const char *)b + d->off2);
            for (size_t j = 0; same && j < n; j++) {
                same = d->type == TD_K_STRLIST
                           ? str_same((*(char **const *)pa)[j], (*(char **const *)pb)[j])
                           : (*(int *const *)pa)[j] == (*(int *const *)pb)[j];
            }
            break;
        }
        case TD_K_STRMAP: {
            const struct td_kv_list *la = pa, *lb = pb;
            same = la->n == lb->n;
            for (size_t j = 0; same && j < la->n; j++) {
                same = str_same(la->items[j].key, lb->items[j].key) &&
                       str_same(la->items[j].value, lb->items[j].value);
            }
            break;
        }
        case TD_K_NESTED:
            same = same_table(d->sub, pa, pb);
            break;
        case TD_K_CUSTOM:
            same = false; /* what it filled is its own: assume it changed */
            break;
        }
        if (!same) {
            return false;
        }
    }
    return true;
}

bool td_config_same_settings(const struct td_conf_kind *ka, const void *a,
                             const struct td_conf_kind *kb, const void *b)
{
    if (ka != kb) {
        return false;
    }
    if (!ka || !a || !b) {
        return a == b;
    }
    return same_table(ka->table, a, b) && (!ka->same || ka->same(a, b));
}
