/* test_log.c - unit tests for the logger (log.h): URL redaction, the level threshold, and the
 * lines themselves. stderr is redirected to a temporary file with dup2 so the JSON lines can
 * be parsed back with cJSON (fields, escaping, one line per call).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* ---- capturing stderr ---- */

static int saved_stderr = -1;
static int capture_fd = -1;

static void capture_begin(void)
{
    char path[] = "/tmp/td_test_log_XXXXXX";

    capture_fd = mkstemp(path);
    assert_true(capture_fd >= 0);
    unlink(path);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(capture_fd, STDERR_FILENO) >= 0);
}

/* Restores stderr and returns what was written (malloc'd, NUL-terminated). */
static char *capture_end(void)
{
    fflush(stderr);
    assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
    close(saved_stderr);
    saved_stderr = -1;
    off_t size = lseek(capture_fd, 0, SEEK_END);
    assert_true(size >= 0);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(pread(capture_fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    close(capture_fd);
    capture_fd = -1;
    return buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;

    for (; *s; s++) {
        n += *s == '\n';
    }
    return n;
}

static int reset_log(void **state)
{
    if (saved_stderr >= 0) { /* a failed assertion left stderr redirected */
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        saved_stderr = -1;
    }
    if (capture_fd >= 0) {
        close(capture_fd);
        capture_fd = -1;
    }
    td_log_init(TD_LOG_INFO, TD_LOG_TEXT);
    return 0;
}

/* Parses the one JSON line in out (which must end with a newline). */
static cJSON *parse_line(const char *out)
{
    size_t len = strlen(out);

    assert_true(len > 0);
    assert_int_equal(out[len - 1], '\n');
    assert_int_equal(count_lines(out), 1);
    cJSON *j = cJSON_ParseWithLength(out, len - 1);
    if (!j) {
        fail_msg("not JSON: %s", out);
    }
    assert_true(cJSON_IsObject(j));
    return j;
}

static const char *jstr(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- td_log_redact_url ---- */

static void redact(const char *url, const char *want)
{
    char out[512];

    memset(out, 'Z', sizeof(out));
    td_log_redact_url(url, out, sizeof(out));
    assert_string_equal(out, want);
}

static void test_redact_credentials(void **state)
{
    redact("redis://:pw@h:1/0", "redis://h:1/0");
    redact("redis://user:pw@localhost:6379/2", "redis://localhost:6379/2");
    redact("amqp://guest:guest@localhost:5672/%2f", "amqp://localhost:5672/%2f");
    redact("http://admin:s3cr%40t@gateway.openfaas:8080/function/x",
           "http://gateway.openfaas:8080/function/x");
    redact("https://token@example.com", "https://example.com");
    /* an unencoded '@' inside the password: everything up to the last one goes */
    redact("redis://:p@ss@h/0", "redis://h/0");
}

static void test_redact_leaves_clean_urls(void **state)
{
    redact("redis://localhost:6379/0", "redis://localhost:6379/0");
    redact("http://resize.default.svc.cluster.local", "http://resize.default.svc.cluster.local");
    /* an '@' in the path or query is not user info */
    redact("http://h/users/@me", "http://h/users/@me");
    /* queries and fragments carry keys (Azure's ?code=): never kept */
    redact("http://h/users/@me?mail=a@b", "http://h/users/@me");
    redact("https://fn.azurewebsites.net/api/x?code=K3Y", "https://fn.azurewebsites.net/api/x");
    redact("http://h#frag@x", "http://h");
    redact("", "");
}

static void test_redact_null_and_small_buffer(void **state)
{
    char out[8];

    td_log_redact_url(NULL, out, sizeof(out));
    assert_string_equal(out, "(none)");
    td_log_redact_url("redis://:secretpw@a-long-host-name:6379/0", out, sizeof(out));
    assert_int_equal(strlen(out), sizeof(out) - 1);
    assert_null(strstr(out, "secret"));
    assert_string_equal(out, "redis:/");
}

static void test_redact_never_leaks(void **state)
{
    const char *const urls[] = {
        "redis://u:SeCrEt@h",    "redis://:SeCrEt@h:1/0",          "http://u:SeCrEt@h:8080/p?q=1",
        "amqp://u:SeCrEt@h/%2f", "kafka://u:SeCrEt@b1:9092/topic",
    };
    char out[256];

    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        td_log_redact_url(urls[i], out, sizeof(out));
        if (strstr(out, "SeCrEt")) {
            fail_msg("%s -> %s", urls[i], out);
        }
        assert_non_null(strstr(out, "://"));
    }
}

/* ---- levels ---- */

static void test_threshold(void **state)
{
    td_log_init(TD_LOG_WARN, TD_LOG_TEXT);
    assert_false(td_log_enabled(TD_LOG_DEBUG));
    assert_false(td_log_enabled(TD_LOG_INFO));
    assert_true(td_log_enabled(TD_LOG_WARN));
    assert_true(td_log_enabled(TD_LOG_ERROR));

    capture_begin();
    td_log_debug("t", "s", "i", "debug line");
    td_log_info("t", "s", "i", "info line");
    td_log_warn("t", "s", "i", "warn line");
    td_log_error("t", "s", "i", "error line");
    char *out = capture_end();
    assert_null(strstr(out, "debug line"));
    assert_null(strstr(out, "info line"));
    assert_non_null(strstr(out, "warn line"));
    assert_non_null(strstr(out, "error line"));
    assert_int_equal(count_lines(out), 2);
    free(out);

    td_log_init(TD_LOG_DEBUG, TD_LOG_TEXT);
    assert_true(td_log_enabled(TD_LOG_DEBUG));
    capture_begin();
    td_log_debug(NULL, NULL, NULL, "now %s", "visible");
    out = capture_end();
    assert_non_null(strstr(out, "now visible"));
    assert_non_null(strstr(out, "debug"));
    free(out);

    td_log_init(TD_LOG_ERROR, TD_LOG_JSON);
    capture_begin();
    td_log_warn(NULL, NULL, NULL, "dropped");
    out = capture_end();
    assert_string_equal(out, "");
    free(out);
}

/* ---- text lines ---- */

static void test_text_line(void **state)
{
    td_log_init(TD_LOG_INFO, TD_LOG_TEXT);
    capture_begin();
    td_log_info("resize", "clicks", "evt-9", "delivered in %d ms", 12);
    char *out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "info"));
    assert_non_null(strstr(out, "delivered in 12 ms"));
    assert_non_null(strstr(out, "trigger=resize"));
    assert_non_null(strstr(out, "source=clicks"));
    assert_non_null(strstr(out, "id=evt-9"));
    /* an ISO 8601 UTC timestamp first */
    assert_true(strlen(out) > 24);
    assert_int_equal(out[4], '-');
    assert_int_equal(out[10], 'T');
    assert_int_equal(out[23], 'Z');
    free(out);

    /* absent fields are left out */
    capture_begin();
    td_log_info(NULL, NULL, NULL, "plain");
    out = capture_end();
    assert_null(strstr(out, "trigger="));
    assert_null(strstr(out, "source="));
    assert_null(strstr(out, "id="));
    free(out);
}

