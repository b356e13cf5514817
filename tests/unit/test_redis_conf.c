/* test_redis_conf.c - the Redis tls: block (redis_conf.h) and the errors of redis_conn.h that
 * need no server: a tls block only beside rediss://, cert_file and key_file together, TLS files
 * checked before the daemon starts (the message names the key and the file, never the content),
 * and a refused connection reported with host:port and never the password.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "redis_conf.h"
#include "redis_conn.h"
#include "redis_util.h"

static char g_dir[] = "/tmp/td-redis-conf-XXXXXX";

static char *write_file(const char *name, const char *text)
{
    char *path = malloc(strlen(g_dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_plain_url(void **state)
{
    struct td_conf_redis_tls t = {0};
    const struct td_redis_tls *out = (const void *)1;
    char err[256] = "";
    assert_int_equal(td_redis_conf_tls(false, &t, &out, err, sizeof(err)), 0);
    assert_null(out); /* redis://: plain */

    t.tls.server_name = "redis.example";
    assert_int_equal(td_redis_conf_tls(false, &t, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "rediss://"));
}

static void test_rediss_without_block(void **state)
{
    struct td_conf_redis_tls t = {0};
    const struct td_redis_tls *out = NULL;
    char err[256] = "";
    assert_int_equal(td_redis_conf_tls(true, &t, &out, err, sizeof(err)), 0);
    assert_ptr_equal(out, &t.tls); /* TLS with the system's CAs */
}

static void test_cert_needs_key(void **state)
{
    struct td_conf_redis_tls t = {0};
    const struct td_redis_tls *out = NULL;
    char err[256] = "";
    t.tls.cert_file = "/nonexistent/client.pem";
    assert_int_equal(td_redis_conf_tls(true, &t, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "go together"));
}

static void test_bad_files(void **state)
{
    const char *secret = "PRIVATE-CONTENT-0123456789";
    char *notpem = write_file("key.pem", secret);
    struct td_conf_redis_tls t = {0};
    const struct td_redis_tls *out = NULL;
    char err[512] = "";

    t.tls.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(td_redis_conf_tls(true, &t, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "tls.ca_file"));
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));

    t.tls.ca_file = NULL;
    t.tls.cert_file = notpem;
    t.tls.key_file = notpem;
    assert_int_equal(td_redis_conf_tls(true, &t, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "tls.cert_file"));
    assert_null(strstr(err, secret));

    /* td_rconn_new reads them too (a file replaced after the start) */
    t.tls.cert_file = NULL;
    t.tls.key_file = NULL;
    t.tls.ca_file = notpem;
    struct td_rconn *c = td_rconn_new("127.0.0.1", 1, &t.tls, err, sizeof(err));
    assert_null(c);
    assert_non_null(strstr(err, "ca_file"));
    assert_null(strstr(err, secret));
    unlink(notpem);
    free(notpem);
}

/* A port nobody listens on: bound, never listened to, so it stays ours while we try it. */
static void test_refused(void **state)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    char url[128], err[256] = "";
    snprintf(url, sizeof(url), "rediss://u:TopSecret99@127.0.0.1:%d/0", ntohs(sa.sin_port));
    struct td_redis_addr a;
    assert_int_equal(td_redis_addr_parse(url, &a, err, sizeof(err)), 0);
    struct td_redis_tls tls = {.insecure_skip_verify = true};
    struct td_rconn *c = td_redis_open(&a, &tls, 0, 2000, -1, err, sizeof(err));
    assert_null(c);
    assert_non_null(strstr(err, "127.0.0.1:"));
    assert_non_null(strstr(err, "refused"));
    assert_null(strstr(err, "TopSecret99"));
    td_redis_addr_free(&a);
    close(s);
}

int main(void)
{
    if (!mkdtemp(g_dir)) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_url),      cmocka_unit_test(test_rediss_without_block),
        cmocka_unit_test(test_cert_needs_key), cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_refused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(g_dir);
    return rc;
}
