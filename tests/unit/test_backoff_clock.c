/* test_backoff_clock.c - the dispatch's backoff schedule, exactly, on an injected clock.
 *
 * The loop's clock is a variable of this file (td_clock_set) and the jitter's random numbers
 * are scripted (td_random_set), so every wait is known to the millisecond: the test moves the
 * clock one millisecond at a time and runs one loop iteration (td_loop_run_once(loop, 0))
 * after each step, then checks that an attempt starts exactly when the policy says, and not
 * one millisecond earlier. No sleeping, no slack.
 *
 * The scaffolding is fake_core.h's, as in test_dispatch.c: a fake sink whose deliver() records
 * the attempt and completes it from a loop timer (fake time) with a scripted outcome; a fake
 * source whose mailbox the test drains directly; a minimal struct td_core with one trigger.
 *
 * They prove: exponential backoff 100/150 ms waits rnd1 % 101, then rnd2 % 151 (the cap);
 * linear backoff waits rnd % (delay * retry + 1) up to the cap; Retry-After 2 s is capped by
 * retry_after_max 1 s to exactly 1000 ms, and a Retry-After below the jitter leaves the jitter;
 * a failing dead-letter target is retried on its own schedule (the trigger's backoff by
 * dead-letter attempt, at least 50 ms, Retry-After ignored) and the message is acked only
 * after it took the dead letter. Also td_loop_run_once and the clock hook themselves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloudevent.h"
#include "core.h"
#include "deadletter.h"
#include "dispatch.h"
#include "fake_core.h"
#include "log.h"
#include "loop.h"
#include "retry.h"
#include "sink.h"
#include "source.h"

#define NSINKS 2 /* the trigger's sink and the dead-letter target */
#define SINK   0
#define DL     1

/* ---- the injected clock and random source ---- */

#define T_START 1000000 /* an arbitrary start: nothing may assume the clock starts at 0 */

static int64_t fake_now;

static int64_t fake_clock(void)
{
    return fake_now;
}

static const uint64_t *rnd_script;
static size_t rnd_n, rnd_used;

static uint64_t fake_random(void)
{
    if (rnd_used >= rnd_n) {
        fail_msg("td_random called %zu times, the script has %zu numbers", rnd_used + 1, rnd_n);
    }
    return rnd_script[rnd_used++];
}

static void script_random(const uint64_t *r, size_t n)
{
    rnd_script = r;
    rnd_n = n;
    rnd_used = 0;
}

/* ---- the harness: core, config, source, sinks ---- */

static struct harness {
    struct td_loop *loop;
    struct td_config cfg;
    struct td_conf_source csrc;
    struct td_conf_sink csinks[NSINKS];
    struct td_conf_trigger ctrg;
    struct td_core core;
    struct td_trigger_rt trg;
    struct td_sink *sinkp[NSINKS];
    struct td_source *srcs[1];
    struct td_source *src;
    struct fake_sink sink[NSINKS];
    int ndone; /* completed messages */
    int nreleased;
    int64_t done_at; /* when the last one completed */
} H;

static int setup(void **state)
{
    static const char *const sink_names[NSINKS] = {"s0", "dead"};

    td_log_init((enum td_log_level)(TD_LOG_ERROR + 1), TD_LOG_TEXT); /* quiet */
    memset(&H, 0, sizeof(H));
    fake_now = T_START;
    td_clock_set(fake_clock);
    td_random_set(fake_random);
    script_random(NULL, 0);
    H.loop = td_loop_new();
    assert_non_null(H.loop);

    fake_source_conf(&H.csrc, "src");
    for (int i = 0; i < NSINKS; i++) {
        fake_sink_init(&H.sink[i], sink_names[i], H.loop, 0);
        H.csinks[i] = H.sink[i].conf;
        H.sinkp[i] = &H.sink[i].base;
    }
    H.sink[SINK].delay_ms = 7;
    H.sink[DL].delay_ms = 3;

    struct td_conf_delivery *d = &H.ctrg.delivery;
    d->retry = 3;
    d->backoff = TD_BACKOFF_EXPONENTIAL;
    d->backoff_delay_ms = 100;
    d->backoff_max_ms = 150;
    d->retry_after_max_ms = 1000;
    d->concurrency = 1;
    d->dead_letter = "dead";
    H.ctrg.name = "t0";
    H.ctrg.source = "src";
    H.ctrg.sink = "s0";
    fake_config(&H.cfg, &H.csrc, H.csinks, NSINKS, &H.ctrg, 1);

    H.src = fake_source_new(&H.csrc, &H.core);
    H.srcs[0] = H.src;
    fake_core_init(&H.core, &H.cfg, H.loop, H.srcs, H.sinkp, &H.trg);
    fake_trigger_init(&H.trg, &H.ctrg, &H.core, &H.sink[SINK].base, &H.sink[DL].base);
    return 0;
}

