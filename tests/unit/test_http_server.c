/* test_http_server.c - daemon.http's per-IP connection limit (broker/runtime/http_server.c),
 * against a real server on 127.0.0.1 (libmicrohttpd on its own thread) and real client sockets:
 * the limit refuses the connection over it and frees its slot when one closes, and it fails
 * closed: a connection whose count cannot be allocated is not served.
 *
 * Out of memory is made with the linker: this executable is linked with -Wl,--wrap=calloc
 * (tests/CMakeLists.txt), so every calloc of triggerd_core's static code comes here first
 * (libmicrohttpd is a shared library: its own allocations are not wrapped). A test arms the
 * wrapper to fail the Nth calloc made on a thread other than its own. With nothing else in
 * flight, the only such thread calling triggerd code is MHD's, and a new connection's first
 * callocs there are those of on_connection's "started" notification: the connection's track,
 * then (for an address with no connection open) its address's count; on_request's come only
 * after the request was read. Each client binds an address of its own in 127/8, so that its
 * count never exists already.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http_server.h"
#include "loop.h"
#include "metrics.h"

void *__real_calloc(size_t nmemb, size_t size);
void *__wrap_calloc(size_t nmemb, size_t size);

static pthread_t g_test_thread; /* set in main, before any thread starts */
static atomic_bool g_armed;     /* fail a calloc of another thread */
static atomic_int g_pass;       /* how many of theirs pass first */
static atomic_int g_failed;     /* callocs failed */

void *__wrap_calloc(size_t nmemb, size_t size)
{
    if (atomic_load(&g_armed) && !pthread_equal(pthread_self(), g_test_thread) &&
        atomic_fetch_sub(&g_pass, 1) == 0) {
        atomic_store(&g_armed, false);
        atomic_fetch_add(&g_failed, 1);
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(nmemb, size);
}

/* The next calloc of another thread after `pass` of them fails. */
static void arm(int pass)
{
    atomic_store(&g_failed, 0);
    atomic_store(&g_pass, pass);
    atomic_store(&g_armed, true);
}

struct fixture {
    struct td_metrics *metrics;
    struct td_loop *loop;
    struct td_http_server *srv;
    int port;
};

/* A port nothing listens on now (the kernel's pick for port 0). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

/* A probes server on 127.0.0.1 with max_connections_per_ip = per_ip (0: none). */
static void start(struct fixture *fx, int per_ip)
{
    struct td_http_limits lim = {
        .max_connections = 64, .max_connections_per_ip = per_ip, .request_timeout_ms = 60000};
    char err[256] = "";
    fx->metrics = td_metrics_new();
    fx->loop = td_loop_new();
    assert_non_null(fx->metrics);
    assert_non_null(fx->loop);
    /* Another process may take the free port before MHD binds it: a few tries. */
    for (int i = 0; i < 5 && !fx->srv; i++) {
        char listen[32];
        fx->port = free_port();
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", fx->port);
        fx->srv = td_http_server_new(listen, TD_HTTP_SERVE_PROBES, &lim, fx->metrics, fx->loop, err,
                                     sizeof(err));
        assert_non_null(fx->srv);
        if (td_http_server_start(fx->srv, err, sizeof(err)) < 0) {
            td_http_server_free(fx->srv);
            fx->srv = NULL;
        }
    }
    if (!fx->srv) {
        fail_msg("cannot start the server: %s", err);
    }
}

static void stop(struct fixture *fx)
{
    td_http_server_stop(fx->srv);
    td_http_server_free(fx->srv);
    td_loop_free(fx->loop);
    td_metrics_free(fx->metrics);
}

/* A connection from the loopback address `from` (127.0.0.2, ...) to the server. */
static int client(const struct fixture *fx, const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    /* A guard so that a broken server fails the test instead of hanging it, not a measure. */
    struct timeval tv = {.tv_sec = 30};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, from, &sin.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    sin.sin_port = htons((uint16_t)fx->port);
    assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr), 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

/* Sends text on fd; false when the server has closed the connection already. */
static bool put(int fd, const char *text)
{
    if (send(fd, text, strlen(text), MSG_NOSIGNAL) < 0) {
        assert_true(errno == EPIPE || errno == ECONNRESET);
        return false;
    }
    return true;
}

/* The status of the answer on fd, or 0 when the server closed the connection without one. */
static int answer(int fd)
{
    char buf[2048];
    size_t n = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
        if (r < 0 && errno == ECONNRESET) {
            r = 0;
        }
        assert_true(r >= 0); /* not the 30 s guard */
        if (r == 0) {
            assert_int_equal(n, 0); /* closed without an answer, not in the middle of one */
            return 0;
        }
        n += (size_t)r;
        buf[n] = '\0';
        const char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (end && cl && cl < end && n >= (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10)) {
            break;
        }
        assert_true(n < sizeof(buf) - 1);
    }
    int status = 0;
    assert_int_equal(sscanf(buf, "HTTP/1.1 %d", &status), 1);
    return status;
}

