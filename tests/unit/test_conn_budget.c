/* test_conn_budget.c - td_conn_budget (broker/app/conn_budget.c): the connections the HTTP
 * client's cache reserves for a configuration are the concurrency of every trigger use of a sink
 * that speaks HTTP (sink, dead_letter, reply), plus one per such sink; queue and file targets
 * count nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "conn_budget.h"

static char g_dir[64];

static struct td_config *load(const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/t.yaml", g_dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
    struct td_errors errs = {0};
    struct td_config *cfg = td_config_load(path, &errs);
    if (!cfg) {
        fail_msg("%s", errs.n ? errs.msgs[0] : "no config");
    }
    td_errors_clear(&errs);
    return cfg;
}

static void test_budget(void **state)
{
    (void)state;
    struct td_config *cfg =
        load("version: 1\n"
             "sources: {s: {redis: {url: 'redis://localhost', stream: st}}}\n"
             "sinks:\n"
             "  a: {http: {url: 'http://a/'}}\n"
             "  b: {http: {url: 'http://b/'}}\n"
             "  lam: {lambda: {function: f, region: eu-west-1}}\n"
             "  q: {redis: {url: 'redis://localhost', stream: dead}}\n"
             "  f: {file: {path: /tmp/td-dead.jsonl}}\n"
             "triggers:\n"
             "  - {name: t1, source: s, sink: a, delivery: {concurrency: 10, dead_letter: b}}\n"
             "  - {name: t2, source: s, sink: q, delivery: {concurrency: 7, dead_letter: f}}\n"
             "  - {name: t3, source: s, sink: b, reply: a, delivery: {concurrency: 3}}\n"
             "  - {name: t4, source: s, sink: lam, delivery: {concurrency: 2}}\n");
    /* t1: 10 + 10, t2: 0, t3: 3 + 3, t4: 2; sinks a, b, lam: 3 */
    assert_int_equal(td_conn_budget(cfg), 31);
    td_config_free(cfg);
}

static void test_default_concurrency(void **state)
{
    (void)state;
    struct td_config *cfg = load("version: 1\n"
                                 "sources: {s: {redis: {url: 'redis://localhost', stream: st}}}\n"
                                 "sinks: {a: {http: {url: 'http://a/'}}}\n"
                                 "triggers: [{name: t, source: s, sink: a}]\n");
    /* the default concurrency (64), plus the sink's one */
    assert_int_equal(td_conn_budget(cfg), 65);
    td_config_free(cfg);
}

int main(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/td-budget-XXXXXX");
    if (!mkdtemp(g_dir)) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_default_concurrency),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/t.yaml", g_dir);
    unlink(path);
    rmdir(g_dir);
    return rc;
}
