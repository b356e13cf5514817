/* http_lean.c - the lean HTTP/1.1 client (see http_lean.h).
 *
 * Ownership: the client owns its pools (one per host:port, kept until the client is freed) and
 * their connections; a target borrows a pool; a request is owned by its creator until
 * td_lean_request_send, then by the client until it reports. A request's bytes (which may
 * hold a bearer token) and the answer's body (a reply) are wiped before they are freed.
 */
#include "http_lean.h"

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lean_parse.h"
#include "log.h"
#include "loop.h"
#include "resolver.h"
#include "secret.h"

#define BODY_CAP           65536 /* the most of an answer's body kept (as the libcurl client) */
#define LINE_MAX_LEN       8192  /* a longer header line is not passed on (nor parsed) */
#define CONNECT_TIMEOUT_MS 5000  /* as the sink asks of libcurl */
#define IDLE_MAX_MS        (118 * 1000) /* libcurl's CURLOPT_MAXAGE_CONN default */
#define READ_CHUNK         16384
#define HEAD_INLINE        1024
/* Spare request structs kept for reuse: each is ~10 KB (its header line and head buffers), and
 * a malloc and free of that size per event cost more than the rest of the client (glibc merges
 * the freed chunk into the top and consolidates). */
#define SPARE_MAX 256
#define SWEEP_MS  30000

enum conn_state { CONN_CONNECTING, CONN_BUSY, CONN_IDLE };

struct lean_pool;

struct lean_conn {
    struct lean_conn *next, *prev; /* in the pool's idle list, or in its busy list */
    struct lean_pool *pool;
    int fd;
    enum conn_state state;
    bool used;          /* answered at least one request: a failure may mean it went stale */
    size_t addr_idx;    /* named pools: the address it was opened to (the pool's cur then) */
    int64_t idle_since; /* td_now_ms() when it went idle */
    struct td_lean_request *req;
};

struct lean_pool {
    struct lean_pool *next;
    struct td_lean_client *client;
    struct sockaddr_storage addr; /* where new connections go */
    socklen_t addrlen;
    char key[272];          /* "ip:port" or "name:port" */
    struct lean_conn *idle; /* newest first */
    struct lean_conn *busy;
    /* A host name (named): its addresses come from the client's resolver, off the loop, and
     * are used for TD_RESOLVE_TTL_MS; addr is addrs[cur]. A failed connect moves cur on to the next
     * address and has the name looked up again before the next new connection. While a new
     * answer is on its way, the old addresses are still used (as long as there are some);
     * requests that need a connection before the first answer wait in the pool. */
    bool named;
    char host[256];
    char port[8];
    struct sockaddr_storage addrs[TD_RESOLVE_MAX_ADDRS];
    socklen_t lens[TD_RESOLVE_MAX_ADDRS];
    size_t naddrs, cur;
    int64_t resolved_at;
    bool stale;
    struct sockaddr_storage bad; /* the last address a connect failed to (badlen 0: none) */
    socklen_t badlen;
    struct td_resolve *lookup; /* in flight, or NULL */
    struct td_lean_request *wait_head, *wait_tail;
};

struct td_lean_client {
    struct td_loop *loop;
    struct lean_pool *pools;
    struct td_lean_request *spare; /* linked through next */
    size_t nspare;
    struct td_timer sweep;           /* closes connections idle longer than IDLE_MAX_MS */
    struct td_resolver *resolver;    /* host names (borrowed: the loop's); NULL: none */
    struct td_lean_request *running; /* doubly linked */
    size_t nrunning, nconns;
};

struct td_lean_target {
    struct lean_pool *pool;
    char *line; /* "POST /path?query HTTP/1.1\r\n" */
    size_t line_len;
    char *host; /* "Host: ...\r\n" */
    size_t host_len;
};

struct td_lean_request {
    struct td_lean_request *prev, *next; /* running */
    struct td_lean_client *client;
    struct lean_pool *pool;
    struct lean_conn *conn;
    td_http_done_fn done;
    void *arg;
    td_lean_header_fn hfn;
    void *harg;
    struct td_timer timer;
    int64_t deadline;
    CURLcode pending; /* reported by the timer when it fires at once (a failure in send) */
    struct td_lean_request *wnext; /* waiting for its pool's first answer from the resolver */
    bool waiting;
    size_t addr_tries; /* addresses of a named pool this request failed to connect to */
    bool retried, got_bytes, has_host, has_ua, close_after, complete, in_value;
    bool in_send; /* inside td_lean_request_send: a failure is reported from the timer */
    /* the request's bytes: head (line, headers, Content-Length, blank line), then body */
    char *head;
    size_t head_len, head_cap;
    const unsigned char *body;
    unsigned char *body_owned;
    size_t body_len;
    size_t sent; /* of head_len + body_len */
    const struct td_lean_target *target;
    /* the answer */
    http_parser parser;
    long status;
    int64_t retry_after_ms;
    unsigned char *rbody;
    size_t rlen, rcap;
    size_t line_len; /* the header line being read, in line */
    size_t name_len;
    bool line_over;
    char line[LINE_MAX_LEN + 4];
    char head_inline[HEAD_INLINE];
};

