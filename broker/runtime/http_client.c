/* http_client.c - libcurl multi on the loop (see http_client.h). */
#include "http_client.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_lean.h"
#include "lean_parse.h"
#include "log.h"
#include "loop.h"
#include "resolver.h"
#include "secret.h"

#define BODY_CAP 65536
#define POOL_MAX 256
/* Connections kept per request ever in flight at once: libcurl's own factor (see set_cache). */
#define CACHE_PER_REQUEST 4

struct td_http_request {
    struct td_http_request *prev, *next;
    struct td_http_client *client;
    CURL *easy;
    struct curl_slist *headers;
    td_http_done_fn done;
    void *arg;
    unsigned char *body;
    size_t len, cap;
};

struct td_http_client {
    struct td_loop *loop;
    CURLM *multi;
    struct td_timer timer;
    struct td_http_request *running; /* doubly linked */
    size_t nrunning;
    size_t peak;      /* the most requests ever in flight at once */
    size_t reserve;   /* td_http_client_reserve: connections the configuration may need */
    long maxconnects; /* what CURLMOPT_MAXCONNECTS is set to; 0: curl's default */
    CURL *pool[POOL_MAX];
    size_t npool;
    /* Per fd: FD_OURS when opensocket_cb opened it (so closesocket_cb sees it close). */
    unsigned char *fds;
    size_t nfds;
    struct td_lean_client *lean;  /* made on first use (td_http_client_lean) */
    struct td_resolver *resolver; /* made on first use (td_http_client_resolver) */
    bool global;                  /* this client called curl_global_init (ensure_multi) */
};

#define FD_OURS 1u

static void check_done(struct td_http_client *c);

static void on_socket_event(struct td_loop *loop, int fd, uint32_t events, void *arg)
{
    struct td_http_client *c = arg;
    int flags = 0;
    if (events & EPOLLIN) {
        flags |= CURL_CSELECT_IN;
    }
    if (events & EPOLLOUT) {
        flags |= CURL_CSELECT_OUT;
    }
    if (events & (EPOLLERR | EPOLLHUP)) {
        flags |= CURL_CSELECT_ERR;
    }
    int still;
    curl_multi_socket_action(c->multi, fd, flags, &still);
    check_done(c);
}

static unsigned char *fd_state(struct td_http_client *c, int fd)
{
    if (fd < 0) {
        return NULL;
    }
    if ((size_t)fd >= c->nfds) {
        size_t n = (size_t)fd + 64;
        unsigned char *f = realloc(c->fds, n);
        if (!f) {
            return NULL;
        }
        memset(f + c->nfds, 0, n - c->nfds);
        c->fds = f;
        c->nfds = n;
    }
    return &c->fds[fd];
}

/* An idle keep-alive connection reported something: the server closed it (EOF, RST) or sent
 * what nobody asked for. Stop watching it, or a level-triggered EOF would wake the loop
 * forever; curl finds it dead when it next tries to reuse it, and closes it. */
static void on_parked_event(struct td_loop *loop, int fd, uint32_t events, void *arg)
{
    (void)events;
    (void)arg;
    td_loop_fd_del(loop, fd);
}

/* Sockets stay registered with epoll between requests. libcurl says CURL_POLL_REMOVE for a
 * connection each time its transfer ends and asks for it again when the next request reuses
 * it: deleting and adding it back cost two or three epoll_ctl per request. A connection we
 * opened (opensocket_cb) is parked instead: still registered with its last interest, its
 * events going to on_parked_event, so reusing it with the same interest costs no system call.
 * Its close goes through closesocket_cb, which forgets it. Other sockets (the resolver's) are
 * closed by curl itself, so they are deleted from epoll as curl says. */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct td_http_client *c = userp;
    unsigned char *st = fd_state(c, fd);
    if (what == CURL_POLL_REMOVE) {
        uint32_t now = td_loop_fd_events(c->loop, fd);
        if (st && (*st & FD_OURS) && now != 0) {
            /* the events it has now go to the parked handler; epoll is not called */
            td_loop_fd_set(c->loop, fd, now, on_parked_event, c);
        } else {
            td_loop_fd_del(c->loop, fd);
        }
        return 0;
    }
    uint32_t events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
        events |= EPOLLIN;
    }
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
        events |= EPOLLOUT;
    }
    /* Not -1 on failure: that would mark the whole multi handle dead. The transfer that needs
     * the socket times out instead, and is retried. */
    if (td_loop_fd_set(c->loop, fd, events, on_socket_event, c) < 0) {
        td_log_warn(NULL, NULL, NULL, "http client: cannot watch socket %d: %s", (int)fd,
                    strerror(errno));
    }
    return 0;
}

