/* test_kafka_log.c - unit tests for librdkafka's log lines through our logger (kafka_log.h):
 * a burst of identical lines is logged once, then counted ("repeated N more times"); the first
 * occurrence is never hidden, other lines go through meanwhile, and a line whose window closed
 * is logged again. stderr is redirected to a temporary file with dup2 and the JSON lines are
 * read back with cJSON. Windows are closed with td_kafka_log_flush, not by waiting.
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

#include "kafka_log.h"
#include "log.h"

static int saved_stderr = -1;
static int capture_fd = -1;

static void capture_begin(void)
{
    char path[] = "/tmp/td_test_kafka_log_XXXXXX";
    capture_fd = mkstemp(path);
    assert_true(capture_fd >= 0);
    unlink(path);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(capture_fd, STDERR_FILENO) >= 0);
}

/* Restores stderr; returns the "msg" fields written, one per line (caller frees with
 * cJSON_Delete; an array of strings). */
static cJSON *capture_end(void)
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
    cJSON *msgs = cJSON_CreateArray();
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *obj = cJSON_Parse(line);
        assert_non_null(obj);
        cJSON *msg = cJSON_GetObjectItem(obj, "msg");
        assert_true(cJSON_IsString(msg));
        cJSON_AddItemToArray(msgs, cJSON_CreateString(msg->valuestring));
        cJSON_Delete(obj);
    }
    free(buf);
    return msgs;
}

static const char *msg_at(cJSON *msgs, int i)
{
    return cJSON_GetArrayItem(msgs, i)->valuestring;
}

static int setup(void **state)
{
    (void)state;
    td_log_init(TD_LOG_INFO, TD_LOG_JSON);
    return 0;
}

#define COMMITFAIL "Offset commit (manual) failed for 1/1 partition(s): Unknown member"

/* A hundred identical lines: the first is logged at once, the other 99 as one count. */
static void test_burst_logged_once_then_counted(void **state)
{
    (void)state;
    capture_begin();
    for (int i = 0; i < 100; i++) {
        td_kafka_log(4, TD_LOG_WARN, "k", NULL, "COMMITFAIL", COMMITFAIL);
    }
    cJSON *before = capture_end();
    assert_int_equal(cJSON_GetArraySize(before), 1);
    assert_string_equal(msg_at(before, 0), "librdkafka COMMITFAIL: " COMMITFAIL);
    cJSON_Delete(before);

    capture_begin();
    td_kafka_log_flush();
    cJSON *after = capture_end();
    assert_int_equal(cJSON_GetArraySize(after), 1);
    assert_non_null(strstr(msg_at(after, 0), "librdkafka COMMITFAIL: " COMMITFAIL));
    assert_non_null(strstr(msg_at(after, 0), "(repeated 99 more times in "));
    cJSON_Delete(after);
}

/* Other lines (another text, another source, another level) are not held back by a burst, and
 * once a window is closed the same line is logged again. A line seen once gets no count. */
static void test_other_lines_pass_and_window_reopens(void **state)
{
    (void)state;
    capture_begin();
    td_kafka_log(4, TD_LOG_WARN, "k", NULL, "FAIL", "broker down");
    td_kafka_log(4, TD_LOG_WARN, "k", NULL, "FAIL", "broker down");
    td_kafka_log(4, TD_LOG_WARN, "other", NULL, "FAIL", "broker down");
    td_kafka_log(4, TD_LOG_WARN, "k", NULL, "FAIL", "another text");
    td_kafka_log(3, TD_LOG_ERROR, "k", NULL, "FAIL", "broker down");
    td_kafka_log(4, TD_LOG_WARN, "k", "sink 'dead'", "FAIL", "broker down");
    td_kafka_log_flush();
    td_kafka_log(4, TD_LOG_WARN, "k", NULL, "FAIL", "broker down");
    td_kafka_log_flush();
    cJSON *msgs = capture_end();
    assert_int_equal(cJSON_GetArraySize(msgs), 7);
    assert_string_equal(msg_at(msgs, 0), "librdkafka FAIL: broker down");
    assert_string_equal(msg_at(msgs, 1), "librdkafka FAIL: broker down"); /* source other */
    assert_string_equal(msg_at(msgs, 2), "librdkafka FAIL: another text");
    assert_string_equal(msg_at(msgs, 3), "librdkafka FAIL: broker down"); /* error level */
    assert_string_equal(msg_at(msgs, 4), "sink 'dead': librdkafka FAIL: broker down");
    assert_non_null(
        strstr(msg_at(msgs, 5), "librdkafka FAIL: broker down (repeated 1 more times in "));
    assert_string_equal(msg_at(msgs, 6), "librdkafka FAIL: broker down"); /* a new window */
    cJSON_Delete(msgs);
}

/* Lines below the log level are neither logged nor counted. */
static void test_below_level_not_counted(void **state)
{
    (void)state;
    capture_begin();
    for (int i = 0; i < 5; i++) {
        td_kafka_log(7, TD_LOG_WARN, "k", NULL, "FETCH", "debug line");
    }
    td_kafka_log_flush();
    cJSON *msgs = capture_end();
    assert_int_equal(cJSON_GetArraySize(msgs), 0);
    cJSON_Delete(msgs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_logged_once_then_counted),
        cmocka_unit_test(test_other_lines_pass_and_window_reopens),
        cmocka_unit_test(test_below_level_not_counted),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
