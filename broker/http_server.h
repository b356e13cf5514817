/* http_server.h - the daemon's HTTP endpoint on daemon.http.listen (libmicrohttpd, on a
 * thread of its own): /healthz, /readyz, /metrics, /status, plus the paths that ingress
 * sources register.
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

/* listen: "host:port" ("[::1]:8080" for IPv6). NULL with a message in err. */
struct td_http_server *td_http_server_new(const char *listen, struct td_metrics *metrics,
                                          struct td_loop *loop, char *err, size_t errlen);
/* Registers PATH (exact match) for handler; before td_http_server_start. 0, or -1 when the
 * path is taken (or is a built-in endpoint). */
int td_http_server_route(struct td_http_server *srv, const char *path, td_http_handler handler,
                         td_http_done done, void *arg);
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
