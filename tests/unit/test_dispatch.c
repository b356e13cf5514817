/* test_dispatch.c - unit tests for routing and dispatch (router.c, dispatch.h, core.h) on a
 * real loop with the fakes of fake_core.h around it:
 *
 *  - a fake sink (struct td_sink_ops of our own) whose deliver() records the attempt and
 *    completes it later from a loop timer with a scripted outcome (OK / RETRY / FINAL, status,
 *    Retry-After, body);
 *  - a fake source: a struct td_source whose mailbox the test drains with td_source_take_done
 *    (from a loop fd watch on its mailbox eventfd), recording each completed message once;
 *  - a minimal struct td_core: loop, config with triggers, triggers[] filled like daemon.c's
 *    build() does.
 *
 * They prove: success acks once; RETRY, RETRY, OK acks after three attempts with waits within
 * the policy (and Retry-After honoured up to its cap); FINAL dead-letters at once with the
 * dead-letter attributes; exhausted retries dead-letter with attempts = retry + 1; a failing
 * dead-letter target is retried and the message stays unacknowledged until it succeeds; no
 * dead-letter target releases; the concurrency limit holds; fan-out completes once after all
 * triggers; unmatched messages are acked at once; td_dispatch_release_waiting releases queued
 * deliveries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cloudevent.h"
#include "core.h"
#include "deadletter.h"
#include "dispatch.h"
#include "fake_core.h"
#include "filter.h"
#include "log.h"
#include "loop.h"
#include "retry.h"
#include "sink.h"
#include "source.h"

/* Generous scheduling slack for timing upper bounds (sanitizer builds, a busy machine). */
#define SLACK_MS 40

#define NSINKS 5 /* s0..s3 and the dead-letter target */
#define DL     4
#define NTRG   4

/* ---- the fakes (fake_core.h) ---- */

static struct td_source *the_source;

static bool mailbox_nonempty(void)
{
    return fake_mailbox_nonempty(the_source);
}

/* ---- the harness: core, config, source, sinks ---- */

struct done_rec {
    char id[64];
    bool release;
    int64_t at;
};

static struct harness {
    struct td_loop *loop;
    struct td_config cfg;
    struct td_conf_source csrc;
    struct td_conf_sink csinks[NSINKS];
    struct td_conf_trigger ctrg[NTRG];
    struct td_core core;
    struct td_trigger_rt trg[NTRG];
    struct td_sink *sinkp[NSINKS];
    struct td_source *srcs[1];
    struct fake_sink sink[NSINKS];
    struct done_rec done[64];
    int ndone; /* completed messages; the first 64 are recorded in done[] */
    int nreleased;
    int expect; /* stop when this many messages completed (and a settle time passed) */
    int seq;    /* event ids */
    struct td_timer guard, settle;
    bool guard_fired;
} H;

static int64_t on_guard(struct td_loop *loop, void *arg)
{
    H.guard_fired = true;
    td_loop_stop(loop);
    return TD_LOOP_NOMORE;
}

static int64_t on_settle(struct td_loop *loop, void *arg)
{
    td_loop_stop(loop);
    return TD_LOOP_NOMORE;
}

/* Drains the mailbox: each completed message is recorded and freed. */
static void drain_mailbox(void)
{
    struct td_msg *m = td_source_take_done(the_source);

    while (m) {
        struct td_msg *next = m->next;
        if (H.ndone < 64) {
            struct done_rec *r = &H.done[H.ndone];
            const char *id = td_event_get(m->ev, "id");
            snprintf(r->id, sizeof(r->id), "%s", id ? id : "");
            r->release = m->release;
            r->at = td_now_ms();
        }
        H.ndone++;
        H.nreleased += m->release;
        td_msg_free(m);
        m = next;
    }
}

static void on_mailbox(struct td_loop *loop, int fd, uint32_t events, void *arg)
{
    drain_mailbox();
    if (H.expect > 0 && H.ndone >= H.expect && !td_timer_armed(&H.settle)) {
        /* wait a little longer: a second completion of the same message would show up */
        td_timer_start(loop, &H.settle, 30);
    }
}

static void set_policy(struct td_conf_delivery *d)
{
    memset(d, 0, sizeof(*d));
    d->retry = 3;
    d->backoff = TD_BACKOFF_EXPONENTIAL;
    d->backoff_delay_ms = 5;
    d->backoff_max_ms = 20;
    d->retry_after_max_ms = 1000;
    d->concurrency = 8;
    d->dead_letter = "dead";
}

