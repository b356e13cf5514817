/* kafka_security.h - the tls: and sasl: keys of the Kafka source, sink and dead-letter target,
 * and what they become in librdkafka's configuration.
 *
 * Users write `tls: {ca_file, cert_file, key_file}` and `sasl: {mechanism, username, password}`
 * (or, for OAUTHBEARER, `{method: oidc, token_url, client_id, client_secret, scope}`) instead
 * of librdkafka's property names. td_kafka_security_apply sets the matching properties
 * (security.protocol, ssl.*.location, sasl.*) before the user's `properties:`, so an explicit
 * property still wins.
 *
 * OAUTHBEARER with method oidc: Debian 12's librdkafka (2.0.2) is built without libcurl, so
 * its own sasl.oauthbearer.method=oidc is refused ("not supported in this build"). We do what
 * it would do ourselves (kafka_oidc.c): a token refresh callback, served on librdkafka's
 * background thread (never the loop), fetches a token with the client credentials grant and
 * hands it to librdkafka.
 *
 * Secrets: the password and client_secret go to librdkafka (which never logs sensitive
 * properties) and to the token endpoint, nowhere else; no message here quotes them.
 * Threads: any; the tables are read-only.
 */
#ifndef TD_KAFKA_SECURITY_H
#define TD_KAFKA_SECURITY_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "config.h"

struct td_conf_loader;
struct td_ynode;

struct td_kafka_tls {
    char *ca_file;   /* ssl.ca.location (default: the system's CAs) */
    char *cert_file; /* ssl.certificate.location: a client certificate (PEM) */
    char *key_file;  /* ssl.key.location: its private key (PEM, not encrypted) */
    struct td_pos ca_file_pos, cert_file_pos, key_file_pos;
    bool given; /* tls: was written (even empty: TLS with the system's CAs) */
};

struct td_kafka_sasl {
    char *mechanism; /* PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 | OAUTHBEARER; NULL: no SASL */
    char *username, *password;
    char *method; /* OAUTHBEARER: oidc (the only one) */
    char *token_url, *client_id, *client_secret, *scope;
    bool plaintext; /* SASL without TLS (SASL_PLAINTEXT): only when asked for, never with tls: */
};

struct td_kafka_security {
    struct td_kafka_tls tls;
    struct td_kafka_sasl sasl;
};

/* The nested tables: NESTED("tls", OFF(sec.tls), &td_kafka_tls_table), and sasl the same. */
extern const struct td_conf_table td_kafka_tls_table;
extern const struct td_conf_table td_kafka_sasl_table;

/* The check of the table that nests tls: and sasl: (a Kafka source's or sink's): what the two
 * say together (sasl.plaintext beside tls: is an error at plaintext). Returns 0 or -1. */
int td_kafka_security_check_keys(struct td_conf_loader *ld, const struct td_ynode *map,
                                 const struct td_kafka_security *sec);

/* Sets the properties the keys stand for on KC (call before applying the user's properties).
 * WHO names the owner in errors ("source 'in'"). Returns 0, or -1 with ERR (no secret in it). */
int td_kafka_security_apply(rd_kafka_conf_t *kc, const struct td_kafka_security *sec,
                            const char *who, char *err, size_t errlen);

/* After rd_kafka_new of a configuration td_kafka_security_apply set up: starts the token
 * refresh on librdkafka's background thread when OAUTHBEARER is used. Returns 0, or -1 with
 * ERR. */
int td_kafka_security_started(rd_kafka_t *rk, const struct td_kafka_security *sec, const char *who,
                              char *err, size_t errlen);

/* What the key tables do not compare (td_config_same_settings): tls: {} against no tls:. */
bool td_kafka_security_same(const struct td_kafka_security *a, const struct td_kafka_security *b);

/* `triggerd check` of the TLS files (tls_file.h: unreadable here is a warning, the wrong kind an
 * error), with their file:line:column. */
void td_kafka_security_check(const struct td_kafka_security *sec, const char *who,
                             const struct td_pos *owner_pos, struct td_errors *errs);

/* The files a start needs: 0 when every TLS file named is a usable one, else -1 with ERR. */
int td_kafka_security_files_ok(const struct td_kafka_security *sec, const char *who, char *err,
                               size_t errlen);

#endif
