/* test_batch.c - unit tests for reading a batch's partial failures (batch.h,
 * td_batch_parse_failures): the AWS Lambda batchItemFailures shape marks exactly the members it
 * names (every member with a repeated id); an answer that says nothing about single events is
 * success; a malformed list or an unknown id fails the whole batch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "batch.h"

static const char *const ids[] = {"a", "b", "c", "b"};
#define N 4

static int parse(const char *body, bool *failed, char *why)
{
    memset(failed, 0, N * sizeof(*failed));
    why[0] = '\0';
    return td_batch_parse_failures((const unsigned char *)body, strlen(body), ids, N, failed, why,
                                   120);
}

static void test_named(void **state)
{
    (void)state;
    bool f[N];
    char why[120];
    assert_int_equal(parse(" {\"batchItemFailures\": [{\"itemIdentifier\": \"b\"}]}", f, why), 1);
    assert_false(f[0]);
    assert_true(f[1]);
    assert_false(f[2]);
    assert_true(f[3]); /* the same id twice in a batch: both */
    assert_int_equal(parse("{\"batchItemFailures\": [{\"itemIdentifier\": \"a\"}, "
                           "{\"itemIdentifier\": \"c\", \"x\": 1}], \"other\": true}",
                           f, why),
                     1);
    assert_true(f[0] && f[2] && !f[1] && !f[3]);
}

static void test_success(void **state)
{
    (void)state;
    bool f[N];
    char why[120];
    const char *ok[] = {"",
                        "ok",
                        "[1,2]",
                        "null",
                        "{}",
                        "{\"batchItemFailures\": []}",
                        "{\"batchItemFailures\": null}",
                        "{\"statusCode\": 200}",
                        "  \n"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(parse(ok[i], f, why), 0);
        for (int m = 0; m < N; m++) {
            assert_false(f[m]);
        }
    }
}

static void test_whole_batch_fails(void **state)
{
    (void)state;
    bool f[N];
    char why[120];
    const char *bad[] = {
        "{\"batchItemFailures\": [{\"itemIdentifier\": \"zz\"}]}", /* not in the batch */
        "{\"batchItemFailures\": [{\"itemIdentifier\": \"\"}]}",   /* empty */
        "{\"batchItemFailures\": [{\"itemIdentifier\": null}]}",   /* null */
        "{\"batchItemFailures\": [{\"itemIdentifier\": 3}]}",      /* not a string */
        "{\"batchItemFailures\": [{\"id\": \"a\"}]}",              /* wrong key */
        "{\"batchItemFailures\": [\"a\"]}",                        /* not an object */
        "{\"batchItemFailures\": {\"itemIdentifier\": \"a\"}}",    /* not an array */
        "{\"batchItemFailures\": [{\"itemIdentifier\": \"a\"}",    /* cut */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i], f, why), -1);
        assert_true(why[0] != '\0');
    }
    parse(bad[0], f, why);
    assert_non_null(strstr(why, "zz"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named),
        cmocka_unit_test(test_success),
        cmocka_unit_test(test_whole_batch_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
