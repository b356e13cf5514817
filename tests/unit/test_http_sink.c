/* test_http_sink.c - the HTTP sink's target: the service: shorthand resolves to the cluster
 * DNS name, in the pod's own namespace unless one is given, and credentials never reach dest.
 * And an attempt that cannot start because bearer_file cannot be read frees everything it
 * built (the structured-mode body leaked there). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <malloc.h>

#include "cloudevent.h"
#include "config.h"
#include "http_conf.h"
#include "http_client.h"
#include "log.h"
#include "loop.h"
#include "sink.h"

static char *dest_of(struct td_conf_sink *conf)
{
    char err[256] = "";
    struct td_loop *loop = td_loop_new();
    struct td_http_client *http = td_http_client_new(loop);
    struct td_sink *k = td_sink_new(conf, loop, http, err, sizeof(err));
    assert_non_null(k);
    char *dest = strdup(k->dest);
    td_sink_free(k);
    td_http_client_free(http);
    td_loop_free(loop);
    return dest;
}

/* An http sink's configuration around SETTINGS, as the loader would make it. */
static struct td_conf_sink http_conf(const char *name, struct td_conf_http_sink *settings)
{
    struct td_conf_sink conf = {.name = (char *)name, .kind = TD_SINK_HTTP, .timeout_ms = 1000};
    conf.plugin = &td_sink_desc_for(TD_SINK_HTTP)->conf;
    conf.settings = settings;
    return conf;
}

static struct td_conf_sink service(const char *name, const char *ns, int port)
{
    static struct td_conf_http_sink http; /* one sink at a time */
    memset(&http, 0, sizeof(http));
    http.service_name = (char *)name;
    http.service_namespace = (char *)ns;
    http.service_port = port;
    return http_conf("svc", &http);
}

static void test_service_given_namespace(void **state)
{
    unsetenv("TD_CLUSTER_DOMAIN");
    struct td_conf_sink conf = service("resize", "media", 80); /* the table's default */
    char *dest = dest_of(&conf);
    assert_string_equal(dest, "http://resize.media.svc.cluster.local/");
    free(dest);
    conf = service("resize", "media", 8080);
    dest = dest_of(&conf);
    assert_string_equal(dest, "http://resize.media.svc.cluster.local:8080/");
    free(dest);
}

static void test_service_own_namespace_and_domain(void **state)
{
    setenv("POD_NAMESPACE", "team-a", 1);
    setenv("TD_CLUSTER_DOMAIN", "example.internal", 1);
    struct td_conf_sink conf = service("thumbs", NULL, 80);
    char *dest = dest_of(&conf);
    assert_string_equal(dest, "http://thumbs.team-a.svc.example.internal/");
    free(dest);
    unsetenv("POD_NAMESPACE");
    unsetenv("TD_CLUSTER_DOMAIN");
}

/* Through the loader: a trigger file without namespace must not get "default" filled in
 * before the sink can read POD_NAMESPACE (one place owns that default). */
static void test_service_namespace_through_loader(void **state)
{
    char path[] = "/tmp/td_http_sink_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *yaml = "version: 1\n"
                       "sinks:\n"
                       "  svc: {http: {service: {name: thumbs}}}\n";
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    struct td_errors errs = {0};
    struct td_config *cfg = td_config_load(path, &errs);
    unlink(path);
    assert_non_null(cfg);
    setenv("POD_NAMESPACE", "team-b", 1);
    unsetenv("TD_CLUSTER_DOMAIN");
    char *dest = dest_of(&cfg->sinks[0]);
    assert_string_equal(dest, "http://thumbs.team-b.svc.cluster.local/");
    free(dest);
    unsetenv("POD_NAMESPACE");
    td_config_free(cfg);
    td_errors_clear(&errs);
}

static void test_dest_without_credentials(void **state)
{
    struct td_conf_http_sink http = {.url = "https://user:pw@fn.example.com/api/x?code=K3Y"};
    struct td_conf_sink conf = http_conf("web", &http);
    char *dest = dest_of(&conf);
    assert_string_equal(dest, "https://fn.example.com/api/x");
    free(dest);
}

/* Bytes the C library's allocator has handed out and not got back (heap and mmap'd chunks). */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* A structured-mode attempt whose bearer_file cannot be read fails to start (-1, retryable,
 * the reason says why) and frees what it built: the JSON body, the headers, the easy handle.
 * The plain build sees a leak as heap growth over many attempts; under AddressSanitizer
 * (which keeps its own heap) LeakSanitizer reports it at exit, failing the test. */
static void test_bearer_file_unreadable_frees_the_body(void **state)
{
    td_log_init((enum td_log_level)(TD_LOG_ERROR + 1), TD_LOG_TEXT); /* quiet */
    char dir[] = "/tmp/td_http_sink_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char missing[64];
    snprintf(missing, sizeof(missing), "%s/token", dir); /* never created */
    struct td_conf_http_sink settings = {
        .url = "http://127.0.0.1:9/", .mode = TD_MODE_STRUCTURED, .auth.bearer_file = missing};
    struct td_conf_sink conf = http_conf("web", &settings);

    struct td_event *ev = td_event_new();
    assert_non_null(ev);
    assert_int_equal(td_event_set(ev, "specversion", "1.0"), 0);
    assert_int_equal(td_event_set(ev, "id", "e1"), 0);
    assert_int_equal(td_event_set(ev, "source", "/test"), 0);
    assert_int_equal(td_event_set(ev, "type", "com.example.t"), 0);
    assert_int_equal(td_event_set(ev, "datacontenttype", "text/plain"), 0);
    enum { DATA = 16384, N = 200 };
    char *data = malloc(DATA);
    assert_non_null(data);
    memset(data, 'x', DATA);
    assert_int_equal(td_event_set_data(ev, data, DATA), 0);
    free(data);

    char err[256] = "";
    struct td_loop *loop = td_loop_new();
    struct td_http_client *http = td_http_client_new(loop);
    struct td_sink *k = td_sink_new(&conf, loop, http, err, sizeof(err));
    assert_non_null(k);
    struct td_attempt a = {.ev = ev};
    /* the first attempt warms up what is kept on purpose (the easy handle pool) */
    assert_int_equal(k->ops->deliver(k, ev, &a), -1);
    assert_non_null(strstr(a.reason, "bearer_file cannot be used"));
    size_t before = heap_in_use();
    for (int i = 0; i < N; i++) {
        memset(a.reason, 0, sizeof(a.reason));
        assert_int_equal(k->ops->deliver(k, ev, &a), -1);
        assert_non_null(strstr(a.reason, "bearer_file cannot be used"));
    }
    size_t after = heap_in_use();
    /* a leaked body per attempt would be N * DATA (3.2 MB) */
    if (after > before && after - before > DATA * 8) {
        fail_msg("the heap grew by %zu bytes over %d failed attempts", after - before, N);
    }
    td_sink_free(k);
    td_http_client_free(http);
    td_loop_free(loop);
    td_event_unref(ev);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_given_namespace),
        cmocka_unit_test(test_service_own_namespace_and_domain),
        cmocka_unit_test(test_service_namespace_through_loader),
        cmocka_unit_test(test_dest_without_credentials),
        cmocka_unit_test(test_bearer_file_unreadable_frees_the_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
