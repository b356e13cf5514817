/* redis_conn.h - one connection to Redis, plain TCP or TLS (OpenSSL), on a non-blocking socket.
 *
 * hiredis 0.14 has no TLS, so it only formats commands (redisFormatCommandArgv) and parses
 * replies (a redisReader); the socket I/O is ours, the same code for plain and TLS, so every
 * Redis test exercises the path TLS takes. Two ways to drive a connection:
 *  - on an event loop or poll(2): td_rconn_io does what can be done now and says which events
 *    it waits for (the Redis sink, the source's blocking-read connection);
 *  - synchronously: td_rconn_command waits for the reply with a deadline (the source's command
 *    connection, the lag report, `publish`, `redrive`).
 * Threads: any; one connection stays on the thread that uses it.
 */
#ifndef TD_REDIS_CONN_H
#define TD_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct td_redis_addr;

/* The `tls:` block beside a Redis `url` (used when the URL is rediss://). Strings are owned by
 * whoever filled it (the config loader); NULL: not given. */
struct td_redis_tls {
    char *ca_file;             /* CA bundle to verify the server with; NULL: the system's */
    char *cert_file;           /* client certificate (chain), for servers with tls-auth-clients */
    char *key_file;            /* its private key, unencrypted; a secret: never logged */
    char *server_name;         /* SNI and the name verified; NULL: the URL's host */
    bool insecure_skip_verify; /* no verification at all (tests only) */
};

struct td_rconn;

/* Starts connecting to host:port (non-blocking; the name is resolved with a blocking
 * getaddrinfo, so it should be an address where that matters), through TLS when tls is not
 * NULL. The TLS files are read here: a bad one is an error now. NULL with a message on
 * failure. Free with td_rconn_free. */
struct td_rconn *td_rconn_new(const char *host, int port, const struct td_redis_tls *tls, char *err,
                              size_t errlen);
/* The same with the addresses given (n of them, tried in order; looked up already, e.g. off the
 * loop by a resolver: resolver.h) instead of a getaddrinfo here, so that nothing in it blocks;
 * host is still what TLS verifies and messages name. */
struct td_rconn *td_rconn_new_at(const char *host, int port, const struct td_redis_tls *tls,
                                 const struct sockaddr_storage *addrs, const socklen_t *lens,
                                 size_t n, char *err, size_t errlen);
void td_rconn_free(struct td_rconn *c); /* NULL is a no-op; closes the socket */

/* The socket (it changes when td_rconn_io moves on to the host's next address), or -1. */
int td_rconn_fd(const struct td_rconn *c);
/* The socket td_rconn_io closed to try the next address since the last call, or -1: an event
 * loop that watched it forgets it (the new socket may get the same number). */
int td_rconn_stale_fd(struct td_rconn *c);

/* Queues a command (written by the next td_rconn_io). 0, or -1 out of memory. */
int td_rconn_append(struct td_rconn *c, int argc, const char **argv, const size_t *lens);
/* Queues AUTH (when a has a password) and SELECT (db > 0): returns how many replies they will
 * produce before the replies of what is queued after them, or -1 out of memory. */
int td_rconn_append_setup(struct td_rconn *c, const struct td_redis_addr *a, int db);

/* Does what can be done without blocking: finishes the connect and the TLS handshake, writes
 * queued commands, reads what arrived into the reply parser. *want gets the poll events
 * (POLLIN / POLLOUT) to wait for before calling it again. 0, or -1 when the connection failed
 * (td_rconn_error says why; the connection is of no further use). */
int td_rconn_io(struct td_rconn *c, short *want);
/* The next complete reply: 1 with *out (the caller frees it: td_rconn_reply_free), 0 when none
 * is complete yet, -1 on a protocol error. */
int td_rconn_reply(struct td_rconn *c, redisReply **out);
/* Builds c's replies in an arena (redis_arena.h) from now on: a reply of thousands of parts
 * then costs a few pointer bumps instead of thousands of malloc/free pairs. Call it between
 * replies (none half read); those from then on must be freed with td_rconn_reply_free. 0, or
 * -1 out of memory (the replies stay malloc'd). */
int td_rconn_use_arena(struct td_rconn *c);
/* Frees a reply of c however it was built (freeReplyObject unless c uses an arena); NULL is a
 * no-op. */
void td_rconn_reply_free(struct td_rconn *c, redisReply *r);
/* True once the connection (and TLS handshake) is up and nothing queued is left unwritten. */
bool td_rconn_flushed(const struct td_rconn *c);
/* True once the connection (and TLS handshake) is up: what is queued now is written by the next
 * td_rconn_io when the socket is writable (before, as soon as the handshake is done). */
bool td_rconn_ready(const struct td_rconn *c);
/* Why the connection failed ("" while it has not). */
const char *td_rconn_error(const struct td_rconn *c);

/* A file descriptor whose readability cancels every wait of td_rconn_wait (and so of the
 * synchronous commands) on c: a source thread's stop eventfd, so that shutdown does not wait
 * for a server that does not answer. -1: none (the default). */
void td_rconn_set_cancel_fd(struct td_rconn *c, int fd);

/* Bounds every wait of td_rconn_wait on c (and so the synchronous commands) by a deadline
 * that comes later: once fd is readable (a source thread's stop eventfd), a wait ends at *by
 * (td_now_ms clock; 0: none yet, read again every 100 ms) if that is sooner than its own
 * deadline, failing the connection; a wait that starts after *by still gets 100 ms. Unlike
 * the cancel fd, a stop does not end the waits at once: the XACKs of a drain's last
 * completions still go out, but never past the stop deadline (td_source_stop_by). fd -1 or by
 * NULL: none (the default). */
void td_rconn_set_stop_by(struct td_rconn *c, int fd, const _Atomic int64_t *by);

/* Runs td_rconn_io with poll until the queue is written (reply == NULL) or a reply is there
 * (then *reply holds it), or until deadline_ms (td_now_ms clock). 0, or -1 with the
 * connection failed (a timeout is a failure too: the reply may still come and would be taken
 * for the next command's). */
int td_rconn_wait(struct td_rconn *c, int64_t deadline_ms, redisReply **reply);

/* A command and its reply, waiting at most timeout_ms. The reply (free with
 * td_rconn_reply_free, or freeReplyObject when c has no arena; an error reply is a reply), or
 * NULL with the connection failed (td_rconn_error). */
redisReply *td_rconn_command_argv(struct td_rconn *c, int timeout_ms, int argc, const char **argv,
                                  const size_t *lens);
/* The same, formatted as redisCommand does (%s, %d, %b). */
redisReply *td_rconn_command(struct td_rconn *c, int timeout_ms, const char *fmt, ...);

/* Connects, authenticates and selects db, waiting at most timeout_ms in all; through TLS when
 * tls is not NULL; cancel_fd as td_rconn_set_cancel_fd (it stays set on the connection). The
 * connection, or NULL with a message that names host:port (and never the password). */
struct td_rconn *td_redis_open(const struct td_redis_addr *a, const struct td_redis_tls *tls,
                               int db, int timeout_ms, int cancel_fd, char *err, size_t errlen);

#endif
