/* trace_msg.h - a message's trace context while it is in the core (struct td_msg.trace), and its
 * destructor. Data only, apart from it, and no includes of the core or the plugins, so that
 * sources/source.c (td_msg_free) can free it without depending on the tracer (tracer.h fills it).
 * Threads: the loop fills and reads it; td_trace_msg_free runs on any.
 */
#ifndef TD_TRACE_MSG_H
#define TD_TRACE_MSG_H

#include <stdbool.h>
#include <stdint.h>

struct td_tracer;

struct td_trace_msg {
    struct td_tracer *tr;
    uint8_t trace_id[16];
    uint8_t span_id[8];   /* the message span */
    uint8_t parent_id[8]; /* valid when has_parent */
    bool has_parent;
    bool has_link; /* link_*: the event's own traceparent, when the parent is another */
    bool sampled;
    uint8_t link_trace_id[16];
    uint8_t link_span_id[8];
    char *tracestate; /* malloc'd, or NULL */
    int64_t start_ns;
    int dead_letters; /* dead letters written for it */
};

/* Frees t and its tracestate. NULL is a no-op. Any thread. */
void td_trace_msg_free(struct td_trace_msg *t);

#endif
