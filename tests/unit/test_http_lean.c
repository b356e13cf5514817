/* test_http_lean.c - the lean HTTP/1.1 client (http_lean.c) against a server played by the test
 * itself on a loopback socket, between iterations of the loop: what it sends, and how it reads
 * answers that arrive in pieces, chunked, close-delimited, after a 100 Continue, with bytes
 * nobody asked for behind them, with oversize headers, or cut short; its keep-alive reuse, its
 * one retry of a request on a stale connection (and no retry on a fresh one), connection
 * refused, and a timeout (on a fake clock: nothing here waits for time to pass).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_client.h"
#include "http_lean.h"
#include "loop.h"
#include "resolver.h"

#define PUMP_MAX 2000 /* loop iterations before a step is declared stuck (not a time limit) */

struct result {
    int calls;
    CURLcode code;
    long status;
    int64_t retry_after_ms;
    char body[256];
    size_t len;
};

struct fixture {
    struct td_loop *loop;
    struct td_resolver *res; /* the loop's, as the daemon's HTTP client owns it */
    struct td_lean_client *c;
    struct td_lean_target *t;
    int lfd, port;
    char hdr[8192]; /* the header lines the client passed on */
    size_t hdrlen;
};

static void on_done(struct td_http_request *req, CURLcode code, long status, int64_t ra,
                    const unsigned char *body, size_t len, void *arg)
{
    (void)req;
    struct result *r = arg;
    r->calls++;
    r->code = code;
    r->status = status;
    r->retry_after_ms = ra;
    r->len = len < sizeof(r->body) ? len : sizeof(r->body) - 1;
    if (len > 0) {
        memcpy(r->body, body, r->len);
    }
    r->body[r->len] = '\0';
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    struct fixture *f = arg;
    size_t len = size * n;
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        f->hdrlen = 0;
    } else if (f->hdrlen + len < sizeof(f->hdr)) {
        memcpy(f->hdr + f->hdrlen, line, len);
        f->hdrlen += len;
        f->hdr[f->hdrlen] = '\0';
    }
    return len;
}

static int64_t fake_now;
static int64_t fake_clock(void)
{
    return fake_now;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    fake_now = 1000000;
    td_clock_set(fake_clock);
    f->loop = td_loop_new();
    f->res = td_resolver_new(f->loop);
    f->c = td_lean_client_new(f->loop, f->res);
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 16), 0);
    socklen_t alen = sizeof(a);
    getsockname(f->lfd, (struct sockaddr *)&a, &alen);
    f->port = ntohs(a.sin_port);
    char url[128], err[160];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/fn?x=1", f->port);
    f->t = td_lean_target_new(f->c, url, err, sizeof(err));
    assert_non_null(f->t);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    td_lean_target_free(f->t);
    td_lean_client_free(f->c);
    td_resolver_free(f->res);
    td_loop_free(f->loop);
    close(f->lfd);
    td_clock_set(NULL);
    free(f);
    return 0;
}

/* Sends a POST of body with one header; the result lands in *r. */
static void post(struct fixture *f, const char *body, struct result *r)
{
    struct td_lean_request *q = td_lean_request_new(f->t);
    assert_non_null(q);
    assert_int_equal(td_lean_request_header(q, "ce-id", "42"), 0);
    assert_int_equal(td_lean_request_line(q, "Content-Type: application/json", 30), 0);
    assert_int_equal(td_lean_request_line(q, "Expect:", 7), 0);              /* adds nothing */
    assert_int_equal(td_lean_request_header(q, "content-length", "999"), 0); /* dropped */
    assert_int_equal(td_lean_request_line(q, "Transfer-Encoding: chunked", 26), 0);
    td_lean_request_body(q, body, strlen(body), false);
    memset(r, 0, sizeof(*r));
    assert_int_equal(td_lean_request_send(f->c, q, 10000, on_header, f, on_done, r), 0);
    assert_int_equal(r->calls, 0); /* never from inside send */
}

