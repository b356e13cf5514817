/* test_backoff_clock.c - the dispatch's backoff schedule, exactly, on an injected clock.
 *
 * The loop's clock is a variable of this file (td_clock_set) and the jitter's random numbers
 * are scripted (td_random_set), so every wait is known to the millisecond: the test moves the
 * clock one millisecond at a time and runs one loop iteration (td_loop_run_once(loop, 0))
 * after each step, then checks that an attempt starts exactly when the policy says, and not
 * one millisecond earlier. No sleeping, no slack.
 *
 * The scaffolding is test_dispatch.c's, cut down: a fake sink whose deliver() records the
 * attempt and completes it from a loop timer (fake time) with a scripted outcome; a fake
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

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cloudevent.h"
#include "core.h"
#include "deadletter.h"
#include "dispatch.h"
#include "log.h"
#include "loop.h"
#include "retry.h"
#include "router.h"
#include "sink.h"
#include "source.h"

#define MAXCALLS 16
#define NSINKS   2 /* the trigger's sink and the dead-letter target */
#define SINK     0
#define DL       1

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

/* ---- the fake sink ---- */

struct script {
    enum td_result r;
    int status;
    int64_t retry_after_ms;
};

struct fake_sink;

struct pending {
    struct td_timer timer;
    struct fake_sink *fs;
    struct td_attempt *a;
    struct script res;
    int call;
    struct pending *next;
};

struct fake_sink {
    struct td_sink base; /* first: the td_sink pointer is the fake_sink pointer */
    struct td_conf_sink conf;
    const struct script *script; /* outcome of call i: script[min(i, nscript - 1)]; none: OK */
    size_t nscript;
    int64_t delay_ms; /* from deliver() to td_attempt_done(), on the fake clock */
    int calls;
    int64_t started_at[MAXCALLS];
    int64_t done_at[MAXCALLS];
    struct pending *pending;
};

