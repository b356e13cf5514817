/* http_client.h - libcurl's multi interface driven by the loop.
 *
 * One client per loop: its multi handle keeps the connection cache, so every HTTP-speaking
 * sink reuses keep-alive connections. The cache is sized from the most requests ever in flight
 * at once, not from those in flight now, so a dip between a source's bursts closes nothing.
 * Sockets and the timeout curl asks for are registered with the loop
 * (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION), so no thread ever waits on HTTP. A keep-alive
 * connection the client opened stays registered with epoll while it is idle in the cache
 * (parked), so reusing it costs no epoll_ctl; the client sees its close
 * (CURLOPT_OPENSOCKETFUNCTION / CLOSESOCKETFUNCTION, set on every handle it sends).
 * Easy handles are pooled and reset between requests.
 * Threads: loop only.
 */
#ifndef TD_HTTP_CLIENT_H
#define TD_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "curl_api.h"
#include "http_done.h" /* td_http_done_fn, TD_USER_AGENT */

struct td_loop;
struct td_http_client;
struct td_http_request;

/* libcurl itself (dlopen, curl_api.h; curl_global_init; the multi handle) is set up by the
 * first td_http_client_easy, so a daemon that never sends through libcurl does not map it or
 * its dependencies (about 1.4 MB resident, and 2.3 MB more once initialized). */
struct td_http_client *td_http_client_new(struct td_loop *loop);
/* Abandons every request still running (no callback runs), then frees. NULL is a no-op. */
void td_http_client_free(struct td_http_client *c);

/* Gives an easy handle to configure (URL, headers, body, TLS...). Pass it to
 * td_http_client_send (which takes it back) or td_http_client_release. NULL on failure. */
CURL *td_http_client_easy(struct td_http_client *c);
void td_http_client_release(struct td_http_client *c, CURL *easy);

/* Starts the transfer, with User-Agent TD_USER_AGENT unless headers set one. headers (may be
 * NULL) is freed by the client when the request ends.
 * arg is malloc'd by the caller and freed by done; a request abandoned by
 * td_http_client_free has its arg freed there. Returns the request (for
 * td_http_client_cancel) or NULL, in which case easy and headers were released and done is
 * not called. */
struct td_http_request *td_http_client_send(struct td_http_client *c, CURL *easy,
                                            struct curl_slist *headers, td_http_done_fn done,
                                            void *arg);
/* Stops a running request; done is not called. */
void td_http_client_cancel(struct td_http_client *c, struct td_http_request *req);

/* Lets the connection cache keep at least n connections (busy and idle), beyond the 4 x the
 * most requests ever in flight it keeps anyway: the daemon passes what its triggers can have in
 * flight at once (td_conn_budget), so triggers to different functions, busy at different times,
 * each keep their connections. Only raises: a smaller n than before changes nothing. */
void td_http_client_reserve(struct td_http_client *c, size_t n);

/* Requests running now (the lean client's included). */
size_t td_http_client_running(const struct td_http_client *c);

/* The lean HTTP/1.1 client (http_lean.h) on the same loop, made on first use and freed with
 * c (its requests abandoned as c's own). NULL: out of memory. */
struct td_lean_client;
struct td_lean_client *td_http_client_lean(struct td_http_client *c);

/* The loop's resolver (resolver.h: host names looked up off the loop), made on first use and
 * freed with c, after the lean client; shared by the lean client and the Redis sinks, which
 * cancel their own lookups when they are freed (sinks go before c). NULL: out of memory. */
struct td_resolver;
struct td_resolver *td_http_client_resolver(struct td_http_client *c);

#endif
