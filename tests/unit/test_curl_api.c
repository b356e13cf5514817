/* test_curl_api.c - libcurl loaded on first use (curl_api.c): nothing maps it before a call
 * needs it, the functions that only release never load it, and the calls reach libcurl with
 * their arguments intact: setopt's one argument of each type (long, pointer, function, curl_off_t),
 * getinfo's pointer, a multi handle's options, a transfer (file://, so nothing listens).
 * Not loadable (LD_LIBRARY_PATH naming a broken libcurl.so.4) is
 * tests/integration/test_lazy_curl.py's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "curl_api.h"
#include "fake_core.h"

struct sink {
    char buf[64];
    size_t len;
};

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t len = size * n;
    if (s->len + len >= sizeof(s->buf)) {
        return 0;
    }
    memcpy(s->buf + s->len, p, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return len;
}

static void test_lazy(void **state)
{
    (void)state;
    /* releasing what never was: no load */
    curl_free(NULL);
    curl_slist_free_all(NULL);
    curl_easy_cleanup(NULL);
    curl_global_cleanup();
    assert_false(td_curl_loaded());
    assert_false(fake_lib_mapped("libcurl"));

    char err[256] = "";
    assert_true(td_curl_available(err, sizeof(err)));
    assert_true(td_curl_loaded());
    assert_true(fake_lib_mapped("libcurl"));
    assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    assert_string_equal(curl_easy_strerror(CURLE_OK), "No error");
}

static void test_calls(void **state)
{
    (void)state;
    char path[] = "/tmp/td-curl-api-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello, world", 12), 12);
    close(fd);
    char url[64];
    snprintf(url, sizeof(url), "file://%s", path);

    CURL *easy = curl_easy_init();
    assert_non_null(easy);
    struct sink s = {.len = 0};
    int marker;
    assert_int_equal(curl_easy_setopt(easy, CURLOPT_URL, url), CURLE_OK);          /* pointer */
    assert_int_equal(curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 5000L), CURLE_OK); /* long */
    assert_int_equal(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write), CURLE_OK);
    assert_int_equal(curl_easy_setopt(easy, CURLOPT_WRITEDATA, &s), CURLE_OK);
    assert_int_equal(curl_easy_setopt(easy, CURLOPT_PRIVATE, &marker), CURLE_OK);
    /* curl_off_t: the transfer starts at byte 7 */
    assert_int_equal(curl_easy_setopt(easy, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)7), CURLE_OK);
    assert_int_equal(curl_easy_perform(easy), CURLE_OK);
    assert_string_equal(s.buf, "world");
    void *priv = NULL;
    assert_int_equal(curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&priv), CURLE_OK);
    assert_ptr_equal(priv, &marker);
    char *eff = NULL;
    assert_int_equal(curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &eff), CURLE_OK);
    assert_string_equal(eff, url);
    curl_off_t size = -1;
    assert_int_equal(curl_easy_getinfo(easy, CURLINFO_SIZE_DOWNLOAD_T, &size), CURLE_OK);
    assert_int_equal(size, 5);
    /* a long out of range is refused by libcurl itself: the value arrived as a long */
    assert_int_equal(curl_easy_setopt(easy, CURLOPT_MAXREDIRS, -2L), CURLE_BAD_FUNCTION_ARGUMENT);

    char *e = curl_easy_escape(easy, "a b/c", 0);
    assert_string_equal(e, "a%20b%2Fc");
    curl_free(e);
    struct curl_slist *l = curl_slist_append(NULL, "A: 1");
    l = curl_slist_append(l, "B: 2");
    assert_string_equal(l->next->data, "B: 2");
    curl_slist_free_all(l);

    CURLM *multi = curl_multi_init();
    assert_non_null(multi);
    assert_int_equal(curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 7L), CURLM_OK);
    assert_int_equal(curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, &marker), CURLM_OK);
    curl_easy_reset(easy);
    s.len = 0;
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &s);
    assert_int_equal(curl_multi_add_handle(multi, easy), CURLM_OK);
    int running = 1;
    for (int i = 0; running && i < 1000; i++) {
        assert_int_equal(curl_multi_perform(multi, &running), CURLM_OK);
        if (running) {
            curl_multi_poll(multi, NULL, 0, 100, NULL);
        }
    }
    int left;
    CURLMsg *m = curl_multi_info_read(multi, &left);
    assert_non_null(m);
    assert_int_equal(m->data.result, CURLE_OK);
    assert_string_equal(s.buf, "hello, world");
    assert_int_equal(curl_multi_remove_handle(multi, easy), CURLM_OK);
    assert_int_equal(curl_multi_cleanup(multi), CURLM_OK);
    curl_easy_cleanup(easy);
    curl_global_cleanup();
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lazy),
        cmocka_unit_test(test_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
