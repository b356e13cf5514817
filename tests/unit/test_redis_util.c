/* test_redis_util.c - unit tests for Redis URL parsing (redis_util.h): host, default port,
 * user and password (percent-decoded), the database path, and the errors, whose messages
 * never contain the password. No server is needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "redis_util.h"

static void parse_ok(const char *url, struct td_redis_addr *a)
{
    char err[256] = "";

    if (td_redis_addr_parse(url, a, err, sizeof(err)) != 0) {
        fail_msg("%s: %s", url, err);
    }
}

static void test_host_only(void **state)
{
    struct td_redis_addr a;

    parse_ok("redis://localhost", &a);
    assert_string_equal(a.host, "localhost");
    assert_int_equal(a.port, 6379);
    assert_null(a.user);
    assert_null(a.password);
    assert_non_null(a.path);
    assert_string_equal(a.path, "");
    assert_int_equal(td_redis_addr_db(&a), 0);
    td_redis_addr_free(&a);
    assert_null(a.path);
    assert_null(a.password);
}

static void test_host_port_db(void **state)
{
    struct td_redis_addr a;

    parse_ok("redis://10.1.2.3:6380/5", &a);
    assert_string_equal(a.host, "10.1.2.3");
    assert_int_equal(a.port, 6380);
    assert_string_equal(a.path, "5");
    assert_int_equal(td_redis_addr_db(&a), 5);
    td_redis_addr_free(&a);

    parse_ok("redis://cache.example.com/12", &a);
    assert_string_equal(a.host, "cache.example.com");
    assert_int_equal(a.port, 6379);
    assert_int_equal(td_redis_addr_db(&a), 12);
    td_redis_addr_free(&a);

    parse_ok("redis://h:1/", &a);
    assert_int_equal(a.port, 1);
    assert_string_equal(a.path, "");
    assert_int_equal(td_redis_addr_db(&a), 0);
    td_redis_addr_free(&a);

    parse_ok("redis://h:65535/0?timeout=1", &a);
    assert_int_equal(a.port, 65535);
    assert_string_equal(a.path, "0");
    assert_int_equal(td_redis_addr_db(&a), 0);
    td_redis_addr_free(&a);
}

static void test_bad_db_path(void **state)
{
    struct td_redis_addr a;

    parse_ok("redis://h/clicks", &a);
    assert_string_equal(a.path, "clicks");
    assert_int_equal(td_redis_addr_db(&a), -1);
    td_redis_addr_free(&a);

    parse_ok("redis://h/3x", &a);
    assert_int_equal(td_redis_addr_db(&a), -1);
    td_redis_addr_free(&a);

    parse_ok("redis://h/-1", &a);
    assert_int_equal(td_redis_addr_db(&a), -1);
    td_redis_addr_free(&a);
}

static void test_user_and_password(void **state)
{
    struct td_redis_addr a;

    parse_ok("redis://alice:s3cret@redis.local:7000/2", &a);
    assert_string_equal(a.host, "redis.local");
    assert_int_equal(a.port, 7000);
    assert_string_equal(a.user, "alice");
    assert_string_equal(a.password, "s3cret");
    assert_int_equal(td_redis_addr_db(&a), 2);
    td_redis_addr_free(&a);
    assert_null(a.user);
    assert_null(a.password);
}

static void test_password_only(void **state)
{
    struct td_redis_addr a;

    parse_ok("redis://:hunter2@localhost:6379/0", &a);
    assert_null(a.user);
    assert_string_equal(a.password, "hunter2");
    assert_string_equal(a.host, "localhost");
    assert_int_equal(a.port, 6379);
    td_redis_addr_free(&a);
}

static void test_percent_encoded_password(void **state)
{
    struct td_redis_addr a;

    /* "p@ss:w/rd%" */
    parse_ok("redis://bob:p%40ss%3Aw%2Frd%25@h:6379/1", &a);
    assert_string_equal(a.user, "bob");
    assert_string_equal(a.password, "p@ss:w/rd%");
    assert_string_equal(a.host, "h");
    assert_int_equal(td_redis_addr_db(&a), 1);
    td_redis_addr_free(&a);

    /* an unencoded '@' in the password: the last '@' before the path ends the user info */
    parse_ok("redis://:a@b@h/0", &a);
    assert_string_equal(a.password, "a@b");
    assert_string_equal(a.host, "h");
    td_redis_addr_free(&a);

    /* a '%' that is not an escape stays as it is */
    parse_ok("redis://:100%zz@h", &a);
    assert_string_equal(a.password, "100%zz");
    td_redis_addr_free(&a);
}

