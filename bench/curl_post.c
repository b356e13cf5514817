/* curl_post.c - the libcurl ceiling for bench/redis-http (DESIGN.md §6): a bare libcurl multi
 * loop that POSTs the same body, with the same binary-mode CloudEvent headers triggerd sends,
 * to the same URL with the same number of requests in flight, reusing its C easy handles and
 * connections. Any dispatcher built on libcurl multi does at least this much work per event.
 *
 *   curl_post URL BODY_FILE CONCURRENCY N
 *
 * Prints "<ok> <seconds> <failed> <cpu seconds>" on stdout; exit 0 when every request got a 2xx.
 */
#include <curl/curl.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: curl_post URL BODY_FILE CONCURRENCY N\n");
        return 1;
    }
    const char *url = argv[1];
    int conc = atoi(argv[3]);
    long want = atol(argv[4]);
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    static char body[1 << 20];
    size_t len = fread(body, 1, sizeof(body), f);
    fclose(f);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)conc);
    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "ce-specversion: 1.0");
    hdrs = curl_slist_append(hdrs, "ce-type: com.example.bench");
    hdrs = curl_slist_append(hdrs, "ce-source: /bench");
    hdrs = curl_slist_append(hdrs, "ce-id: 1700000000000-0");
    hdrs = curl_slist_append(hdrs, "ce-time: 2024-01-01T00:00:00.000Z");
    hdrs = curl_slist_append(hdrs, "Expect:");

    long started = 0, ok = 0, failed = 0;
    double t0 = now_s();
    for (int i = 0; i < conc && started < want; i++, started++) {
        CURL *e = curl_easy_init();
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_multi_add_handle(multi, e);
    }
    int running = 1;
    while (ok + failed < want) {
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE) {
                continue;
            }
            CURL *e = m->easy_handle;
            long code = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            if (m->data.result == CURLE_OK && code >= 200 && code < 300) {
                ok++;
            } else {
                failed++;
            }
            curl_multi_remove_handle(multi, e);
            if (started < want) {
                started++;
                curl_multi_add_handle(multi, e); /* reuse: keeps its connection */
            } else {
                curl_easy_cleanup(e);
            }
        }
        if (ok + failed < want) {
            curl_multi_poll(multi, NULL, 0, 100, NULL);
        }
    }
    double secs = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("%ld %.6f %ld %.3f\n", ok, secs, failed, cpu);
    curl_slist_free_all(hdrs);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
