/* test_flow.c - broker/core/flow.c: the token bucket's arithmetic on a made-up clock (the
 * caller passes now_ms), and the AIMD concurrency limit (cuts once per round trip, growth,
 * the slow probe near the last overload, floor and ceiling).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "flow.h"

/* Takes tokens at now while the bucket has them; returns how many. */
static int drain(struct td_bucket *b, int64_t now)
{
    int n = 0;
    while (td_bucket_wait_ms(b, now) == 0 && n < 1000000) {
        td_bucket_take(b);
        n++;
    }
    return n;
}

/* Full at start: exactly burst at once, then one every per / events. */
static void test_bucket_burst_then_rate(void **state)
{
    (void)state;
    struct td_bucket b;
    td_bucket_init(&b, 20, 1000, 5, 1000);
    assert_int_equal(td_bucket_tokens(&b, 1000), 5);
    assert_int_equal(drain(&b, 1000), 5);
    assert_int_equal(td_bucket_wait_ms(&b, 1000), 50);
    assert_int_equal(td_bucket_wait_ms(&b, 1049), 1);
    assert_int_equal(drain(&b, 1049), 0);
    assert_int_equal(drain(&b, 1050), 1);
    /* one per 50 ms from then on: 200 in 10 s, exactly */
    int n = 0;
    for (int64_t t = 1051; t <= 11050; t++) {
        n += drain(&b, t);
    }
    assert_int_equal(n, 200);
}

/* A full bucket nobody waits on gains nothing more, not even a part of a token: the burst
 * is exactly burst even when the first request comes a little after the bucket was made, and
 * the next token is a whole interval later. */
static void test_bucket_idle_full_gains_nothing(void **state)
{
    (void)state;
    struct td_bucket b;
    td_bucket_init(&b, 20, 1000, 5, 0);
    assert_int_equal(drain(&b, 40), 5);
    assert_int_equal(td_bucket_wait_ms(&b, 40), 50);
    assert_int_equal(drain(&b, 89), 0);
    assert_int_equal(drain(&b, 90), 1);
}

/* A quiet spell refills to burst, never beyond. */
static void test_bucket_capped_at_burst(void **state)
{
    (void)state;
    struct td_bucket b;
    td_bucket_init(&b, 100, 1000, 3, 0);
    assert_int_equal(drain(&b, 0), 3);
    assert_int_equal(td_bucket_tokens(&b, 5000), 3);
    assert_int_equal(drain(&b, 5000), 3);
    /* days later: no overflow, still burst */
    assert_int_equal(td_bucket_tokens(&b, (int64_t)86400000 * 365), 3);
}

/* Rates that do not divide a second keep their remainder, even with burst 1 (the part of a
 * token gained in the ms a waiter found a whole one is kept): 3 per second over 10 s, checked every
 * ms, is 30 (plus the first), not 29.9; 300 per second is 300, not 250 (a token every 4 ms). */
static void test_bucket_no_drift(void **state)
{
    (void)state;
    struct td_bucket b;
    td_bucket_init(&b, 3, 1000, 1, 0);
    int n = drain(&b, 0);
    for (int64_t t = 1; t <= 10000; t++) {
        n += drain(&b, t);
    }
    assert_int_equal(n, 1 + 30);
    /* 7 per 3 s */
    td_bucket_init(&b, 7, 3000, 1, 0);
    n = drain(&b, 0);
    for (int64_t t = 1; t <= 30000; t++) {
        n += drain(&b, t);
    }
    assert_int_equal(n, 1 + 70);
    td_bucket_init(&b, 300, 1000, 1, 0);
    n = drain(&b, 0);
    for (int64_t t = 1; t <= 10000; t++) {
        n += drain(&b, t);
    }
    assert_int_equal(n, 1 + 3000);
}

/* A loop that wakes late loses nothing while the lateness fits in the burst: checking only
 * every 120 ms still gives 20/s. */
static void test_bucket_late_wakeups(void **state)
{
    (void)state;
    struct td_bucket b;
    td_bucket_init(&b, 20, 1000, 5, 0);
    int n = drain(&b, 0);
    for (int64_t t = 120; t <= 10000; t += 120) {
        n += drain(&b, t);
    }
    /* 5 at once, then 20/s over 9 960 ms: 199 whole tokens */
    assert_int_equal(n, 5 + 199);
}

