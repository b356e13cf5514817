/* http_sink.h - what the HTTP-speaking sinks share (private to sinks/).
 *
 * http.c is the engine for every sink that POSTs a CloudEvent to a function over plain HTTP:
 * the http sink itself (Knative, Kubernetes Services, Cloud Functions / Cloud Run, Azure
 * Functions, any URL) and openfaas.c, which only builds the URL and a header. lambda.c signs
 * its requests and has its own delivery, but uses the response-header collector below.
 * Threads: loop only.
 */
#ifndef TD_HTTP_SINK_H
#define TD_HTTP_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ce_http.h"
#include "config.h"
#include "http_conf.h"

struct td_sink;
struct td_http_client;

/* How an HTTP-speaking sink delivers. Borrowed pointers point into the sink's config. */
struct td_http_target {
    char *url; /* owned (taken by td_http_sink_setup): where to POST, without credentials */
    enum td_http_mode mode;
    int64_t timeout_ms;
    const struct td_kv_list *headers; /* may be NULL */
    const struct td_conf_auth *auth;  /* may be NULL */
    const char *ca_file, *client_cert, *client_key;
    const char *callback_url; /* sent as X-Callback-Url (OpenFaaS async) */
    bool prefer_reply;        /* send "Prefer: reply" (Knative: a reply event is welcome) */
    enum td_http_client_kind client;
};

/* Sets k up as an HTTP-speaking sink (k->ops, k->impl, k->dest). Takes t->url in every
 * case. 0, or -1 with a message. */
int td_http_sink_setup(struct td_sink *k, struct td_http_client *http, struct td_http_target *t,
                       char *err, size_t errlen);

/* The response headers of one request, as raw "Name: value" lines, in a fixed buffer that
 * lives inside the sink's per-attempt state (so an attempt abandoned at teardown frees in one
 * piece). Only the last response is kept (a 100 Continue or a redirect starts over); lines
 * past the buffer are dropped. */
#define TD_HTTP_HDRBUF 8192
struct td_http_hdrbuf {
    size_t len;
    char data[TD_HTTP_HDRBUF];
};
/* CURLOPT_HEADERFUNCTION with CURLOPT_HEADERDATA = a struct td_http_hdrbuf (len 0 first). */
size_t td_http_collect_header(char *buf, size_t size, size_t nitems, void *userdata);
/* Parses the buffer into out (free with td_http_headers_free). 0 or -1 (out of memory). */
int td_http_hdrbuf_parse(const struct td_http_hdrbuf *hb, struct td_http_headers *out);

#endif
