/* test_sink.c - unit tests for what every sink shares (sink.h): the HTTP classification with
 * and without a retry_on list, and the attempt bookkeeping (td_attempt_done copies the
 * outcome and the body up to TD_ATTEMPT_BODY_MAX and calls done exactly once;
 * td_attempt_reset frees it again).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sink.h"

/* ---- td_classify_http ---- */

static void test_classify_2xx_ok(void **state)
{
    const int ok[] = {200, 201, 202, 204, 226, 299};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(td_classify_http(ok[i], NULL, 0), TD_RESULT_OK);
    }
}

static void test_classify_retryable(void **state)
{
    const int retry[] = {0, 100, 199, 408, 429, 500, 501, 502, 503, 504, 599};

    for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++) {
        assert_int_equal(td_classify_http(retry[i], NULL, 0), TD_RESULT_RETRY);
    }
}

static void test_classify_final_4xx(void **state)
{
    const int final[] = {400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 428, 431, 451, 499};

    for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++) {
        assert_int_equal(td_classify_http(final[i], NULL, 0), TD_RESULT_FINAL);
    }
}

static void test_classify_every_status(void **state)
{
    for (int s = 0; s < 1000; s++) {
        enum td_result r = td_classify_http(s, NULL, 0);
        if (s >= 200 && s < 300) {
            assert_int_equal(r, TD_RESULT_OK);
        } else if (s < 200 || s == 408 || s == 429 || s >= 500) {
            assert_int_equal(r, TD_RESULT_RETRY);
        } else if (s >= 400) {
            assert_int_equal(r, TD_RESULT_FINAL);
        }
    }
}

static void test_classify_retry_on_overrides(void **state)
{
    const int list[] = {404, 503};

    /* exactly those statuses retry */
    assert_int_equal(td_classify_http(404, list, 2), TD_RESULT_RETRY);
    assert_int_equal(td_classify_http(503, list, 2), TD_RESULT_RETRY);
    /* everything else that is not 2xx is final, the default retryable ones included */
    assert_int_equal(td_classify_http(500, list, 2), TD_RESULT_FINAL);
    assert_int_equal(td_classify_http(502, list, 2), TD_RESULT_FINAL);
    assert_int_equal(td_classify_http(429, list, 2), TD_RESULT_FINAL);
    assert_int_equal(td_classify_http(408, list, 2), TD_RESULT_FINAL);
    assert_int_equal(td_classify_http(400, list, 2), TD_RESULT_FINAL);
    /* 2xx stays OK even when listed or not */
    assert_int_equal(td_classify_http(200, list, 2), TD_RESULT_OK);
    const int odd[] = {204};
    assert_int_equal(td_classify_http(204, odd, 1), TD_RESULT_OK);
    /* only the first n entries count */
    assert_int_equal(td_classify_http(503, list, 1), TD_RESULT_FINAL);
    /* an empty list is no list */
    assert_int_equal(td_classify_http(503, list, 0), TD_RESULT_RETRY);
    assert_int_equal(td_classify_http(404, list, 0), TD_RESULT_FINAL);
}

/* ---- td_attempt_done / td_attempt_reset ---- */

static int done_calls;
static struct td_attempt *done_seen;
static enum td_result done_result;

static void on_done(struct td_attempt *a)
{
    done_calls++;
    done_seen = a;
    done_result = a->result; /* the outcome is recorded before done runs */
}

static void fresh_attempt(struct td_attempt *a)
{
    memset(a, 0, sizeof(*a));
    a->done = on_done;
    a->retry_after_ms = -1;
    done_calls = 0;
    done_seen = NULL;
}

static void test_attempt_done_records(void **state)
{
    struct td_attempt a;
    int owner = 7;

    fresh_attempt(&a);
    a.owner = &owner;
    a.sink_state = &owner;
    td_attempt_done(&a, TD_RESULT_RETRY, 503, 2500, "HTTP 503", "busy", 4);
    assert_int_equal(done_calls, 1);
    assert_ptr_equal(done_seen, &a);
    assert_int_equal(done_result, TD_RESULT_RETRY);
    assert_int_equal(a.result, TD_RESULT_RETRY);
    assert_int_equal(a.http_status, 503);
    assert_int_equal(a.retry_after_ms, 2500);
    assert_string_equal(a.reason, "HTTP 503");
    assert_int_equal(a.body_len, 4);
    assert_memory_equal(a.body, "busy", 4);
    assert_ptr_equal(a.owner, &owner);
    assert_null(a.sink_state);
    td_attempt_reset(&a);
}

static void test_attempt_done_copies_body(void **state)
{
    struct td_attempt a;
    char body[] = "original";

    fresh_attempt(&a);
    td_attempt_done(&a, TD_RESULT_FINAL, 404, -1, "not found", body, strlen(body));
    body[0] = 'X'; /* the attempt has its own copy */
    assert_ptr_not_equal(a.body, body);
    assert_memory_equal(a.body, "original", 8);
    td_attempt_reset(&a);
}

