/* test_lean_parse.c - the lean client's own URL and HTTP-date parsing (lean_parse.c), which
 * replaced libcurl's curl_url and curl_getdate on that path: the parts it gives are those
 * libcurl gave for the same URLs (the expectations below are what curl_url of libcurl 7.88
 * returned), what it refuses goes to libcurl, and parsing never loads libcurl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curl_api.h"
#include "fake_core.h"
#include "lean_parse.h"

static void test_urls(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host, *path, *query;
        long port;
    } cases[] = {
        {"http://127.0.0.1:8080/fn?x=1", "127.0.0.1", "/fn", "x=1", 8080},
        {"http://localhost:8080", "localhost", "/", NULL, 8080},
        {"http://[::1]:9/x", "[::1]", "/x", NULL, 9},
        {"http://10.0.0.1", "10.0.0.1", "/", NULL, 80},
        {"http://fn.default.svc.cluster.local/", "fn.default.svc.cluster.local", "/", NULL, 80},
        {"HTTP://Example.COM/Path", "Example.COM", "/Path", NULL, 80},
        {"http://h/a/./b/../c", "h", "/a/c", NULL, 80},
        {"http://h/a/b/..", "h", "/a/", NULL, 80},
        {"http://h/a/b/.", "h", "/a/b/", NULL, 80},
        {"http://h/../../x", "h", "/x", NULL, 80},
        {"http://h/a//../b", "h", "/a/b", NULL, 80},
        {"http://h/a/%2e%2e/b", "h", "/a/%2e%2e/b", NULL, 80},
        {"http://h/.hidden/..x/...", "h", "/.hidden/..x/...", NULL, 80},
        {"http://h//x", "h", "//x", NULL, 80},
        {"http://h/p?", "h", "/p", "", 80},
        {"http://h/p??", "h", "/p", "?", 80},
        {"http://h/p?a=1&b=/../c", "h", "/p", "a=1&b=/../c", 80},
        {"http://h/p?q#frag", "h", "/p", "q", 80},
        {"http://h/p#f?x", "h", "/p", NULL, 80},
        {"http://h:8080?x", "h", "/", "x", 8080},
        {"http://h:0080/x", "h", "/x", NULL, 80},
        {"http://h:65535/", "h", "/", NULL, 65535},
        {"http://[0:0::1]/", "[::1]", "/", NULL, 80},
        {"http://[FE80::AbC]/", "[FE80::AbC]", "/", NULL, 80},
        {"http://[FE80::0AbC]/", "[fe80::abc]", "/", NULL, 80},
        {"http://[::ffff:127.0.0.1]:81/", "[::ffff:127.0.0.1]", "/", NULL, 81},
        {"http://localhost.:8080/", "localhost.", "/", NULL, 8080},
        {"http://h/a\"b{c}|d", "h", "/a\"b{c}|d", NULL, 80},
        {"http://h/~u/!$&'()*+,;=:@/", "h", "/~u/!$&'()*+,;=:@/", NULL, 80},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct td_lean_url u;
        char err[160] = "";
        if (td_lean_url_parse(cases[i].url, &u, err, sizeof(err)) < 0) {
            fail_msg("%s: %s", cases[i].url, err);
        }
        assert_string_equal(u.host, cases[i].host);
        assert_string_equal(u.path, cases[i].path);
        assert_int_equal(u.port, cases[i].port);
        if (cases[i].query) {
            assert_non_null(u.query);
            assert_string_equal(u.query, cases[i].query);
        } else {
            assert_null(u.query);
        }
        td_lean_url_clear(&u);
    }
    struct td_lean_url u;
    char err[160];
    assert_int_equal(td_lean_url_parse("http://127.0.0.1/", &u, err, sizeof(err)), 0);
    assert_true(u.ip4 && !u.ip6);
    td_lean_url_clear(&u);
    assert_int_equal(td_lean_url_parse("http://[::1]/", &u, err, sizeof(err)), 0);
    assert_true(u.ip6 && !u.ip4);
    td_lean_url_clear(&u);
    assert_int_equal(td_lean_url_parse("http://fn/", &u, err, sizeof(err)), 0);
    assert_true(!u.ip6 && !u.ip4);
    td_lean_url_clear(&u);
    assert_false(fake_lib_mapped("libcurl"));
}

/* Refused, with why: these go to libcurl (as the first ones did before), which reads them. */
static void test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *url, *why;
    } cases[] = {
        {"https://127.0.0.1/", "not a plain http:// URL"},
        {"ftp://127.0.0.1/", "not a plain http:// URL"},
        {"http://user:pw@127.0.0.1/", "user info in the URL"},
        {"http://@127.0.0.1/", "user info in the URL"},
        {"http://:pw@127.0.0.1/", "user info in the URL"},
        {"http://[fe80::1%25eth0]/", "an IPv6 address with a zone, or not an IPv6 address"},
        {"http://h:0/", "a port out of range"},
        {"http://127.1/", "a numeric host that is not a dotted quad"},
        {"http://0x7f.0.0.1/", "a numeric host that is not a dotted quad"},
        {"http://2130706433/", "a numeric host that is not a dotted quad"},
        {"http://h:65536/", "not a URL"},
        {"http://h/p q", "not a URL"},
        {"http:///h/x", "not a URL"},
        {"http://h\r\n/", "not a URL"},
        {"127.0.0.1:8080", "not a plain http:// URL"},
        {"/just/a/path", "not a URL"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct td_lean_url u;
        char err[160] = "";
        if (td_lean_url_parse(cases[i].url, &u, err, sizeof(err)) == 0) {
            fail_msg("%s: accepted", cases[i].url);
        }
        assert_string_equal(err, cases[i].why);
    }
    char big[400];
    snprintf(big, sizeof(big), "http://%0300d/", 0);
    memset(big + 7, 'a', 300);
    struct td_lean_url u;
    char err[160];
    assert_int_equal(td_lean_url_parse(big, &u, err, sizeof(err)), -1);
    assert_false(fake_lib_mapped("libcurl"));
}

