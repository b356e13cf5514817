/* test_retry.c - unit tests for the backoff arithmetic (retry.h): the ceiling of each wait
 * (exponential doubling and linear growth, both capped by backoff_max, overflow-safe for huge
 * retry numbers and delays) and the jittered wait with an injected random number, including
 * Retry-After and its cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "retry.h"

static struct td_conf_delivery policy(enum td_backoff kind, int64_t delay, int64_t max)
{
    struct td_conf_delivery d;

    memset(&d, 0, sizeof(d));
    d.retry = 3;
    d.backoff = kind;
    d.backoff_delay_ms = delay;
    d.backoff_max_ms = max;
    d.retry_after_max_ms = 60000;
    return d;
}

/* ---- td_retry_ceiling_ms ---- */

static void test_exponential_doubles(void **state)
{
    struct td_conf_delivery d = policy(TD_BACKOFF_EXPONENTIAL, 200, 30000);

    assert_int_equal(td_retry_ceiling_ms(&d, 1), 200);
    assert_int_equal(td_retry_ceiling_ms(&d, 2), 400);
    assert_int_equal(td_retry_ceiling_ms(&d, 3), 800);
    assert_int_equal(td_retry_ceiling_ms(&d, 4), 1600);
    assert_int_equal(td_retry_ceiling_ms(&d, 5), 3200);
    assert_int_equal(td_retry_ceiling_ms(&d, 7), 12800);
    assert_int_equal(td_retry_ceiling_ms(&d, 8), 25600);
}

static void test_exponential_capped(void **state)
{
    struct td_conf_delivery d = policy(TD_BACKOFF_EXPONENTIAL, 200, 30000);

    /* 200 * 2^8 = 51200 > 30000 */
    assert_int_equal(td_retry_ceiling_ms(&d, 9), 30000);
    assert_int_equal(td_retry_ceiling_ms(&d, 10), 30000);
    assert_int_equal(td_retry_ceiling_ms(&d, 100), 30000);

    /* A cap that is not a power-of-two multiple of the delay. */
    d = policy(TD_BACKOFF_EXPONENTIAL, 100, 350);
    assert_int_equal(td_retry_ceiling_ms(&d, 1), 100);
    assert_int_equal(td_retry_ceiling_ms(&d, 2), 200);
    assert_int_equal(td_retry_ceiling_ms(&d, 3), 350);
    assert_int_equal(td_retry_ceiling_ms(&d, 4), 350);

    /* A cap below the first delay wins at once. */
    d = policy(TD_BACKOFF_EXPONENTIAL, 5000, 1000);
    assert_int_equal(td_retry_ceiling_ms(&d, 1), 1000);
    assert_int_equal(td_retry_ceiling_ms(&d, 3), 1000);
}

static void test_exponential_monotonic(void **state)
{
    struct td_conf_delivery d = policy(TD_BACKOFF_EXPONENTIAL, 7, 100000);
    int64_t prev = 0;

    for (int r = 1; r < 200; r++) {
        int64_t c = td_retry_ceiling_ms(&d, r);
        assert_true(c >= prev);
        assert_true(c <= 100000);
        prev = c;
    }
    assert_int_equal(prev, 100000);
}

static void test_linear(void **state)
{
    struct td_conf_delivery d = policy(TD_BACKOFF_LINEAR, 200, 1000);

    assert_int_equal(td_retry_ceiling_ms(&d, 1), 200);
    assert_int_equal(td_retry_ceiling_ms(&d, 2), 400);
    assert_int_equal(td_retry_ceiling_ms(&d, 3), 600);
    assert_int_equal(td_retry_ceiling_ms(&d, 5), 1000);
    assert_int_equal(td_retry_ceiling_ms(&d, 6), 1000);
    assert_int_equal(td_retry_ceiling_ms(&d, 1000000), 1000);
}

static void test_retry_below_one_is_first(void **state)
{
    struct td_conf_delivery d = policy(TD_BACKOFF_EXPONENTIAL, 200, 30000);

    assert_int_equal(td_retry_ceiling_ms(&d, 0), 200);
    assert_int_equal(td_retry_ceiling_ms(&d, -5), 200);
    d.backoff = TD_BACKOFF_LINEAR;
    assert_int_equal(td_retry_ceiling_ms(&d, 0), 200);
}

