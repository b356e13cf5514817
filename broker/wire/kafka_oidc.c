/* kafka_oidc.c - OAUTHBEARER tokens from a token endpoint for librdkafka (see kafka_oidc.h).
 *
 * Threads: any; the table of settings is guarded by a mutex, the callback runs on librdkafka's
 * background thread and may block there (one HTTP request, at most TOKEN_TIMEOUT_MS).
 */
#include "kafka_oidc.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "curl_api.h"
#include "log.h"
#include "secret.h"

#define TOKEN_TIMEOUT_MS 10000
#define MAX_RESPONSE     (64 * 1024)
#define CONFIG_PREFIX    "triggerd-oidc="

struct oidc {
    char *token_url, *client_id, *client_secret, *scope; /* scope may be NULL */
    struct oidc *next;
    int id;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct oidc *entries; /* kept until exit (see kafka_oidc.h) */
static int next_id;

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The entry for S's settings, added if new; -1 when out of memory. */
static int entry_id(const struct td_kafka_oidc_client *s)
{
    int id = -1;
    pthread_mutex_lock(&mu);
    for (struct oidc *e = entries; e; e = e->next) {
        if (same_str(e->token_url, s->token_url) && same_str(e->client_id, s->client_id) &&
            same_str(e->client_secret, s->client_secret) && same_str(e->scope, s->scope)) {
            id = e->id;
            goto out;
        }
    }
    struct oidc *e = calloc(1, sizeof(*e));
    if (e) {
        e->token_url = strdup(s->token_url);
        e->client_id = strdup(s->client_id);
        e->client_secret = strdup(s->client_secret);
        e->scope = s->scope ? strdup(s->scope) : NULL;
        if (!e->token_url || !e->client_id || !e->client_secret || (s->scope && !e->scope)) {
            free(e->token_url);
            free(e->client_id);
            td_secret_free(e->client_secret);
            free(e->scope);
            free(e);
            goto out;
        }
        e->id = next_id++;
        e->next = entries;
        entries = e;
        id = e->id;
    }
out:
    pthread_mutex_unlock(&mu);
    return id;
}

/* A copy of entry ID's settings (the caller frees it with free_copy), or false. */
static bool copy_entry(int id, struct oidc *out)
{
    bool ok = false;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&mu);
    for (struct oidc *e = entries; e; e = e->next) {
        if (e->id == id) {
            out->token_url = strdup(e->token_url);
            out->client_id = strdup(e->client_id);
            out->client_secret = strdup(e->client_secret);
            out->scope = e->scope ? strdup(e->scope) : NULL;
            ok =
                out->token_url && out->client_id && out->client_secret && (!e->scope || out->scope);
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    return ok;
}

static void free_copy(struct oidc *c)
{
    free(c->token_url);
    free(c->client_id);
    td_secret_free(c->client_secret);
    free(c->scope);
}

struct body {
    char *buf;
    size_t len;
    bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t add = size * n;
    if (b->len + add > MAX_RESPONSE) {
        b->too_big = true;
        return 0;
    }
    char *nb = realloc(b->buf, b->len + add + 1);
    if (!nb) {
        return 0;
    }
    memcpy(nb + b->len, ptr, add);
    b->buf = nb;
    b->len += add;
    b->buf[b->len] = '\0';
    return add;
}

/* base64url (no padding) to bytes, NUL-terminated; NULL when not base64url. */
static char *b64url_decode(const char *in, size_t n)
{
    char *out = malloc(n * 3 / 4 + 4);
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;
    if (!out) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i], v;
        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';
        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;
        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;
        } else if (c == '-' || c == '+') {
            v = 62;
        } else if (c == '_' || c == '/') {
            v = 63;
        } else if (c == '=') {
            break;
        } else {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return out;
}

/* The JWT's exp (seconds) and sub, when TOKEN is a JWT that has them. */
static void jwt_claims(const char *token, double *exp, char *sub, size_t sublen)
{
    const char *p1 = strchr(token, '.');
    const char *p2 = p1 ? strchr(p1 + 1, '.') : NULL;
    if (!p2) {
        return;
    }
    char *json = b64url_decode(p1 + 1, (size_t)(p2 - p1 - 1));
    cJSON *claims = json ? cJSON_Parse(json) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(claims, "sub");
    if (cJSON_IsNumber(e)) {
        *exp = e->valuedouble;
    }
    if (cJSON_IsString(s) && s->valuestring[0]) {
        snprintf(sub, sublen, "%s", s->valuestring);
    }
    cJSON_Delete(claims);
    free(json);
}

/* One token request; on success hands the token to librdkafka. WHY: a reason without secrets. */
static int fetch(rd_kafka_t *rk, const struct oidc *c, char *why, size_t whylen)
{
    struct body b = {0};
    char *form = NULL, *id = NULL, *secret = NULL;
    int rc = -1;
    CURL *easy = curl_easy_init();
    if (!easy) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    char *scope = c->scope ? curl_easy_escape(easy, c->scope, 0) : NULL;
    size_t flen = 64 + (scope ? strlen(scope) : 0);
    form = malloc(flen);
    if (!form || (c->scope && !scope)) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    snprintf(form, flen, "grant_type=client_credentials%s%s", scope ? "&scope=" : "",
             scope ? scope : "");
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    curl_easy_setopt(easy, CURLOPT_URL, c->token_url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    /* RFC 6749 2.3.1: the id and secret are form-urlencoded before HTTP Basic */
    id = curl_easy_escape(easy, c->client_id, 0);
    secret = curl_easy_escape(easy, c->client_secret, 0);
    if (!id || !secret) {
        snprintf(why, whylen, "out of memory");
        curl_slist_free_all(hdrs);
        goto out;
    }
    curl_easy_setopt(easy, CURLOPT_USERNAME, id);
    curl_easy_setopt(easy, CURLOPT_PASSWORD, secret);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)TOKEN_TIMEOUT_MS);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &b);
    CURLcode cc = curl_easy_perform(easy);
    curl_slist_free_all(hdrs);
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        snprintf(why, whylen, "%s",
                 b.too_big ? "the answer is larger than 64 KiB" : curl_easy_strerror(cc));
        goto out;
    }
    if (status != 200) {
        snprintf(why, whylen, "HTTP %ld", status);
        goto out;
    }
    cJSON *json = cJSON_ParseWithLength(b.buf ? b.buf : "", b.len);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(json, "access_token");
    const cJSON *expires_in = cJSON_GetObjectItemCaseSensitive(json, "expires_in");
    if (!cJSON_IsString(tok) || !tok->valuestring[0]) {
        snprintf(why, whylen, "the answer has no access_token");
        cJSON_Delete(json);
        goto out;
    }
    double exp = 0;
    char sub[256] = "";
    jwt_claims(tok->valuestring, &exp, sub, sizeof(sub));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    int64_t life_ms = exp > 0 ? (int64_t)(exp * 1000)
                      : cJSON_IsNumber(expires_in)
                          ? now_ms + (int64_t)(expires_in->valuedouble * 1000)
                          : 0;
    if (life_ms <= now_ms) {
        snprintf(why, whylen, "the token has no lifetime in the future (exp / expires_in)");
        cJSON_Delete(json);
        goto out;
    }
    char rkerr[256];
    if (rd_kafka_oauthbearer_set_token(rk, tok->valuestring, life_ms, sub[0] ? sub : c->client_id,
                                       NULL, 0, rkerr,
                                       sizeof(rkerr)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(why, whylen, "librdkafka refused the token: %s", rkerr);
        cJSON_Delete(json);
        goto out;
    }
    /* the token is a credential too: wipe the parsed copy before it is freed */
    td_secret_wipe(tok->valuestring, strlen(tok->valuestring));
    cJSON_Delete(json);
    rc = 0;
out:
    td_secret_free_n(b.buf, b.len);
    if (scope) {
        curl_free(scope);
    }
    if (id) {
        curl_free(id);
    }
    if (secret) {
        td_secret_wipe(secret, strlen(secret));
        curl_free(secret);
    }
    free(form);
    curl_easy_cleanup(easy);
    return rc;
}

