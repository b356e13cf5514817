/* redis.c - the Redis stream sink: XADDs the event in binary mode (README "Redis Streams",
 * our Redis binding). Used as a dead-letter and reply target. It speaks hiredis' async API on the
 * loop (an adapter below maps hiredis' read/write interest onto epoll), so a slow Redis never
 * blocks a delivery. hiredis 0.14 has no command timeout: an attempt that outlives its
 * timeout frees the connection, which fails every command on it (all retryable). The host
 * should be an address: hiredis resolves names with a blocking getaddrinfo. */
#include <limits.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "ce_redis.h"
#include "cloudevent.h"
#include "conf_table.h"
#include "log.h"
#include "loop.h"
#include "redis_sink.h"
#include "redis_util.h"
#include "sink.h"

struct redis_sink;

struct redis_attempt {
    struct redis_attempt *prev, *next;
    struct redis_sink *rs;
    struct td_attempt *a;
    struct td_timer timer;
};

/* One hiredis connection. Its state lives here, not in the sink, because an old connection
 * is still being torn down (its callbacks running) when a completion already made the sink
 * open the next one. Freed by a loop task once hiredis is done with it. */
struct redis_conn {
    struct redis_sink *rs;
    redisAsyncContext *ac;
    int fd;
    bool reading, writing;
    bool setup_failed; /* AUTH or SELECT refused: nothing on it may count as written */
    bool destroying;   /* the sink frees it itself (teardown or reload) */
};

struct redis_sink {
    struct td_sink *k;
    struct td_redis_addr addr;
    int db;
    struct redis_conn *conn;        /* the live connection, or NULL */
    struct redis_attempt *attempts; /* waiting for a reply */
};

static void update_events(struct redis_conn *c);

static void on_fd(struct td_loop *loop, int fd, uint32_t events, void *arg)
{
    struct redis_conn *c = arg;
    redisAsyncContext *ac = c->ac;
    if (!ac) {
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        redisAsyncHandleRead(ac);
    }
    /* A read may have freed the context (c->ac is cleared by cleanup). */
    if (c->ac == ac && (events & EPOLLOUT)) {
        redisAsyncHandleWrite(ac);
    }
}

static void update_events(struct redis_conn *c)
{
    uint32_t ev = (c->reading ? EPOLLIN : 0) | (c->writing ? EPOLLOUT : 0);
    td_loop_fd_del(c->rs->k->loop, c->fd);
    if (ev) {
        td_loop_fd_add(c->rs->k->loop, c->fd, ev, on_fd, c);
    }
}

static void add_read(void *p)
{
    struct redis_conn *c = p;
    c->reading = true;
    update_events(c);
}

static void del_read(void *p)
{
    struct redis_conn *c = p;
    c->reading = false;
    update_events(c);
}

static void add_write(void *p)
{
    struct redis_conn *c = p;
    c->writing = true;
    update_events(c);
}

static void del_write(void *p)
{
    struct redis_conn *c = p;
    c->writing = false;
    update_events(c);
}

static void free_conn(struct td_loop *loop, void *arg)
{
    free(arg);
}

/* hiredis is freeing the context: forget it everywhere, and free our state after this
 * callback chain has unwound. */
