/* dispatch.c - attempts, retries and dead letters of every delivery (see dispatch.h).
 *
 * A delivery moves WAITING -> RUNNING -> (BACKOFF -> WAITING)* -> done, or, once the sink
 * refused it for good or the retries ran out, DEAD_LETTER (RUNNING/BACKOFF on the dead-letter
 * target) -> done. Waiting for a retry holds no slot of the trigger's concurrency limit and
 * never blocks anything: it is a timer on the loop. A dead-letter target that fails is
 * retried with the trigger's backoff for as long as the daemon runs; the source message stays
 * unacknowledged meanwhile.
 */
#include "dispatch.h"

#include <stdlib.h>
#include <string.h>

#include "cloudevent.h"
#include "core.h"
#include "deadletter.h"
#include "log.h"
#include "retry.h"
#include "source.h"

enum dstate { D_WAITING, D_RUNNING, D_BACKOFF, D_DL_RUNNING, D_DL_BACKOFF };

struct td_delivery {
    struct td_delivery *next; /* wait queue */
    struct td_delivery *all_prev, *all_next;
    struct td_trigger_rt *trg;
    struct td_msg *msg;
    struct td_event *ev;    /* what the sink gets (one reference) */
    struct td_event *dl_ev; /* what the dead-letter target gets (one reference) */
    const char *dl_reason;
    enum dstate state;
    int attempts;    /* on the sink */
    int dl_attempts; /* on the dead-letter target */
    struct td_attempt attempt;
    struct td_timer timer;
};

static void start_attempt(struct td_delivery *d);
static void start_dl_attempt(struct td_delivery *d);
static int64_t on_retry_timer(struct td_loop *loop, void *arg);
static void on_attempt_done(struct td_attempt *a);

static const char *event_id(const struct td_delivery *d)
{
    return td_event_get(d->ev, "id");
}

static struct td_delivery *delivery_new(struct td_trigger_rt *trg, struct td_msg *msg,
                                        struct td_event *ev)
{
    struct td_delivery *d = calloc(1, sizeof(*d));
    if (!d) {
        return NULL;
    }
    d->trg = trg;
    d->msg = msg;
    d->ev = td_event_ref(ev);
    d->attempt.retry_after_ms = -1;
    d->attempt.done = on_attempt_done;
    d->attempt.owner = d;
    td_timer_init(&d->timer, on_retry_timer, d);
    struct td_core *core = trg->core;
    d->all_next = core->deliveries;
    if (core->deliveries) {
        core->deliveries->all_prev = d;
    }
    core->deliveries = d;
    return d;
}

static void delivery_free(struct td_delivery *d)
{
    struct td_core *core = d->trg->core;
    td_timer_stop(core->loop, &d->timer);
    if (d->all_prev) {
        d->all_prev->all_next = d->all_next;
    } else {
        core->deliveries = d->all_next;
    }
    if (d->all_next) {
        d->all_next->all_prev = d->all_prev;
    }
    td_event_unref(d->ev);
    td_event_unref(d->dl_ev);
    td_attempt_reset(&d->attempt);
    free(d);
}

/* The delivery is over; its message counts down. */
static void finish(struct td_delivery *d, bool release)
{
    struct td_core *core = d->trg->core;
    struct td_msg *msg = d->msg;
    if (release) {
        d->trg->stats.released++;
    }
    delivery_free(d);
    td_core_msg_done(core, msg, release);
}

/* Starts waiting deliveries while the trigger has free slots. */
static void pump(struct td_trigger_rt *trg)
{
    int limit = trg->conf->delivery.concurrency > 0 ? trg->conf->delivery.concurrency : 1;
    while (trg->running < limit && trg->wait_head) {
        struct td_delivery *d = trg->wait_head;
        trg->wait_head = d->next;
        if (!trg->wait_head) {
            trg->wait_tail = NULL;
        }
        d->next = NULL;
        start_attempt(d);
    }
}

