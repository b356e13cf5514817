/* sink.h - the sink plugin interface: deliver one event, classify the outcome.
 *
 * A sink only delivers and classifies; it never sleeps and never retries (dispatch.c owns
 * attempts, backoff and dead-lettering). deliver() runs on the loop thread, must not block,
 * and reports through td_attempt_done() exactly once per attempt, always from a later loop
 * callback, never from inside deliver() itself.
 *
 * Classification: TD_RESULT_OK (2xx), TD_RESULT_RETRY (connection errors, timeouts, 408,
 * 429, 5xx, or as the trigger's retry_on list says), TD_RESULT_FINAL (other 4xx, an event
 * the target refuses for good).
 */
#ifndef TD_SINK_H
#define TD_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf_table.h"
#include "config.h"
#include "flow.h"

struct td_event;
struct td_loop;
struct td_sink;
struct td_attempt;

enum td_result { TD_RESULT_OK, TD_RESULT_RETRY, TD_RESULT_FINAL };

typedef void (*td_attempt_cb)(struct td_attempt *a);

/* One try at delivering one event. Owned by its caller (dispatch), who keeps it, and the
 * event, alive until td_attempt_done() was called. */
struct td_attempt {
    const struct td_event *ev;
    int64_t timeout_ms;
    const int *retry_on; /* optional: exactly these HTTP statuses are retryable */
    size_t nretry_on;
    td_attempt_cb done; /* set by the caller */
    void *owner;        /* the caller's context */
    void *sink_state;   /* the sink's per-attempt state while in flight */
    /* outcome, filled by td_attempt_done */
    enum td_result result;
    int http_status;        /* 0 when no response came */
    int64_t retry_after_ms; /* -1 when the target said nothing */
    char reason[160];
    unsigned char *body; /* the response body, at most TD_ATTEMPT_BODY_MAX bytes, malloc'd */
    size_t body_len;
    /* Reply events (the trigger's reply:). want_reply is set by the caller; a sink that can
     * carry replies (HTTP) then decodes a 2xx answer holding a CloudEvent into reply (one
     * reference, owned by the attempt, dropped by td_attempt_reset) before td_attempt_done. A
     * malformed one makes the attempt fail (TD_RESULT_FINAL, the reason says why). */
    bool want_reply;
    struct td_event *reply;
    /* Tracing (broker/trace/tracer.h): the W3C traceparent of this attempt's span, for the
     * request's `traceparent` header ("" when tracing is off), and the tracestate to send with
     * it (borrowed, or NULL). Set by the caller; an HTTP sink sends them. */
    char traceparent[56];
    const char *tracestate;
};

#define TD_ATTEMPT_BODY_MAX 65536

/* Records the outcome and calls a->done. Exactly once per attempt. body/len are copied (up to
 * TD_ATTEMPT_BODY_MAX). Loop thread. */
void td_attempt_done(struct td_attempt *a, enum td_result r, int http_status,
                     int64_t retry_after_ms, const char *reason, const void *body, size_t len);
/* Frees what td_attempt_done copied; the attempt can be reused afterwards. */
void td_attempt_reset(struct td_attempt *a);

/* The default HTTP classification (and the retry_on override). */
enum td_result td_classify_http(int status, const int *retry_on, size_t nretry_on);

struct td_sink_ops {
    const char *name;
    /* Starts an attempt: 0, or -1 when it could not even start (then td_attempt_done was NOT
     * called and the attempt counts as a retryable failure with the reason in a->reason). */
    int (*deliver)(struct td_sink *k, const struct td_event *ev, struct td_attempt *a);
    /* Optional (NULL: the kind takes one event at a time; the loader refuses delivery.batch on
     * it, conf_batch.c): starts one attempt carrying a batch. body is a JSON array of events in
     * structured mode (application/cloudevents-batch+json), len bytes, borrowed until
     * td_attempt_done; a->ev is NULL. Same contract as deliver. The answer's body (a->body) is
     * what dispatch reads batchItemFailures from (broker/core/batch.c). */
    int (*deliver_batch)(struct td_sink *k, const char *body, size_t len, struct td_attempt *a);
    /* Optional: tells the sink's own threads to finish (closing their broker connections)
     * without waiting for them; destroy then waits. Lets teardown stop every sink before it
     * frees any, so that their closes overlap (td_sinks_free). Loop thread. */
    void (*stop)(struct td_sink *k);
    /* Optional (NULL: always true): after stop, whether destroy would return without waiting
     * (the sink's threads have left). A reload frees a retired generation's sinks only once
     * every one of them says so, asking again on later ticks, so that the loop never waits for
     * a broker's close (reload.c). May act on a deadline that passed (cut a stuck connection).
     * Loop thread. */
    bool (*stopped)(struct td_sink *k);
    /* Frees the sink. Attempts still in flight are abandoned without a callback: this only
     * happens at teardown, after the loop stopped, when their messages stay unacknowledged
     * and are redelivered. */
    void (*destroy)(struct td_sink *k);
};

