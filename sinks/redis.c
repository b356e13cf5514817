/* redis.c - the Redis stream sink: XADDs the event in binary mode (README "Redis Streams",
 * our Redis binding). Used as a dead-letter and reply target. One connection (redis_conn.h:
 * plain or TLS, the same code) driven by the loop: commands are pipelined, their replies come
 * back in order and complete the attempts in order, so a slow Redis never blocks a delivery.
 * An attempt that outlives its timeout closes the connection, which fails every attempt on it
 * (all retryable); the next delivery opens a new one. A host name is looked up off the loop
 * (resolver.h: the loop's resolver, td_http_client_resolver) and its addresses kept for
 * TD_RESOLVE_TTL_MS: attempts that need a connection before
 * the first answer wait for it (with their timeout running); a connection that fails has the
 * name looked up again for the next one, while the old addresses serve meanwhile. */
#include <arpa/inet.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "ce_redis.h"
#include "http_client.h"
#include "cloudevent.h"
#include "conf_table.h"
#include "log.h"
#include "loop.h"
#include "redis_conn.h"
#include "redis_sink.h"
#include "redis_util.h"
#include "resolver.h"
#include "sink.h"

struct redis_sink;

/* An XADD sent and not yet answered, or (waiting) an attempt waiting for the host's first
 * addresses. */
struct redis_attempt {
    struct redis_attempt *next;
    struct redis_sink *rs;
    struct td_attempt *a;
    struct td_timer timer;
    bool waiting;
};

struct redis_sink {
    struct td_sink *k;
    struct td_redis_addr addr;
    int db;
    const struct td_redis_tls *tls; /* in the sink's settings; NULL: plain */
    struct td_rconn *conn;          /* the live connection, or NULL */
    int setup_left;                 /* AUTH / SELECT replies still to come on conn */
    /* waiting for a reply, in the order their commands were queued on conn */
    struct redis_attempt *head, **tail;
    bool in_pump;
    char last_error[256]; /* the last failure logged: an outage is one line */
    /* A host name (named): its addresses, looked up by resolver off the loop. */
    bool named;
    struct td_resolver *resolver; /* the loop's (borrowed; it outlives the sinks), or NULL */
    struct td_resolve *lookup;    /* in flight, or NULL */
    struct td_resolve_result addrs;
    int64_t resolved_at;
    bool stale; /* a connection failed: look the name up again */
    struct redis_attempt *wait_head, **wait_tail;
};

static int deliver_now(struct td_sink *k, struct td_attempt *a);

/* Logs why once: an outage (the same reason over and over) is one line. */
static void log_once(struct redis_sink *rs, const char *why)
{
    if (strcmp(rs->last_error, why) != 0) {
        td_log_warn(NULL, NULL, NULL, "sink '%s': redis %s:%d: %s", rs->k->name, rs->addr.host,
                    rs->addr.port, why);
        snprintf(rs->last_error, sizeof(rs->last_error), "%s", why);
    }
}

static void pump(struct redis_sink *rs);

static void on_fd(struct td_loop *loop, int fd, uint32_t events, void *arg)
{
    pump(arg);
}

static uint32_t epoll_events(short want)
{
    return ((want & POLLIN) ? EPOLLIN : 0) | ((want & POLLOUT) ? EPOLLOUT : 0);
}

/* Closes the connection and fails every attempt on it (retryable, with why). Their callbacks
 * may deliver again: that opens a new connection. */
static void fail_conn(struct redis_sink *rs, const char *why_in)
{
    char why[256];
    snprintf(why, sizeof(why), "%s", why_in); /* it may be the connection's own message */
    if (rs->conn) {
        td_loop_fd_del(rs->k->loop, td_rconn_stale_fd(rs->conn));
        td_loop_fd_del(rs->k->loop, td_rconn_fd(rs->conn));
        td_rconn_free(rs->conn);
        rs->conn = NULL;
    }
    rs->stale = true; /* a name is looked up again before the next connection */
    log_once(rs, why);
    char reason[160];
    snprintf(reason, sizeof(reason), "redis: %s", why);
    struct redis_attempt *ra = rs->head;
    rs->head = NULL;
    rs->tail = &rs->head;
    while (ra) {
        struct redis_attempt *next = ra->next;
        td_timer_stop(rs->k->loop, &ra->timer);
        struct td_attempt *a = ra->a;
        free(ra);
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
        ra = next;
    }
}

