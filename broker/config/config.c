/* config.c - the trigger-file loader: libyaml (via yaml_tree.c) to the typed structs of
 * config.h.
 *
 * Every mapping the user can write is described by a table of keys (name, type, where the
 * value goes); one generic walker applies a table to a mapping, so unknown keys, duplicate
 * keys, wrong types and missing required keys are reported the same way everywhere, as
 * "file:line:column: message". The same tables free what they filled. Scalars are
 * interpolated (${VAR}, ${VAR:-default}, ${file:/path}, ${credential:NAME} = the file NAME in
 * systemd's $CREDENTIALS_DIRECTORY) before they are converted; a value
 * that came from interpolation is a secret and is never printed in a message.
 *
 * Thread: any (td_config_load touches only its own state and the environment).
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloudevent.h"
#include "filter.h"
#include "secret.h"
#include "yaml_tree.h"

#define MAX_FILE_SIZE   (16 * 1024 * 1024)
#define MAX_SECRET_SIZE (1024 * 1024)
#define MAX_TABLE_KEYS  32
#define MAX_SECRET_REFS 256

/* ------------------------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------------------------- */

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

/* ------------------------------------------------------------------------------------------
 * Durations, sizes
 * ---------------------------------------------------------------------------------------- */

/* Parses "DIGITS[.DIGITS]" at *s into a value scaled by 1000 (milli-units); advances *s. */
static int parse_milli(const char **s, int64_t *milli)
{
    const char *p = *s;
    int64_t whole = 0;
    int64_t frac = 0;
    int64_t scale = 1000;

    if (!isdigit((unsigned char)*p)) {
        return -1;
    }
    while (isdigit((unsigned char)*p)) {
        if (whole > (INT64_MAX / 10000 - 9) / 10) {
            return -1;
        }
        whole = whole * 10 + (*p++ - '0');
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) {
            return -1;
        }
        while (isdigit((unsigned char)*p)) {
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
            p++;
        }
    }
    *milli = whole * 1000 + frac;
    *s = p;
    return 0;
}

/* One "<number><unit>" term; *s moves past it. units: the table to match, longest first. */
static int duration_term(const char **s, const char *const *units, const int64_t *unit_ms,
                         size_t nunits, int64_t *ms)
{
    int64_t milli;
    if (parse_milli(s, &milli) < 0) {
        return -1;
    }
    for (size_t i = 0; i < nunits; i++) {
        size_t n = strlen(units[i]);
        if (strncmp(*s, units[i], n) == 0) {
            if (milli > INT64_MAX / unit_ms[i]) {
                return -1;
            }
            *ms = milli * unit_ms[i] / 1000; /* fractions of a millisecond are dropped */
            *s += n;
            return 0;
        }
    }
    return -1;
}

/* "250ms", "10s", "5m", "1h", "1.5s", a bare number of seconds, compound Go-style terms in
 * decreasing order ("1h30m", "1m30.5s"), and ISO 8601 as Knative writes delivery durations
 * ("PT0.2S", "PT1M30S"). */
int td_parse_duration(const char *s, int64_t *ms)
{
    static const char *const go_units[] = {"ms", "h", "m", "s"};
    static const int64_t go_ms[] = {1, 3600000, 60000, 1000};
    static const char *const iso_units[] = {"H", "M", "S"};
    static const int64_t iso_ms[] = {3600000, 60000, 1000};
    int64_t total = 0, term, last_unit = INT64_MAX;
    bool iso = false;

    if (!s || !*s) {
        return -1;
    }
    if (s[0] == 'P' && s[1] == 'T') {
        iso = true;
        s += 2;
        if (!*s) {
            return -1;
        }
    } else {
        /* a bare number is seconds */
        const char *p = s;
        int64_t milli;
        if (parse_milli(&p, &milli) == 0 && *p == '\0') {
            *ms = milli;
            return 0;
        }
    }
    while (*s) {
        const char *before = s;
        if (duration_term(&s, iso ? iso_units : go_units, iso ? iso_ms : go_ms, iso ? 3 : 4,
                          &term) < 0) {
            return -1;
        }
        /* the unit just matched, by the characters consumed after the number */
        int64_t unit = 0;
        const char *u = s - 1;
        if (!iso && u > before && *u == 's' && u[-1] == 'm') {
            unit = 1;
        } else {
            unit = (*u == 'h' || *u == 'H') ? 3600000 : (*u == 'm' || *u == 'M') ? 60000 : 1000;
        }
        if (unit >= last_unit || total > INT64_MAX - term) {
            return -1; /* units in decreasing order, each once */
        }
        last_unit = unit;
        total += term;
    }
    *ms = total;
    return 0;
}

int td_parse_size(const char *s, int64_t *bytes)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {{"", 1},          {"B", 1},           {"KB", 1000},
                 {"MB", 1000000},  {"GB", 1000000000}, {"KiB", 1024},
                 {"MiB", 1048576}, {"GiB", 1073741824}};
    int64_t n = 0;

    if (!s || !isdigit((unsigned char)*s)) {
        return -1;
    }
    while (isdigit((unsigned char)*s)) {
        if (n > (INT64_MAX - 9) / 10) {
            return -1;
        }
        n = n * 10 + (*s++ - '0');
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(s, units[i].unit) == 0) {
            if (n > INT64_MAX / units[i].mult) {
                return -1;
            }
            *bytes = n * units[i].mult;
            return 0;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------------------------------
 * Interpolation
 * ---------------------------------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t n;
    size_t cap;
};

static int sbuf_add(struct sbuf *b, const char *s, size_t len)
{
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + len + 1) {
            cap *= 2;
        }
        /* Not realloc: the old buffer may hold a secret, wiped before it is freed. */
        char *p = malloc(cap);
        if (!p) {
            return -1;
        }
        if (b->p) {
            memcpy(p, b->p, b->n + 1);
            td_secret_free_n(b->p, b->cap);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
    return 0;
}

/* Reads a secret file into b, one trailing newline removed. 0, or -1 with a message in err. */
static int read_secret_file(const char *path, struct sbuf *b, char *err, size_t errlen)
{
    char chunk[4096];
    size_t start = b->n;
    size_t got;
    FILE *fp = fopen(path, "rb");

    if (!fp) {
        snprintf(err, errlen, "cannot read ${file:%s}: %s", path, strerror(errno));
        goto fail;
    }
    while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (memchr(chunk, '\0', got)) {
            snprintf(err, errlen, "${file:%s} contains a NUL byte", path);
            goto fail;
        }
        if (b->n - start + got > MAX_SECRET_SIZE) {
            snprintf(err, errlen, "${file:%s} is larger than 1 MiB", path);
            goto fail;
        }
        if (sbuf_add(b, chunk, got) < 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (ferror(fp)) {
        snprintf(err, errlen, "cannot read ${file:%s}: %s", path, strerror(errno));
        goto fail;
    }
    fclose(fp);
    td_secret_wipe(chunk, sizeof(chunk));
    if (b->n > start && b->p[b->n - 1] == '\n') {
        b->p[--b->n] = '\0';
    }
    return 0;
fail:
    if (fp) {
        fclose(fp);
    }
    td_secret_wipe(chunk, sizeof(chunk));
    return -1;
}

static bool valid_var_name(const char *s, size_t len)
{
    if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_')) {
        return false;
    }
    for (size_t i = 1; i < len; i++) {
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) {
            return false;
        }
    }
    return true;
}

/* td_interpolate plus FROM: the first ${...} substituted, for messages that must not show the
 * value ("value from ${DB_URL}"). */
