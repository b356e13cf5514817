/* span_export.h - OTLP/HTTP export of finished spans: a bounded queue, batched POSTs to
 * <endpoint>/v1/traces (Content-Type application/json) through the loop's libcurl multi client.
 *
 * Pushing never blocks and never allocates beyond the span's own text: when the queue is full
 * the span is dropped and counted. One request is in flight at a time; a batch goes out every
 * interval, or at once when a full batch is waiting. A batch the collector refuses (or that
 * times out) is dropped and counted too: delivery of events never waits for the collector.
 * Threads: loop, except td_span_export_counts (any: the counters are atomics).
 */
#ifndef TD_SPAN_EXPORT_H
#define TD_SPAN_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv.h"

struct td_loop;
struct td_http_client;
struct td_span_export;

/* Spans per request at most (the OpenTelemetry SDKs' default max_export_batch_size). */
#define TD_SPAN_BATCH_MAX 512

struct td_span_export_conf {
    const char *endpoint;             /* base URL (".../v1/traces" is appended unless there) */
    const struct td_kv_list *headers; /* extra request headers (an API key), or NULL */
    int64_t timeout_ms;               /* per request */
    int64_t interval_ms;              /* how long a span may wait for its batch */
    size_t queue_size;                /* spans waiting at most */
    const char *service;              /* service.name */
};

/* What happened to the spans so far. */
struct td_span_counts {
    uint64_t exported;       /* accepted by the collector (2xx) */
    uint64_t dropped_full;   /* the queue was full */
    uint64_t dropped_failed; /* their request failed or was refused */
};

/* Copies what it needs from conf. NULL on out of memory. Loop. */
struct td_span_export *td_span_export_new(struct td_loop *loop, struct td_http_client *http,
                                          const struct td_span_export_conf *conf);
/* Frees the queue. A request still in flight must have been abandoned already (the HTTP
 * client freed first), or its answer would find the exporter gone. NULL is a no-op. */
void td_span_export_free(struct td_span_export *e);

/* Queues one span's JSON (td_span_json's; taken: freed here whatever happens). Loop. */
void td_span_export_push(struct td_span_export *e, char *json, size_t len);

/* Shutdown: sends what is queued without waiting for the interval (one request at a time, as
 * always). True when nothing is queued or in flight any more. Loop. */
bool td_span_export_flush(struct td_span_export *e);

/* Spans waiting in the queue now. Loop. */
size_t td_span_export_queued(const struct td_span_export *e);

/* Any thread. */
void td_span_export_counts(const struct td_span_export *e, struct td_span_counts *out);

#endif