static int setup(void **state)
{
    static const char *const sink_names[NSINKS] = {"s0", "s1", "s2", "s3", "dead"};
    static const char *const trg_names[NTRG] = {"t0", "t1", "t2", "t3"};

    td_log_init((enum td_log_level)(TD_LOG_ERROR + 1), TD_LOG_TEXT); /* quiet */
    memset(&H, 0, sizeof(H));
    H.loop = td_loop_new();
    assert_non_null(H.loop);

    fake_source_conf(&H.csrc, "src");
    for (int i = 0; i < NSINKS; i++) {
        fake_sink_init(&H.sink[i], sink_names[i], H.loop, 2);
        H.csinks[i] = H.sink[i].conf;
        H.sinkp[i] = &H.sink[i].base;
    }
    for (int i = 0; i < NTRG; i++) {
        struct td_conf_trigger *c = &H.ctrg[i];
        c->name = (char *)trg_names[i];
        c->source = "src";
        c->sink = (char *)sink_names[i];
        set_policy(&c->delivery);
    }
    fake_config(&H.cfg, &H.csrc, H.csinks, NSINKS, H.ctrg, 1); /* tests that fan out raise it */

    struct td_source *src = fake_source_new(&H.csrc, &H.core);
    the_source = src;
    H.srcs[0] = src;
    fake_core_init(&H.core, &H.cfg, H.loop, H.srcs, H.sinkp, H.trg);
    for (int i = 0; i < NTRG; i++) {
        fake_trigger_init(&H.trg[i], &H.ctrg[i], &H.core, &H.sink[i].base, &H.sink[DL].base);
        H.sink[i].trg = &H.trg[i];
    }
    for (int i = 0; i < NSINKS; i++) {
        H.sink[i].watch = src;
    }
    assert_int_equal(td_loop_fd_add(H.loop, src->mailbox_fd, EPOLLIN, on_mailbox, NULL), 0);
    td_timer_init(&H.guard, on_guard, NULL);
    td_timer_init(&H.settle, on_settle, NULL);
    return 0;
}

static int teardown(void **state)
{
    td_timer_stop(H.loop, &H.guard);
    td_timer_stop(H.loop, &H.settle);
    /* whatever a failed test left behind */
    td_dispatch_abandon_all(&H.core);
    for (int i = 0; i < NSINKS; i++) {
        fake_sink_clear(&H.sink[i]);
    }
    for (int i = 0; i < NTRG; i++) {
        td_filter_free(H.ctrg[i].filter);
    }
    td_loop_fd_del(H.loop, the_source->mailbox_fd);
    td_source_free(the_source);
    the_source = NULL;
    td_loop_free(H.loop);
    return 0;
}

static struct td_event *make_event(const char *type)
{
    char id[32];
    snprintf(id, sizeof(id), "e%d", ++H.seq);
    struct td_event *ev = fake_event(id, type);

    assert_int_equal(td_event_set(ev, "datacontenttype", "application/json"), 0);
    assert_int_equal(td_event_set_data(ev, "{\"x\":1}", 7), 0);
    return ev;
}

/* A message from the fake source carrying ev (owned by the message). */
static struct td_msg *make_msg(struct td_event *ev)
{
    return fake_msg(the_source, ev);
}

/* Routes a new event of `type` (loop thread: the test thread, before or between runs). */
static struct td_msg *route(const char *type)
{
    struct td_msg *msg = make_msg(make_event(type));

    td_router_route(&H.core, msg);
    return msg;
}

/* Runs the loop until `expect` messages completed (plus a settle time) or the guard fires. */
static void run_until(int expect, int64_t guard_ms)
{
    H.expect = expect;
    assert_int_equal(td_timer_start(H.loop, &H.guard, guard_ms), 0);
    if (H.ndone >= expect) {
        assert_int_equal(td_timer_start(H.loop, &H.settle, 30), 0);
    }
    assert_int_equal(td_loop_run(H.loop), 0);
    td_timer_stop(H.loop, &H.guard);
    td_timer_stop(H.loop, &H.settle);
    if (H.guard_fired) {
        fail_msg("timed out with %d of %d messages completed", H.ndone, expect);
    }
}

/* Runs the loop for ms, whatever completes. */
static void run_for(int64_t ms)
{
    H.expect = 0;
    assert_int_equal(td_timer_start(H.loop, &H.settle, ms), 0);
    assert_int_equal(td_loop_run(H.loop), 0);
    td_timer_stop(H.loop, &H.settle);
}

static const struct td_ce_attr *attr(const struct td_event *ev, const char *name)
{
    for (size_t i = 0; i < ev->nattrs; i++) {
        if (strcmp(ev->attrs[i].name, name) == 0) {
            return &ev->attrs[i];
        }
    }
    return NULL;
}

static void assert_attr(const struct td_event *ev, const char *name, const char *value,
                        enum td_ce_vtype type)
{
    const struct td_ce_attr *a = attr(ev, name);

    if (!a) {
        fail_msg("the dead letter has no %s", name);
    }
    if (strcmp(a->value, value) != 0) {
        fail_msg("%s is '%s', want '%s'", name, a->value, value);
    }
    assert_int_equal(a->type, type);
}

static void assert_idle(void)
{
    assert_null(H.core.deliveries);
    assert_int_equal(H.core.msgs_in_flight, 0);
    for (int i = 0; i < NTRG; i++) {
        assert_int_equal(H.trg[i].running, 0);
        assert_null(H.trg[i].wait_head);
    }
}

/* ---- (a) success ---- */