static void conn_close(struct lean_conn *k);
static void conn_event(struct td_loop *loop, int fd, uint32_t events, void *arg);
static void conn_fail(struct lean_conn *k, CURLcode code);
static int start_on_conn(struct td_lean_request *r);
static int conn_open(struct td_lean_request *r);
static bool addr_failed(struct lean_pool *p, size_t idx);
static void answer_reset(struct td_lean_request *r);

/* ---- targets and pools ---------------------------------------------------------------------- */

/* The pool for key: an address (sa, len), or a host name to resolve (host, port; sa NULL). */
static struct lean_pool *pool_get(struct td_lean_client *c, const struct sockaddr_storage *sa,
                                  socklen_t len, const char *key, const char *host,
                                  const char *port)
{
    for (struct lean_pool *p = c->pools; p; p = p->next) {
        if (strcmp(p->key, key) == 0) {
            return p;
        }
    }
    struct lean_pool *p = calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    p->client = c;
    if (sa) {
        memcpy(&p->addr, sa, len);
        p->addrlen = len;
    } else {
        p->named = true;
        snprintf(p->host, sizeof(p->host), "%s", host);
        snprintf(p->port, sizeof(p->port), "%s", port);
    }
    snprintf(p->key, sizeof(p->key), "%s", key);
    p->next = c->pools;
    c->pools = p;
    return p;
}

struct td_lean_target *td_lean_target_new(struct td_lean_client *c, const char *url, char *err,
                                          size_t errlen)
{
    struct td_lean_target *t = NULL;
    struct td_lean_url u;
    if (td_lean_url_parse(url, &u, err, errlen) < 0) {
        return NULL;
    }
    /* td_lean_url_parse checked the host (an address, or a name that fits a pool) and the port */
    const char *host = u.host, *path = u.path, *query = u.query;
    long portn = u.port;
    char port[8];
    snprintf(port, sizeof(port), "%ld", portn);
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof(sa));
    socklen_t salen = 0;
    bool named = !u.ip4 && !u.ip6; /* a name: looked up by the client's resolver, off the loop */
    char ip[INET6_ADDRSTRLEN + 2] = "";
    struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
    if (u.ip4) {
        inet_pton(AF_INET, host, &s4->sin_addr);
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)portn);
        salen = sizeof(*s4);
        snprintf(ip, sizeof(ip), "%s", host);
    } else if (u.ip6) {
        size_t hl = strlen(host); /* "[...]" */
        memcpy(ip, host + 1, hl - 2);
        ip[hl - 2] = '\0';
        inet_pton(AF_INET6, ip, &s6->sin6_addr);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)portn);
        salen = sizeof(*s6);
    }
    const char *h = host;
    char key[300];
    snprintf(key, sizeof(key), "%s:%ld", named ? h : ip, portn);
    t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    t->pool = named ? pool_get(c, NULL, 0, key, h, port) : pool_get(c, &sa, salen, key, NULL, NULL);
    /* the path and query as they were written (dot segments removed, no fragment), which is
     * what libcurl sends too (lean_parse.h) */
    size_t n = strlen(path) + (query ? strlen(query) + 1 : 0) + 32;
    t->line = malloc(n);
    size_t hn = strlen(host) + strlen(port) + 16;
    t->host = malloc(hn);
    if (!t->pool || !t->line || !t->host) {
        snprintf(err, errlen, "out of memory");
        td_lean_target_free(t);
        t = NULL;
        goto out;
    }
    t->line_len = (size_t)snprintf(t->line, n, "POST %s%s%s HTTP/1.1\r\n", path, query ? "?" : "",
                                   query ? query : "");
    /* libcurl leaves the port out of Host when it is the scheme's default */
    bool dflt = portn == 80;
    t->host_len =
        (size_t)snprintf(t->host, hn, "Host: %s%s%s\r\n", host, dflt ? "" : ":", dflt ? "" : port);
out:
    td_lean_url_clear(&u);
    return t;
}

int td_lean_url_check(const char *url, char *err, size_t errlen)
{
    struct td_lean_client c = {0}; /* pools only: no loop, no connection */
    struct td_lean_target *t = td_lean_target_new(&c, url, err, errlen);
    td_lean_target_free(t);
    free(c.pools); /* at most the one target_new made */
    return t ? 0 : -1;
}

void td_lean_target_free(struct td_lean_target *t)
{
    if (!t) {
        return;
    }
    free(t->line);
    free(t->host);
    free(t);
}

/* ---- building a request ---------------------------------------------------------------------- */

static int head_append(struct td_lean_request *r, const char *a, size_t alen, const char *b,
                       size_t blen, const char *c, size_t clen);