/* ---- JSON lines ---- */

static void test_json_fields(void **state)
{
    td_log_init(TD_LOG_DEBUG, TD_LOG_JSON);
    capture_begin();
    td_log_warn("resize-uploads", "clicks", "1700000000000-0", "attempt %d failed (%s)", 2,
                "HTTP 503");
    char *out = capture_end();
    cJSON *j = parse_line(out);
    assert_string_equal(jstr(j, "level"), "warn");
    assert_string_equal(jstr(j, "msg"), "attempt 2 failed (HTTP 503)");
    assert_string_equal(jstr(j, "trigger"), "resize-uploads");
    assert_string_equal(jstr(j, "source"), "clicks");
    assert_string_equal(jstr(j, "id"), "1700000000000-0");
    const char *time = jstr(j, "time");
    assert_non_null(time);
    assert_int_equal(strlen(time), 24); /* 2024-01-02T03:04:05.678Z */
    assert_int_equal(time[10], 'T');
    assert_int_equal(time[23], 'Z');
    cJSON_Delete(j);
    free(out);

    const enum td_log_level levels[] = {TD_LOG_DEBUG, TD_LOG_INFO, TD_LOG_ERROR};
    const char *const names[] = {"debug", "info", "error"};
    for (size_t i = 0; i < 3; i++) {
        capture_begin();
        td_log(levels[i], NULL, NULL, NULL, "x");
        out = capture_end();
        j = parse_line(out);
        assert_string_equal(jstr(j, "level"), names[i]);
        /* absent fields are left out rather than written as null or "" */
        assert_null(cJSON_GetObjectItemCaseSensitive(j, "trigger"));
        assert_null(cJSON_GetObjectItemCaseSensitive(j, "source"));
        assert_null(cJSON_GetObjectItemCaseSensitive(j, "id"));
        cJSON_Delete(j);
        free(out);
    }
}