static void test_success_acks_once(void **state)
{
    route("com.example.click");
    assert_int_equal(H.core.msgs_in_flight, 1);
    /* the sink reports later, from the loop: nothing is completed yet */
    assert_int_equal(H.sink[0].calls, 1);
    assert_false(mailbox_nonempty());
    run_until(1, 2000);
    assert_int_equal(H.ndone, 1);
    assert_string_equal(H.done[0].id, "e1");
    assert_false(H.done[0].release); /* TD_OUTCOME_ACK */
    assert_int_equal(H.sink[0].calls, 1);
    assert_string_equal(td_event_get(H.sink[0].seen[0], "id"), "e1");
    assert_int_equal(H.sink[DL].calls, 0);
    assert_int_equal(H.trg[0].stats.matched, 1);
    assert_int_equal(H.trg[0].stats.delivered, 1);
    assert_int_equal(H.trg[0].stats.attempts, 1);
    assert_int_equal(H.trg[0].stats.retries, 0);
    assert_int_equal(H.trg[0].stats.dead_lettered, 0);
    assert_int_equal(H.trg[0].stats.released, 0);
    assert_idle();
}

/* ---- (b) retries with backoff ---- */

static void test_retry_retry_ok(void **state)
{
    static const struct fake_script s[] = {
        {TD_RESULT_RETRY, 503, -1, "busy"},
        {TD_RESULT_RETRY, 502, -1, NULL},
        {TD_RESULT_OK, 200, -1, NULL},
    };
    struct td_conf_delivery *pol = &H.ctrg[0].delivery;

    pol->backoff_delay_ms = 30;
    pol->backoff_max_ms = 45;
    H.sink[0].script = s;
    H.sink[0].nscript = 3;
    route("com.example.click");
    run_until(1, 3000);
    assert_int_equal(H.sink[0].calls, 3);
    assert_int_equal(H.ndone, 1);
    assert_false(H.done[0].release);
    assert_int_equal(H.sink[DL].calls, 0);
    assert_int_equal(H.trg[0].stats.attempts, 3);
    assert_int_equal(H.trg[0].stats.retries, 2);
    assert_int_equal(H.trg[0].stats.delivered, 1);
    /* the waits lie in [0, ceiling]: 30 ms before retry 1, min(60, 45) before retry 2 */
    for (int i = 0; i < 2; i++) {
        int64_t wait = H.sink[0].started_at[i + 1] - H.sink[0].done_at[i];
        int64_t ceiling = td_retry_ceiling_ms(pol, i + 1);
        assert_int_equal(ceiling, i == 0 ? 30 : 45);
        if (wait < 0 || wait > ceiling + SLACK_MS) {
            fail_msg("wait before retry %d was %lld ms, ceiling %lld", i + 1, (long long)wait,
                     (long long)ceiling);
        }
    }
    /* every attempt carried the same event */
    for (int i = 0; i < 3; i++) {
        assert_string_equal(td_event_get(H.sink[0].seen[i], "id"), "e1");
    }
    assert_idle();
}

static void test_retry_after_honoured(void **state)
{
    static const struct fake_script s[] = {
        {TD_RESULT_RETRY, 429, 120, NULL},
        {TD_RESULT_OK, 200, -1, NULL},
    };

    /* the jitter alone would wait at most 5 ms */
    H.ctrg[0].delivery.backoff_delay_ms = 5;
    H.ctrg[0].delivery.backoff_max_ms = 5;
    H.sink[0].script = s;
    H.sink[0].nscript = 2;
    route("com.example.click");
    run_until(1, 3000);
    assert_int_equal(H.sink[0].calls, 2);
    int64_t wait = H.sink[0].started_at[1] - H.sink[0].done_at[0];
    if (wait < 120 || wait > 120 + SLACK_MS) {
        fail_msg("Retry-After 120 ms, waited %lld ms", (long long)wait);
    }
    assert_false(H.done[0].release);
}

static void test_retry_after_capped(void **state)
{
    static const struct fake_script s[] = {
        {TD_RESULT_RETRY, 503, 3600 * 1000, NULL},
        {TD_RESULT_OK, 200, -1, NULL},
    };

    H.ctrg[0].delivery.backoff_delay_ms = 1;
    H.ctrg[0].delivery.backoff_max_ms = 1;
    H.ctrg[0].delivery.retry_after_max_ms = 60;
    H.sink[0].script = s;
    H.sink[0].nscript = 2;
    route("com.example.click");
    run_until(1, 3000);
    assert_int_equal(H.sink[0].calls, 2);
    int64_t wait = H.sink[0].started_at[1] - H.sink[0].done_at[0];
    if (wait < 60 || wait > 60 + SLACK_MS) {
        fail_msg("Retry-After of an hour capped at 60 ms, waited %lld ms", (long long)wait);
    }
}

static void test_refused_start_is_retried(void **state)
{
    /* deliver() returning -1 counts as a retryable failure, not a lost message */
    H.sink[0].refuse_calls = 1;
    route("com.example.click");
    run_until(1, 3000);
    assert_int_equal(H.sink[0].calls, 2);
    assert_int_equal(H.trg[0].stats.attempts, 2);
    assert_int_equal(H.trg[0].stats.retries, 1);
    assert_false(H.done[0].release);
    assert_int_equal(H.sink[DL].calls, 0);
    assert_idle();
}