static void test_http_dates(void **state)
{
    (void)state;
    const time_t t = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_int_equal(td_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT"), t);
    assert_int_equal(td_http_date_parse("  Sun, 06 Nov 1994 08:49:37 GMT  "), t);
    assert_int_equal(td_http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT"), t);
    assert_int_equal(td_http_date_parse("Sun Nov  6 08:49:37 1994"), t);
    assert_int_equal(td_http_date_parse("Sun Nov 6 08:49:37 1994"), t);
    assert_int_equal(td_http_date_parse("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    assert_int_equal(td_http_date_parse("Wed, 01 Jan 2048 12:00:00 GMT"), 2461492800);
    assert_int_equal(td_http_date_parse("Tuesday, 01-Jan-30 00:00:00 GMT"), 1893456000);
    assert_int_equal(td_http_date_parse("Sat, 29 Feb 2020 23:59:59 GMT"), 1583020799);
    static const char *const bad[] = {
        "",
        "soon",
        "120",
        "Sun, 06 Nov 1994 08:49:37",     /* no zone */
        "Sun, 06 Nov 1994 08:49:37 PST", /* not GMT */
        "Sun, 6 Nov 1994 08:49:37 GMT",  /* IMF-fixdate has two-digit days */
        "Sun, 06 Nob 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT trailing",
        "Sunday, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37",
        "Fun, 06 Nov 1994 08:49:37 GMT",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (td_http_date_parse(bad[i]) != -1) {
            fail_msg("'%s' was read", bad[i]);
        }
    }
    assert_false(fake_lib_mapped("libcurl"));
}

/* The wait is measured against the wall clock given in ms, so a date whole seconds ahead is
 * never one second more (time(NULL) lags: lean_parse.h). */
static void test_retry_after(void **state)
{
    (void)state;
    const int64_t t_ms = (int64_t)784111777 * 1000; /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_int_equal(td_retry_after_ms("2", t_ms), 2000);
    assert_int_equal(td_retry_after_ms(" 0", t_ms), 0);
    assert_int_equal(td_retry_after_ms("99999999999999999999", t_ms), 86400 * 1000);
    assert_int_equal(td_retry_after_ms("86399", t_ms), 86399 * 1000);
    /* 3 s ahead of 08:49:37.000, read 1 ms and 999 ms into that second */
    assert_int_equal(td_retry_after_ms("Sun, 06 Nov 1994 08:49:40 GMT", t_ms + 1), 2999);
    assert_int_equal(td_retry_after_ms("Sun, 06 Nov 1994 08:49:40 GMT", t_ms + 999), 2001);
    assert_int_equal(td_retry_after_ms("  Sun, 06 Nov 1994 08:49:40 GMT", t_ms), 3000);
    assert_int_equal(td_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", t_ms), 0);
    assert_int_equal(td_retry_after_ms("Sun, 06 Nov 1994 08:49:30 GMT", t_ms), 0);
    assert_int_equal(td_retry_after_ms("Wed, 01 Jan 2048 12:00:00 GMT", t_ms), 86400 * 1000);
    assert_int_equal(td_retry_after_ms("soon", t_ms), 0);
    assert_int_equal(td_retry_after_ms("", t_ms), 0);
    assert_int_equal(td_retry_after_ms("-5", t_ms), 0);
    assert_false(fake_lib_mapped("libcurl"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_http_dates),
        cmocka_unit_test(test_retry_after),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    /* nothing above touched libcurl */
    if (td_curl_loaded()) {
        fprintf(stderr, "libcurl was loaded\n");
        return 1;
    }
    return rc;
}
