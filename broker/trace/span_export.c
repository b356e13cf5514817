/* span_export.c - the OTLP/HTTP span exporter (see span_export.h). */
#include "span_export.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "log.h"
#include "loop.h"
#include "secret.h"
#include "span_json.h"

/* A refused batch is logged at most this often: a collector that is down must not flood the
 * log with one line per batch. */
#define WARN_EVERY_MS 60000
/* A batch the collector could not take now (429, 502-504, no answer) is tried again this many
 * times, after RETRY_BASE_MS, twice that, ... or the Retry-After it asked for (capped). */
#define EXPORT_RETRIES     3
#define RETRY_BASE_MS      250
#define RETRY_AFTER_MAX_MS 30000

struct queued {
    char *json;
    size_t len;
};

struct td_span_export {
    struct td_loop *loop;
    struct td_http_client *http;
    char *url;
    char **headers; /* "Name: value" lines */
    size_t nheaders;
    int64_t timeout_ms, interval_ms;
    char *service;
    struct queued *ring; /* queue_size slots */
    size_t cap, head, n;
    bool in_flight;           /* a batch is on its way: being sent, or waiting to be retried */
    struct export_req *retry; /* the batch waiting for its retry timer, or NULL */
    struct td_timer timer;    /* the next batch, or the retry */
    int64_t last_warn_ms;
    atomic_ullong exported, dropped_full, dropped_failed;
};

/* One batch on its way: freed by on_done once it is settled, or by the HTTP client when it
 * abandons the request at teardown (one flat allocation, so free() is enough). */
struct export_req {
    struct td_span_export *e;
    size_t n;    /* spans in it */
    int tries;   /* requests made so far */
    size_t len;  /* of body */
    char body[]; /* the ExportTraceServiceRequest, NUL-terminated */
};

static void send_batch(struct td_span_export *e);
static void post(struct td_span_export *e, struct export_req *er);

static int64_t on_timer(struct td_loop *loop, void *arg)
{
    (void)loop;
    struct td_span_export *e = arg;
    if (e->retry) {
        struct export_req *er = e->retry;
        e->retry = NULL;
        post(e, er);
        return TD_LOOP_NOMORE;
    }
    send_batch(e);
    /* Nothing waiting: sleep until a push arms the timer again. */
    return e->n > 0 && !e->in_flight ? e->interval_ms : TD_LOOP_NOMORE;
}

/* n spans were dropped because of why: logged, at most once a minute. */
static void warn(struct td_span_export *e, const char *why, size_t n)
{
    int64_t now = td_now_ms();
    if (e->last_warn_ms && now - e->last_warn_ms < WARN_EVERY_MS) {
        return;
    }
    e->last_warn_ms = now;
    td_log_warn(NULL, NULL, NULL,
                "tracing: %zu spans not exported: %s (counted in "
                "triggerd_trace_spans_dropped_total; logged at most once a minute)",
                n, why);
}

/* The batch is settled one way or the other: the next one may go. */
static void next_batch(struct td_span_export *e)
{
    e->in_flight = false;
    if (e->n >= TD_SPAN_BATCH_MAX) {
        td_timer_start(e->loop, &e->timer, 0);
    } else if (e->n > 0 && !td_timer_armed(&e->timer)) {
        td_timer_start(e->loop, &e->timer, e->interval_ms);
    }
}

static void drop(struct td_span_export *e, struct export_req *er, const char *why)
{
    atomic_fetch_add(&e->dropped_failed, er->n);
    warn(e, why, er->n);
    free(er);
    next_batch(e);
}

/* OTLP/HTTP: 429, 502, 503 and 504 are retryable (with the server's Retry-After when it sends
 * one), and so is a request that got no answer; any other status is final. */
static bool retryable(CURLcode code, long status)
{
    return code != CURLE_OK || status == 429 || status == 502 || status == 503 || status == 504;
}

