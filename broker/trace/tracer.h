/* tracer.h - the broker's spans for one event's journey (the CloudEvents distributed tracing
 * extension, W3C Trace Context), as hooks the core calls at the few points where the journey
 * changes: a message enters the core (td_trace_msg_begin, router.c), leaves it
 * (td_trace_msg_end, complete.c), and each delivery stage of a trigger starts and ends
 * (dispatch.c: attempts on the sink, the dead letter, the reply).
 *
 * Spans: "process <source>" (CONSUMER) from read to ack/commit; under it, per trigger,
 * "deliver <trigger>" (CLIENT) for each attempt on the sink, "dead_letter <trigger>"
 * (PRODUCER) from the decision to the dead letter being safe, and "reply <trigger>"
 * (PRODUCER) for a reply event on its way to the reply target. README "Traces" lists their
 * attributes.
 *
 * The parent of the message span is the event's `traceparent` attribute (any binding), or at
 * the ingress the request's `traceparent` header; without either a trace starts here, sampled
 * per daemon.tracing.sample_ratio (with one, the parent's sampled flag decides). An event
 * without the attribute gets the message span's, so the function, dead letters and replies
 * carry the trace on; each attempt carries its own span in the `traceparent` request header.
 *
 * Tracing off (no daemon.tracing.otlp_endpoint): the core has no tracer, msg->trace stays NULL
 * and every hook below returns after one test of that pointer (inline).
 * Threads: loop, except td_trace_msg_free and td_tracer_counts (any).
 */
#ifndef TD_TRACER_H
#define TD_TRACER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"
#include "sink.h"
#include "source.h"
#include "span_export.h"
#include "trace_msg.h" /* the message's trace (msg->trace), and td_trace_msg_free */

struct td_tracer;
struct td_event;

/* The open stage span of one delivery (embedded in dispatch's struct td_delivery). */
struct td_trace_stage {
    uint8_t span_id[8];
    int64_t start_ns;
    int64_t backoff_ms; /* waited before the attempt that starts next */
    bool open;
};

enum td_trace_stage_kind { TD_TRACE_DEAD_LETTER, TD_TRACE_REPLY };

/* Builds the tracer of daemon.tracing; NULL when tracing is off. *err is set (and NULL
 * returned) only on out of memory. Loop (or before it runs). */
struct td_tracer *td_tracer_new(const struct td_conf_daemon *dc, struct td_loop *loop,
                                struct td_http_client *http, bool *err);
/* Frees it; free the HTTP client first (see td_span_export_free). NULL is a no-op. */
void td_tracer_free(struct td_tracer *tr);
/* Shutdown, once no message is in flight: exports what is queued now. True when every span
 * has been sent and answered (or tr is NULL); call again until then or a deadline. Loop. */
bool td_tracer_flush(struct td_tracer *tr);
/* The export counters (zeros for NULL). Any thread. */
void td_tracer_counts(const struct td_tracer *tr, struct td_span_counts *out);
/* The tracing families of /metrics, from counts. Any thread. */
void td_tracer_render(FILE *f, const struct td_span_counts *c);

/* The message enters the core: its trace context (parent, ids, sampling) and, when its event
 * has no traceparent, the event gets the message span's. No-op when tr is NULL. */
void td_trace_msg_begin(struct td_tracer *tr, struct td_msg *msg);

void td_trace_msg_end_(struct td_msg *msg, enum td_outcome outcome);
void td_trace_attempt_begin_(struct td_msg *msg, struct td_trace_stage *st, struct td_attempt *a);
void td_trace_attempt_end_(struct td_msg *msg, struct td_trace_stage *st, const char *trigger,
                           const struct td_sink *sink, const struct td_attempt *a, int attempt);
void td_trace_stage_begin_(struct td_msg *msg, struct td_trace_stage *st, struct td_event *stamp);
void td_trace_stage_attempt_(struct td_msg *msg, struct td_trace_stage *st, struct td_attempt *a);
void td_trace_stage_end_(struct td_msg *msg, struct td_trace_stage *st,
                         enum td_trace_stage_kind kind, const char *trigger,
                         const struct td_sink *target, const struct td_attempt *a, int attempts,
                         const char *reason, bool ok);

/* The message leaves the core with outcome: its span ends. */
static inline void td_trace_msg_end(struct td_msg *msg, enum td_outcome outcome)
{
    if (msg->trace) {
        td_trace_msg_end_(msg, outcome);
    }
}
/* An attempt on the sink starts: a child span opens and a->traceparent names it. */
static inline void td_trace_attempt_begin(struct td_msg *msg, struct td_trace_stage *st,
                                          struct td_attempt *a)
{
    if (msg->trace) {
        td_trace_attempt_begin_(msg, st, a);
    }
}
/* The attempt (number attempt) ended with a's outcome. */
static inline void td_trace_attempt_end(struct td_msg *msg, struct td_trace_stage *st,
                                        const char *trigger, const struct td_sink *sink,
                                        const struct td_attempt *a, int attempt)
{
    if (msg->trace) {
        td_trace_attempt_end_(msg, st, trigger, sink, a, attempt);
    }
}
/* The delivery waits ms before its next attempt (an attribute of that attempt's span). */
static inline void td_trace_backoff(struct td_trace_stage *st, int64_t ms)
{
    st->backoff_ms = ms;
}
/* A dead-letter or reply stage starts: its span opens; stamp (may be NULL: the dead letter
 * already carries the event's) gets the span as traceparent when it has none. */
static inline void td_trace_stage_begin(struct td_msg *msg, struct td_trace_stage *st,
                                        struct td_event *stamp)
{
    if (msg->trace) {
        td_trace_stage_begin_(msg, st, stamp);
    }
}
/* One attempt of the open stage starts: a->traceparent names the stage's span. */
static inline void td_trace_stage_attempt(struct td_msg *msg, struct td_trace_stage *st,
                                          struct td_attempt *a)
{
    if (msg->trace) {
        td_trace_stage_attempt_(msg, st, a);
    }
}
/* The stage ended (ok: written; else given up: the reply failed for good). */
static inline void td_trace_stage_end(struct td_msg *msg, struct td_trace_stage *st,
                                      enum td_trace_stage_kind kind, const char *trigger,
                                      const struct td_sink *target, const struct td_attempt *a,
                                      int attempts, const char *reason, bool ok)
{
    if (msg->trace) {
        td_trace_stage_end_(msg, st, kind, trigger, target, a, attempts, reason, ok);
    }
}
/* The ids a log line about msg carries: its trace and the open stage's span (st may be NULL),
 * else the message span. Both NULL when the message has no trace. */
static inline struct td_log_trace td_trace_log_ids(const struct td_msg *msg,
                                                   const struct td_trace_stage *st)
{
    struct td_log_trace lt = {0};
    if (msg->trace) {
        lt.trace_id = msg->trace->trace_id;
        lt.span_id = st && st->open ? st->span_id : msg->trace->span_id;
    }
    return lt;
}

#endif