/* One reply of conn: a setup command's, or the oldest attempt's. -1 when it closed conn. */
static int on_reply(struct redis_sink *rs, redisReply *reply)
{
    if (rs->setup_left > 0) {
        rs->setup_left--;
        if (reply->type == REDIS_REPLY_ERROR) {
            char why[200];
            snprintf(why, sizeof(why), "AUTH or SELECT refused: %s", reply->str);
            fail_conn(rs, why);
            return -1;
        }
        return 0;
    }
    struct redis_attempt *ra = rs->head;
    if (!ra) {
        fail_conn(rs, "a reply nothing asked for");
        return -1;
    }
    rs->head = ra->next;
    if (!rs->head) {
        rs->tail = &rs->head;
    }
    td_timer_stop(rs->k->loop, &ra->timer);
    struct td_attempt *a = ra->a;
    free(ra);
    if (reply->type == REDIS_REPLY_ERROR) {
        char reason[160];
        snprintf(reason, sizeof(reason), "redis: %s", reply->str);
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
    } else {
        if (rs->last_error[0]) {
            td_log_info(NULL, NULL, NULL, "sink '%s': redis %s:%d: connected again", rs->k->name,
                        rs->addr.host, rs->addr.port);
            rs->last_error[0] = '\0';
        }
        td_attempt_done(a, TD_RESULT_OK, 0, -1, "XADD", NULL, 0);
    }
    return 0;
}

/* Loop thread: moves the connection on (connect, handshake, writes, reads) and completes the
 * attempts whose replies came. A completion may deliver again (onto this connection, or a new
 * one): the loop goes round until a pass completes nothing. */
static void pump(struct redis_sink *rs)
{
    if (rs->in_pump) {
        return;
    }
    rs->in_pump = true;
    for (;;) {
        struct td_rconn *c = rs->conn;
        if (!c) {
            break;
        }
        short want;
        int rc = td_rconn_io(c, &want);
        /* Moving on to the host's next address closed the socket the loop watched. */
        td_loop_fd_del(rs->k->loop, td_rconn_stale_fd(c));
        if (rc < 0) {
            fail_conn(rs, td_rconn_error(c));
            continue;
        }
        int handled = 0, got;
        redisReply *reply;
        while (rs->conn == c && (got = td_rconn_reply(c, &reply)) > 0) {
            handled++;
            on_reply(rs, reply);
            freeReplyObject(reply);
        }
        if (rs->conn != c) {
            continue; /* closed (or replaced) while completing */
        }
        if (got < 0) {
            fail_conn(rs, td_rconn_error(c));
            continue;
        }
        if (!handled) {
            td_loop_fd_set(rs->k->loop, td_rconn_fd(c), epoll_events(want), on_fd, rs);
            break;
        }
    }
    rs->in_pump = false;
}

static struct td_rconn *ensure_connected(struct redis_sink *rs, char *err, size_t errlen)
{
    if (rs->conn) {
        return rs->conn;
    }
    struct td_rconn *c =
        rs->named ? td_rconn_new_at(rs->addr.host, rs->addr.port, rs->tls, rs->addrs.addrs,
                                    rs->addrs.lens, rs->addrs.n, err, errlen)
                  : td_rconn_new(rs->addr.host, rs->addr.port, rs->tls, err, errlen);
    if (!c) {
        rs->stale = true;
        return NULL;
    }
    int n = td_rconn_append_setup(c, &rs->addr, rs->db);
    if (n < 0 || td_loop_fd_set(rs->k->loop, td_rconn_fd(c), EPOLLOUT, on_fd, rs) < 0) {
        snprintf(err, errlen, "out of memory");
        td_rconn_free(c);
        return NULL;
    }
    rs->conn = c;
    rs->setup_left = n;
    return c;
}

