/* test_secret.c - secret handling (issue 11, Low 5, 7 and 11): the wipe helpers, refusing
 * credentials with blanks or control characters (CR/LF would add request headers) where they are
 * loaded (trigger file, bearer_file, AWS chain) and clamping JSON times before converting them
 * (a JWT "exp" of 1e17 overflowed a multiplication, 1e300 was an out-of-range cast).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws.h"
#include "cloudevent.h"
#include "config.h"
#include "creds.h"
#include "curl_api.h"
#include "secret.h"

#define INJECT "tok\r\nX-Injected: yes"

static void test_wipe(void **state)
{
    (void)state;
    char buf[32];
    char *heap = strdup("s3cret-token");

    memset(buf, 'x', sizeof(buf));
    td_secret_wipe(buf, 16);
    for (size_t i = 0; i < sizeof(buf); i++) {
        assert_int_equal(buf[i], i < 16 ? 0 : 'x'); /* exactly the bytes asked for */
    }
    td_secret_wipe(NULL, 8); /* no-op */
    assert_non_null(heap);
    td_secret_wipe(heap, strlen(heap));
    for (size_t i = 0; i < 12; i++) {
        assert_int_equal(heap[i], 0);
    }
    free(heap);
    td_secret_free(NULL);
    td_secret_free(strdup("another"));
    td_secret_free_n(NULL, 4);
    td_secret_slist_free(NULL);
    td_secret_slist_free(curl_slist_append(NULL, "Authorization: Bearer x"));
}

static void test_header_safe(void **state)
{
    (void)state;
    assert_true(td_secret_header_safe("eyJhbGciOi.eyJ.sig-_+/="));
    assert_true(td_secret_header_safe("caf\xc3\xa9")); /* UTF-8 is not a control character */
    assert_false(td_secret_header_safe(NULL));
    assert_false(td_secret_header_safe(""));
    assert_false(td_secret_header_safe(INJECT));
    assert_false(td_secret_header_safe("a\nb"));
    assert_false(td_secret_header_safe("a b"));
    assert_false(td_secret_header_safe("a\tb"));
    assert_false(td_secret_header_safe("a\x7f"));
    assert_false(td_secret_header_safe("\x01"));
}

/* A JWT "none.<payload>.sig" with PAYLOAD as its claims. The caller frees it. */
static char *jwt_with(const char *payload)
{
    char *b64 = td_base64_encode((const unsigned char *)payload, strlen(payload));
    char *out;

    assert_non_null(b64);
    for (char *p = b64; *p; p++) {
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    }
    b64[strcspn(b64, "=")] = '\0';
    out = malloc(strlen(b64) + 32);
    assert_non_null(out);
    sprintf(out, "eyJhbGciOiJub25lIn0.%s.sig", b64);
    free(b64);
    return out;
}

static void test_time_clamp(void **state)
{
    (void)state;
    static const struct {
        const char *claims;
        int64_t want;
    } cases[] = {
        {"{\"exp\":1700000000}", 1700000000},
        {"{\"exp\":1e17}", TD_CREDS_MAX_EPOCH_S},  /* exp * 1000 overflowed */
        {"{\"exp\":1e300}", TD_CREDS_MAX_EPOCH_S}, /* an out-of-range cast */
        {"{\"exp\":-1e300}", -1},
        {"{\"exp\":0}", -1},
        {"{\"exp\":\"1700000000\"}", -1},
        {"{\"exp\":1700000000.9}", 1700000000},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *jwt = jwt_with(cases[i].claims);
        int64_t got = td_jwt_exp(jwt);
        if (got != cases[i].want) {
            fail_msg("%s: got %lld, want %lld", cases[i].claims, (long long)got,
                     (long long)cases[i].want);
        }
        if (got > 0) {
            assert_true(got <= INT64_MAX / 1000); /* what the callers do with it */
        }
        free(jwt);
    }
    assert_int_equal(td_creds_seconds(1e17), TD_CREDS_MAX_EPOCH_S);
    assert_int_equal(td_creds_seconds(0.0 / 0.0), -1);
    assert_int_equal(td_creds_seconds(1.0 / 0.0), TD_CREDS_MAX_EPOCH_S);
    assert_int_equal(td_creds_seconds(3600.5), 3600);
    /* Found by fuzz_creds: 1e-300 truncated to 0, which callers take for "no expiry". */
    assert_int_equal(td_creds_seconds(1e-300), -1);
    assert_int_equal(td_creds_seconds(0.999), -1);
}