static void refresh_cb(rd_kafka_t *rk, const char *config, void *opaque)
{
    (void)opaque;
    char why[300];
    struct oidc c;
    int id = -1;
    if (config && strncmp(config, CONFIG_PREFIX, strlen(CONFIG_PREFIX)) == 0) {
        id = atoi(config + strlen(CONFIG_PREFIX));
    }
    if (!copy_entry(id, &c)) {
        free_copy(&c);
        rd_kafka_oauthbearer_set_token_failure(rk, "triggerd: no OAUTHBEARER settings");
        return;
    }
    /* the URL as logs may show it: without user-info and query, where credentials travel */
    char url[512];
    td_log_redact_url(c.token_url, url, sizeof(url));
    if (fetch(rk, &c, why, sizeof(why)) < 0) {
        char msg[512];
        snprintf(msg, sizeof(msg), "OAUTHBEARER token from %s: %s", url, why);
        td_log_warn(NULL, NULL, NULL, "kafka client %s: %s", rd_kafka_name(rk), msg);
        rd_kafka_oauthbearer_set_token_failure(rk, msg);
    } else {
        td_log_debug(NULL, NULL, NULL, "kafka client %s: OAUTHBEARER token from %s",
                     rd_kafka_name(rk), url);
    }
    free_copy(&c);
}

int td_kafka_oidc_setup(rd_kafka_conf_t *kc, const struct td_kafka_oidc_client *s, const char *who,
                        char *err, size_t errlen)
{
    int id = entry_id(s);
    if (id < 0) {
        snprintf(err, errlen, "%s: out of memory", who);
        return -1;
    }
    char config[64], why[256];
    snprintf(config, sizeof(config), CONFIG_PREFIX "%d", id);
    if (rd_kafka_conf_set(kc, "sasl.oauthbearer.config", config, why, sizeof(why)) !=
        RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "%s: property 'sasl.oauthbearer.config': %s", who, why);
        return -1;
    }
    rd_kafka_conf_set_oauthbearer_token_refresh_cb(kc, refresh_cb);
    rd_kafka_conf_enable_sasl_queue(kc, 1);
    return 0;
}