static void pump_until_done(struct fixture *f, struct result *r)
{
    for (int i = 0; i < PUMP_MAX && r->calls == 0; i++) {
        td_loop_run_once(f->loop, 5);
    }
    assert_int_equal(r->calls, 1);
}

static int srv_accept(struct fixture *f)
{
    for (int i = 0; i < PUMP_MAX; i++) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd >= 0) {
            return fd;
        }
        td_loop_run_once(f->loop, 5);
    }
    fail_msg("the client never connected");
    return -1;
}

/* Reads one whole request (head and Content-Length body) into buf, pumping the loop. */
static size_t srv_read(struct fixture *f, int fd, char *buf, size_t cap)
{
    fcntl(fd, F_SETFL, O_NONBLOCK);
    size_t len = 0;
    for (int i = 0; i < PUMP_MAX; i++) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n > 0) {
            len += (size_t)n;
            buf[len] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            char *cl = strstr(buf, "Content-Length: ");
            if (end && cl && len >= (size_t)(end + 4 - buf) + strtoul(cl + 16, NULL, 10)) {
                return len;
            }
            continue;
        }
        td_loop_run_once(f->loop, 5);
    }
    fail_msg("no whole request arrived");
    return 0;
}

static void srv_write(int fd, const char *s)
{
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void test_request_bytes_and_split_answer(void **state)
{
    struct fixture *f = *state;
    struct result r;
    post(f, "{\"a\":1}", &r);
    int fd = srv_accept(f);
    char buf[4096], want[128];
    srv_read(f, fd, buf, sizeof(buf));
    assert_non_null(strstr(buf, "POST /fn?x=1 HTTP/1.1\r\n"));
    snprintf(want, sizeof(want), "\r\nHost: 127.0.0.1:%d\r\n", f->port);
    assert_non_null(strstr(buf, want));
    assert_non_null(strstr(buf, "\r\nce-id: 42\r\n"));
    assert_non_null(strstr(buf, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(buf, "\r\nUser-Agent: triggerd/"));
    assert_null(strstr(buf, "Expect"));
    /* Not strstr(buf, "999"): the Host line's port may hold it (1 run in ~60 failed so). */
    assert_null(strcasestr(buf, "content-length: 999"));
    assert_null(strstr(buf, "chunked"));
    assert_non_null(strstr(buf, "\r\nContent-Length: 7\r\n\r\n{\"a\":1}"));
    /* the answer in pieces, each read by its own loop iteration, cut inside every part */
    const char *parts[] = {
        "HTT",      "P/1.1 20",           "0 OK\r\nConte", "nt-Length: 5\r\nRetry-Af",
        "ter: 7\r", "\nCe-Type: x\r\n\r", "\nhel",         "lo"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        srv_write(fd, parts[i]);
        for (int k = 0; k < 3; k++) {
            td_loop_run_once(f->loop, 5);
        }
    }
    pump_until_done(f, &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_int_equal(r.retry_after_ms, 7000);
    assert_non_null(strstr(f->hdr, "Retry-After: 7\r\n"));
    assert_non_null(strstr(f->hdr, "Ce-Type: x\r\n"));
    assert_int_equal(td_lean_client_connections(f->c), 1); /* kept for the next request */
    close(fd);
}

static void test_chunked_and_reuse(void **state)
{
    struct fixture *f = *state;
    struct result r;
    post(f, "one", &r);
    int fd = srv_accept(f);
    char buf[4096];
    srv_read(f, fd, buf, sizeof(buf));
    srv_write(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world"
                  "\r\n0\r\n\r\n");
    pump_until_done(f, &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_string_equal(r.body, "hello world");
    assert_int_equal(r.retry_after_ms, -1);
    /* the second request goes on the same connection: nothing new to accept */
    post(f, "two", &r);
    srv_read(f, fd, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\r\n\r\ntwo"));
    srv_write(fd, "HTTP/1.1 204 No Content\r\n\r\n");
    pump_until_done(f, &r);
    assert_int_equal(r.status, 204);
    assert_int_equal(accept(f->lfd, NULL, NULL), -1);
    close(fd);
}

static void test_garbage_after_answer_closes(void **state)
{
    struct fixture *f = *state;
    struct result r;
    post(f, "x", &r);
    int fd = srv_accept(f);
    char buf[4096];
    srv_read(f, fd, buf, sizeof(buf));
    srv_write(fd, "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 500 Unasked\r\n\r\n");
    pump_until_done(f, &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 204);
    /* the connection is out of step with the server: closed, not reused */
    assert_int_equal(td_lean_client_connections(f->c), 0);
    post(f, "y", &r);
    int fd2 = srv_accept(f);
    srv_read(f, fd2, buf, sizeof(buf));
    srv_write(fd2, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
    pump_until_done(f, &r);
    assert_int_equal(r.status, 202);
    close(fd);
    close(fd2);
}

static void test_oversize_headers(void **state)
{
    struct fixture *f = *state;
    struct result r;
    post(f, "x", &r);
    int fd = srv_accept(f);
    char buf[4096];
    srv_read(f, fd, buf, sizeof(buf));
    srv_write(fd, "HTTP/1.1 200 OK\r\nX-Big: ");
    char chunk[4096];
    memset(chunk, 'a', sizeof(chunk) - 1);
    chunk[sizeof(chunk) - 1] = '\0';
    for (int i = 0; i < 40 && r.calls == 0; i++) { /* 160 KB: beyond http_parser's 80 KB */
        (void)!write(fd, chunk, strlen(chunk));
        td_loop_run_once(f->loop, 5);
    }
    pump_until_done(f, &r);
    assert_int_equal(r.code, CURLE_WEIRD_SERVER_REPLY);
    assert_int_equal(r.status, 0);
    assert_int_equal(td_lean_client_connections(f->c), 0);
    close(fd);
}

static void test_close_mid_answer(void **state)
{
    struct fixture *f = *state;
    struct result r;
    post(f, "x", &r);
    int fd = srv_accept(f);
    char buf[4096];
    srv_read(f, fd, buf, sizeof(buf));
    srv_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc");
    td_loop_run_once(f->loop, 5);
    close(fd);
    pump_until_done(f, &r);
    assert_int_equal(r.code, CURLE_PARTIAL_FILE); /* not retried: the answer had begun */
    assert_int_equal(r.status, 0);
    assert_int_equal(accept(f->lfd, NULL, NULL), -1);
}

static void test_close_delimited_and_continue(void **state)
{
    struct fixture *f = *state;
    struct result r;
    post(f, "x", &r);
    int fd = srv_accept(f);
    char buf[4096];
    srv_read(f, fd, buf, sizeof(buf));
    srv_write(fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                  "Connection: close\r\n\r\nuntil the end");
    td_loop_run_once(f->loop, 5);
    close(fd);
    pump_until_done(f, &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "until the end");
    assert_non_null(strstr(f->hdr, "Content-Type: text/plain\r\n"));
    assert_int_equal(td_lean_client_connections(f->c), 0);
}

static void test_connection_close_not_reused(void **state)
{
    struct fixture *f = *state;
    struct result r;
    post(f, "x", &r);
    int fd = srv_accept(f);
    char buf[4096];
    srv_read(f, fd, buf, sizeof(buf));
    srv_write(fd, "HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    pump_until_done(f, &r);
    assert_int_equal(r.status, 503);
    assert_int_equal(td_lean_client_connections(f->c), 0);
    close(fd);
}

/* The server closed a keep-alive connection while the client was about to reuse it: the request
 * fails before any byte of an answer, and goes once more on a new connection. */
static void test_stale_connection_retried_once(void **state)
{
    struct fixture *f = *state;
    struct result r;
    post(f, "first", &r);
    int fd = srv_accept(f);
    char buf[4096];
    srv_read(f, fd, buf, sizeof(buf));
    srv_write(fd, "HTTP/1.1 204 No Content\r\n\r\n");
    pump_until_done(f, &r);
    close(fd); /* no loop iteration: the client has not seen it yet */
    post(f, "second", &r);
    int fd2 = srv_accept(f);
    srv_read(f, fd2, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\r\n\r\nsecond"));
    srv_write(fd2, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    pump_until_done(f, &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_string_equal(r.body, "ok");
    close(fd2);
}

/* A new connection that is closed without an answer is not retried: the function took it. */
static void test_fresh_connection_not_retried(void **state)
{
    struct fixture *f = *state;
    struct result r;
    post(f, "x", &r);
    int fd = srv_accept(f);
    char buf[4096];
    srv_read(f, fd, buf, sizeof(buf));
    close(fd);
    pump_until_done(f, &r);
    assert_int_equal(r.code, CURLE_GOT_NOTHING);
    assert_int_equal(accept(f->lfd, NULL, NULL), -1);
}

static void test_refused(void **state)
{
    struct fixture *f = *state;
    close(f->lfd); /* nobody listens on the port any more */
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct result r;
    post(f, "x", &r);
    pump_until_done(f, &r);
    assert_int_equal(r.code, CURLE_COULDNT_CONNECT);
    assert_int_equal(r.status, 0);
}

static void test_timeout_on_fake_clock(void **state)
{
    struct fixture *f = *state;
    struct result r;
    post(f, "x", &r);
    int fd = srv_accept(f);
    char buf[4096];
    srv_read(f, fd, buf, sizeof(buf));
    td_loop_run_once(f->loop, 0);
    assert_int_equal(r.calls, 0);
    fake_now += 10001; /* the request's 10 s */
    pump_until_done(f, &r);
    assert_int_equal(r.code, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(td_lean_client_connections(f->c), 0); /* its answer may still come */
    close(fd);
}

/* A body larger than the socket buffers goes out in pieces as the server reads (EPOLLOUT). */
static void test_large_body_partial_writes(void **state)
{
    struct fixture *f = *state;
    size_t n = 4u << 20;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'b', n);
    big[n] = '\0';
    struct result r;
    post(f, big, &r);
    int fd = srv_accept(f);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    char buf[65536];
    size_t got = 0;
    for (int i = 0; i < 100000 && got < n; i++) {
        ssize_t k = read(fd, buf, sizeof(buf));
        if (k > 0) {
            char *end = got == 0 ? strstr(buf, "\r\n\r\n") : NULL;
            got += end ? (size_t)k - (size_t)(end + 4 - buf) : (size_t)k;
        } else {
            td_loop_run_once(f->loop, 1);
        }
    }
    assert_int_equal(got, n);
    srv_write(fd, "HTTP/1.1 204 No Content\r\n\r\n");
    pump_until_done(f, &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 204);
    assert_int_equal(td_lean_client_connections(f->c), 1);
    close(fd);
    free(big);
}

/* An idle connection the server never closes is closed by the client after libcurl's 118 s. */
static void test_idle_connection_aged_out(void **state)
{
    struct fixture *f = *state;
    struct result r;
    post(f, "x", &r);
    int fd = srv_accept(f);
    char buf[4096];
    srv_read(f, fd, buf, sizeof(buf));
    srv_write(fd, "HTTP/1.1 204 No Content\r\n\r\n");
    pump_until_done(f, &r);
    assert_int_equal(td_lean_client_connections(f->c), 1);
    fake_now += 60000;
    td_loop_run_once(f->loop, 0);
    td_loop_run_once(f->loop, 0);
    assert_int_equal(td_lean_client_connections(f->c), 1); /* not yet */
    fake_now += 90000;
    for (int i = 0; i < 4; i++) {
        td_loop_run_once(f->loop, 0);
    }
    assert_int_equal(td_lean_client_connections(f->c), 0);
    close(fd);
}

/* A request still running when the client is freed: its arg is freed there (ASan checks). */
static void test_free_abandons(void **state)
{
    struct fixture *f = *state;
    struct td_lean_request *q = td_lean_request_new(f->t);
    char *body = strdup("owned");
    td_lean_request_body(q, body, strlen(body), true);
    struct result *r = calloc(1, sizeof(*r));
    assert_int_equal(td_lean_request_send(f->c, q, 10000, NULL, NULL, on_done, r), 0);
    int fd = srv_accept(f);
    assert_int_equal(td_lean_client_running(f->c), 1);
    close(fd);
}

/* A request line longer than the request's inline head buffer (a long path or query, as a
 * signed URL has) is sent whole; it was copied into the 1 KiB buffer unchecked (heap overrun,
 * seen by ASan). */
static void test_long_request_line(void **state)
{
    struct fixture *f = *state;
    enum { QLEN = 3000 };
    char *url = malloc(QLEN + 64), err[160];
    assert_non_null(url);
    int n = snprintf(url, QLEN + 64, "http://127.0.0.1:%d/fn?q=", f->port);
    memset(url + n, 'a', QLEN);
    url[n + QLEN] = '\0';
    struct td_lean_target *t = td_lean_target_new(f->c, url, err, sizeof(err));
    assert_non_null(t);
    struct td_lean_request *q = td_lean_request_new(t);
    assert_non_null(q);
    assert_int_equal(td_lean_request_header(q, "ce-id", "7"), 0);
    td_lean_request_body(q, "x", 1, false);
    struct result r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(td_lean_request_send(f->c, q, 10000, on_header, f, on_done, &r), 0);
    int fd = srv_accept(f);
    char *buf = malloc(QLEN + 4096);
    assert_non_null(buf);
    srv_read(f, fd, buf, QLEN + 4096);
    assert_memory_equal(buf, "POST /fn?q=aaaa", 15);
    char *sp = strstr(buf, " HTTP/1.1\r\n");
    assert_non_null(sp);
    assert_int_equal(sp - buf, (long)strlen("POST /fn?q=") + QLEN);
    assert_non_null(strstr(buf, "\r\nce-id: 7\r\n"));
    srv_write(fd, "HTTP/1.1 204 No Content\r\n\r\n");
    pump_until_done(f, &r);
    assert_int_equal(r.status, 204);
    close(fd);
    free(buf);
    td_lean_target_free(t);
    free(url);
}

static void test_targets(void **state)
{
    struct fixture *f = *state;
    char err[160];
    const char *bad[] = {"https://127.0.0.1/", "http://user:pw@127.0.0.1/", "ftp://127.0.0.1/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_null(td_lean_target_new(f->c, bad[i], err, sizeof(err)));
        assert_true(err[0] != '\0');
    }
    const char *good[] = {"http://localhost:8080", "http://[::1]:9/x", "http://10.0.0.1",
                          "http://fn.default.svc.cluster.local/"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct td_lean_target *t = td_lean_target_new(f->c, good[i], err, sizeof(err));
        assert_non_null(t);
        td_lean_target_free(t);
    }
    struct td_lean_request *q = td_lean_request_new(f->t);
    assert_int_equal(td_lean_request_header(q, "X-Bad", "a\r\nInjected: 1"), -1);
    td_lean_request_free(q);
}

/* A host name: looked up by the resolver thread while the loop runs, then connected to; the
 * next request reuses the connection. localhost may answer ::1 first while the server listens on
 * 127.0.0.1 only (Debian's /etc/hosts): the client then goes on to the next address. */
static void test_host_name(void **state)
{
    struct fixture *f = *state;
    char url[128], err[160];
    snprintf(url, sizeof(url), "http://localhost:%d/fn", f->port);
    struct td_lean_target *t = td_lean_target_new(f->c, url, err, sizeof(err));
    assert_non_null(t);
    struct td_lean_target *saved = f->t;
    f->t = t;
    struct result r;
    post(f, "{}", &r);
    int fd = srv_accept(f);
    char buf[4096], want[128];
    srv_read(f, fd, buf, sizeof(buf));
    snprintf(want, sizeof(want), "\r\nHost: localhost:%d\r\n", f->port);
    assert_non_null(strstr(buf, want));
    srv_write(fd, "HTTP/1.1 204 No Content\r\n\r\n");
    pump_until_done(f, &r);
    assert_int_equal(r.code, CURLE_OK);
    assert_int_equal(r.status, 204);
    post(f, "{}", &r); /* the same connection, no lookup */
    srv_read(f, fd, buf, sizeof(buf));
    srv_write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    pump_until_done(f, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(accept(f->lfd, NULL, NULL), -1);
    close(fd);
    f->t = saved;
    td_lean_target_free(t);
}

/* A name that does not resolve fails the request as libcurl does (CURLE_COULDNT_RESOLVE_HOST),
 * from the loop. RFC 6761 reserves .invalid: no resolver may answer it. Waits in real time (a
 * lookup through an unreachable DNS server takes its timeouts), at most 60 s. */
static void test_host_name_unresolvable(void **state)
{
    struct fixture *f = *state;
    td_clock_set(NULL); /* the lookup's own time is real */
    char err[160];
    struct td_lean_target *t =
        td_lean_target_new(f->c, "http://no-such-function.invalid:8080/", err, sizeof(err));
    assert_non_null(t);
    struct td_lean_request *q = td_lean_request_new(t);
    assert_non_null(q);
    struct result r = {0};
    assert_int_equal(td_lean_request_send(f->c, q, 60000, NULL, NULL, on_done, &r), 0);
    for (int i = 0; i < 12000 && r.calls == 0; i++) {
        td_loop_run_once(f->loop, 5);
    }
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.code, CURLE_COULDNT_RESOLVE_HOST);
    td_lean_target_free(t);
}

/* The client freed while a lookup is on its way: nothing is called, nothing leaks (ASan). */
static void test_free_during_lookup(void **state)
{
    struct fixture *f = *state;
    char url[128], err[160];
    snprintf(url, sizeof(url), "http://localhost:%d/", f->port);
    struct td_lean_target *t = td_lean_target_new(f->c, url, err, sizeof(err));
    assert_non_null(t);
    struct td_lean_request *q = td_lean_request_new(t);
    struct result *r = calloc(1, sizeof(*r)); /* freed by the client, as td_http_client_free does */
    assert_int_equal(td_lean_request_send(f->c, q, 10000, NULL, NULL, on_done, r), 0);
    td_lean_target_free(t);
    td_lean_client_free(f->c); /* cancels its lookup: no callback later */
    f->c = td_lean_client_new(f->loop, f->res);
    /* the resolver (the loop's) lives on: its answer comes back and is dropped, never handed to
     * the freed pool or request (ASan would see it) */
    for (int i = 0; i < PUMP_MAX && td_resolver_pending(f->res) > 0; i++) {
        td_loop_run_once(f->loop, 5);
    }
    assert_int_equal(td_resolver_pending(f->res), 0);
}

/* ---- names with several addresses, through a made-up resolver (td_resolver_set_lookup) ---- */

static int fake_port;          /* the fixture's listening port */
static int fake_lookups;       /* lookups answered (the worker thread writes, the test reads after
                                  the answer came through the loop's eventfd: ordered) */
static const char *fake_first; /* the address answered first ("127.0.0.2": nobody listens) */
static bool fake_fail;

static void add_v4(struct td_resolve_result *out, const char *ip)
{
    struct sockaddr_in *a = (struct sockaddr_in *)&out->addrs[out->n];
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)fake_port);
    inet_pton(AF_INET, ip, &a->sin_addr);
    out->lens[out->n++] = sizeof(*a);
}

static void fake_lookup(const char *host, const char *port, struct td_resolve_result *out)
{
    (void)host;
    (void)port;
    fake_lookups++;
    if (fake_fail) {
        out->err = EAI_NONAME;
        return;
    }
    add_v4(out, fake_first);
    add_v4(out, "127.0.0.1");
}

/* A name whose first address refuses (127.0.0.2, nobody listens there) and whose second one is
 * the server: a burst of requests that all need new connections at once reaches the server every
 * time (each failed connect moves the pool on from the address it used, never back and forth),
 * the pool then stays on the good address, and the refusals had the name looked up again. The
 * same with a first address that fails at once (255.255.255.255: connect() says EACCES without
 * SO_BROADCAST). */
static void burst_through_bad_first(struct fixture *f, const char *bad)
{
    fake_port = f->port;
    fake_first = bad;
    fake_fail = false;
    fake_lookups = 0;
    td_resolver_set_lookup(fake_lookup);
    char err[160];
    struct td_lean_target *t = td_lean_target_new(f->c, "http://fn.test:1/", err, sizeof(err));
    assert_non_null(t);
    enum { B = 8 };
    struct result r[B];
    for (int i = 0; i < B; i++) {
        struct td_lean_request *q = td_lean_request_new(t);
        assert_non_null(q);
        memset(&r[i], 0, sizeof(r[i]));
        assert_int_equal(td_lean_request_send(f->c, q, 10000, NULL, NULL, on_done, &r[i]), 0);
    }
    int fds[B], nfd = 0;
    for (int i = 0; i < PUMP_MAX && nfd < B; i++) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd >= 0) {
            fds[nfd++] = fd;
        } else {
            td_loop_run_once(f->loop, 5);
        }
    }
    assert_int_equal(nfd, B); /* every request reached the server */
    char buf[4096];
    for (int i = 0; i < B; i++) {
        srv_read(f, fds[i], buf, sizeof(buf));
        srv_write(fds[i], "HTTP/1.1 204 No Content\r\n\r\n");
    }
    for (int i = 0; i < B; i++) {
        pump_until_done(f, &r[i]);
        assert_int_equal(r[i].code, CURLE_OK);
        assert_int_equal(r[i].status, 204);
    }
    for (int i = 0; i < B; i++) {
        close(fds[i]);
    }
    td_lean_target_free(t);
    td_resolver_set_lookup(NULL);
}

static void test_name_next_address_refused(void **state)
{
    burst_through_bad_first(*state, "127.0.0.2");
}

static void test_name_next_address_at_once(void **state)
{
    burst_through_bad_first(*state, "255.255.255.255");
}

/* A failed lookup fails the requests that waited for it, and only those: the next request,
 * started from the first one's callback (as the sink does with its next delivery), waits for a
 * lookup of its own. */
struct chain {
    struct fixture *f;
    struct td_lean_target *t;
    struct result first, second;
};

static void on_first_done(struct td_http_request *req, CURLcode code, long status, int64_t ra,
                          const unsigned char *body, size_t len, void *arg)
{
    struct chain *ch = arg;
    on_done(req, code, status, ra, body, len, &ch->first);
    struct td_lean_request *q = td_lean_request_new(ch->t);
    assert_non_null(q);
    assert_int_equal(td_lean_request_send(ch->f->c, q, 10000, NULL, NULL, on_done, &ch->second), 0);
}

static void test_failed_lookup_fails_only_its_waiters(void **state)
{
    struct fixture *f = *state;
    fake_port = f->port;
    fake_fail = true;
    fake_lookups = 0;
    td_resolver_set_lookup(fake_lookup);
    char err[160];
    struct chain ch = {.f = f};
    ch.t = td_lean_target_new(f->c, "http://fn.test:1/", err, sizeof(err));
    assert_non_null(ch.t);
    struct td_lean_request *q = td_lean_request_new(ch.t);
    assert_int_equal(td_lean_request_send(f->c, q, 10000, NULL, NULL, on_first_done, &ch), 0);
    pump_until_done(f, &ch.first);
    assert_int_equal(ch.first.code, CURLE_COULDNT_RESOLVE_HOST);
    assert_int_equal(ch.second.calls, 0); /* not failed by the answer it did not wait for */
    pump_until_done(f, &ch.second);
    assert_int_equal(ch.second.code, CURLE_COULDNT_RESOLVE_HOST);
    assert_int_equal(fake_lookups, 2); /* it had a lookup of its own */
    td_lean_target_free(ch.t);
    td_resolver_set_lookup(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_bytes_and_split_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_and_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_after_answer_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_mid_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_delimited_and_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_close_not_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_connection_retried_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fresh_connection_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_on_fake_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_body_partial_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_connection_aged_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_abandons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_request_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_name_unresolvable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_during_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_next_address_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_next_address_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_lookup_fails_only_its_waiters, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