static int teardown(void **state)
{
    /* whatever a failed test left behind */
    td_dispatch_abandon_all(&H.core);
    for (int i = 0; i < NSINKS; i++) {
        fake_sink_clear(&H.sink[i]);
    }
    td_dispatch_trigger_free(&H.trg);
    td_source_free(H.src);
    td_loop_free(H.loop);
    td_clock_set(NULL);
    td_random_set(NULL);
    return 0;
}

/* Routes one new event (loop thread: the test thread). */
static void route(void)
{
    td_router_route(&H.core, fake_msg(H.src, fake_event("e1", "com.example.click")));
}

/* Takes the completed messages out of the source's mailbox. */
static void drain_mailbox(void)
{
    struct td_msg *m = td_source_take_done(H.src);

    while (m) {
        struct td_msg *next = m->next;
        H.ndone++;
        H.nreleased += m->release;
        H.done_at = td_now_ms();
        td_msg_free(m);
        m = next;
    }
}

/* Runs what is due now, then moves the clock to t one millisecond at a time, running one loop
 * iteration after each step: every timer fires with the clock at exactly its deadline. */
static void step_to(int64_t t)
{
    assert_true(t >= fake_now);
    assert_true(td_loop_run_once(H.loop, 0) >= 0);
    drain_mailbox();
    while (fake_now < t) {
        fake_now++;
        assert_true(td_loop_run_once(H.loop, 0) >= 0);
        drain_mailbox();
    }
}

/* Call `call` of sink fs starts at exactly `at`: nothing new at at - 1, then it starts. */
static void expect_start(struct fake_sink *fs, int call, int64_t at)
{
    step_to(at - 1);
    if (fs->calls != call) {
        fail_msg("%s: %d calls by %lld ms, want %d (the next one due at %lld ms)", fs->base.name,
                 fs->calls, (long long)(at - 1 - T_START), call, (long long)(at - T_START));
    }
    step_to(at);
    assert_int_equal(fs->calls, call + 1);
    assert_int_equal(fs->started_at[call], at);
}

static void assert_idle(void)
{
    assert_null(H.core.deliveries);
    assert_int_equal(H.core.msgs_in_flight, 0);
    assert_int_equal(H.trg.running, 0);
    assert_null(H.trg.wait_head);
}

/* ---- the loop on the fake clock ---- */

struct tick {
    int fired;
    int64_t at[4];
};

static int64_t on_tick(struct td_loop *loop, void *arg)
{
    struct tick *t = arg;
    t->at[t->fired++] = td_now_ms();
    return t->fired < 3 ? 25 : TD_LOOP_NOMORE;
}

static void on_task(struct td_loop *loop, void *arg)
{
    (*(int *)arg)++;
}

static int64_t on_stop(struct td_loop *loop, void *arg)
{
    td_loop_stop(loop);
    return TD_LOOP_NOMORE;
}