static curl_socket_t opensocket_cb(void *clientp, curlsocktype purpose,
                                   struct curl_sockaddr *address)
{
    (void)purpose;
    struct td_http_client *c = clientp;
    int fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    if (fd < 0) {
        return CURL_SOCKET_BAD;
    }
    unsigned char *st = fd_state(c, fd);
    if (st) {
        *st = FD_OURS; /* no room to remember it: treated as curl's own, deleted on REMOVE */
    }
    if (td_loop_fd_events(c->loop, fd) != 0) {
        /* a new socket is in no epoll set: whatever the loop remembers for this number is
         * stale (a socket closed without closesocket_cb) and must not spare the ADD */
        td_loop_fd_del(c->loop, fd);
    }
    return fd;
}

static int closesocket_cb(void *clientp, curl_socket_t fd)
{
    struct td_http_client *c = clientp;
    if (fd >= 0 && (size_t)fd < c->nfds && c->fds[fd] != 0) {
        c->fds[fd] = 0;
        td_loop_fd_del(c->loop, fd); /* a no-op when curl asked for it to be removed */
    }
    return close(fd);
}

static int64_t on_timer(struct td_loop *loop, void *arg)
{
    struct td_http_client *c = arg;
    int still;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &still);
    check_done(c);
    return TD_LOOP_NOMORE;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct td_http_client *c = userp;
    if (timeout_ms < 0) {
        td_timer_stop(c->loop, &c->timer);
    } else {
        td_timer_start(c->loop, &c->timer, timeout_ms);
    }
    return 0;
}

struct td_http_client *td_http_client_new(struct td_loop *loop)
{
    struct td_http_client *c = calloc(1, sizeof(*c));
    if (!c) {
        return NULL;
    }
    c->loop = loop;
    td_timer_init(&c->timer, on_timer, c);
    return c;
}

static void set_cache(struct td_http_client *c);

/* libcurl is initialized when the first request needs it, not at start: its global init (OpenSSL,
 * GSS-API, libssh2 ...) makes about 2.3 MB of libraries resident, which a daemon whose sinks all
 * use the lean client (http_lean.c) never needs. This libcurl is built thread-safe
 * (curl_version_info: CURL_VERSION_THREADSAFE, 7.84+), so a first init here while other threads
 * run is safe. 0 or -1. */
static int ensure_multi(struct td_http_client *c)
{
    if (c->multi) {
        return 0;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return -1;
    }
    c->global = true;
    c->multi = curl_multi_init();
    if (!c->multi) {
        return -1;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    c->maxconnects = 0;
    set_cache(c);
    return 0;
}

/* The size of the connection cache, from the most requests ever in flight at once.
 *
 * Without CURLMOPT_MAXCONNECTS, libcurl (7.88, lib/conncache.c) caps the cache at 4 x the easy
 * handles added to the multi handle *at the moment a transfer finishes*, and closes the oldest
 * connection whenever the cache (busy and idle) is above that. A source that feeds in bursts
 * (RabbitMQ's prefetch window, Kafka's fetches) lets the requests in flight dip between
 * bursts: each answer that lands during a dip closed a connection the next burst had to open
 * again, thousands per 100 000 requests. The same factor applied to the high-water mark keeps
 * every connection a burst used. The cache still holds only connections that were once needed
 * at the same time (per host), and never more than 4 x that high-water mark, or the reserve
 * when that is larger (functions busy at different times each keep theirs). */
static void set_cache(struct td_http_client *c)
{
    size_t want = c->peak > SIZE_MAX / CACHE_PER_REQUEST ? SIZE_MAX : c->peak * CACHE_PER_REQUEST;
    if (c->reserve > want) {
        want = c->reserve;
    }
    long max = want > LONG_MAX ? LONG_MAX : (long)want;
    if (c->multi && max > c->maxconnects &&
        curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, max) == CURLM_OK) {
        c->maxconnects = max;
    }
}

void td_http_client_reserve(struct td_http_client *c, size_t n)
{
    if (n > c->reserve) {
        c->reserve = n;
        set_cache(c);
    }
}

static void request_free(struct td_http_request *req)
{
    struct td_http_client *c = req->client;
    if (req->prev) {
        req->prev->next = req->next;
    } else {
        c->running = req->next;
    }
    if (req->next) {
        req->next->prev = req->prev;
    }
    c->nrunning--;
    curl_multi_remove_handle(c->multi, req->easy);
    td_http_client_release(c, req->easy);
    td_secret_slist_free(req->headers); /* may hold credentials */
    td_secret_free_n(req->body, req->cap);
    free(req);
}