static void on_done(struct td_http_request *req, CURLcode code, long status, int64_t retry_after_ms,
                    const unsigned char *body, size_t len, void *arg)
{
    (void)req;
    (void)body;
    (void)len;
    struct export_req *er = arg;
    struct td_span_export *e = er->e;
    if (code == CURLE_OK && status >= 200 && status < 300) {
        atomic_fetch_add(&e->exported, er->n);
        free(er);
        next_batch(e);
        return;
    }
    char why[80];
    if (code != CURLE_OK) {
        snprintf(why, sizeof(why), "%s", curl_easy_strerror(code));
    } else {
        snprintf(why, sizeof(why), "the collector answered %ld", status);
    }
    if (!retryable(code, status) || er->tries > EXPORT_RETRIES) {
        drop(e, er, why);
        return;
    }
    /* The same batch again after a backoff; meanwhile new spans queue (or are dropped when the
     * queue is full), never more than one batch in the air. */
    int64_t wait = RETRY_BASE_MS << (er->tries - 1);
    if (retry_after_ms >= 0) {
        wait = retry_after_ms < RETRY_AFTER_MAX_MS ? retry_after_ms : RETRY_AFTER_MAX_MS;
    }
    e->retry = er;
    td_timer_start(e->loop, &e->timer, wait);
}

/* Sends er (again). Settles it as dropped when the request cannot even start. */
static void post(struct td_span_export *e, struct export_req *er)
{
    e->in_flight = true;
    er->tries++;
    CURL *easy = td_http_client_easy(e->http);
    struct curl_slist *hdrs =
        easy ? curl_slist_append(NULL, "Content-Type: application/json") : NULL;
    for (size_t i = 0; hdrs && i < e->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(hdrs, e->headers[i]);
        if (!l) {
            td_secret_slist_free(hdrs);
            hdrs = NULL;
        } else {
            hdrs = l;
        }
    }
    if (!hdrs) {
        if (easy) {
            td_http_client_release(e->http, easy);
        }
        drop(e, er, "out of memory");
        return;
    }
    curl_easy_setopt(easy, CURLOPT_URL, e->url);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)er->len);
    /* curl's own copy: er may be freed by the client (teardown) while curl still holds it */
    CURLcode copied = curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, (const char *)er->body);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(e->timeout_ms < 5000 ? e->timeout_ms : 5000));
    if (copied != CURLE_OK) {
        td_secret_slist_free(hdrs);
        td_http_client_release(e->http, easy);
        drop(e, er, "out of memory");
        return;
    }
    if (!td_http_client_send(e->http, easy, hdrs, on_done, er)) {
        /* easy and headers were released; done will not run */
        drop(e, er, "could not start the request");
    }
}

static void send_batch(struct td_span_export *e)
{
    if (e->in_flight || e->n == 0) {
        return;
    }
    size_t n = e->n < TD_SPAN_BATCH_MAX ? e->n : TD_SPAN_BATCH_MAX;
    char *spans[TD_SPAN_BATCH_MAX];
    size_t lens[TD_SPAN_BATCH_MAX];
    for (size_t i = 0; i < n; i++) {
        struct queued *q = &e->ring[(e->head + i) % e->cap];
        spans[i] = q->json;
        lens[i] = q->len;
    }
    size_t len = 0;
    char *body = td_span_batch_json(spans, lens, n, e->service, &len);
    /* The spans leave the queue whatever happens next: the batch owns them now. */
    for (size_t i = 0; i < n; i++) {
        free(spans[i]);
    }
    e->head = (e->head + n) % e->cap;
    e->n -= n;
    struct export_req *er = body ? malloc(sizeof(*er) + len + 1) : NULL;
    if (!er) {
        free(body);
        atomic_fetch_add(&e->dropped_failed, n);
        warn(e, "out of memory", n);
        return;
    }
    *er = (struct export_req){.e = e, .n = n, .len = len};
    memcpy(er->body, body, len + 1);
    free(body);
    post(e, er);
}

