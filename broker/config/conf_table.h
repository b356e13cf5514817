/* conf_table.h - how a part of the trigger file is described: a table of keys (name, type,
 * limits, default) that one walker (conf_walk.c) applies to a YAML mapping. The loader's own
 * tables are in broker/config/conf_keys_*.c; every source and sink plugin describes its
 * settings with one in its own file and hands it to the loader through its descriptor
 * (struct td_conf_kind, listed by sinks/registry.c and sources/registry.c).
 *
 * This is the part of the loader a plugin sees: the table vocabulary, and the few calls a
 * table's check function may make to report an error "file:line:column: message".
 * Thread: any; tables are read-only.
 */
#ifndef TD_CONF_TABLE_H
#define TD_CONF_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TD_CONF_MAX_TABLE_KEYS 32

/* config.h (struct td_pos, td_conf_sink) is needed where ERR_AT and TD_SINK_TIMEOUT are used,
 * not here: config.h's loader includes this header. */
struct td_pos;
struct td_conf_loader;
struct td_ynode;
struct td_conf_table;

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
    /* In a kind's table: off is in the owning struct td_conf_source / td_conf_sink, not in the
     * kind's settings block (a key every kind has and the core reads, like a sink's timeout).
     * Such a key must hold no allocation (nothing frees it in the owner). */
    bool outer;
    /* The default, written as the trigger file would write it ("10s", "1MiB", "true",
     * "earliest") and converted by the same code as a value from the file. It is the only
     * default of the key: plugins do not fall back to their own, and the schema's "default"
     * must say the same (test_config_schema checks both ways). NULL: zero / NULL / false. */
    const char *dflt;
    /* A default that depends on the machine (the host name): writes it into BUF. The schema
     * gives no "default" for such a key, only a description. */
    void (*dflt_fn)(char *buf, size_t len);
};

/* One kind a source or sink can be, as its plugin describes it (the descriptor in the plugin's
 * file carries one: struct td_sink_desc.conf, struct td_source_ops.conf). The loader allocates a
 * zeroed block of SIZE bytes for the kind's settings, fills it through TABLE (whose offsets are
 * into that block, except keys marked outer), stores it in td_conf_source.settings /
 * td_conf_sink.settings and frees it through TABLE again. */
struct td_conf_kind {
    const char *name;                  /* "redis": the key that selects the kind */
    int id;                            /* its enum td_source_kind / td_sink_kind value */
    const struct td_conf_table *table; /* its keys; base: the settings block */
    size_t size;                       /* of the settings block (its plugin's struct) */
    /* Compares what the table does not describe (a field a check function sets), for
     * td_config_same_settings; NULL when the table says it all. */
    bool (*same)(const void *a, const void *b);
};

struct td_conf_table {
    const char *what; /* "delivery", "redis source", ... */
    const struct td_conf_key *keys;
    size_t nkeys;
    bool group_required; /* one key of group 1 (or one kind) must be given */
    /* A table that chooses a kind (source, sink): the I-th kind (NULL past the last), which
     * acts as a key of group 1 before the table's own keys. The kind chosen is stored as an int
     * (its id) at kind_off and as a const struct td_conf_kind * at plugin_off, its settings
     * block (a void *) at settings_off. The kinds come from this lookup (the plugin
     * registries), never from the walker. */
    const struct td_conf_kind *(*kind)(size_t i);
    size_t kind_off, plugin_off, settings_off;
    int (*check)(struct td_conf_loader *ld, const struct td_ynode *map, void *base);
};

#define FIELD(base, off, type) ((type *)(void *)((char *)(base) + (off)))
#define NKEYS(a)               (sizeof(a) / sizeof((a)[0]))
#define TABLE(what_, keys_)    .what = (what_), .keys = (keys_), .nkeys = NKEYS(keys_)

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

/* The keys every sink kind has: timeout, into td_conf_sink.timeout_ms (outer). */
#define TD_SINK_TIMEOUT                                                                            \
    {                                                                                              \
        .name = "timeout", .type = TD_K_DUR, .off = offsetof(struct td_conf_sink, timeout_ms),     \
        .outer = true, .dflt = "10s"                                                               \
    }
/* The queue sinks wait for the broker's acknowledgement: 0 cannot mean "no limit" there. */
#define TD_QUEUE_SINK_TIMEOUT                                                                      \
    {                                                                                              \
        .name = "timeout", .type = TD_K_DUR, .off = offsetof(struct td_conf_sink, timeout_ms),     \
        .outer = true, .min = 1, .dflt = "10s"                                                     \
    }

/* What a table's check function may call. */
struct td_pos td_conf_pos(const struct td_conf_loader *ld, const struct td_ynode *node);
/* Counts and stores one error at POS. */
void td_conf_errorf(struct td_conf_loader *ld, const struct td_pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ERR_AT(ld, node, ...)                                                                      \
    do {                                                                                           \
        struct td_pos at_ = td_conf_pos((ld), (node));                                             \
        td_conf_errorf((ld), &at_, __VA_ARGS__);                                                   \
    } while (0)

/* The value node of KEY in MAP, or NULL. */
const struct td_ynode *td_conf_map_get(const struct td_ynode *map, const char *key);

/* The I-th source or sink kind in registry order, or NULL past the last: implemented by the
 * plugin registries (sources/registry.c, sinks/registry.c), read by the loader. */
const struct td_conf_kind *td_conf_source_kind(size_t i);
const struct td_conf_kind *td_conf_sink_kind(size_t i);

#endif
