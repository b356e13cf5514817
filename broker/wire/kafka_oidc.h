/* kafka_oidc.h - SASL/OAUTHBEARER tokens for librdkafka from an OAuth2 token endpoint (the
 * client credentials grant), as librdkafka's sasl.oauthbearer.method=oidc does when it is
 * built with libcurl, which Debian 12's librdkafka 2.0.2 is not.
 *
 * td_kafka_oidc_setup installs a token refresh callback on a librdkafka configuration and
 * makes librdkafka call it on its own background thread (rd_kafka_conf_enable_sasl_queue; the
 * caller calls rd_kafka_sasl_background_callbacks_enable after rd_kafka_new, see
 * td_kafka_security_started). The callback POSTs grant_type=client_credentials (and scope) to
 * token_url with the client id and secret as HTTP Basic credentials, reads access_token, and
 * gives it to librdkafka with the lifetime and principal of its JWT claims (exp, sub; else
 * expires_in and the client id). librdkafka calls it again at 80% of the lifetime.
 *
 * The callback finds its settings through sasl.oauthbearer.config ("triggerd-oidc=N", an index
 * into a process-wide table of copies, kept until exit; the same settings share one entry, so a
 * reload does not grow it), because the configuration's opaque belongs to the caller.
 * Threads: any (the callback runs on librdkafka's background thread).
 */
#ifndef TD_KAFKA_OIDC_H
#define TD_KAFKA_OIDC_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* Where tokens come from (the sasl: block's method oidc keys); the strings are copied. scope
 * may be NULL. */
struct td_kafka_oidc_client {
    const char *token_url, *client_id, *client_secret, *scope;
};

/* Sets up KC for OAUTHBEARER tokens from S's token endpoint. 0, or -1 with ERR (no secret). */
int td_kafka_oidc_setup(rd_kafka_conf_t *kc, const struct td_kafka_oidc_client *s, const char *who,
                        char *err, size_t errlen);

#endif