struct td_span_export *td_span_export_new(struct td_loop *loop, struct td_http_client *http,
                                          const struct td_span_export_conf *conf)
{
    struct td_span_export *e = calloc(1, sizeof(*e));
    if (!e) {
        return NULL;
    }
    e->loop = loop;
    e->http = http;
    e->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 10000;
    e->interval_ms = conf->interval_ms > 0 ? conf->interval_ms : 1000;
    e->cap = conf->queue_size > 0 ? conf->queue_size : 1;
    td_timer_init(&e->timer, on_timer, e);
    const char *suffix = "/v1/traces";
    size_t elen = strlen(conf->endpoint);
    while (elen > 0 && conf->endpoint[elen - 1] == '/') {
        elen--;
    }
    bool has = elen >= strlen(suffix) &&
               strncmp(conf->endpoint + elen - strlen(suffix), suffix, strlen(suffix)) == 0;
    e->url = malloc(elen + strlen(suffix) + 1);
    e->service = strdup(conf->service ? conf->service : "triggerd");
    e->ring = calloc(e->cap, sizeof(*e->ring));
    size_t nh = conf->headers ? conf->headers->n : 0;
    e->headers = calloc(nh + 1, sizeof(*e->headers));
    if (!e->url || !e->service || !e->ring || !e->headers) {
        td_span_export_free(e);
        return NULL;
    }
    snprintf(e->url, elen + strlen(suffix) + 1, "%.*s%s", (int)elen, conf->endpoint,
             has ? "" : suffix);
    for (size_t i = 0; i < nh; i++) {
        const struct td_kv *kv = &conf->headers->items[i];
        size_t n = strlen(kv->key) + strlen(kv->value) + 3;
        if (!(e->headers[i] = malloc(n))) {
            td_span_export_free(e);
            return NULL;
        }
        snprintf(e->headers[i], n, "%s: %s", kv->key, kv->value);
        e->nheaders++;
    }
    return e;
}

void td_span_export_free(struct td_span_export *e)
{
    if (!e) {
        return;
    }
    if (e->loop) {
        td_timer_stop(e->loop, &e->timer);
    }
    free(e->retry);
    for (size_t i = 0; e->ring && i < e->n; i++) {
        free(e->ring[(e->head + i) % e->cap].json);
    }
    for (size_t i = 0; i < e->nheaders; i++) {
        td_secret_free(e->headers[i]); /* may hold an API key */
    }
    free(e->headers);
    free(e->ring);
    free(e->url);
    free(e->service);
    free(e);
}

void td_span_export_push(struct td_span_export *e, char *json, size_t len)
{
    if (e->n == e->cap) {
        free(json);
        atomic_fetch_add(&e->dropped_full, 1);
        return;
    }
    e->ring[(e->head + e->n) % e->cap] = (struct queued){json, len};
    e->n++;
    if (e->in_flight) {
        return; /* on_done looks at the queue */
    }
    if (e->n >= TD_SPAN_BATCH_MAX) {
        td_timer_start(e->loop, &e->timer, 0);
    } else if (!td_timer_armed(&e->timer)) {
        td_timer_start(e->loop, &e->timer, e->interval_ms);
    }
}

bool td_span_export_flush(struct td_span_export *e)
{
    if (e->retry) {
        /* shutting down: no time to wait out the backoff */
        struct export_req *er = e->retry;
        e->retry = NULL;
        td_timer_stop(e->loop, &e->timer);
        post(e, er);
    }
    send_batch(e);
    return e->n == 0 && !e->in_flight;
}

size_t td_span_export_queued(const struct td_span_export *e)
{
    return e->n;
}

void td_span_export_counts(const struct td_span_export *e, struct td_span_counts *out)
{
    out->exported = atomic_load(&e->exported);
    out->dropped_full = atomic_load(&e->dropped_full);
    out->dropped_failed = atomic_load(&e->dropped_failed);
}