static char *interpolate(const char *s, bool *secret, char *from, size_t fromlen, char *err,
                         size_t errlen)
{
    struct sbuf b = {0};
    char name[256];

    *secret = false;
    if (from && fromlen) {
        from[0] = '\0';
    }
    if (sbuf_add(&b, "", 0) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (const char *p = s; *p;) {
        if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
            if (sbuf_add(&b, "${", 2) < 0) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            p += 3;
            continue;
        }
        if (!(p[0] == '$' && p[1] == '{')) {
            if (sbuf_add(&b, p, 1) < 0) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            p++;
            continue;
        }
        const char *open = p + 2;
        const char *close = strchr(open, '}');
        if (!close) {
            snprintf(err, errlen, "unterminated '${' (write '$${' for a literal '${')");
            goto fail;
        }
        size_t inner = (size_t)(close - open);
        if (from && fromlen && !from[0]) {
            snprintf(from, fromlen, "%.*s", (int)(inner + 3 < fromlen ? inner + 3 : fromlen - 1),
                     p);
        }
        if (inner >= 11 && strncmp(open, "credential:", 11) == 0) {
            /* systemd's LoadCredential=NAME:PATH puts the secret in $CREDENTIALS_DIRECTORY/NAME,
             * readable by the service alone, even under DynamicUser=. */
            const char *dir = getenv("CREDENTIALS_DIRECTORY");
            int nlen = (int)(inner - 11);
            const char *cname = open + 11;
            if (nlen == 0 || memchr(cname, '/', (size_t)nlen) || (nlen == 1 && cname[0] == '.') ||
                (nlen == 2 && strncmp(cname, "..", 2) == 0)) {
                snprintf(err, errlen, "${credential:NAME} needs a credential name (no '/')");
                goto fail;
            }
            if (!dir || !*dir) {
                snprintf(err, errlen,
                         "${credential:%.*s}: CREDENTIALS_DIRECTORY is not set (systemd sets it "
                         "for LoadCredential=)",
                         nlen, cname);
                goto fail;
            }
            if (snprintf(name, sizeof(name), "%s/%.*s", dir, nlen, cname) >= (int)sizeof(name)) {
                snprintf(err, errlen, "${credential:%.*s}: the path is too long", nlen, cname);
                goto fail;
            }
            if (read_secret_file(name, &b, err, errlen) < 0) {
                goto fail;
            }
        } else if (inner >= 5 && strncmp(open, "file:", 5) == 0) {
            if (inner == 5 || inner - 5 >= sizeof(name)) {
                snprintf(err, errlen, "${file:PATH} needs a path");
                goto fail;
            }
            snprintf(name, sizeof(name), "%.*s", (int)(inner - 5), open + 5);
            if (read_secret_file(name, &b, err, errlen) < 0) {
                goto fail;
            }
        } else {
            const char *dflt = NULL;
            size_t namelen = inner;
            for (size_t i = 0; i + 1 < inner; i++) {
                if (open[i] == ':' && open[i + 1] == '-') {
                    dflt = open + i + 2;
                    namelen = i;
                    break;
                }
            }
            if (!valid_var_name(open, namelen) || namelen >= sizeof(name)) {
                snprintf(err, errlen, "invalid variable name in '${%.*s}'", (int)namelen, open);
                goto fail;
            }
            snprintf(name, sizeof(name), "%.*s", (int)namelen, open);
            const char *val = getenv(name);
            if (dflt && (!val || !*val)) {
                if (sbuf_add(&b, dflt, (size_t)(close - dflt)) < 0) {
                    snprintf(err, errlen, "out of memory");
                    goto fail;
                }
            } else if (!val) {
                snprintf(err, errlen, "environment variable '%s' is not set", name);
                goto fail;
            } else if (sbuf_add(&b, val, strlen(val)) < 0) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
        }
        *secret = true;
        p = close + 1;
    }
    return b.p;
fail:
    td_secret_free_n(b.p, b.cap);
    return NULL;
}

char *td_interpolate(const char *s, bool *secret, char *err, size_t errlen)
{
    return interpolate(s, secret, NULL, 0, err, errlen);
}

/* ------------------------------------------------------------------------------------------
 * The loader state and scalar helpers
 * ---------------------------------------------------------------------------------------- */

struct secret_ref {
    struct td_pos pos;
    char from[64];
};

struct loader {
    struct td_config *cfg;
    struct td_errors *errs;
    size_t nerrors;                   /* counted even if a message could not be stored */
    const char *file;                 /* the file being read; points into cfg->files */
    const char *owner;                /* "trigger 'a'", for missing-key messages, or NULL */
    const struct ktable *owner_table; /* the owner's own table */
    bool have_daemon;
    struct td_pos daemon_pos;
    struct secret_ref secret_refs[MAX_SECRET_REFS]; /* reference values that were interpolated */
    size_t nsecret_refs;
};

static struct td_pos node_pos(const struct loader *ld, const struct td_ynode *node)
{
    struct td_pos pos = {ld->file, node ? node->line : 0, node ? node->col : 0};
    return pos;
}

static void errorf(struct loader *ld, const struct td_pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errorf(struct loader *ld, const struct td_pos *pos, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ld->nerrors++;
    td_errors_add(ld->errs, pos, "%s", msg);
}

#define ERR_AT(ld, node, ...)                                                                      \
    do {                                                                                           \
        struct td_pos at_ = node_pos((ld), (node));                                                \
        errorf((ld), &at_, __VA_ARGS__);                                                           \
    } while (0)

/* A scalar value after interpolation. */
struct sval {
    char *s; /* malloc'd; owned by the sval */
    bool secret;
    bool plain;
    char from[64];
};

/* How a value may appear in a message: 'text', or "value from ${X}" for a secret. */
static const char *shown(const struct sval *v, char *buf, size_t len)
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

static const char *node_kind_name(const struct td_ynode *node)
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
static int get_scalar(struct loader *ld, const struct td_ynode *node, const char *key,
                      struct sval *v)
{
    char err[512];

    memset(v, 0, sizeof(*v));
    if (node->kind != TD_YSCALAR || td_ynode_is_null(node)) {
        ERR_AT(ld, node, "'%s' must be a string (got %s)", key, node_kind_name(node));
        return -1;
    }
    if (strlen(node->value) != node->len) {
        ERR_AT(ld, node, "'%s' contains a NUL byte", key);
        return -1;
    }
    v->s = interpolate(node->value, &v->secret, v->from, sizeof(v->from), err, sizeof(err));
    if (!v->s) {
        ERR_AT(ld, node, "%s", err);
        return -1;
    }
    v->plain = node->plain || v->secret;
    return 0;
}

static bool in_list(const char *s, const char *const *names, int *index)
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

static void join_names(const char *const *names, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; names[i] && used < len; i++) {
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
    }
}

static bool valid_name(const char *s)
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

static bool valid_attr_name(const char *s)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9'))) {
            return false;
        }
    }
    return true;
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
static void suggest(const char *key, const char *const *names, size_t n, char *buf, size_t len)
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
static const struct td_ynode *map_get(const struct td_ynode *map, const char *key)
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
static bool is_duplicate_key(struct loader *ld, const struct td_ynode *map, size_t i)
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
static bool good_key(struct loader *ld, const struct td_ynode *map, size_t i)
{
    const struct td_ynode *key = map->items[i];
    if (key->kind != TD_YSCALAR || strlen(key->value) != key->len) {
        ERR_AT(ld, key, "keys must be plain strings");
        return false;
    }
    return !is_duplicate_key(ld, map, i);
}

/* ------------------------------------------------------------------------------------------
 * Key tables
 * ---------------------------------------------------------------------------------------- */

enum ktype {
    K_STR,     /* char *; with names: one of them */
    K_INT,     /* int, between min and max */
    K_I64,     /* int64_t, between min and max */
    K_BOOL,    /* bool */
    K_DUR,     /* int64_t milliseconds */
    K_DUR_S,   /* int seconds (a duration rounded down) */
    K_SIZE,    /* int64_t bytes */
    K_ENUM,    /* int: the index of the value in names */
    K_STRLIST, /* char ** with a size_t count at off2; min = least items */
    K_STRMAP,  /* struct td_kv_list */
    K_INTLIST, /* int * with a size_t count at off2, items between min and max */
    K_NESTED,  /* a mapping walked with sub, its base at off */
    K_CUSTOM   /* fn does it all */
};

struct loader;
struct ktable;

struct kdef {
    const char *name;
    enum ktype type;
    size_t off;
    size_t off2;              /* list count; or a struct td_pos when pos is set */
    const struct ktable *sub; /* K_NESTED */
    const char *const *names; /* K_ENUM, or the allowed values of a K_STR */
    int (*fn)(struct loader *ld, const struct td_ynode *val, void *base); /* K_CUSTOM */
    long long min;
    long long max;
    bool required;
    bool pos;   /* K_STR: store the value's position at off2 (a reference to resolve later) */
    bool attrs; /* K_STRMAP: keys are CloudEvents attribute names */
    bool cred;  /* K_STR: a credential written into a request header (td_secret_header_safe) */
    bool hdrs;  /* K_STRMAP: request headers (names are tokens, values hold no CR, LF...) */
    int group;  /* keys of group 1 are mutually exclusive */
    int kind;   /* when set, kind - 1 is stored at the table's kind_off */
};

struct ktable {
    const char *what; /* "delivery", "redis source", ... */
    const struct kdef *keys;
    size_t nkeys;
    bool group_required; /* one key of group 1 must be given */
    bool has_kind;
    size_t kind_off;
    int (*check)(struct loader *ld, const struct td_ynode *map, void *base);
};

#define FIELD(base, off, type) ((type *)(void *)((char *)(base) + (off)))
#define NKEYS(a)               (sizeof(a) / sizeof((a)[0]))
#define TABLE(what_, keys_)    .what = (what_), .keys = (keys_), .nkeys = NKEYS(keys_)

static void walk(struct loader *ld, const struct ktable *t, const struct td_ynode *map, void *base);

static int parse_int(const struct sval *v, long long *out)
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

static int check_range(struct loader *ld, const struct td_ynode *node, const struct kdef *d,
                       long long n)
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

static void apply_strlist(struct loader *ld, const struct kdef *d, const struct td_ynode *val,
                          void *base)
{
    char ***slot = FIELD(base, d->off, char **);
    size_t *count = FIELD(base, d->off2, size_t);

    if (val->kind != TD_YSEQ) {
        ERR_AT(ld, val, "'%s' must be a list of strings (got %s)", d->name, node_kind_name(val));
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
        struct sval v;
        if (get_scalar(ld, val->items[i], d->name, &v) == 0) {
            items[(*count)++] = v.s;
        }
    }
}

