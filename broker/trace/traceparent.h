/* traceparent.h - the W3C Trace Context header values (https://www.w3.org/TR/trace-context/):
 * parsing and formatting `traceparent`, checking `tracestate`, and the hex form of ids.
 *
 * A traceparent is "VV-TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT-PPPPPPPPPPPPPPPP-FF": version, trace id,
 * parent (span) id and flags, all lowercase hex. The CloudEvents distributed tracing extension
 * carries the same string as the attribute `traceparent`.
 * Threads: any (pure functions).
 */
#ifndef TD_TRACEPARENT_H
#define TD_TRACEPARENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The length of a version 00 traceparent, and the buffer that holds one. */
#define TD_TRACEPARENT_LEN  55
#define TD_TRACEPARENT_SIZE 56
/* W3C: a tracestate holds at most 32 members; vendors may cut one longer than 512 bytes. */
#define TD_TRACESTATE_MAX 512
/* The sampled bit of the trace flags. */
#define TD_TRACE_SAMPLED 0x01

struct td_trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8]; /* the parent-id field: the caller's span */
    uint8_t flags;
};

/* Parses s as W3C says a receiver must: version 00 is exactly 55 characters; a higher version
 * (not ff) may be longer, with '-' after the first 55 and the rest ignored; every field is
 * lowercase hex of its exact length; an all-zero trace id or parent id is invalid. Leading and
 * trailing blanks (OWS) are allowed. 0 with out filled, or -1 (out untouched). NULL is -1. */
int td_traceparent_parse(const char *s, struct td_trace_ctx *out);

/* Writes "00-<trace>-<span>-<flags>" (version 00) into out. */
void td_traceparent_format(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                           char out[TD_TRACEPARENT_SIZE]);

/* True when s may be forwarded as a tracestate value: at most TD_TRACESTATE_MAX bytes of
 * printable ASCII (0x20-0x7e), so it can never split a header or a log line. The members are
 * not checked further: the broker only passes it on. */
bool td_tracestate_ok(const char *s);

/* Lowercase hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void td_trace_hex(const uint8_t *in, size_t n, char *out);

/* True when all n bytes are zero (an invalid id). */
bool td_trace_id_zero(const uint8_t *id, size_t n);

#endif
