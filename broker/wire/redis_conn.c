/* redis_conn.c - a Redis connection whose socket I/O is ours, plain or TLS (see redis_conn.h).
 * hiredis formats the commands and parses the replies; nothing else of it is used. */
#include "redis_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"
#include "redis_arena.h"
#include "redis_util.h"

enum state { ST_CONNECTING, ST_HANDSHAKE, ST_READY, ST_FAILED };

/* An address handed to td_rconn_new_at, laid out as getaddrinfo's answer so that one
 * try_connect walks both. */
struct given_addr {
    struct addrinfo ai;
    struct sockaddr_storage ss;
};

struct td_rconn {
    int fd;
    enum state state;
    char host[256];
    int port;
    struct addrinfo *ai, *cur; /* the addresses, the one being tried */
    struct given_addr *given;  /* ai is this array (td_rconn_new_at), not getaddrinfo's */
    int last_errno;            /* of the last address that failed */
    int stale_fd;              /* a socket closed to try the next address, or -1 */
    int cancel_fd;             /* readable: td_rconn_wait gives up; -1: none */
    int stop_fd;               /* readable: waits end by *stop_by (td_rconn_set_stop_by); -1 */
    const _Atomic int64_t *stop_by;
    SSL_CTX *ctx; /* NULL: plain */
    SSL *ssl;
    short ssl_want; /* what the last SSL call waits for (POLLIN / POLLOUT), 0: nothing */
    char *out;      /* formatted commands not yet written: [outpos, outlen) */
    size_t outlen, outpos, outcap;
    redisReader *reader;
    struct td_redis_arena
        *arena; /* its replies are built here (td_rconn_use_arena); NULL: malloc */
    char err[256];
};

static int fail(struct td_rconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct td_rconn *c, const char *fmt, ...)
{
    if (c->state != ST_FAILED) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, sizeof(c->err), fmt, ap);
        va_end(ap);
        c->state = ST_FAILED;
    }
    return -1;
}

/* The reason OpenSSL gives for the last failure (its queue is cleared), or fallback. */
static const char *ssl_reason(char *buf, size_t len, const char *fallback)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0) {
        last = e;
    }
    if (!last) {
        snprintf(buf, len, "%s", fallback);
    } else {
        const char *r = ERR_reason_error_string(last);
        if (r) {
            snprintf(buf, len, "%s", r);
        } else {
            ERR_error_string_n(last, buf, len);
        }
    }
    return buf;
}

static bool is_ip_literal(const char *host)
{
    unsigned char b[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

/* The TLS context of one connection: its own, so a certificate rotated on disk is used from the
 * next connection on. The key file's content never reaches a message. */
static SSL_CTX *make_ctx(const struct td_redis_tls *tls, char *err, size_t errlen)
{
    char why[200];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS: %s", ssl_reason(why, sizeof(why), "out of memory"));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (tls->insecure_skip_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int ok = tls->ca_file ? SSL_CTX_load_verify_locations(ctx, tls->ca_file, NULL)
                              : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            snprintf(err, errlen, "TLS: ca_file %s: %s", tls->ca_file ? tls->ca_file : "(system)",
                     ssl_reason(why, sizeof(why), "cannot be loaded"));
            goto fail;
        }
    }
    if (tls->cert_file || tls->key_file) {
        if (!tls->cert_file || !tls->key_file) {
            snprintf(err, errlen, "TLS: cert_file and key_file go together");
            goto fail;
        }
        if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert_file) != 1) {
            snprintf(err, errlen, "TLS: cert_file %s: %s", tls->cert_file,
                     ssl_reason(why, sizeof(why), "cannot be loaded"));
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, tls->key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(err, errlen, "TLS: key_file %s: %s", tls->key_file,
                     ssl_reason(why, sizeof(why), "does not match cert_file"));
            goto fail;
        }
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Tries the addresses from c->cur on until one connects or is connecting. */
static int try_connect(struct td_rconn *c)
{
    for (; c->cur; c->cur = c->cur->ai_next) {
        int fd = socket(c->cur->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            c->last_errno = errno;
            continue;
        }
        if (connect(fd, c->cur->ai_addr, c->cur->ai_addrlen) == 0 || errno == EINPROGRESS) {
            c->fd = fd;
            c->state = ST_CONNECTING;
            return 0;
        }
        c->last_errno = errno;
        close(fd);
    }
    return fail(c, "connect to %s:%d: %s", c->host, c->port, strerror(c->last_errno));
}

