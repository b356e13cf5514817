/* config.c - the trigger-file loader proper: files and directories, the top level, the named
 * maps (sources:, sinks:), triggers, references between names, and the public API of
 * config.h. What a key means is in the tables (conf_keys_*.c), how a mapping is read in
 * conf_walk.c; config_internal.h has the map of the pieces.
 *
 * Thread: any (td_config_load touches only its own state and the environment).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"
#include "filter.h"
#include "secret.h"

#define MAX_FILE_SIZE (16 * 1024 * 1024)

/* ------------------------------------------------------------------------------------------
 * Sources, sinks, triggers, the top level
 * ---------------------------------------------------------------------------------------- */

/* Whether TEXT is the number 1 as a plain YAML scalar writes it: "1", "+1", "01", and also "1.0"
 * or "1.": JSON Schema compares numbers by value, so the schema's "const": 1 accepts 1.0, and a
 * file the schema accepts must load. Read as text: strtod would round a long 0.999... up to 1.
 * The caller refuses a quoted "1", as the schema refuses the string. */
static bool text_is_one(const char *p)
{
    p += *p == '+';
    while (*p == '0') {
        p++;
    }
    if (*p++ != '1') {
        return false;
    }
    if (*p == '.') {
        p++;
        while (*p == '0') {
            p++;
        }
    }
    return *p == '\0';
}

static int version_fn(struct td_conf_loader *ld, const struct td_ynode *val, void *base)
{
    struct td_config *cfg = base;
    struct td_conf_sval v;
    char buf[128];

    if (td_conf_scalar(ld, val, "version", &v) < 0) {
        return -1;
    }
    if (!v.plain || !text_is_one(v.s)) {
        /* "unsupported version '1' (only 1 is supported)" for a quoted "1" read as a
         * contradiction: say what is wrong with it. */
        ERR_AT(ld, val, "unsupported version %s (only 1 is supported%s)",
               td_conf_shown(&v, buf, sizeof(buf)),
               !v.plain && text_is_one(v.s) ? ": the number, not a quoted string" : "");
        td_secret_free(v.s);
        return -1;
    }
    td_secret_free(v.s);
    cfg->version = 1;
    return 0;
}

static int daemon_fn(struct td_conf_loader *ld, const struct td_ynode *val, void *base)
{
    struct td_config *cfg = base;

    if (ld->have_daemon) {
        ERR_AT(ld, val, "daemon is already configured at %s:%d:%d", ld->daemon_pos.file,
               ld->daemon_pos.line, ld->daemon_pos.col);
        return -1;
    }
    ld->have_daemon = true;
    ld->daemon_pos = td_conf_pos(ld, val);
    td_conf_walk(ld, &td_conf_daemon_table, val, &cfg->daemon);
    return 0;
}