/* The wait rounds up: when the timer fires the token is whole. Unlimited: never waits. */
static void test_bucket_wait_and_unlimited(void **state)
{
    (void)state;
    struct td_bucket b;
    td_bucket_init(&b, 3, 1000, 1, 0);
    td_bucket_take(&b);
    int64_t w = td_bucket_wait_ms(&b, 0);
    assert_int_equal(w, 334); /* 333.3 ms rounded up */
    assert_int_equal(td_bucket_wait_ms(&b, w - 1), 1);
    assert_int_equal(td_bucket_wait_ms(&b, w), 0);

    td_bucket_init(&b, 0, 1000, 1, 0);
    assert_false(td_bucket_limited(&b));
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(td_bucket_wait_ms(&b, 0), 0);
        td_bucket_take(&b);
    }
    /* the clock standing still (or read twice in one ms) adds nothing */
    td_bucket_init(&b, 1000, 1000, 1, 50);
    assert_int_equal(drain(&b, 50), 1);
    assert_int_equal(drain(&b, 50), 0);
    assert_int_equal(drain(&b, 49), 0);
    assert_int_equal(drain(&b, 51), 1);
}

/* Sharers of one bucket (a sink's) take turns: A always asks first, as a timer that happens to
 * sort first would, yet A and B get the same share; a third that joins later gets its third. */
static void test_bucket_shared_turns(void **state)
{
    (void)state;
    struct td_bucket b;
    int a_id, b_id, c_id, got[3] = {0, 0, 0};
    const void *who[3] = {&a_id, &b_id, &c_id};
    td_bucket_init(&b, 20, 1000, 5, 0);
    for (int64_t t = 0; t < 10000; t++) {
        int n = t < 5000 ? 2 : 3;
        for (int i = 0; i < n; i++) {
            while (td_bucket_wait_for(&b, who[i], t) == 0) {
                td_bucket_take_for(&b, who[i]);
                got[i]++;
            }
        }
    }
    /* 5 at once (the first asker takes the burst: nobody was in line yet), then 20/s */
    assert_int_equal(got[0] + got[1] + got[2], 5 + 200 - 1);
    assert_in_range(got[1], 45 + 33 - 2, 50 + 34 + 2);
    assert_in_range(got[2], 33 - 2, 34 + 2);
    assert_in_range(got[0] - 5, 45 + 33 - 2, 50 + 34 + 2);
}

/* One that stops asking leaves the line: the other is not held up for longer than 4 token
 * intervals + 50 ms, and a lone sharer is never held up at all. */
static void test_bucket_shared_stale(void **state)
{
    (void)state;
    struct td_bucket b;
    int a_id, b_id;
    td_bucket_init(&b, 20, 1000, 1, 0);
    assert_int_equal(td_bucket_wait_for(&b, &a_id, 0), 0);
    td_bucket_take_for(&b, &a_id);
    /* B asks, is told to wait, then goes away; A keeps asking */
    assert_int_equal(td_bucket_wait_for(&b, &b_id, 1), 49);
    int64_t t = 2, taken_at = -1;
    for (; t < 1000 && taken_at < 0; t++) {
        if (td_bucket_wait_for(&b, &a_id, t) == 0) {
            td_bucket_take_for(&b, &a_id);
            taken_at = t;
        }
    }
    /* B asked last at 1: stale after 1 + 4 * 50 + 50 */
    assert_int_equal(taken_at, 1 + 4 * 50 + 50 + 1);
    /* alone: every token as it comes */
    td_bucket_init(&b, 20, 1000, 1, 0);
    int n = 0;
    for (t = 0; t < 1000; t++) {
        while (td_bucket_wait_for(&b, &a_id, t) == 0) {
            td_bucket_take_for(&b, &a_id);
            n++;
        }
    }
    assert_int_equal(n, 1 + 19);
}

/* ---- AIMD ---- */

/* A batch takes n tokens once the bucket holds one: past what it holds it leaves a debt, paid
 * before the next token is whole, so batches larger than burst keep the rate; and a long quiet
 * spell after a debt first pays it (the bucket is not simply full again). */