/* A connection with its TLS set up and no address yet; NULL with a message. */
static struct td_rconn *rconn_make(const char *host, int port, const struct td_redis_tls *tls,
                                   char *err, size_t errlen)
{
    struct td_rconn *c = calloc(1, sizeof(*c));
    if (!c || !(c->reader = redisReaderCreate())) {
        snprintf(err, errlen, "out of memory");
        free(c);
        return NULL;
    }
    c->fd = -1;
    c->stale_fd = -1;
    c->cancel_fd = -1;
    c->stop_fd = -1;
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->port = port;
    if (tls) {
        c->ctx = make_ctx(tls, err, errlen);
        if (!c->ctx) {
            goto fail;
        }
        c->ssl = SSL_new(c->ctx);
        if (!c->ssl) {
            snprintf(err, errlen, "TLS: out of memory");
            goto fail;
        }
        const char *name = tls->server_name ? tls->server_name : host;
        if (!is_ip_literal(name)) {
            SSL_set_tlsext_host_name(c->ssl, name); /* SNI is for names only (RFC 6066) */
        }
        if (!tls->insecure_skip_verify) {
            X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
            int ok = is_ip_literal(name) ? X509_VERIFY_PARAM_set1_ip_asc(vp, name)
                                         : X509_VERIFY_PARAM_set1_host(vp, name, 0);
            if (ok != 1) {
                snprintf(err, errlen, "TLS: cannot verify the name %s", name);
                goto fail;
            }
        }
    }
    return c;
fail:
    td_rconn_free(c);
    return NULL;
}

struct td_rconn *td_rconn_new(const char *host, int port, const struct td_redis_tls *tls, char *err,
                              size_t errlen)
{
    struct td_rconn *c = rconn_make(host, port, tls, err, errlen);
    if (!c) {
        return NULL;
    }
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(host, portstr, &hints, &c->ai);
    if (rc != 0) {
        snprintf(err, errlen, "connect to %s:%d: %s", host, port, gai_strerror(rc));
        td_rconn_free(c);
        return NULL;
    }
    c->cur = c->ai;
    if (try_connect(c) < 0) {
        snprintf(err, errlen, "%s", c->err);
        td_rconn_free(c);
        return NULL;
    }
    return c;
}

struct td_rconn *td_rconn_new_at(const char *host, int port, const struct td_redis_tls *tls,
                                 const struct sockaddr_storage *addrs, const socklen_t *lens,
                                 size_t n, char *err, size_t errlen)
{
    if (n == 0) {
        snprintf(err, errlen, "connect to %s:%d: no address", host, port);
        return NULL;
    }
    struct td_rconn *c = rconn_make(host, port, tls, err, errlen);
    if (!c) {
        return NULL;
    }
    c->given = calloc(n, sizeof(*c->given));
    if (!c->given) {
        snprintf(err, errlen, "out of memory");
        td_rconn_free(c);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        struct given_addr *g = &c->given[i];
        memcpy(&g->ss, &addrs[i], lens[i]);
        g->ai.ai_family = g->ss.ss_family;
        g->ai.ai_socktype = SOCK_STREAM;
        g->ai.ai_addr = (struct sockaddr *)&g->ss;
        g->ai.ai_addrlen = lens[i];
        g->ai.ai_next = i + 1 < n ? &c->given[i + 1].ai : NULL;
    }
    c->ai = c->cur = &c->given[0].ai;
    if (try_connect(c) < 0) {
        snprintf(err, errlen, "%s", c->err);
        td_rconn_free(c);
        return NULL;
    }
    return c;
}

void td_rconn_free(struct td_rconn *c)
{
    if (!c) {
        return;
    }
    if (c->ssl) {
        SSL_free(c->ssl); /* no close_notify: Redis does not need one, and it could block */
    }
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0) {
        close(c->fd);
    }
    if (c->given) {
        free(c->given);
    } else if (c->ai) {
        freeaddrinfo(c->ai);
    }
    if (c->reader) {
        redisReaderFree(c->reader); /* first: it frees a reply half parsed into the arena */
    }
    td_redis_arena_free(c->arena);
    free(c->out);
    free(c);
}

int td_rconn_fd(const struct td_rconn *c)
{
    return c->fd;
}

int td_rconn_stale_fd(struct td_rconn *c)
{
    int fd = c->stale_fd;
    c->stale_fd = -1;
    return fd;
}

const char *td_rconn_error(const struct td_rconn *c)
{
    return c->err;
}

bool td_rconn_flushed(const struct td_rconn *c)
{
    return c->state == ST_READY && c->outpos == c->outlen;
}

