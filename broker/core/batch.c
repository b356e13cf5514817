/* batch.c - delivery.batch (see batch.h).
 *
 * A trigger has at most one OPEN batch: waiting deliveries join it in wait-queue order, each
 * encoded at once (td_ce_to_json) into the batch's body, so max_bytes is measured on what is
 * sent. It closes (is due) when it holds max_events, when the next event would pass max_bytes
 * (that event opens the next batch; an event bigger than max_bytes alone goes as a batch of
 * one), or max_wait after its first event joined (a loop timer). A due batch is sent as soon
 * as the trigger has a free slot; until then it stays open and its events count as waiting.
 *
 * The answer, for each member: a 2xx is success, except the events a batchItemFailures list
 * names, which fail retryably (their own backoff and retry count; when those run out each is
 * dead-lettered alone with retries_exhausted); a malformed list, or one naming an id not in
 * the batch, fails the whole batch retryably (as Lambda does). A retryable failure (5xx, 429,
 * timeout, connection) fails every member retryably; a final one (other 4xx) dead-letters
 * every member with final_status. Members that retry rejoin the wait queue one by one and may
 * travel in a later batch with other events.
 *
 * Ownership: struct td_batcher (trg->batch) is made on the first pump of a batching trigger and
 * freed by td_batch_trigger_free; a struct td_batch is malloc'd when it opens and freed when
 * its answer was fanned out (or with the batcher at teardown).
 */
#include "batch.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ce_json.h"
#include "cloudevent.h"
#include "core_state.h"
#include "log.h"
#include "loop.h"

struct td_batch {
    struct td_batch *next, *prev; /* the batcher's batches in flight */
    struct td_trigger_rt *trg;
    struct td_delivery **members;
    size_t n, cap;
    char *body; /* "[" event "," event ... "]" */
    size_t len, bcap;
    bool due;
    uint32_t epoch; /* the adaptive limit's cut count when it was sent */
    struct td_attempt attempt;
};

struct td_batcher {
    struct td_batch *open;     /* gathering, not sent; or NULL */
    struct td_timer timer;     /* max_wait of the open batch */
    struct td_batch *inflight; /* sent, waiting for the sink's answer */
};

static void on_batch_done(struct td_attempt *a);

static bool batching(const struct td_trigger_rt *trg)
{
    return trg->conf->delivery.batch.enabled && trg->sink && trg->sink->ops->deliver_batch;
}

static void batch_free(struct td_batch *b)
{
    td_attempt_reset(&b->attempt);
    free(b->members);
    free(b->body);
    free(b);
}

static int64_t on_max_wait(struct td_loop *loop, void *arg)
{
    (void)loop;
    struct td_trigger_rt *trg = arg;
    if (trg->batch && trg->batch->open) {
        trg->batch->open->due = true;
        td_dispatch_pump(trg);
    }
    return TD_LOOP_NOMORE;
}

/* trg's batcher, made on first use; NULL on out of memory. */
static struct td_batcher *batcher(struct td_trigger_rt *trg)
{
    if (!trg->batch && (trg->batch = calloc(1, sizeof(*trg->batch)))) {
        td_timer_init(&trg->batch->timer, on_max_wait, trg);
    }
    return trg->batch;
}

static int body_add(struct td_batch *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->bcap) {
        size_t cap = b->bcap ? b->bcap : 4096;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *p = realloc(b->body, cap);
        if (!p) {
            return -1;
        }
        b->body = p;
        b->bcap = cap;
    }
    memcpy(b->body + b->len, s, n);
    b->len += n;
    b->body[b->len] = '\0';
    return 0;
}

/* Adds d to b: 0, 1 when it does not fit in max_bytes (b is full, d not taken), -1 on out of
 * memory (d not taken). */