/* ---- (c) a final refusal goes to the dead-letter target at once ---- */

static void test_final_dead_letters_at_once(void **state)
{
    static const struct fake_script s[] = {{TD_RESULT_FINAL, 404, -1, "no such function"}};

    H.ctrg[0].delivery.retry = 5;
    H.sink[0].script = s;
    H.sink[0].nscript = 1;
    route("com.example.click");
    run_until(1, 3000);
    assert_int_equal(H.sink[0].calls, 1); /* no retry of a final status */
    assert_int_equal(H.sink[DL].calls, 1);
    /* at once: no backoff between the refusal and the dead letter */
    int64_t gap = H.sink[DL].started_at[0] - H.sink[0].done_at[0];
    assert_true(gap >= 0 && gap <= 5);
    const struct td_event *dl = H.sink[DL].seen[0];
    assert_non_null(dl);
    assert_string_equal(td_event_get(dl, "id"), "e1");
    assert_string_equal(td_event_get(dl, "type"), "com.example.click");
    assert_attr(dl, "deadletterreason", TD_DL_FINAL_STATUS, TD_CE_STRING);
    assert_attr(dl, "knativeerrorcode", "404", TD_CE_INTEGER);
    assert_attr(dl, "deadletterattempts", "1", TD_CE_INTEGER);
    assert_attr(dl, "deadlettertrigger", "t0", TD_CE_STRING);
    assert_attr(dl, "knativeerrordest", "http://fake/s0", TD_CE_STRING);
    char *b64 = td_base64_encode((const unsigned char *)"no such function", 16);
    assert_attr(dl, "knativeerrordata", b64, TD_CE_STRING);
    free(b64);
    /* the data travels unchanged */
    assert_int_equal(dl->data_len, 7);
    assert_memory_equal(dl->data, "{\"x\":1}", 7);
    /* the sink's own event was not modified */
    assert_null(td_event_get(H.sink[0].seen[0], "deadletterreason"));
    assert_int_equal(H.ndone, 1);
    assert_false(H.done[0].release); /* dead-lettered: acknowledged */
    assert_int_equal(H.trg[0].stats.dead_lettered, 1);
    assert_int_equal(H.trg[0].stats.delivered, 0);
    assert_idle();
}

/* ---- (d) retries exhausted ---- */

static void test_retries_exhausted(void **state)
{
    static const struct fake_script s[] = {{TD_RESULT_RETRY, 503, -1, "overloaded"}};

    H.ctrg[0].delivery.retry = 2;
    H.ctrg[0].delivery.backoff_delay_ms = 2;
    H.ctrg[0].delivery.backoff_max_ms = 4;
    H.sink[0].script = s;
    H.sink[0].nscript = 1;
    route("com.example.click");
    run_until(1, 3000);
    assert_int_equal(H.sink[0].calls, 3); /* retry + 1 */
    assert_int_equal(H.sink[DL].calls, 1);
    const struct td_event *dl = H.sink[DL].seen[0];
    assert_attr(dl, "deadletterreason", TD_DL_RETRIES_EXHAUSTED, TD_CE_STRING);
    assert_attr(dl, "deadletterattempts", "3", TD_CE_INTEGER);
    assert_attr(dl, "knativeerrorcode", "503", TD_CE_INTEGER);
    assert_attr(dl, "deadlettertrigger", "t0", TD_CE_STRING);
    assert_int_equal(H.ndone, 1);
    assert_false(H.done[0].release);
    assert_int_equal(H.trg[0].stats.retries, 2);
    assert_int_equal(H.trg[0].stats.dead_lettered, 1);
    assert_idle();
}

static void test_retry_zero_dead_letters_after_one(void **state)
{
    static const struct fake_script s[] = {{TD_RESULT_RETRY, 500, -1, NULL}};

    H.ctrg[0].delivery.retry = 0;
    H.sink[0].script = s;
    H.sink[0].nscript = 1;
    route("com.example.click");
    run_until(1, 3000);
    assert_int_equal(H.sink[0].calls, 1);
    assert_int_equal(H.sink[DL].calls, 1);
    assert_attr(H.sink[DL].seen[0], "deadletterattempts", "1", TD_CE_INTEGER);
    assert_attr(H.sink[DL].seen[0], "deadletterreason", TD_DL_RETRIES_EXHAUSTED, TD_CE_STRING);
    /* no body, no knativeerrordata */
    assert_null(td_event_get(H.sink[DL].seen[0], "knativeerrordata"));
}

/* No answer at all (connection refused, timeout): the transport error is the error data. */
static void test_transport_error_in_dead_letter(void **state)
{
    static const struct fake_script s[] = {{TD_RESULT_RETRY, 0, -1, "connection refused"}};

    H.ctrg[0].delivery.retry = 1;
    H.ctrg[0].delivery.backoff_delay_ms = 1;
    H.ctrg[0].delivery.backoff_max_ms = 2;
    H.sink[0].script = s;
    H.sink[0].nscript = 1;
    route("com.example.click");
    run_until(1, 3000);
    assert_int_equal(H.sink[DL].calls, 1);
    const struct td_event *dl = H.sink[DL].seen[0];
    assert_attr(dl, "knativeerrorcode", "0", TD_CE_INTEGER);
    char *b64 = td_base64_encode((const unsigned char *)"connection refused", 18);
    assert_attr(dl, "knativeerrordata", b64, TD_CE_STRING);
    free(b64);
    assert_idle();
}

