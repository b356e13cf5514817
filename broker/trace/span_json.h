/* span_json.h - one span as OTLP/JSON, and a batch of them as an ExportTraceServiceRequest.
 *
 * The OTLP JSON mapping (opentelemetry-proto, docs/specification.md "JSON Protobuf Encoding"):
 * field names in lowerCamelCase, trace and span ids as lowercase hex (not base64), enums as
 * integers, 64-bit integers as decimal strings. A span is encoded once, when it ends, into a
 * malloc'd JSON object; a batch is those objects joined under one resource and scope, so the
 * exporter never keeps more than the text it will send.
 * Threads: any (pure functions).
 */
#ifndef TD_SPAN_JSON_H
#define TD_SPAN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Span.SpanKind and Status.StatusCode of opentelemetry/proto/trace/v1/trace.proto. */
enum td_span_kind {
    TD_SPAN_INTERNAL = 1,
    TD_SPAN_SERVER = 2,
    TD_SPAN_CLIENT = 3,
    TD_SPAN_PRODUCER = 4,
    TD_SPAN_CONSUMER = 5
};
enum td_span_status { TD_STATUS_UNSET = 0, TD_STATUS_OK = 1, TD_STATUS_ERROR = 2 };

/* One attribute: a string (str set) or an integer (str NULL). Keys are the caller's. */
struct td_span_attr {
    const char *key;
    const char *str;
    int64_t num;
};

/* What the encoder needs; everything borrowed. */
struct td_span_rec {
    const uint8_t *trace_id;  /* 16 bytes */
    const uint8_t *span_id;   /* 8 bytes */
    const uint8_t *parent_id; /* 8 bytes, or NULL: a root span */
    const char *trace_state;  /* or NULL */
    const char *name;
    enum td_span_kind kind;
    int64_t start_ns, end_ns; /* UNIX nanoseconds */
    enum td_span_status status;
    const char *status_msg; /* or NULL */
    const struct td_span_attr *attrs;
    size_t nattrs;
    /* One link (OTLP Span.links), or NULL: the event's own creation context when the parent
     * is another (the ingress request's). 16 and 8 bytes. */
    const uint8_t *link_trace_id;
    const uint8_t *link_span_id;
};

/* The span as one JSON object (malloc'd, NUL-terminated, *len without the NUL), or NULL on out
 * of memory. The caller frees it. */
char *td_span_json(const struct td_span_rec *r, size_t *len);

/* An ExportTraceServiceRequest holding spans[0..n) (each from td_span_json) under one resource
 * (service.name = service, service.version, and the scope "triggerd"). malloc'd, or NULL. */
char *td_span_batch_json(char *const *spans, const size_t *lens, size_t n, const char *service,
                         size_t *len);

#endif
