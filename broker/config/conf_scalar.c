/* conf_scalar.c - the loader's messages and scalars: "file:line:column: message" lists,
 * positions, one interpolated scalar, names and keys, and the "did you mean" hint.
 *
 * Thread: any.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "cloudevent.h"

void td_errors_add(struct td_errors *errs, const struct td_pos *pos, const char *fmt, ...)
{
    char msg[1024];
    char *line = NULL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    size_t size = strlen(msg) + 64 + (pos && pos->file ? strlen(pos->file) : 0);
    line = malloc(size);
    if (!line) {
        goto fail;
    }
    if (pos && pos->file && pos->line > 0) {
        snprintf(line, size, "%s:%d:%d: %s", pos->file, pos->line, pos->col, msg);
    } else if (pos && pos->file) {
        snprintf(line, size, "%s: %s", pos->file, msg);
    } else {
        snprintf(line, size, "%s", msg);
    }
    char **msgs = realloc(errs->msgs, (errs->n + 1) * sizeof(*msgs));
    if (!msgs) {
        goto fail;
    }
    errs->msgs = msgs;
    msgs[errs->n++] = line;
    return;
fail:
    free(line); /* out of memory: the message is lost; the loader still counts it */
}

void td_errors_clear(struct td_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++) {
        free(errs->msgs[i]);
    }
    free(errs->msgs);
    errs->msgs = NULL;
    errs->n = 0;
}

struct td_pos td_conf_pos(const struct td_conf_loader *ld, const struct td_ynode *node)
{
    struct td_pos pos = {ld->file, node ? node->line : 0, node ? node->col : 0};
    return pos;
}

void td_conf_errorf(struct td_conf_loader *ld, const struct td_pos *pos, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ld->nerrors++;
    td_errors_add(ld->errs, pos, "%s", msg);
}

/* How a value may appear in a message: 'text', or "value from ${X}" for a secret. */
const char *td_conf_shown(const struct td_conf_sval *v, char *buf, size_t len)
{
    if (v->secret) {
        snprintf(buf, len, "value from %s", v->from);
    } else if (strlen(v->s) > 60) {
        snprintf(buf, len, "'%.57s...'", v->s);
    } else {
        snprintf(buf, len, "'%s'", v->s);
    }
    return buf;
}

const char *td_conf_kind_name(const struct td_ynode *node)
{
    if (node->kind == TD_YMAP) {
        return "a mapping";
    }
    if (node->kind == TD_YSEQ) {
        return "a list";
    }
    return td_ynode_is_null(node) ? "null" : "a scalar";
}

/* Reads a scalar (not null) and interpolates it. 0, or -1 after reporting. The caller frees
 * v->s. KEY names the key in messages. */
int td_conf_scalar(struct td_conf_loader *ld, const struct td_ynode *node, const char *key,
                   struct td_conf_sval *v)
{
    char err[512];

    memset(v, 0, sizeof(*v));
    if (node->kind != TD_YSCALAR || td_ynode_is_null(node)) {
        ERR_AT(ld, node, "'%s' must be a string (got %s)", key, td_conf_kind_name(node));
        return -1;
    }
    if (strlen(node->value) != node->len) {
        ERR_AT(ld, node, "'%s' contains a NUL byte", key);
        return -1;
    }
    v->s = td_conf_interpolate(node->value, &v->secret, v->from, sizeof(v->from), err, sizeof(err));
    if (!v->s) {
        ERR_AT(ld, node, "%s", err);
        return -1;
    }
    v->plain = node->plain || v->secret;
    return 0;
}

bool td_conf_in_list(const char *s, const char *const *names, int *index)
{
    for (int i = 0; names[i]; i++) {
        if (strcmp(s, names[i]) == 0) {
            if (index) {
                *index = i;
            }
            return true;
        }
    }
    return false;
}

void td_conf_join_names(const char *const *names, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; names[i] && used < len; i++) {
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
    }
}

bool td_conf_valid_name(const char *s)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '.' || *s == '-')) {
            return false;
        }
    }
    return true;
}

/* The event model's own test and words (td_ce_valid_name, td_ce_name_errf), so the loader takes
 * exactly the names triggerd accepts from a producer and says why as the decoders do: a longer
 * name in event: {set} used to load, and then every event of the trigger carried an attribute
 * that triggerd itself refuses. */
bool td_conf_check_attr(struct td_conf_loader *ld, const struct td_ynode *key)
{
    if (td_ce_valid_name(key->value)) {
        return true;
    }
    char why[160];
    td_ce_name_errf(key->value, why, sizeof(why));
    ERR_AT(ld, key, "%s", why);
    return false;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    size_t row[64];

    if (la >= 63 || lb >= 63) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* " (did you mean 'x'?)" for the closest of NAMES, or "". */
void td_conf_suggest(const char *key, const char *const *names, size_t n, char *buf, size_t len)
{
    size_t best = SIZE_MAX;
    const char *pick = NULL;

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(key, names[i]);
        size_t stem = strlen(names[i]) - 1;
        if (stem >= 3 && strncmp(key, names[i], stem) == 0) {
            d = 1; /* "retries" for "retry" */
        }
        if (d < best) {
            best = d;
            pick = names[i];
        }
    }
    if (pick && (best <= 1 || (best == 2 && strlen(key) > 4))) {
        snprintf(buf, len, " (did you mean '%s'?)", pick);
    }
}

/* The value node of KEY in MAP, or NULL. */
const struct td_ynode *td_conf_map_get(const struct td_ynode *map, const char *key)
{
    if (!map || map->kind != TD_YMAP) {
        return NULL;
    }
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const struct td_ynode *k = map->items[i];
        if (k->kind == TD_YSCALAR && strcmp(k->value, key) == 0) {
            return map->items[i + 1];
        }
    }
    return NULL;
}

/* Reports a duplicate of the key at pair index I (a scalar) in MAP. True when it is one. */
static bool is_duplicate_key(struct td_conf_loader *ld, const struct td_ynode *map, size_t i)
{
    const struct td_ynode *key = map->items[i];
    for (size_t j = 0; j < i; j += 2) {
        const struct td_ynode *prev = map->items[j];
        if (prev->kind == TD_YSCALAR && strcmp(prev->value, key->value) == 0) {
            ERR_AT(ld, key, "duplicate key '%s' (first at line %d)", key->value, prev->line);
            return true;
        }
    }
    return false;
}

/* Checks that the key at pair index I of MAP is a string key that is not a duplicate. */
bool td_conf_good_key(struct td_conf_loader *ld, const struct td_ynode *map, size_t i)
{
    const struct td_ynode *key = map->items[i];
    if (key->kind != TD_YSCALAR || strlen(key->value) != key->len) {
        ERR_AT(ld, key, "keys must be plain strings");
        return false;
    }
    return !is_duplicate_key(ld, map, i);
}

int td_conf_parse_int(const struct td_conf_sval *v, long long *out)
{
    const char *p = v->s;
    char *end;

    if (!v->plain || !*p || isspace((unsigned char)*p)) {
        return -1;
    }
    errno = 0;
    long long n = strtoll(p, &end, 10);
    if (errno || *end) {
        return -1;
    }
    *out = n;
    return 0;
}