/* ---- (e) a failing dead-letter target ---- */

static void test_failing_dead_letter_retried(void **state)
{
    static const struct fake_script main_s[] = {{TD_RESULT_FINAL, 400, -1, "bad request"}};
    static const struct fake_script dl_s[] = {
        {TD_RESULT_RETRY, 0, -1, NULL},
        {TD_RESULT_FINAL, 500, -1, "dlq full"}, /* any failure of the target is retried */
        {TD_RESULT_OK, 0, -1, NULL},
    };

    H.ctrg[0].delivery.backoff_delay_ms = 5;
    H.ctrg[0].delivery.backoff_max_ms = 10;
    H.sink[0].script = main_s;
    H.sink[0].nscript = 1;
    H.sink[DL].script = dl_s;
    H.sink[DL].nscript = 3;
    route("com.example.click");
    run_until(1, 4000);
    assert_int_equal(H.sink[0].calls, 1);
    assert_int_equal(H.sink[DL].calls, 3);
    /* not completed while the target failed: the mailbox stayed empty until the last attempt */
    assert_false(H.sink[DL].completed_early);
    assert_false(H.sink[0].completed_early);
    assert_int_equal(H.ndone, 1);
    assert_true(H.done[0].at >= H.sink[DL].done_at[2]);
    assert_false(H.done[0].release);
    /* every try carries the original failure, not the target's */
    for (int i = 0; i < 3; i++) {
        const struct td_event *dl = H.sink[DL].seen[i];
        assert_attr(dl, "deadletterreason", TD_DL_FINAL_STATUS, TD_CE_STRING);
        assert_attr(dl, "knativeerrorcode", "400", TD_CE_INTEGER);
        assert_attr(dl, "deadletterattempts", "1", TD_CE_INTEGER);
    }
    /* with a backoff between the tries */
    assert_true(H.sink[DL].started_at[1] >= H.sink[DL].done_at[0]);
    assert_true(H.sink[DL].started_at[2] >= H.sink[DL].done_at[1]);
    assert_int_equal(H.trg[0].stats.dead_lettered, 1);
    assert_idle();
}

static void test_dead_letter_down_keeps_message(void **state)
{
    static const struct fake_script main_s[] = {{TD_RESULT_FINAL, 422, -1, NULL}};
    static const struct fake_script dl_s[] = {{TD_RESULT_RETRY, 0, -1, NULL}};

    H.sink[0].script = main_s;
    H.sink[0].nscript = 1;
    H.sink[DL].script = dl_s;
    H.sink[DL].nscript = 1;
    route("com.example.click");
    /* the target never recovers: a while later the message is still in flight (neither acked
     * nor released) and the target keeps being tried */
    run_for(400);
    assert_int_equal(H.ndone, 0);
    assert_false(mailbox_nonempty());
    assert_int_equal(H.core.msgs_in_flight, 1);
    assert_non_null(H.core.deliveries);
    assert_int_equal(H.sink[0].calls, 1);
    assert_true(H.sink[DL].calls >= 2);
    assert_int_equal(H.trg[0].stats.dead_lettered, 0);
    assert_int_equal(H.trg[0].stats.released, 0);
}

/* ---- (f) no dead-letter target: released ---- */

static void test_no_dead_letter_releases(void **state)
{
    static const struct fake_script s[] = {{TD_RESULT_FINAL, 400, -1, NULL}};

    H.ctrg[0].delivery.dead_letter = NULL;
    H.trg[0].dead_letter = NULL;
    H.sink[0].script = s;
    H.sink[0].nscript = 1;
    route("com.example.click");
    run_until(1, 3000);
    assert_int_equal(H.ndone, 1);
    assert_true(H.done[0].release); /* TD_OUTCOME_RELEASE: left for redelivery */
    assert_int_equal(H.sink[DL].calls, 0);
    assert_int_equal(H.trg[0].stats.released, 1);
    assert_int_equal(H.trg[0].stats.dead_lettered, 0);
    assert_idle();
}

static void test_no_dead_letter_exhausted_releases(void **state)
{
    static const struct fake_script s[] = {{TD_RESULT_RETRY, 503, -1, NULL}};

    H.ctrg[0].delivery.dead_letter = NULL;
    H.trg[0].dead_letter = NULL;
    H.ctrg[0].delivery.retry = 1;
    H.sink[0].script = s;
    H.sink[0].nscript = 1;
    route("com.example.click");
    run_until(1, 3000);
    assert_int_equal(H.sink[0].calls, 2);
    assert_int_equal(H.ndone, 1);
    assert_true(H.done[0].release);
    assert_int_equal(H.trg[0].stats.released, 1);
    assert_idle();
}

/* ---- (g) the concurrency limit ---- */