static void apply_intlist(struct loader *ld, const struct kdef *d, const struct td_ynode *val,
                          void *base)
{
    int **slot = FIELD(base, d->off, int *);
    size_t *count = FIELD(base, d->off2, size_t);
    char shown_buf[128];

    if (val->kind != TD_YSEQ) {
        ERR_AT(ld, val, "'%s' must be a list of integers (got %s)", d->name, node_kind_name(val));
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
        struct sval v;
        long long n;
        if (get_scalar(ld, val->items[i], d->name, &v) < 0) {
            continue;
        }
        if (parse_int(&v, &n) < 0) {
            ERR_AT(ld, val->items[i], "'%s' items must be integers (got %s)", d->name,
                   shown(&v, shown_buf, sizeof(shown_buf)));
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

static void apply_strmap(struct loader *ld, const struct kdef *d, const struct td_ynode *val,
                         void *base)
{
    struct td_kv_list *list = FIELD(base, d->off, struct td_kv_list);

    if (val->kind != TD_YMAP) {
        ERR_AT(ld, val, "'%s' must be a mapping of strings (got %s)", d->name, node_kind_name(val));
        return;
    }
    for (size_t i = 0; i + 1 < val->n; i += 2) {
        const struct td_ynode *key = val->items[i];
        struct sval v;
        if (!good_key(ld, val, i)) {
            continue;
        }
        if (d->attrs && !valid_attr_name(key->value)) {
            ERR_AT(ld, key, "invalid attribute name '%s' (lowercase letters and digits only)",
                   key->value);
            continue;
        }
        if (d->hdrs && !header_name_ok(key->value)) {
            ERR_AT(ld, key, "'%s': invalid header name '%.64s'", d->name, key->value);
            continue;
        }
        if (get_scalar(ld, val->items[i + 1], key->value, &v) < 0) {
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

static void remember_secret_ref(struct loader *ld, const struct td_pos *pos, const struct sval *v)
{
    if (v->secret && ld->nsecret_refs < MAX_SECRET_REFS) {
        struct secret_ref *ref = &ld->secret_refs[ld->nsecret_refs++];
        ref->pos = *pos;
        snprintf(ref->from, sizeof(ref->from), "%s", v->from);
    }
}

static void apply(struct loader *ld, const struct kdef *d, const struct td_ynode *val, void *base)
{
    struct sval v = {0};
    char buf[128];
    char names[256];
    long long n;
    int64_t i64;
    int index;

    switch (d->type) {
    case K_NESTED:
        walk(ld, d->sub, val, FIELD(base, d->off, char));
        return;
    case K_CUSTOM:
        d->fn(ld, val, base);
        return;
    case K_STRLIST:
        apply_strlist(ld, d, val, base);
        return;
    case K_INTLIST:
        apply_intlist(ld, d, val, base);
        return;
    case K_STRMAP:
        apply_strmap(ld, d, val, base);
        return;
    default:
        break;
    }
    if (get_scalar(ld, val, d->name, &v) < 0) {
        return;
    }
    switch (d->type) {
    case K_STR:
        if (d->names && !in_list(v.s, d->names, NULL)) {
            join_names(d->names, names, sizeof(names));
            ERR_AT(ld, val, "'%s' must be one of %s (got %s)", d->name, names,
                   shown(&v, buf, sizeof(buf)));
            break;
        }
        if (d->cred && !td_secret_header_safe(v.s)) {
            /* Never the value: it is a credential, and shown() would print a literal one. */
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
            *FIELD(base, d->off2, struct td_pos) = node_pos(ld, val);
            remember_secret_ref(ld, FIELD(base, d->off2, struct td_pos), &v);
        }
        break;
    case K_INT:
    case K_I64:
        if (parse_int(&v, &n) < 0) {
            ERR_AT(ld, val, "'%s' must be an integer (got %s)", d->name,
                   shown(&v, buf, sizeof(buf)));
        } else if (check_range(ld, val, d, n) == 0) {
            if (d->type == K_INT) {
                *FIELD(base, d->off, int) = (int)n;
            } else {
                *FIELD(base, d->off, int64_t) = n;
            }
        }
        break;
    case K_BOOL:
        if (v.plain &&
            (strcmp(v.s, "true") == 0 || strcmp(v.s, "True") == 0 || strcmp(v.s, "TRUE") == 0)) {
            *FIELD(base, d->off, bool) = true;
        } else if (v.plain && (strcmp(v.s, "false") == 0 || strcmp(v.s, "False") == 0 ||
                               strcmp(v.s, "FALSE") == 0)) {
            *FIELD(base, d->off, bool) = false;
        } else {
            ERR_AT(ld, val, "'%s' must be true or false (got %s)", d->name,
                   shown(&v, buf, sizeof(buf)));
        }
        break;
    case K_DUR:
    case K_DUR_S:
        if (td_parse_duration(v.s, &i64) < 0) {
            ERR_AT(ld, val, "'%s' must be a duration such as 250ms, 10s, 5m, 1h (got %s)", d->name,
                   shown(&v, buf, sizeof(buf)));
        } else if (d->type == K_DUR) {
            *FIELD(base, d->off, int64_t) = i64;
        } else if (i64 / 1000 > INT_MAX) {
            ERR_AT(ld, val, "'%s' is too long", d->name);
        } else {
            *FIELD(base, d->off, int) = (int)(i64 / 1000);
        }
        break;
    case K_SIZE:
        if (td_parse_size(v.s, &i64) < 0) {
            ERR_AT(ld, val, "'%s' must be a size such as 512, 64KiB, 1MiB (got %s)", d->name,
                   shown(&v, buf, sizeof(buf)));
        } else {
            *FIELD(base, d->off, int64_t) = i64;
        }
        break;
    case K_ENUM:
        if (!in_list(v.s, d->names, &index)) {
            join_names(d->names, names, sizeof(names));
            ERR_AT(ld, val, "'%s' must be one of %s (got %s)", d->name, names,
                   shown(&v, buf, sizeof(buf)));
        } else {
            *FIELD(base, d->off, int) = index;
        }
        break;
    default:
        break;
    }
    td_secret_free(v.s);
}

/* Applies table T to the mapping MAP, filling the struct at BASE. Reports every problem. */
static void walk(struct loader *ld, const struct ktable *t, const struct td_ynode *map, void *base)
{
    bool present[MAX_TABLE_KEYS] = {false};
    const struct td_ynode *group_key = NULL;
    const char *names[MAX_TABLE_KEYS + 1];
    char hint[128];

    if (map->kind != TD_YMAP) {
        ERR_AT(ld, map, "%s must be a mapping (got %s)", t->what, node_kind_name(map));
        return;
    }
    for (size_t i = 0; i < t->nkeys; i++) {
        names[i] = t->keys[i].name;
    }
    names[t->nkeys] = NULL;
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const struct td_ynode *key = map->items[i];
        const struct kdef *d = NULL;
        size_t index = 0;
        if (!good_key(ld, map, i)) {
            continue;
        }
        for (size_t j = 0; j < t->nkeys; j++) {
            if (strcmp(t->keys[j].name, key->value) == 0) {
                d = &t->keys[j];
                index = j;
            }
        }
        if (!d) {
            suggest(key->value, names, t->nkeys, hint, sizeof(hint));
            ERR_AT(ld, key, "unknown key '%s' in %s%s", key->value, t->what, hint);
            continue;
        }
        if (d->group) {
            if (group_key) {
                ERR_AT(ld, key, "'%s' and '%s' cannot both be given in %s", group_key->value,
                       key->value, t->what);
                continue;
            }
            group_key = key;
        }
        present[index] = true;
        if (t->has_kind && d->kind) {
            *FIELD(base, t->kind_off, int) = d->kind - 1;
        }
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
    if (t->group_required && !group_key) {
        char list[256];
        size_t used = 0;
        list[0] = '\0';
        for (size_t j = 0; j < t->nkeys && used < sizeof(list); j++) {
            if (t->keys[j].group) {
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "",
                                         t->keys[j].name);
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

/* Frees every string, list and map that table T filled in the struct at BASE. */
static void free_table(const struct ktable *t, void *base)
{
    for (size_t i = 0; i < t->nkeys; i++) {
        const struct kdef *d = &t->keys[i];
        switch (d->type) {
        case K_STR:
            td_secret_free(*FIELD(base, d->off, char *)); /* any may be a secret */
            break;
        case K_STRLIST: {
            char **items = *FIELD(base, d->off, char **);
            size_t n = *FIELD(base, d->off2, size_t);
            for (size_t j = 0; j < n; j++) {
                td_secret_free(items[j]);
            }
            free(items);
            break;
        }
        case K_INTLIST:
            free(*FIELD(base, d->off, int *));
            break;
        case K_STRMAP: {
            struct td_kv_list *list = FIELD(base, d->off, struct td_kv_list);
            for (size_t j = 0; j < list->n; j++) {
                free(list->items[j].key);
                td_secret_free(list->items[j].value); /* e.g. an API key header */
            }
            free(list->items);
            break;
        }
        case K_NESTED:
            free_table(d->sub, FIELD(base, d->off, char));
            break;
        default:
            break;
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * The tables
 * ---------------------------------------------------------------------------------------- */

/* clang-format off */
#define STR(n, o)         {.name = (n), .type = K_STR, .off = (o)}
#define REQ_STR(n, o)     {.name = (n), .type = K_STR, .off = (o), .required = true}
#define ONE_STR(n, o)     {.name = (n), .type = K_STR, .off = (o), .group = 1}
#define CRED_STR(n, o)    {.name = (n), .type = K_STR, .off = (o), .cred = true}
#define REF_STR(n, o, p)  {.name = (n), .type = K_STR, .off = (o), .off2 = (p), .pos = true}
#define INT(n, o, lo, hi) {.name = (n), .type = K_INT, .off = (o), .min = (lo), .max = (hi)}
#define DUR(n, o)         {.name = (n), .type = K_DUR, .off = (o)}
#define ENUM(n, o, v)     {.name = (n), .type = K_ENUM, .off = (o), .names = (v)}
#define NESTED(n, o, t)   {.name = (n), .type = K_NESTED, .off = (o), .sub = (t)}
#define CUSTOM(n, f)      {.name = (n), .type = K_CUSTOM, .fn = (f)}
/* clang-format on */

static const char *const start_names[] = {"earliest", "latest", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const format_names[] = {"text", "json", NULL};
static const char *const mode_names[] = {"binary", "structured", NULL};
static const char *const invocation_names[] = {"RequestResponse", "Event", NULL};
static const char *const payload_names[] = {"event", "data", NULL};
static const char *const azure_key_in_names[] = {"header", "query", NULL};
static const char *const backoff_names[] = {"exponential", "linear", NULL};
static const char *const id_from_names[] = {"body_hash", "delivery", NULL}; /* td_amqp_id_from */
static const char *const ordering_names[] = {"unordered", "partition", "key", NULL};

/* ---- daemon (base: struct td_conf_daemon) ---- */
#define DMN(f) offsetof(struct td_conf_daemon, f)

static bool is_host_port(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    return colon && colon != listen && colon[1] && !*end && port >= 1 && port <= 65535;
}

static int check_listen(struct loader *ld, const struct td_ynode *map, void *base)
{
    const struct td_conf_daemon *dmn = base;
    int rc = 0;

    if (dmn->http_listen && !is_host_port(dmn->http_listen)) {
        ERR_AT(ld, map_get(map, "listen"), "'listen' must be host:port, e.g. 127.0.0.1:8080");
        rc = -1;
    }
    if (dmn->http_probes_listen && !is_host_port(dmn->http_probes_listen)) {
        ERR_AT(ld, map_get(map, "probes_listen"),
               "'probes_listen' must be host:port, e.g. 0.0.0.0:8081");
        rc = -1;
    } else if (dmn->http_probes_listen && dmn->http_listen &&
               strcmp(dmn->http_probes_listen, dmn->http_listen) == 0) {
        ERR_AT(ld, map_get(map, "probes_listen"),
               "'probes_listen' must differ from 'listen' (it is a listener of its own)");
        rc = -1;
    }
    if (!dmn->http_probes_on_listen && !dmn->http_probes_listen) {
        ERR_AT(ld, map_get(map, "probes_on_listen"),
               "'probes_on_listen: false' needs 'probes_listen', or nothing serves /healthz");
        rc = -1;
    }
    const struct td_ynode *rt = map_get(map, "request_timeout");
    if (rt && (dmn->http_request_timeout_ms < 1000 || dmn->http_request_timeout_ms > 300000)) {
        ERR_AT(ld, rt, "'request_timeout' must be between 1s and 5m (10s to 30s is sensible)");
        rc = -1;
    }
    return rc;
}

/* The limits are applied in http_server.c; their defaults are set in td_config_load. */
static const struct kdef daemon_http_keys[] = {
    REQ_STR("listen", DMN(http_listen)),
    STR("probes_listen", DMN(http_probes_listen)),
    {.name = "probes_on_listen", .type = K_BOOL, .off = DMN(http_probes_on_listen)},
    INT("max_connections", DMN(http_max_connections), 0, 1000000),
    INT("max_connections_per_ip", DMN(http_max_connections_per_ip), 0, 1000000),
    DUR("request_timeout", DMN(http_request_timeout_ms)),
};
static const struct ktable daemon_http_table = {TABLE("daemon.http", daemon_http_keys),
                                                .check = check_listen};
static const struct kdef daemon_log_keys[] = {ENUM("level", DMN(log_level), level_names),
                                              ENUM("format", DMN(log_format), format_names)};
static const struct ktable daemon_log_table = {TABLE("daemon.log", daemon_log_keys)};
static const struct kdef daemon_keys[] = {NESTED("http", 0, &daemon_http_table),
                                          NESTED("log", 0, &daemon_log_table),
                                          DUR("shutdown_grace", DMN(shutdown_grace_ms))};
static const struct ktable daemon_table = {TABLE("daemon", daemon_keys)};

/* ---- sources (base: struct td_conf_source) ---- */
#define SRC(f) offsetof(struct td_conf_source, f)

static const struct kdef redis_source_keys[] = {
    REQ_STR("url", SRC(redis.url)),
    REQ_STR("stream", SRC(redis.stream)),
    STR("group", SRC(redis.group)),
    STR("consumer", SRC(redis.consumer)),
    {.name = "start", .type = K_STR, .off = SRC(redis.start), .names = start_names},
    DUR("claim_idle", SRC(redis.claim_idle_ms)),
    INT("max_deliveries", SRC(redis.max_deliveries), 0, INT_MAX),
    INT("batch", SRC(redis.batch), 1, 100000),
    DUR("block", SRC(redis.block_ms)),
};
static const struct ktable redis_source_table = {TABLE("redis source", redis_source_keys)};

static const struct kdef kafka_source_keys[] = {
    REQ_STR("brokers", SRC(kafka.brokers)),
    {.name = "topics",
     .type = K_STRLIST,
     .off = SRC(kafka.topics),
     .off2 = SRC(kafka.ntopics),
     .min = 1,
     .required = true},
    STR("group", SRC(kafka.group)),
    {.name = "start", .type = K_STR, .off = SRC(kafka.start), .names = start_names},
    {.name = "properties", .type = K_STRMAP, .off = SRC(kafka.properties)},
};
static const struct ktable kafka_source_table = {TABLE("kafka source", kafka_source_keys)};

static const char *const exchange_type_names[] = {"direct", "fanout", "topic", "headers", NULL};

static int check_rabbitmq_declare(struct loader *ld, const struct td_ynode *map, void *base)
{
    struct td_conf_source *src = base;
    src->rabbitmq.declare = true;
    if (src->rabbitmq.ndeclare_bindings > 0 && !src->rabbitmq.declare_exchange) {
        ERR_AT(ld, map_get(map, "bindings"), "'bindings' need an 'exchange' to bind to");
        return -1;
    }
    return 0;
}

static const struct kdef rabbitmq_declare_keys[] = {
    {.name = "durable", .type = K_BOOL, .off = SRC(rabbitmq.declare_durable)},
    {.name = "arguments", .type = K_STRMAP, .off = SRC(rabbitmq.declare_arguments)},
    STR("exchange", SRC(rabbitmq.declare_exchange)),
    {.name = "exchange_type",
     .type = K_STR,
     .off = SRC(rabbitmq.declare_exchange_type),
     .names = exchange_type_names},
    {.name = "bindings",
     .type = K_STRLIST,
     .off = SRC(rabbitmq.declare_bindings),
     .off2 = SRC(rabbitmq.ndeclare_bindings)},
};
static const struct ktable rabbitmq_declare_table = {TABLE("declare", rabbitmq_declare_keys),
                                                     .check = check_rabbitmq_declare};

static const struct kdef rabbitmq_source_keys[] = {
    REQ_STR("url", SRC(rabbitmq.url)),
    REQ_STR("queue", SRC(rabbitmq.queue)),
    INT("prefetch", SRC(rabbitmq.prefetch), 0, 65535),
    {.name = "heartbeat", .type = K_DUR_S, .off = SRC(rabbitmq.heartbeat)},
    INT("max_deliveries", SRC(rabbitmq.max_deliveries), 0, INT_MAX),
    DUR("consumer_timeout", SRC(rabbitmq.consumer_timeout_ms)),
    ENUM("id_from", SRC(rabbitmq.id_from), id_from_names),
    NESTED("declare", 0, &rabbitmq_declare_table),
};
static const struct ktable rabbitmq_source_table = {TABLE("rabbitmq source", rabbitmq_source_keys)};

static int check_ingress(struct loader *ld, const struct td_ynode *map, void *base)
{
    const char *path = FIELD(base, SRC(http.path), char *)[0];
    if (path && path[0] != '/') {
        ERR_AT(ld, map_get(map, "path"), "'path' must start with '/'");
        return -1;
    }
    return 0;
}

static const struct kdef ingress_auth_keys[] = {CRED_STR("bearer", SRC(http.bearer))};
static const struct ktable ingress_auth_table = {TABLE("http source auth", ingress_auth_keys)};
static const struct kdef http_source_keys[] = {
    REQ_STR("path", SRC(http.path)),
    NESTED("auth", 0, &ingress_auth_table),
    {.name = "max_size", .type = K_SIZE, .off = SRC(http.max_size)},
};
static const struct ktable http_source_table = {TABLE("http source", http_source_keys),
                                                .check = check_ingress};

static const struct kdef source_keys[] = {
    {.name = "redis",
     .type = K_NESTED,
     .sub = &redis_source_table,
     .group = 1,
     .kind = TD_SOURCE_REDIS + 1},
    {.name = "kafka",
     .type = K_NESTED,
     .sub = &kafka_source_table,
     .group = 1,
     .kind = TD_SOURCE_KAFKA + 1},
    {.name = "rabbitmq",
     .type = K_NESTED,
     .sub = &rabbitmq_source_table,
     .group = 1,
     .kind = TD_SOURCE_RABBITMQ + 1},
    {.name = "http",
     .type = K_NESTED,
     .sub = &http_source_table,
     .group = 1,
     .kind = TD_SOURCE_HTTP + 1},
    INT("max_inflight", SRC(max_inflight), 1, INT_MAX),
    DUR("stall_after", SRC(stall_after_ms)),
};
static const struct ktable source_table = {TABLE("source", source_keys), .group_required = true,
                                           .has_kind = true, .kind_off = SRC(kind)};

/* ---- sinks (base: struct td_conf_sink, except auth: struct td_conf_auth) ---- */
#define SNK(f)  offsetof(struct td_conf_sink, f)
#define AUTH(f) offsetof(struct td_conf_auth, f)

static const struct kdef basic_keys[] = {REQ_STR("user", AUTH(basic_user)),
                                         REQ_STR("password", AUTH(basic_password))};
static const struct ktable basic_table = {TABLE("auth.basic", basic_keys)};
static const struct kdef google_keys[] = {REQ_STR("audience", AUTH(google_audience)),
                                          STR("metadata_url", AUTH(google_metadata_url))};
static const struct ktable google_table = {TABLE("auth.google_id_token", google_keys)};
static const struct kdef auth_keys[] = {
    {.name = "bearer", .type = K_STR, .off = AUTH(bearer), .group = 1, .cred = true},
    ONE_STR("bearer_file", AUTH(bearer_file)),
    {.name = "basic", .type = K_NESTED, .sub = &basic_table, .group = 1},
    {.name = "google_id_token", .type = K_NESTED, .sub = &google_table, .group = 1},
    {.name = "azure_function_key",
     .type = K_STR,
     .off = AUTH(azure_function_key),
     .group = 1,
     .cred = true},
    {.name = "azure_key_in", .type = K_STR, .off = AUTH(azure_key_in), .names = azure_key_in_names},
};
static const struct ktable auth_table = {TABLE("auth", auth_keys)};

static const struct kdef service_keys[] = {REQ_STR("name", SNK(http.service_name)),
                                           STR("namespace", SNK(http.service_namespace)),
                                           INT("port", SNK(http.service_port), 1, 65535)};
static const struct ktable service_table = {TABLE("service", service_keys)};

#define SINK_TIMEOUT DUR("timeout", SNK(timeout_ms))

static const struct kdef http_sink_keys[] = {
    ONE_STR("url", SNK(http.url)),
    {.name = "service", .type = K_NESTED, .sub = &service_table, .group = 1},
    ENUM("mode", SNK(http.mode), mode_names),
    SINK_TIMEOUT,
    {.name = "headers", .type = K_STRMAP, .off = SNK(http.headers), .hdrs = true},
    STR("ca_file", SNK(http.ca_file)),
    STR("client_cert", SNK(http.client_cert)),
    STR("client_key", SNK(http.client_key)),
    NESTED("auth", SNK(http.auth), &auth_table),
};
/* An URL that can never work is a load error, not a dead letter per event at run time. */
static int check_http_url(struct loader *ld, const struct td_ynode *map, const char *key,
                          const char *url)
{
    if (!url) {
        return 0;
    }
    const char *host = strncmp(url, "http://", 7) == 0    ? url + 7
                       : strncmp(url, "https://", 8) == 0 ? url + 8
                                                          : NULL;
    if (!host) {
        ERR_AT(ld, map_get(map, key), "'%s' must be an http:// or https:// URL", key);
        return -1;
    }
    if (!*host || *host == '/' || strpbrk(url, " \t\r\n")) {
        ERR_AT(ld, map_get(map, key), "'%s' is not a valid URL (no host, or white space)", key);
        return -1;
    }
    return 0;
}

static int check_http_sink(struct loader *ld, const struct td_ynode *map, void *base)
{
    const struct td_conf_sink *k = base;
    return check_http_url(ld, map, "url", k->http.url);
}

static const struct ktable http_sink_table = {TABLE("http sink", http_sink_keys),
                                              .group_required = true, .check = check_http_sink};

static const struct kdef openfaas_sink_keys[] = {
    REQ_STR("gateway", SNK(openfaas.gateway)),
    REQ_STR("function", SNK(openfaas.function)),
    {.name = "async", .type = K_BOOL, .off = SNK(openfaas.async)},
    STR("callback_url", SNK(openfaas.callback_url)),
    NESTED("auth", SNK(openfaas.auth), &auth_table),
    SINK_TIMEOUT,
};
static const struct ktable openfaas_sink_table = {TABLE("openfaas sink", openfaas_sink_keys)};

static const struct kdef credentials_keys[] = {
    {.name = "access_key_id",
     .type = K_STR,
     .off = SNK(lambda.access_key_id),
     .required = true,
     .cred = true},
    {.name = "secret_access_key",
     .type = K_STR,
     .off = SNK(lambda.secret_access_key),
     .required = true,
     .cred = true},
    CRED_STR("session_token", SNK(lambda.session_token)),
};
static const struct ktable credentials_table = {TABLE("lambda credentials", credentials_keys)};
static const struct kdef lambda_sink_keys[] = {
    REQ_STR("function", SNK(lambda.function)),
    STR("region", SNK(lambda.region)),
    STR("qualifier", SNK(lambda.qualifier)),
    {.name = "invocation", .type = K_STR, .off = SNK(lambda.invocation), .names = invocation_names},
    {.name = "payload", .type = K_STR, .off = SNK(lambda.payload), .names = payload_names},
    STR("endpoint", SNK(lambda.endpoint)),
    NESTED("credentials", 0, &credentials_table),
    SINK_TIMEOUT,
};
static const struct ktable lambda_sink_table = {TABLE("lambda sink", lambda_sink_keys)};

static const struct kdef redis_sink_keys[] = {
    REQ_STR("url", SNK(redis.url)),
    REQ_STR("stream", SNK(redis.stream)),
    {.name = "maxlen", .type = K_I64, .off = SNK(redis.maxlen), .min = 0, .max = LLONG_MAX},
    SINK_TIMEOUT,
};
static const struct ktable redis_sink_table = {TABLE("redis sink", redis_sink_keys)};

static const struct kdef kafka_sink_keys[] = {
    REQ_STR("brokers", SNK(kafka.brokers)),
    REQ_STR("topic", SNK(kafka.topic)),
    {.name = "properties", .type = K_STRMAP, .off = SNK(kafka.properties)},
    SINK_TIMEOUT,
};
static const struct ktable kafka_sink_table = {TABLE("kafka sink", kafka_sink_keys)};

static const struct kdef rabbitmq_sink_keys[] = {
    REQ_STR("url", SNK(rabbitmq.url)),
    REQ_STR("exchange", SNK(rabbitmq.exchange)),
    STR("routing_key", SNK(rabbitmq.routing_key)),
    SINK_TIMEOUT,
};
static const struct ktable rabbitmq_sink_table = {TABLE("rabbitmq sink", rabbitmq_sink_keys)};

static const struct kdef file_sink_keys[] = {REQ_STR("path", SNK(file.path)), SINK_TIMEOUT};
static const struct ktable file_sink_table = {TABLE("file sink", file_sink_keys)};

/* clang-format off */
#define SINK_KIND(n, t, k) {.name = (n), .type = K_NESTED, .sub = (t), .group = 1, .kind = (k) + 1}
/* clang-format on */
static const struct kdef sink_keys[] = {
    SINK_KIND("http", &http_sink_table, TD_SINK_HTTP),
    SINK_KIND("openfaas", &openfaas_sink_table, TD_SINK_OPENFAAS),
    SINK_KIND("lambda", &lambda_sink_table, TD_SINK_LAMBDA),
    SINK_KIND("redis", &redis_sink_table, TD_SINK_REDIS),
    SINK_KIND("kafka", &kafka_sink_table, TD_SINK_KAFKA),
    SINK_KIND("rabbitmq", &rabbitmq_sink_table, TD_SINK_RABBITMQ),
    SINK_KIND("file", &file_sink_table, TD_SINK_FILE),
};
static const struct ktable sink_table = {TABLE("sink", sink_keys), .group_required = true,
                                         .has_kind = true, .kind_off = SNK(kind)};

/* ---- triggers (base: struct td_conf_trigger; delivery: struct td_conf_delivery) ---- */
#define TRG(f) offsetof(struct td_conf_trigger, f)
#define DLV(f) offsetof(struct td_conf_delivery, f)

static int check_delivery(struct loader *ld, const struct td_ynode *map, void *base)
{
    struct td_conf_delivery *dlv = base;
    const struct td_ynode *at = map_get(map, "backoff_max");
    const struct td_ynode *ord = map_get(map, "ordering");

    if (ord) {
        dlv->ordering_pos = node_pos(ld, ord); /* for checks that depend on the source */
    }

    if (dlv->backoff_max_ms < dlv->backoff_delay_ms) {
        ERR_AT(ld, at ? at : map_get(map, "backoff_delay"),
               "'backoff_max' must not be less than 'backoff_delay'");
        return -1;
    }
    return 0;
}

static const struct kdef delivery_keys[] = {
    INT("retry", DLV(retry), 0, 1000000),
    ENUM("backoff", DLV(backoff), backoff_names),
    DUR("backoff_delay", DLV(backoff_delay_ms)),
    DUR("backoff_max", DLV(backoff_max_ms)),
    DUR("timeout", DLV(timeout_ms)),
    DUR("retry_after_max", DLV(retry_after_max_ms)),
    ENUM("ordering", DLV(ordering), ordering_names),
    INT("concurrency", DLV(concurrency), 1, 1000000),
    REF_STR("dead_letter", DLV(dead_letter), DLV(dead_letter_pos)),
    {.name = "retry_on",
     .type = K_INTLIST,
     .off = DLV(retry_on),
     .off2 = DLV(nretry_on),
     .min = 100,
     .max = 599},
};
static const struct ktable delivery_table = {TABLE("delivery", delivery_keys),
                                             .check = check_delivery};

static const struct kdef event_keys[] = {
    STR("type", TRG(event_type)),
    STR("source", TRG(event_source)),
    {.name = "set", .type = K_STRMAP, .off = TRG(event_set), .attrs = true},
};
/* set: overrides must leave a valid event, and may not forge its identity. */
static int check_event(struct loader *ld, const struct td_ynode *map, void *base)
{
    const struct td_conf_trigger *trg = base;
    const struct td_ynode *set = map_get(map, "set");
    int rc = 0;
    for (size_t i = 0; i < trg->event_set.n; i++) {
        const char *k = trg->event_set.items[i].key;
        const char *v = trg->event_set.items[i].value;
        const struct td_ynode *at = set ? map_get(set, k) : map;
        if (strcmp(k, "data") == 0 || strcmp(k, "data_base64") == 0 ||
            strcmp(k, "specversion") == 0 || strcmp(k, "id") == 0) {
            ERR_AT(ld, at, "'%s' cannot be set: it is the event's own", k);
            rc = -1;
        } else if ((strcmp(k, "type") == 0 || strcmp(k, "source") == 0) && !*v) {
            ERR_AT(ld, at, "'%s' cannot be set to an empty string", k);
            rc = -1;
        } else if (strcmp(k, "time") == 0 && !td_ce_valid_time(v)) {
            ERR_AT(ld, at, "'time' must be an RFC 3339 timestamp");
            rc = -1;
        }
    }
    return rc;
}

static const struct ktable event_table = {TABLE("event", event_keys), .check = check_event};

static int filter_fn(struct loader *ld, const struct td_ynode *val, void *base);
static int filters_fn(struct loader *ld, const struct td_ynode *val, void *base);

static const struct kdef trigger_keys[] = {
    REQ_STR("name", TRG(name)),
    {.name = "source",
     .type = K_STR,
     .off = TRG(source),
     .off2 = TRG(source_pos),
     .pos = true,
     .required = true},
    NESTED("event", 0, &event_table),
    CUSTOM("filter", filter_fn),
    CUSTOM("filters", filters_fn),
    {.name = "sink",
     .type = K_STR,
     .off = TRG(sink),
     .off2 = TRG(sink_pos),
     .pos = true,
     .required = true},
    REF_STR("reply", TRG(reply), TRG(reply_pos)),
    STR("schema", TRG(schema)),
    NESTED("delivery", TRG(delivery), &delivery_table),
};
static const struct ktable trigger_table = {TABLE("trigger", trigger_keys)};

/* ---- the top level (base: struct td_config) ---- */
static int version_fn(struct loader *ld, const struct td_ynode *val, void *base);
static int daemon_fn(struct loader *ld, const struct td_ynode *val, void *base);
static int sources_fn(struct loader *ld, const struct td_ynode *val, void *base);
static int sinks_fn(struct loader *ld, const struct td_ynode *val, void *base);
static int triggers_fn(struct loader *ld, const struct td_ynode *val, void *base);

static const struct kdef top_keys[] = {
    {.name = "version", .type = K_CUSTOM, .fn = version_fn, .required = true},
    CUSTOM("daemon", daemon_fn),
    CUSTOM("sources", sources_fn),
    CUSTOM("sinks", sinks_fn),
    CUSTOM("triggers", triggers_fn),
};
static const struct ktable top_table = {TABLE("the top level", top_keys)};

/* ------------------------------------------------------------------------------------------
 * Filters
 * ---------------------------------------------------------------------------------------- */

static const char *const filter_names[] = {"exact", "prefix", "suffix", "all",
                                           "any",   "not",    "cesql",  NULL};
static const enum td_filter_kind filter_kinds[] = {
    TD_FILTER_EXACT, TD_FILTER_PREFIX, TD_FILTER_SUFFIX, TD_FILTER_ALL,
    TD_FILTER_ANY,   TD_FILTER_NOT,    TD_FILTER_CESQL};

/* An exact/prefix/suffix node from a mapping of attribute -> value. NULL after reporting.
 * The caller owns the result. */
static struct td_filter *build_attrs(struct loader *ld, const struct td_ynode *map,
                                     enum td_filter_kind kind, const char *what)
{
    size_t before = ld->nerrors;
    struct td_filter *f = NULL;

    if (map->kind != TD_YMAP) {
        ERR_AT(ld, map, "'%s' must be a mapping of attribute to value (got %s)", what,
               node_kind_name(map));
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
        struct sval v;
        if (!good_key(ld, map, i)) {
            continue;
        }
        if (!valid_attr_name(key->value)) {
            ERR_AT(ld, key, "invalid attribute name '%s' (lowercase letters and digits only)",
                   key->value);
            continue;
        }
        if (get_scalar(ld, map->items[i + 1], key->value, &v) < 0) {
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
static struct td_filter *build_filter(struct loader *ld, const struct td_ynode *node)
{
    size_t before = ld->nerrors;
    const struct td_ynode *key = NULL;
    const struct td_ynode *val = NULL;
    struct td_filter *f = NULL;
    char hint[128];
    char err[512];
    int index = -1;

    if (node->kind != TD_YMAP) {
        ERR_AT(ld, node, "a filter must be a mapping (got %s)", node_kind_name(node));
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
        if (!good_key(ld, node, i)) {
            continue;
        }
        if (!in_list(node->items[i]->value, filter_names, &which)) {
            suggest(node->items[i]->value, filter_names, 7, hint, sizeof(hint));
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
        struct sval v;
        if (get_scalar(ld, val, "cesql", &v) < 0) {
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
        ERR_AT(ld, val, "'%s' must be a list of filters (got %s)", key->value, node_kind_name(val));
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
static int add_trigger_filter(struct loader *ld, struct td_conf_trigger *trg, struct td_filter *f,
                              const struct td_ynode *at)
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

static int filter_fn(struct loader *ld, const struct td_ynode *val, void *base)
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

static int filters_fn(struct loader *ld, const struct td_ynode *val, void *base)
{
    if (val->kind != TD_YSEQ) {
        ERR_AT(ld, val, "'filters' must be a list of filters (got %s)", node_kind_name(val));
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

/* ------------------------------------------------------------------------------------------
 * Sources, sinks, triggers, the top level
 * ---------------------------------------------------------------------------------------- */

static void set_default(struct loader *ld, char **slot, const char *value,
                        const struct td_ynode *at)
{
    if (!*slot) {
        *slot = strdup(value);
        if (!*slot) {
            ERR_AT(ld, at, "out of memory");
        }
    }
}

static int version_fn(struct loader *ld, const struct td_ynode *val, void *base)
{
    struct td_config *cfg = base;
    struct sval v;
    long long n = 0;
    char buf[128];

    if (get_scalar(ld, val, "version", &v) < 0) {
        return -1;
    }
    if (parse_int(&v, &n) < 0 || n != 1) {
        ERR_AT(ld, val, "unsupported version %s (only 1 is supported)",
               shown(&v, buf, sizeof(buf)));
        td_secret_free(v.s);
        return -1;
    }
    td_secret_free(v.s);
    cfg->version = 1;
    return 0;
}

static int daemon_fn(struct loader *ld, const struct td_ynode *val, void *base)
{
    struct td_config *cfg = base;

    if (ld->have_daemon) {
        ERR_AT(ld, val, "daemon is already configured at %s:%d:%d", ld->daemon_pos.file,
               ld->daemon_pos.line, ld->daemon_pos.col);
        return -1;
    }
    ld->have_daemon = true;
    ld->daemon_pos = node_pos(ld, val);
    walk(ld, &daemon_table, val, &cfg->daemon);
    return 0;
}

/* Common checks of a source or sink name (a mapping key). True when it can be added. */
static bool check_new_name(struct loader *ld, const struct td_ynode *key, const char *what,
                           const struct td_pos *first)
{
    if (!valid_name(key->value)) {
        ERR_AT(ld, key, "invalid %s name '%s' (use letters, digits, '_', '.' and '-')", what,
               key->value);
        return false;
    }
    if (first) {
        ERR_AT(ld, key, "duplicate %s '%s' (first defined at %s:%d:%d)", what, key->value,
               first->file, first->line, first->col);
        return false;
    }
    return true;
}

static void source_defaults(struct td_conf_source *src)
{
    src->max_inflight = 1000;
    src->stall_after_ms = 120000;
    src->redis.claim_idle_ms = 60000;
    src->redis.max_deliveries = 10;
    src->redis.batch = 100;
    src->redis.block_ms = 1000;
    src->rabbitmq.prefetch = 100;
    src->rabbitmq.heartbeat = 30;
    src->rabbitmq.max_deliveries = 10;
    src->rabbitmq.consumer_timeout_ms = 30 * 60 * 1000;
    src->rabbitmq.id_from = TD_ID_FROM_DELIVERY;
    src->rabbitmq.declare_durable = true;
    src->http.max_size = 1024 * 1024;
}

static void source_string_defaults(struct loader *ld, struct td_conf_source *src,
                                   const struct td_ynode *at)
{
    char host[256] = "";

    if (src->kind == TD_SOURCE_REDIS) {
        if (gethostname(host, sizeof(host) - 1) < 0 || !host[0]) {
            snprintf(host, sizeof(host), "triggerd");
        }
        set_default(ld, &src->redis.group, "triggerd", at);
        set_default(ld, &src->redis.consumer, host, at);
        set_default(ld, &src->redis.start, "earliest", at);
    } else if (src->kind == TD_SOURCE_KAFKA) {
        set_default(ld, &src->kafka.group, "triggerd", at);
        set_default(ld, &src->kafka.start, "earliest", at);
    }
}

static int sources_fn(struct loader *ld, const struct td_ynode *val, void *base)
{
    struct td_config *cfg = base;
    char owner[320];

    if (val->kind != TD_YMAP) {
        ERR_AT(ld, val, "sources must be a mapping of name to source (got %s)",
               node_kind_name(val));
        return -1;
    }
    for (size_t i = 0; i + 1 < val->n; i += 2) {
        const struct td_ynode *key = val->items[i];
        if (!good_key(ld, val, i)) {
            continue;
        }
        const struct td_conf_source *prev = td_config_source(cfg, key->value);
        if (!check_new_name(ld, key, "source", prev ? &prev->pos : NULL)) {
            continue;
        }
        struct td_conf_source *srcs = realloc(cfg->sources, (cfg->nsources + 1) * sizeof(*srcs));
        char *name = strdup(key->value);
        if (!srcs || !name) {
            cfg->sources = srcs ? srcs : cfg->sources;
            free(name);
            ERR_AT(ld, key, "out of memory");
            return -1;
        }
        cfg->sources = srcs;
        struct td_conf_source *src = &srcs[cfg->nsources++];
        memset(src, 0, sizeof(*src));
        source_defaults(src);
        src->name = name;
        src->pos = node_pos(ld, key);
        snprintf(owner, sizeof(owner), "source '%s'", name);
        ld->owner = owner;
        ld->owner_table = &source_table;
        walk(ld, &source_table, val->items[i + 1], src);
        ld->owner = NULL;
        source_string_defaults(ld, src, key);
    }
    return 0;
}

static int sinks_fn(struct loader *ld, const struct td_ynode *val, void *base)
{
    struct td_config *cfg = base;
    char owner[320];

    if (val->kind != TD_YMAP) {
        ERR_AT(ld, val, "sinks must be a mapping of name to sink (got %s)", node_kind_name(val));
        return -1;
    }
    for (size_t i = 0; i + 1 < val->n; i += 2) {
        const struct td_ynode *key = val->items[i];
        if (!good_key(ld, val, i)) {
            continue;
        }
        const struct td_conf_sink *prev = td_config_sink(cfg, key->value);
        if (!check_new_name(ld, key, "sink", prev ? &prev->pos : NULL)) {
            continue;
        }
        struct td_conf_sink *sinks = realloc(cfg->sinks, (cfg->nsinks + 1) * sizeof(*sinks));
        char *name = strdup(key->value);
        if (!sinks || !name) {
            cfg->sinks = sinks ? sinks : cfg->sinks;
            free(name);
            ERR_AT(ld, key, "out of memory");
            return -1;
        }
        cfg->sinks = sinks;
        struct td_conf_sink *snk = &sinks[cfg->nsinks++];
        memset(snk, 0, sizeof(*snk));
        snk->name = name;
        snk->pos = node_pos(ld, key);
        snk->timeout_ms = 10000;
        snk->http.mode = TD_MODE_BINARY;
        snk->http.service_port = 80;
        snprintf(owner, sizeof(owner), "sink '%s'", name);
        ld->owner = owner;
        ld->owner_table = &sink_table;
        walk(ld, &sink_table, val->items[i + 1], snk);
        ld->owner = NULL;
        snk->http.timeout_ms = snk->timeout_ms;
        /* service: without namespace stays NULL here: the HTTP sink owns that default (the
         * pod's own namespace, POD_NAMESPACE, then the service account's file, then default). */
        if (snk->kind == TD_SINK_LAMBDA) {
            set_default(ld, &snk->lambda.invocation, "RequestResponse", key);
            set_default(ld, &snk->lambda.payload, "event", key);
        }
    }
    return 0;
}

static void delivery_defaults(struct td_conf_delivery *dlv)
{
    dlv->retry = 3;
    dlv->backoff = TD_BACKOFF_EXPONENTIAL;
    dlv->backoff_delay_ms = 200;
    dlv->backoff_max_ms = 30000;
    dlv->timeout_ms = 0;
    dlv->retry_after_max_ms = 60000;
    dlv->ordering = TD_ORDER_UNORDERED;
    dlv->concurrency = 64;
}

static void load_trigger(struct loader *ld, const struct td_ynode *node, size_t index)
{
    struct td_config *cfg = ld->cfg;
    const struct td_ynode *name = map_get(node, "name");
    char owner[320];

    if (node->kind != TD_YMAP) {
        ERR_AT(ld, node, "trigger #%zu must be a mapping (got %s)", index + 1,
               node_kind_name(node));
        return;
    }
    if (name && name->kind == TD_YSCALAR && !td_ynode_is_null(name) && !strstr(name->value, "${")) {
        snprintf(owner, sizeof(owner), "trigger '%s'", name->value);
    } else {
        snprintf(owner, sizeof(owner), "trigger #%zu", index + 1);
    }
    struct td_conf_trigger *trgs = realloc(cfg->triggers, (cfg->ntriggers + 1) * sizeof(*trgs));
    if (!trgs) {
        ERR_AT(ld, node, "out of memory");
        return;
    }
    cfg->triggers = trgs;
    struct td_conf_trigger *trg = &trgs[cfg->ntriggers++];
    memset(trg, 0, sizeof(*trg));
    delivery_defaults(&trg->delivery);
    trg->pos = node_pos(ld, node);
    ld->owner = owner;
    ld->owner_table = &trigger_table;
    walk(ld, &trigger_table, node, trg);
    ld->owner = NULL;
    if (!trg->name) {
        return;
    }
    if (!valid_name(trg->name)) {
        ERR_AT(ld, name, "invalid trigger name %s%s%s (use letters, digits, '_', '.' and '-')",
               strstr(name->value, "${") ? "" : "'", name->value,
               strstr(name->value, "${") ? "" : "'");
        return;
    }
    for (size_t i = 0; i + 1 < cfg->ntriggers; i++) {
        const struct td_conf_trigger *prev = &cfg->triggers[i];
        if (prev->name && strcmp(prev->name, trg->name) == 0) {
            ERR_AT(ld, name, "duplicate trigger name '%s' (first defined at %s:%d:%d)", trg->name,
                   prev->pos.file, prev->pos.line, prev->pos.col);
            return;
        }
    }
}

static int triggers_fn(struct loader *ld, const struct td_ynode *val, void *base)
{
    if (val->kind != TD_YSEQ) {
        ERR_AT(ld, val, "triggers must be a list (got %s)", node_kind_name(val));
        return -1;
    }
    for (size_t i = 0; i < val->n; i++) {
        load_trigger(ld, val->items[i], i);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Files and directories
 * ---------------------------------------------------------------------------------------- */

/* Reads PATH whole. Returns a malloc'd buffer (the caller frees) or NULL after reporting. */
static char *read_file(struct loader *ld, const char *path, size_t *len)
{
    struct td_pos pos = {path, 0, 0};
    struct sbuf b = {0};
    char chunk[8192];
    size_t got;
    FILE *fp = fopen(path, "rb");

    if (!fp) {
        errorf(ld, &pos, "cannot open: %s", strerror(errno));
        goto fail;
    }
    if (sbuf_add(&b, "", 0) < 0) {
        errorf(ld, &pos, "out of memory");
        goto fail;
    }
    while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (b.n + got > MAX_FILE_SIZE) {
            errorf(ld, &pos, "file is larger than 16 MiB");
            goto fail;
        }
        if (sbuf_add(&b, chunk, got) < 0) {
            errorf(ld, &pos, "out of memory");
            goto fail;
        }
    }
    if (ferror(fp)) {
        errorf(ld, &pos, "cannot read: %s", strerror(errno));
        goto fail;
    }
    fclose(fp);
    td_secret_wipe(chunk, sizeof(chunk));
    *len = b.n;
    return b.p;
fail:
    if (fp) {
        fclose(fp);
    }
    td_secret_wipe(chunk, sizeof(chunk));
    td_secret_free_n(b.p, b.cap);
    return NULL;
}

static void load_file(struct loader *ld, const char *path)
{
    struct td_config *cfg = ld->cfg;
    struct td_ynode *root = NULL;
    struct td_yaml_error yerr;
    size_t len = 0;
    char *buf = NULL;
    struct td_pos at = {path, 0, 0};
    char **files = realloc(cfg->files, (cfg->nfiles + 1) * sizeof(*files));

    if (files) {
        cfg->files = files;
        files[cfg->nfiles] = strdup(path);
    }
    if (!files || !files[cfg->nfiles]) {
        errorf(ld, &at, "out of memory");
        goto fail;
    }
    ld->file = files[cfg->nfiles++];
    buf = read_file(ld, ld->file, &len);
    if (!buf) {
        goto fail;
    }
    if (td_yaml_parse(buf, len, &root, &yerr) < 0) {
        struct td_pos pos = {ld->file, yerr.line, yerr.col};
        errorf(ld, &pos, "%s", yerr.msg);
        goto fail;
    }
    if (!root) {
        struct td_pos pos = {ld->file, 1, 1};
        errorf(ld, &pos, "the file is empty (it needs at least 'version: 1')");
        goto fail;
    }
    if (root->kind != TD_YMAP) {
        ERR_AT(ld, root, "the top level must be a mapping (got %s)", node_kind_name(root));
        goto fail;
    }
    walk(ld, &top_table, root, cfg);
fail: /* also the way out on success: the tree and the buffer are never kept */
    td_ynode_free(root);
    /* The file may hold literal secrets. */
    td_secret_free_n(buf, buf ? len + 1 : 0);
}

static int yaml_entry(const struct dirent *de)
{
    size_t len = strlen(de->d_name);
    if (de->d_name[0] == '.') {
        return 0;
    }
    return (len > 5 && strcmp(de->d_name + len - 5, ".yaml") == 0) ||
           (len > 4 && strcmp(de->d_name + len - 4, ".yml") == 0);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void load_dir(struct loader *ld, const char *dir)
{
    struct td_pos pos = {dir, 0, 0};
    struct dirent **entries = NULL;
    size_t loaded = 0;
    int n = scandir(dir, &entries, yaml_entry, by_name);

    if (n < 0) {
        errorf(ld, &pos, "cannot read directory: %s", strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        size_t size = strlen(dir) + strlen(entries[i]->d_name) + 2;
        char *path = malloc(size);
        struct stat st;
        if (!path) {
            errorf(ld, &pos, "out of memory");
        } else {
            snprintf(path, size, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
                     entries[i]->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                load_file(ld, path);
                loaded++;
            }
        }
        free(path);
        free(entries[i]);
    }
    free(entries);
    if (loaded == 0) {
        errorf(ld, &pos, "no *.yaml or *.yml files in the directory");
    }
}

/* Shows a reference value in a message: 'name', or "value from ${X}" if it was a secret. */
static const char *shown_ref(const struct loader *ld, const char *value, const struct td_pos *pos,
                             char *buf, size_t len)
{
    for (size_t i = 0; i < ld->nsecret_refs; i++) {
        const struct td_pos *p = &ld->secret_refs[i].pos;
        if (p->file == pos->file && p->line == pos->line && p->col == pos->col) {
            snprintf(buf, len, "(value from %s)", ld->secret_refs[i].from);
            return buf;
        }
    }
    snprintf(buf, len, "'%s'", value);
    return buf;
}

static void resolve_references(struct loader *ld)
{
    const struct td_config *cfg = ld->cfg;
    char buf[128];

    for (size_t i = 0; i < cfg->ntriggers; i++) {
        const struct td_conf_trigger *trg = &cfg->triggers[i];
        const struct td_conf_delivery *dlv = &trg->delivery;
        if (trg->source && !td_config_source(cfg, trg->source)) {
            errorf(ld, &trg->source_pos, "unknown source %s",
                   shown_ref(ld, trg->source, &trg->source_pos, buf, sizeof(buf)));
        }
        if (trg->sink && !td_config_sink(cfg, trg->sink)) {
            errorf(ld, &trg->sink_pos, "unknown sink %s",
                   shown_ref(ld, trg->sink, &trg->sink_pos, buf, sizeof(buf)));
        }
        if (trg->reply && !td_config_sink(cfg, trg->reply)) {
            errorf(ld, &trg->reply_pos, "unknown sink %s",
                   shown_ref(ld, trg->reply, &trg->reply_pos, buf, sizeof(buf)));
        }
        if (dlv->dead_letter && strcmp(dlv->dead_letter, "native") == 0) {
            /* The broker's own dead-lettering (RabbitMQ: basic.nack requeue=false). */
            const struct td_conf_source *src = td_config_source(cfg, trg->source);
            if (src && src->kind != TD_SOURCE_RABBITMQ) {
                errorf(ld, &dlv->dead_letter_pos,
                       "dead_letter: native needs a rabbitmq source ('%s' is not one)",
                       trg->source);
            }
        } else if (dlv->dead_letter && !td_config_sink(cfg, dlv->dead_letter)) {
            errorf(ld, &dlv->dead_letter_pos, "unknown sink %s",
                   shown_ref(ld, dlv->dead_letter, &dlv->dead_letter_pos, buf, sizeof(buf)));
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * Public API
 * ---------------------------------------------------------------------------------------- */

struct td_config *td_config_load(const char *path, struct td_errors *errs)
{
    struct loader *ld = calloc(1, sizeof(*ld));
    struct td_config *cfg = calloc(1, sizeof(*cfg));
    struct td_pos pos = {path, 0, 0};
    struct stat st;

    if (!ld || !cfg) {
        td_errors_add(errs, &pos, "out of memory");
        goto fail;
    }
    ld->cfg = cfg;
    ld->errs = errs;
    cfg->daemon.log_level = TD_LOG_INFO;
    cfg->daemon.log_format = TD_LOG_TEXT;
    cfg->daemon.shutdown_grace_ms = 30000;
    cfg->daemon.http_max_connections_per_ip = 64;
    cfg->daemon.http_request_timeout_ms = 15000;
    cfg->daemon.http_probes_on_listen = true;
    if (stat(path, &st) < 0) {
        errorf(ld, &pos, "cannot open: %s", strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        load_dir(ld, path);
    } else {
        load_file(ld, path);
    }
    resolve_references(ld);
    if (ld->nerrors > 0) {
        goto fail;
    }
    free(ld);
    return cfg;
fail:
    free(ld);
    td_config_free(cfg);
    return NULL;
}

void td_config_free(struct td_config *cfg)
{
    if (!cfg) {
        return;
    }
    free_table(&daemon_table, &cfg->daemon);
    for (size_t i = 0; i < cfg->nsources; i++) {
        free(cfg->sources[i].name);
        free_table(&source_table, &cfg->sources[i]);
    }
    free(cfg->sources);
    for (size_t i = 0; i < cfg->nsinks; i++) {
        free(cfg->sinks[i].name);
        free_table(&sink_table, &cfg->sinks[i]);
    }
    free(cfg->sinks);
    for (size_t i = 0; i < cfg->ntriggers; i++) {
        td_filter_free(cfg->triggers[i].filter);
        free_table(&trigger_table, &cfg->triggers[i]);
    }
    free(cfg->triggers);
    for (size_t i = 0; i < cfg->nfiles; i++) {
        free(cfg->files[i]);
    }
    free(cfg->files);
    free(cfg);
}

const struct td_conf_source *td_config_source(const struct td_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->nsources; i++) {
        if (strcmp(cfg->sources[i].name, name) == 0) {
            return &cfg->sources[i];
        }
    }
    return NULL;
}

const struct td_conf_sink *td_config_sink(const struct td_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->nsinks; i++) {
        if (strcmp(cfg->sinks[i].name, name) == 0) {
            return &cfg->sinks[i];
        }
    }
    return NULL;
}
