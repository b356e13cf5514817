/* test_flow_dispatch.c - flow control inside dispatch, exactly, on an injected clock (as
 * test_backoff_clock.c: the clock moves one ms at a time, one loop iteration after each step).
 *
 * They prove: a rate-limited trigger starts exactly `burst` attempts at once and then one per
 * token, on the rate timer, and the deliveries waiting for a token hold no concurrency slot;
 * the sink's bucket limits the trigger just as its own; a retry takes a token (it starts when
 * the next token is due, not when its backoff ends); adaptive concurrency cuts once for a whole
 * window of 429s (not once per answer), and a fixed `concurrency` never moves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cloudevent.h"
#include "core.h"
#include "dispatch.h"
#include "fake_core.h"
#include "flow.h"
#include "log.h"
#include "loop.h"
#include "retry.h"
#include "router.h"
#include "sink.h"
#include "source.h"

#define T_START 1000000

static int64_t fake_now;

static int64_t fake_clock(void)
{
    return fake_now;
}

static uint64_t fake_random(void)
{
    return 0; /* every backoff wait is 0: what a retry waits for is the token */
}

static struct harness {
    struct td_loop *loop;
    struct td_config cfg;
    struct td_conf_source csrc;
    struct td_conf_sink csink;
    struct td_conf_trigger ctrg;
    struct td_core core;
    struct td_trigger_rt trg;
    struct td_sink *sinkp[1];
    struct td_source *srcs[1];
    struct td_source *src;
    struct fake_sink sink;
    int ndone;
} H;

static int setup(void **state)
{
    (void)state;
    td_log_init((enum td_log_level)(TD_LOG_ERROR + 1), TD_LOG_TEXT); /* quiet */
    memset(&H, 0, sizeof(H));
    fake_now = T_START;
    td_clock_set(fake_clock);
    td_random_set(fake_random);
    H.loop = td_loop_new();
    assert_non_null(H.loop);
    fake_source_conf(&H.csrc, "src");
    fake_sink_init(&H.sink, "s0", H.loop, 5);
    H.csink = H.sink.conf;
    H.sinkp[0] = &H.sink.base;
    struct td_conf_delivery *d = &H.ctrg.delivery;
    d->retry = 5;
    d->backoff = TD_BACKOFF_EXPONENTIAL;
    d->backoff_delay_ms = 10;
    d->backoff_max_ms = 10;
    d->retry_after_max_ms = 1000;
    d->concurrency = 64;
    H.ctrg.name = "t0";
    H.ctrg.source = "src";
    H.ctrg.sink = "s0";
    fake_config(&H.cfg, &H.csrc, &H.csink, 1, &H.ctrg, 1);
    H.src = fake_source_new(&H.csrc, &H.core);
    H.srcs[0] = H.src;
    fake_core_init(&H.core, &H.cfg, H.loop, H.srcs, H.sinkp, &H.trg);
    fake_trigger_init(&H.trg, &H.ctrg, &H.core, &H.sink.base, NULL);
    H.sink.trg = &H.trg;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    td_dispatch_abandon_all(&H.core);
    fake_sink_clear(&H.sink);
    td_dispatch_trigger_free(&H.trg);
    td_source_free(H.src);
    td_loop_free(H.loop);
    td_clock_set(NULL);
    td_random_set(NULL);
    return 0;
}

static void route(int n)
{
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof(id), "e%d", i);
        td_router_route(&H.core, fake_msg(H.src, fake_event(id, "com.example.click")));
    }
}

static void drain_mailbox(void)
{
    struct td_msg *m = td_source_take_done(H.src);
    while (m) {
        struct td_msg *next = m->next;
        H.ndone += !m->release;
        td_msg_free(m);
        m = next;
    }
}

static void step_to(int64_t t)
{
    assert_true(td_loop_run_once(H.loop, 0) >= 0);
    drain_mailbox();
    while (fake_now < t) {
        fake_now++;
        assert_true(td_loop_run_once(H.loop, 0) >= 0);
        drain_mailbox();
    }
}

