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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cloudevent.h"
#include "complete.h"
#include "core_state.h"
#include "deadletter.h"
#include "log.h"
#include "retry.h"
#include "source.h"
#include "stats.h"
#include "tracer.h"

enum dstate {
    D_WAITING,
    D_RUNNING,
    D_BATCH_RUNNING, /* in a batch on the sink (batch.c): the batch holds the slot */
    D_BACKOFF,
    D_DL_RUNNING,
    D_DL_BACKOFF,
    D_REPLY_RUNNING, /* the sink answered with a reply event: on its way to the reply target */
    D_REPLY_BACKOFF
};

/* Reply events (trigger reply:): the loop guard. A reply carries REPLY_TTL_ATTR = the TTL of
 * the event that caused it (REPLY_TTL_DEFAULT when it has none or a bad one) minus one; a
 * reply whose TTL would reach 0 is dropped, logged and counted (stats.replies_dropped), and
 * the original is acknowledged. */
#define REPLY_TTL_ATTR    "triggerdttl"
#define REPLY_TTL_DEFAULT 10

struct td_delivery {
    struct td_delivery *next; /* wait queue, or the queue of its lane */
    struct td_lane *lane;     /* ordering: the lane it heads, NULL when unordered */
    /* delivery.batch with ordering: the events of one lane that travel in one batch after its
     * head, in lane order: follows is their lane (they do not own it), follower the next one. */
    struct td_lane *follows;
    struct td_delivery *follower;
    struct td_delivery *all_prev, *all_next;
    struct td_trigger_rt *trg;
    struct td_msg *msg;
    struct td_event *ev;    /* what the sink gets (one reference) */
    struct td_event *dl_ev; /* what the dead-letter target gets (one reference) */
    const char *dl_reason;
    enum dstate state;
    int attempts;              /* on the sink */
    uint32_t epoch;            /* the trigger's AIMD cut count when the attempt started (flow.h) */
    int dl_attempts;           /* on the dead-letter target */
    struct td_event *reply_ev; /* the sink's reply event, on its way to trg->reply */
    int reply_attempts;
    struct td_attempt attempt;
    struct td_timer timer;
    struct td_trace_stage tr; /* the span of the stage in progress (tracer.h) */
};

/* Ordering (delivery.ordering: partition | key). A lane is what must stay in order: a
 * partition, or a key within a partition (msg->lane_*). The lane exists while one of its
 * deliveries is in progress (waiting for a slot, running, retrying or being dead-lettered):
 * that one heads it and the others queue behind it, outside the trigger's wait queue, so a
 * retrying event holds back only its own lane. When the head finishes, the next one joins
 * the wait queue. */
struct td_lane {
    struct td_lane *hnext; /* hash chain */
    uint64_t id;
    struct td_delivery *head, *tail; /* queued behind the one in progress */
};

struct td_lanes {
    struct td_lane **buckets;
    size_t nbuckets;
    size_t n;
};

static void start_attempt(struct td_delivery *d);
static void lane_advance(struct td_trigger_rt *trg, struct td_lane *lane);
static void lane_release(struct td_trigger_rt *trg, struct td_lane *lane);
static void start_dl_attempt(struct td_delivery *d);
static void start_reply_attempt(struct td_delivery *d);
static bool take_reply(struct td_delivery *d);
static int64_t on_retry_timer(struct td_loop *loop, void *arg);
static void on_attempt_done(struct td_attempt *a);
static int flow_limit(struct td_trigger_rt *trg);
static bool flow_admit(struct td_trigger_rt *trg, int n);
static void flow_answer(struct td_trigger_rt *trg, const struct td_attempt *a, uint32_t epoch,
                        struct td_delivery *d);

static const char *event_id(const struct td_delivery *d)
{
    return td_event_get(d->ev, "id");
}

/* A log line about d's event: its trigger, source, id, trace and current span. */
/* The level is checked first: "delivered" is logged at debug for every event, and its
 * arguments (the id lookup, the trace ids) would be worked out for nothing. */
#define DLOG(level, d, ...)                                                                        \
    do {                                                                                           \
        if (td_log_enabled(level)) {                                                               \
            td_log_t((level), td_trace_log_ids((d)->msg, &(d)->tr), (d)->trg->conf->name,          \
                     (d)->msg->src->name, event_id(d), __VA_ARGS__);                               \
        }                                                                                          \
    } while (0)

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
    td_event_unref(d->reply_ev);
    td_attempt_reset(&d->attempt);
    free(d);
}

/* The delivery is over; its message counts down. */
static void finish(struct td_delivery *d, bool release)
{
    struct td_core *core = d->trg->core;
    struct td_msg *msg = d->msg;
    struct td_trigger_rt *trg = d->trg;
    struct td_lane *lane = d->lane;
    if (release) {
        d->trg->stats.released++;
    }
    delivery_free(d);
    td_core_msg_done(core, msg, release);
    if (lane && release) {
        lane_release(trg, lane);
    } else if (lane) {
        lane_advance(trg, lane);
    }
}