bool td_rconn_ready(const struct td_rconn *c)
{
    return c->state == ST_READY;
}

static int push(struct td_rconn *c, const char *buf, size_t len)
{
    if (c->outpos == c->outlen) {
        c->outpos = c->outlen = 0;
    }
    if (c->outlen + len > c->outcap) {
        size_t cap = c->outcap ? c->outcap : 4096;
        while (cap < c->outlen + len) {
            cap *= 2;
        }
        char *p = realloc(c->out, cap);
        if (!p) {
            return -1;
        }
        c->out = p;
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, buf, len);
    c->outlen += len;
    return 0;
}

int td_rconn_append(struct td_rconn *c, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0 || !cmd) {
        return -1;
    }
    int rc = push(c, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return rc;
}

int td_rconn_append_setup(struct td_rconn *c, const struct td_redis_addr *a, int db)
{
    int n = 0;
    if (a->password) {
        const char *argv[3] = {"AUTH", a->user ? a->user : a->password, a->password};
        size_t lens[3] = {4, strlen(argv[1]), strlen(argv[2])};
        if (td_rconn_append(c, a->user ? 3 : 2, argv, lens) < 0) {
            return -1;
        }
        n++;
    }
    if (db > 0) {
        char dbs[16];
        snprintf(dbs, sizeof(dbs), "%d", db);
        const char *argv[2] = {"SELECT", dbs};
        size_t lens[2] = {6, strlen(dbs)};
        if (td_rconn_append(c, 2, argv, lens) < 0) {
            return -1;
        }
        n++;
    }
    return n;
}

/* An SSL call returned r <= 0: 0 when it only waits for the socket (c->ssl_want says for
 * what), -1 when the connection failed. */
static int ssl_wait_or_fail(struct td_rconn *c, int r, const char *doing)
{
    int e = SSL_get_error(c->ssl, r);
    char why[200];
    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->ssl_want = POLLIN;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        c->ssl_want = POLLOUT;
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        return fail(c, "redis %s:%d closed the TLS connection", c->host, c->port);
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (errno == EAGAIN || errno == EINTR) {
            c->ssl_want = POLLIN;
            return 0;
        }
        return fail(c, "TLS %s with %s:%d: %s", doing, c->host, c->port,
                    errno ? strerror(errno) : "the server closed the connection");
    default:
        if (c->state == ST_HANDSHAKE && SSL_get_verify_result(c->ssl) != X509_V_OK) {
            ERR_clear_error();
            return fail(c, "TLS handshake with %s:%d: certificate verify failed: %s", c->host,
                        c->port, X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
        }
        return fail(c, "TLS %s with %s:%d: %s", doing, c->host, c->port,
                    ssl_reason(why, sizeof(why), "failed"));
    }
}

/* A write failed (the server reset the connection): a server that refuses this client (TLS 1.3
 * checks the client certificate after the client's handshake is done) sent an alert first,
 * which says why better than "connection reset"; take its reason when it is there. */
static void alert_reason(struct td_rconn *c)
{
    char buf[256], why[200];
    ERR_clear_error();
    int r = SSL_read(c->ssl, buf, sizeof(buf));
    if (r <= 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_SSL) {
        snprintf(c->err, sizeof(c->err), "TLS with %s:%d: %s", c->host, c->port,
                 ssl_reason(why, sizeof(why), "failed"));
    }
    ERR_clear_error();
}

static int finish_connect(struct td_rconn *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLOUT};
    if (poll(&p, 1, 0) == 0) {
        return 0; /* still connecting */
    }
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
        soerr = errno;
    }
    if (soerr) {
        c->last_errno = soerr;
        close(c->fd);
        c->stale_fd = c->fd;
        c->fd = -1;
        c->cur = c->cur->ai_next;
        return try_connect(c);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!c->ssl) {
        c->state = ST_READY;
        return 0;
    }
    if (SSL_set_fd(c->ssl, c->fd) != 1) {
        return fail(c, "TLS: cannot attach the socket");
    }
    SSL_set_connect_state(c->ssl);
    c->state = ST_HANDSHAKE;
    return 0;
}