/* Common checks of a source or sink name (a mapping key). True when it can be added. */
static bool check_new_name(struct td_conf_loader *ld, const struct td_ynode *key, const char *what,
                           const struct td_pos *first)
{
    if (!td_conf_valid_name(key->value)) {
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

/* A map of names to settings: sources: and sinks: are read by the same code. */
struct named_map {
    const char *what;                  /* "source": in messages */
    const struct td_conf_table *table; /* applied to each value */
    size_t size;                       /* of one item: struct td_conf_source, td_conf_sink */
    size_t items_off, n_off;           /* the array and its count in struct td_config */
    size_t name_off, pos_off;          /* char *name and struct td_pos pos in an item */
};

/* The array of MAP in CFG. Through memcpy: the field is a struct td_conf_source * or
 * td_conf_sink *, never to be read through a char * lvalue. */
static char *named_items(const struct named_map *map, const struct td_config *cfg)
{
    void *items;
    memcpy(&items, (const char *)cfg + map->items_off, sizeof(items));
    return items;
}

/* The item of MAP named NAME in CFG, or NULL. */
static const void *named_find(const struct named_map *map, const struct td_config *cfg,
                              const char *name)
{
    const char *items = named_items(map, cfg);
    size_t n = *FIELD(cfg, map->n_off, size_t);
    for (size_t i = 0; name && i < n; i++) {
        if (strcmp(*FIELD(items + i * map->size, map->name_off, char *), name) == 0) {
            return items + i * map->size;
        }
    }
    return NULL;
}

static int named_map_fn(struct td_conf_loader *ld, const struct named_map *map,
                        const struct td_ynode *val, struct td_config *cfg)
{
    char owner[320];
    size_t *n = FIELD(cfg, map->n_off, size_t);

    if (val->kind != TD_YMAP) {
        ERR_AT(ld, val, "%ss must be a mapping of name to %s (got %s)", map->what, map->what,
               td_conf_kind_name(val));
        return -1;
    }
    for (size_t i = 0; i + 1 < val->n; i += 2) {
        const struct td_ynode *key = val->items[i];
        if (!td_conf_good_key(ld, val, i)) {
            continue;
        }
        const char *prev = named_find(map, cfg, key->value);
        if (!check_new_name(ld, key, map->what,
                            prev ? FIELD(prev, map->pos_off, struct td_pos) : NULL)) {
            continue;
        }
        void *grown = realloc(named_items(map, cfg), (*n + 1) * map->size);
        char *name = strdup(key->value);
        if (grown) {
            memcpy((char *)cfg + map->items_off, &grown, sizeof(grown));
        }
        if (!grown || !name) {
            free(name);
            ERR_AT(ld, key, "out of memory");
            return -1;
        }
        char *item = (char *)grown + (*n)++ * map->size;
        memset(item, 0, map->size);
        *FIELD(item, map->name_off, char *) = name;
        *FIELD(item, map->pos_off, struct td_pos) = td_conf_pos(ld, key);
        snprintf(owner, sizeof(owner), "%s '%s'", map->what, name);
        ld->owner = owner;
        ld->owner_table = map->table;
        td_conf_walk(ld, map->table, val->items[i + 1], item);
        ld->owner = NULL;
    }
    return 0;
}

static const struct named_map source_map = {
    .what = "source",
    .table = &td_conf_source_table,
    .size = sizeof(struct td_conf_source),
    .items_off = offsetof(struct td_config, sources),
    .n_off = offsetof(struct td_config, nsources),
    .name_off = offsetof(struct td_conf_source, name),
    .pos_off = offsetof(struct td_conf_source, pos),
};

static const struct named_map sink_map = {
    .what = "sink",
    .table = &td_conf_sink_table,
    .size = sizeof(struct td_conf_sink),
    .items_off = offsetof(struct td_config, sinks),
    .n_off = offsetof(struct td_config, nsinks),
    .name_off = offsetof(struct td_conf_sink, name),
    .pos_off = offsetof(struct td_conf_sink, pos),
};

static int sources_fn(struct td_conf_loader *ld, const struct td_ynode *val, void *base)
{
    return named_map_fn(ld, &source_map, val, base);
}

static int sinks_fn(struct td_conf_loader *ld, const struct td_ynode *val, void *base)
{
    return named_map_fn(ld, &sink_map, val, base);
}

static void load_trigger(struct td_conf_loader *ld, const struct td_ynode *node, size_t index)
{
    struct td_config *cfg = ld->cfg;
    const struct td_ynode *name = td_conf_map_get(node, "name");
    char owner[320];

    if (node->kind != TD_YMAP) {
        ERR_AT(ld, node, "trigger #%zu must be a mapping (got %s)", index + 1,
               td_conf_kind_name(node));
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
    trg->pos = td_conf_pos(ld, node);
    ld->owner = owner;
    ld->owner_table = &td_conf_trigger_table;
    td_conf_walk(ld, &td_conf_trigger_table, node, trg);
    ld->owner = NULL;
    if (!trg->name) {
        return;
    }
    if (!td_conf_valid_name(trg->name)) {
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

static int triggers_fn(struct td_conf_loader *ld, const struct td_ynode *val, void *base)
{
    if (val->kind != TD_YSEQ) {
        ERR_AT(ld, val, "triggers must be a list (got %s)", td_conf_kind_name(val));
        return -1;
    }
    for (size_t i = 0; i < val->n; i++) {
        load_trigger(ld, val->items[i], i);
    }
    return 0;
}

/* ---- the top level (base: struct td_config) ---- */
static const struct td_conf_key top_keys[] = {
    {.name = "version", .type = TD_K_CUSTOM, .fn = version_fn, .required = true},
    CUSTOM("daemon", daemon_fn),
    CUSTOM("sources", sources_fn),
    CUSTOM("sinks", sinks_fn),
    CUSTOM("triggers", triggers_fn),
};
static const struct td_conf_table top_table = {TABLE("the top level", top_keys)};

/* ------------------------------------------------------------------------------------------
 * Files and directories
 * ---------------------------------------------------------------------------------------- */

/* Reads PATH whole. Returns a malloc'd buffer (the caller frees) or NULL after reporting. */
static char *read_file(struct td_conf_loader *ld, const char *path, size_t *len)
{
    struct td_pos pos = {path, 0, 0};
    struct td_conf_buf b = {0};
    char chunk[8192];
    size_t got;
    FILE *fp = fopen(path, "rb");

    if (!fp) {
        td_conf_errorf(ld, &pos, "cannot open: %s", strerror(errno));
        goto fail;
    }
    if (td_conf_buf_add(&b, "", 0) < 0) {
        td_conf_errorf(ld, &pos, "out of memory");
        goto fail;
    }
    while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (b.n + got > MAX_FILE_SIZE) {
            td_conf_errorf(ld, &pos, "file is larger than 16 MiB");
            goto fail;
        }
        if (td_conf_buf_add(&b, chunk, got) < 0) {
            td_conf_errorf(ld, &pos, "out of memory");
            goto fail;
        }
    }
    if (ferror(fp)) {
        td_conf_errorf(ld, &pos, "cannot read: %s", strerror(errno));
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

static void load_file(struct td_conf_loader *ld, const char *path)
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
        td_conf_errorf(ld, &at, "out of memory");
        goto fail;
    }
    ld->file = files[cfg->nfiles++];
    buf = read_file(ld, ld->file, &len);
    if (!buf) {
        goto fail;
    }
    if (td_yaml_parse(buf, len, &root, &yerr) < 0) {
        struct td_pos pos = {ld->file, yerr.line, yerr.col};
        td_conf_errorf(ld, &pos, "%s", yerr.msg);
        goto fail;
    }
    if (!root) {
        struct td_pos pos = {ld->file, 1, 1};
        td_conf_errorf(ld, &pos, "the file is empty (it needs at least 'version: 1')");
        goto fail;
    }
    if (root->kind != TD_YMAP) {
        ERR_AT(ld, root, "the top level must be a mapping (got %s)", td_conf_kind_name(root));
        goto fail;
    }
    td_conf_walk(ld, &top_table, root, cfg);
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

static void load_dir(struct td_conf_loader *ld, const char *dir)
{
    struct td_pos pos = {dir, 0, 0};
    struct dirent **entries = NULL;
    size_t loaded = 0;
    int n = scandir(dir, &entries, yaml_entry, by_name);

    if (n < 0) {
        td_conf_errorf(ld, &pos, "cannot read directory: %s", strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        size_t size = strlen(dir) + strlen(entries[i]->d_name) + 2;
        char *path = malloc(size);
        struct stat st;
        if (!path) {
            td_conf_errorf(ld, &pos, "out of memory");
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
        td_conf_errorf(ld, &pos, "no *.yaml or *.yml files in the directory");
    }
}

/* Shows a reference value in a message: 'name', or "value from ${X}" if it was a secret. */
static const char *shown_ref(const struct td_conf_loader *ld, const char *value,
                             const struct td_pos *pos, char *buf, size_t len)
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

static void resolve_references(struct td_conf_loader *ld)
{
    const struct td_config *cfg = ld->cfg;
    char buf[128];

    for (size_t i = 0; i < cfg->ntriggers; i++) {
        const struct td_conf_trigger *trg = &cfg->triggers[i];
        const struct td_conf_delivery *dlv = &trg->delivery;
        if (trg->source && !td_config_source(cfg, trg->source)) {
            td_conf_errorf(ld, &trg->source_pos, "unknown source %s",
                           shown_ref(ld, trg->source, &trg->source_pos, buf, sizeof(buf)));
        }
        if (trg->sink && !td_config_sink(cfg, trg->sink)) {
            td_conf_errorf(ld, &trg->sink_pos, "unknown sink %s",
                           shown_ref(ld, trg->sink, &trg->sink_pos, buf, sizeof(buf)));
        }
        if (trg->reply && !td_config_sink(cfg, trg->reply)) {
            td_conf_errorf(ld, &trg->reply_pos, "unknown sink %s",
                           shown_ref(ld, trg->reply, &trg->reply_pos, buf, sizeof(buf)));
        }
        if (dlv->dead_letter && strcmp(dlv->dead_letter, "native") == 0) {
            /* The broker's own dead-lettering (RabbitMQ: basic.nack requeue=false). */
            const struct td_conf_source *src = td_config_source(cfg, trg->source);
            if (src && src->kind != TD_SOURCE_RABBITMQ) {
                td_conf_errorf(ld, &dlv->dead_letter_pos,
                               "dead_letter: native needs a rabbitmq source ('%s' is not one)",
                               trg->source);
            }
        } else if (dlv->dead_letter && !td_config_sink(cfg, dlv->dead_letter)) {
            td_conf_errorf(
                ld, &dlv->dead_letter_pos, "unknown sink %s",
                shown_ref(ld, dlv->dead_letter, &dlv->dead_letter_pos, buf, sizeof(buf)));
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * Public API
 * ---------------------------------------------------------------------------------------- */

struct td_config *td_config_load(const char *path, struct td_errors *errs)
{
    struct td_conf_loader *ld = calloc(1, sizeof(*ld));
    struct td_config *cfg = calloc(1, sizeof(*cfg));
    struct td_pos pos = {path, 0, 0};
    struct stat st;

    if (!ld || !cfg) {
        td_errors_add(errs, &pos, "out of memory");
        goto fail;
    }
    ld->cfg = cfg;
    ld->errs = errs;
    /* daemon: may be absent, or in any one file of a directory: its defaults come first. */
    td_conf_defaults(ld, &td_conf_daemon_table, &cfg->daemon);
    if (stat(path, &st) < 0) {
        td_conf_errorf(ld, &pos, "cannot open: %s", strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        load_dir(ld, path);
    } else {
        load_file(ld, path);
    }
    resolve_references(ld);
    td_conf_check_batch(ld);
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
    td_conf_free_table(&td_conf_daemon_table, &cfg->daemon);
    for (size_t i = 0; i < cfg->nsources; i++) {
        free(cfg->sources[i].name);
        td_conf_free_table(&td_conf_source_table, &cfg->sources[i]);
    }
    free(cfg->sources);
    for (size_t i = 0; i < cfg->nsinks; i++) {
        free(cfg->sinks[i].name);
        td_conf_free_table(&td_conf_sink_table, &cfg->sinks[i]);
    }
    free(cfg->sinks);
    for (size_t i = 0; i < cfg->ntriggers; i++) {
        td_filter_free(cfg->triggers[i].filter);
        td_conf_free_table(&td_conf_trigger_table, &cfg->triggers[i]);
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