static int batch_add(struct td_batch *b, struct td_delivery *d)
{
    const struct td_conf_batch *cb = &b->trg->conf->delivery.batch;
    size_t jlen = 0;
    char *json = td_ce_to_json(td_delivery_event(d), &jlen);
    if (!json) {
        return -1;
    }
    /* "[" or ",", the event, and the closing "]" */
    if (b->n > 0 && (int64_t)(b->len + 1 + jlen + 1) > cb->max_bytes) {
        free(json);
        return 1;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct td_delivery **m = realloc(b->members, cap * sizeof(*m));
        if (!m) {
            free(json);
            return -1;
        }
        b->members = m;
        b->cap = cap;
    }
    size_t mark = b->len;
    if (body_add(b, b->n == 0 ? "[" : ",", 1) < 0 || body_add(b, json, jlen) < 0) {
        b->len = mark;
        free(json);
        return -1;
    }
    free(json);
    b->members[b->n++] = d;
    return 0;
}

/* Ordered triggers: d (just added) heads its lane; the events queued behind it in the lane join
 * right after it, in order, while they fit. */
static void add_followers(struct td_batch *b, struct td_delivery *d)
{
    const struct td_conf_batch *cb = &b->trg->conf->delivery.batch;
    struct td_delivery *f;
    while (!b->due && (int)b->n < cb->max_events && (f = td_delivery_lane_pull(d))) {
        if (batch_add(b, f) != 0) {
            td_delivery_lane_unpull(d); /* back to the front of its lane */
            b->due = true;
            break;
        }
        d = f;
    }
}

static void inflight_unlink(struct td_batcher *bt, struct td_batch *b)
{
    if (b->prev) {
        b->prev->next = b->next;
    } else {
        bt->inflight = b->next;
    }
    if (b->next) {
        b->next->prev = b->prev;
    }
    b->next = b->prev = NULL;
}

/* Sends the due batch b (no longer open) on one slot. */
static void batch_send(struct td_trigger_rt *trg, struct td_batch *b)
{
    struct td_batcher *bt = trg->batch;
    const struct td_conf_delivery *pol = &trg->conf->delivery;
    if (body_add(b, "]", 1) < 0) {
        /* out of memory: nothing was sent, every member retries as after a failed start */
        snprintf(b->attempt.reason, sizeof(b->attempt.reason), "out of memory");
        b->attempt.result = TD_RESULT_RETRY;
    }
    /* One request against delivery.concurrency, whatever its size, and b->n events against
     * delivery.rate: the caller saw the free slot and took the tokens. */
    b->epoch = td_dispatch_flow_epoch(trg);
    trg->running++;
    trg->stats.batches++;
    trg->stats.batch_events += b->n;
    for (size_t i = 0; i < b->n; i++) {
        const char *tp = td_delivery_batch_begin(b->members[i]);
        if (i == 0) {
            /* the request carries the first event's attempt span */
            snprintf(b->attempt.traceparent, sizeof(b->attempt.traceparent), "%s", tp);
        }
    }
    b->next = bt->inflight;
    if (bt->inflight) {
        bt->inflight->prev = b;
    }
    bt->inflight = b;
    b->attempt.ev = NULL;
    b->attempt.timeout_ms = pol->timeout_ms;
    b->attempt.retry_on = pol->retry_on;
    b->attempt.nretry_on = pol->nretry_on;
    b->attempt.want_reply = false;
    b->attempt.done = on_batch_done;
    b->attempt.owner = b;
    b->attempt.retry_after_ms = -1;
    if (b->attempt.result == TD_RESULT_RETRY ||
        trg->sink->ops->deliver_batch(trg->sink, b->body, b->len, &b->attempt) < 0) {
        /* Could not even start: a retryable failure, as for a single attempt. */
        b->attempt.result = TD_RESULT_RETRY;
        on_batch_done(&b->attempt);
    }
}