static void enqueue(struct td_trigger_rt *trg, struct td_delivery *d, bool front)
{
    d->state = D_WAITING;
    d->next = NULL;
    if (front) {
        d->next = trg->wait_head;
        trg->wait_head = d;
        if (!trg->wait_tail) {
            trg->wait_tail = d;
        }
    } else {
        if (trg->wait_tail) {
            trg->wait_tail->next = d;
        } else {
            trg->wait_head = d;
        }
        trg->wait_tail = d;
    }
}

static int64_t on_retry_timer(struct td_loop *loop, void *arg)
{
    struct td_delivery *d = arg;
    struct td_trigger_rt *trg = d->trg;
    if (d->state == D_DL_BACKOFF) {
        start_dl_attempt(d);
        return TD_LOOP_NOMORE;
    }
    /* Retries go to the front: they are older than anything queued behind them. */
    enqueue(trg, d, true);
    pump(trg);
    return TD_LOOP_NOMORE;
}

static void dead_letter(struct td_delivery *d, const char *reason)
{
    struct td_trigger_rt *trg = d->trg;
    const char *name = trg->conf->name;
    if (!trg->dead_letter) {
        td_log_error(name, d->msg->src->name, event_id(d),
                     "delivery failed (%s, %s) and the trigger has no dead_letter target; "
                     "left unacknowledged for redelivery",
                     reason, d->attempt.reason);
        finish(d, true);
        return;
    }
    d->dl_reason = reason;
    d->dl_ev =
        td_deadletter_event(d->ev, name, trg->sink ? trg->sink->dest : "", d->attempt.http_status,
                            d->attempt.body, d->attempt.body_len, reason, d->attempts);
    if (!d->dl_ev) {
        td_log_error(name, d->msg->src->name, event_id(d),
                     "out of memory building the dead letter; left for redelivery");
        finish(d, true);
        return;
    }
    start_dl_attempt(d);
}

static void start_attempt(struct td_delivery *d)
{
    struct td_trigger_rt *trg = d->trg;
    const struct td_conf_delivery *pol = &trg->conf->delivery;
    d->state = D_RUNNING;
    d->attempts++;
    trg->running++;
    trg->stats.attempts++;
    td_attempt_reset(&d->attempt);
    d->attempt.ev = d->ev;
    d->attempt.timeout_ms = pol->timeout_ms;
    d->attempt.retry_on = pol->retry_on;
    d->attempt.nretry_on = pol->nretry_on;
    if (trg->sink->ops->deliver(trg->sink, d->ev, &d->attempt) < 0) {
        /* Could not even start: a retryable failure, handled as if the sink had said so. */
        d->attempt.result = TD_RESULT_RETRY;
        on_attempt_done(&d->attempt);
    }
}

static void start_dl_attempt(struct td_delivery *d)
{
    struct td_trigger_rt *trg = d->trg;
    d->state = D_DL_RUNNING;
    d->dl_attempts++;
    int code = d->attempt.http_status;
    td_attempt_reset(&d->attempt);
    d->attempt.http_status = code;
    d->attempt.ev = d->dl_ev;
    d->attempt.timeout_ms = 0; /* the target's own timeout */
    d->attempt.retry_on = NULL;
    d->attempt.nretry_on = 0;
    if (trg->dead_letter->ops->deliver(trg->dead_letter, d->dl_ev, &d->attempt) < 0) {
        d->attempt.result = TD_RESULT_RETRY;
        on_attempt_done(&d->attempt);
    }
}

static void sink_attempt_done(struct td_delivery *d)
{
    struct td_trigger_rt *trg = d->trg;
    const struct td_conf_delivery *pol = &trg->conf->delivery;
    const char *name = trg->conf->name;
    struct td_attempt *a = &d->attempt;
    trg->running--;
    if (a->result == TD_RESULT_OK) {
        trg->stats.delivered++;
        td_log_debug(name, d->msg->src->name, event_id(d), "delivered (%s, attempt %d)", a->reason,
                     d->attempts);
        finish(d, false);
    } else if (a->result == TD_RESULT_RETRY && d->attempts <= pol->retry) {
        int64_t wait = td_retry_delay_ms(pol, d->attempts, a->retry_after_ms, td_random());
        trg->stats.retries++;
        td_log_info(name, d->msg->src->name, event_id(d),
                    "attempt %d failed (%s); retrying in %lld ms", d->attempts, a->reason,
                    (long long)wait);
        d->state = D_BACKOFF;
        if (td_timer_start(trg->core->loop, &d->timer, wait) < 0) {
            finish(d, true);
        }
    } else {
        const char *reason =
            a->result == TD_RESULT_FINAL ? TD_DL_FINAL_STATUS : TD_DL_RETRIES_EXHAUSTED;
        td_log_warn(name, d->msg->src->name, event_id(d), "attempt %d failed (%s): %s", d->attempts,
                    a->reason, reason);
        dead_letter(d, reason);
    }
    pump(trg);
}