static void test_loop_run_once_fake_clock(void **state)
{
    struct tick tk = {0};
    struct td_timer t;
    int tasks = 0;

    assert_int_equal(td_now_ms(), T_START);
    td_timer_init(&t, on_tick, &tk);
    assert_int_equal(td_timer_start(H.loop, &t, 100), 0);
    assert_int_equal(t.deadline, T_START + 100);
    /* nothing is ready: a zero timeout returns at once */
    assert_int_equal(td_loop_run_once(H.loop, 0), 0);
    fake_now = T_START + 99;
    assert_int_equal(td_loop_run_once(H.loop, 0), 0);
    assert_int_equal(tk.fired, 0);
    fake_now = T_START + 100;
    assert_int_equal(td_loop_run_once(H.loop, 0), 0);
    assert_int_equal(tk.fired, 1);
    assert_int_equal(tk.at[0], T_START + 100);
    /* it rearmed itself from the fake clock: 25 ms later, then once more */
    assert_int_equal(t.deadline, T_START + 125);
    fake_now = T_START + 124;
    assert_int_equal(td_loop_run_once(H.loop, 0), 0);
    assert_int_equal(tk.fired, 1);
    /* a jump past the deadline: it fires at the jumped time and rearms from there */
    fake_now = T_START + 150;
    assert_int_equal(td_loop_run_once(H.loop, 0), 0);
    assert_int_equal(tk.fired, 2);
    assert_int_equal(tk.at[1], T_START + 150);
    assert_int_equal(t.deadline, T_START + 175);
    fake_now = T_START + 175;
    assert_int_equal(td_loop_run_once(H.loop, 0), 0);
    assert_int_equal(tk.fired, 3);
    assert_int_equal(tk.at[2], T_START + 175);
    assert_false(td_timer_armed(&t));
    /* posted tasks run in the same iteration */
    assert_int_equal(td_loop_post(H.loop, on_task, &tasks), 0);
    assert_int_equal(td_loop_post(H.loop, on_task, &tasks), 0);
    assert_int_equal(td_loop_run_once(H.loop, 0), 1);
    assert_int_equal(tasks, 2);
    assert_int_equal(td_loop_run_once(H.loop, 0), 0);
    /* td_loop_run keeps its behaviour on top of it: a due timer stops it */
    td_timer_init(&t, on_stop, NULL);
    assert_int_equal(td_timer_start(H.loop, &t, 0), 0);
    assert_int_equal(td_loop_run(H.loop), 0);
    assert_false(td_timer_armed(&t));
    /* and the hooks come off: the real clock and the built-in random numbers */
    td_clock_set(NULL);
    assert_true(td_now_ms() != T_START);
    td_random_set(NULL);
    assert_true(td_random() != td_random());
}

/* ---- exponential backoff: 503, 503, 200 ---- */

static void test_exponential_exact(void **state)
{
    static const struct fake_script s[] = {
        {TD_RESULT_RETRY, 503, -1, NULL},
        {TD_RESULT_RETRY, 503, -1, NULL},
        {TD_RESULT_OK, 200, -1, NULL},
    };
    /* 54 of [0, 100], then 150 of [0, min(200, 150)]: the ceiling itself is reachable */
    static const uint64_t rnd[] = {0xDEADBEEFCAFEF00Dull, 0x0123456789ABCDEFull};
    struct fake_sink *fs = &H.sink[SINK];

    assert_int_equal(rnd[0] % 101, 54);
    assert_int_equal(rnd[1] % 151, 150);
    fs->script = s;
    fs->nscript = 3;
    script_random(rnd, 2);
    route();
    assert_int_equal(fs->calls, 1);
    assert_int_equal(fs->started_at[0], T_START);
    step_to(T_START + 7);
    assert_int_equal(fs->done_at[0], T_START + 7);
    assert_int_equal(rnd_used, 1);
    int64_t t0 = fs->done_at[0];
    expect_start(fs, 1, t0 + (int64_t)(rnd[0] % (100 + 1)));
    assert_int_equal(fs->started_at[1], T_START + 7 + 54);
    step_to(fs->started_at[1] + 7);
    assert_int_equal(rnd_used, 2);
    int64_t t1 = fs->done_at[1];
    assert_int_equal(t1, T_START + 7 + 54 + 7);
    expect_start(fs, 2, t1 + (int64_t)(rnd[1] % (150 + 1)));
    assert_int_equal(fs->started_at[2], T_START + 7 + 54 + 7 + 150);
    /* the 200 completes the message, acked, at exactly that moment */
    step_to(fs->started_at[2] + 6);
    assert_int_equal(H.ndone, 0);
    step_to(fs->started_at[2] + 7);
    assert_int_equal(H.ndone, 1);
    assert_int_equal(H.nreleased, 0);
    assert_int_equal(H.done_at, T_START + 7 + 54 + 7 + 150 + 7);
    assert_int_equal(fs->calls, 3);
    assert_int_equal(rnd_used, 2); /* one draw per retry, none on success */
    assert_int_equal(H.sink[DL].calls, 0);
    assert_int_equal(H.trg.stats.attempts, 3);
    assert_int_equal(H.trg.stats.retries, 2);
    assert_int_equal(H.trg.stats.delivered, 1);
    /* the latency histogram saw the fake clock too: from routing to the 200 */
    assert_int_equal(H.trg.stats.latency_sum_ms, 7 + 54 + 7 + 150 + 7);
    assert_idle();
}