struct td_http_client;

struct td_sink {
    const struct td_sink_ops *ops; /* set by the descriptor's init */
    const struct td_sink_desc *desc;
    const struct td_conf_sink *conf;
    const char *name; /* conf->name */
    char dest[256];   /* where it delivers, without credentials: knativeerrordest */
    struct td_loop *loop;
    struct td_http_client *http; /* the loop's shared libcurl client, for HTTP-speaking sinks */
    void *impl;
    /* sinks.NAME.rate: one bucket for every trigger that delivers here (dispatch.c takes its
     * tokens; flow.h). Unlimited when the key was not written. */
    struct td_bucket rate;
};

/* A sink kind: one static descriptor in the plugin's own file, listed once in
 * sinks/registry.c (the only place that names every sink). */
struct td_sink_desc {
    const char *name;       /* the trigger-file kind ("http"): messages, check, metrics */
    enum td_sink_kind kind; /* the configuration's tag for it (config.h); TD_SINK_OTHER for a
                             * kind the core has no special case for */
    /* Its settings: name, id, key table and the size of the block the table fills (the plugin's
     * own struct); the loader reads it through td_conf_sink_kind(). Set with TD_SINK_KIND. */
    struct td_conf_kind conf;
    /* Sends through the loop's shared libcurl client (td_sink.http): each of its attempts
     * holds a connection of that client's cache (broker/app/conn_budget.c counts them). */
    bool uses_http;
    /* Checks k->conf and fills k->ops (deliver, destroy: one kind may share another's, as
     * openfaas shares http's), k->impl and k->dest; 0, or -1 with a message in err (then
     * nothing is left to free). No I/O that blocks. Loop thread. */
    int (*init)(struct td_sink *k, char *err, size_t errlen);
    /* `triggerd check`: what the daemon would refuse or miss at start beyond the loader's
     * checks, without the network: errors into errs ("sink 'NAME': ..."), warnings (what
     * another machine may have: a file, the environment) to stderr. NULL: nothing more. */
    void (*check)(const struct td_conf_sink *k, struct td_errors *errs);
};

/* The name, tag and settings of a descriptor, said once:
 *   TD_SINK_KIND("redis", TD_SINK_REDIS, &redis_sink_table, struct td_conf_redis_sink) */
#define TD_SINK_KIND(name_, kind_, table_, type_)                                                  \
    .name = (name_), .kind = (kind_),                                                              \
    .conf = {.name = (name_), .id = (kind_), .table = (table_), .size = sizeof(type_)}

/* The registry (registry.c). The descriptor of a kind, or NULL when this build has none
 * (TD_SINK_OTHER names no one kind: use td_sink_desc_of). */
const struct td_sink_desc *td_sink_desc_for(enum td_sink_kind kind);
/* The descriptor of the kind conf was loaded as (conf->plugin), or NULL. */
const struct td_sink_desc *td_sink_desc_of(const struct td_conf_sink *conf);
/* The kind's name, or NULL when this build has no such kind. */
const char *td_sink_kind_name(enum td_sink_kind kind);

/* Creates the sink for conf->kind through its descriptor; NULL with a message in err. http is
 * the loop's shared libcurl client. Free with td_sink_free(). Loop thread. */
struct td_sink *td_sink_new(const struct td_conf_sink *conf, struct td_loop *loop,
                            struct td_http_client *http, char *err, size_t errlen);
void td_sink_free(struct td_sink *k);
/* Tells k's threads to finish without waiting (ops->stop; nothing for a kind without threads):
 * a caller freeing several sinks stops them all first, so that the waits of their closes for
 * brokers overlap instead of adding up. NULL is a no-op. Loop thread. */
void td_sink_stop(struct td_sink *k);
/* td_sink_stop for each of the n sinks of sinks (NULL: none; NULL entries are skipped). */
void td_sinks_stop(struct td_sink **sinks, size_t n);
/* Whether every one of the n sinks, told to stop, can be freed without waiting (ops->stopped;
 * true for a kind without it, for NULL entries and for n = 0). Loop thread. */
bool td_sinks_stopped(struct td_sink **sinks, size_t n);
/* Frees the n sinks of sinks (NULL entries are skipped) having stopped them all first. The
 * array itself stays the caller's. */
void td_sinks_free(struct td_sink **sinks, size_t n);

#endif