static void dl_attempt_done(struct td_delivery *d)
{
    struct td_trigger_rt *trg = d->trg;
    const char *name = trg->conf->name;
    struct td_attempt *a = &d->attempt;
    if (a->result == TD_RESULT_OK) {
        trg->stats.dead_lettered++;
        td_log_warn(name, d->msg->src->name, event_id(d), "dead-lettered to '%s' (%s)",
                    trg->dead_letter->name, d->dl_reason);
        finish(d, false);
        return;
    }
    /* Keep trying: the source message is not acknowledged until the dead letter is safe. */
    int retry = d->dl_attempts < 16 ? d->dl_attempts : 16;
    int64_t wait = td_retry_delay_ms(&trg->conf->delivery, retry, -1, td_random());
    if (wait < 50) {
        wait = 50;
    }
    td_log_warn(name, d->msg->src->name, event_id(d),
                "dead-letter target '%s' failed (%s); retrying in %lld ms", trg->dead_letter->name,
                a->reason, (long long)wait);
    d->state = D_DL_BACKOFF;
    if (td_timer_start(trg->core->loop, &d->timer, wait) < 0) {
        finish(d, true);
    }
}

static void on_attempt_done(struct td_attempt *a)
{
    struct td_delivery *d = a->owner;
    if (d->state == D_RUNNING) {
        sink_attempt_done(d);
    } else if (d->state == D_DL_RUNNING) {
        dl_attempt_done(d);
    }
}

void td_dispatch_submit(struct td_trigger_rt *trg, struct td_msg *msg, struct td_event *ev)
{
    struct td_delivery *d = delivery_new(trg, msg, ev);
    if (!d) {
        td_log_error(trg->conf->name, msg->src->name, td_event_get(ev, "id"),
                     "out of memory; left for redelivery");
        td_core_msg_done(trg->core, msg, true);
        return;
    }
    trg->stats.matched++;
    enqueue(trg, d, false);
    pump(trg);
}

void td_dispatch_dead_letter(struct td_trigger_rt *trg, struct td_msg *msg, struct td_event *ev,
                             const char *reason)
{
    struct td_delivery *d = delivery_new(trg, msg, ev);
    if (!d) {
        td_core_msg_done(trg->core, msg, true);
        return;
    }
    td_log_warn(trg->conf->name, msg->src->name, td_event_get(ev, "id"), "%s%s%s", reason,
                msg->invalid ? ": " : "", msg->invalid ? msg->invalid : "");
    if (msg->invalid) {
        snprintf(d->attempt.reason, sizeof(d->attempt.reason), "%s", msg->invalid);
        /* The reason travels in knativeerrordata, as Knative does with response bodies. */
        free(d->attempt.body);
        d->attempt.body = (unsigned char *)strdup(msg->invalid);
        d->attempt.body_len = d->attempt.body ? strlen(msg->invalid) : 0;
    }
    d->state = D_DL_RUNNING;
    dead_letter(d, reason);
}

void td_dispatch_release_waiting(struct td_trigger_rt *trg)
{
    while (trg->wait_head) {
        struct td_delivery *d = trg->wait_head;
        trg->wait_head = d->next;
        finish(d, true);
    }
    trg->wait_tail = NULL;
}

void td_dispatch_abandon_all(struct td_core *core)
{
    while (core->deliveries) {
        struct td_delivery *d = core->deliveries;
        struct td_msg *msg = d->msg;
        delivery_free(d);
        if (--msg->pending == 0) {
            td_msg_free(msg); /* never acknowledged: the broker redelivers it */
        }
    }
}