static void cleanup(void *p)
{
    struct redis_conn *c = p;
    c->reading = c->writing = false;
    td_loop_fd_del(c->rs->k->loop, c->fd);
    if (c->rs->conn == c) {
        c->rs->conn = NULL;
    }
    c->ac = NULL;
    if (c->destroying) {
        return;
    }
    if (td_loop_post(c->rs->k->loop, free_conn, c) < 0) {
        /* Out of memory: leak 40 bytes rather than risk a use after free. */
        td_log_error(NULL, NULL, NULL, "sink '%s': out of memory", c->rs->k->name);
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis_conn *c = ac->ev.data;
    if (status != REDIS_OK) {
        td_log_warn(NULL, NULL, NULL, "sink '%s': connect to %s:%d failed: %s", c->rs->k->name,
                    c->rs->addr.host, c->rs->addr.port, ac->errstr);
        if (c->rs->conn == c) {
            c->rs->conn = NULL; /* hiredis frees the context after this callback */
        }
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_conn *c = ac->ev.data;
    if (status != REDIS_OK) {
        td_log_warn(NULL, NULL, NULL, "sink '%s': connection lost: %s", c->rs->k->name, ac->errstr);
    }
    if (c->rs->conn == c) {
        c->rs->conn = NULL;
    }
}

static void on_setup_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    struct redis_conn *c = ac->ev.data;
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        td_log_error(NULL, NULL, NULL, "sink '%s': %s failed: %s", c->rs->k->name,
                     (const char *)privdata, reply->str);
        c->setup_failed = true;
    }
}

static struct redis_conn *ensure_connected(struct redis_sink *rs)
{
    if (rs->conn && rs->conn->setup_failed) {
        /* Commands queued behind a refused AUTH/SELECT fail on their own (setup_failed);
         * the next delivery starts over on a new connection. */
        rs->conn = NULL;
    }
    if (rs->conn) {
        return rs->conn;
    }
    struct redis_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        return NULL;
    }
    redisAsyncContext *ac = redisAsyncConnect(rs->addr.host, rs->addr.port);
    if (!ac || ac->err) {
        if (ac) {
            redisAsyncFree(ac);
        }
        free(c);
        return NULL;
    }
    c->rs = rs;
    c->ac = ac;
    c->fd = ac->c.fd;
    ac->ev.data = c;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    rs->conn = c;
    if (rs->addr.password) {
        if (rs->addr.user) {
            redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s %s", rs->addr.user,
                              rs->addr.password);
        } else {
            redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s", rs->addr.password);
        }
    }
    if (rs->db > 0) {
        redisAsyncCommand(ac, on_setup_reply, "SELECT", "SELECT %d", rs->db);
    }
    return c;
}

static void attempt_unlink(struct redis_attempt *ra)
{
    struct redis_sink *rs = ra->rs;
    if (ra->prev) {
        ra->prev->next = ra->next;
    } else {
        rs->attempts = ra->next;
    }
    if (ra->next) {
        ra->next->prev = ra->prev;
    }
    td_timer_stop(rs->k->loop, &ra->timer);
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct redis_attempt *ra = privdata;
    redisReply *reply = r;
    struct td_attempt *a = ra->a;
    struct redis_conn *c = ac->ev.data;
    bool refused = c && c->setup_failed;
    attempt_unlink(ra);
    free(ra);
    if (refused) {
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, "redis refused AUTH or SELECT", NULL, 0);
    } else if (!reply) {
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, "redis connection lost", NULL, 0);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        char reason[160];
        snprintf(reason, sizeof(reason), "redis: %s", reply->str);
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
    } else {
        td_attempt_done(a, TD_RESULT_OK, 0, -1, "XADD", NULL, 0);
    }
}

static int64_t on_timeout(struct td_loop *loop, void *arg)
{
    struct redis_attempt *ra = arg;
    struct redis_sink *rs = ra->rs;
    td_log_warn(NULL, NULL, NULL, "sink '%s': no reply within the timeout, reconnecting",
                rs->k->name);
    /* hiredis 0.14's redisAsyncDisconnect waits for every pending reply; freeing the
     * context fails them all at once (on_reply with NULL: retryable), this one included.
     * We are on a loop timer, not inside a hiredis callback, so freeing is allowed. */
    if (rs->conn) {
        redisAsyncContext *ac = rs->conn->ac;
        rs->conn = NULL;
        redisAsyncFree(ac);
    }
    return TD_LOOP_NOMORE;
}