struct td_lean_request *td_lean_request_new(const struct td_lean_target *t)
{
    struct td_lean_client *c = t->pool->client;
    struct td_lean_request *r = c->spare;
    if (r) {
        c->spare = r->next;
        c->nspare--;
    } else if (!(r = malloc(sizeof(*r)))) {
        return NULL;
    }
    /* everything before the big buffers is zeroed; line and head_inline are written before
     * they are read */
    memset(r, 0, offsetof(struct td_lean_request, line));
    r->target = t;
    r->pool = t->pool;
    r->head = r->head_inline;
    r->head_cap = sizeof(r->head_inline);
    r->retry_after_ms = -1;
    /* The request line may be longer than head_inline (a long path or query): append grows the
     * buffer as it does for headers. It fails only without memory, and then head is still
     * head_inline, so r goes back as it came. */
    r->head_len = 0;
    if (head_append(r, t->line, t->line_len, "", 0, "", 0) < 0) {
        free(r);
        return NULL;
    }
    return r;
}

static int head_append(struct td_lean_request *r, const char *a, size_t alen, const char *b,
                       size_t blen, const char *c, size_t clen)
{
    size_t need = r->head_len + alen + blen + clen;
    if (need > r->head_cap) {
        size_t cap = r->head_cap * 2;
        while (cap < need) {
            cap *= 2;
        }
        char *h = malloc(cap);
        if (!h) {
            return -1;
        }
        memcpy(h, r->head, r->head_len);
        if (r->head != r->head_inline) {
            td_secret_free_n(r->head, r->head_cap);
        }
        r->head = h;
        r->head_cap = cap;
    }
    memcpy(r->head + r->head_len, a, alen);
    memcpy(r->head + r->head_len + alen, b, blen);
    memcpy(r->head + r->head_len + alen + blen, c, clen);
    r->head_len = need;
    return 0;
}

/* The client frames the body itself: a Content-Length or Transfer-Encoding of the caller's would
 * be a second, contradicting one (a 400, or worse, a request smuggled to the next hop). */
static bool framing(const char *name, size_t len)
{
    return (len == 14 && strncasecmp(name, "Content-Length", 14) == 0) ||
           (len == 17 && strncasecmp(name, "Transfer-Encoding", 17) == 0);
}

static void note_name(struct td_lean_request *r, const char *name, size_t len)
{
    if (len == 4 && strncasecmp(name, "Host", 4) == 0) {
        r->has_host = true;
    } else if (len == 10 && strncasecmp(name, "User-Agent", 10) == 0) {
        r->has_ua = true;
    }
}

int td_lean_request_line(struct td_lean_request *r, const char *line, size_t len)
{
    if (memchr(line, '\r', len) || memchr(line, '\n', len)) {
        return -1;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line) {
        return -1;
    }
    const char *v = colon + 1;
    while (v < line + len && (*v == ' ' || *v == '\t')) {
        v++;
    }
    if (v == line + len) {
        return 0; /* "Name:": libcurl's spelling of "do not send it" */
    }
    if (framing(line, (size_t)(colon - line))) {
        return 0;
    }
    note_name(r, line, (size_t)(colon - line));
    return head_append(r, line, len, "\r\n", 2, "", 0);
}

int td_lean_request_header(struct td_lean_request *r, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    if (memchr(name, '\r', nlen) || memchr(name, '\n', nlen) || memchr(value, '\r', vlen) ||
        memchr(value, '\n', vlen)) {
        return -1;
    }
    if (framing(name, nlen)) {
        return 0;
    }
    note_name(r, name, nlen);
    if (head_append(r, name, nlen, ": ", 2, value, vlen) < 0) {
        return -1;
    }
    return head_append(r, "\r\n", 2, "", 0, "", 0);
}

void td_lean_request_body(struct td_lean_request *r, const void *body, size_t len, bool owned)
{
    r->body = body;
    r->body_len = len;
    r->body_owned = owned ? (unsigned char *)body : NULL;
}

void td_lean_request_free(struct td_lean_request *r)
{
    if (!r) {
        return;
    }
    td_secret_wipe(r->head, r->head_len); /* may hold a bearer token or a function key */
    if (r->head != r->head_inline) {
        free(r->head);
    }
    free(r->body_owned);
    td_secret_free_n(r->rbody, r->rcap);
    struct td_lean_client *c = r->pool->client;
    if (c->nspare < SPARE_MAX) {
        r->next = c->spare;
        c->spare = r;
        c->nspare++;
    } else {
        free(r);
    }
}

/* ---- the answer ------------------------------------------------------------------------------ */

static void line_flush(struct td_lean_request *r)
{
    if (r->line_len == 0 || r->line_over) {
        r->line_len = 0;
        r->line_over = false;
        return;
    }
    r->line[r->line_len] = '\0';
    if (r->name_len == 11 && strncasecmp(r->line, "Retry-After", 11) == 0) {
        r->retry_after_ms = td_retry_after_ms(r->line + 12, td_wall_ms());
    }
    if (r->hfn) {
        memcpy(r->line + r->line_len, "\r\n", 3);
        r->hfn(r->line, 1, r->line_len + 2, r->harg);
    }
    r->line_len = 0;
}

