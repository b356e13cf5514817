/* http_server.c - libmicrohttpd behind daemon.http.listen and probes_listen (see
 * http_server.h).
 *
 * MHD runs its own polling thread (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL) with
 * suspend/resume enabled for the ingress routes. Each request gets a small struct conn (freed
 * in the completion callback) that remembers which route it went to, so the route's own state
 * is freed by the route. The probes answer from the metrics snapshots; the loop's liveness is
 * a heartbeat timer on the loop, read by /healthz.
 *
 * The request timeout: MHD's own CONNECTION_TIMEOUT only measures inactivity, so a client
 * sending a byte a second (slowloris) would hold its connection forever. Every connection
 * therefore has a struct track (MHD's socket context) saying since when it has been reading a
 * request; the heartbeat timer shuts down (shutdown(2), never close: MHD owns the descriptor)
 * the ones reading for longer than the timeout, and MHD then closes them. The tracks are on a
 * list under a mutex that MHD's close notification also takes, so a descriptor is never shut
 * down after MHD closed it (and possibly reused it).
 *
 * The per-IP connection limit is ours, not MHD's (MHD_OPTION_PER_IP_CONNECTION_LIMIT refuses
 * without telling anyone but its log, in the same words as its total limit), so that every
 * refusal is counted (triggerd_ingress_connections_refused_total{reason="per_ip"}): the
 * connections of each client address are counted from MHD's "started" to its "closed"
 * notification, and the accept policy refuses an address that has max_connections_per_ip.
 * MHD's one polling thread calls the policy and then, for a connection it keeps, "started",
 * one connection after the other, so the count an accept sees is exact. The limit fails
 * closed: a connection that cannot be counted (out of memory) is shut down unserved.
 */
#include "http_server.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "secret.h"
#include "tls_file.h"

#define MAX_ROUTES       8
#define HEARTBEAT_MS     250
#define ALIVE_MS         5000 /* /healthz fails when the loop has not turned for this long */
#define SNAPSHOT_WAIT_MS 1000
#define STOP_GRACE_MS    1000
#define IP_BUCKETS       256 /* per-IP connection counts: chains stay short at 4 096 addresses */

struct route {
    char *path;
    td_http_handler handler;
    td_http_done done;
    void *arg;
};

struct conn {
    const struct route *route; /* NULL: a built-in endpoint */
    void *req;                 /* the route's state */
};

/* The open connections of one client address (the per-IP limit); freed at 0. */
struct ip_count {
    struct ip_count *next; /* under td_http_server.mu */
    int count;
    sa_family_t family;
    unsigned char addr[16]; /* the IPv4 (4 bytes) or IPv6 address */
};

/* One per TCP connection, from MHD's "started" to its "closed" notification. */
struct track {
    struct track *prev, *next; /* under td_http_server.mu */
    MHD_socket fd;
    int64_t since_ms;    /* when it began reading its current request */
    bool reading;        /* false while a request is being answered */
    struct ip_count *ip; /* its address's count, or NULL: not counted */
};

struct td_http_server {
    char *listen;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct td_metrics *metrics;
    struct td_loop *loop;
    struct MHD_Daemon *mhd;
    struct route routes[MAX_ROUTES];
    size_t nroutes;
    struct td_timer heartbeat;
    atomic_int active; /* requests MHD has not completed */
    unsigned int what; /* TD_HTTP_SERVE_* */
    struct td_http_limits lim;
    pthread_mutex_t mu;
    struct track *tracks;             /* under mu */
    struct ip_count *ips[IP_BUCKETS]; /* under mu; only with lim.max_connections_per_ip > 0 */
    /* td_http_server_tls: PEM contents MHD reads while it runs (NULL: plain HTTP) */
    char *tls_cert, *tls_key, *tls_trust;
};

static const char *const builtin[] = {"/healthz", "/readyz", "/metrics", "/status"};

enum MHD_Result td_http_reply(struct MHD_Connection *conn, unsigned int status, const char *ctype,
                              const char *body, size_t len, int retry_after)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        return MHD_NO;
    }
    if (ctype) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    }
    if (retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result td_http_reply_error(struct MHD_Connection *conn, unsigned int status,
                                    const char *reason, int retry_after)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o && cJSON_AddStringToObject(o, "error", reason)) {
        text = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(o);
    enum MHD_Result rc =
        text ? td_http_reply(conn, status, "application/json", text, strlen(text), retry_after)
             : td_http_reply(conn, status, "text/plain", reason, strlen(reason), retry_after);
    free(text);
    return rc;
}

