/* test_procstat.c - unit tests for procstat.c: /proc/<pid>/stat parsing (a comm with spaces and
 * parentheses, short and malformed lines) and a read of this test's own process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "procstat.h"

/* A stat line whose comm holds ") (" and spaces: fields must be counted after the LAST ')'.
 * utime 300 + stime 100 ticks, starttime 5000 ticks, vsize 123456789, rss 250 pages. */
static const char LINE[] =
    "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 100 0 0 0 300 100 0 0 20 0 3 0 "
    "5000 123456789 250 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 "
    "1 0 0 0 0 0\n";

static void test_parse(void **state)
{
    (void)state;
    struct td_procstat ps;
    memset(&ps, 0, sizeof(ps));
    assert_int_equal(td_procstat_parse_stat(LINE, 100, 4096, 1700000000LL, &ps), 0);
    assert_true(ps.cpu_seconds == 4.0);
    assert_true(ps.start_time_seconds == 1700000050.0);
    assert_true(ps.virtual_bytes == 123456789.0);
    assert_true(ps.resident_bytes == 250.0 * 4096.0);
}

static void test_malformed(void **state)
{
    (void)state;
    struct td_procstat ps;
    assert_int_equal(td_procstat_parse_stat(NULL, 100, 4096, 0, &ps), -1);
    assert_int_equal(td_procstat_parse_stat("no parenthesis 1 2 3", 100, 4096, 0, &ps), -1);
    assert_int_equal(td_procstat_parse_stat("1 (x) S 1 2 3 4 5\n", 100, 4096, 0, &ps), -1);
    assert_int_equal(
        td_procstat_parse_stat("1 (x) S 1 2 3 4 5 6 7 8 9 10 x 1 2 3 4 5 6 7 8 9 10 11", 100, 4096,
                               0, &ps),
        -1);
    assert_int_equal(td_procstat_parse_stat(LINE, 0, 4096, 0, &ps), -1);
}

static void test_read_self(void **state)
{
    (void)state;
    struct td_procstat ps;
    assert_int_equal(td_procstat_read(&ps), 0);
    assert_true(ps.resident_bytes > 0);
    assert_true(ps.virtual_bytes >= ps.resident_bytes);
    assert_true(ps.cpu_seconds >= 0);
    assert_true(ps.open_fds >= 3);
    assert_true(ps.max_fds < 0 || ps.open_fds <= ps.max_fds);
    double now = (double)time(NULL);
    assert_true(ps.start_time_seconds <= now + 2 && ps.start_time_seconds > now - 600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_read_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