static void line_add(struct td_lean_request *r, const char *at, size_t len)
{
    if (r->line_len + len > LINE_MAX_LEN) {
        r->line_over = true;
        return;
    }
    memcpy(r->line + r->line_len, at, len);
    r->line_len += len;
}

static int on_message_begin(http_parser *p)
{
    struct td_lean_request *r = p->data;
    r->line_len = 0;
    r->line_over = false;
    r->in_value = false;
    r->retry_after_ms = -1;
    if (r->hfn) {
        char start[] = "HTTP/1.1\r\n"; /* a new response: the collector starts over */
        r->hfn(start, 1, sizeof(start) - 1, r->harg);
    }
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct td_lean_request *r = p->data;
    if (r->in_value) {
        line_flush(r);
        r->in_value = false;
    }
    line_add(r, at, len);
    r->name_len = r->line_len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct td_lean_request *r = p->data;
    if (!r->in_value) {
        line_add(r, ": ", 2);
        r->in_value = true;
    }
    line_add(r, at, len);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct td_lean_request *r = p->data;
    if (r->in_value) {
        line_flush(r);
        r->in_value = false;
    }
    r->status = p->status_code;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct td_lean_request *r = p->data;
    if (r->status / 100 == 1) {
        return 0;
    }
    size_t room = BODY_CAP - r->rlen;
    size_t take = len < room ? len : room;
    if (take == 0) {
        return 0;
    }
    if (r->rlen + take > r->rcap) {
        size_t cap = r->rcap ? r->rcap * 2 : 1024;
        while (cap < r->rlen + take) {
            cap *= 2;
        }
        unsigned char *b = malloc(cap);
        if (!b) {
            return 0; /* keep going without the body rather than failing (as the curl client) */
        }
        if (r->rlen > 0) {
            memcpy(b, r->rbody, r->rlen);
        }
        td_secret_free_n(r->rbody, r->rcap);
        r->rbody = b;
        r->rcap = cap;
    }
    memcpy(r->rbody + r->rlen, at, take);
    r->rlen += take;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct td_lean_request *r = p->data;
    if (p->status_code / 100 == 1) {
        return 0; /* 100 Continue, 103 Early Hints: the answer follows */
    }
    r->complete = true;
    r->close_after = !http_should_keep_alive(p);
    http_parser_pause(p, 1); /* anything after it is not ours */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- requests and connections ------------------------------------------------------------------
 */

static void list_remove(struct lean_conn **head, struct lean_conn *k)
{
    if (k->prev) {
        k->prev->next = k->next;
    } else {
        *head = k->next;
    }
    if (k->next) {
        k->next->prev = k->prev;
    }
    k->next = k->prev = NULL;
}

static void list_push(struct lean_conn **head, struct lean_conn *k)
{
    k->prev = NULL;
    k->next = *head;
    if (*head) {
        (*head)->prev = k;
    }
    *head = k;
}

/* Takes r out of its pool's wait for the resolver's answer. */
static void wait_remove(struct td_lean_request *r)
{
    struct lean_pool *p = r->pool;
    struct td_lean_request **pp = &p->wait_head, *prev = NULL;
    while (*pp && *pp != r) {
        prev = *pp;
        pp = &(*pp)->wnext;
    }
    if (*pp) {
        *pp = r->wnext;
        if (p->wait_tail == r) {
            p->wait_tail = prev;
        }
    }
    r->wnext = NULL;
    r->waiting = false;
}

static void running_remove(struct td_lean_request *r)
{
    struct td_lean_client *c = r->client;
    if (r->waiting) {
        wait_remove(r); /* timed out or cancelled before the name was resolved */
    }
    if (r->prev) {
        r->prev->next = r->next;
    } else {
        c->running = r->next;
    }
    if (r->next) {
        r->next->prev = r->prev;
    }
    r->next = r->prev = NULL;
    c->nrunning--;
}

/* Reports r (detached from any connection) and frees it. */
static void fail_later(struct td_lean_request *r, CURLcode code);

static void finish(struct td_lean_request *r, CURLcode code)
{
    struct td_lean_client *c = r->client;
    if (r->in_send) {
        fail_later(r, code); /* the caller must see send return before done runs */
        return;
    }
    td_timer_stop(c->loop, &r->timer);
    running_remove(r);
    td_http_done_fn done = r->done;
    void *arg = r->arg;
    long status = code == CURLE_OK ? r->status : 0;
    int64_t ra = code == CURLE_OK ? r->retry_after_ms : -1;
    unsigned char *body = r->rbody;
    size_t len = r->rlen, cap = r->rcap;
    r->rbody = NULL;
    r->rcap = 0;
    td_lean_request_free(r);
    done(NULL, code, status, ra, body, len, arg);
    td_secret_free_n(body, cap); /* a reply may carry anything */
}

/* Sends what is left of r's bytes; EPOLLOUT is watched while some are. 0, or -1 (errno). */
static int send_some(struct lean_conn *k)
{
    struct td_lean_request *r = k->req;
    size_t total = r->head_len + r->body_len;
    while (r->sent < total) {
        struct iovec iov[2];
        int n = 0;
        if (r->sent < r->head_len) {
            iov[n].iov_base = r->head + r->sent;
            iov[n++].iov_len = r->head_len - r->sent;
            if (r->body_len > 0) {
                iov[n].iov_base = (void *)r->body;
                iov[n++].iov_len = r->body_len;
            }
        } else {
            iov[n].iov_base = (void *)(r->body + (r->sent - r->head_len));
            iov[n++].iov_len = total - r->sent;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(k->fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            return -1;
        }
        r->sent += (size_t)w;
    }
    uint32_t want = r->sent < total ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
    if (td_loop_fd_set(k->pool->client->loop, k->fd, want, conn_event, k) < 0) {
        return -1;
    }
    return 0;
}

static int64_t on_timer(struct td_loop *loop, void *arg)
{
    (void)loop;
    struct td_lean_request *r = arg;
    if (r->pending != CURLE_OK) {
        finish(r, r->pending);
        return TD_LOOP_NOMORE;
    }
    if (r->conn) {
        struct lean_conn *k = r->conn;
        bool connecting = k->state == CONN_CONNECTING;
        size_t idx = k->addr_idx;
        struct lean_pool *p = k->pool;
        k->req = NULL;
        r->conn = NULL;
        conn_close(k); /* its answer may still come: the connection cannot be reused */
        /* The connect timeout (not the request's): an address that drops what is sent to it.
         * A name's next address gets the time that is left, as libcurl moves on. */
        if (connecting && addr_failed(p, idx) && td_now_ms() < r->deadline &&
            ++r->addr_tries < p->naddrs) {
            answer_reset(r);
            if (conn_open(r) == 0) {
                return TD_LOOP_NOMORE;
            }
            finish(r, CURLE_COULDNT_CONNECT);
            return TD_LOOP_NOMORE;
        }
    }
    finish(r, CURLE_OPERATION_TIMEDOUT);
    return TD_LOOP_NOMORE;
}

/* Reports code for r from the timer, right away: send never calls done itself. */
static void fail_later(struct td_lean_request *r, CURLcode code)
{
    r->pending = code;
    if (td_timer_start(r->client->loop, &r->timer, 0) < 0) {
        /* cannot happen: send armed the timer, so it has its slot in the heap */
        td_log_warn(NULL, NULL, NULL, "lean http: out of memory reporting a failure");
    }
}

static void conn_close(struct lean_conn *k)
{
    struct lean_pool *p = k->pool;
    struct td_lean_client *c = p->client;
    list_remove(k->state == CONN_IDLE ? &p->idle : &p->busy, k);
    td_loop_fd_del(c->loop, k->fd);
    close(k->fd);
    c->nconns--;
    free(k);
}

/* Uses address i of a named pool for new connections. */
static void pool_use(struct lean_pool *p, size_t i)
{
    p->cur = i;
    memcpy(&p->addr, &p->addrs[i], p->lens[i]);
    p->addrlen = p->lens[i];
}

/* A connect to address idx of a named pool failed (refused, unreachable, timed out): new
 * connections go to the next address from now on (unless another failure moved the pool on
 * already), it is remembered as bad, and the name is looked up again before the next new
 * connection. True for a named pool with more than one address (the caller may try the next). */
static bool addr_failed(struct lean_pool *p, size_t idx)
{
    if (!p->named || p->naddrs == 0 || idx >= p->naddrs) {
        return false;
    }
    memcpy(&p->bad, &p->addrs[idx], p->lens[idx]);
    p->badlen = p->lens[idx];
    p->stale = true;
    if (p->cur == idx) {
        pool_use(p, (idx + 1) % p->naddrs);
    }
    return p->naddrs > 1;
}

/* Opens a new connection for r. 0, or -1 (r is untouched). */
static int conn_open(struct td_lean_request *r)
{
    struct lean_pool *p = r->pool;
    struct td_lean_client *c = p->client;
    struct lean_conn *k = calloc(1, sizeof(*k));
    if (!k) {
        return -1;
    }
    k->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (k->fd < 0) {
        free(k);
        return -1;
    }
    int one = 1;
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* as libcurl */
    k->pool = p;
    k->state = CONN_CONNECTING;
    k->addr_idx = p->cur;
    list_push(&p->busy, k);
    c->nconns++;
    if (connect(k->fd, (const struct sockaddr *)&p->addr, p->addrlen) < 0 && errno != EINPROGRESS) {
        int e = errno;
        size_t idx = k->addr_idx;
        conn_close(k);
        /* refused at once (unreachable, no route): a name's next address, as on a late refusal */
        if (addr_failed(p, idx) && ++r->addr_tries < p->naddrs) {
            return conn_open(r);
        }
        errno = e;
        return -1;
    }
    if (td_loop_fd_set(c->loop, k->fd, EPOLLOUT, conn_event, k) < 0) {
        conn_close(k);
        return -1;
    }
    k->req = r;
    r->conn = k;
    int64_t now = td_now_ms();
    int64_t when = r->deadline < now + CONNECT_TIMEOUT_MS ? r->deadline : now + CONNECT_TIMEOUT_MS;
    td_timer_start(c->loop, &r->timer, when > now ? when - now : 0);
    return 0;
}

static void on_resolved(const struct td_resolve_result *res, void *arg);

/* Has p's name looked up, unless a lookup is on its way. 0, or -1 (no thread, no memory). */
static int pool_lookup(struct lean_pool *p)
{
    struct td_lean_client *c = p->client;
    if (p->lookup) {
        return 0;
    }
    if (!c->resolver) {
        return -1;
    }
    p->lookup = td_resolve_start(c->resolver, p->host, p->port, on_resolved, p);
    return p->lookup ? 0 : -1;
}

/* A new connection for r: at once for an address, or once its pool's name has addresses. 0, or
 * -1 with errno (r is untouched). */
static int pool_connect(struct td_lean_request *r)
{
    struct lean_pool *p = r->pool;
    if (!p->named) {
        return conn_open(r);
    }
    bool fresh = p->naddrs > 0 && !p->stale && td_now_ms() - p->resolved_at < TD_RESOLVE_TTL_MS;
    if (!fresh && pool_lookup(p) < 0 && p->naddrs == 0) {
        errno = ENOMEM;
        return -1;
    }
    if (p->naddrs > 0) {
        return conn_open(r); /* the addresses we have, while new ones are on their way */
    }
    r->waiting = true;
    r->wnext = NULL;
    if (p->wait_tail) {
        p->wait_tail->wnext = r;
    } else {
        p->wait_head = r;
    }
    p->wait_tail = r;
    return 0;
}

/* The resolver's answer for p: the requests waiting for it connect, or fail as libcurl's do
 * when a name does not resolve. A failed lookup keeps the addresses p had (a DNS server down
 * for a moment does not take a working function away) and is tried again at the next new
 * connection. */
static void on_resolved(const struct td_resolve_result *res, void *arg)
{
    struct lean_pool *p = arg;
    p->lookup = NULL;
    if (res->err == 0) {
        /* The address in use stays in use when the answer still has it: a refresh must not
         * send new connections back to one that refused them. */
        size_t keep = 0, notbad = SIZE_MAX;
        for (size_t i = 0; i < res->n; i++) {
            memcpy(&p->addrs[i], &res->addrs[i], res->lens[i]);
            p->lens[i] = res->lens[i];
            if (p->naddrs > 0 && res->lens[i] == p->addrlen &&
                memcmp(&res->addrs[i], &p->addr, res->lens[i]) == 0) {
                keep = i;
            }
            if (notbad == SIZE_MAX &&
                !(res->lens[i] == p->badlen && memcmp(&res->addrs[i], &p->bad, p->badlen) == 0)) {
                notbad = i;
            }
        }
        if (p->stale) {
            /* looked up again because connects failed: not back to the one that failed last */
            keep = notbad == SIZE_MAX ? 0 : notbad;
        }
        p->naddrs = res->n;
        p->resolved_at = td_now_ms();
        p->stale = false;
        pool_use(p, keep);
    } else {
        td_log_warn(NULL, NULL, NULL, "lean http: resolving %s: %s%s", p->host,
                    gai_strerror(res->err), p->naddrs ? " (the addresses it had are kept)" : "");
        p->stale = true;
    }
    /* Only the requests that waited for this answer: one that a callback below starts (the
     * sink's next delivery) waits for the lookup it starts itself, not for this old answer. */
    struct td_lean_request *r = p->wait_head;
    p->wait_head = p->wait_tail = NULL;
    while (r) {
        struct td_lean_request *next = r->wnext;
        r->wnext = NULL;
        r->waiting = false;
        if (p->naddrs == 0) {
            finish(r, CURLE_COULDNT_RESOLVE_HOST);
        } else if (conn_open(r) < 0) {
            finish(r, CURLE_COULDNT_CONNECT);
        }
        r = next;
    }
}

/* The answer starts over: for a new attempt on another connection. */
static void answer_reset(struct td_lean_request *r)
{
    r->sent = 0;
    r->got_bytes = false;
    r->complete = false;
    r->close_after = false;
    r->status = 0;
    r->rlen = 0;
    r->line_len = 0;
    r->in_value = false;
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
}

/* Puts r on an idle connection of its pool, or a new one. 0, or -1 with errno. */
static int start_on_conn(struct td_lean_request *r)
{
    struct lean_pool *p = r->pool;
    struct td_lean_client *c = p->client;
    answer_reset(r);
    int64_t now = td_now_ms();
    while (p->idle) {
        struct lean_conn *k = p->idle;
        if (now - k->idle_since > IDLE_MAX_MS) {
            conn_close(k);
            continue;
        }
        list_remove(&p->idle, k);
        k->state = CONN_BUSY;
        list_push(&p->busy, k);
        k->req = r;
        r->conn = k;
        td_timer_start(c->loop, &r->timer, r->deadline > now ? r->deadline - now : 0);
        if (send_some(k) < 0) {
            conn_fail(k, CURLE_SEND_ERROR); /* retried on a new connection: it was used */
        }
        return 0;
    }
    return pool_connect(r);
}

/* k failed while serving a request: a stale keep-alive connection (used before, nothing of
 * the answer came) gets the request once more on a new connection; anything else reports. */
static void conn_fail(struct lean_conn *k, CURLcode code)
{
    struct td_lean_request *r = k->req;
    struct lean_pool *p = k->pool;
    bool stale = k->used && r && !r->got_bytes && !r->retried;
    bool next_addr = false;
    if (k->state == CONN_CONNECTING && addr_failed(p, k->addr_idx)) {
        /* Refused or unreachable: this request tries the pool's next address at once unless it
         * has tried them all (::1 comes first for "localhost", with the function listening on
         * 127.0.0.1 only). */
        next_addr = r && ++r->addr_tries < p->naddrs;
    }
    if (r) {
        r->conn = NULL;
        k->req = NULL;
    }
    conn_close(k);
    if (!r) {
        return;
    }
    if (next_addr) {
        answer_reset(r);
        if (conn_open(r) == 0) {
            return;
        }
    } else if (stale) {
        r->retried = true;
        if (start_on_conn(r) == 0) {
            return;
        }
        code = CURLE_COULDNT_CONNECT;
    }
    finish(r, code);
}

/* Every SWEEP_MS while connections are idle: those idle longer than libcurl's maximum age are
 * closed, so a burst's connections do not stay open for good against a server that never
 * closes idle ones. */
static int64_t on_sweep(struct td_loop *loop, void *arg)
{
    (void)loop;
    struct td_lean_client *c = arg;
    int64_t now = td_now_ms();
    bool left = false;
    for (struct lean_pool *p = c->pools; p; p = p->next) {
        struct lean_conn *k = p->idle;
        while (k) {
            struct lean_conn *next = k->next;
            if (now - k->idle_since > IDLE_MAX_MS) {
                conn_close(k);
            } else {
                left = true;
            }
            k = next;
        }
    }
    return left ? SWEEP_MS : TD_LOOP_NOMORE;
}

/* The answer is complete: the connection goes back to the pool unless it must close. */
static void answered(struct lean_conn *k, bool extra)
{
    struct td_lean_request *r = k->req;
    struct lean_pool *p = k->pool;
    r->conn = NULL;
    k->req = NULL;
    k->used = true;
    if (r->close_after || extra || r->sent < r->head_len + r->body_len) {
        conn_close(k); /* Connection: close, bytes nobody asked for, or an early answer */
    } else {
        list_remove(&p->busy, k);
        k->state = CONN_IDLE;
        k->idle_since = td_now_ms();
        list_push(&p->idle, k); /* still watched for EPOLLIN: a close is seen at once */
        struct td_lean_client *c = p->client;
        if (!td_timer_armed(&c->sweep)) {
            td_timer_start(c->loop, &c->sweep, SWEEP_MS);
        }
    }
    finish(r, CURLE_OK);
}

static void conn_readable(struct lean_conn *k)
{
    char buf[READ_CHUNK];
    ssize_t n = recv(k->fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return;
    }
    struct td_lean_request *r = k->req;
    if (!r) {
        conn_close(k); /* idle: closed by the server, or it sent something unasked */
        return;
    }
    if (n < 0) {
        conn_fail(k, CURLE_RECV_ERROR);
        return;
    }
    if (n == 0) {
        /* the end of a close-delimited body completes it; anything else is cut short */
        if (r->got_bytes) {
            http_parser_execute(&r->parser, &parser_settings, NULL, 0);
            if (r->complete) {
                r->close_after = true;
                answered(k, false);
                return;
            }
            conn_fail(k, CURLE_PARTIAL_FILE);
            return;
        }
        conn_fail(k, CURLE_GOT_NOTHING);
        return;
    }
    r->got_bytes = true;
    size_t used = http_parser_execute(&r->parser, &parser_settings, buf, (size_t)n);
    if (r->complete) {
        answered(k, used < (size_t)n);
        return;
    }
    if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK) {
        td_log_debug(NULL, NULL, NULL, "lean http: %s: %s", k->pool->key,
                     http_errno_description(HTTP_PARSER_ERRNO(&r->parser)));
        conn_fail(k, CURLE_WEIRD_SERVER_REPLY);
    }
}

static void conn_event(struct td_loop *loop, int fd, uint32_t events, void *arg)
{
    (void)loop;
    (void)fd;
    struct lean_conn *k = arg;
    if (k->state == CONN_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
            err = errno;
        }
        if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
            conn_fail(k, CURLE_COULDNT_CONNECT);
            return;
        }
        k->state = CONN_BUSY;
        struct td_lean_request *r = k->req;
        int64_t now = td_now_ms();
        td_timer_start(k->pool->client->loop, &r->timer, r->deadline > now ? r->deadline - now : 0);
        if (send_some(k) < 0) {
            conn_fail(k, CURLE_SEND_ERROR);
        }
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        conn_readable(k); /* may free k */
        return;
    }
    if ((events & EPOLLOUT) && k->req) {
        if (send_some(k) < 0) {
            conn_fail(k, CURLE_SEND_ERROR);
        }
    }
}