static void test_ceiling_overflow_safe(void **state)
{
    /* Huge retry numbers with a large cap: no wrap-around to negative. */
    struct td_conf_delivery d = policy(TD_BACKOFF_EXPONENTIAL, 200, INT64_MAX / 2);
    assert_int_equal(td_retry_ceiling_ms(&d, INT_MAX), INT64_MAX / 2);
    assert_int_equal(td_retry_ceiling_ms(&d, 64), INT64_MAX / 2);

    d = policy(TD_BACKOFF_LINEAR, INT64_MAX / 3, INT64_MAX / 2);
    assert_int_equal(td_retry_ceiling_ms(&d, 1), INT64_MAX / 3);
    assert_int_equal(td_retry_ceiling_ms(&d, 2), INT64_MAX / 2);
    assert_int_equal(td_retry_ceiling_ms(&d, INT_MAX), INT64_MAX / 2);

    /* Huge delays. */
    d = policy(TD_BACKOFF_EXPONENTIAL, INT64_MAX, 30000);
    assert_int_equal(td_retry_ceiling_ms(&d, 1), 30000);
    assert_int_equal(td_retry_ceiling_ms(&d, 50), 30000);
    d = policy(TD_BACKOFF_LINEAR, INT64_MAX, 30000);
    assert_int_equal(td_retry_ceiling_ms(&d, 3), 30000);

    /* Without a cap (backoff_max 0) the ceiling saturates and stays positive. */
    d = policy(TD_BACKOFF_EXPONENTIAL, 200, 0);
    assert_int_equal(td_retry_ceiling_ms(&d, 3), 800);
    assert_true(td_retry_ceiling_ms(&d, 100) > 0);
    assert_true(td_retry_ceiling_ms(&d, 100) >= td_retry_ceiling_ms(&d, 50));
    d = policy(TD_BACKOFF_LINEAR, INT64_MAX / 2, 0);
    assert_true(td_retry_ceiling_ms(&d, 1000) > 0);
}

static void test_zero_delay(void **state)
{
    struct td_conf_delivery d = policy(TD_BACKOFF_EXPONENTIAL, 0, 30000);

    assert_int_equal(td_retry_ceiling_ms(&d, 1), 0);
    assert_int_equal(td_retry_ceiling_ms(&d, 40), 0);
    assert_int_equal(td_retry_delay_ms(&d, 3, -1, 12345), 0);
}

/* ---- td_retry_delay_ms ---- */

static void test_full_jitter_bounds(void **state)
{
    struct td_conf_delivery d = policy(TD_BACKOFF_EXPONENTIAL, 200, 30000);

    /* rnd 0 -> no wait; rnd == ceiling -> the whole ceiling. */
    assert_int_equal(td_retry_delay_ms(&d, 1, -1, 0), 0);
    assert_int_equal(td_retry_delay_ms(&d, 1, -1, 200), 200);
    assert_int_equal(td_retry_delay_ms(&d, 3, -1, 800), 800);
    assert_int_equal(td_retry_delay_ms(&d, 20, -1, 30000), 30000);
    /* uniform: rnd is reduced modulo ceiling + 1 */
    assert_int_equal(td_retry_delay_ms(&d, 1, -1, 201), 0);
    assert_int_equal(td_retry_delay_ms(&d, 1, -1, 150), 150);
    assert_int_equal(td_retry_delay_ms(&d, 2, -1, 401 + 17), 17);
}

static void test_full_jitter_within_ceiling(void **state)
{
    struct td_conf_delivery e = policy(TD_BACKOFF_EXPONENTIAL, 100, 5000);
    struct td_conf_delivery l = policy(TD_BACKOFF_LINEAR, 100, 5000);
    uint64_t x = 0x243F6A8885A308D3ull;
    bool hit_top = false;
    bool hit_low = false;

    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int retry = 1 + i % 12;
        int64_t ce = td_retry_ceiling_ms(&e, retry);
        int64_t we = td_retry_delay_ms(&e, retry, -1, x);
        assert_true(we >= 0 && we <= ce);
        int64_t cl = td_retry_ceiling_ms(&l, retry);
        int64_t wl = td_retry_delay_ms(&l, retry, -1, x);
        assert_true(wl >= 0 && wl <= cl);
        hit_top |= retry == 1 && we >= 95;
        hit_low |= retry == 12 && we <= 250;
    }
    /* The jitter spans the whole range, not just a corner of it. */
    assert_true(hit_top);
    assert_true(hit_low);
}

