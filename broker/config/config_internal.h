/* config_internal.h - what the pieces of the trigger-file loader share; not for other modules.
 *
 * The loader is cut by job: conf_units.c (durations, sizes), conf_interpolate.c (${VAR},
 * ${file:}, ${credential:}), conf_scalar.c (messages, positions, one scalar), conf_walk.c (the
 * generic key-table walker), conf_keys_*.c (the loader's own tables: which keys exist, their
 * types, limits and defaults; a source or sink kind's table is in its plugin, conf_table.h),
 * conf_filter.c (filter:/filters: into broker/match structures) and config.c (files,
 * directories, named maps, references between names, the public API).
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

#include "conf_table.h"
#include "config.h"
#include "yaml_tree.h"

#define TD_CONF_MAX_SECRET_REFS 256

/* ---- the loader state ---- */

struct td_conf_secret_ref {
    struct td_pos pos;
    char from[64];
};

struct td_conf_loader {
    struct td_config *cfg;
    void *outer; /* the source or sink whose kind's settings are being walked (td_conf_key.outer) */
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
/* Whether KEY's text is a CloudEvents attribute name (lowercase letters and digits, at most
 * TD_CE_NAME_MAX); if not, reports why at KEY and returns false. */
bool td_conf_check_attr(struct td_conf_loader *ld, const struct td_ynode *key);
/* " (did you mean 'x'?)" for the closest of NAMES, or "". */
void td_conf_suggest(const char *key, const char *const *names, size_t n, char *buf, size_t len);
/* Checks that the key at pair index I of MAP is a string key that is not a duplicate
 * (reporting it if not). */
bool td_conf_good_key(struct td_conf_loader *ld, const struct td_ynode *map, size_t i);

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

extern const struct td_conf_table td_conf_daemon_table;  /* base: struct td_conf_daemon */
extern const struct td_conf_table td_conf_source_table;  /* base: struct td_conf_source */
extern const struct td_conf_table td_conf_sink_table;    /* base: struct td_conf_sink */
extern const struct td_conf_table td_conf_trigger_table; /* base: struct td_conf_trigger */

/* rate: {events, per, burst}, base: struct td_conf_rate; and the delivery key concurrency (an
 * integer or {max, adaptive}, base: struct td_conf_delivery). conf_keys_flow.c. */
extern const struct td_conf_table td_conf_rate_table;
int td_conf_concurrency_key(struct td_conf_loader *ld, const struct td_ynode *val, void *base);

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

/* ---- delivery.batch (conf_batch.c): the sink must be able to take a batch ---- */

void td_conf_check_batch(struct td_conf_loader *ld);

#endif
