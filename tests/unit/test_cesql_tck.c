/* test_cesql_tck.c - runs the CloudEvents SQL test compatibility kit published by the
 * CloudEvents project against cesql.h.
 *
 * Why: the project's own vectors are in test_cesql.c; this checks us against cases nobody on
 * this team wrote. It reads every $TD_SOURCE_DIR/../shared/conformance/cesql_tck/ *.yaml
 * (libyaml), and for each case compiles `expression`, evaluates it against `event` (or a
 * full default event with `eventOverrides` applied) and compares the error kind (`error`)
 * and the value (`result`, typed by YAML: plain true/false is a boolean, a plain integer is
 * an integer, anything else a string). Expecting an error, a compile failure of that kind
 * passes whatever `result` says (there is no value to compare).
 *
 * Prints the name of every failure and "N passed, M failed"; exits 1 when something failed,
 * 77 (skipped) when the folder is absent.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "cesql.h"
#include "cloudevent.h"

static int passed, failed;

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE) {
        return NULL;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0) {
            return yaml_document_get_node(doc, p->value);
        }
    }
    return NULL;
}

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* The YAML type of a scalar, as the TCK means it. */
static enum td_cesql_type scalar_type(yaml_node_t *n)
{
    const char *s = scalar(n);
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return TD_CESQL_STRING;
    }
    if (strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0) {
        return TD_CESQL_BOOLEAN;
    }
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
    if (*d == '\0') {
        return TD_CESQL_STRING;
    }
    for (; *d; d++) {
        if (*d < '0' || *d > '9') {
            return TD_CESQL_STRING;
        }
    }
    return TD_CESQL_INTEGER;
}

static int set_attr(struct td_event *ev, yaml_node_t *k, yaml_node_t *v)
{
    enum td_cesql_type t = scalar_type(v);
    enum td_ce_vtype ct = t == TD_CESQL_BOOLEAN   ? TD_CE_BOOLEAN
                          : t == TD_CESQL_INTEGER ? TD_CE_INTEGER
                                                  : TD_CE_STRING;
    const char *val = scalar(v);
    char lower[8];
    if (t == TD_CESQL_BOOLEAN) {
        snprintf(lower, sizeof(lower), "%s", strcasecmp(val, "true") == 0 ? "true" : "false");
        val = lower;
    }
    return td_event_set_typed(ev, scalar(k), val, ct);
}

/* The event of a case: `event` as given, else a full event with `eventOverrides` applied. */
static struct td_event *case_event(yaml_document_t *doc, yaml_node_t *tc)
{
    struct td_event *ev = td_event_new();
    yaml_node_t *given = map_get(doc, tc, "event");
    yaml_node_t *over = map_get(doc, tc, "eventOverrides");
    if (!ev) {
        return NULL;
    }
    if (!given) {
        static const char *const full[][2] = {{"specversion", "1.0"},
                                              {"id", "full-event"},
                                              {"source", "http://example.com/source"},
                                              {"type", "com.example.FullEvent"},
                                              {"subject", "topic"},
                                              {"time", "2020-03-21T12:34:56.780Z"},
                                              {"dataschema", "http://example.com/schema"},
                                              {"datacontenttype", "text/json"},
                                              {"exstring", "exstring"},
                                              {"exurl", "http://example.com/source"}};
        for (size_t i = 0; i < sizeof(full) / sizeof(full[0]); i++) {
            td_event_set(ev, full[i][0], full[i][1]);
        }
        td_event_set_typed(ev, "exbool", "true", TD_CE_BOOLEAN);
        td_event_set_typed(ev, "exint", "42", TD_CE_INTEGER);
    }
    for (int pass = 0; pass < 2; pass++) {
        yaml_node_t *map = pass == 0 ? given : over;
        if (!map || map->type != YAML_MAPPING_NODE) {
            continue;
        }
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            yaml_node_t *v = yaml_document_get_node(doc, p->value);
            if (scalar(k) && scalar(v) && set_attr(ev, k, v) < 0) {
                td_event_unref(ev);
                return NULL;
            }
        }
    }
    return ev;
}

