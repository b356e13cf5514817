/* kafka_security.c - the tls: and sasl: keys of the Kafka plugins as librdkafka properties
 * (see kafka_security.h).
 *
 * Threads: any.
 */
#include "kafka_security.h"

#include <stdio.h>
#include <string.h>

#include "conf_table.h"
#include "kafka_oidc.h"
#include "tls_file.h"

/* ---- tls: {ca_file, cert_file, key_file} ---- */
#define TLS(f) offsetof(struct td_kafka_tls, f)

static int check_tls(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    struct td_kafka_tls *t = base;
    t->given = true;
    if ((t->cert_file != NULL) != (t->key_file != NULL)) {
        ERR_AT(ld, map,
               "tls: cert_file and key_file go together (a client certificate and its key)");
        return -1;
    }
    return 0;
}

static const struct td_conf_key tls_keys[] = {
    REF_STR("ca_file", TLS(ca_file), TLS(ca_file_pos)),
    REF_STR("cert_file", TLS(cert_file), TLS(cert_file_pos)),
    REF_STR("key_file", TLS(key_file), TLS(key_file_pos)),
};
const struct td_conf_table td_kafka_tls_table = {TABLE("tls", tls_keys), .check = check_tls};
#undef TLS

/* ---- sasl: {mechanism, username, password | method, token_url, client_id, ...} ---- */
#define SASL(f) offsetof(struct td_kafka_sasl, f)

static const char *const mechanism_names[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512",
                                              "OAUTHBEARER", NULL};
static const char *const method_names[] = {"oidc", NULL};

static bool is_oauth(const struct td_kafka_sasl *s)
{
    return s->mechanism && strcmp(s->mechanism, "OAUTHBEARER") == 0;
}

/* What each mechanism needs, and nothing that belongs to the other kind. */
static int check_sasl(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    const struct td_kafka_sasl *s = base;
    static const char *const user_keys[] = {"username", "password"};
    static const char *const oidc_keys[] = {"token_url", "client_id", "client_secret"};
    const char *user_vals[] = {s->username, s->password};
    const char *oidc_vals[] = {s->token_url, s->client_id, s->client_secret};
    const char *extra_oidc[] = {s->method, s->token_url, s->client_id, s->client_secret, s->scope};
    static const char *const extra_oidc_keys[] = {"method", "token_url", "client_id",
                                                  "client_secret", "scope"};
    int rc = 0;
    if (!s->mechanism) {
        return 0; /* reported as a missing required key */
    }
    if (is_oauth(s)) {
        for (int i = 0; i < 3; i++) {
            if (!oidc_vals[i]) {
                ERR_AT(ld, map, "sasl: mechanism OAUTHBEARER needs '%s' (method oidc)",
                       oidc_keys[i]);
                rc = -1;
            }
        }
        for (int i = 0; i < 2; i++) {
            if (user_vals[i]) {
                ERR_AT(ld, td_conf_map_get(map, user_keys[i]),
                       "sasl: '%s' is not used with OAUTHBEARER (the token endpoint is)",
                       user_keys[i]);
                rc = -1;
            }
        }
        const char *u = s->token_url;
        if (u && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
            ERR_AT(ld, td_conf_map_get(map, "token_url"),
                   "sasl: token_url must be an http:// or https:// URL");
            rc = -1;
        }
        return rc;
    }
    for (int i = 0; i < 2; i++) {
        if (!user_vals[i]) {
            ERR_AT(ld, map, "sasl: mechanism %s needs '%s'", s->mechanism, user_keys[i]);
            rc = -1;
        }
    }
    for (int i = 0; i < 5; i++) {
        if (extra_oidc[i]) {
            ERR_AT(ld, td_conf_map_get(map, extra_oidc_keys[i]),
                   "sasl: '%s' is only for mechanism OAUTHBEARER", extra_oidc_keys[i]);
            rc = -1;
        }
    }
    return rc;
}

static const struct td_conf_key sasl_keys[] = {
    {.name = "mechanism",
     .type = TD_K_STR,
     .off = SASL(mechanism),
     .names = mechanism_names,
     .required = true},
    STR("username", SASL(username)),
    STR("password", SASL(password)),
    {.name = "method", .type = TD_K_STR, .off = SASL(method), .names = method_names},
    STR("token_url", SASL(token_url)),
    STR("client_id", SASL(client_id)),
    STR("client_secret", SASL(client_secret)),
    STR("scope", SASL(scope)),
    BOOL_D("plaintext", SASL(plaintext), "false"),
};
const struct td_conf_table td_kafka_sasl_table = {TABLE("sasl", sasl_keys), .check = check_sasl};
#undef SASL

/* ---- tls: and sasl: together ---- */

int td_kafka_security_check_keys(struct td_conf_loader *ld, const struct td_ynode *map,
                                 const struct td_kafka_security *sec)
{
    const struct td_kafka_tls *t = &sec->tls;
    if (sec->sasl.plaintext && (t->given || t->ca_file || t->cert_file || t->key_file)) {
        /* Which one would win is a guess either way: SASL_SSL silently ignores plaintext,
         * SASL_PLAINTEXT silently ignores the TLS files. */
        ERR_AT(ld, td_conf_map_get(td_conf_map_get(map, "sasl"), "plaintext"),
               "sasl: plaintext: true (SASL without TLS) cannot go with tls: (leave out one)");
        return -1;
    }
    return 0;
}

