/* test_config_schema.c - the key tables of broker/config/ (conf_keys_*.c) are the authority on
 * the trigger-file format; schemas/triggerd.schema.json and conf/triggerd.yaml must say the same.
 *
 * - Schema: walking the tables and the schema side by side (from $defs daemon, source, sink,
 *   trigger; through $ref and oneOf/anyOf/allOf), every key of a table is a property of the
 *   matching schema object and every property is a key; a key with a default (dflt) has a
 *   "default" with the same text (a number as its decimal form, a boolean as true/false), and a
 *   key without one has none.
 * - conf/triggerd.yaml, the documented example of the whole format: every key of every table is
 *   written somewhere in it, in a mapping of the table's kind.
 * (That every default converts, and lands where it should, is test_config's test_table_defaults.)
 *
 * Needs TD_SOURCE_DIR (CTest sets it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "config_internal.h"
#include "yaml_tree.h"

static char *slurp(const char *rel, size_t *len)
{
    const char *root = getenv("TD_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", root ? root : ".", rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* ---- the schema ---- */

static cJSON *g_schema;
static int g_failures;
static bool g_quiet; /* a test that expects failures does not print them */

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
    va_list ap;
    g_failures++;
    if (g_quiet) {
        return;
    }
    va_start(ap, fmt);
    fprintf(stderr, "  ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static const cJSON *resolve(const cJSON *node)
{
    for (int depth = 0; node && depth < 16; depth++) {
        const cJSON *ref = cJSON_GetObjectItemCaseSensitive(node, "$ref");
        if (!cJSON_IsString(ref) || strncmp(ref->valuestring, "#/$defs/", 8) != 0) {
            return node;
        }
        node = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g_schema, "$defs"),
                                                ref->valuestring + 8);
    }
    return node;
}

/* The property NAME of the object NODE describes (also inside oneOf/anyOf/allOf), or NULL. */
static const cJSON *property(const cJSON *node, const char *name)
{
    node = resolve(node);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(node, "properties"), name);
    if (p) {
        return p;
    }
    static const char *const combs[] = {"oneOf", "anyOf", "allOf"};
    for (size_t c = 0; c < 3; c++) {
        const cJSON *sub;
        cJSON_ArrayForEach(sub, cJSON_GetObjectItemCaseSensitive(node, combs[c]))
        {
            if ((p = property(sub, name))) {
                return p;
            }
        }
    }
    return NULL;
}

/* Calls FN for every property name of the object NODE describes. */
static void each_property(const cJSON *node, void (*fn)(const char *name, void *arg), void *arg)
{
    node = resolve(node);
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(node, "properties"))
    {
        fn(p->string, arg);
    }
    static const char *const combs[] = {"oneOf", "anyOf", "allOf"};
    for (size_t c = 0; c < 3; c++) {
        const cJSON *sub;
        cJSON_ArrayForEach(sub, cJSON_GetObjectItemCaseSensitive(node, combs[c]))
        {
            each_property(sub, fn, arg);
        }
    }
}

static size_t nkinds(const struct td_conf_table *t)
{
    size_t n = 0;
    while (t->kind && t->kind(n)) {
        n++;
    }
    return n;
}

struct reverse {
    const struct td_conf_table *t;
    const char *path;
};

static void in_table(const char *name, void *arg)
{
    const struct reverse *r = arg;
    for (size_t i = 0; i < r->t->nkeys; i++) {
        if (strcmp(r->t->keys[i].name, name) == 0) {
            return;
        }
    }
    for (size_t i = 0; i < nkinds(r->t); i++) {
        if (strcmp(r->t->kind(i)->name, name) == 0) {
            return;
        }
    }
    report("%s.%s: in the schema, not in the table", r->path, name);
}

/* The default's text as a table writes it, or NULL when the property has none. */
static const char *schema_default(const cJSON *prop, char *buf, size_t len)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(prop, "default");
    if (!d) {
        return NULL;
    }
    if (cJSON_IsString(d)) {
        return d->valuestring;
    }
    if (cJSON_IsBool(d)) {
        return cJSON_IsTrue(d) ? "true" : "false";
    }
    if (cJSON_IsNumber(d)) {
        snprintf(buf, len, "%lld", (long long)d->valuedouble);
        return buf;
    }
    return "(not a scalar)";
}

static void compare(const struct td_conf_table *t, const cJSON *node, const char *path)
{
    char sub[256];
    char buf[64];

    if (!resolve(node)) {
        report("%s: no such object in the schema", path);
        return;
    }
    for (size_t i = 0; i < t->nkeys; i++) {
        const struct td_conf_key *d = &t->keys[i];
        const cJSON *prop = property(node, d->name);
        snprintf(sub, sizeof(sub), "%s.%s", path, d->name);
        if (!prop) {
            report("%s: in the table, not in the schema", sub);
            continue;
        }
        const char *have = schema_default(prop, buf, sizeof(buf));
        if (d->dflt && (!have || strcmp(have, d->dflt) != 0)) {
            report("%s: the table's default is %s, the schema's %s", sub, d->dflt,
                   have ? have : "missing");
        } else if (!d->dflt && have) {
            report("%s: the schema says default %s, the table has none%s", sub, have,
                   d->dflt_fn ? " (it is computed: describe it instead)" : "");
        }
        if (d->type == TD_K_NESTED) {
            compare(d->sub, prop, sub);
        }
    }
    for (size_t i = 0; i < nkinds(t); i++) {
        const struct td_conf_kind *k = t->kind(i);
        const cJSON *prop = property(node, k->name);
        snprintf(sub, sizeof(sub), "%s.%s", path, k->name);
        if (!prop) {
            report("%s: a kind in the table, not in the schema", sub);
            continue;
        }
        compare(k->table, prop, sub);
    }
    struct reverse r = {t, path};
    each_property(node, in_table, &r);
}

