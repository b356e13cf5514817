/* test_creds.c - the pieces the function-endpoint sinks build requests and read answers with:
 * JWT exp (Google ID tokens), base64url, the STS answer (XML, ISO 8601 expiry), the AWS
 * credential chain (trigger file, environment, shared file + profile, web identity) and the
 * response-header collector, and the waiting lists of td_creds (one per owner on a shared
 * credential). Signatures and tokens themselves are checked by independent peers
 * in tests/integration, never here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "aws.h"
#include "creds.h"
#include "http_client.h"
#include "http_sink.h"
#include "log.h"
#include "loop.h"

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

/* ---- waiting for a credential: td_creds_wait and the owners' waitlists ---- */

/* A one-shot HTTP server on a thread: accepts one connection, reads the request head, answers
 * 200 with the body "v1" and closes. */
struct one_shot {
    int fd;
    int port;
    pthread_t thread;
};

static void *one_shot_run(void *arg)
{
    struct one_shot *o = arg;
    int c = accept(o->fd, NULL, NULL);
    if (c < 0) {
        return NULL;
    }
    char buf[4096];
    size_t got = 0;
    while (got < sizeof(buf) - 1) {
        ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n")) {
            break;
        }
    }
    const char *answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nv1";
    ssize_t w = write(c, answer, strlen(answer));
    (void)w;
    close(c);
    return NULL;
}

static void one_shot_start(struct one_shot *o)
{
    o->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(o->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(o->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(o->fd, 4), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(o->fd, (struct sockaddr *)&a, &len), 0);
    o->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&o->thread, NULL, one_shot_run, o), 0);
}

struct test_provider_ctx {
    char url[64];
};

static int test_prepare(void *ctx, CURL *easy, struct curl_slist **headers, char *err,
                        size_t errlen)
{
    struct test_provider_ctx *t = ctx;
    curl_easy_setopt(easy, CURLOPT_URL, t->url);
    return 0;
}

static int test_parse(void *ctx, const unsigned char *body, size_t len, char **vals,
                      int64_t *expires_wall_ms, char *err, size_t errlen)
{
    vals[0] = strndup((const char *)body, len);
    *expires_wall_ms = td_wall_ms() + 3600 * 1000;
    return vals[0] ? 0 : -1;
}

static const struct td_creds_provider test_provider = {
    .what = "test credential",
    .prepare = test_prepare,
    .parse = test_parse,
    .free_ctx = free,
};

struct test_waiter {
    struct td_creds_waiter w; /* first */
    int calls;
    const char *err;
};

static void test_waiter_fn(struct td_creds_waiter *w, const char *err)
{
    struct test_waiter *t = (struct test_waiter *)w;
    t->calls++;
    t->err = err;
    assert_null(w->list); /* it left its owner's list before the call */
}

/* Two owners wait on one credential (as two HTTP sinks share a Google token): one goes away
 * and takes back exactly its own waiters, uncalled; the other's are called once each when the
 * fetch ends, and leave its list. */
static void test_waitlists(void **state)
{
    td_log_init((enum td_log_level)(TD_LOG_ERROR + 1), TD_LOG_TEXT); /* quiet */
    struct one_shot srv;
    one_shot_start(&srv);
    struct td_loop *loop = td_loop_new();
    struct td_http_client *http = td_http_client_new(loop);
    assert_non_null(http);
    struct test_provider_ctx *ctx = calloc(1, sizeof(*ctx));
    assert_non_null(ctx);
    snprintf(ctx->url, sizeof(ctx->url), "http://127.0.0.1:%d/token", srv.port);
    struct td_creds *c = td_creds_new(loop, http, &test_provider, ctx);
    assert_non_null(c);
    td_creds_start(c);
    assert_null(td_creds_get(c, 0));

    struct td_creds_waitlist gone = {0}, stays = {0};
    struct test_waiter g1 = {.w.fn = test_waiter_fn}, g2 = {.w.fn = test_waiter_fn};
    struct test_waiter s1 = {.w.fn = test_waiter_fn}, s2 = {.w.fn = test_waiter_fn};
    char err[160] = "";
    assert_int_equal(td_creds_wait(c, &gone, &g1.w, err, sizeof(err)), 0);
    assert_int_equal(td_creds_wait(c, &stays, &s1.w, err, sizeof(err)), 0);
    assert_int_equal(td_creds_wait(c, &gone, &g2.w, err, sizeof(err)), 0);
    assert_int_equal(td_creds_wait(c, &stays, &s2.w, err, sizeof(err)), 0);

    /* the owner of `gone` is destroyed: its two waiters come back, nothing else */
    struct td_creds_waiter *w1 = td_creds_waitlist_pop(c, &gone);
    struct td_creds_waiter *w2 = td_creds_waitlist_pop(c, &gone);
    assert_null(td_creds_waitlist_pop(c, &gone));
    assert_true((w1 == &g1.w && w2 == &g2.w) || (w1 == &g2.w && w2 == &g1.w));
    assert_null(gone.head);
    assert_non_null(stays.head);

    for (int i = 0; i < 500 && (s1.calls == 0 || s2.calls == 0); i++) {
        assert_true(td_loop_run_once(loop, 20) >= 0);
    }
    assert_int_equal(s1.calls, 1);
    assert_int_equal(s2.calls, 1);
    assert_null(s1.err);
    assert_null(s2.err);
    assert_null(stays.head);
    assert_int_equal(g1.calls, 0);
    assert_int_equal(g2.calls, 0);
    assert_string_equal(td_creds_get(c, 0), "v1");
    assert_int_equal(td_creds_fetches(c), 1);

    pthread_join(srv.thread, NULL);
    close(srv.fd);
    td_creds_free(c);
    td_http_client_free(http);
    td_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64url),        cmocka_unit_test(test_jwt_exp),
        cmocka_unit_test(test_sts_answer),       cmocka_unit_test(test_aws_chain),
        cmocka_unit_test(test_header_collector), cmocka_unit_test(test_waitlists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