/* ---- librdkafka ---- */

static int set(rd_kafka_conf_t *kc, const char *key, const char *value, const char *who, char *err,
               size_t errlen)
{
    char why[256];
    if (rd_kafka_conf_set(kc, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        /* the value may be a secret: librdkafka's reason is kept only when it does not quote it */
        if (value && value[0] && strstr(why, value)) {
            snprintf(why, sizeof(why), "invalid value (not shown)");
        }
        snprintf(err, errlen, "%s: property '%s': %s", who, key, why);
        return -1;
    }
    return 0;
}

int td_kafka_security_apply(rd_kafka_conf_t *kc, const struct td_kafka_security *sec,
                            const char *who, char *err, size_t errlen)
{
    const struct td_kafka_tls *t = &sec->tls;
    const struct td_kafka_sasl *s = &sec->sasl;
    bool tls = t->given || t->ca_file || t->cert_file || t->key_file;
    const char *protocol = NULL;
    if (s->mechanism) {
        /* SASL without TLS sends a password (PLAIN) or a token in the clear: only when asked
         * (the loader refuses plaintext: true beside tls:; TLS wins here all the same). */
        protocol = s->plaintext && !tls ? "SASL_PLAINTEXT" : "SASL_SSL";
    } else if (tls) {
        protocol = "SSL";
    }
    if (!protocol) {
        return 0;
    }
    if (set(kc, "security.protocol", protocol, who, err, errlen) < 0 ||
        (t->ca_file && set(kc, "ssl.ca.location", t->ca_file, who, err, errlen) < 0) ||
        (t->cert_file && set(kc, "ssl.certificate.location", t->cert_file, who, err, errlen) < 0) ||
        (t->key_file && set(kc, "ssl.key.location", t->key_file, who, err, errlen) < 0)) {
        return -1;
    }
    if (!s->mechanism) {
        return 0;
    }
    if (set(kc, "sasl.mechanisms", s->mechanism, who, err, errlen) < 0) {
        return -1;
    }
    if (!is_oauth(s)) {
        return set(kc, "sasl.username", s->username ? s->username : "", who, err, errlen) < 0 ||
                       set(kc, "sasl.password", s->password ? s->password : "", who, err, errlen) <
                           0
                   ? -1
                   : 0;
    }
    const struct td_kafka_oidc_client client = {
        .token_url = s->token_url,
        .client_id = s->client_id,
        .client_secret = s->client_secret,
        .scope = s->scope,
    };
    return td_kafka_oidc_setup(kc, &client, who, err, errlen);
}

int td_kafka_security_started(rd_kafka_t *rk, const struct td_kafka_security *sec, const char *who,
                              char *err, size_t errlen)
{
    if (!is_oauth(&sec->sasl)) {
        return 0;
    }
    rd_kafka_error_t *e = rd_kafka_sasl_background_callbacks_enable(rk);
    if (e) {
        snprintf(err, errlen, "%s: cannot refresh OAUTHBEARER tokens in the background: %s", who,
                 rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return -1;
    }
    return 0;
}

bool td_kafka_security_same(const struct td_kafka_security *a, const struct td_kafka_security *b)
{
    return a->tls.given == b->tls.given;
}

void td_kafka_security_check(const struct td_kafka_security *sec, const char *who,
                             const struct td_pos *owner_pos, struct td_errors *errs)
{
    const struct td_kafka_tls *t = &sec->tls;
    const char *files[] = {t->ca_file, t->cert_file, t->key_file};
    static const char *const keys[] = {"tls.ca_file", "tls.cert_file", "tls.key_file"};
    static const enum td_tls_file_kind kinds[] = {TD_TLS_CA, TD_TLS_CERT, TD_TLS_KEY};
    const struct td_pos *at[] = {&t->ca_file_pos, &t->cert_file_pos, &t->key_file_pos};
    for (int i = 0; i < 3; i++) {
        td_tls_file_report(who, keys[i], files[i], kinds[i], at[i]->line > 0 ? at[i] : owner_pos,
                           errs);
    }
}

int td_kafka_security_files_ok(const struct td_kafka_security *sec, const char *who, char *err,
                               size_t errlen)
{
    const struct td_kafka_tls *t = &sec->tls;
    const char *files[] = {t->ca_file, t->cert_file, t->key_file};
    static const char *const keys[] = {"tls.ca_file", "tls.cert_file", "tls.key_file"};
    static const enum td_tls_file_kind kinds[] = {TD_TLS_CA, TD_TLS_CERT, TD_TLS_KEY};
    for (int i = 0; i < 3; i++) {
        char why[400];
        if (files[i] && td_tls_file_check(files[i], kinds[i], why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s: %s %s", who, keys[i], why);
            return -1;
        }
    }
    return 0;
}