/* Starts waiting deliveries while the trigger has free slots. */
static void pump(struct td_trigger_rt *trg)
{
    /* Not re-entrant: a sink that refuses at once completes the attempt inside
     * start_attempt, which pumps again; the outer loop carries on instead of recursing once
     * per queued delivery. */
    if (trg->pumping) {
        return;
    }
    trg->pumping = true;
    if (td_batch_pump(trg)) { /* delivery.batch: batch.c fills and sends batches instead */
        trg->pumping = false;
        return;
    }
    /* A slot first, then the rate's tokens, taken as the attempt starts (flow_admit). */
    while (trg->running < flow_limit(trg) && trg->wait_head && flow_admit(trg, 1)) {
        start_attempt(td_dispatch_wait_pop(trg));
    }
    trg->pumping = false;
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

/* ---- flow control: rate limits and the adaptive concurrency limit (flow.h) ---- */

static int64_t on_rate_timer(struct td_loop *loop, void *arg)
{
    (void)loop;
    pump(arg); /* a token is due: pump takes it, or arms this timer again */
    return TD_LOOP_NOMORE;
}

/* Set up on first use rather than when the trigger is built, so every path that makes a
 * trigger (core.c, the unit tests' fakes) gets it from trg->conf alone. */
static void flow_init(struct td_trigger_rt *trg)
{
    const struct td_conf_delivery *pol = &trg->conf->delivery;
    td_aimd_init(&trg->conc, pol->concurrency, pol->concurrency_adaptive);
    td_bucket_init(&trg->rate, pol->rate.events, pol->rate.per_ms, pol->rate.burst, td_now_ms());
    td_timer_init(&trg->rate_timer, on_rate_timer, trg);
    trg->flow_ready = true;
}

/* The in-flight limit now: delivery.concurrency, or below it when adaptive. */
static int flow_limit(struct td_trigger_rt *trg)
{
    if (!trg->conf->delivery.concurrency_adaptive) {
        return trg->conf->delivery.concurrency; /* the loader guarantees >= 1 (default 64) */
    }
    if (!trg->flow_ready) {
        flow_init(trg);
    }
    return trg->conc.limit;
}

/* Whether the next request, of n events, may start now: it takes n tokens from the trigger's
 * bucket and the sink's (both, or neither) once each holds one; a batch of more than the bucket
 * holds leaves a debt, paid before the next request goes, so a batch counts as n events against
 * the rate however large it is. Else the rate timer is armed for when both will have one; the
 * deliveries stay in the wait queue (or the open batch), holding no slot, and the source's credit
 * keeps that bounded. A retry comes through here too: it is a request against the same quota. */
static bool flow_admit(struct td_trigger_rt *trg, int n)
{
    struct td_bucket *sb = &trg->sink->rate;
    if (trg->conf->delivery.rate.events == 0 && !td_bucket_limited(sb)) {
        return true; /* no rate anywhere: the common case costs no clock read */
    }
    if (!trg->flow_ready) {
        flow_init(trg);
    }
    int64_t now = td_now_ms();
    /* The sink's bucket is shared: a trigger queues there (for its turn) only once its own
     * bucket has a token, so it never holds up the others while it could not take one. */
    int64_t wait = td_bucket_wait_ms(&trg->rate, now);
    if (wait == 0) {
        wait = td_bucket_wait_for(sb, trg, now);
    }
    if (wait == 0) {
        td_bucket_take_n(&trg->rate, n);
        td_bucket_take_for_n(sb, trg, n);
        return true;
    }
    if (!td_timer_armed(&trg->rate_timer) || trg->rate_timer.deadline > now + wait) {
        if (td_timer_start(trg->core->loop, &trg->rate_timer, wait) < 0) {
            /* out of memory: the next completion or submit pumps again */
            td_log(TD_LOG_ERROR, trg->conf->name, NULL, NULL, "cannot arm the rate timer");
        }
    }
    return false;
}

/* The sink answered an attempt (a single delivery d, or a batch: d NULL) started at epoch: the
 * adaptive limit learns from it (trg->running still counts it). Overload: 429, 503 or a
 * Retry-After, whatever the trigger's retry_on makes of it. */
static void flow_answer(struct td_trigger_rt *trg, const struct td_attempt *a, uint32_t epoch,
                        struct td_delivery *d)
{
    if (!trg->conf->delivery.concurrency_adaptive) {
        return;
    }
    int before = flow_limit(trg);
    if (td_aimd_is_overload(a->http_status, a->retry_after_ms)) {
        if (td_aimd_overload(&trg->conc, epoch, trg->running)) {
            if (d) {
                DLOG(TD_LOG_INFO, d, "overloaded (%s): concurrency limit %d -> %d", a->reason,
                     before, trg->conc.limit);
            } else {
                td_log(TD_LOG_INFO, trg->conf->name, NULL, NULL,
                       "overloaded (%s, a batch): concurrency limit %d -> %d", a->reason, before,
                       trg->conc.limit);
            }
        }
    } else if (a->result == TD_RESULT_OK) {
        td_aimd_success(&trg->conc, trg->running >= before);
    }
}

/* ---- ordering lanes ---- */

static struct td_lane **lane_slot(struct td_lanes *ls, uint64_t id)
{
    struct td_lane **pp = &ls->buckets[(id ^ (id >> 29)) % ls->nbuckets];
    while (*pp && (*pp)->id != id) {
        pp = &(*pp)->hnext;
    }
    return pp;
}

static struct td_lane *lane_find(struct td_trigger_rt *trg, uint64_t id)
{
    if (!trg->lanes || trg->lanes->n == 0) {
        return NULL;
    }
    return *lane_slot(trg->lanes, id);
}

/* A new, empty lane; NULL on out of memory. */
static struct td_lane *lane_new(struct td_trigger_rt *trg, uint64_t id)
{
    if (!trg->lanes && !(trg->lanes = calloc(1, sizeof(*trg->lanes)))) {
        return NULL;
    }
    struct td_lanes *ls = trg->lanes;
    if (ls->n + 1 > ls->nbuckets) {
        size_t nb = ls->nbuckets ? ls->nbuckets * 2 : 64;
        struct td_lane **b = calloc(nb, sizeof(*b));
        if (!b) {
            return NULL;
        }
        for (size_t i = 0; i < ls->nbuckets; i++) {
            for (struct td_lane *l = ls->buckets[i], *next; l; l = next) {
                next = l->hnext;
                size_t h = (l->id ^ (l->id >> 29)) % nb;
                l->hnext = b[h];
                b[h] = l;
            }
        }
        free(ls->buckets);
        ls->buckets = b;
        ls->nbuckets = nb;
    }
    struct td_lane *lane = calloc(1, sizeof(*lane));
    if (!lane) {
        return NULL;
    }
    lane->id = id;
    struct td_lane **pp = lane_slot(ls, id);
    lane->hnext = *pp;
    *pp = lane;
    ls->n++;
    return lane;
}

static void lane_remove(struct td_trigger_rt *trg, struct td_lane *lane)
{
    struct td_lane **pp = lane_slot(trg->lanes, lane->id);
    if (*pp == lane) {
        *pp = lane->hnext;
        trg->lanes->n--;
    }
    free(lane);
}

/* The head of lane finished: the next one in the lane waits for a slot (the caller pumps). */
static void lane_advance(struct td_trigger_rt *trg, struct td_lane *lane)
{
    struct td_delivery *next = lane->head;
    if (!next) {
        lane_remove(trg, lane);
        return;
    }
    lane->head = next->next;
    if (!lane->head) {
        lane->tail = NULL;
    }
    next->lane = lane;
    enqueue(trg, next, false);
}

/* The head of an ordered lane was released (left for redelivery): nothing behind it may be
 * delivered before it, so the deliveries queued behind it are released too, in order, without
 * an attempt; the source reads them again after it (Kafka seeks back to the first unfinished
 * offset of the partition). Advancing instead would deliver them ahead of the record they
 * follow. */
static void lane_release(struct td_trigger_rt *trg, struct td_lane *lane)
{
    struct td_delivery *d = lane->head;
    lane->head = lane->tail = NULL;
    lane_remove(trg, lane);
    while (d) {
        struct td_delivery *next = d->next;
        d->next = NULL;
        finish(d, true); /* d->lane is NULL: queued deliveries do not own the lane */
        d = next;
    }
}

/* Ordered triggers: true when d must wait behind its lane (queued there); otherwise d heads
 * its lane (or is unordered) and goes to the wait queue. */
static bool lane_join(struct td_trigger_rt *trg, struct td_delivery *d)
{
    const struct td_msg *msg = d->msg;
    enum td_ordering ord = trg->conf->delivery.ordering;
    if (ord == TD_ORDER_UNORDERED || !msg->ordered) {
        return false;
    }
    uint64_t id = ord == TD_ORDER_PARTITION ? msg->lane_partition : msg->lane_key;
    struct td_lane *lane = lane_find(trg, id);
    if (lane) {
        d->state = D_WAITING;
        d->next = NULL;
        if (lane->tail) {
            lane->tail->next = d;
        } else {
            lane->head = d;
        }
        lane->tail = d;
        return true;
    }
    /* Out of memory: delivered unordered rather than not at all. */
    d->lane = lane_new(trg, id);
    return false;
}

static void lanes_free(struct td_trigger_rt *trg)
{
    struct td_lanes *ls = trg->lanes;
    if (!ls) {
        return;
    }
    for (size_t i = 0; i < ls->nbuckets; i++) {
        for (struct td_lane *l = ls->buckets[i], *next; l; l = next) {
            next = l->hnext;
            free(l);
        }
    }
    free(ls->buckets);
    free(ls);
    trg->lanes = NULL;
}

static int64_t on_retry_timer(struct td_loop *loop, void *arg)
{
    struct td_delivery *d = arg;
    struct td_trigger_rt *trg = d->trg;
    if (d->state == D_DL_BACKOFF) {
        start_dl_attempt(d);
        return TD_LOOP_NOMORE;
    }
    if (d->state == D_REPLY_BACKOFF) {
        start_reply_attempt(d);
        return TD_LOOP_NOMORE;
    }
    /* Retries go to the front: they are older than anything queued behind them. */
    enqueue(trg, d, true);
    pump(trg);
    return TD_LOOP_NOMORE;
}

/* Every dead-letter decision of the core is made here, whoever found the event unfit: the sink
 * (final_status), the retries (retries_exhausted), the reply target (reply_failed), or the
 * router (invalid_event, max_deliveries, schema; via td_dispatch_dead_letter_why). A trigger
 * with `dead_letter: native` has the source reject the message; one without a target releases
 * it for redelivery (marked failed for good when the reason is permanent); else the dead letter
 * goes to the target. */
static void dead_letter(struct td_delivery *d, const char *reason)
{
    struct td_trigger_rt *trg = d->trg;
    const char *name = trg->conf->name;
    const char *sep = d->attempt.reason[0] ? ", " : "";
    if (td_dispatch_native_dl(trg)) {
        /* dead_letter: native: the source rejects the message (basic.nack requeue=false) and
         * the broker routes it to the queue's own dead-letter exchange. */
        trg->stats.dead_lettered++;
        DLOG(TD_LOG_WARN, d, "dead-lettered natively (%s%s%s)", reason, sep, d->attempt.reason);
        d->msg->reject = true;
        finish(d, false);
        return;
    }
    if (!trg->dead_letter) {
        DLOG(TD_LOG_ERROR, d,
             "delivery failed (%s%s%s) and the trigger has no dead_letter target; "
             "left unacknowledged for redelivery",
             reason, sep, d->attempt.reason);
        if (td_deadletter_permanent(reason) && !d->msg->final_why) {
            char why[400];
            snprintf(why, sizeof(why), "trigger %s: %s%s%s", name, reason,
                     d->attempt.reason[0] ? ": " : "", d->attempt.reason);
            d->msg->final_why = strdup(why); /* NULL (no memory): answered as retryable */
            d->msg->final_status = d->attempt.http_status;
        }
        finish(d, true);
        return;
    }
    d->dl_reason = reason;
    /* knativeerrordata: the answer's body; when no answer came (connection refused, timeout)
     * the transport error instead, so a dead letter always says what went wrong. */
    const unsigned char *err_data = d->attempt.body;
    size_t err_len = d->attempt.body_len;
    if (err_len == 0 && d->attempt.http_status == 0 && d->attempt.reason[0]) {
        err_data = (const unsigned char *)d->attempt.reason;
        err_len = strlen(d->attempt.reason);
    }
    if (d->state == D_REPLY_RUNNING) {
        /* the reply failed: the reply event is what is dead-lettered */
        d->dl_ev = td_deadletter_event(d->reply_ev, name, trg->reply->dest, d->attempt.http_status,
                                       err_data, err_len, reason, d->reply_attempts);
    } else {
        d->dl_ev =
            td_deadletter_event(d->ev, name, trg->sink ? trg->sink->dest : "",
                                d->attempt.http_status, err_data, err_len, reason, d->attempts);
    }
    if (!d->dl_ev) {
        DLOG(TD_LOG_ERROR, d, "out of memory building the dead letter; left for redelivery");
        finish(d, true);
        return;
    }
    td_trace_stage_begin(d->msg, &d->tr, NULL); /* the dead letter carries the event's trace */
    start_dl_attempt(d);
}

static void start_attempt(struct td_delivery *d)
{
    struct td_trigger_rt *trg = d->trg;
    const struct td_conf_delivery *pol = &trg->conf->delivery;
    d->state = D_RUNNING;
    d->attempts++;
    d->epoch = trg->conc.epoch;
    trg->running++;
    trg->stats.attempts++;
    td_attempt_reset(&d->attempt);
    d->attempt.ev = d->ev;
    d->attempt.timeout_ms = pol->timeout_ms;
    d->attempt.retry_on = pol->retry_on;
    d->attempt.nretry_on = pol->nretry_on;
    d->attempt.want_reply = trg->reply != NULL;
    td_trace_attempt_begin(d->msg, &d->tr, &d->attempt);
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
    td_trace_stage_attempt(d->msg, &d->tr, &d->attempt);
    if (trg->dead_letter->ops->deliver(trg->dead_letter, d->dl_ev, &d->attempt) < 0) {
        d->attempt.result = TD_RESULT_RETRY;
        on_attempt_done(&d->attempt);
    }
}

/* d headed its lane in a batch that also carried followers (the lane's next events). Delivered:
 * the lane goes to the first follower (d finishes without advancing it; that follower's own
 * answer comes next). Failed: nothing behind d may count as done before it, so the followers go
 * back to the front of the lane, in order, and are sent again once d finished; their attempt
 * does not count against their own retries. */
static void lane_pass_on(struct td_delivery *d, bool delivered)
{
    struct td_delivery *f = d->follower;
    d->follower = NULL;
    if (delivered) {
        f->lane = d->lane;
        f->follows = NULL;
        d->lane = NULL;
        return;
    }
    struct td_lane *lane = f->follows;
    struct td_delivery *last = f;
    for (struct td_delivery *x = f, *nx; x; x = nx) {
        nx = x->follower;
        if (x->state == D_BATCH_RUNNING) {
            /* its part of the answer is ignored (on_attempt_done: no longer running) */
            td_attempt_reset(&x->attempt);
            x->attempt.result = TD_RESULT_RETRY;
            snprintf(x->attempt.reason, sizeof(x->attempt.reason),
                     "sent again after the event before it");
            td_trace_attempt_end(x->msg, &x->tr, x->trg->conf->name, x->trg->sink, &x->attempt,
                                 x->attempts);
            x->attempts--; /* not its own failure: its retries stay (the counter keeps it) */
        }
        x->state = D_WAITING;
        x->follower = NULL;
        x->follows = NULL;
        x->next = nx;
        last = x;
    }
    last->next = lane->head;
    lane->head = f;
    if (!lane->tail) {
        lane->tail = last;
    }
}

/* What the sink's answer means for d: delivered, a retry on a timer, or a dead letter. The
 * caller gives back the concurrency slot (one per attempt, or one per batch) and pumps. */
static void sink_outcome(struct td_delivery *d)
{
    struct td_trigger_rt *trg = d->trg;
    const struct td_conf_delivery *pol = &trg->conf->delivery;
    const char *name = trg->conf->name;
    struct td_attempt *a = &d->attempt;
    td_trace_attempt_end(d->msg, &d->tr, name, trg->sink, a, d->attempts);
    if (d->follower) {
        lane_pass_on(d, a->result == TD_RESULT_OK);
    }
    if (a->result == TD_RESULT_OK) {
        trg->stats.delivered++;
        td_stats_observe_latency(&trg->stats, td_now_ms() - d->msg->received_ms);
        DLOG(TD_LOG_DEBUG, d, "delivered (%s, attempt %d)", a->reason, d->attempts);
        if (!take_reply(d)) {
            finish(d, false);
        }
    } else if (a->result == TD_RESULT_RETRY && d->attempts <= pol->retry) {
        int64_t wait = td_retry_delay_ms(pol, d->attempts, a->retry_after_ms, td_random());
        trg->stats.retries++;
        td_trace_backoff(&d->tr, wait);
        DLOG(TD_LOG_INFO, d, "attempt %d failed (%s); retrying in %lld ms", d->attempts, a->reason,
             (long long)wait);
        d->state = D_BACKOFF;
        if (td_timer_start(trg->core->loop, &d->timer, wait) < 0) {
            finish(d, true);
        }
    } else {
        const char *reason =
            a->result == TD_RESULT_FINAL ? TD_DL_FINAL_STATUS : TD_DL_RETRIES_EXHAUSTED;
        DLOG(TD_LOG_WARN, d, "attempt %d failed (%s): %s", d->attempts, a->reason, reason);
        dead_letter(d, reason);
    }
}

static void sink_attempt_done(struct td_delivery *d)
{
    struct td_trigger_rt *trg = d->trg;
    /* before the slot is given back: it counts what was in flight */
    flow_answer(trg, &d->attempt, d->epoch, d);
    trg->running--;
    sink_outcome(d);
    pump(trg);
}

static void dl_attempt_done(struct td_delivery *d)
{
    struct td_trigger_rt *trg = d->trg;
    const char *name = trg->conf->name;
    struct td_attempt *a = &d->attempt;
    if (a->result == TD_RESULT_OK) {
        trg->stats.dead_lettered++;
        td_stats_count_dead_letter(&trg->stats, d->dl_reason);
        td_trace_stage_end(d->msg, &d->tr, TD_TRACE_DEAD_LETTER, name, trg->dead_letter, a,
                           d->dl_attempts, d->dl_reason, true);
        DLOG(TD_LOG_WARN, d, "dead-lettered to '%s' (%s)", trg->dead_letter->name, d->dl_reason);
        finish(d, false);
        pump(trg); /* its lane's next one may have joined the wait queue */
        return;
    }
    /* Keep trying: the source message is not acknowledged until the dead letter is safe. */
    int retry = d->dl_attempts < 16 ? d->dl_attempts : 16;
    int64_t wait = td_retry_delay_ms(&trg->conf->delivery, retry, -1, td_random());
    if (wait < 50) {
        wait = 50;
    }
    DLOG(TD_LOG_WARN, d, "dead-letter target '%s' failed (%s); retrying in %lld ms",
         trg->dead_letter->name, a->reason, (long long)wait);
    d->state = D_DL_BACKOFF;
    if (td_timer_start(trg->core->loop, &d->timer, wait) < 0) {
        finish(d, true);
    }
}

/* ---- reply events ---- */

static void start_reply_attempt(struct td_delivery *d)
{
    struct td_trigger_rt *trg = d->trg;
    d->state = D_REPLY_RUNNING;
    d->reply_attempts++;
    td_attempt_reset(&d->attempt);
    d->attempt.ev = d->reply_ev;
    d->attempt.timeout_ms = 0; /* the target's own timeout */
    d->attempt.retry_on = NULL;
    d->attempt.nretry_on = 0;
    d->attempt.want_reply = false;
    td_trace_stage_attempt(d->msg, &d->tr, &d->attempt);
    if (trg->reply->ops->deliver(trg->reply, d->reply_ev, &d->attempt) < 0) {
        d->attempt.result = TD_RESULT_RETRY;
        on_attempt_done(&d->attempt);
    }
}

/* The sink succeeded: when it answered with a reply event and the trigger has a reply target,
 * the delivery goes on with the reply (true); else it is over (false). */
static bool take_reply(struct td_delivery *d)
{
    struct td_trigger_rt *trg = d->trg;
    struct td_event *reply = d->attempt.reply;
    if (!reply || !trg->reply) {
        return false;
    }
    const char *v = td_event_get(d->ev, REPLY_TTL_ATTR);
    char *end = NULL;
    long ttl = v ? strtol(v, &end, 10) : REPLY_TTL_DEFAULT;
    if (v && (end == v || *end != '\0' || ttl < 0)) {
        ttl = REPLY_TTL_DEFAULT;
    }
    ttl = ttl > REPLY_TTL_DEFAULT * 100 ? REPLY_TTL_DEFAULT * 100 : ttl;
    if (ttl - 1 <= 0) {
        trg->stats.replies_dropped++;
        DLOG(TD_LOG_WARN, d, "reply event %s dropped: its %s reached 0 (a reply loop?)",
             td_event_get(reply, "id"), REPLY_TTL_ATTR);
        return false;
    }
    char buf[24];
    snprintf(buf, sizeof(buf), "%ld", ttl - 1);
    if (td_event_set_typed(reply, REPLY_TTL_ATTR, buf, TD_CE_INTEGER) < 0) {
        DLOG(TD_LOG_ERROR, d, "out of memory keeping the reply event; left for redelivery");
        finish(d, true);
        return true;
    }
    d->reply_ev = td_event_ref(reply);
    td_trace_stage_begin(d->msg, &d->tr, d->reply_ev); /* a reply without a trace gets this one */
    DLOG(TD_LOG_DEBUG, d, "reply event %s to '%s' (%s %s)", td_event_get(reply, "id"),
         trg->reply->name, REPLY_TTL_ATTR, buf);
    start_reply_attempt(d);
    return true;
}

static void reply_attempt_done(struct td_delivery *d)
{
    struct td_trigger_rt *trg = d->trg;
    const struct td_conf_delivery *pol = &trg->conf->delivery;
    const char *name = trg->conf->name;
    struct td_attempt *a = &d->attempt;
    if (a->result == TD_RESULT_OK) {
        trg->stats.replies++;
        td_trace_stage_end(d->msg, &d->tr, TD_TRACE_REPLY, name, trg->reply, a, d->reply_attempts,
                           NULL, true);
        DLOG(TD_LOG_DEBUG, d, "reply delivered to '%s' (%s)", trg->reply->name, a->reason);
        finish(d, false);
        pump(trg);
    } else if (a->result == TD_RESULT_RETRY && d->reply_attempts <= pol->retry) {
        int64_t wait = td_retry_delay_ms(pol, d->reply_attempts, a->retry_after_ms, td_random());
        DLOG(TD_LOG_INFO, d, "reply to '%s' failed (%s); retrying in %lld ms", trg->reply->name,
             a->reason, (long long)wait);
        d->state = D_REPLY_BACKOFF;
        if (td_timer_start(trg->core->loop, &d->timer, wait) < 0) {
            finish(d, true);
        }
    } else {
        DLOG(TD_LOG_WARN, d, "reply to '%s' failed (%s): %s", trg->reply->name, a->reason,
             TD_DL_REPLY_FAILED);
        td_trace_stage_end(d->msg, &d->tr, TD_TRACE_REPLY, name, trg->reply, a, d->reply_attempts,
                           NULL, false);
        dead_letter(d, TD_DL_REPLY_FAILED);
        pump(trg);
    }
}

static void on_attempt_done(struct td_attempt *a)
{
    struct td_delivery *d = a->owner;
    if (d->state == D_RUNNING) {
        sink_attempt_done(d);
    } else if (d->state == D_BATCH_RUNNING) {
        sink_outcome(d); /* batch.c gives the slot back and pumps once for the batch */
    } else if (d->state == D_DL_RUNNING) {
        dl_attempt_done(d);
    } else if (d->state == D_REPLY_RUNNING) {
        reply_attempt_done(d);
    }
}

bool td_dispatch_native_dl(const struct td_trigger_rt *trg)
{
    const char *dl = trg->conf->delivery.dead_letter;
    return dl && strcmp(dl, TD_DEAD_LETTER_NATIVE) == 0;
}

void td_dispatch_submit(struct td_trigger_rt *trg, struct td_msg *msg, struct td_event *ev)
{
    struct td_delivery *d = delivery_new(trg, msg, ev);
    if (!d) {
        td_log_t(TD_LOG_ERROR, td_trace_log_ids(msg, NULL), trg->conf->name, msg->src->name,
                 td_event_get(ev, "id"), "out of memory; left for redelivery");
        td_core_msg_done(trg->core, msg, true);
        return;
    }
    trg->stats.matched++;
    if (lane_join(trg, d)) {
        return; /* behind its lane */
    }
    enqueue(trg, d, false);
    pump(trg);
}

void td_dispatch_dead_letter(struct td_trigger_rt *trg, struct td_msg *msg, struct td_event *ev,
                             const char *reason)
{
    td_dispatch_dead_letter_why(trg, msg, ev, reason, msg->invalid);
}

void td_dispatch_dead_letter_why(struct td_trigger_rt *trg, struct td_msg *msg, struct td_event *ev,
                                 const char *reason, const char *why)
{
    struct td_delivery *d = delivery_new(trg, msg, ev);
    if (!d) {
        td_core_msg_done(trg->core, msg, true);
        return;
    }
    if (trg->dead_letter && !td_dispatch_native_dl(trg)) {
        /* (natively or without a target, dead_letter() says what happened instead) */
        td_log_t(TD_LOG_WARN, td_trace_log_ids(msg, NULL), trg->conf->name, msg->src->name,
                 td_event_get(ev, "id"), "%s%s%s", reason, why ? ": " : "", why ? why : "");
    }
    if (why) {
        snprintf(d->attempt.reason, sizeof(d->attempt.reason), "%s", why);
        /* The reason travels in knativeerrordata, as Knative does with response bodies. */
        free(d->attempt.body);
        d->attempt.body = (unsigned char *)strdup(why);
        d->attempt.body_len = d->attempt.body ? strlen(why) : 0;
    }
    /* deadletterattempts: what the broker counted (max_deliveries), else none made here */
    d->attempts = msg->deliveries > 0 ? msg->deliveries : 0;
    d->state = D_DL_RUNNING;
    dead_letter(d, reason);
}

void td_dispatch_release_waiting(struct td_trigger_rt *trg)
{
    td_batch_dissolve(trg); /* a batch not sent yet: its events are waiting */
    /* Deliveries queued behind a lane first: their lanes' heads are still in progress. */
    for (size_t i = 0; trg->lanes && i < trg->lanes->nbuckets; i++) {
        for (struct td_lane *l = trg->lanes->buckets[i]; l; l = l->hnext) {
            struct td_delivery *d = l->head;
            l->head = l->tail = NULL;
            while (d) {
                struct td_delivery *next = d->next;
                finish(d, true);
                d = next;
            }
        }
    }
    while (trg->wait_head) {
        struct td_delivery *d = trg->wait_head;
        trg->wait_head = d->next;
        finish(d, true);
    }
    trg->wait_tail = NULL;
}

/* The deliveries of messages of src read under generation gen (td_dispatch_cancel). */
static bool cancel_match(const struct td_delivery *d, const struct td_source *src, uint64_t gen)
{
    return d->msg->src == src && d->msg->gen == gen;
}

size_t td_dispatch_cancel(struct td_core *core, const struct td_source *src, uint64_t gen)
{
    size_t n = 0;
    for (size_t t = 0; t < core->cfg->ntriggers; t++) {
        struct td_trigger_rt *trg = &core->triggers[t];
        td_batch_dissolve(trg); /* a batch not sent yet: its events are waiting */
        /* Queued behind a lane (never the head: that one is waiting, running or retrying). */
        for (size_t i = 0; trg->lanes && i < trg->lanes->nbuckets; i++) {
            for (struct td_lane *l = trg->lanes->buckets[i]; l; l = l->hnext) {
                struct td_delivery *keep = NULL, **kt = &keep, *d = l->head;
                l->head = l->tail = NULL;
                while (d) {
                    struct td_delivery *next = d->next;
                    if (cancel_match(d, src, gen)) {
                        finish(d, true);
                        n++;
                    } else {
                        d->next = NULL;
                        *kt = d;
                        kt = &d->next;
                        l->tail = d;
                    }
                    d = next;
                }
                l->head = keep;
            }
        }
        /* Waiting for a slot: unlinked first, as finishing a lane head enqueues its next. */
        struct td_delivery *gone = NULL, **pp = &trg->wait_head;
        trg->wait_tail = NULL;
        while (*pp) {
            struct td_delivery *d = *pp;
            if (cancel_match(d, src, gen)) {
                *pp = d->next;
                d->next = gone;
                gone = d;
            } else {
                trg->wait_tail = d;
                pp = &d->next;
            }
        }
        while (gone) {
            struct td_delivery *next = gone->next;
            finish(gone, true);
            n++;
            gone = next;
        }
    }
    /* Waiting on a retry timer (the dead-letter and reply stages have started: they finish). */
    for (struct td_delivery *d = core->deliveries, *next; d; d = next) {
        next = d->all_next;
        if (d->state == D_BACKOFF && cancel_match(d, src, gen)) {
            finish(d, true); /* delivery_free stops its timer */
            n++;
        }
    }
    for (size_t t = 0; t < core->cfg->ntriggers; t++) {
        pump(&core->triggers[t]);
    }
    return n;
}

void td_dispatch_census(struct td_core *core, struct td_trigger_census *out, int64_t *oldest)
{
    size_t ntrg = core->cfg->ntriggers, nsrc = core->cfg->nsources;
    if (out) {
        memset(out, 0, ntrg * sizeof(*out));
        for (size_t t = 0; core->triggers && t < ntrg; t++) {
            out[t].concurrency_limit = flow_limit(&core->triggers[t]);
        }
    }
    if (oldest) {
        memset(oldest, 0, nsrc * sizeof(*oldest));
    }
    for (struct td_delivery *d = core->deliveries; d; d = d->all_next) {
        /* retired triggers (reload) are not counted; current ones are core->triggers[t] */
        size_t t = d->trg->gen == core->gen ? (size_t)(d->trg - core->triggers) : ntrg;
        if (out && t < ntrg) {
            struct td_trigger_census *c = &out[t];
            c->waiting += d->state == D_WAITING;
            c->running += d->state == D_RUNNING || d->state == D_BATCH_RUNNING;
            c->retrying += d->state == D_BACKOFF;
            c->dead_lettering += d->state == D_DL_RUNNING || d->state == D_DL_BACKOFF;
        }
        for (size_t i = 0; oldest && i < nsrc; i++) {
            if (core->sources[i] == d->msg->src) {
                if (oldest[i] == 0 || d->msg->received_ms < oldest[i]) {
                    oldest[i] = d->msg->received_ms;
                }
                break;
            }
        }
    }
}

size_t td_dispatch_busy(struct td_core *core, uint64_t gen)
{
    size_t busy = 0;
    for (struct td_delivery *d = core->deliveries; d; d = d->all_next) {
        busy += d->trg->gen == gen;
    }
    return busy;
}

void td_dispatch_trigger_free(struct td_trigger_rt *trg)
{
    if (trg->flow_ready) {
        td_timer_stop(trg->core->loop, &trg->rate_timer); /* no-op once abandon_all stopped it */
    }
    lanes_free(trg);
    td_batch_trigger_free(trg);
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
    for (size_t i = 0; core->triggers && i < core->cfg->ntriggers; i++) {
        lanes_free(&core->triggers[i]);
        if (core->triggers[i].flow_ready) {
            /* now, while the loop exists: the triggers are freed after it */
            td_timer_stop(core->loop, &core->triggers[i].rate_timer);
        }
        td_batch_trigger_free(&core->triggers[i]);
    }
}

/* ---- delivery.batch: what batch.c calls (batch.h) ---- */

struct td_delivery *td_dispatch_wait_pop(struct td_trigger_rt *trg)
{
    struct td_delivery *d = trg->wait_head;
    if (d) {
        trg->wait_head = d->next;
        if (!trg->wait_head) {
            trg->wait_tail = NULL;
        }
        d->next = NULL;
    }
    return d;
}

void td_dispatch_wait_push_front(struct td_trigger_rt *trg, struct td_delivery *d)
{
    enqueue(trg, d, true);
}

const struct td_event *td_delivery_event(const struct td_delivery *d)
{
    return d->ev;
}

const char *td_delivery_batch_begin(struct td_delivery *d)
{
    struct td_trigger_rt *trg = d->trg;
    d->state = D_BATCH_RUNNING;
    d->attempts++;
    trg->stats.attempts++;
    td_attempt_reset(&d->attempt);
    d->attempt.ev = d->ev;
    td_trace_attempt_begin(d->msg, &d->tr, &d->attempt);
    return d->attempt.traceparent;
}

void td_delivery_batch_done(struct td_delivery *d, enum td_result r, int http_status,
                            int64_t retry_after_ms, const char *reason, const void *body,
                            size_t len)
{
    /* d->attempt takes the batch's outcome, and on_attempt_done (D_BATCH_RUNNING) decides as
     * for a single attempt: the same retries, backoff and dead letters. */
    td_attempt_done(&d->attempt, r, http_status, retry_after_ms, reason, body, len);
}

void td_dispatch_pump(struct td_trigger_rt *trg)
{
    pump(trg);
}

int td_dispatch_flow_limit(struct td_trigger_rt *trg)
{
    return flow_limit(trg);
}

bool td_dispatch_flow_admit(struct td_trigger_rt *trg, int n)
{
    return flow_admit(trg, n);
}

uint32_t td_dispatch_flow_epoch(const struct td_trigger_rt *trg)
{
    return trg->conc.epoch; /* 0 until flow_init: no cut can have happened */
}

void td_dispatch_flow_answer(struct td_trigger_rt *trg, const struct td_attempt *a, uint32_t epoch)
{
    flow_answer(trg, a, epoch, NULL);
}

struct td_delivery *td_delivery_lane_pull(struct td_delivery *d)
{
    struct td_lane *lane = d->lane ? d->lane : d->follows;
    if (!lane || !lane->head || d->follower) {
        return NULL;
    }
    struct td_delivery *f = lane->head;
    lane->head = f->next;
    if (!lane->head) {
        lane->tail = NULL;
    }
    f->next = NULL;
    f->follows = lane;
    d->follower = f;
    return f;
}

void td_delivery_lane_unpull(struct td_delivery *d)
{
    if (d->follower) {
        lane_pass_on(d, false); /* not sent: the followers' states are WAITING */
    }
}

bool td_delivery_follows(const struct td_delivery *d)
{
    return d->follows != NULL;
}
