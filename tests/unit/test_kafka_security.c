/* test_kafka_security.c - the tls: and sasl: keys as librdkafka properties (kafka_security.c):
 * security.protocol chosen from what is given (SSL, SASL_SSL; SASL_PLAINTEXT only when asked),
 * each key's property, SCRAM mapped as PLAIN is (the SCRAM flow itself cannot run against
 * Kafka 4 with Debian's librdkafka, see tests/integration/test_kafka_secure.py), OAUTHBEARER
 * set up with our token refresh without the secret in librdkafka's configuration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kafka_security.h"

static void get(rd_kafka_conf_t *kc, const char *key, char *out, size_t len)
{
    size_t n = len;
    out[0] = '\0';
    assert_int_equal(rd_kafka_conf_get(kc, key, out, &n), RD_KAFKA_CONF_OK);
}

static rd_kafka_conf_t *apply(const struct td_kafka_security *sec)
{
    char err[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    assert_int_equal(td_kafka_security_apply(kc, sec, "source 's'", err, sizeof(err)), 0);
    return kc;
}

static void test_nothing_given(void **state)
{
    (void)state;
    struct td_kafka_security sec = {0};
    char v[512];
    rd_kafka_conf_t *kc = apply(&sec);
    get(kc, "security.protocol", v, sizeof(v));
    assert_string_equal(v, "plaintext");
    rd_kafka_conf_destroy(kc);
}

static void test_tls(void **state)
{
    (void)state;
    struct td_kafka_security sec = {
        .tls = {.ca_file = "/ca.pem", .cert_file = "/c.pem", .key_file = "/c.key"}};
    char v[512];
    rd_kafka_conf_t *kc = apply(&sec);
    get(kc, "security.protocol", v, sizeof(v));
    assert_string_equal(v, "ssl");
    get(kc, "ssl.ca.location", v, sizeof(v));
    assert_string_equal(v, "/ca.pem");
    get(kc, "ssl.certificate.location", v, sizeof(v));
    assert_string_equal(v, "/c.pem");
    get(kc, "ssl.key.location", v, sizeof(v));
    assert_string_equal(v, "/c.key");
    rd_kafka_conf_destroy(kc);

    struct td_kafka_security empty = {.tls = {.given = true}}; /* tls: {} */
    kc = apply(&empty);
    get(kc, "security.protocol", v, sizeof(v));
    assert_string_equal(v, "ssl");
    rd_kafka_conf_destroy(kc);
}

static void test_scram(void **state)
{
    (void)state;
    struct td_kafka_security sec = {
        .sasl = {.mechanism = "SCRAM-SHA-512", .username = "u", .password = "p"}};
    char v[512];
    rd_kafka_conf_t *kc = apply(&sec);
    get(kc, "security.protocol", v, sizeof(v)); /* SASL goes over TLS unless asked */
    assert_string_equal(v, "sasl_ssl");
    get(kc, "sasl.mechanisms", v, sizeof(v));
    assert_string_equal(v, "SCRAM-SHA-512");
    get(kc, "sasl.username", v, sizeof(v));
    assert_string_equal(v, "u");
    rd_kafka_conf_destroy(kc);

    sec.sasl.plaintext = true;
    kc = apply(&sec);
    get(kc, "security.protocol", v, sizeof(v));
    assert_string_equal(v, "sasl_plaintext");
    rd_kafka_conf_destroy(kc);

    sec.tls.ca_file = "/ca.pem"; /* TLS given: plaintext cannot turn it off */
    kc = apply(&sec);
    get(kc, "security.protocol", v, sizeof(v));
    assert_string_equal(v, "sasl_ssl");
    rd_kafka_conf_destroy(kc);
}

static void test_oauthbearer(void **state)
{
    (void)state;
    struct td_kafka_security sec = {.sasl = {.mechanism = "OAUTHBEARER",
                                             .method = "oidc",
                                             .token_url = "http://127.0.0.1:1/token",
                                             .client_id = "id",
                                             .client_secret = "s3cret-value",
                                             .scope = "kafka"}};
    char v[512], w[512];
    rd_kafka_conf_t *kc = apply(&sec);
    get(kc, "sasl.mechanisms", v, sizeof(v));
    assert_string_equal(v, "OAUTHBEARER");
    get(kc, "sasl.oauthbearer.config", v, sizeof(v));
    assert_non_null(strstr(v, "triggerd-oidc="));
    assert_null(strstr(v, "s3cret")); /* the secret stays out of librdkafka's configuration */
    rd_kafka_conf_destroy(kc);
    kc = apply(&sec); /* the same settings: the same entry (a reload does not grow the table) */
    get(kc, "sasl.oauthbearer.config", w, sizeof(w));
    assert_string_equal(v, w);
    rd_kafka_conf_destroy(kc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_given),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_scram),
        cmocka_unit_test(test_oauthbearer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