/* A request's first line: the connection stays open (and counted) until finish(). MHD answers
 * a probe with "Connection: close" (a response queued in the access handler's first call), so
 * a connection is held open this way, not by keep-alive. */
#define BEGIN  "GET /healthz HTTP/1.1\r\n"
#define FINISH "Host: t\r\n\r\n"

/* Completes the request begun on fd: the answer's status, or 0 (closed unanswered). */
static int finish(struct fixture *fx, int fd)
{
    td_metrics_heartbeat(fx->metrics); /* the loop's part: /healthz is 200 while it beats */
    return put(fd, FINISH) ? answer(fd) : 0;
}

/* A whole GET /healthz on fd: its status, or 0 (closed unanswered). */
static int healthz(struct fixture *fx, int fd)
{
    return put(fd, BEGIN) ? finish(fx, fd) : 0;
}

/* A connection from `from` with its request begun. */
static int begun(const struct fixture *fx, const char *from)
{
    int fd = client(fx, from);
    assert_true(put(fd, BEGIN));
    return fd;
}

/* triggerd_ingress_connections_refused_total{reason="per_ip"}. */
static long refused_per_ip(struct fixture *fx)
{
    size_t len = 0;
    char *text = td_metrics_prometheus(fx->metrics, &len);
    assert_non_null(text);
    const char *key = "triggerd_ingress_connections_refused_total{reason=\"per_ip\"} ";
    const char *at = strstr(text, key);
    assert_non_null(at);
    long n = strtol(at + strlen(key), NULL, 10);
    free(text);
    return n;
}

static void test_per_ip_limit(void **state)
{
    (void)state;
    struct fixture fx = {0};
    start(&fx, 2);
    /* MHD accepts in order, each connection "started" (counted) before the next accept: with a
     * and b open, a third from their address is closed unanswered... */
    int a = begun(&fx, "127.0.0.2"), b = begun(&fx, "127.0.0.2");
    int c = client(&fx, "127.0.0.2");
    assert_int_equal(healthz(&fx, c), 0);
    close(c);
    assert_int_equal(refused_per_ip(&fx), 1);
    /* ...while another address has its own count... */
    int other = client(&fx, "127.0.0.3");
    assert_int_equal(healthz(&fx, other), 200);
    close(other);
    /* ...and a and b are served. */
    assert_int_equal(finish(&fx, a), 200);
    close(a);
    /* a closed (MHD closes after a probe's answer), so its slot is free again: as soon as MHD
     * has seen the close on its thread (a connection accepted before that is still refused),
     * a new one is served, beside b. */
    int status = 0;
    for (int i = 0; i < 1000 && status == 0; i++) {
        int d = client(&fx, "127.0.0.2");
        status = healthz(&fx, d);
        close(d);
        if (status == 0) {
            usleep(5000);
        }
    }
    assert_int_equal(status, 200);
    assert_int_equal(finish(&fx, b), 200);
    close(b);
    stop(&fx);
}

/* With a per-IP limit, a connection whose counting allocation fails is closed unanswered, and
 * the next ones (memory back) are served and counted. pass 0: the connection's track fails;
 * pass 1: its address's count. */
static void fails_closed(int pass, const char *from)
{
    struct fixture fx = {0};
    start(&fx, 2);
    arm(pass);
    int fd = client(&fx, from);
    int status = healthz(&fx, fd);
    close(fd);
    assert_int_equal(atomic_load(&g_failed), 1);
    assert_int_equal(status, 0);
    /* Nothing was counted for it: two are served, a third beside them is refused. */
    int a = begun(&fx, from), b = begun(&fx, from);
    int c = client(&fx, from);
    assert_int_equal(healthz(&fx, c), 0);
    close(c);
    assert_int_equal(refused_per_ip(&fx), 1);
    assert_int_equal(finish(&fx, a), 200);
    assert_int_equal(finish(&fx, b), 200);
    close(a);
    close(b);
    stop(&fx);
}

static void test_track_oom_fails_closed(void **state)
{
    (void)state;
    fails_closed(0, "127.0.0.4");
}

static void test_ip_count_oom_fails_closed(void **state)
{
    (void)state;
    fails_closed(1, "127.0.0.5");
}

/* Without a per-IP limit there is nothing to exceed: a connection whose track cannot be
 * allocated is served as before (MHD's inactivity timeout still bounds it). */
static void test_track_oom_without_limit_served(void **state)
{
    (void)state;
    struct fixture fx = {0};
    start(&fx, 0);
    arm(0);
    int fd = client(&fx, "127.0.0.6");
    assert_int_equal(healthz(&fx, fd), 200);
    assert_int_equal(atomic_load(&g_failed), 1);
    close(fd);
    stop(&fx);
}

int main(void)
{
    g_test_thread = pthread_self();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_ip_limit),
        cmocka_unit_test(test_track_oom_fails_closed),
        cmocka_unit_test(test_ip_count_oom_fails_closed),
        cmocka_unit_test(test_track_oom_without_limit_served),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