/* Asks the loop for a fresh snapshot unless it is evidently not turning. */
static void freshen(struct td_http_server *srv)
{
    bool alive = td_metrics_heartbeat_age_ms(srv->metrics) < ALIVE_MS / 2;
    td_metrics_fresh(srv->metrics, alive ? SNAPSHOT_WAIT_MS : 0);
}

static enum MHD_Result serve_builtin(struct td_http_server *srv, struct MHD_Connection *conn,
                                     const char *url)
{
    char *body = NULL;
    size_t len = 0;
    enum MHD_Result rc;
    if (strcmp(url, "/healthz") == 0) {
        int64_t age = td_metrics_heartbeat_age_ms(srv->metrics);
        bool ok = age < ALIVE_MS;
        char text[128];
        snprintf(text, sizeof(text), "{\"alive\":%s,\"loop_heartbeat_age_ms\":%lld}",
                 ok ? "true" : "false", age == INT64_MAX ? -1LL : (long long)age);
        return td_http_reply(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                             "application/json", text, strlen(text), 0);
    }
    freshen(srv);
    if (strcmp(url, "/readyz") == 0) {
        bool ready = false;
        body = td_metrics_readiness(srv->metrics, &ready, &len);
        rc = body ? td_http_reply(conn, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                                  "application/json", body, len, 0)
                  : td_http_reply_error(conn, 500, "out of memory", 0);
    } else if (strcmp(url, "/metrics") == 0) {
        body = td_metrics_prometheus(srv->metrics, &len);
        rc = body ? td_http_reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                                  body, len, 0)
                  : td_http_reply_error(conn, 500, "out of memory", 0);
    } else {
        body = td_metrics_status_json(srv->metrics, &len);
        rc = body ? td_http_reply(conn, MHD_HTTP_OK, "application/json", body, len, 0)
                  : td_http_reply_error(conn, 500, "out of memory", 0);
    }
    free(body);
    return rc;
}

static struct track *track_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Server thread: the whole request was read; from now on it is being answered. */
static void read_done(struct td_http_server *srv, struct MHD_Connection *conn)
{
    struct track *t = track_of(conn);
    if (t) {
        pthread_mutex_lock(&srv->mu);
        t->reading = false;
        pthread_mutex_unlock(&srv->mu);
    }
}

/* With client_ca_file, MHD asks GnuTLS to request a client certificate (GNUTLS_CERT_REQUEST,
 * not REQUIRE: 0.9.75 has no option for that), so the handshake succeeds without one and the
 * check is ours, before anything of the request is served: a certificate must have been sent
 * and must verify against the trusted CAs (signature, validity dates). Server thread. */
static bool client_verified(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session) {
        return false;
    }
    gnutls_session_t session = (gnutls_session_t)ci->tls_session;
    unsigned int n = 0, status = 0;
    if (!gnutls_certificate_get_peers(session, &n) || n == 0) {
        return false;
    }
    return gnutls_certificate_verify_peers2(session, &status) == GNUTLS_E_SUCCESS && status == 0;
}

static enum MHD_Result refuse_client(struct MHD_Connection *conn)
{
    static const char body[] =
        "{\"error\":\"a client certificate signed by a trusted CA is required\"}";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_FORBIDDEN, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct td_http_server *srv = cls;
    struct conn *c = *con_cls;
    if (!c && srv->tls_trust && !client_verified(conn)) {
        *upload_size = 0; /* nothing of the request is read or served */
        read_done(srv, conn);
        return refuse_client(conn);
    }
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c) {
            return MHD_NO;
        }
        for (size_t i = 0; i < srv->nroutes; i++) {
            if (strcmp(url, srv->routes[i].path) == 0) {
                c->route = &srv->routes[i];
            }
        }
        *con_cls = c;
        atomic_fetch_add(&srv->active, 1);
    }
    if (c->route) {
        if (*upload_size == 0 && c->req) {
            read_done(srv, conn); /* the last call of a request: the body is complete */
        }
        return c->route->handler(c->route->arg, conn, method, upload, upload_size, &c->req);
    }
    if (*upload_size > 0) {
        *upload_size = 0; /* a body on a probe is ignored */
        return MHD_YES;
    }
    read_done(srv, conn);
    for (size_t i = 0;
         (srv->what & TD_HTTP_SERVE_PROBES) && i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        if (strcmp(url, builtin[i]) == 0) {
            if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
                return td_http_reply_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                           "only GET is allowed here", 0);
            }
            return serve_builtin(srv, conn, url);
        }
    }
    return td_http_reply_error(conn, MHD_HTTP_NOT_FOUND, "no such endpoint", 0);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct td_http_server *srv = cls;
    struct conn *c = *con_cls;
    if (!c) {
        return;
    }
    if (c->route && c->route->done) {
        c->route->done(c->route->arg, c->req);
    }
    free(c);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->active, 1);
    /* A keep-alive connection now waits for its next request: the clock starts again. */
    struct track *t = track_of(conn);
    if (t) {
        pthread_mutex_lock(&srv->mu);
        t->reading = true;
        t->since_ms = td_now_ms();
        pthread_mutex_unlock(&srv->mu);
    }
}