static int do_write(struct td_rconn *c)
{
    while (c->outpos < c->outlen) {
        size_t len = c->outlen - c->outpos;
        if (c->ssl) {
            ERR_clear_error();
            int n = SSL_write(c->ssl, c->out + c->outpos, len > INT32_MAX ? INT32_MAX : (int)len);
            if (n <= 0 && ssl_wait_or_fail(c, n, "write") < 0) {
                alert_reason(c);
                return -1;
            }
            if (n <= 0) {
                return 0;
            }
            c->outpos += (size_t)n;
        } else {
            ssize_t n = send(c->fd, c->out + c->outpos, len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    return 0;
                }
                return fail(c, "write to %s:%d: %s", c->host, c->port, strerror(errno));
            }
            c->outpos += (size_t)n;
        }
    }
    return 0;
}

static int do_read(struct td_rconn *c)
{
    char buf[16384];
    for (;;) {
        ssize_t n;
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_read(c->ssl, buf, sizeof(buf));
            if (r <= 0) {
                return ssl_wait_or_fail(c, r, "read");
            }
            n = r;
        } else {
            n = recv(c->fd, buf, sizeof(buf), 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    return 0;
                }
                return fail(c, "read from %s:%d: %s", c->host, c->port, strerror(errno));
            }
            if (n == 0) {
                return fail(c, "redis %s:%d closed the connection", c->host, c->port);
            }
        }
        if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) {
            return fail(c, "out of memory");
        }
        if ((size_t)n < sizeof(buf) && !(c->ssl && SSL_pending(c->ssl) > 0)) {
            return 0; /* drained for now */
        }
    }
}

int td_rconn_io(struct td_rconn *c, short *want)
{
    *want = 0;
    if (c->state == ST_CONNECTING && finish_connect(c) < 0) {
        return -1;
    }
    if (c->state == ST_CONNECTING) {
        *want = POLLOUT;
        return 0;
    }
    if (c->state == ST_HANDSHAKE) {
        ERR_clear_error();
        int r = SSL_connect(c->ssl);
        if (r != 1) {
            if (ssl_wait_or_fail(c, r, "handshake") < 0) {
                return -1;
            }
            *want = c->ssl_want;
            return 0;
        }
        c->state = ST_READY;
    }
    if (c->state != ST_READY) {
        return -1;
    }
    c->ssl_want = 0;
    if (do_write(c) < 0) {
        return -1;
    }
    short wwant = c->outpos < c->outlen ? (c->ssl ? c->ssl_want : POLLOUT) : 0;
    c->ssl_want = 0;
    if (do_read(c) < 0) {
        return -1;
    }
    /* Reading always: a reply, or the server closing the connection. */
    *want = (short)(POLLIN | wwant | (c->ssl_want == POLLOUT ? POLLOUT : 0));
    return 0;
}

int td_rconn_reply(struct td_rconn *c, redisReply **out)
{
    void *r = NULL;
    *out = NULL;
    if (redisReaderGetReply(c->reader, &r) != REDIS_OK) {
        fail(c, "protocol error from %s:%d", c->host, c->port);
        return -1;
    }
    *out = r;
    return r ? 1 : 0;
}

int td_rconn_use_arena(struct td_rconn *c)
{
    if (!c->arena && !(c->arena = td_redis_arena_new())) {
        return -1;
    }
    td_redis_arena_attach(c->arena, c->reader);
    /* The same goes for the read buffer: hiredis frees it whenever it is empty with more than
     * 16 KiB to spare, i.e. after every big reply, and grows it again (realloc and copy) for
     * the next. Kept up to half a MiB, the size a read of a hundred 1 KiB entries needs. */
    c->reader->maxbuf = 512 * 1024;
    return 0;
}

void td_rconn_reply_free(struct td_rconn *c, redisReply *r)
{
    if (r) {
        c->reader->fn->freeObject(r);
    }
}

void td_rconn_set_cancel_fd(struct td_rconn *c, int fd)
{
    c->cancel_fd = fd;
}

void td_rconn_set_stop_by(struct td_rconn *c, int fd, const _Atomic int64_t *by)
{
    c->stop_fd = by ? fd : -1;
    c->stop_by = fd >= 0 ? by : NULL;
}

/* How often a wait re-reads *stop_by once the stop fd was readable: the eventfd stays readable
 * (nothing reads it), so it cannot be polled again, and an earlier deadline may come after the
 * stop began (a reload's retiring source, then a shutdown: td_source_stop_by). */
#define STOP_SLICE_MS 100
/* A wait that starts after the stop deadline still gets this long: the command is written and
 * a server that answers does in a millisecond (the last XACK of a drain), one that does not
 * costs no more than this. */
#define STOP_MIN_MS 100