/* ---- linear backoff: 503, 503, 503, 200 ---- */

static void test_linear_exact(void **state)
{
    static const struct fake_script s[] = {
        {TD_RESULT_RETRY, 503, -1, NULL},
        {TD_RESULT_RETRY, 503, -1, NULL},
        {TD_RESULT_RETRY, 500, -1, NULL},
        {TD_RESULT_OK, 200, -1, NULL},
    };
    /* ceilings 40, 80, min(120, 100) */
    static const uint64_t rnd[] = {0x9E3779B97F4A7C15ull, 0x76ADF1ull, 0x3E8ull};
    static const int64_t ceiling[] = {40, 80, 100};
    static const int64_t want[] = {20, 76, 91};
    struct fake_sink *fs = &H.sink[SINK];
    struct td_conf_delivery *pol = &H.ctrg.delivery;

    pol->backoff = TD_BACKOFF_LINEAR;
    pol->backoff_delay_ms = 40;
    pol->backoff_max_ms = 100;
    fs->script = s;
    fs->nscript = 4;
    script_random(rnd, 3);
    route();
    int64_t expect_t = T_START;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(td_retry_ceiling_ms(pol, i + 1), ceiling[i]);
        assert_int_equal(rnd[i] % (uint64_t)(ceiling[i] + 1), want[i]);
        assert_int_equal(fs->started_at[i], expect_t);
        step_to(fs->started_at[i] + 7);
        assert_int_equal(rnd_used, i + 1);
        expect_t = fs->done_at[i] + (int64_t)(rnd[i] % (uint64_t)(ceiling[i] + 1));
        expect_start(fs, i + 1, expect_t);
    }
    assert_int_equal(fs->started_at[3], T_START + 7 + 20 + 7 + 76 + 7 + 91);
    step_to(fs->started_at[3] + 7);
    assert_int_equal(H.ndone, 1);
    assert_int_equal(H.nreleased, 0);
    assert_int_equal(fs->calls, 4);
    assert_int_equal(rnd_used, 3);
    assert_int_equal(H.trg.stats.retries, 3);
    assert_idle();
}

/* ---- Retry-After ---- */

static void test_retry_after_capped_exact(void **state)
{
    static const struct fake_script s[] = {
        {TD_RESULT_RETRY, 429, 2000, NULL}, /* Retry-After: 2 */
        {TD_RESULT_RETRY, 429, 30, NULL},   /* below the jitter: the jitter stands */
        {TD_RESULT_OK, 200, -1, NULL},
    };
    static const uint64_t rnd[] = {0x0123456789ABCDEFull, 0x3E8ull};
    struct fake_sink *fs = &H.sink[SINK];

    /* the jitter alone: 72 of [0, 100], then 94 of [0, 150] */
    assert_int_equal(rnd[0] % 101, 72);
    assert_int_equal(rnd[1] % 151, 94);
    fs->script = s;
    fs->nscript = 3;
    script_random(rnd, 2);
    route();
    step_to(T_START + 7);
    /* min(2000, retry_after_max 1000) = 1000, above the jitter's 72 */
    expect_start(fs, 1, fs->done_at[0] + 1000);
    assert_int_equal(fs->started_at[1], T_START + 7 + 1000);
    step_to(fs->started_at[1] + 7);
    expect_start(fs, 2, fs->done_at[1] + 94);
    step_to(fs->started_at[2] + 7);
    assert_int_equal(H.ndone, 1);
    assert_int_equal(H.nreleased, 0);
    assert_int_equal(rnd_used, 2);
    assert_idle();
}