static void test_concurrency_limit(void **state)
{
    H.ctrg[0].delivery.concurrency = 2;
    H.sink[0].delay_ms = 10;
    for (int i = 0; i < 10; i++) {
        route("com.example.click");
    }
    /* two started, eight wait */
    assert_int_equal(H.sink[0].calls, 2);
    assert_int_equal(H.trg[0].running, 2);
    run_until(10, 4000);
    assert_int_equal(H.ndone, 10);
    assert_int_equal(H.sink[0].calls, 10);
    assert_int_equal(H.sink[0].max_inflight, 2);
    assert_int_equal(H.sink[0].max_running, 2);
    /* each message once, none released */
    for (int i = 0; i < 10; i++) {
        assert_false(H.done[i].release);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(H.done[i].id, H.done[j].id);
        }
    }
    /* first come, first served */
    for (int i = 0; i < 10; i++) {
        char want[16];
        snprintf(want, sizeof(want), "e%d", i + 1);
        assert_string_equal(td_event_get(H.sink[0].seen[i], "id"), want);
    }
    assert_idle();
}

static void test_backoff_holds_no_slot(void **state)
{
    /* A fails and waits 100 ms (Retry-After); with concurrency 1, B must go meanwhile */
    static const struct fake_script s[] = {
        {TD_RESULT_RETRY, 503, 100, NULL},
        {TD_RESULT_OK, 200, -1, NULL},
    };

    H.ctrg[0].delivery.concurrency = 1;
    H.sink[0].script = s;
    H.sink[0].nscript = 2;
    route("com.example.click");
    route("com.example.click");
    run_until(2, 3000);
    assert_int_equal(H.sink[0].calls, 3);
    assert_string_equal(td_event_get(H.sink[0].seen[0], "id"), "e1");
    assert_string_equal(td_event_get(H.sink[0].seen[1], "id"), "e2");
    assert_string_equal(td_event_get(H.sink[0].seen[2], "id"), "e1");
    assert_true(H.sink[0].started_at[1] < H.sink[0].done_at[0] + 100);
    assert_int_equal(H.sink[0].max_inflight, 1);
    assert_int_equal(H.ndone, 2);
    assert_string_equal(H.done[0].id, "e2");
    assert_string_equal(H.done[1].id, "e1");
    assert_idle();
}

/* ---- (h) fan-out and unmatched messages ---- */

static struct td_filter *exact_type(const char *type)
{
    struct td_filter *f = td_filter_new(TD_FILTER_EXACT);

    assert_non_null(f);
    assert_int_equal(td_filter_add_attr(f, "type", type), 0);
    return f;
}

static void fan_out_setup(void)
{
    H.cfg.ntriggers = 4;
    H.ctrg[0].filter = exact_type("com.example.click");
    H.ctrg[1].filter = exact_type("com.example.click");
    H.ctrg[2].filter = td_filter_new(TD_FILTER_PREFIX);
    assert_int_equal(td_filter_add_attr(H.ctrg[2].filter, "type", "com.example."), 0);
    H.ctrg[3].filter = exact_type("com.example.other");
    H.sink[0].delay_ms = 5;
    H.sink[1].delay_ms = 20;
    H.sink[2].delay_ms = 40;
}

static void test_fan_out_completes_once(void **state)
{
    fan_out_setup();
    route("com.example.click");
    assert_int_equal(H.core.msgs_in_flight, 1);
    run_until(1, 3000);
    assert_int_equal(H.sink[0].calls, 1);
    assert_int_equal(H.sink[1].calls, 1);
    assert_int_equal(H.sink[2].calls, 1);
    assert_int_equal(H.sink[3].calls, 0); /* its filter does not match */
    for (int i = 0; i < 3; i++) {
        /* none of the three saw the message completed before it finished */
        assert_false(H.sink[i].completed_early);
        assert_string_equal(td_event_get(H.sink[i].seen[0], "id"), "e1");
        assert_int_equal(H.trg[i].stats.matched, 1);
        assert_int_equal(H.trg[i].stats.delivered, 1);
    }
    assert_int_equal(H.trg[3].stats.matched, 0);
    assert_int_equal(H.ndone, 1); /* exactly once */
    assert_false(H.done[0].release);
    assert_true(H.done[0].at >= H.sink[2].done_at[0]);
    assert_int_equal(H.core.unmatched, 0);
    assert_idle();
}

static void test_fan_out_one_release_releases(void **state)
{
    static const struct fake_script fail[] = {{TD_RESULT_FINAL, 400, -1, NULL}};

    fan_out_setup();
    H.ctrg[1].delivery.dead_letter = NULL;
    H.trg[1].dead_letter = NULL;
    H.sink[1].script = fail;
    H.sink[1].nscript = 1;
    route("com.example.click");
    run_until(1, 3000);
    assert_int_equal(H.ndone, 1);
    /* one trigger could not finish: the whole message is left for redelivery, once */
    assert_true(H.done[0].release);
    assert_true(H.done[0].at >= H.sink[2].done_at[0]);
    assert_false(H.sink[2].completed_early);
    assert_idle();
}