static void wait_remove(struct redis_sink *rs, struct redis_attempt *ra)
{
    struct redis_attempt **pp = &rs->wait_head;
    while (*pp && *pp != ra) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = ra->next;
        if (!*pp) {
            rs->wait_tail = pp;
        }
    }
    ra->next = NULL;
}

static int64_t on_timeout(struct td_loop *loop, void *arg)
{
    struct redis_attempt *ra = arg;
    if (ra->waiting) {
        struct redis_sink *rs = ra->rs;
        struct td_attempt *a = ra->a;
        wait_remove(rs, ra);
        free(ra);
        char reason[160];
        snprintf(reason, sizeof(reason), "redis: no address for %s within the timeout",
                 rs->addr.host);
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
        return TD_LOOP_NOMORE;
    }
    /* Its reply may still come: only a new connection keeps replies and attempts in line. */
    fail_conn(ra->rs, "no reply within the timeout, reconnecting");
    return TD_LOOP_NOMORE;
}

/* The resolver's answer: the waiting attempts go out on a new connection, or fail retryable
 * when the name has no address (a failed lookup keeps the addresses there were). */
static void on_resolved(const struct td_resolve_result *res, void *arg)
{
    struct redis_sink *rs = arg;
    rs->lookup = NULL;
    char why[200] = "";
    if (res->err == 0) {
        rs->addrs = *res;
        rs->resolved_at = td_now_ms();
        rs->stale = false;
    } else {
        snprintf(why, sizeof(why), "resolving %s: %s%s", rs->addr.host, gai_strerror(res->err),
                 rs->addrs.n ? " (the addresses it had are kept)" : "");
        log_once(rs, why);
    }
    struct redis_attempt *ra = rs->wait_head;
    rs->wait_head = NULL;
    rs->wait_tail = &rs->wait_head;
    while (ra) {
        struct redis_attempt *next = ra->next;
        td_timer_stop(rs->k->loop, &ra->timer);
        struct td_attempt *a = ra->a;
        free(ra);
        if (rs->addrs.n == 0) {
            char reason[240];
            snprintf(reason, sizeof(reason), "redis: %s", why);
            td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
        } else if (deliver_now(rs->k, a) < 0) {
            char reason[sizeof(a->reason)]; /* td_attempt_done writes a->reason */
            snprintf(reason, sizeof(reason), "%s", a->reason);
            td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
        }
        ra = next;
    }
}

static int deliver(struct td_sink *k, const struct td_event *ev, struct td_attempt *a)
{
    (void)ev; /* a->ev: the same event */
    struct redis_sink *rs = k->impl;
    if (!rs->named || rs->conn ||
        (rs->addrs.n > 0 && !rs->stale && td_now_ms() - rs->resolved_at < TD_RESOLVE_TTL_MS)) {
        return deliver_now(k, a);
    }
    /* A new connection to a name whose addresses are missing or old: looked up off the loop.
     * While the answer is on its way, the old addresses (if any) serve. */
    if (!rs->lookup) {
        if (!rs->resolver && k->http) {
            rs->resolver = td_http_client_resolver(k->http);
        }
        char port[16];
        snprintf(port, sizeof(port), "%d", rs->addr.port);
        rs->lookup = rs->resolver
                         ? td_resolve_start(rs->resolver, rs->addr.host, port, on_resolved, rs)
                         : NULL;
    }
    if (rs->addrs.n > 0) {
        return deliver_now(k, a);
    }
    struct redis_attempt *ra = rs->lookup ? calloc(1, sizeof(*ra)) : NULL;
    if (!ra) {
        snprintf(a->reason, sizeof(a->reason), "redis: cannot look up %s: out of memory",
                 rs->addr.host);
        return -1;
    }
    ra->rs = rs;
    ra->a = a;
    ra->waiting = true;
    td_timer_init(&ra->timer, on_timeout, ra);
    int64_t timeout = a->timeout_ms > 0 ? a->timeout_ms : k->conf->timeout_ms;
    if (td_timer_start(k->loop, &ra->timer, timeout) < 0) {
        /* Without its timeout an attempt could wait forever for a lookup that never answers:
         * it fails now (retryable), as out of memory does anywhere else. */
        free(ra);
        snprintf(a->reason, sizeof(a->reason),
                 "redis: cannot wait for the address of %s: out of memory", rs->addr.host);
        return -1;
    }
    *rs->wait_tail = ra;
    rs->wait_tail = &ra->next;
    a->sink_state = ra;
    return 0;
}