static void test_extreme_random_values(void **state)
{
    struct td_conf_delivery d = policy(TD_BACKOFF_EXPONENTIAL, 200, 30000);
    const uint64_t rnds[] = {
        0, 1, UINT64_MAX, UINT64_MAX - 1, (uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1};

    for (size_t i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
        for (int retry = 1; retry < 80; retry += 7) {
            int64_t w = td_retry_delay_ms(&d, retry, -1, rnds[i]);
            assert_true(w >= 0);
            assert_true(w <= td_retry_ceiling_ms(&d, retry));
        }
    }
}

static void test_retry_after_is_a_floor(void **state)
{
    struct td_conf_delivery d = policy(TD_BACKOFF_EXPONENTIAL, 200, 30000);

    /* The jitter would say 0; Retry-After says 5 s. */
    assert_int_equal(td_retry_delay_ms(&d, 1, 5000, 0), 5000);
    /* The jitter says more than Retry-After: the larger wait wins. */
    assert_int_equal(td_retry_delay_ms(&d, 9, 100, 20000), 20000);
    /* Retry-After 0 is "now", no floor at all. */
    assert_int_equal(td_retry_delay_ms(&d, 1, 0, 0), 0);
    assert_int_equal(td_retry_delay_ms(&d, 1, 0, 123), 123);

    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 5000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t ra = (int64_t)(x % 70000);
        int retry = 1 + i % 10;
        int64_t w = td_retry_delay_ms(&d, retry, ra, x);
        int64_t floor = ra < d.retry_after_max_ms ? ra : d.retry_after_max_ms;
        int64_t ceiling = td_retry_ceiling_ms(&d, retry);
        assert_true(w >= floor);
        assert_true(w <= (floor > ceiling ? floor : ceiling));
    }
}

static void test_retry_after_capped(void **state)
{
    struct td_conf_delivery d = policy(TD_BACKOFF_EXPONENTIAL, 200, 30000);

    d.retry_after_max_ms = 60000;
    /* An hour of Retry-After is cut to retry_after_max. */
    assert_int_equal(td_retry_delay_ms(&d, 1, 3600000, 0), 60000);
    assert_int_equal(td_retry_delay_ms(&d, 1, INT64_MAX, 0), 60000);
    d.retry_after_max_ms = 1500;
    assert_int_equal(td_retry_delay_ms(&d, 1, 3600000, 7), 1500);
    assert_int_equal(td_retry_delay_ms(&d, 1, 1000, 7), 1000);
}

static void test_no_retry_after(void **state)
{
    struct td_conf_delivery d = policy(TD_BACKOFF_LINEAR, 1000, 30000);

    /* -1: the target said nothing; only the jitter counts. */
    assert_int_equal(td_retry_delay_ms(&d, 1, -1, 0), 0);
    assert_int_equal(td_retry_delay_ms(&d, 2, -1, 1999), 1999);
    assert_int_equal(td_retry_delay_ms(&d, 2, -1, 2000), 2000);
    assert_int_equal(td_retry_delay_ms(&d, 2, -1, 2001), 0);
}

static void test_delay_overflow_safe(void **state)
{
    /* No cap and a saturated ceiling: the modulo must not overflow ceiling + 1. UBSan
     * (TD_SANITIZE=ON) reports a signed overflow if it does. */
    struct td_conf_delivery d = policy(TD_BACKOFF_EXPONENTIAL, 200, 0);
    int64_t ceiling = td_retry_ceiling_ms(&d, 200);
    int64_t w = td_retry_delay_ms(&d, 200, -1, UINT64_MAX);

    assert_true(w >= 0 && w <= ceiling);
    d = policy(TD_BACKOFF_LINEAR, INT64_MAX, 0);
    w = td_retry_delay_ms(&d, 1, -1, 12345);
    assert_int_equal(w, 12345);
}

static void test_random_varies(void **state)
{
    uint64_t a = td_random();
    uint64_t b = td_random();
    uint64_t c = td_random();

    assert_true(a != b || b != c);
    assert_true(a != 0 && b != 0 && c != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exponential_doubles),
        cmocka_unit_test(test_exponential_capped),
        cmocka_unit_test(test_exponential_monotonic),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_retry_below_one_is_first),
        cmocka_unit_test(test_ceiling_overflow_safe),
        cmocka_unit_test(test_zero_delay),
        cmocka_unit_test(test_full_jitter_bounds),
        cmocka_unit_test(test_full_jitter_within_ceiling),
        cmocka_unit_test(test_extreme_random_values),
        cmocka_unit_test(test_retry_after_is_a_floor),
        cmocka_unit_test(test_retry_after_capped),
        cmocka_unit_test(test_no_retry_after),
        cmocka_unit_test(test_delay_overflow_safe),
        cmocka_unit_test(test_random_varies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
