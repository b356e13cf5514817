/* config_internal.h - what the pieces of the trigger-file loader share; not for other modules.
 *
 * The loader is cut by job: conf_units.c (durations, sizes), conf_interpolate.c (${VAR},
 * ${file:}, ${credential:}), conf_scalar.c (messages, positions, one scalar), conf_walk.c (the
 * generic key-table walker), conf_keys_*.c (the tables: which keys exist, their types, limits
 * and defaults), conf_filter.c (filter:/filters: into broker/match structures) and config.c
 * (files, directories, named maps, references between names, the public API).
 *
 * Every mapping the user can write is described by a table of keys (struct td_conf_key); one
 * walker applies a table to a mapping, so unknown keys, duplicate keys, wrong types and missing
 * required keys are reported the same way everywhere, as "file:line:column: message". The same
 * tables give every key its default and free what they filled.
 *
 * Thread: any (a loader touches only its own state and the environment).
 */
#ifndef TD_CONFIG_INTERNAL_H
#define TD_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "yaml_tree.h"

#define TD_CONF_MAX_TABLE_KEYS  32
#define TD_CONF_MAX_SECRET_REFS 256

/* ---- the loader state ---- */

struct td_conf_secret_ref {
    struct td_pos pos;
    char from[64];
};

struct td_conf_table;

struct td_conf_loader {
    struct td_config *cfg;
    struct td_errors *errs;
    size_t nerrors;                          /* counted even if a message could not be stored */
    const char *file;                        /* the file being read; points into cfg->files */
    const char *owner;                       /* "trigger 'a'", for missing-key messages, or NULL */
    const struct td_conf_table *owner_table; /* the owner's own table */
    bool have_daemon;
    struct td_pos daemon_pos;
    struct td_conf_secret_ref secret_refs[TD_CONF_MAX_SECRET_REFS]; /* interpolated references */
    size_t nsecret_refs;
};

/* ---- messages, positions, scalars (conf_scalar.c) ---- */

/* A scalar value after interpolation. */
struct td_conf_sval {
    char *s; /* malloc'd; owned by the sval */
    bool secret;
    bool plain;
    char from[64];
};

