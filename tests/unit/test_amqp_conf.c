/* test_amqp_conf.c - unit tests of the AMQP URL's TLS and auth query keys (broker/wire/amqp_util.c)
 * and of merging a RabbitMQ source's or sink's tls: block and auth_mechanism into it
 * (broker/wire/amqp_conf.c): what is accepted, what is refused and that no message carries the
 * password. The connections themselves are tested against a real node (test_rabbitmq_tls.py). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_conf.h"
#include "amqp_util.h"

static void test_url_query_keys(void **state)
{
    (void)state;
    struct td_amqp_addr a;
    char err[512] = "";
    assert_int_equal(td_amqp_addr_parse("amqps://u:p@h/%2f?cacertfile=%2Fca.pem&certfile=/c.pem"
                                        "&keyfile=/k.pem&server_name_indication=rabbit.example"
                                        "&auth_mechanism=EXTERNAL",
                                        false, &a, err, sizeof(err)),
                     0);
    assert_true(a.tls);
    assert_int_equal(a.port, 5671);
    assert_string_equal(a.cacert, "/ca.pem");
    assert_string_equal(a.cert, "/c.pem");
    assert_string_equal(a.key, "/k.pem");
    assert_string_equal(a.server_name, "rabbit.example");
    assert_true(a.external);
    assert_true(a.user_given);
    assert_false(a.insecure);
    td_amqp_addr_free(&a);

    assert_int_equal(
        td_amqp_addr_parse("amqps://h?auth_mechanism=plain", false, &a, err, sizeof(err)), 0);
    assert_false(a.external);
    assert_false(a.user_given);
    td_amqp_addr_free(&a);
}

static void refused(const char *url, const char *want)
{
    struct td_amqp_addr a;
    char err[512] = "";
    assert_int_equal(td_amqp_addr_parse(url, false, &a, err, sizeof(err)), -1);
    if (!strstr(err, want)) {
        fail_msg("%s: got '%s', want '%s'", url, err, want);
    }
    assert_null(strstr(err, "s3cret"));
}

static void test_url_refusals(void **state)
{
    (void)state;
    refused("amqps://u:s3cret@h?auth_mechanism=scram", "plain or external");
    refused("amqps://u:s3cret@h?auth_mechanism=external", "needs amqps:// and a client cert");
    refused("amqp://u:s3cret@h?auth_mechanism=external&certfile=/c&keyfile=/k", "use amqps://");
    refused("amqp://u:s3cret@h?server_name_indication=x", "use amqps://");
    refused("amqps://u:s3cret@h?certfile=/c", "certfile and keyfile go together");
    refused("amqps://u:s3cret@h?verify=verify_none", "cannot be turned off");
}

static void test_merge_block(void **state)
{
    (void)state;
    struct td_amqp_addr a;
    char err[512] = "";
    struct td_amqp_tls tls = {.ca_file = "/ca.pem",
                              .cert_file = "/c.pem",
                              .key_file = "/k.pem",
                              .server_name = "rabbit.example"};
    assert_int_equal(td_amqp_addr_from_conf("amqps://h:5999/v", &tls, TD_AMQP_AUTH_EXTERNAL, false,
                                            &a, err, sizeof(err)),
                     0);
    assert_string_equal(a.cacert, "/ca.pem");
    assert_string_equal(a.cert, "/c.pem");
    assert_string_equal(a.key, "/k.pem");
    assert_string_equal(a.server_name, "rabbit.example");
    assert_true(a.external);
    assert_int_equal(a.port, 5999);
    td_amqp_addr_free(&a);

    struct td_amqp_tls insecure = {.insecure_skip_verify = true};
    assert_int_equal(td_amqp_addr_from_conf("amqps://h", &insecure, TD_AMQP_AUTH_PLAIN, false, &a,
                                            err, sizeof(err)),
                     0);
    assert_true(a.insecure);
    assert_false(a.external);
    td_amqp_addr_free(&a);
}

static void merge_refused(const char *url, const struct td_amqp_tls *tls, int auth,
                          bool check_files, const char *want)
{
    struct td_amqp_addr a;
    char err[512] = "";
    assert_int_equal(td_amqp_addr_from_conf(url, tls, auth, check_files, &a, err, sizeof(err)), -1);
    if (!strstr(err, want)) {
        fail_msg("%s: got '%s', want '%s'", url, err, want);
    }
    assert_null(strstr(err, "s3cret"));
}

static void test_merge_refusals(void **state)
{
    (void)state;
    struct td_amqp_tls ca = {.ca_file = "/ca.pem"};
    struct td_amqp_tls none = {0};
    struct td_amqp_tls cert_only = {.cert_file = "/c.pem"};
    merge_refused("amqps://u:s3cret@h?cacertfile=/other.pem", &ca, TD_AMQP_AUTH_PLAIN, false,
                  "given twice");
    merge_refused("amqp://u:s3cret@h", &ca, TD_AMQP_AUTH_PLAIN, false, "use amqps://");
    merge_refused("amqps://u:s3cret@h", &none, TD_AMQP_AUTH_EXTERNAL, false,
                  "tls.cert_file, tls.key_file");
    merge_refused("amqps://u:s3cret@h", &cert_only, TD_AMQP_AUTH_PLAIN, false,
                  "tls.cert_file and tls.key_file go together");
    /* with check_files, as the daemon does: a file that is not there stops the start */
    struct td_amqp_tls missing = {.ca_file = "/nonexistent/td-ca.pem"};
    merge_refused("amqps://u:s3cret@h", &missing, TD_AMQP_AUTH_PLAIN, true,
                  "tls.ca_file: /nonexistent/td-ca.pem cannot be read");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_query_keys),
        cmocka_unit_test(test_url_refusals),
        cmocka_unit_test(test_merge_block),
        cmocka_unit_test(test_merge_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