/* deliver() with the addresses at hand (an address literal, or the name's). */
static int deliver_now(struct td_sink *k, struct td_attempt *a)
{
    const struct td_event *ev = a->ev;
    struct redis_sink *rs = k->impl;
    struct td_redis_fields f = {0};
    const char **argv = NULL;
    size_t *lens = NULL;
    struct redis_attempt *ra = NULL;
    char why[256];
    struct td_rconn *c = ensure_connected(rs, why, sizeof(why));
    if (!c) {
        snprintf(a->reason, sizeof(a->reason), "cannot connect to redis: %s", why);
        log_once(rs, why);
        return -1;
    }
    if (td_ce_to_redis(ev, &f) < 0) {
        goto oom;
    }
    const struct td_conf_redis_sink *conf = TD_SETTINGS(k->conf, struct td_conf_redis_sink);
    size_t argc = 0, max = f.n + 6;
    argv = malloc(max * sizeof(*argv));
    lens = malloc(max * sizeof(*lens));
    ra = calloc(1, sizeof(*ra));
    if (!argv || !lens || !ra) {
        goto oom;
    }
    char maxlen[32];
    argv[argc] = "XADD";
    lens[argc++] = 4;
    argv[argc] = conf->stream;
    lens[argc++] = strlen(conf->stream);
    if (conf->maxlen > 0) {
        snprintf(maxlen, sizeof(maxlen), "%lld", (long long)conf->maxlen);
        argv[argc] = "MAXLEN";
        lens[argc++] = 6;
        argv[argc] = "~";
        lens[argc++] = 1;
        argv[argc] = maxlen;
        lens[argc++] = strlen(maxlen);
    }
    argv[argc] = "*";
    lens[argc++] = 1;
    for (size_t i = 0; i < f.n; i++) {
        argv[argc] = f.argv[i];
        lens[argc++] = f.lens[i];
    }
    /* The timeout is armed before the XADD is queued: once queued, its reply belongs to this
     * attempt, which can then no longer fail without putting the replies out of line. */
    ra->rs = rs;
    ra->a = a;
    td_timer_init(&ra->timer, on_timeout, ra);
    int64_t timeout = a->timeout_ms > 0 ? a->timeout_ms : k->conf->timeout_ms;
    if (td_timer_start(k->loop, &ra->timer, timeout) < 0) {
        goto oom;
    }
    if (td_rconn_append(c, (int)argc, argv, lens) < 0) {
        td_timer_stop(k->loop, &ra->timer);
        goto oom;
    }
    /* Written when the socket is writable (after the handshake: as soon as it is done); the
     * outcome comes from a later loop callback, never from here. */
    if (td_rconn_ready(c) && !rs->in_pump) {
        td_loop_fd_set(k->loop, td_rconn_fd(c), EPOLLIN | EPOLLOUT, on_fd, rs);
    }
    *rs->tail = ra;
    rs->tail = &ra->next;
    a->sink_state = ra;
    free(argv);
    free(lens);
    td_redis_fields_free(&f);
    return 0;
oom:
    snprintf(a->reason, sizeof(a->reason), "redis: out of memory");
    free(ra);
    free(argv);
    free(lens);
    td_redis_fields_free(&f);
    return -1;
}