struct td_pos td_conf_pos(const struct td_conf_loader *ld, const struct td_ynode *node);
/* Counts and stores one error at POS. */
void td_conf_errorf(struct td_conf_loader *ld, const struct td_pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ERR_AT(ld, node, ...)                                                                      \
    do {                                                                                           \
        struct td_pos at_ = td_conf_pos((ld), (node));                                             \
        td_conf_errorf((ld), &at_, __VA_ARGS__);                                                   \
    } while (0)

/* How a value may appear in a message: 'text', or "value from ${X}" for a secret. */
const char *td_conf_shown(const struct td_conf_sval *v, char *buf, size_t len);
/* "a mapping", "a list", "null", "a scalar". */
const char *td_conf_kind_name(const struct td_ynode *node);
/* Reads a scalar (not null) and interpolates it. 0, or -1 after reporting. The caller frees
 * v->s. KEY names the key in messages. */
int td_conf_scalar(struct td_conf_loader *ld, const struct td_ynode *node, const char *key,
                   struct td_conf_sval *v);
/* A plain (unquoted or interpolated) decimal integer. 0, or -1. */
int td_conf_parse_int(const struct td_conf_sval *v, long long *out);
bool td_conf_in_list(const char *s, const char *const *names, int *index);
void td_conf_join_names(const char *const *names, char *buf, size_t len);
/* A source, sink or trigger name: letters, digits, '_', '.' and '-'. */
bool td_conf_valid_name(const char *s);
/* A CloudEvents attribute name: lowercase letters and digits. */
bool td_conf_valid_attr(const char *s);
/* " (did you mean 'x'?)" for the closest of NAMES, or "". */
void td_conf_suggest(const char *key, const char *const *names, size_t n, char *buf, size_t len);
/* The value node of KEY in MAP, or NULL. */
const struct td_ynode *td_conf_map_get(const struct td_ynode *map, const char *key);
/* Checks that the key at pair index I of MAP is a string key that is not a duplicate
 * (reporting it if not). */
bool td_conf_good_key(struct td_conf_loader *ld, const struct td_ynode *map, size_t i);

/* ---- key tables (conf_walk.c) ---- */

enum td_conf_ktype {
    TD_K_STR,     /* char *; with names: one of them */
    TD_K_INT,     /* int, between min and max */
    TD_K_I64,     /* int64_t, between min and max */
    TD_K_BOOL,    /* bool */
    TD_K_DUR,     /* int64_t milliseconds */
    TD_K_DUR_S,   /* int seconds (a duration rounded down) */
    TD_K_SIZE,    /* int64_t bytes */
    TD_K_ENUM,    /* int: the index of the value in names */
    TD_K_STRLIST, /* char ** with a size_t count at off2; min = least items */
    TD_K_STRMAP,  /* struct td_kv_list */
    TD_K_INTLIST, /* int * with a size_t count at off2, items between min and max */
    TD_K_NESTED,  /* a mapping walked with sub, its base at off */
    TD_K_CUSTOM   /* fn does it all */
};

struct td_conf_key {
    const char *name;
    enum td_conf_ktype type;
    size_t off;
    size_t off2;                     /* list count; or a struct td_pos when pos is set */
    const struct td_conf_table *sub; /* TD_K_NESTED */
    const char *const *names;        /* TD_K_ENUM, or the allowed values of a TD_K_STR */
    int (*fn)(struct td_conf_loader *ld, const struct td_ynode *val, void *base); /* CUSTOM */
    long long min; /* TD_K_INT, TD_K_I64, TD_K_INTLIST; TD_K_DUR: least milliseconds */
    long long max;
    bool required;
    bool pos;   /* TD_K_STR: store the value's position at off2 (a reference to resolve later) */
    bool attrs; /* TD_K_STRMAP: keys are CloudEvents attribute names */
    bool cred;  /* TD_K_STR: a credential written into a request header (td_secret_header_safe) */
    bool hdrs;  /* TD_K_STRMAP: request headers (names are tokens, values hold no CR, LF...) */
    int group;  /* keys of group 1 are mutually exclusive */
    /* The default, written as the trigger file would write it ("10s", "1MiB", "true",
     * "earliest") and converted by the same code as a value from the file. It is the only
     * default of the key: plugins do not fall back to their own, and the schema's "default"
     * must say the same (test_config_schema checks both ways). NULL: zero / NULL / false. */
    const char *dflt;
    /* A default that depends on the machine (the host name): writes it into BUF. The schema
     * gives no "default" for such a key, only a description. */
    void (*dflt_fn)(char *buf, size_t len);
};

/* One kind a source or sink can be: the key that selects it and the table of its settings. */
struct td_conf_kind {
    const char *name;                  /* "redis" */
    const struct td_conf_table *table; /* its keys (base: the owner's struct, for now) */
};

struct td_conf_table {
    const char *what; /* "delivery", "redis source", ... */
    const struct td_conf_key *keys;
    size_t nkeys;
    bool group_required; /* one key of group 1 (or one kind) must be given */
    /* A table that chooses a kind (source, sink): the I-th kind (NULL past the last), which
     * acts as a key of group 1 before the table's own keys; the index chosen is stored as an
     * int at kind_off. The kinds come from this lookup, never from the walker. */
    const struct td_conf_kind *(*kind)(size_t i);
    size_t kind_off;
    int (*check)(struct td_conf_loader *ld, const struct td_ynode *map, void *base);
};

#define FIELD(base, off, type) ((type *)(void *)((char *)(base) + (off)))
#define NKEYS(a)               (sizeof(a) / sizeof((a)[0]))
#define TABLE(what_, keys_)    .what = (what_), .keys = (keys_), .nkeys = NKEYS(keys_)

/* Applies table T to the mapping MAP, filling the struct at BASE. Reports every problem. */
void td_conf_walk(struct td_conf_loader *ld, const struct td_conf_table *t,
                  const struct td_ynode *map, void *base);
/* Sets the default of every key of T in the struct at BASE, and of the keys of its nested
 * tables that are not alternatives (group 1); td_conf_walk does this itself for the tables
 * it walks. For a block that may be absent from the file (daemon:). */
void td_conf_defaults(struct td_conf_loader *ld, const struct td_conf_table *t, void *base);
/* Frees every string, list and map that table T filled in the struct at BASE. */
void td_conf_free_table(const struct td_conf_table *t, void *base);

/* ---- the tables (conf_keys_*.c) ---- */

/* Shorthands for table entries. */
/* clang-format off */
#define STR(n, o)         {.name = (n), .type = TD_K_STR, .off = (o)}
#define REQ_STR(n, o)     {.name = (n), .type = TD_K_STR, .off = (o), .required = true}
#define ONE_STR(n, o)     {.name = (n), .type = TD_K_STR, .off = (o), .group = 1}
#define CRED_STR(n, o)    {.name = (n), .type = TD_K_STR, .off = (o), .cred = true}
#define REF_STR(n, o, p)  {.name = (n), .type = TD_K_STR, .off = (o), .off2 = (p), .pos = true}
#define INT(n, o, lo, hi) {.name = (n), .type = TD_K_INT, .off = (o), .min = (lo), .max = (hi)}
#define DUR(n, o)         {.name = (n), .type = TD_K_DUR, .off = (o)}
#define ENUM(n, o, v)     {.name = (n), .type = TD_K_ENUM, .off = (o), .names = (v)}
#define NESTED(n, o, t)   {.name = (n), .type = TD_K_NESTED, .off = (o), .sub = (t)}
#define CUSTOM(n, f)      {.name = (n), .type = TD_K_CUSTOM, .fn = (f)}
/* The same with a default (struct td_conf_key.dflt) */
#define STR_D(n, o, d)          {.name = (n), .type = TD_K_STR, .off = (o), .dflt = (d)}
#define INT_D(n, o, lo, hi, d)  {.name = (n), .type = TD_K_INT, .off = (o), .min = (lo), .max = (hi), .dflt = (d)}
#define DUR_D(n, o, d)          {.name = (n), .type = TD_K_DUR, .off = (o), .dflt = (d)}
#define ENUM_D(n, o, v, d)      {.name = (n), .type = TD_K_ENUM, .off = (o), .names = (v), .dflt = (d)}
#define BOOL_D(n, o, d)         {.name = (n), .type = TD_K_BOOL, .off = (o), .dflt = (d)}
/* clang-format on */

extern const struct td_conf_table td_conf_daemon_table;  /* base: struct td_conf_daemon */
extern const struct td_conf_table td_conf_source_table;  /* base: struct td_conf_source */
extern const struct td_conf_table td_conf_sink_table;    /* base: struct td_conf_sink */
extern const struct td_conf_table td_conf_trigger_table; /* base: struct td_conf_trigger */

/* The I-th source or sink kind (its index is its enum td_source_kind / td_sink_kind), or
 * NULL past the last. Issue 13 step 2 takes these from the plugins' descriptors. */
const struct td_conf_kind *td_conf_source_kind(size_t i);
const struct td_conf_kind *td_conf_sink_kind(size_t i);

/* ---- interpolation (conf_interpolate.c) ---- */

/* A growing string whose old buffers are wiped: it may hold a secret. */
struct td_conf_buf {
    char *p;
    size_t n;
    size_t cap;
};
int td_conf_buf_add(struct td_conf_buf *b, const char *s, size_t len);
/* td_interpolate plus FROM: the first ${...} substituted, for messages that must not show the
 * value ("value from ${DB_URL}"). */
char *td_conf_interpolate(const char *s, bool *secret, char *from, size_t fromlen, char *err,
                          size_t errlen);

/* ---- filters (conf_filter.c): the trigger keys filter: and filters: ---- */

int td_conf_filter_key(struct td_conf_loader *ld, const struct td_ynode *val, void *base);
int td_conf_filters_key(struct td_conf_loader *ld, const struct td_ynode *val, void *base);

#endif