static void test_retry_after_below_cap_exact(void **state)
{
    static const struct fake_script s[] = {
        {TD_RESULT_RETRY, 503, 2000, NULL},
        {TD_RESULT_OK, 200, -1, NULL},
    };
    static const uint64_t rnd[] = {0x0123456789ABCDEFull};
    struct fake_sink *fs = &H.sink[SINK];

    H.ctrg.delivery.retry_after_max_ms = 5000;
    fs->script = s;
    fs->nscript = 2;
    script_random(rnd, 1);
    route();
    step_to(T_START + 7);
    expect_start(fs, 1, fs->done_at[0] + 2000);
    step_to(fs->started_at[1] + 7);
    assert_int_equal(H.ndone, 1);
    assert_idle();
}

/* ---- the dead-letter target's own schedule ---- */

static void test_dead_letter_schedule_exact(void **state)
{
    static const struct fake_script s[] = {
        {TD_RESULT_RETRY, 503, -1, NULL},
    };
    /* the dead-letter target: Retry-After is not its business; then 200 */
    static const struct fake_script dl[] = {
        {TD_RESULT_RETRY, 503, 5000, NULL},
        {TD_RESULT_RETRY, 502, -1, NULL},
        {TD_RESULT_OK, 200, -1, NULL},
    };
    static const uint64_t rnd[] = {0x9E3779B97F4A7C15ull, 0xE5F4C8F743ull, 0x7A69ull};
    struct fake_sink *fs = &H.sink[SINK];
    struct fake_sink *ds = &H.sink[DL];

    H.ctrg.delivery.retry = 1;
    /* the sink's one retry: 45 of [0, 100]; the target's: 24 of [0, 100], raised to the
     * 50 ms floor, then 80 of [0, 150] (its second failure: the trigger's retry 2 ceiling) */
    assert_int_equal(rnd[0] % 101, 45);
    assert_int_equal(rnd[1] % 101, 24);
    assert_int_equal(rnd[2] % 151, 80);
    fs->script = s;
    fs->nscript = 1;
    ds->script = dl;
    ds->nscript = 3;
    script_random(rnd, 3);
    route();
    step_to(T_START + 7);
    expect_start(fs, 1, T_START + 7 + 45);
    /* the retry fails too: retries exhausted, dead-lettered at once, no draw */
    step_to(fs->started_at[1] + 6);
    assert_int_equal(ds->calls, 0);
    step_to(fs->started_at[1] + 7);
    assert_int_equal(rnd_used, 1);
    assert_int_equal(ds->calls, 1);
    assert_int_equal(ds->started_at[0], T_START + 7 + 45 + 7);
    /* the target fails: max(50, 24) = 50 ms, whatever its Retry-After said */
    step_to(ds->started_at[0] + 3);
    assert_int_equal(rnd_used, 2);
    expect_start(ds, 1, ds->done_at[0] + 50);
    step_to(ds->started_at[1] + 3);
    assert_int_equal(rnd_used, 3);
    expect_start(ds, 2, ds->done_at[1] + 80);
    assert_int_equal(ds->started_at[2], T_START + 7 + 45 + 7 + 3 + 50 + 3 + 80);
    /* the message stayed unacknowledged all along; acked when the dead letter is safe */
    step_to(ds->started_at[2] + 2);
    assert_int_equal(H.ndone, 0);
    assert_int_equal(H.trg.stats.dead_lettered, 0);
    step_to(ds->started_at[2] + 3);
    assert_int_equal(H.ndone, 1);
    assert_int_equal(H.nreleased, 0);
    assert_int_equal(H.trg.stats.dead_lettered, 1);
    assert_int_equal(H.trg.stats.dead_by_reason[1], 1); /* retries_exhausted */
    assert_int_equal(fs->calls, 2);
    assert_int_equal(ds->calls, 3);
    assert_int_equal(rnd_used, 3);
    assert_idle();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loop_run_once_fake_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exponential_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linear_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_capped_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_below_cap_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter_schedule_exact, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