/* rate {events: 10, per: 1s, burst: 2}: calls start at +0, +0, +100, +200, +300, each exactly. */
static void test_rate_schedule(void **state)
{
    (void)state;
    H.ctrg.delivery.rate = (struct td_conf_rate){.events = 10, .per_ms = 1000, .burst = 2};
    route(5);
    step_to(T_START);
    assert_int_equal(H.sink.calls, 2);
    /* the three that wait for a token hold no slot: only the two attempts run */
    assert_int_equal(H.trg.running, 2);
    struct td_trigger_census c;
    td_dispatch_census(&H.core, &c, NULL);
    assert_int_equal(c.waiting, 3);
    assert_int_equal(c.running, 2);
    assert_true(td_timer_armed(&H.trg.rate_timer));
    step_to(T_START + 10);
    assert_int_equal(H.trg.running, 0); /* done; the others still wait */
    static const int64_t want[] = {0, 0, 100, 200, 300};
    for (int call = 2; call < 5; call++) {
        step_to(T_START + want[call] - 1);
        assert_int_equal(H.sink.calls, call);
        step_to(T_START + want[call]);
        assert_int_equal(H.sink.calls, call + 1);
        assert_int_equal(H.sink.started_at[call], T_START + want[call]);
    }
    step_to(T_START + 400);
    assert_int_equal(H.ndone, 5);
    assert_false(td_timer_armed(&H.trg.rate_timer)); /* nothing waits: no timer */
    assert_null(H.core.deliveries);
}

/* The sink's own bucket (sinks.NAME.rate) holds the trigger back the same way. */
static void test_sink_rate(void **state)
{
    (void)state;
    td_bucket_init(&H.sink.base.rate, 20, 1000, 1, td_now_ms());
    route(3);
    step_to(T_START + 49);
    assert_int_equal(H.sink.calls, 1);
    step_to(T_START + 50);
    assert_int_equal(H.sink.calls, 2);
    step_to(T_START + 100);
    assert_int_equal(H.sink.calls, 3);
    assert_int_equal(H.sink.started_at[2], T_START + 100);
    step_to(T_START + 200);
    assert_int_equal(H.ndone, 3);
}

/* A retry takes a token: the 503 is answered at +5, its backoff is 0, yet the second attempt
 * starts at +100 when the next token is due. */
static void test_retry_takes_a_token(void **state)
{
    (void)state;
    static const struct fake_script script[] = {{TD_RESULT_RETRY, 503, -1, NULL},
                                                {TD_RESULT_OK, 200, -1, NULL}};
    H.sink.script = script;
    H.sink.nscript = 2;
    H.ctrg.delivery.rate = (struct td_conf_rate){.events = 10, .per_ms = 1000, .burst = 1};
    route(1);
    step_to(T_START + 99);
    assert_int_equal(H.sink.calls, 1);
    assert_int_equal(H.trg.running, 0); /* waiting for the token holds no slot */
    step_to(T_START + 100);
    assert_int_equal(H.sink.calls, 2);
    assert_int_equal(H.sink.started_at[1], T_START + 100);
    step_to(T_START + 110);
    assert_int_equal(H.ndone, 1);
}

/* 8 attempts in flight all answered 429: one cut (to 4), not eight (to 1). Then the retries
 * run 4 at a time. */