/* ---- the client -------------------------------------------------------------------------------
 */

struct td_lean_client *td_lean_client_new(struct td_loop *loop, struct td_resolver *resolver)
{
    struct td_lean_client *c = calloc(1, sizeof(*c));
    if (c) {
        c->loop = loop;
        c->resolver = resolver;
        td_timer_init(&c->sweep, on_sweep, c);
    }
    return c;
}

void td_lean_client_free(struct td_lean_client *c)
{
    if (!c) {
        return;
    }
    td_timer_stop(c->loop, &c->sweep);
    while (c->running) {
        struct td_lean_request *r = c->running;
        td_timer_stop(c->loop, &r->timer);
        running_remove(r);
        if (r->conn) {
            r->conn->req = NULL;
        }
        free(r->arg); /* the caller's per-request context (as td_http_client_free) */
        td_lean_request_free(r);
    }
    while (c->pools) {
        struct lean_pool *p = c->pools;
        c->pools = p->next;
        if (p->lookup) {
            td_resolve_cancel(c->resolver, p->lookup); /* the resolver is the loop's: it stays */
        }
        while (p->idle) {
            conn_close(p->idle);
        }
        while (p->busy) {
            conn_close(p->busy);
        }
        free(p);
    }
    while (c->spare) {
        struct td_lean_request *r = c->spare;
        c->spare = r->next;
        free(r);
    }
    free(c);
}