static void test_bucket_take_n_debt(void **state)
{
    (void)state;
    struct td_bucket b;
    td_bucket_init(&b, 100, 1000, 10, 0); /* 100/s: a token every 10 ms, 10 at once */
    assert_int_equal(td_bucket_wait_ms(&b, 0), 0);
    td_bucket_take_n(&b, 20); /* a batch of 20 on a bucket of 10: 10 tokens in debt */
    assert_int_equal(td_bucket_tokens(&b, 0), -10);
    assert_int_equal(td_bucket_wait_ms(&b, 0), 110); /* the debt, then one whole token */
    assert_int_equal(td_bucket_wait_ms(&b, 109), 1);
    assert_int_equal(td_bucket_wait_ms(&b, 110), 0);
    /* batches of 20 from then on: one every 200 ms, so 100 events a second over 10 s */
    int64_t events = 0;
    for (int64_t t = 110; t < 10110; t++) {
        if (td_bucket_wait_ms(&b, t) == 0) {
            td_bucket_take_n(&b, 20);
            events += 20;
        }
    }
    assert_int_equal(events, 1000);
    /* a debt survives a quiet spell long enough to fill a debt-free bucket */
    td_bucket_init(&b, 100, 1000, 10, 0);
    td_bucket_take_n(&b, 1000); /* 990 tokens in debt: 9.9 s to pay */
    assert_int_equal(td_bucket_wait_ms(&b, 200), 9710);
    assert_int_equal(td_bucket_tokens(&b, 5000), -490); /* 4.8 s later: still owed */
    assert_int_equal(td_bucket_tokens(&b, 100000), 10); /* then full, and no more */
    /* n tokens only once one is there; a bucket with none gives none */
    td_bucket_init(&b, 100, 1000, 1, 0);
    td_bucket_take_n(&b, 1);
    td_bucket_take_n(&b, 50); /* not taken: the caller must see wait_ms == 0 first */
    assert_int_equal(td_bucket_tokens(&b, 0), 0);
}

static void test_aimd_fixed(void **state)
{
    (void)state;
    struct td_aimd a;
    td_aimd_init(&a, 64, false);
    assert_int_equal(a.limit, 64);
    assert_false(td_aimd_overload(&a, 0, 64));
    assert_false(td_aimd_success(&a, true));
    assert_int_equal(a.limit, 64);
}

/* Half the flight (not half an unused limit), once per epoch, floor 1. */
static void test_aimd_cut_once_per_round_trip(void **state)
{
    (void)state;
    struct td_aimd a;
    td_aimd_init(&a, 64, true);
    assert_int_equal(a.limit, 64);
    /* 60 answers 429 from attempts all started at epoch 0: one cut */
    assert_true(td_aimd_overload(&a, 0, 64));
    assert_int_equal(a.limit, 32);
    for (int i = 0; i < 59; i++) {
        assert_false(td_aimd_overload(&a, 0, 63 - i));
    }
    assert_int_equal(a.limit, 32);
    /* an attempt started after the cut may cut again: half of what is in flight */
    assert_true(td_aimd_overload(&a, 1, 10));
    assert_int_equal(a.limit, 5);
    assert_true(td_aimd_overload(&a, 2, 3));
    assert_int_equal(a.limit, 1);
    assert_true(td_aimd_overload(&a, 3, 1));
    assert_int_equal(a.limit, 1); /* floor */
    assert_int_equal(a.epoch, 4);
}

/* +1 per `limit` successes while the limit binds; nothing while it does not; max is the
 * ceiling. */
static void test_aimd_growth(void **state)
{
    (void)state;
    struct td_aimd a;
    td_aimd_init(&a, 8, true);
    a.limit = 2; /* as if cut, without a known ceiling */
    for (int i = 0; i < 100; i++) {
        assert_false(td_aimd_success(&a, false));
    }
    assert_int_equal(a.limit, 2);
    int n = 0;
    while (a.limit < 8 && n < 1000) {
        td_aimd_success(&a, true);
        n++;
    }
    assert_int_equal(n, 2 + 3 + 4 + 5 + 6 + 7);
    for (int i = 0; i < 100; i++) {
        assert_false(td_aimd_success(&a, true));
    }
    assert_int_equal(a.limit, 8);
}

/* After a cut the limit climbs back at +1 per round trip to just below the level that
 * overloaded, then probes it TD_AIMD_PROBE times slower; once past it, normal growth. */
