/* ce_http.h - the CloudEvents HTTP protocol binding (ce_http.c): binary mode (ce- headers,
 * percent-encoded values) and structured mode (the JSON event format as the body), encoding for
 * the HTTP sinks and decoding for the ingress and for reply events.
 *
 * The header list type (td_http_headers) lives here because the binding is what fills and reads
 * it. Structured mode's body is the JSON event format: ce_json.h.
 * Threads: any (no state).
 */
#ifndef TD_CE_HTTP_H
#define TD_CE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "cloudevent.h"

struct td_http_header {
    char *name;
    char *value;
};
struct td_http_headers {
    struct td_http_header *items;
    size_t n;
};
void td_http_headers_free(struct td_http_headers *h); /* frees the items, not h */
/* Case-insensitive lookup; NULL when absent. */
const char *td_http_headers_get(const struct td_http_headers *h, const char *name);

/* Binary mode: fills headers ("ce-<attr>: <percent-encoded value>", and "Content-Type" from
 * datacontenttype) and points *body and *len at the event's data (not copied: valid while the
 * event lives). 0 or -1. The caller frees the headers with td_http_headers_free(). */
int td_ce_http_encode_binary(const struct td_event *ev, struct td_http_headers *out,
                             const unsigned char **body, size_t *len);
/* Binary mode without the intermediate list: calls fn once per header with the whole line
 * "Name: value" (the same names and values as td_ce_http_encode_binary; NUL-terminated, valid
 * during the call only); content_type tells the Content-Type line. 0; -1 on out of memory or
 * an attribute td_ce_http_encode_binary refuses; or the first non-zero value fn returned. */
typedef int (*td_ce_http_line_fn)(void *arg, const char *line, size_t len, bool content_type);
int td_ce_http_encode_binary_lines(const struct td_event *ev, td_ce_http_line_fn fn, void *arg);
/* Decodes an HTTP request or response carrying one CloudEvent, binary (ce-specversion header)
 * or structured (Content-Type application/cloudevents+json). Returns the event, or NULL with
 * a message. *not_ce is set (and NULL returned, no message) when the message is neither. */
struct td_event *td_ce_http_decode(const struct td_http_headers *h, const unsigned char *body,
                                   size_t len, bool *not_ce, char *err, size_t errlen);

/* Percent-encodes a header value per the HTTP binding (space, '"', '%' and every byte outside
 * 0x21..0x7E, as UTF-8 bytes). Returns a malloc'd string, or NULL. */
char *td_ce_percent_encode(const char *value);
/* Decodes %XX sequences; returns a malloc'd string, or NULL when the result is not valid
 * UTF-8 or a sequence is malformed. */
char *td_ce_percent_decode(const char *value);

#endif