/* "Content-Length: N" and the blank line ending the head, into buf (48 bytes are enough for
 * any size_t); returns its length. By hand: snprintf was a visible share of a request's CPU. */
static size_t content_length_lines(char buf[48], size_t len)
{
    static const char name[] = "Content-Length: ";
    char digits[24];
    size_t nd = 0, o = sizeof(name) - 1;
    do {
        digits[nd++] = (char)('0' + len % 10);
        len /= 10;
    } while (len > 0);
    memcpy(buf, name, o);
    while (nd > 0) {
        buf[o++] = digits[--nd];
    }
    memcpy(buf + o, "\r\n\r\n", 4);
    return o + 4;
}

int td_lean_request_send(struct td_lean_client *c, struct td_lean_request *r, int64_t timeout_ms,
                         td_lean_header_fn hfn, void *harg, td_http_done_fn done, void *arg)
{
    char cl[48];
    size_t n = content_length_lines(cl, r->body_len);
    if ((!r->has_host && head_append(r, r->target->host, r->target->host_len, "", 0, "", 0) < 0) ||
        (!r->has_ua &&
         head_append(r, "User-Agent: " TD_USER_AGENT "\r\n",
                     sizeof("User-Agent: " TD_USER_AGENT "\r\n") - 1, "", 0, "", 0) < 0) ||
        head_append(r, cl, n, "", 0, "", 0) < 0) {
        td_lean_request_free(r);
        return -1;
    }
    r->client = c;
    r->hfn = hfn;
    r->harg = harg;
    r->done = done;
    r->arg = arg;
    td_timer_init(&r->timer, on_timer, r);
    r->deadline = td_now_ms() + (timeout_ms > 0 ? timeout_ms : 10000);
    /* Armed here, where a failure can still be returned: every later start of this timer (the
     * connect timeout, fail_later) stops it first and so reuses its heap slot, and cannot fail
     * and leave the request with no callback. */
    if (td_timer_start(c->loop, &r->timer, r->deadline - td_now_ms()) < 0) {
        td_lean_request_free(r);
        return -1;
    }
    r->next = c->running;
    if (c->running) {
        c->running->prev = r;
    }
    c->running = r;
    c->nrunning++;
    r->in_send = true;
    if (start_on_conn(r) < 0) {
        fail_later(r, CURLE_COULDNT_CONNECT);
    }
    r->in_send = false; /* r is still ours: done runs from the loop, never from here */
    return 0;
}

void td_lean_request_cancel(struct td_lean_client *c, struct td_lean_request *r)
{
    td_timer_stop(c->loop, &r->timer);
    running_remove(r);
    if (r->conn) {
        struct lean_conn *k = r->conn;
        k->req = NULL;
        conn_close(k);
    }
    td_lean_request_free(r);
}

size_t td_lean_client_running(const struct td_lean_client *c)
{
    return c->nrunning;
}

size_t td_lean_client_connections(const struct td_lean_client *c)
{
    return c->nconns;
}
