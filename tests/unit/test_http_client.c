/* test_http_client.c - the HTTP client's sockets on the loop (http_client.c): a keep-alive
 * connection stays registered with epoll between requests (parked, not deleted and added back
 * per request), is reused, and when the server closes it while it is idle the loop stops
 * watching it (no busy loop on a level-triggered EOF) and the next request opens a new one.
 * The server is a small HTTP/1.1 responder on a thread of the test (204 to every request).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_client.h"
#include "loop.h"

#define MAXCONN 8

/* ---- the server ---- */

struct server {
    int lfd;
    int port;
    int ctl[2]; /* 'c': close every connection; 'q': quit */
    pthread_t thread;
    atomic_int accepted;
    atomic_int answered;
};

/* Answers every complete request in buf[0..*len) with a 204; keeps what is left. */
static void answer(int fd, char *buf, size_t *len, atomic_int *answered)
{
    for (;;) {
        char *end = memmem(buf, *len, "\r\n\r\n", 4);
        if (!end) {
            return;
        }
        size_t head = (size_t)(end - buf) + 4;
        size_t body = 0;
        for (char *p = buf; p < end; p++) {
            if ((p == buf || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0) {
                body = strtoul(p + 15, NULL, 10);
            }
        }
        if (*len < head + body) {
            return;
        }
        const char *ok = "HTTP/1.1 204 No Content\r\n\r\n";
        /* counted before the answer leaves: once written, the client may see it and the test
         * read the count before this thread got here */
        atomic_fetch_add(answered, 1);
        assert_int_equal(write(fd, ok, strlen(ok)), (ssize_t)strlen(ok));
        memmove(buf, buf + head + body, *len - head - body);
        *len -= head + body;
    }
}

static void *serve(void *arg)
{
    struct server *s = arg;
    int conns[MAXCONN];
    char bufs[MAXCONN][4096];
    size_t lens[MAXCONN];
    int n = 0;
    for (;;) {
        struct pollfd pfd[MAXCONN + 2] = {{.fd = s->lfd, .events = POLLIN},
                                          {.fd = s->ctl[0], .events = POLLIN}};
        for (int i = 0; i < n; i++) {
            pfd[i + 2] = (struct pollfd){.fd = conns[i], .events = POLLIN};
        }
        if (poll(pfd, (nfds_t)n + 2, -1) < 0) {
            continue;
        }
        if (pfd[1].revents & POLLIN) {
            char c;
            assert_int_equal(read(s->ctl[0], &c, 1), 1);
            for (int i = 0; i < n; i++) {
                close(conns[i]);
            }
            n = 0;
            if (c == 'q') {
                return NULL;
            }
            continue;
        }
        if ((pfd[0].revents & POLLIN) && n < MAXCONN) {
            int fd = accept(s->lfd, NULL, NULL);
            if (fd >= 0) {
                atomic_fetch_add(&s->accepted, 1);
                lens[n] = 0;
                conns[n++] = fd;
            }
        }
        for (int i = 0; i < n; i++) {
            if (!(pfd[i + 2].revents & (POLLIN | POLLHUP | POLLERR)) || pfd[i + 2].fd != conns[i]) {
                continue;
            }
            ssize_t r = read(conns[i], bufs[i] + lens[i], sizeof(bufs[i]) - lens[i]);
            if (r <= 0) {
                close(conns[i]);
                conns[i] = conns[n - 1];
                lens[i] = lens[n - 1];
                memcpy(bufs[i], bufs[n - 1], lens[i]);
                n--;
                break; /* the pollfd indexes moved: poll again */
            }
            lens[i] += (size_t)r;
            answer(conns[i], bufs[i], &lens[i], &s->answered);
        }
    }
}

static void server_start(struct server *s)
{
    memset(s, 0, sizeof(*s));
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    socklen_t alen = sizeof(a);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pipe(s->ctl), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_ctl(struct server *s, char c)
{
    assert_int_equal(write(s->ctl[1], &c, 1), 1);
}

static void server_stop(struct server *s)
{
    server_ctl(s, 'q');
    pthread_join(s->thread, NULL);
    close(s->lfd);
    close(s->ctl[0]);
    close(s->ctl[1]);
}

/* ---- the client ---- */

struct result {
    bool done;
    CURLcode code;
    long status;
};

static void on_done(struct td_http_request *req, CURLcode code, long status, int64_t retry_after_ms,
                    const unsigned char *body, size_t len, void *arg)
{
    (void)req;
    (void)retry_after_ms;
    (void)body;
    (void)len;
    struct result **r = arg;
    (*r)->done = true;
    (*r)->code = code;
    (*r)->status = status;
    free(r); /* the client's contract: done frees arg */
}

/* POSTs to the server and runs the loop until the answer. */
static void post(struct td_loop *loop, struct td_http_client *c, int port)
{
    struct result res = {0};
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    CURL *easy = td_http_client_easy(c);
    assert_non_null(easy);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "{\"x\":1}");
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 5000L);
    struct result **arg = malloc(sizeof(*arg));
    assert_non_null(arg);
    *arg = &res;
    assert_non_null(td_http_client_send(c, easy, NULL, on_done, arg));
    int64_t until = td_now_ms() + 5000;
    while (!res.done && td_now_ms() < until) {
        assert_true(td_loop_run_once(loop, 100) >= 0);
    }
    assert_true(res.done);
    assert_int_equal(res.code, CURLE_OK);
    assert_int_equal(res.status, 204);
}

