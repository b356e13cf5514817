/* test_creds.c - the pieces the function-endpoint sinks build requests and read answers with:
 * JWT exp (Google ID tokens), base64url, the STS answer (XML, ISO 8601 expiry), the AWS
 * credential chain (trigger file, environment, shared file + profile, web identity) and the
 * response-header collector. Signatures and tokens themselves are checked by independent peers
 * in tests/integration, never here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws.h"
#include "creds.h"
#include "http_sink.h"

static void test_base64url(void **state)
{
    size_t n = 0;
    unsigned char *out = td_base64url_decode("eyJhIjoxfQ", 10, &n); /* {"a":1} */
    assert_non_null(out);
    assert_int_equal(n, 7);
    assert_memory_equal(out, "{\"a\":1}", 7);
    free(out);
    out = td_base64url_decode("_-8", 3, &n); /* 0xff 0xef */
    assert_non_null(out);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 0xff);
    assert_int_equal(out[1], 0xef);
    free(out);
    assert_null(td_base64url_decode("a b", 3, &n));
}

static void test_jwt_exp(void **state)
{
    /* header {"alg":"none"}, payload {"aud":"x","exp":1700000000} */
    assert_int_equal(td_jwt_exp("eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4IiwiZXhwIjoxNzAwMDAwMDAwfQ.sig"),
                     1700000000);
    assert_int_equal(td_jwt_exp("eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0.sig"), -1); /* no exp */
    assert_int_equal(td_jwt_exp("not-a-jwt"), -1);
    assert_int_equal(td_jwt_exp("a.!!!.c"), -1);
}

static void test_sts_answer(void **state)
{
    const char *xml = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
                      "<Credentials><AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>s/+"
                      "</SecretAccessKey><SessionToken>tok</SessionToken>"
                      "<Expiration>2024-01-02T03:04:05Z</Expiration></Credentials>"
                      "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
    char *v = td_xml_text(xml, strlen(xml), "SecretAccessKey");
    assert_string_equal(v, "s/+");
    free(v);
    assert_null(td_xml_text(xml, strlen(xml), "Nope"));
    v = td_xml_text(xml, strlen(xml), "Expiration");
    assert_int_equal(td_aws_parse_time_ms(v), 1704164645000LL);
    free(v);
    assert_int_equal(td_aws_parse_time_ms("2024-01-02T03:04:05.123Z"), 1704164645000LL);
    assert_int_equal(td_aws_parse_time_ms("yesterday"), -1);
}

static void clear_aws_env(void)
{
    const char *vars[] = {"AWS_ACCESS_KEY_ID",
                          "AWS_SECRET_ACCESS_KEY",
                          "AWS_SESSION_TOKEN",
                          "AWS_SHARED_CREDENTIALS_FILE",
                          "AWS_PROFILE",
                          "AWS_ROLE_ARN",
                          "AWS_WEB_IDENTITY_TOKEN_FILE",
                          "AWS_REGION",
                          "AWS_DEFAULT_REGION"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        unsetenv(vars[i]);
    }
    setenv("HOME", "/nonexistent-home", 1);
}

static void test_aws_chain(void **state)
{
    struct td_conf_lambda_sink conf = {.function = "f"};
    struct td_aws_resolved r;
    char err[400];
    clear_aws_env();
    assert_int_equal(td_aws_resolve(&conf, &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no AWS credentials"));
    assert_null(td_aws_region(&conf));
    setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
    assert_string_equal(td_aws_region(&conf), "us-west-2");

    /* shared file with a profile */
    char path[] = "/tmp/td-test-creds-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *ini = "[default]\naws_access_key_id = AKDEF\naws_secret_access_key = sdef\n"
                      "# comment\n[other]\n aws_access_key_id=AKOTHER \naws_secret_access_key = "
                      "s=other\naws_session_token = tok\n";
    assert_int_equal(write(fd, ini, strlen(ini)), (ssize_t)strlen(ini));
    close(fd);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    assert_int_equal(td_aws_resolve(&conf, &r, err, sizeof(err)), 0);
    assert_int_equal(r.source, TD_AWS_FILE);
    assert_string_equal(r.access_key_id, "AKDEF");
    assert_null(r.session_token);
    td_aws_resolved_clear(&r);
    setenv("AWS_PROFILE", "other", 1);
    assert_int_equal(td_aws_resolve(&conf, &r, err, sizeof(err)), 0);
    assert_string_equal(r.access_key_id, "AKOTHER");
    assert_string_equal(r.secret_access_key, "s=other");
    assert_string_equal(r.session_token, "tok");
    td_aws_resolved_clear(&r);

    /* the environment wins over the file */
    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "senv", 1);
    assert_int_equal(td_aws_resolve(&conf, &r, err, sizeof(err)), 0);
    assert_int_equal(r.source, TD_AWS_ENV);
    assert_string_equal(r.access_key_id, "AKENV");
    td_aws_resolved_clear(&r);

    /* and the trigger file over the environment */
    conf.access_key_id = "AKCONF";
    conf.secret_access_key = "sconf";
    assert_int_equal(td_aws_resolve(&conf, &r, err, sizeof(err)), 0);
    assert_int_equal(r.source, TD_AWS_CONFIG);
    assert_string_equal(r.access_key_id, "AKCONF");
    td_aws_resolved_clear(&r);
    conf.access_key_id = conf.secret_access_key = NULL;

    /* web identity, last */
    clear_aws_env();
    setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r", 1);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    assert_int_equal(td_aws_resolve(&conf, &r, err, sizeof(err)), 0);
    assert_int_equal(r.source, TD_AWS_WEB_IDENTITY);
    assert_string_equal(r.role_arn, "arn:aws:iam::1:role/r");
    assert_non_null(r.session_name);
    td_aws_resolved_clear(&r);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent-token", 1);
    assert_int_equal(td_aws_resolve(&conf, &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot be read"));
    unlink(path);
    clear_aws_env();
}

static void feed(struct td_http_hdrbuf *hb, const char *line)
{
    td_http_collect_header((char *)line, 1, strlen(line), hb);
}

static void test_header_collector(void **state)
{
    struct td_http_hdrbuf *hb = calloc(1, sizeof(*hb));
    assert_non_null(hb);
    feed(hb, "HTTP/1.1 100 Continue\r\n");
    feed(hb, "\r\n");
    feed(hb, "HTTP/1.1 200 OK\r\n");
    feed(hb, "X-Amz-Function-Error: Unhandled\r\n");
    feed(hb, "ce-id:  abc \r\n");
    feed(hb, "Content-Length: 2\r\n");
    feed(hb, "\r\n");
    struct td_http_headers h = {0};
    assert_int_equal(td_http_hdrbuf_parse(hb, &h), 0);
    assert_int_equal(h.n, 3);
    assert_string_equal(td_http_headers_get(&h, "x-amz-function-error"), "Unhandled");
    assert_string_equal(td_http_headers_get(&h, "CE-ID"), "abc");
    td_http_headers_free(&h);
    free(hb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64url),        cmocka_unit_test(test_jwt_exp),
        cmocka_unit_test(test_sts_answer),       cmocka_unit_test(test_aws_chain),
        cmocka_unit_test(test_header_collector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
