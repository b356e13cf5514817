/* http_server.h - the daemon's HTTP endpoints (libmicrohttpd, each server on a thread of its
 * own): daemon.http.listen serves the paths that ingress sources register and, unless
 * daemon.http.probes_on_listen is false, /healthz, /readyz, /metrics, /status; the optional
 * daemon.http.probes_listen serves only those four, so that ingress load (or an attack on it)
 * can never make a liveness probe fail.
 *
 * Limits (struct td_http_limits), because every connection costs a file descriptor and the
 * process shares its descriptors with outbound deliveries and broker sockets: a total connection
 * limit, a per-IP one (refusals counted in triggerd_ingress_connections_refused_total), and a
 * request timeout that bounds both the time to read one whole request (headers and body:
 * slowloris) and the idle time of a keep-alive connection. A
 * connection that has not sent its whole request in time is shut down; one whose request is
 * being answered (an ingress request waiting for its deliveries) is never cut.
 *
 * The built-in endpoints never touch the loop's structures: they read td_metrics snapshots
 * (see metrics.h). A route handler runs on the server thread and may suspend its connection
 * (MHD_suspend_connection) until another thread resumes it; every suspended connection must be
 * resumed before td_http_server_stop().
 *
 * Ownership: td_http_server_new() returns a server the caller frees with
 * td_http_server_free() after td_http_server_stop(). Threads: new/route/start/stop/free on the
 * loop thread; handlers on the server thread.
 */
#ifndef TD_HTTP_SERVER_H
#define TD_HTTP_SERVER_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

struct td_http_server;
struct td_metrics;
struct td_loop;

/* A route handler, called as MHD's access handler is: first with *req == NULL (allocate your
 * state), then with each piece of the body (consume it and set *upload_size = 0), then with
 * *upload_size == 0 (answer, or suspend), and again after a resume. */
typedef enum MHD_Result (*td_http_handler)(void *arg, struct MHD_Connection *conn,
                                           const char *method, const char *upload,
                                           size_t *upload_size, void **req);
/* MHD is done with the connection's request: free the state in req (may be NULL). */
typedef void (*td_http_done)(void *arg, void *req);

struct td_http_limits {
    int max_connections;        /* open connections at once (> 0); more are closed at accept */
    int max_connections_per_ip; /* from one client address; 0 = no per-IP limit */
    int64_t request_timeout_ms; /* to read one whole request; also the keep-alive idle limit */
};

/* What a server serves. */
#define TD_HTTP_SERVE_PROBES 1u /* /healthz, /readyz, /metrics, /status */
#define TD_HTTP_SERVE_ROUTES 2u /* the paths td_http_server_route registers */

/* listen: "host:port" ("[::1]:8080" for IPv6); what: TD_HTTP_SERVE_* bits; lim is copied.
 * NULL with a message in err. */
struct td_http_server *td_http_server_new(const char *listen, unsigned int what,
                                          const struct td_http_limits *lim,
                                          struct td_metrics *metrics, struct td_loop *loop,
                                          char *err, size_t errlen);
/* Registers PATH (exact match) for handler; before td_http_server_start. 0, or -1 when the
 * path is taken (or is a built-in endpoint), or the server does not serve routes. */
int td_http_server_route(struct td_http_server *srv, const char *path, td_http_handler handler,
                         td_http_done done, void *arg);
/* Serves HTTPS instead of HTTP (before td_http_server_start): the PEM files are read now
 * (their content stays in memory for MHD; the key is wiped at free). With client_ca_file, every
 * request must come with a client certificate that verifies against those CAs, or it is
 * answered 403 and the connection closed. 0, or -1 with a message naming the file. */
int td_http_server_tls(struct td_http_server *srv, const char *cert_file, const char *key_file,
                       const char *client_ca_file, char *err, size_t errlen);
/* Binds and starts serving, and starts the loop's heartbeat. 0, or -1 with a message. */
int td_http_server_start(struct td_http_server *srv, char *err, size_t errlen);
/* Stops accepting, gives requests being answered up to a second, and stops the thread. */
void td_http_server_stop(struct td_http_server *srv);
void td_http_server_free(struct td_http_server *srv); /* NULL is a no-op */

/* Queues a response with a copy of body (ctype may be NULL); retry_after > 0 adds a
 * Retry-After header. Server thread. */
enum MHD_Result td_http_reply(struct MHD_Connection *conn, unsigned int status, const char *ctype,
                              const char *body, size_t len, int retry_after);
/* td_http_reply with {"error": reason} as JSON. */
enum MHD_Result td_http_reply_error(struct MHD_Connection *conn, unsigned int status,
                                    const char *reason, int retry_after);

#endif