/* How many fds the loop watches (the loop's own wake-up fd is not among them). */
static int watched(struct td_loop *loop)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++) {
        n += td_loop_fd_events(loop, fd) != 0;
    }
    return n;
}

static void test_idle_connection_stays_registered(void **state)
{
    (void)state;
    struct server s;
    server_start(&s);
    struct td_loop *loop = td_loop_new();
    struct td_http_client *c = td_http_client_new(loop);
    assert_non_null(c);
    for (int i = 0; i < 5; i++) {
        post(loop, c, s.port);
        /* the transfer ended: curl no longer watches the socket, but it stays in epoll (a
         * DEL here and an ADD on the next request was the churn) */
        assert_int_equal(watched(loop), 1);
    }
    assert_int_equal(atomic_load(&s.accepted), 1); /* one connection, reused */
    assert_int_equal(atomic_load(&s.answered), 5);
    td_http_client_free(c); /* closes it through closesocket_cb */
    assert_int_equal(watched(loop), 0);
    td_loop_free(loop);
    server_stop(&s);
}

static void test_server_closes_idle_connection(void **state)
{
    (void)state;
    struct server s;
    server_start(&s);
    struct td_loop *loop = td_loop_new();
    struct td_http_client *c = td_http_client_new(loop);
    assert_non_null(c);
    post(loop, c, s.port);
    assert_int_equal(watched(loop), 1);
    server_ctl(&s, 'c'); /* the server closes the idle keep-alive connection */
    int64_t until = td_now_ms() + 3000;
    while (watched(loop) != 0 && td_now_ms() < until) {
        assert_true(td_loop_run_once(loop, 100) >= 0);
    }
    /* the loop let go of it at its EOF ... */
    assert_int_equal(watched(loop), 0);
    /* ... so the readable EOF no longer wakes the loop */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(td_loop_run_once(loop, 20), 0);
    }
    /* the next request finds the connection dead and opens another */
    post(loop, c, s.port);
    assert_int_equal(atomic_load(&s.accepted), 2);
    assert_int_equal(watched(loop), 1);
    post(loop, c, s.port);
    assert_int_equal(atomic_load(&s.accepted), 2);
    td_http_client_free(c);
    td_loop_free(loop);
    server_stop(&s);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_connection_stays_registered),
        cmocka_unit_test(test_server_closes_idle_connection),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