static void test_adaptive_one_cut_per_window(void **state)
{
    (void)state;
    static const struct fake_script script[] = {
        {TD_RESULT_RETRY, 429, -1, NULL}, {TD_RESULT_RETRY, 429, -1, NULL},
        {TD_RESULT_RETRY, 429, -1, NULL}, {TD_RESULT_RETRY, 429, -1, NULL},
        {TD_RESULT_RETRY, 429, -1, NULL}, {TD_RESULT_RETRY, 429, -1, NULL},
        {TD_RESULT_RETRY, 429, -1, NULL}, {TD_RESULT_RETRY, 429, -1, NULL},
        {TD_RESULT_OK, 200, -1, NULL}};
    H.sink.script = script;
    H.sink.nscript = 9;
    H.ctrg.delivery.concurrency = 8;
    H.ctrg.delivery.concurrency_adaptive = true;
    route(8);
    step_to(T_START);
    assert_int_equal(H.sink.calls, 8);
    step_to(T_START + 5); /* all eight answered 429 */
    assert_int_equal(H.trg.conc.limit, 4);
    assert_int_equal(H.trg.conc.epoch, 1);
    struct td_trigger_census c;
    td_dispatch_census(&H.core, &c, NULL);
    assert_int_equal(c.concurrency_limit, 4);
    H.sink.max_running = 0;
    step_to(T_START + 200);
    assert_int_equal(H.ndone, 8);
    assert_int_equal(H.sink.max_running, 4); /* the retries ran 4 at a time */
}

/* Batches of 2 under an adaptive limit of 4: the first four answers are 429 (one cut, to 2),
 * then every batch is answered 200 with `body`. Returns the limit after 20 events went through
 * (or ran out of retries). */
static int adaptive_limit_after_batches(const char *body)
{
    struct fake_script script[] = {{TD_RESULT_RETRY, 429, -1, NULL},
                                   {TD_RESULT_RETRY, 429, -1, NULL},
                                   {TD_RESULT_RETRY, 429, -1, NULL},
                                   {TD_RESULT_RETRY, 429, -1, NULL},
                                   {TD_RESULT_OK, 200, -1, body}};
    H.sink.script = script;
    H.sink.nscript = 5;
    H.ctrg.delivery.concurrency = 4;
    H.ctrg.delivery.concurrency_adaptive = true;
    H.ctrg.delivery.retry = 2;
    H.ctrg.delivery.batch = (struct td_conf_batch){
        .enabled = true, .max_events = 2, .max_bytes = 1 << 20, .max_wait_ms = 1};
    route(20);
    step_to(T_START + 2000);
    assert_int_equal(H.sink.inflight, 0);
    assert_true(H.sink.calls > 10); /* it went in batches of 2, retries included */
    struct td_trigger_census c;
    td_dispatch_census(&H.core, &c, NULL);
    assert_int_equal(c.concurrency_limit, H.trg.conc.limit);
    return H.trg.conc.limit;
}

/* A batch answered 200 with batchItemFailures that name nothing of the batch (or are not a
 * list) failed as a whole (AWS: "an invalid response is a complete failure"): it is no success
 * for the adaptive limit, which stays where the 429s put it. */
static void test_adaptive_malformed_batch_answer_is_no_success(void **state)
{
    (void)state;
    assert_int_equal(adaptive_limit_after_batches("{\"batchItemFailures\": 5}"), 2);
}

/* The same batches answered 200 with a valid (empty) answer: successes, and the limit grows
 * back, so the test above can tell the two apart. */
static void test_adaptive_batch_success_grows(void **state)
{
    (void)state;
    assert_true(adaptive_limit_after_batches("{\"batchItemFailures\": []}") > 2);
}

/* The integer spelling is a fixed limit: 429s change nothing. */
static void test_fixed_never_moves(void **state)
{
    (void)state;
    static const struct fake_script script[] = {{TD_RESULT_RETRY, 429, 1, NULL},
                                                {TD_RESULT_OK, 200, -1, NULL}};
    H.sink.script = script;
    H.sink.nscript = 2;
    H.ctrg.delivery.concurrency = 3;
    route(6);
    step_to(T_START + 200);
    assert_int_equal(H.ndone, 6);
    struct td_trigger_census c;
    td_dispatch_census(&H.core, &c, NULL);
    assert_int_equal(c.concurrency_limit, 3);
    assert_int_equal(H.sink.max_running, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rate_schedule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_takes_a_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adaptive_one_cut_per_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixed_never_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adaptive_malformed_batch_answer_is_no_success, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_adaptive_batch_success_grows, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