bool td_batch_pump(struct td_trigger_rt *trg)
{
    if (!batching(trg)) {
        return false;
    }
    struct td_batcher *bt = batcher(trg);
    if (!bt) {
        return false; /* out of memory: one event at a time */
    }
    const struct td_conf_batch *cb = &trg->conf->delivery.batch;
    for (;;) {
        struct td_batch *b = bt->open;
        if (b && b->due) {
            if (trg->running >= td_dispatch_flow_limit(trg)) {
                break; /* sent when a slot frees (every answer pumps) */
            }
            if (!td_dispatch_flow_admit(trg, (int)b->n)) {
                break; /* the rate timer pumps again when the tokens are there */
            }
            bt->open = NULL;
            td_timer_stop(trg->core->loop, &bt->timer);
            batch_send(trg, b);
            continue;
        }
        if (!trg->wait_head) {
            break;
        }
        if (!b) {
            if (!(b = calloc(1, sizeof(*b)))) {
                break; /* left waiting: the next pump tries again */
            }
            b->trg = trg;
            b->attempt.retry_after_ms = -1;
            bt->open = b;
            if (td_timer_start(trg->core->loop, &bt->timer, cb->max_wait_ms) < 0) {
                b->due = true; /* no timer: it goes as it is */
            }
        }
        struct td_delivery *d = td_dispatch_wait_pop(trg);
        int rc = batch_add(b, d);
        if (rc != 0) {
            td_dispatch_wait_push_front(trg, d); /* the next batch's first (or a later try) */
            if (b->n == 0) {
                /* out of memory before anything joined: try again on the next pump */
                bt->open = NULL;
                td_timer_stop(trg->core->loop, &bt->timer);
                batch_free(b);
                break;
            }
            b->due = true;
        } else {
            add_followers(b, d);
            if ((int)b->n >= cb->max_events) {
                b->due = true;
            }
        }
    }
    return true;
}

int td_batch_parse_failures(const unsigned char *body, size_t len, const char *const *ids, size_t n,
                            bool *failed, char *why, size_t whylen)
{
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n')) {
        i++;
    }
    if (i == len || body[i] != '{') {
        return 0; /* not an object: an answer that says nothing about single events */
    }
    cJSON *root = cJSON_ParseWithLength((const char *)body, len);
    if (!root) {
        snprintf(why, whylen, "the answer is not valid JSON%s",
                 len >= TD_ATTEMPT_BODY_MAX ? " (cut at 64 KiB)" : "");
        return -1;
    }
    int rc = 0;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "batchItemFailures");
    if (!list || cJSON_IsNull(list)) {
        goto out;
    }
    if (!cJSON_IsArray(list)) {
        snprintf(why, whylen, "batchItemFailures is not an array");
        rc = -1;
        goto out;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "itemIdentifier");
        if (!cJSON_IsObject(item) || !cJSON_IsString(id) || !id->valuestring[0]) {
            snprintf(why, whylen, "a batchItemFailures entry has no itemIdentifier string");
            rc = -1;
            goto out;
        }
        bool found = false;
        for (size_t m = 0; m < n; m++) {
            if (ids[m] && strcmp(ids[m], id->valuestring) == 0) {
                failed[m] = true; /* every member with that id: ids may repeat */
                found = true;
            }
        }
        if (!found) {
            snprintf(why, whylen, "batchItemFailures names '%.60s', no event of the batch",
                     id->valuestring);
            rc = -1;
            goto out;
        }
        rc = 1;
    }
out:
    cJSON_Delete(root);
    return rc;
}