static const cJSON *def(const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g_schema, "$defs"),
                                            name);
}

static void test_schema_matches_tables(void **state)
{
    size_t len;
    char *text = slurp("schemas/triggerd.schema.json", &len);
    g_schema = cJSON_Parse(text);
    free(text);
    assert_non_null(g_schema);
    g_failures = 0;
    compare(&td_conf_daemon_table, def("daemon"), "daemon");
    compare(&td_conf_source_table, def("source"), "sources.NAME");
    compare(&td_conf_sink_table, def("sink"), "sinks.NAME");
    compare(&td_conf_trigger_table, def("trigger"), "triggers[]");
    cJSON_Delete(g_schema);
    g_schema = NULL;
    assert_int_equal(g_failures, 0);
}

/* The walker's own check, made to fail: a table key missing from a schema object is found. */
static void test_schema_compare_can_fail(void **state)
{
    g_schema = cJSON_Parse("{\"$defs\": {\"d\": {\"properties\": {\"log\": {}}}}}");
    assert_non_null(g_schema);
    g_failures = 0;
    g_quiet = true;
    compare(&td_conf_daemon_table, def("d"), "daemon");
    g_quiet = false;
    cJSON_Delete(g_schema);
    g_schema = NULL;
    assert_true(g_failures > 0);
    g_failures = 0;
}

/* ---- conf/triggerd.yaml ---- */

#define MAX_SEEN 1024
static const struct td_conf_key *g_seen[MAX_SEEN];
static size_t g_nseen;

static void seen(const struct td_conf_key *d)
{
    for (size_t i = 0; i < g_nseen; i++) {
        if (g_seen[i] == d) {
            return;
        }
    }
    assert_true(g_nseen < MAX_SEEN);
    g_seen[g_nseen++] = d;
}

/* Marks the keys of T that MAP writes, recursively. */
static void mark(const struct td_conf_table *t, const struct td_ynode *map)
{
    if (!map || map->kind != TD_YMAP) {
        return;
    }
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const char *name = map->items[i]->value;
        for (size_t j = 0; j < t->nkeys; j++) {
            if (strcmp(t->keys[j].name, name) == 0) {
                seen(&t->keys[j]);
                if (t->keys[j].type == TD_K_NESTED) {
                    mark(t->keys[j].sub, map->items[i + 1]);
                }
            }
        }
        for (size_t j = 0; j < nkinds(t); j++) {
            if (strcmp(t->kind(j)->name, name) == 0) {
                mark(t->kind(j)->table, map->items[i + 1]);
            }
        }
    }
}

static const struct td_ynode *get(const struct td_ynode *map, const char *key)
{
    for (size_t i = 0; map && map->kind == TD_YMAP && i + 1 < map->n; i += 2) {
        if (strcmp(map->items[i]->value, key) == 0) {
            return map->items[i + 1];
        }
    }
    return NULL;
}

static void unseen(const struct td_conf_table *t, const char *path)
{
    char sub[256];
    for (size_t i = 0; i < t->nkeys; i++) {
        const struct td_conf_key *d = &t->keys[i];
        bool found = false;
        for (size_t j = 0; j < g_nseen; j++) {
            found = found || g_seen[j] == d;
        }
        snprintf(sub, sizeof(sub), "%s.%s", path, d->name);
        if (!found) {
            report("%s: not written anywhere in conf/triggerd.yaml", sub);
        }
        if (d->type == TD_K_NESTED) {
            unseen(d->sub, sub);
        }
    }
    for (size_t i = 0; i < nkinds(t); i++) {
        snprintf(sub, sizeof(sub), "%s.%s", path, t->kind(i)->name);
        unseen(t->kind(i)->table, sub);
    }
}

static void test_conf_shows_every_key(void **state)
{
    size_t len;
    char *text = slurp("conf/triggerd.yaml", &len);
    struct td_ynode *root = NULL;
    struct td_yaml_error yerr;
    assert_int_equal(td_yaml_parse(text, len, &root, &yerr), 0);
    g_nseen = 0;
    g_failures = 0;
    mark(&td_conf_daemon_table, get(root, "daemon"));
    const struct td_ynode *m = get(root, "sources");
    for (size_t i = 0; m && i + 1 < m->n; i += 2) {
        mark(&td_conf_source_table, m->items[i + 1]);
    }
    m = get(root, "sinks");
    for (size_t i = 0; m && i + 1 < m->n; i += 2) {
        mark(&td_conf_sink_table, m->items[i + 1]);
    }
    m = get(root, "triggers");
    for (size_t i = 0; m && m->kind == TD_YSEQ && i < m->n; i++) {
        mark(&td_conf_trigger_table, m->items[i]);
    }
    unseen(&td_conf_daemon_table, "daemon");
    unseen(&td_conf_source_table, "sources.NAME");
    unseen(&td_conf_sink_table, "sinks.NAME");
    unseen(&td_conf_trigger_table, "triggers[]");
    td_ynode_free(root);
    free(text);
    assert_int_equal(g_failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_matches_tables),
        cmocka_unit_test(test_schema_compare_can_fail),
        cmocka_unit_test(test_conf_shows_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