static void test_aimd_probe_near_ceiling(void **state)
{
    (void)state;
    struct td_aimd a;
    td_aimd_init(&a, 64, true);
    a.limit = 5;
    assert_true(td_aimd_overload(&a, 0, 5)); /* 5 in flight were too many */
    assert_int_equal(a.limit, 2);
    int n = 0;
    while (a.limit < 4) {
        td_aimd_success(&a, true);
        n++;
    }
    assert_int_equal(n, 2 + 3);
    n = 0;
    while (a.limit < 5) {
        td_aimd_success(&a, true);
        n++;
    }
    assert_int_equal(n, 4 * TD_AIMD_PROBE);
    /* at the ceiling itself, still slow; above it, normal again */
    n = 0;
    while (a.limit < 6) {
        td_aimd_success(&a, true);
        n++;
    }
    assert_int_equal(n, 5 * TD_AIMD_PROBE);
    assert_int_equal(a.ceiling, 0);
    n = 0;
    while (a.limit < 7) {
        td_aimd_success(&a, true);
        n++;
    }
    assert_int_equal(n, 6);
    /* a cut resets the count towards the next step */
    a.grow = 5;
    assert_true(td_aimd_overload(&a, a.epoch, 7));
    assert_int_equal(a.grow, 0);
    assert_int_equal(a.limit, 3);
}

/* The share of overload answers in the steady state against a function that takes at most 4
 * at once: one 429 per climb from 2 back to 5, i.e. about 1 in 2 + 3 + 4 * PROBE answers. */
static void test_aimd_steady_overload_share(void **state)
{
    (void)state;
    struct td_aimd a;
    td_aimd_init(&a, 64, true);
    int capacity = 4, ok = 0, over = 0;
    for (int round = 0; round < 20000; round++) {
        if (a.limit > capacity) {
            over++;
            td_aimd_overload(&a, a.epoch, a.limit);
        } else {
            ok++;
            td_aimd_success(&a, true);
        }
        if (round > 1000) {
            assert_in_range(a.limit, 2, 2 * capacity);
        }
    }
    assert_true(over * 100 < (ok + over) * 3); /* under 3 % */
}

static void test_is_overload(void **state)
{
    (void)state;
    assert_true(td_aimd_is_overload(429, -1));
    assert_true(td_aimd_is_overload(503, -1));
    assert_true(td_aimd_is_overload(500, 1000)); /* any answer with Retry-After */
    assert_true(td_aimd_is_overload(200, 0));
    assert_false(td_aimd_is_overload(500, -1));
    assert_false(td_aimd_is_overload(0, -1)); /* no answer: a timeout says nothing of load */
    assert_false(td_aimd_is_overload(200, -1));
}

/* ---- the keys (broker/config/conf_keys_flow.c) ---- */

static struct td_config *load(const char *text, struct td_errors *errs)
{
    char path[] = "/tmp/td_flow_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct td_config *cfg = td_config_load(path, errs);
    unlink(path);
    return cfg;
}

#define HEAD                                                                                       \
    "version: 1\n"                                                                                 \
    "sources:\n"                                                                                   \
    "  s: {redis: {url: \"redis://127.0.0.1:6379/0\", stream: x, group: g}}\n"

static void test_keys(void **state)
{
    (void)state;
    struct td_errors errs = {0};
    struct td_config *cfg =
        load(HEAD "sinks:\n"
                  "  f: {http: {url: \"http://h/\"}, rate: {events: 10}}\n"
                  "  g: {http: {url: \"http://h/\"}}\n"
                  "triggers:\n"
                  "  - {name: a, source: s, sink: f}\n"
                  "  - {name: b, source: s, sink: g, delivery: {concurrency: 7}}\n"
                  "  - {name: c, source: s, sink: g, delivery: {concurrency: "
                  "{adaptive: true}, rate: {events: 600, per: 1m}}}\n"
                  "  - {name: d, source: s, sink: g, delivery: {concurrency: "
                  "{max: 5}, rate: {events: 20, per: 100ms, burst: 3}}}\n"
                  "  - {name: e, source: s, sink: g, delivery: {rate: {events: "
                  "3, per: 1h}}}\n",
             &errs);
    for (size_t i = 0; i < errs.n; i++) {
        fprintf(stderr, "%s\n", errs.msgs[i]);
    }
    assert_non_null(cfg);
    const struct td_conf_delivery *d = &cfg->triggers[0].delivery;
    /* not written: 64, fixed, no rate */
    assert_int_equal(d->concurrency, 64);
    assert_false(d->concurrency_adaptive);
    assert_int_equal(d->rate.events, 0);
    /* the first spelling: an integer is {max: N, adaptive: false} */
    d = &cfg->triggers[1].delivery;
    assert_int_equal(d->concurrency, 7);
    assert_false(d->concurrency_adaptive);
    /* {adaptive: true}: max defaults to 64; burst: one second's worth (600/min: 10) */
    d = &cfg->triggers[2].delivery;
    assert_int_equal(d->concurrency, 64);
    assert_true(d->concurrency_adaptive);
    assert_int_equal(d->rate.events, 600);
    assert_int_equal(d->rate.per_ms, 60000);
    assert_int_equal(d->rate.burst, 10);
    d = &cfg->triggers[3].delivery;
    assert_int_equal(d->concurrency, 5);
    assert_false(d->concurrency_adaptive);
    assert_int_equal(d->rate.burst, 3);
    /* one second's worth of 3 per hour rounds to 0: at least 1 */
    assert_int_equal(cfg->triggers[4].delivery.rate.burst, 1);
    /* the sink's: per 1s by default, burst events (per <= 1s) */
    const struct td_conf_sink *f = td_config_sink(cfg, "f");
    assert_int_equal(f->rate.events, 10);
    assert_int_equal(f->rate.per_ms, 1000);
    assert_int_equal(f->rate.burst, 10);
    assert_int_equal(td_config_sink(cfg, "g")->rate.events, 0);
    td_config_free(cfg);
    td_errors_clear(&errs);
}