void td_http_client_free(struct td_http_client *c)
{
    if (!c) {
        return;
    }
    while (c->running) {
        free(c->running->arg); /* the caller's per-request context (see td_http_client_send) */
        request_free(c->running);
    }
    td_lean_client_free(c->lean);
    td_resolver_free(c->resolver); /* after its users: the lean client, and the sinks */
    td_timer_stop(c->loop, &c->timer);
    for (size_t i = 0; i < c->npool; i++) {
        curl_easy_cleanup(c->pool[i]);
    }
    if (c->multi) {
        curl_multi_cleanup(c->multi); /* closes the cached connections: closesocket_cb reads c */
    }
    if (c->global) {
        curl_global_cleanup();
    }
    free(c->fds);
    free(c);
}

CURL *td_http_client_easy(struct td_http_client *c)
{
    if (ensure_multi(c) < 0) {
        return NULL;
    }
    if (c->npool > 0) {
        return c->pool[--c->npool];
    }
    return curl_easy_init();
}

void td_http_client_release(struct td_http_client *c, CURL *easy)
{
    if (!easy) {
        return;
    }
    if (c->npool < POOL_MAX) {
        curl_easy_reset(easy); /* keeps the connection cache and DNS cache */
        c->pool[c->npool++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct td_http_request *req = userdata;
    size_t n = size * nmemb;
    size_t room = BODY_CAP - req->len;
    size_t take = n < room ? n : room;
    if (take > 0) {
        if (req->len + take > req->cap) {
            size_t cap = req->cap ? req->cap * 2 : 1024;
            while (cap < req->len + take) {
                cap *= 2;
            }
            /* Not realloc: an answer may be a credential (metadata token, STS keys), and
             * the old buffer is wiped before it is freed. */
            unsigned char *b = malloc(cap);
            if (!b) {
                return n; /* keep going without the body rather than failing the request */
            }
            if (req->len > 0) {
                memcpy(b, req->body, req->len);
            }
            td_secret_free_n(req->body, req->cap);
            req->body = b;
            req->cap = cap;
        }
        memcpy(req->body + req->len, ptr, take);
        req->len += take;
    }
    return n;
}

struct td_http_request *td_http_client_send(struct td_http_client *c, CURL *easy,
                                            struct curl_slist *headers, td_http_done_fn done,
                                            void *arg)
{
    struct td_http_request *req = calloc(1, sizeof(*req));
    if (!req) {
        td_secret_slist_free(headers);
        td_http_client_release(c, easy);
        return NULL;
    }
    req->client = c;
    req->easy = easy;
    req->headers = headers;
    req->done = done;
    req->arg = arg;
    if (headers) {
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    }
    /* libcurl sends a "User-Agent:" line of headers instead of this one. */
    curl_easy_setopt(easy, CURLOPT_USERAGENT, TD_USER_AGENT);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, req);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    /* a connection keeps the callbacks of the handle that opened it, for its whole life */
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, c);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, c);
    req->next = c->running;
    if (c->running) {
        c->running->prev = req;
    }
    c->running = req;
    c->nrunning++;
    if (c->nrunning > c->peak) {
        c->peak = c->nrunning;
        set_cache(c);
    }
    if (curl_multi_add_handle(c->multi, easy) != CURLM_OK) {
        req->done = NULL;
        td_secret_slist_free(req->headers); /* may hold credentials */
        req->headers = NULL;
        /* request_free removes the handle, which is harmless when it was never added */
        request_free(req);
        return NULL;
    }
    return req;
}

void td_http_client_cancel(struct td_http_client *c, struct td_http_request *req)
{
    (void)c;
    request_free(req);
}

size_t td_http_client_running(const struct td_http_client *c)
{
    return c->nrunning + (c->lean ? td_lean_client_running(c->lean) : 0);
}

struct td_lean_client *td_http_client_lean(struct td_http_client *c)
{
    if (!c->lean) {
        c->lean = td_lean_client_new(c->loop, td_http_client_resolver(c));
    }
    return c->lean;
}

struct td_resolver *td_http_client_resolver(struct td_http_client *c)
{
    if (!c->resolver) {
        c->resolver = td_resolver_new(c->loop);
    }
    return c->resolver;
}

static void check_done(struct td_http_client *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        struct td_http_request *req = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
        CURLcode code = msg->data.result;
        long status = 0;
        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
        /* Read from the header, not CURLINFO_RETRY_AFTER: libcurl measures an HTTP date against
         * time(NULL), a coarse clock that can still say the last second (lean_parse.h). */
        struct curl_header *h = NULL;
        int64_t ra_ms = -1;
        if (curl_easy_header(req->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK) {
            ra_ms = td_retry_after_ms(h->value, td_wall_ms());
        }
        td_http_done_fn done = req->done;
        void *arg = req->arg;
        unsigned char *body = req->body;
        size_t len = req->len;
        req->body = NULL;
        request_free(req);
        done(NULL, code, code == CURLE_OK ? status : 0, ra_ms, body, len, arg);
        td_secret_free_n(body, len); /* the answer may be a credential */
    }
}