int td_rconn_wait(struct td_rconn *c, int64_t deadline_ms, redisReply **reply)
{
    bool stopping = false; /* stop_fd was readable: deadline_ms is capped by *stop_by */
    int64_t floor_ms = 0;  /* set once stopping: the wait's STOP_MIN_MS (no clock read before) */
    for (;;) {
        if (reply) {
            int r = td_rconn_reply(c, reply);
            if (r != 0) {
                return r < 0 ? -1 : 0;
            }
        }
        short want;
        if (td_rconn_io(c, &want) < 0) {
            return -1;
        }
        if (reply) {
            int r = td_rconn_reply(c, reply);
            if (r != 0) {
                return r < 0 ? -1 : 0;
            }
        } else if (td_rconn_flushed(c)) {
            return 0;
        }
        int64_t until = deadline_ms;
        bool at_stop = false; /* until is the stop deadline */
        if (stopping) {
            int64_t by = atomic_load(c->stop_by);
            by = by > 0 && by < floor_ms ? floor_ms : by;
            if (by > 0 && by < until) {
                until = by;
                at_stop = true;
            }
        }
        int64_t left = until - td_now_ms();
        if (left <= 0) {
            return at_stop ? fail(c, "no answer from %s:%d by the stop deadline", c->host, c->port)
                           : fail(c, "no answer from %s:%d in time", c->host, c->port);
        }
        if (stopping && left > STOP_SLICE_MS) {
            left = STOP_SLICE_MS;
        }
        struct pollfd p[3] = {{.fd = c->fd, .events = want},
                              {.fd = c->cancel_fd, .events = POLLIN},
                              {.fd = stopping ? -1 : c->stop_fd, .events = POLLIN}};
        if (poll(p, 3, (int)(left > 60000 ? 60000 : left)) < 0 && errno != EINTR) {
            return fail(c, "poll: %s", strerror(errno));
        }
        if (p[1].revents & POLLIN) {
            return fail(c, "stopped while waiting for %s:%d", c->host, c->port);
        }
        if ((p[2].revents & POLLIN) && !stopping) {
            stopping = true;
            floor_ms = td_now_ms() + STOP_MIN_MS;
        }
    }
}

redisReply *td_rconn_command_argv(struct td_rconn *c, int timeout_ms, int argc, const char **argv,
                                  const size_t *lens)
{
    redisReply *r = NULL;
    if (c->state == ST_FAILED) {
        return NULL;
    }
    if (td_rconn_append(c, argc, argv, lens) < 0) {
        fail(c, "out of memory");
        return NULL;
    }
    if (td_rconn_wait(c, td_now_ms() + timeout_ms, &r) < 0) {
        return NULL;
    }
    return r;
}

redisReply *td_rconn_command(struct td_rconn *c, int timeout_ms, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    redisReply *r = NULL;
    if (c->state == ST_FAILED) {
        redisFreeCommand(cmd);
        return NULL;
    }
    if (len < 0 || !cmd || push(c, cmd, (size_t)len) < 0) {
        redisFreeCommand(cmd);
        fail(c, "out of memory");
        return NULL;
    }
    redisFreeCommand(cmd);
    if (td_rconn_wait(c, td_now_ms() + timeout_ms, &r) < 0) {
        return NULL;
    }
    return r;
}

struct td_rconn *td_redis_open(const struct td_redis_addr *a, const struct td_redis_tls *tls,
                               int db, int timeout_ms, int cancel_fd, char *err, size_t errlen)
{
    struct td_rconn *c = td_rconn_new(a->host, a->port, tls, err, errlen);
    if (!c) {
        return NULL;
    }
    c->cancel_fd = cancel_fd;
    int n = td_rconn_append_setup(c, a, db);
    bool ping = n == 0;
    if (ping) {
        /* One round trip even without AUTH or SELECT, so that a server that refuses this
         * client (a TLS alert after the handshake, a wrong protocol) says so here. */
        const char *argv[] = {"PING"};
        size_t lens[] = {4};
        n = td_rconn_append(c, 1, argv, lens) < 0 ? -1 : 1;
    }
    if (n < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    int64_t deadline = td_now_ms() + timeout_ms;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (td_rconn_wait(c, deadline, &r) < 0) {
            snprintf(err, errlen, "%s", c->err);
            goto fail;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            const char *what = ping ? "PING" : (i == 0 && a->password ? "AUTH" : "SELECT");
            snprintf(err, errlen, "%s at %s:%d failed: %s", what, a->host, a->port, r->str);
            freeReplyObject(r);
            goto fail;
        }
        freeReplyObject(r);
    }
    return c;
fail:
    td_rconn_free(c);
    return NULL;
}