/* Each error names file:line:column, as everywhere in the loader. */
static void test_key_errors(void **state)
{
    (void)state;
    struct td_errors errs = {0};
    struct td_config *cfg =
        load(HEAD "sinks:\n"
                  "  f: {http: {url: \"http://h/\"}, rate: {events: 0}}\n"
                  "triggers:\n"
                  "  - {name: a, source: s, sink: f, delivery: {rate: {events: 5, per: 0s}}}\n"
                  "  - {name: b, source: s, sink: f, delivery: {rate: {events: 5, burst: 0}}}\n"
                  "  - {name: c, source: s, sink: f, delivery: {rate: {burst: 2}}}\n"
                  "  - {name: d, source: s, sink: f, delivery: {concurrency: {max: 0}}}\n"
                  "  - {name: e, source: s, sink: f, delivery: {concurrency: [1]}}\n"
                  "  - {name: g, source: s, sink: f, delivery: {concurrency: {adaptive: 2}}}\n"
                  "  - {name: h, source: s, sink: f, delivery: {concurrency: 0}}\n",
             &errs);
    assert_null(cfg);
    static const char *const want[] = {
        ":5:48: 'events' must be at least 1",
        ":7:69: 'per' must be at least 1ms",
        ":8:71: 'burst' must be at least 1",
        ":9:52: trigger 'c': missing required key 'events' in rate",
        ":10:65: 'max' must be at least 1",
        ":11:59: 'concurrency' must be an integer or a mapping {max, adaptive} (got a list)",
        ":12:70: 'adaptive' must be true or false",
        ":13:59: 'concurrency' must be at least 1",
    };
    for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
        bool found = false;
        for (size_t i = 0; i < errs.n && !found; i++) {
            found = strstr(errs.msgs[i], want[w]) != NULL;
        }
        if (!found) {
            fprintf(stderr, "missing: %s\n", want[w]);
            for (size_t i = 0; i < errs.n; i++) {
                fprintf(stderr, "  got %s\n", errs.msgs[i]);
            }
        }
        assert_true(found);
    }
    assert_int_equal(errs.n, sizeof(want) / sizeof(want[0]));
    td_errors_clear(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_burst_then_rate),
        cmocka_unit_test(test_bucket_idle_full_gains_nothing),
        cmocka_unit_test(test_bucket_capped_at_burst),
        cmocka_unit_test(test_bucket_no_drift),
        cmocka_unit_test(test_bucket_late_wakeups),
        cmocka_unit_test(test_bucket_wait_and_unlimited),
        cmocka_unit_test(test_bucket_shared_turns),
        cmocka_unit_test(test_bucket_shared_stale),
        cmocka_unit_test(test_bucket_take_n_debt),
        cmocka_unit_test(test_aimd_fixed),
        cmocka_unit_test(test_aimd_cut_once_per_round_trip),
        cmocka_unit_test(test_aimd_growth),
        cmocka_unit_test(test_aimd_probe_near_ceiling),
        cmocka_unit_test(test_aimd_steady_overload_share),
        cmocka_unit_test(test_is_overload),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_key_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
