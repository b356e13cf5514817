/* lean_post.c - triggerd's lean HTTP client alone (issue 14, goal 6): a loop that POSTs the same
 * body, with the same binary-mode CloudEvent headers curl_post.c and wrk send, to the same URL
 * with the same number of requests in flight, through broker/runtime/http_lean.c on the daemon's
 * own event loop. Each request is built as the HTTP sink builds one (a request, its header lines,
 * the borrowed body, send), so the figure is the client's cost per request without a source,
 * normalization or routing around it: the counterpart of curl_post.c for libcurl, put beside wrk.
 *
 *   lean_post URL BODY_FILE CONCURRENCY N
 *
 * Prints "<ok> <seconds> <failed> <cpu seconds>" on stdout; exit 0 when every request got a 2xx.
 * Built on demand: cmake --build build-release --target bench_lean_post.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "http_lean.h"
#include "loop.h"

struct post_state {
    struct td_loop *loop;
    struct td_lean_client *client;
    struct td_lean_target *target;
    const char *body;
    size_t len;
    long want, conc; /* requests in all, at most conc in flight */
    long started, inflight, ok, failed;
};

static const char *const headers[] = {
    "Content-Type: application/json", "ce-specversion: 1.0",
    "ce-type: com.example.bench",     "ce-source: /bench",
    "ce-id: 1700000000000-0",         "ce-time: 2024-01-01T00:00:00.000Z",
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_done(struct td_http_request *req, CURLcode code, long status, int64_t retry_after_ms,
                    const unsigned char *body, size_t len, void *arg);

/* Starts the next request; a request that cannot start counts as failed (and done is not called
 * for it, so it takes no slot). */
static void post_next(struct post_state *s)
{
    s->started++;
    struct td_lean_request *r = td_lean_request_new(s->target);
    if (r == NULL) {
        s->failed++;
        return;
    }
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        if (td_lean_request_line(r, headers[i], strlen(headers[i])) != 0) {
            td_lean_request_free(r);
            s->failed++;
            return;
        }
    }
    td_lean_request_body(r, s->body, s->len, false);
    if (td_lean_request_send(s->client, r, 10000, NULL, NULL, on_done, s) != 0) {
        s->failed++;
        return;
    }
    s->inflight++;
}

/* Tops the requests in flight up to conc. A request that cannot start does not take a slot:
 * the next one is tried at once, so the last answer never leaves the loop waiting for nothing. */
static void fill(struct post_state *s)
{
    while (s->inflight < s->conc && s->started < s->want) {
        post_next(s);
    }
}

static void on_done(struct td_http_request *req, CURLcode code, long status, int64_t retry_after_ms,
                    const unsigned char *body, size_t len, void *arg)
{
    (void)req;
    (void)retry_after_ms;
    (void)body;
    (void)len;
    struct post_state *s = arg;
    s->inflight--;
    if (code == CURLE_OK && status >= 200 && status < 300) {
        s->ok++;
    } else {
        s->failed++;
    }
    fill(s);
    if (s->inflight == 0) {
        td_loop_stop(s->loop);
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: lean_post URL BODY_FILE CONCURRENCY N\n");
        return 1;
    }
    struct post_state s = {.want = atol(argv[4]), .conc = atol(argv[3])};
    if (s.conc < 1 || s.want < 1) {
        fprintf(stderr, "lean_post: CONCURRENCY and N must be at least 1\n");
        return 1;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    static char body[1 << 20];
    s.len = fread(body, 1, sizeof(body), f);
    s.body = body;
    fclose(f);

    char err[256];
    s.loop = td_loop_new();
    s.client = s.loop ? td_lean_client_new(s.loop, NULL) : NULL;
    s.target = s.client ? td_lean_target_new(s.client, argv[1], err, sizeof(err)) : NULL;
    if (s.target == NULL) {
        fprintf(stderr, "lean_post: %s\n", s.client ? err : "out of memory");
        return 1;
    }
    double t0 = now_s();
    fill(&s);
    if (s.inflight > 0) {
        td_loop_run(s.loop);
    }
    double secs = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("%ld %.6f %ld %.3f\n", s.ok, secs, s.failed, cpu);
    td_lean_target_free(s.target);
    td_lean_client_free(s.client);
    td_loop_free(s.loop);
    return s.failed ? 1 : 0;
}
