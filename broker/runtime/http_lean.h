/* http_lean.h - a lean HTTP/1.1 client on the loop, for plain http:// keep-alive endpoints.
 *
 * The common sink (a Knative or Kubernetes Service inside the cluster) needs none of what
 * libcurl parses and allocates per request: this client builds each request's bytes once (the
 * caller's header lines, then Host, User-Agent and Content-Length), sends them with the body in
 * one sendmsg on a connection kept per host:port, and parses the answer with http_parser
 * (content-length, chunked and close-delimited bodies, 1xx skipped). It reports through the
 * same callback as the libcurl client (td_http_done_fn, with the CURLcode libcurl would give
 * for the same failure), so the sink's classification, retries and dead letters are the same.
 *
 * Connections: opened non-blocking, TCP_NODELAY, kept registered with epoll for their life
 * (no epoll_ctl per request), idle ones reused newest first and closed when the server closes
 * them, sends anything unasked, or they idled longer than libcurl's 118 s. A request on a
 * reused connection that fails before any byte of the answer arrived (the server closed it
 * meanwhile) is retried once on a new connection, as libcurl does; a timeout is not retried.
 * Hosts are IP literals or names; a name (a Kubernetes Service's cluster DNS name, "localhost")
 * is looked up off the loop by the loop's resolver (resolver.h), its addresses kept for
 * TD_RESOLVE_TTL_MS as libcurl's DNS cache does, and tried in getaddrinfo's order when a connect
 * fails. td_lean_target_new says why a URL does not fit, and the sink stays on libcurl for it.
 * Threads: loop only.
 */
#ifndef TD_HTTP_LEAN_H
#define TD_HTTP_LEAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_done.h"

struct td_loop;
struct td_lean_client;
struct td_lean_target;
struct td_lean_request;

/* Receives each response header line as "Name: value\r\n" (and "HTTP/1.1 NNN\r\n" when a
 * response starts): the signature of CURLOPT_HEADERFUNCTION, so td_http_collect_header fits. */
typedef size_t (*td_lean_header_fn)(char *line, size_t size, size_t n, void *arg);

/* resolver (borrowed, outliving the client; NULL: host names fail to resolve) looks up the
 * targets' host names. */
struct td_resolver;
struct td_lean_client *td_lean_client_new(struct td_loop *loop, struct td_resolver *resolver);
/* Abandons every request still running (no callback runs; each one's arg is freed, as in
 * td_http_client_free), closes every connection, frees the targets' pools. NULL is a no-op. */
void td_lean_client_free(struct td_lean_client *c);

/* Where requests go: url must be http://HOST[:PORT][/PATH][?QUERY] with an IP literal or a
 * host name as HOST and no user info. NULL with the reason in err when it does not fit (or
 * out of memory). The target borrows c's pool for HOST:PORT; free it before c. */
struct td_lean_target *td_lean_target_new(struct td_lean_client *c, const char *url, char *err,
                                          size_t errlen);
void td_lean_target_free(struct td_lean_target *t); /* NULL is a no-op */
/* Whether td_lean_target_new would take url (for `check`): 0, or -1 with the reason in err.
 * Thread: any. */
int td_lean_url_check(const char *url, char *err, size_t errlen);

/* A POST to t, built in place: header lines, then the body, then td_lean_request_send.
 * NULL: out of memory. */
struct td_lean_request *td_lean_request_new(const struct td_lean_target *t);
/* Appends "name: value". A header the caller sets replaces the client's own Host or
 * User-Agent; Content-Length and Transfer-Encoding are the client's and are dropped. 0, or -1
 * (out of memory, or a CR/LF in the line). */
int td_lean_request_header(struct td_lean_request *r, const char *name, const char *value);
/* Appends a ready "Name: value" line (len bytes, no CR/LF). "Name:" with no value adds nothing
 * (libcurl's way of removing a header). 0 or -1. */
int td_lean_request_line(struct td_lean_request *r, const char *line, size_t len);
/* The body: borrowed until done runs (or the request is freed), or owned (free()d with the
 * request) when owned is true. */
void td_lean_request_body(struct td_lean_request *r, const void *body, size_t len, bool owned);
/* Frees a request that was not sent. NULL is a no-op. */
void td_lean_request_free(struct td_lean_request *r);

/* Sends r (taken), answered within timeout_ms (connecting within the lesser of it and 5 s),
 * header lines to hfn(harg) when hfn is set. done(NULL, code, status, retry_after_ms, body,
 * len, arg) runs once, later, from the loop (never from inside this call). 0, or -1 when it
 * could not start: r is freed and done is not called. */
int td_lean_request_send(struct td_lean_client *c, struct td_lean_request *r, int64_t timeout_ms,
                         td_lean_header_fn hfn, void *harg, td_http_done_fn done, void *arg);
/* Stops a request that was sent and has not reported; done is not called, arg is not freed.
 * Its connection is closed (its answer may be half read). */
void td_lean_request_cancel(struct td_lean_client *c, struct td_lean_request *r);

/* Requests sent that have not reported yet; connections open (busy and idle). */
size_t td_lean_client_running(const struct td_lean_client *c);
size_t td_lean_client_connections(const struct td_lean_client *c);

#endif