static int64_t on_complete(struct td_loop *loop, void *arg)
{
    struct pending *p = arg;
    struct fake_sink *fs = p->fs;

    for (struct pending **pp = &fs->pending; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    struct td_attempt *a = p->a;
    struct script res = p->res;
    int call = p->call;
    free(p); /* the loop allows freeing the timer's owner when returning NOMORE */
    if (call < MAXCALLS) {
        fs->done_at[call] = td_now_ms();
    }
    char reason[64];
    snprintf(reason, sizeof(reason), "fake %d", res.status);
    td_attempt_done(a, res.r, res.status, res.retry_after_ms, reason, NULL, 0);
    return TD_LOOP_NOMORE;
}

static int fake_deliver(struct td_sink *k, const struct td_event *ev, struct td_attempt *a)
{
    struct fake_sink *fs = (struct fake_sink *)k;
    int call = fs->calls++;

    assert_ptr_equal(a->ev, ev);
    if (call < MAXCALLS) {
        fs->started_at[call] = td_now_ms();
    }
    struct pending *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->fs = fs;
    p->a = a;
    p->call = call;
    p->res = (struct script){TD_RESULT_OK, 200, -1};
    if (fs->nscript > 0) {
        p->res = fs->script[(size_t)call < fs->nscript ? (size_t)call : fs->nscript - 1];
    }
    p->next = fs->pending;
    fs->pending = p;
    a->sink_state = p;
    td_timer_init(&p->timer, on_complete, p);
    assert_int_equal(td_timer_start(k->loop, &p->timer, fs->delay_ms), 0);
    return 0;
}

static const struct td_sink_ops fake_ops = {.name = "fake", .deliver = fake_deliver};

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

    H.csrc.name = "src";
    H.csrc.kind = TD_SOURCE_REDIS;
    H.csrc.max_inflight = 100;
    for (int i = 0; i < NSINKS; i++) {
        struct fake_sink *fs = &H.sink[i];
        fs->conf.name = (char *)sink_names[i];
        fs->conf.kind = TD_SINK_HTTP;
        fs->base.ops = &fake_ops;
        fs->base.conf = &fs->conf;
        fs->base.name = sink_names[i];
        fs->base.loop = H.loop;
        snprintf(fs->base.dest, sizeof(fs->base.dest), "http://fake/%s", sink_names[i]);
        H.csinks[i] = fs->conf;
        H.sinkp[i] = &fs->base;
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

    H.cfg.version = 1;
    H.cfg.sources = &H.csrc;
    H.cfg.nsources = 1;
    H.cfg.sinks = H.csinks;
    H.cfg.nsinks = NSINKS;
    H.cfg.triggers = &H.ctrg;
    H.cfg.ntriggers = 1;

    struct td_source *src = calloc(1, sizeof(*src));
    assert_non_null(src);
    src->conf = &H.csrc;
    src->name = H.csrc.name;
    src->emit = td_core_emit;
    src->core = &H.core;
    pthread_mutex_init(&src->mu, NULL);
    src->mailbox_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(src->mailbox_fd >= 0);
    H.src = src;
    H.srcs[0] = src;

    H.core.cfg = &H.cfg;
    H.core.loop = H.loop;
    H.core.sources = H.srcs;
    H.core.sinks = H.sinkp;
    H.core.triggers = &H.trg;
    /* as daemon.c's build() does */
    H.trg.conf = &H.ctrg;
    H.trg.core = &H.core;
    H.trg.sink = &H.sink[SINK].base;
    H.trg.dead_letter = &H.sink[DL].base;
    return 0;
}

static int teardown(void **state)
{
    /* whatever a failed test left behind */
    td_dispatch_abandon_all(&H.core);
    for (int i = 0; i < NSINKS; i++) {
        struct fake_sink *fs = &H.sink[i];
        while (fs->pending) {
            struct pending *p = fs->pending;
            fs->pending = p->next;
            td_timer_stop(H.loop, &p->timer);
            free(p);
        }
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
    struct td_event *ev = td_event_new();

    assert_non_null(ev);
    assert_int_equal(td_event_set(ev, "specversion", "1.0"), 0);
    assert_int_equal(td_event_set(ev, "id", "e1"), 0);
    assert_int_equal(td_event_set(ev, "source", "/test"), 0);
    assert_int_equal(td_event_set(ev, "type", "com.example.click"), 0);
    struct td_msg *msg = calloc(1, sizeof(*msg));
    assert_non_null(msg);
    msg->src = H.src;
    msg->ev = ev;
    msg->received_ms = td_now_ms();
    atomic_fetch_add(&H.src->inflight, 1);
    td_router_route(&H.core, msg);
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
    static const struct script s[] = {
        {TD_RESULT_RETRY, 503, -1},
        {TD_RESULT_RETRY, 503, -1},
        {TD_RESULT_OK, 200, -1},
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
    static const struct script s[] = {
        {TD_RESULT_RETRY, 503, -1},
        {TD_RESULT_RETRY, 503, -1},
        {TD_RESULT_RETRY, 500, -1},
        {TD_RESULT_OK, 200, -1},
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
    static const struct script s[] = {
        {TD_RESULT_RETRY, 429, 2000}, /* Retry-After: 2 */
        {TD_RESULT_RETRY, 429, 30},   /* below the jitter: the jitter stands */
        {TD_RESULT_OK, 200, -1},
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
    static const struct script s[] = {
        {TD_RESULT_RETRY, 503, 2000},
        {TD_RESULT_OK, 200, -1},
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
    static const struct script s[] = {
        {TD_RESULT_RETRY, 503, -1},
    };
    /* the dead-letter target: Retry-After is not its business; then 200 */
    static const struct script dl[] = {
        {TD_RESULT_RETRY, 503, 5000},
        {TD_RESULT_RETRY, 502, -1},
        {TD_RESULT_OK, 200, -1},
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