/* The sink answered for batch b: every member gets its part, then the slot is given back. */
static void on_batch_done(struct td_attempt *a)
{
    struct td_batch *b = a->owner;
    struct td_trigger_rt *trg = b->trg;
    inflight_unlink(trg->batch, b);
    bool *failed = NULL;
    enum td_result whole = a->result;
    char reason[sizeof(a->reason)];
    snprintf(reason, sizeof(reason), "%s", a->reason);
    if (whole == TD_RESULT_OK && a->body_len > 0) {
        const char **ids = calloc(b->n, sizeof(*ids));
        failed = calloc(b->n, sizeof(*failed));
        char why[120] = "";
        int rc = -1;
        if (ids && failed) {
            for (size_t i = 0; i < b->n; i++) {
                ids[i] = td_event_get(td_delivery_event(b->members[i]), "id");
            }
            rc = td_batch_parse_failures(a->body, a->body_len, ids, b->n, failed, why, sizeof(why));
        } else {
            snprintf(why, sizeof(why), "out of memory reading the answer");
        }
        free(ids);
        if (rc < 0) {
            whole = TD_RESULT_RETRY;
            snprintf(reason, sizeof(reason), "HTTP %d, whole batch failed: %s", a->http_status,
                     why);
            td_log_warn(trg->conf->name, NULL, NULL, "batch of %zu to '%s': %s", b->n,
                        trg->sink->name, reason);
        } else if (rc == 0) {
            free(failed);
            failed = NULL;
        }
    }
    /* The adaptive limit hears the batch's verdict: a 2xx whose batchItemFailures is malformed
     * failed as a whole and is no success. Before the slot is given back. */
    a->result = whole;
    td_dispatch_flow_answer(trg, a, b->epoch);
    trg->running--;
    char item_reason[sizeof(a->reason)];
    snprintf(item_reason, sizeof(item_reason), "HTTP %d, named in batchItemFailures",
             a->http_status);
    /* Ordered lanes first: the events that followed a failed one of their lane in this batch go
     * back to the lane (sent again after it) and take no part of the answer. Done before any
     * member is finished, as finishing one may free what is queued in its lane. */
    for (size_t i = 0; i < b->n; i++) {
        bool item_failed = whole == TD_RESULT_OK && failed && failed[i];
        if (b->members[i] && (whole != TD_RESULT_OK || item_failed)) {
            size_t j = i + 1;
            for (; j < b->n && b->members[j] && td_delivery_follows(b->members[j]); j++) {
                b->members[j] = NULL; /* back in its lane: no longer this batch's */
            }
            if (j > i + 1) {
                td_delivery_lane_unpull(b->members[i]);
            }
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        if (!b->members[i]) {
            continue;
        }
        bool item_failed = whole == TD_RESULT_OK && failed && failed[i];
        enum td_result r = item_failed ? TD_RESULT_RETRY : whole;
        /* The answer's body only where it may end in a dead letter (knativeerrordata): copied
         * into each member's attempt, it would cost up to 64 KiB per event on success. */
        bool ok = r == TD_RESULT_OK;
        td_delivery_batch_done(b->members[i], r, a->http_status, a->retry_after_ms,
                               item_failed ? item_reason : reason, ok ? NULL : a->body,
                               ok ? 0 : a->body_len);
    }
    free(failed);
    batch_free(b);
    td_dispatch_pump(trg);
}

void td_batch_dissolve(struct td_trigger_rt *trg)
{
    struct td_batcher *bt = trg->batch;
    if (!bt || !bt->open) {
        return;
    }
    struct td_batch *b = bt->open;
    bt->open = NULL;
    td_timer_stop(trg->core->loop, &bt->timer);
    for (size_t i = b->n; i > 0; i--) {
        struct td_delivery *d = b->members[i - 1];
        if (td_delivery_follows(d)) {
            continue; /* back in its lane with its head's followers, just below */
        }
        td_delivery_lane_unpull(d);
        td_dispatch_wait_push_front(trg, d);
    }
    batch_free(b);
}

void td_batch_trigger_free(struct td_trigger_rt *trg)
{
    struct td_batcher *bt = trg->batch;
    if (!bt) {
        return;
    }
    if (trg->core && trg->core->loop) {
        td_timer_stop(trg->core->loop, &bt->timer);
    }
    if (bt->open) {
        batch_free(bt->open); /* its deliveries are freed by dispatch */
    }
    while (bt->inflight) {
        struct td_batch *b = bt->inflight;
        bt->inflight = b->next;
        batch_free(b);
    }
    free(bt);
    trg->batch = NULL;
}