static void test_unmatched_acked_at_once(void **state)
{
    fan_out_setup();
    route("org.example.nobody.wants.this");
    /* completed before td_router_route returned: no loop turn needed */
    assert_true(mailbox_nonempty());
    assert_int_equal(H.core.unmatched, 1);
    assert_int_equal(H.core.msgs_in_flight, 0);
    drain_mailbox();
    assert_int_equal(H.ndone, 1);
    assert_false(H.done[0].release);
    for (int i = 0; i < NTRG; i++) {
        assert_int_equal(H.sink[i].calls, 0);
    }
    assert_idle();
}

static void test_other_source_not_routed(void **state)
{
    /* a trigger on another source never sees this source's messages */
    H.ctrg[0].source = "elsewhere";
    route("com.example.click");
    assert_true(mailbox_nonempty());
    assert_int_equal(H.sink[0].calls, 0);
    assert_int_equal(H.core.unmatched, 1);
    drain_mailbox();
    assert_false(H.done[0].release);
}

static void test_emit_through_loop(void **state)
{
    /* the source side: td_source_emit hands a batch to the core, which routes on the loop */
    struct td_msg *a = make_msg(make_event("com.example.click"));
    struct td_msg *b = make_msg(make_event("com.example.click"));

    atomic_store(&the_source->inflight, 0);
    a->next = b;
    td_source_emit(the_source, a);
    assert_int_equal(atomic_load(&the_source->inflight), 2);
    assert_int_equal(H.sink[0].calls, 0); /* not routed on the emitting thread */
    run_until(2, 3000);
    assert_int_equal(H.ndone, 2);
    assert_int_equal(H.sink[0].calls, 2);
    assert_int_equal(atomic_load(&the_source->inflight), 0);
    assert_int_equal(td_source_credit(the_source), 100);
    assert_idle();
}

/* ---- invalid messages ---- */

static void test_invalid_message_dead_lettered(void **state)
{
    struct td_msg *msg = make_msg(make_event("com.example.click"));

    msg->invalid = strdup("missing required attribute 'type'");
    td_router_route(&H.core, msg);
    run_until(1, 3000);
    assert_int_equal(H.sink[0].calls, 0);
    assert_int_equal(H.sink[DL].calls, 1);
    const struct td_event *dl = H.sink[DL].seen[0];
    assert_attr(dl, "deadletterreason", TD_DL_INVALID_EVENT, TD_CE_STRING);
    assert_attr(dl, "deadlettertrigger", "t0", TD_CE_STRING);
    char *b64 = td_base64_encode((const unsigned char *)"missing required attribute 'type'", 33);
    assert_attr(dl, "knativeerrordata", b64, TD_CE_STRING);
    free(b64);
    assert_int_equal(H.ndone, 1);
    assert_false(H.done[0].release);
    assert_idle();
}

/* ---- (i) shutdown: release what waits ---- */

static void test_release_waiting(void **state)
{
    H.ctrg[0].delivery.concurrency = 1;
    H.sink[0].delay_ms = 30;
    route("com.example.click");
    route("com.example.click");
    route("com.example.click");
    assert_int_equal(H.sink[0].calls, 1);
    assert_non_null(H.trg[0].wait_head);
    td_dispatch_release_waiting(&H.trg[0]);
    assert_null(H.trg[0].wait_head);
    assert_null(H.trg[0].wait_tail);
    /* the two waiting ones are completed (released) at once */
    drain_mailbox();
    assert_int_equal(H.ndone, 2);
    assert_true(H.done[0].release);
    assert_true(H.done[1].release);
    assert_true(strcmp(H.done[0].id, "e1") != 0 && strcmp(H.done[1].id, "e1") != 0);
    assert_int_equal(H.trg[0].stats.released, 2);
    assert_int_equal(H.core.msgs_in_flight, 1);
    /* the running one finishes normally */
    run_until(3, 3000);
    assert_int_equal(H.ndone, 3);
    assert_string_equal(H.done[2].id, "e1");
    assert_false(H.done[2].release);
    assert_int_equal(H.sink[0].calls, 1);
    /* a new submission after the release still works */
    route("com.example.click");
    run_until(4, 3000);
    assert_int_equal(H.sink[0].calls, 2);
    assert_false(H.done[3].release);
    assert_idle();
}

/* ---- (j) rebalance: cancel what a source gave up and has not started ---- */

static struct td_msg *route_ordered(uint64_t gen, uint64_t lane)
{
    struct td_msg *msg = make_msg(make_event("com.example.click"));

    msg->ordered = true;
    msg->lane_partition = msg->lane_key = lane;
    msg->gen = gen;
    td_router_route(&H.core, msg);
    return msg;
}