static int deliver(struct td_sink *k, const struct td_event *ev, struct td_attempt *a)
{
    struct redis_sink *rs = k->impl;
    struct td_redis_fields f = {0};
    const char **argv = NULL;
    size_t *lens = NULL;
    struct redis_attempt *ra = NULL;
    struct redis_conn *c = ensure_connected(rs);
    if (!c) {
        snprintf(a->reason, sizeof(a->reason), "cannot connect to redis %s:%d", rs->addr.host,
                 rs->addr.port);
        return -1;
    }
    if (td_ce_to_redis(ev, &f) < 0) {
        goto oom;
    }
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
    argv[argc] = TD_SETTINGS(k->conf, struct td_conf_redis_sink)->stream;
    lens[argc++] = strlen(TD_SETTINGS(k->conf, struct td_conf_redis_sink)->stream);
    if (TD_SETTINGS(k->conf, struct td_conf_redis_sink)->maxlen > 0) {
        snprintf(maxlen, sizeof(maxlen), "%lld",
                 (long long)TD_SETTINGS(k->conf, struct td_conf_redis_sink)->maxlen);
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
    ra->rs = rs;
    ra->a = a;
    td_timer_init(&ra->timer, on_timeout, ra);
    if (redisAsyncCommandArgv(c->ac, on_reply, ra, (int)argc, argv, lens) != REDIS_OK) {
        snprintf(a->reason, sizeof(a->reason), "redis command could not be queued");
        free(ra);
        ra = NULL;
        goto fail;
    }
    ra->next = rs->attempts;
    if (rs->attempts) {
        rs->attempts->prev = ra;
    }
    rs->attempts = ra;
    int64_t timeout = a->timeout_ms > 0 ? a->timeout_ms : k->conf->timeout_ms;
    td_timer_start(k->loop, &ra->timer, timeout);
    a->sink_state = ra;
    free(argv);
    free(lens);
    td_redis_fields_free(&f);
    return 0;
oom:
    snprintf(a->reason, sizeof(a->reason), "out of memory");
    free(ra);
fail:
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
    /* Teardown: abandon the attempts (see sink.h), then free the context; its callbacks
     * must not reach them. */
    while (rs->attempts) {
        struct redis_attempt *ra = rs->attempts;
        attempt_unlink(ra);
        free(ra);
    }
    if (rs->conn) {
        struct redis_conn *c = rs->conn;
        redisAsyncContext *ac = c->ac;
        ac->onDisconnect = NULL;
        /* pending callbacks get NULL replies; point them at nothing */
        for (redisCallback *cb = ac->replies.head; cb; cb = cb->next) {
            cb->fn = NULL;
        }
        rs->conn = NULL;
        c->destroying = true;
        redisAsyncFree(ac);
        free(c);
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
    char why[200];
    if (td_redis_addr_parse(TD_SETTINGS(k->conf, struct td_conf_redis_sink)->url, &rs->addr, why,
                            sizeof(why)) < 0) {
        snprintf(err, errlen, "sink '%s': %s", k->name, why);
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
    k->ops = &redis_ops;
    k->impl = rs;
    snprintf(k->dest, sizeof(k->dest), "redis://%s:%d/%d/%s", rs->addr.host, rs->addr.port, rs->db,
             TD_SETTINGS(k->conf, struct td_conf_redis_sink)->stream);
    return 0;
}

/* ---- settings: redis: {url, stream, maxlen, timeout} ---- */
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
};
static const struct td_conf_table redis_sink_table = {TABLE("redis sink", redis_sink_keys)};
#undef OFF

/* `check`: the URL as the sink will parse it. */
static void redis_check(const struct td_conf_sink *k, struct td_errors *errs)
{
    char err[256];
    if (td_redis_url_check(TD_SETTINGS(k, struct td_conf_redis_sink)->url, err, sizeof(err)) < 0) {
        td_errors_add(errs, &k->pos, "%s", err);
    }
}

const struct td_sink_desc td_sink_redis = {
    TD_SINK_KIND("redis", TD_SINK_REDIS, &redis_sink_table, struct td_conf_redis_sink),
    .check = redis_check, .init = redis_init};