static void describe(const struct td_cesql_value *v, enum td_cesql_errkind kind, char *out,
                     size_t len)
{
    if (v->type == TD_CESQL_BOOLEAN) {
        snprintf(out, len, "boolean %s", v->b ? "true" : "false");
    } else if (v->type == TD_CESQL_INTEGER) {
        snprintf(out, len, "integer %d", (int)v->i);
    } else {
        snprintf(out, len, "string '%s'", v->s);
    }
    if (kind != TD_CESQL_OK) {
        size_t at = strlen(out);
        snprintf(out + at, len - at, ", error %s", td_cesql_errkind_name(kind));
    }
}

static bool value_is(const struct td_cesql_value *v, yaml_node_t *want)
{
    enum td_cesql_type t = scalar_type(want);
    const char *s = scalar(want);
    if (v->type != t) {
        return false;
    }
    if (t == TD_CESQL_BOOLEAN) {
        return v->b == (strcasecmp(s, "true") == 0);
    }
    if (t == TD_CESQL_INTEGER) {
        return v->i == (int32_t)strtol(s, NULL, 10);
    }
    return strcmp(v->s, s) == 0;
}

static void run_case(const char *file, yaml_document_t *doc, yaml_node_t *tc)
{
    const char *name = scalar(map_get(doc, tc, "name"));
    const char *expr = scalar(map_get(doc, tc, "expression"));
    const char *want_err = scalar(map_get(doc, tc, "error"));
    yaml_node_t *want = map_get(doc, tc, "result");
    char got[512] = "";
    bool ok = false;
    struct td_cesql_error err;
    struct td_cesql *q = td_cesql_compile(expr, &err);
    if (!q) {
        ok = want_err && strcmp(want_err, td_cesql_errkind_name(err.kind)) == 0;
        snprintf(got, sizeof(got), "compile error %s: column %d: %s",
                 td_cesql_errkind_name(err.kind), err.column, err.message);
    } else {
        struct td_event *ev = case_event(doc, tc);
        struct td_cesql_value v;
        enum td_cesql_errkind kind = td_cesql_eval(q, ev, &v, &err);
        describe(&v, kind, got, sizeof(got));
        if (kind != TD_CESQL_OK) {
            size_t at = strlen(got);
            snprintf(got + at, sizeof(got) - at, " (%s)", err.message);
        }
        ok = want_err ? strcmp(want_err, td_cesql_errkind_name(kind)) == 0 : kind == TD_CESQL_OK;
        if (want && scalar(want)) {
            ok = ok && value_is(&v, want);
        }
        td_cesql_value_clear(&v);
        td_event_unref(ev);
        td_cesql_free(q);
    }
    if (ok) {
        passed++;
        return;
    }
    failed++;
    printf("FAIL %s: %s: %s\n    want: %s%s%s, got: %s\n", file, name ? name : "?",
           expr ? expr : "?", want && scalar(want) ? scalar(want) : "(no result)",
           want_err ? ", error " : "", want_err ? want_err : "", got);
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!f) {
        printf("FAIL %s: cannot open\n", path);
        failed++;
        return -1;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        printf("FAIL %s: YAML error: %s\n", path, parser.problem ? parser.problem : "?");
        failed++;
        yaml_parser_delete(&parser);
        fclose(f);
        return -1;
    }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_node_t *tests = map_get(&doc, root, "tests");
    if (tests && tests->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = tests->data.sequence.items.start;
             it < tests->data.sequence.items.top; it++) {
            run_case(base, &doc, yaml_document_get_node(&doc, *it));
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return 0;
}

int main(void)
{
    const char *src = getenv("TD_SOURCE_DIR");
    char pattern[4096];
    glob_t g;
    snprintf(pattern, sizeof(pattern), "%s/../shared/conformance/cesql_tck/*.yaml",
             src ? src : ".");
    if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        printf("CESQL TCK not found (%s): skipped\n", pattern);
        return 77;
    }
    for (size_t i = 0; i < g.gl_pathc; i++) {
        run_file(g.gl_pathv[i]);
    }
    globfree(&g);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