static void test_cancel_generation(void **state)
{
    /* e1 fails once and waits 200 ms to retry; everything else succeeds after 30 ms */
    static const struct fake_script s[] = {
        {TD_RESULT_RETRY, 503, 200, NULL},
        {TD_RESULT_OK, 200, -1, NULL},
    };

    H.ctrg[0].delivery.ordering = TD_ORDER_PARTITION;
    H.sink[0].delay_ms = 30;
    H.sink[0].script = s;
    H.sink[0].nscript = 2;
    route_ordered(1, 1); /* e1: runs, then retries */
    route_ordered(1, 1); /* e2, e3: behind e1 */
    route_ordered(1, 1);
    route_ordered(1, 2); /* e4 runs; e5 behind it */
    route_ordered(1, 2);
    route_ordered(2, 3); /* another generation: e6 runs, e7 behind it */
    route_ordered(2, 3);
    assert_int_equal(H.sink[0].calls, 3);
    run_for(45); /* e1 waits to retry, e4 and e6 done, e5 and e7 running */
    drain_mailbox();
    assert_int_equal(H.ndone, 2);
    assert_int_equal(H.sink[0].calls, 5);
    /* generation 1: e1 (retry timer), e2 and e3 (lane) are cancelled; e5 runs on */
    assert_int_equal(td_dispatch_cancel(&H.core, the_source, 1), 3);
    drain_mailbox();
    assert_int_equal(H.ndone, 5);
    for (int i = 2; i < 5; i++) {
        assert_true(H.done[i].release);
        assert_true(strcmp(H.done[i].id, "e1") == 0 || strcmp(H.done[i].id, "e2") == 0 ||
                    strcmp(H.done[i].id, "e3") == 0);
    }
    assert_int_equal(td_dispatch_cancel(&H.core, the_source, 1), 0);
    run_until(7, 3000);
    assert_int_equal(H.ndone, 7);
    assert_false(H.done[5].release);
    assert_false(H.done[6].release);
    assert_int_equal(H.sink[0].calls, 5); /* e1 was never retried */
    assert_idle();
}

static void test_release_waiting_empty(void **state)
{
    td_dispatch_release_waiting(&H.trg[0]);
    assert_int_equal(H.trg[0].stats.released, 0);
    assert_false(mailbox_nonempty());
}

static void test_draining_releases_new_messages(void **state)
{
    H.core.draining = true;
    route("com.example.click");
    assert_true(mailbox_nonempty());
    drain_mailbox();
    assert_true(H.done[0].release);
    assert_int_equal(H.sink[0].calls, 0);
    assert_int_equal(H.core.msgs_in_flight, 0);
}

/* ---- deep queues ---- */

struct deep_ctx {
    int n;
    bool guard_fired;
};

/* Runs on a thread with a small stack: the loop, the router and dispatch all run here. No
 * cmocka assertion may fail on this thread (the checks are made after the join). */
static void *deep_main(void *arg)
{
    struct deep_ctx *c = arg;

    /* one real attempt holds the only slot, so everything after it waits in the queue */
    route("com.example.click");
    H.sink[0].refuse_all = true;
    for (int i = 0; i < c->n; i++) {
        route("com.example.click");
    }
    H.expect = c->n + 1;
    td_timer_start(H.loop, &H.guard, 10000);
    td_loop_run(H.loop);
    td_timer_stop(H.loop, &H.guard);
    td_timer_stop(H.loop, &H.settle);
    c->guard_fired = H.guard_fired;
    return NULL;
}

/* When the slot frees, every queued delivery whose deliver() fails to start (a sink that
 * cannot connect) fails at once; working through the queue must not nest one call per queued
 * delivery on the stack. 20000 queued deliveries on a 1 MiB stack. */
static void test_sync_refusals_do_not_recurse(void **state)
{
    struct deep_ctx c = {.n = 20000};
    pthread_attr_t attr;
    pthread_t th;

    H.ctrg[0].delivery.concurrency = 1;
    H.ctrg[0].delivery.retry = 0;
    H.ctrg[0].delivery.dead_letter = NULL;
    H.trg[0].dead_letter = NULL;
    H.sink[0].delay_ms = 5;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, 1 << 20), 0);
    assert_int_equal(pthread_create(&th, &attr, deep_main, &c), 0);
    pthread_join(th, NULL);
    pthread_attr_destroy(&attr);
    assert_false(c.guard_fired);
    assert_int_equal(H.ndone, c.n + 1);
    assert_int_equal(H.nreleased, c.n); /* all but the first: no dead-letter target */
    assert_int_equal(H.sink[0].calls, c.n + 1);
    assert_idle();
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_success_acks_once),
        T(test_retry_retry_ok),
        T(test_retry_after_honoured),
        T(test_retry_after_capped),
        T(test_refused_start_is_retried),
        T(test_final_dead_letters_at_once),
        T(test_retries_exhausted),
        T(test_retry_zero_dead_letters_after_one),
        T(test_transport_error_in_dead_letter),
        T(test_failing_dead_letter_retried),
        T(test_dead_letter_down_keeps_message),
        T(test_no_dead_letter_releases),
        T(test_no_dead_letter_exhausted_releases),
        T(test_concurrency_limit),
        T(test_backoff_holds_no_slot),
        T(test_fan_out_completes_once),
        T(test_fan_out_one_release_releases),
        T(test_unmatched_acked_at_once),
        T(test_other_source_not_routed),
        T(test_emit_through_loop),
        T(test_invalid_message_dead_lettered),
        T(test_release_waiting),
        T(test_release_waiting_empty),
        T(test_cancel_generation),
        T(test_draining_releases_new_messages),
        /* last: with the recursion bug it overflows the stack and kills the process */
        T(test_sync_refusals_do_not_recurse),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