static void test_secret_file(void **state)
{
    (void)state;
    char path[] = "/tmp/td-test-secret-XXXXXX";
    char err[256] = "";
    int fd = mkstemp(path);
    char *tok;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, INJECT "\n", strlen(INJECT) + 1), (ssize_t)strlen(INJECT) + 1);
    close(fd);
    assert_null(td_read_secret_file(path, err, sizeof(err)));
    assert_non_null(strstr(err, "control character"));
    assert_null(strstr(err, "X-Injected"));
    assert_null(strchr(err, '\r'));
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "good.token\n\n", 12), 12);
    close(fd);
    tok = td_read_secret_file(path, err, sizeof(err));
    assert_non_null(tok);
    assert_string_equal(tok, "good.token");
    td_secret_free(tok);
    unlink(path);
}

static void test_aws_env_injection(void **state)
{
    (void)state;
    struct td_conf_lambda_sink conf = {.function = "f"};
    struct td_aws_resolved r;
    char err[400] = "";

    setenv("HOME", "/nonexistent-home", 1);
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    setenv("AWS_SESSION_TOKEN", INJECT, 1);
    assert_int_equal(td_aws_resolve(&conf, &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "control character"));
    assert_null(strstr(err, "X-Injected"));
    setenv("AWS_SESSION_TOKEN", "fine", 1);
    assert_int_equal(td_aws_resolve(&conf, &r, err, sizeof(err)), 0);
    td_aws_resolved_clear(&r);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
}

static void test_config_refuses(void **state)
{
    (void)state;
    char dir[] = "/tmp/td-test-secretcfg-XXXXXX";
    char path[128];
    struct td_errors errs = {0};
    struct td_config *cfg;
    FILE *fp;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/t.yaml", dir);
    setenv("TD_T_INJECT", INJECT, 1);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("version: 1\n"
          "sources:\n"
          "  in: {http: {path: /e, auth: {bearer: \"${TD_T_INJECT}\"}}}\n"
          "sinks:\n"
          "  fn:\n"
          "    http:\n"
          "      url: http://127.0.0.1:9/\n"
          "      auth: {bearer: \"${TD_T_INJECT}\"}\n"
          "  az: {http: {url: http://127.0.0.1:9/, auth: {azure_function_key: \"k\\r\\nX: y\"}}}\n"
          "  hd: {http: {url: http://127.0.0.1:9/, headers: {X-Key: \"${TD_T_INJECT}\", \"a b\": "
          "c}}}\n"
          "triggers:\n"
          "  - {name: t, source: in, sink: fn}\n"
          "  - {name: t2, source: in, sink: az}\n"
          "  - {name: t3, source: in, sink: hd}\n",
          fp);
    assert_int_equal(fclose(fp), 0);
    cfg = td_config_load(path, &errs);
    assert_null(cfg);
    assert_int_equal(errs.n, 5);
    const char *where[] = {":3:40: 'bearer' is a credential", ":8:22: 'bearer' is a credential",
                           ":9:68: 'azure_function_key' is a credential",
                           ":10:58: header 'X-Key' must not hold control characters",
                           ":10:76: 'headers': invalid header name 'a b'"};
    for (size_t i = 0; i < 5; i++) {
        bool found = false;
        for (size_t j = 0; j < errs.n; j++) {
            found = found || strstr(errs.msgs[j], where[i]) != NULL;
        }
        if (!found) {
            for (size_t j = 0; j < errs.n; j++) {
                fprintf(stderr, "got: %s\n", errs.msgs[j]);
            }
            fail_msg("no error %s", where[i]);
        }
    }
    for (size_t j = 0; j < errs.n; j++) {
        assert_true(strncmp(errs.msgs[j], path, strlen(path)) == 0); /* file:line:column */
        assert_null(strstr(errs.msgs[j], "X-Injected"));             /* never the value */
        assert_null(strstr(errs.msgs[j], "X: y"));
    }
    td_errors_clear(&errs);
    unsetenv("TD_T_INJECT");
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wipe),
        cmocka_unit_test(test_header_safe),
        cmocka_unit_test(test_time_clamp),
        cmocka_unit_test(test_secret_file),
        cmocka_unit_test(test_aws_env_injection),
        cmocka_unit_test(test_config_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
