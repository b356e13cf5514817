/* test_log_threads.c - the log settings change while other threads log (issue 13 item 6).
 *
 * A reload calls td_log_init on the loop thread while source threads and the HTTP thread log.
 * The level and format used to be plain globals, read more than once per line: a data race
 * (which the ThreadSanitizer build of this test reports) and lines that mixed the two formats
 * (a JSON opening with text fields after it). Here one thread flips the settings between
 * {debug, json} and {info, text} while this one logs; every line must be whole in one format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define LINES 20000

static atomic_bool done;

static void *flipper(void *arg)
{
    (void)arg;
    for (unsigned i = 0; !atomic_load(&done); i++) {
        if (i % 2) {
            td_log_init(TD_LOG_DEBUG, TD_LOG_JSON);
        } else {
            td_log_init(TD_LOG_INFO, TD_LOG_TEXT);
        }
    }
    return NULL;
}

static void check_line(const char *line, int *json, int *text)
{
    if (line[0] == '{') {
        cJSON *obj = cJSON_Parse(line);
        assert_non_null(obj); /* a mixed line (text fields after a JSON opening) fails here */
        assert_string_equal(cJSON_GetObjectItem(obj, "trigger")->valuestring, "trg");
        assert_string_equal(cJSON_GetObjectItem(obj, "source")->valuestring, "src");
        assert_string_equal(cJSON_GetObjectItem(obj, "id")->valuestring, "ev-1");
        cJSON_Delete(obj);
        (*json)++;
    } else {
        assert_non_null(strstr(line, " info  "));
        assert_non_null(strstr(line, " trigger=trg source=src id=ev-1"));
        assert_null(strchr(line, '{'));
        (*text)++;
    }
}

static void test_settings_change_while_logging(void **state)
{
    (void)state;
    char path[] = "/tmp/td_test_log_threads_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0 && dup2(fd, STDERR_FILENO) >= 0);

    atomic_store(&done, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flipper, NULL), 0);
    for (int i = 0; i < LINES; i++) {
        td_log_info("trg", "src", "ev-1", "line %d", i);
    }
    atomic_store(&done, true);
    pthread_join(th, NULL);
    td_log_init(TD_LOG_INFO, TD_LOG_TEXT);

    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    assert_true(size > 0);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    close(fd);

    int json = 0, text = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        check_line(line, &json, &text);
    }
    free(buf);
    assert_int_equal(json + text, LINES); /* info is logged at both levels: one line per call */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings_change_while_logging),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