static void parse_fails(const char *url, const char *want_in_err, const char *secret)
{
    struct td_redis_addr a;
    char err[256] = "";

    assert_int_equal(td_redis_addr_parse(url, &a, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    if (want_in_err && !strstr(err, want_in_err)) {
        fail_msg("%s: '%s' does not mention '%s'", url, err, want_in_err);
    }
    if (secret && strstr(err, secret)) {
        fail_msg("%s: the error '%s' leaks the password", url, err);
    }
    /* a failed parse leaves nothing to free (and freeing again is harmless) */
    assert_null(a.user);
    assert_null(a.password);
    assert_null(a.path);
    td_redis_addr_free(&a);
}

static void test_bad_port(void **state)
{
    parse_fails("redis://h:0/0", "port", NULL);
    parse_fails("redis://h:65536", "port", NULL);
    parse_fails("redis://h:-1", "port", NULL);
    parse_fails("redis://h:abc/0", "port", NULL);
    parse_fails("redis://h:/0", "port", NULL);
    parse_fails("redis://h:63 79/0", "port", NULL);
    parse_fails("redis://:TopSecret99@h:99999/0", "port", "TopSecret99");
    parse_fails("redis://user:TopSecret99@h:x/0", "port", "TopSecret99");
}

static void test_missing_host(void **state)
{
    parse_fails("redis://", "host", NULL);
    parse_fails("redis:///0", "host", NULL);
    parse_fails("redis://:6379/0", "host", NULL);
    parse_fails("redis://:TopSecret99@/0", "host", "TopSecret99");
    parse_fails("redis://alice:TopSecret99@:6379", "host", "TopSecret99");
}

static void test_host_too_long(void **state)
{
    char url[600];

    strcpy(url, "redis://:TopSecret99@");
    size_t n = strlen(url);
    memset(url + n, 'a', 300);
    strcpy(url + n + 300, ":6379/0");
    parse_fails(url, NULL, "TopSecret99");
}

static void test_rediss(void **state)
{
    struct td_redis_addr a;

    parse_ok("rediss://alice:s3cret@cache.example.com:6380/2", &a);
    assert_true(a.tls);
    assert_string_equal(a.host, "cache.example.com");
    assert_int_equal(a.port, 6380);
    assert_string_equal(a.user, "alice");
    assert_string_equal(a.password, "s3cret");
    assert_int_equal(td_redis_addr_db(&a), 2);
    td_redis_addr_free(&a);

    parse_ok("redis://h", &a);
    assert_false(a.tls);
    td_redis_addr_free(&a);
}

static void test_wrong_scheme(void **state)
{
    parse_fails("redisss://:TopSecret99@h:6380/0", "rediss://", "TopSecret99");
    parse_fails("http://h:6379", NULL, NULL);
    parse_fails("localhost:6379", NULL, NULL);
    parse_fails("", NULL, NULL);
}

static void test_error_never_contains_password(void **state)
{
    const char *const urls[] = {
        "rediss://u:Pw-0123456789@h:x/0", "redis://u:Pw-0123456789@h:bad/0",
        "redis://u:Pw-0123456789@/0",     "redis://:Pw-0123456789@:1/0",
        "redis://u:Pw-0123456789@h:0/0",  "unix://u:Pw-0123456789@h",
    };

    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        parse_fails(urls[i], NULL, "Pw-0123456789");
    }
}

static void test_reparse_into_same_struct(void **state)
{
    struct td_redis_addr a;

    parse_ok("redis://u:p@h1:1/1", &a);
    td_redis_addr_free(&a);
    parse_ok("redis://h2", &a);
    assert_string_equal(a.host, "h2");
    assert_null(a.user);
    assert_null(a.password);
    assert_int_equal(a.port, 6379);
    td_redis_addr_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_only),
        cmocka_unit_test(test_host_port_db),
        cmocka_unit_test(test_bad_db_path),
        cmocka_unit_test(test_user_and_password),
        cmocka_unit_test(test_password_only),
        cmocka_unit_test(test_percent_encoded_password),
        cmocka_unit_test(test_bad_port),
        cmocka_unit_test(test_missing_host),
        cmocka_unit_test(test_host_too_long),
        cmocka_unit_test(test_rediss),
        cmocka_unit_test(test_wrong_scheme),
        cmocka_unit_test(test_error_never_contains_password),
        cmocka_unit_test(test_reparse_into_same_struct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