/* The address of sa in *family and addr (the port aside); false for anything but IPv4/IPv6. */
static bool ip_key(const struct sockaddr *sa, sa_family_t *family, unsigned char addr[16])
{
    memset(addr, 0, 16);
    if (!sa) {
        return false;
    }
    *family = sa->sa_family;
    if (sa->sa_family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

/* Where the count of an address is, or would go, in its chain (under mu). */
static struct ip_count **ip_slot(struct td_http_server *srv, sa_family_t family,
                                 const unsigned char addr[16])
{
    uint32_t h = 2166136261u ^ (uint32_t)family;
    for (int i = 0; i < 16; i++) {
        h = (h ^ addr[i]) * 16777619u;
    }
    struct ip_count **pp = &srv->ips[h % IP_BUCKETS];
    while (*pp && ((*pp)->family != family || memcmp((*pp)->addr, addr, 16) != 0)) {
        pp = &(*pp)->next;
    }
    return pp;
}

/* The count of an address (under mu), or NULL; with create, a new one at 0 when there is none
 * (NULL out of memory). */
static struct ip_count *ip_find(struct td_http_server *srv, sa_family_t family,
                                const unsigned char addr[16], bool create)
{
    struct ip_count **pp = ip_slot(srv, family, addr);
    if (!*pp && create && (*pp = calloc(1, sizeof(**pp)))) {
        (*pp)->family = family;
        memcpy((*pp)->addr, addr, 16);
    }
    return *pp;
}

/* True once per 10 s across threads: the rate of the warnings an attacker can provoke. */
static bool warn_now(_Atomic int64_t *last_warn)
{
    int64_t now = td_now_ms(), prev = atomic_load(last_warn);
    return now - prev >= 10000 && atomic_compare_exchange_strong(last_warn, &prev, now);
}

/* MHD's accept policy, on its thread: refuses (and counts) a connection from an address that
 * has max_connections_per_ip open already. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addrlen;
    struct td_http_server *srv = cls;
    sa_family_t family;
    unsigned char key[16];
    if (srv->lim.max_connections_per_ip <= 0 || !ip_key(addr, &family, key)) {
        return MHD_YES;
    }
    pthread_mutex_lock(&srv->mu);
    struct ip_count *ic = ip_find(srv, family, key, false);
    bool full = ic && ic->count >= srv->lim.max_connections_per_ip;
    pthread_mutex_unlock(&srv->mu);
    if (!full) {
        return MHD_YES;
    }
    td_metrics_count_refused_per_ip(srv->metrics);
    /* Worth an operator's attention, rate-limited as MHD's own limit messages are. */
    static _Atomic int64_t last_warn;
    if (warn_now(&last_warn)) {
        char who[INET6_ADDRSTRLEN] = "?";
        inet_ntop(family, key, who, sizeof(who));
        td_log_warn(NULL, NULL, NULL,
                    "http %s: refused a connection from %s: it has max_connections_per_ip (%d) "
                    "open (logged once per 10 s)",
                    srv->listen, who, srv->lim.max_connections_per_ip);
    }
    return MHD_NO;
}

/* The client address of conn when the per-IP limit applies to it (a limit is set and the
 * address is IPv4 or IPv6); false otherwise. */
static bool per_ip_key(struct td_http_server *srv, struct MHD_Connection *conn, sa_family_t *family,
                       unsigned char key[16])
{
    if (srv->lim.max_connections_per_ip <= 0) {
        return false;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ci && ip_key(ci->client_addr, family, key);
}

/* The connection counted in ic closed (under mu). */
static void ip_count_del(struct td_http_server *srv, struct ip_count *ic)
{
    if (!ic || --ic->count > 0) {
        return;
    }
    struct ip_count **pp = ip_slot(srv, ic->family, ic->addr);
    if (*pp == ic) {
        *pp = ic->next;
    }
    free(ic);
}

/* MHD's "started" notification, on its thread, before anything of the connection is read:
 * tracks it (the slow-request reaper) and counts it against its address (the per-IP limit).
 *
 * A connection the per-IP limit applies to but that cannot be counted (out of memory for its
 * track, which holds the count's reference until "closed", or for its address's count) is not
 * served: serving it uncounted would let one client exceed its limit exactly when the daemon
 * is short of memory. It is shut down (as reap_slow does: MHD owns the descriptor and closes
 * it on the EOF it reads next) and logged, not counted as a per_ip refusal (the address was
 * not over its limit). Without a per-IP limit an untracked connection is served as before:
 * no limit of ours is exceeded (MHD enforces max_connections itself), MHD's inactivity timeout
 * still bounds it (only the reaper's whole-request deadline is lost), and a transient
 * shortage costs no one a request. */
static void connection_started(struct td_http_server *srv, struct MHD_Connection *conn,
                               void **socket_context)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    sa_family_t family = AF_UNSPEC;
    unsigned char key[16];
    bool limited = per_ip_key(srv, conn, &family, key);
    struct track *t = ci ? calloc(1, sizeof(*t)) : NULL;
    if (t) {
        t->fd = ci->connect_fd;
        t->since_ms = td_now_ms();
        t->reading = true;
        pthread_mutex_lock(&srv->mu);
        if (limited && (t->ip = ip_find(srv, family, key, true))) {
            t->ip->count++;
        }
        if (!limited || t->ip) {
            t->next = srv->tracks;
            if (srv->tracks) {
                srv->tracks->prev = t;
            }
            srv->tracks = t;
            *socket_context = t;
        }
        pthread_mutex_unlock(&srv->mu);
        if (*socket_context) {
            return;
        }
        free(t);
    }
    if (!limited) {
        return; /* untracked: MHD's inactivity timeout still applies */
    }
    if (ci) { /* MHD 0.9.75 always knows the descriptor of a connection it started */
        shutdown(ci->connect_fd, SHUT_RDWR);
    }
    static _Atomic int64_t last_warn;
    if (warn_now(&last_warn)) {
        char who[INET6_ADDRSTRLEN] = "?";
        inet_ntop(family, key, who, sizeof(who));
        td_log_warn(NULL, NULL, NULL,
                    "http %s: closed a connection from %s unserved: out of memory to count it "
                    "against max_connections_per_ip (%d) (logged once per 10 s)",
                    srv->listen, who, srv->lim.max_connections_per_ip);
    }
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct td_http_server *srv = cls;
    struct track *t = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        connection_started(srv, conn, socket_context);
        return;
    }
    if (!t) {
        return; /* untracked, or refused in connection_started: nothing counted */
    }
    /* MHD closes the descriptor after this returns; the reaper holds mu while it uses it. */
    pthread_mutex_lock(&srv->mu);
    if (t->prev) {
        t->prev->next = t->next;
    } else {
        srv->tracks = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
    ip_count_del(srv, t->ip);
    pthread_mutex_unlock(&srv->mu);
    free(t);
    *socket_context = NULL;
}

/* Loop thread: shuts down the connections that took too long to send their request. */
static void reap_slow(struct td_http_server *srv)
{
    int64_t now = td_now_ms();
    unsigned long cut = 0;
    pthread_mutex_lock(&srv->mu);
    for (struct track *t = srv->tracks; t; t = t->next) {
        if (t->reading && now - t->since_ms > srv->lim.request_timeout_ms) {
            shutdown(t->fd, SHUT_RDWR);
            t->reading = false;
            cut++;
        }
    }
    pthread_mutex_unlock(&srv->mu);
    if (cut > 0) {
        td_log_debug(NULL, NULL, NULL,
                     "http %s: closed %lu connections that sent no complete request within "
                     "request_timeout (%lld ms)",
                     srv->listen, cut, (long long)srv->lim.request_timeout_ms);
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    /* EMFILE and the connection limits are worth an operator's attention, rate-limited. */
    if (strstr(msg, "limit") || strstr(msg, "Too many open files")) {
        static _Atomic int64_t last_warn;
        if (warn_now(&last_warn)) {
            struct td_http_server *srv = cls;
            td_log_warn(NULL, NULL, NULL, "http %s: %s (logged once per 10 s)", srv->listen, msg);
            return;
        }
    }
    td_log_debug(NULL, NULL, NULL, "http server: %s", msg);
}

static int64_t on_heartbeat(struct td_loop *loop, void *arg)
{
    struct td_http_server *srv = arg;
    td_metrics_heartbeat(srv->metrics);
    if (srv->mhd) {
        reap_slow(srv);
    }
    return HEARTBEAT_MS;
}

/* "host:port" or "[v6]:port" -> srv->addr. */
static int parse_listen(struct td_http_server *srv, const char *listen, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
        snprintf(err, errlen, "'%s' is not host:port", listen);
        return -1;
    }
    const char *h = listen;
    size_t hlen = (size_t)(colon - listen);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(hlen ? host : NULL, colon + 1, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "'%s': %s", listen, gai_strerror(rc));
        return -1;
    }
    memcpy(&srv->addr, res->ai_addr, res->ai_addrlen);
    srv->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

struct td_http_server *td_http_server_new(const char *listen, unsigned int what,
                                          const struct td_http_limits *lim,
                                          struct td_metrics *metrics, struct td_loop *loop,
                                          char *err, size_t errlen)
{
    struct td_http_server *srv = calloc(1, sizeof(*srv));
    if (!srv || !(srv->listen = strdup(listen))) {
        snprintf(err, errlen, "out of memory");
        free(srv);
        return NULL;
    }
    pthread_mutex_init(&srv->mu, NULL);
    srv->what = what;
    srv->lim = *lim;
    if (srv->lim.max_connections < 1) {
        srv->lim.max_connections = 1;
    }
    if (srv->lim.request_timeout_ms < 1000) {
        srv->lim.request_timeout_ms = 1000;
    }
    srv->metrics = metrics;
    srv->loop = loop;
    td_timer_init(&srv->heartbeat, on_heartbeat, srv);
    if (parse_listen(srv, listen, err, errlen) < 0) {
        goto fail;
    }
    return srv;
fail:
    td_http_server_free(srv);
    return NULL;
}

int td_http_server_route(struct td_http_server *srv, const char *path, td_http_handler handler,
                         td_http_done done, void *arg)
{
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        if (strcmp(path, builtin[i]) == 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < srv->nroutes; i++) {
        if (strcmp(path, srv->routes[i].path) == 0) {
            return -1;
        }
    }
    if (srv->nroutes == MAX_ROUTES || srv->mhd || !(srv->what & TD_HTTP_SERVE_ROUTES)) {
        return -1;
    }
    struct route *r = &srv->routes[srv->nroutes];
    if (!(r->path = strdup(path))) {
        return -1;
    }
    r->handler = handler;
    r->done = done;
    r->arg = arg;
    srv->nroutes++;
    return 0;
}

int td_http_server_start(struct td_http_server *srv, char *err, size_t errlen)
{
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (srv->addr.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    struct MHD_OptionItem tls[4] = {{MHD_OPTION_END, 0, NULL}};
    if (srv->tls_cert) {
        flags |= MHD_USE_TLS;
        int i = 0;
        tls[i++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert};
        tls[i++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key};
        if (srv->tls_trust) {
            tls[i++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, srv->tls_trust};
        }
        tls[i] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    }
    td_metrics_heartbeat(srv->metrics);
    if (td_timer_start(srv->loop, &srv->heartbeat, HEARTBEAT_MS) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* MHD's inactivity timeout is in whole seconds; the reaper enforces the exact one. */
    unsigned int idle_s = (unsigned int)((srv->lim.request_timeout_ms + 999) / 1000);
    srv->mhd = MHD_start_daemon(
        flags, 0, on_accept, srv, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&srv->addr, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
        MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)srv->lim.max_connections, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!srv->mhd) {
        snprintf(err, errlen, "cannot listen on %s (address in use or not local%s?)", srv->listen,
                 srv->tls_cert ? ", or the TLS certificate and key do not match" : "");
        td_timer_stop(srv->loop, &srv->heartbeat);
        return -1;
    }
    td_log_info(NULL, NULL, NULL,
                "http: listening on %s (%s%s; at most %d connections, %d per client address, "
                "request timeout %lld ms)",
                srv->listen,
                !srv->tls_cert   ? ""
                : srv->tls_trust ? "HTTPS, client certificates required, "
                                 : "HTTPS, ",
                srv->what == TD_HTTP_SERVE_PROBES  ? "probes only"
                : srv->what & TD_HTTP_SERVE_PROBES ? "ingress and probes"
                                                   : "ingress only",
                srv->lim.max_connections, srv->lim.max_connections_per_ip,
                (long long)srv->lim.request_timeout_ms);
    return 0;
}

void td_http_server_stop(struct td_http_server *srv)
{
    if (!srv) {
        return;
    }
    td_timer_stop(srv->loop, &srv->heartbeat);
    if (!srv->mhd) {
        return;
    }
    /* The quiesced listening socket stops listening at once (shutdown: new connections are
     * refused, not left in the backlog), but is closed only after MHD_stop_daemon: libmicrohttpd
     * says its threads may still use it until then, and closing it earlier let its thread's
     * epoll_ctl meet a closed (or reused) descriptor (ThreadSanitizer saw the race). */
    MHD_socket fd = MHD_quiesce_daemon(srv->mhd);
    if (fd != MHD_INVALID_SOCKET) {
        shutdown(fd, SHUT_RDWR);
    }
    /* Answers already queued (ingress 202s resumed during the drain) get a moment to go out. */
    int64_t until = td_now_ms() + STOP_GRACE_MS;
    while (atomic_load(&srv->active) > 0 && td_now_ms() < until) {
        usleep(5000);
    }
    MHD_stop_daemon(srv->mhd);
    srv->mhd = NULL;
    if (fd != MHD_INVALID_SOCKET) {
        close(fd);
    }
}

void td_http_server_free(struct td_http_server *srv)
{
    if (!srv) {
        return;
    }
    for (size_t i = 0; i < srv->nroutes; i++) {
        free(srv->routes[i].path);
    }
    free(srv->listen);
    free(srv->tls_cert);
    td_secret_free(srv->tls_key);
    free(srv->tls_trust);
    for (size_t i = 0; i < IP_BUCKETS; i++) { /* none left once MHD closed every connection */
        for (struct ip_count *ic = srv->ips[i], *next; ic; ic = next) {
            next = ic->next;
            free(ic);
        }
    }
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}

/* A whole PEM file, NUL-terminated (MHD takes strings), after td_tls_file_check said it is
 * one. malloc'd, or NULL with a message. */
static char *read_pem(const char *what, const char *path, enum td_tls_file_kind kind, char *err,
                      size_t errlen)
{
    char why[400];
    if (td_tls_file_check(path, kind, why, sizeof(why)) != TD_TLS_FILE_OK) {
        snprintf(err, errlen, "daemon.http.tls.%s %s", what, why);
        return NULL;
    }
    FILE *f = fopen(path, "r");
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    if (f && fstat(fileno(f), &st) == 0 && st.st_size > 0 && st.st_size < (1 << 20)) {
        buf = malloc((size_t)st.st_size + 1); /* sized once: a key is never copied around */
        n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    }
    if (f) {
        fclose(f);
    }
    if (!buf || n == 0) {
        free(buf);
        snprintf(err, errlen, "daemon.http.tls.%s %s cannot be read (or is over 1 MiB)", what,
                 path);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

int td_http_server_tls(struct td_http_server *srv, const char *cert_file, const char *key_file,
                       const char *client_ca_file, char *err, size_t errlen)
{
    if (!(srv->tls_cert = read_pem("cert_file", cert_file, TD_TLS_CERT, err, errlen)) ||
        !(srv->tls_key = read_pem("key_file", key_file, TD_TLS_KEY, err, errlen))) {
        return -1;
    }
    if (client_ca_file &&
        !(srv->tls_trust = read_pem("client_ca_file", client_ca_file, TD_TLS_CA, err, errlen))) {
        return -1;
    }
    return 0;
}