static void destroy(struct td_sink *k)
{
    struct redis_sink *rs = k->impl;
    if (!rs) {
        return;
    }
    /* Teardown: abandon the attempts (see sink.h) without callbacks. */
    if (rs->lookup) {
        td_resolve_cancel(rs->resolver, rs->lookup); /* no answer comes after this */
    }
    while (rs->wait_head) {
        struct redis_attempt *ra = rs->wait_head;
        rs->wait_head = ra->next;
        td_timer_stop(k->loop, &ra->timer);
        free(ra);
    }
    while (rs->head) {
        struct redis_attempt *ra = rs->head;
        rs->head = ra->next;
        td_timer_stop(k->loop, &ra->timer);
        free(ra);
    }
    if (rs->conn) {
        td_loop_fd_del(k->loop, td_rconn_stale_fd(rs->conn));
        td_loop_fd_del(k->loop, td_rconn_fd(rs->conn));
        td_rconn_free(rs->conn);
    }
    td_redis_addr_free(&rs->addr);
    free(rs);
    k->impl = NULL;
}

static const struct td_sink_ops redis_ops = {
    .name = "redis",
    .deliver = deliver,
    .destroy = destroy,
};

static int redis_init(struct td_sink *k, char *err, size_t errlen)
{
    struct redis_sink *rs = calloc(1, sizeof(*rs));
    if (!rs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rs->k = k;
    rs->tail = &rs->head;
    rs->wait_tail = &rs->wait_head;
    const struct td_conf_redis_sink *conf = TD_SETTINGS(k->conf, struct td_conf_redis_sink);
    char why[400];
    if (td_redis_addr_parse(conf->url, &rs->addr, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "sink '%s': %s", k->name, why);
        free(rs);
        return -1;
    }
    if (td_redis_conf_tls(rs->addr.tls, &conf->tls, &rs->tls, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "sink '%s': %s", k->name, why);
        td_redis_addr_free(&rs->addr);
        free(rs);
        return -1;
    }
    rs->db = td_redis_addr_db(&rs->addr);
    if (rs->db < 0) {
        snprintf(err, errlen, "sink '%s': the Redis URL path must be a database number", k->name);
        td_redis_addr_free(&rs->addr);
        free(rs);
        return -1;
    }
    unsigned char bin[sizeof(struct in6_addr)];
    rs->named =
        inet_pton(AF_INET, rs->addr.host, bin) != 1 && inet_pton(AF_INET6, rs->addr.host, bin) != 1;
    k->ops = &redis_ops;
    k->impl = rs;
    snprintf(k->dest, sizeof(k->dest), "%s://%s:%d/%d/%s", rs->addr.tls ? "rediss" : "redis",
             rs->addr.host, rs->addr.port, rs->db, conf->stream);
    return 0;
}

/* ---- settings: redis: {url, stream, maxlen, timeout, tls} ---- */
#define OFF(f) offsetof(struct td_conf_redis_sink, f)

static const struct td_conf_key redis_sink_keys[] = {
    REQ_STR("url", OFF(url)),
    REQ_STR("stream", OFF(stream)),
    {.name = "maxlen",
     .type = TD_K_I64,
     .off = OFF(maxlen),
     .min = 0,
     .max = LLONG_MAX,
     .dflt = "0"},
    TD_QUEUE_SINK_TIMEOUT,
    NESTED("tls", OFF(tls), &td_redis_tls_table),
};
static const struct td_conf_table redis_sink_table = {TABLE("redis sink", redis_sink_keys)};
#undef OFF

/* `check`: the URL as the sink will parse it, and its tls block. */
static void redis_check(const struct td_conf_sink *k, struct td_errors *errs)
{
    const struct td_conf_redis_sink *c = TD_SETTINGS(k, struct td_conf_redis_sink);
    char who[300];
    snprintf(who, sizeof(who), "sink '%s'", k->name);
    td_redis_conf_check(who, c->url, &c->tls, &k->pos, errs);
}

const struct td_sink_desc td_sink_redis = {
    TD_SINK_KIND("redis", TD_SINK_REDIS, &redis_sink_table, struct td_conf_redis_sink),
    .check = redis_check, .init = redis_init};