/* Lines about a traced event carry trace_id and span_id (lowercase hex), in both formats. */
static void test_trace_ids(void **state)
{
    static const uint8_t trace_id[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                         0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    static const uint8_t span_id[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
    const struct td_log_trace tr = {trace_id, span_id};
    td_log_init(TD_LOG_DEBUG, TD_LOG_JSON);
    capture_begin();
    td_log_t(TD_LOG_INFO, tr, "t", "s", "e-1", "delivered");
    char *out = capture_end();
    cJSON *j = parse_line(out);
    assert_string_equal(jstr(j, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(jstr(j, "span_id"), "00f067aa0ba902b7");
    assert_string_equal(jstr(j, "id"), "e-1");
    cJSON_Delete(j);
    free(out);

    td_log_init(TD_LOG_DEBUG, TD_LOG_TEXT);
    capture_begin();
    td_log_t(TD_LOG_INFO, tr, "t", "s", "e-1", "delivered");
    out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, " trace_id=4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_non_null(strstr(out, " span_id=00f067aa0ba902b7"));
    free(out);

    /* without a trace (tracing off) the fields are left out */
    capture_begin();
    td_log_t(TD_LOG_INFO, (struct td_log_trace){0}, "t", "s", "e-1", "delivered");
    out = capture_end();
    assert_null(strstr(out, "trace_id"));
    assert_null(strstr(out, "span_id"));
    free(out);
}

static void test_json_escaping(void **state)
{
    const char *nasty = "say \"hi\"\\ then\nnew line\ttab\r\x01 end";

    td_log_init(TD_LOG_INFO, TD_LOG_JSON);
    capture_begin();
    td_log_error("tr\"ig", "sr\nc", "i\\d", "%s", nasty);
    char *out = capture_end();
    /* the newline in the message did not split the line */
    cJSON *j = parse_line(out);
    assert_string_equal(jstr(j, "msg"), nasty);
    assert_string_equal(jstr(j, "trigger"), "tr\"ig");
    assert_string_equal(jstr(j, "source"), "sr\nc");
    assert_string_equal(jstr(j, "id"), "i\\d");
    cJSON_Delete(j);
    free(out);
}

static void test_json_many_lines(void **state)
{
    td_log_init(TD_LOG_INFO, TD_LOG_JSON);
    capture_begin();
    for (int i = 0; i < 50; i++) {
        td_log_info("t", NULL, NULL, "line %d", i);
    }
    char *out = capture_end();
    assert_int_equal(count_lines(out), 50);
    int n = 0;
    for (char *line = out, *nl; (nl = strchr(line, '\n')); line = nl + 1, n++) {
        cJSON *j = cJSON_ParseWithLength(line, (size_t)(nl - line));
        assert_non_null(j);
        char want[32];
        snprintf(want, sizeof(want), "line %d", n);
        assert_string_equal(jstr(j, "msg"), want);
        cJSON_Delete(j);
    }
    assert_int_equal(n, 50);
    free(out);
}

/* A very long message is cut, but the line stays one valid JSON object, whatever length the
 * escaped message reaches near the end of the line buffer. */
static void test_json_long_message_stays_valid(void **state)
{
    char msg[2100];

    td_log_init(TD_LOG_INFO, TD_LOG_JSON);
    for (size_t quotes = 1900; quotes <= 2047; quotes++) {
        /* each '"' escapes to two bytes: the escaped message ends at 2 * quotes + plain */
        size_t plain = 2047 - quotes;
        memset(msg, '"', quotes);
        memset(msg + quotes, 'a', plain);
        msg[quotes + plain] = '\0';
        capture_begin();
        td_log_warn("trigger-name", "source-name", "event-id", "%s", msg);
        char *out = capture_end();
        size_t len = strlen(out);
        assert_true(len > 0 && len <= 4096);
        assert_int_equal(out[len - 1], '\n');
        assert_int_equal(count_lines(out), 1);
        cJSON *j = cJSON_ParseWithLength(out, len - 1);
        if (!j) {
            fail_msg("%zu quotes: the line is not JSON: ...%s", quotes,
                     out + (len > 80 ? len - 80 : 0));
        }
        const char *m = jstr(j, "msg");
        assert_non_null(m);
        assert_int_equal(m[0], '"');
        /* a field that is written (it may be cut short) carries its own value */
        const char *trg = jstr(j, "trigger");
        if (trg) {
            assert_true(strncmp("trigger-name", trg, strlen(trg)) == 0);
        }
        cJSON_Delete(j);
        free(out);
    }
}

/* An id or a message with a newline must not forge a second line (issue 11, Low 6). */
static void test_text_escapes_controls(void **state)
{
    td_log_init(TD_LOG_INFO, TD_LOG_TEXT);
    capture_begin();
    td_log_info("t\tx", "s", "evt\n2026-01-01T00:00:00.000Z error forged=yes\r\x01\x7f\\",
                "bad \"%s\"", "nl\nin msg");
    char *out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "bad \"nl\\nin msg\""));
    assert_non_null(strstr(out, "trigger=t\\tx"));
    assert_non_null(
        strstr(out, "id=evt\\n2026-01-01T00:00:00.000Z error forged=yes\\r\\x01\\x7f\\\\"));
    for (const char *p = out; *p; p++) {
        assert_true(*p == '\n' ? p[1] == '\0' : (unsigned char)*p >= 0x20 && *p != 0x7f);
    }
    free(out);
}

static void test_text_long_message_one_line(void **state)
{
    char msg[5000];

    memset(msg, 'x', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    td_log_init(TD_LOG_INFO, TD_LOG_TEXT);
    capture_begin();
    td_log_info("t", "s", "i", "%s", msg);
    char *out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_true(strlen(out) <= 4096);
    assert_non_null(strstr(out, "xxxxxxxx"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_redact_credentials, reset_log),
        cmocka_unit_test_teardown(test_redact_leaves_clean_urls, reset_log),
        cmocka_unit_test_teardown(test_redact_null_and_small_buffer, reset_log),
        cmocka_unit_test_teardown(test_redact_never_leaks, reset_log),
        cmocka_unit_test_teardown(test_threshold, reset_log),
        cmocka_unit_test_teardown(test_text_line, reset_log),
        cmocka_unit_test_teardown(test_text_escapes_controls, reset_log),
        cmocka_unit_test_teardown(test_json_fields, reset_log),
        cmocka_unit_test_teardown(test_json_escaping, reset_log),
        cmocka_unit_test_teardown(test_trace_ids, reset_log),
        cmocka_unit_test_teardown(test_json_many_lines, reset_log),
        cmocka_unit_test_teardown(test_json_long_message_stays_valid, reset_log),
        cmocka_unit_test_teardown(test_text_long_message_one_line, reset_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