static void test_attempt_done_body_cap(void **state)
{
    struct td_attempt a;
    size_t big = TD_ATTEMPT_BODY_MAX + 1000;
    unsigned char *body = malloc(big);

    assert_non_null(body);
    for (size_t i = 0; i < big; i++) {
        body[i] = (unsigned char)(i * 31);
    }
    fresh_attempt(&a);
    td_attempt_done(&a, TD_RESULT_FINAL, 413, -1, "too large", body, big);
    assert_int_equal(a.body_len, TD_ATTEMPT_BODY_MAX);
    assert_memory_equal(a.body, body, TD_ATTEMPT_BODY_MAX);
    td_attempt_reset(&a);

    /* exactly the cap is kept whole */
    fresh_attempt(&a);
    td_attempt_done(&a, TD_RESULT_FINAL, 413, -1, "r", body, TD_ATTEMPT_BODY_MAX);
    assert_int_equal(a.body_len, TD_ATTEMPT_BODY_MAX);
    td_attempt_reset(&a);
    free(body);
}

static void test_attempt_done_no_body(void **state)
{
    struct td_attempt a;

    fresh_attempt(&a);
    td_attempt_done(&a, TD_RESULT_OK, 204, -1, "HTTP 204", NULL, 0);
    assert_int_equal(done_calls, 1);
    assert_null(a.body);
    assert_int_equal(a.body_len, 0);
    assert_int_equal(a.retry_after_ms, -1);
    /* a non-NULL body of length 0 is no body either */
    td_attempt_done(&a, TD_RESULT_OK, 200, -1, NULL, "x", 0);
    assert_int_equal(done_calls, 2);
    assert_null(a.body);
    assert_string_equal(a.reason, "");
    td_attempt_reset(&a);
}

static void test_attempt_done_reason_truncated(void **state)
{
    struct td_attempt a;
    char reason[1000];

    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    fresh_attempt(&a);
    td_attempt_done(&a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
    assert_int_equal(strlen(a.reason), sizeof(a.reason) - 1);
    assert_int_equal(a.reason[0], 'r');
    td_attempt_reset(&a);
}

static void test_attempt_reuse_replaces_body(void **state)
{
    struct td_attempt a;

    fresh_attempt(&a);
    td_attempt_done(&a, TD_RESULT_RETRY, 503, 10, "first", "one", 3);
    /* a second outcome on the same (reused) attempt replaces the first without leaking */
    td_attempt_done(&a, TD_RESULT_FINAL, 400, -1, "second", "second body", 11);
    assert_int_equal(done_calls, 2);
    assert_int_equal(a.http_status, 400);
    assert_int_equal(a.retry_after_ms, -1);
    assert_string_equal(a.reason, "second");
    assert_int_equal(a.body_len, 11);
    assert_memory_equal(a.body, "second body", 11);
    td_attempt_reset(&a);
}

static void test_attempt_reset(void **state)
{
    struct td_attempt a;

    fresh_attempt(&a);
    td_attempt_done(&a, TD_RESULT_RETRY, 503, 1000, "HTTP 503", "body", 4);
    td_attempt_reset(&a);
    assert_null(a.body);
    assert_int_equal(a.body_len, 0);
    assert_string_equal(a.reason, "");
    assert_int_equal(a.http_status, 0);
    assert_int_equal(a.retry_after_ms, -1);
    assert_int_equal(done_calls, 1); /* reset does not call done */
    /* reset twice and on a never-used attempt are harmless */
    td_attempt_reset(&a);
    struct td_attempt b;
    fresh_attempt(&b);
    td_attempt_reset(&b);
    assert_null(b.body);
    /* usable again after reset */
    td_attempt_done(&a, TD_RESULT_OK, 200, -1, "ok", "y", 1);
    assert_int_equal(done_calls, 1);
    assert_int_equal(a.body_len, 1);
    td_attempt_reset(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_2xx_ok),
        cmocka_unit_test(test_classify_retryable),
        cmocka_unit_test(test_classify_final_4xx),
        cmocka_unit_test(test_classify_every_status),
        cmocka_unit_test(test_classify_retry_on_overrides),
        cmocka_unit_test(test_attempt_done_records),
        cmocka_unit_test(test_attempt_done_copies_body),
        cmocka_unit_test(test_attempt_done_body_cap),
        cmocka_unit_test(test_attempt_done_no_body),
        cmocka_unit_test(test_attempt_done_reason_truncated),
        cmocka_unit_test(test_attempt_reuse_replaces_body),
        cmocka_unit_test(test_attempt_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
