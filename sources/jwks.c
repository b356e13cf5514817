/* jwks.c - JWT verification against a JWKS file with OpenSSL (see jwks.h). */
#include "jwks.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "http_client.h"
#include "log.h"
#include "loop.h"

#define MAX_KEYS        32
#define MAX_JWKS_BYTES  (1 << 20)
#define MAX_TOKEN_BYTES 16384
#define RECHECK_MS      1000
#define URL_REFRESH_MS  300000 /* jwks_url: fetched again every 5 minutes */
#define URL_RETRY_MS    5000   /* after a failed fetch */
#define URL_MIN_GAP_MS  5000   /* an unknown kid asks for a fetch at most this often */
#define URL_TIMEOUT_MS  10000

struct key {
    char *kid; /* may be NULL */
    bool ec;   /* ES256 (P-256) key, else RS256 (RSA) */
    EVP_PKEY *pkey;
};

struct td_jwks {
    char *what, *path, *issuer, *audience;
    pthread_mutex_t mu;
    struct key keys[MAX_KEYS]; /* under mu */
    size_t nkeys;
    struct stat st;     /* of the file the keys came from */
    int64_t checked_ms; /* the last stat */
    bool reload_warned; /* about the current broken version of the file */
    /* jwks_url instead of a file: a thread of its own fetches it (blocking libcurl, never on
     * the loop or the HTTP server's thread), under mu: */
    char *url;
    pthread_t thread;
    bool thread_started;
    pthread_cond_t cv;  /* CLOCK_MONOTONIC */
    bool stopping;      /* td_jwks_free */
    bool want_fetch;    /* a token named a kid we do not have */
    int64_t fetched_ms; /* the last fetch attempt */
};

/* base64url (no padding) -> malloc'd bytes, or NULL. */
static unsigned char *b64url(const char *in, size_t len, size_t *outlen)
{
    if (len > MAX_JWKS_BYTES) {
        return NULL;
    }
    size_t padded = (len + 3) / 4 * 4;
    char *tmp = malloc(padded + 1);
    unsigned char *out = malloc(padded / 4 * 3 + 1);
    if (!tmp || !out) {
        goto fail;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        if (ch == '-') {
            ch = '+';
        } else if (ch == '_') {
            ch = '/';
        } else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                     (ch >= '0' && ch <= '9'))) {
            goto fail; /* '+', '/', '=' and anything else are not base64url */
        }
        tmp[i] = ch;
    }
    size_t pad = padded - len;
    if (pad == 3) {
        goto fail;
    }
    memset(tmp + len, '=', pad);
    tmp[padded] = '\0';
    int n = padded ? EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)padded) : 0;
    if (n < 0 || (size_t)n < pad) {
        goto fail;
    }
    free(tmp);
    *outlen = (size_t)n - pad;
    out[*outlen] = '\0';
    return out;
fail:
    free(tmp);
    free(out);
    return NULL;
}

static BIGNUM *b64_bn(const cJSON *v)
{
    size_t n = 0;
    unsigned char *b =
        cJSON_IsString(v) ? b64url(v->valuestring, strlen(v->valuestring), &n) : NULL;
    BIGNUM *bn = b && n > 0 ? BN_bin2bn(b, (int)n, NULL) : NULL;
    free(b);
    return bn;
}

static EVP_PKEY *rsa_key(const cJSON *jwk)
{
    BIGNUM *n = b64_bn(cJSON_GetObjectItemCaseSensitive(jwk, "n"));
    BIGNUM *e = b64_bn(cJSON_GetObjectItemCaseSensitive(jwk, "e"));
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    if (!n || !e || !bld || BN_num_bits(n) < 2048 ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
        !(params = OSSL_PARAM_BLD_to_param(bld)) ||
        !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) ||
        EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pkey;
}

static EVP_PKEY *ec_key(const cJSON *jwk)
{
    const cJSON *crv = cJSON_GetObjectItemCaseSensitive(jwk, "crv");
    const cJSON *jx = cJSON_GetObjectItemCaseSensitive(jwk, "x");
    const cJSON *jy = cJSON_GetObjectItemCaseSensitive(jwk, "y");
    if (!cJSON_IsString(crv) || strcmp(crv->valuestring, "P-256") != 0 || !cJSON_IsString(jx) ||
        !cJSON_IsString(jy)) {
        return NULL;
    }
    size_t nx = 0, ny = 0;
    unsigned char *x = b64url(jx->valuestring, strlen(jx->valuestring), &nx);
    unsigned char *y = b64url(jy->valuestring, strlen(jy->valuestring), &ny);
    unsigned char pub[65];
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    if (x && y && nx == 32 && ny == 32) {
        pub[0] = 0x04; /* uncompressed point */
        memcpy(pub + 1, x, 32);
        memcpy(pub + 33, y, 32);
        params[0] =
            OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub));
        params[2] = OSSL_PARAM_construct_end();
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    }
    EVP_PKEY_CTX_free(ctx);
    free(x);
    free(y);
    return pkey;
}

static void keys_clear(struct key *keys, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        free(keys[i].kid);
        EVP_PKEY_free(keys[i].pkey);
    }
    *n = 0;
}

static int parse(const char *what, const char *buf, size_t len, struct key *keys, char *err,
                 size_t errlen);

/* Reads path into keys (the signing keys we can use; others are skipped): the count, or -1 with
 * a message. st gets the file's stat. */
static int load(const char *path, struct key *keys, struct stat *st, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s cannot be read: %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t len = 0;
    if (fstat(fileno(f), st) == 0 && st->st_size > 0 && st->st_size <= MAX_JWKS_BYTES) {
        buf = malloc((size_t)st->st_size);
        len = buf ? fread(buf, 1, (size_t)st->st_size, f) : 0;
    }
    fclose(f);
    int n = parse(path, buf, len, keys, err, errlen);
    free(buf);
    return n;
}

/* A JWKS document (from a file or jwks_url, named by what) into keys: the count, or -1. */
static int parse(const char *what, const char *buf, size_t len, struct key *keys, char *err,
                 size_t errlen)
{
    cJSON *root = buf ? cJSON_ParseWithLength(buf, len) : NULL;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "keys");
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(root);
        snprintf(err, errlen,
                 "%s is not a JWKS (a JSON object with a \"keys\" array, at most 1 MiB)", what);
        return -1;
    }
    size_t n = 0;
    const cJSON *jwk;
    cJSON_ArrayForEach(jwk, arr)
    {
        const cJSON *kty = cJSON_GetObjectItemCaseSensitive(jwk, "kty");
        const cJSON *use = cJSON_GetObjectItemCaseSensitive(jwk, "use");
        const cJSON *alg = cJSON_GetObjectItemCaseSensitive(jwk, "alg");
        const cJSON *kid = cJSON_GetObjectItemCaseSensitive(jwk, "kid");
        if (n == MAX_KEYS || !cJSON_IsString(kty) ||
            (use && (!cJSON_IsString(use) || strcmp(use->valuestring, "sig") != 0))) {
            continue;
        }
        bool ec = strcmp(kty->valuestring, "EC") == 0;
        if (!ec && strcmp(kty->valuestring, "RSA") != 0) {
            continue;
        }
        if (alg &&
            (!cJSON_IsString(alg) || strcmp(alg->valuestring, ec ? "ES256" : "RS256") != 0)) {
            continue; /* a key meant for another algorithm (PS256, ES384...) */
        }
        EVP_PKEY *pkey = ec ? ec_key(jwk) : rsa_key(jwk);
        if (!pkey) {
            continue;
        }
        keys[n].pkey = pkey;
        keys[n].ec = ec;
        keys[n].kid = cJSON_IsString(kid) ? strdup(kid->valuestring) : NULL;
        n++;
    }
    cJSON_Delete(root);
    if (n == 0) {
        snprintf(err, errlen,
                 "%s has no usable key (RSA of 2048 bits or more for RS256, or P-256 "
                 "for ES256, with use \"sig\" if any)",
                 what);
        return -1;
    }
    return (int)n;
}

struct body {
    char *buf;
    size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct body *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > MAX_JWKS_BYTES) {
        return 0; /* too large: the transfer fails */
    }
    char *nb = realloc(b->buf, b->len + n);
    if (!nb) {
        return 0;
    }
    memcpy(nb + b->len, ptr, n);
    b->buf = nb;
    b->len += n;
    return n;
}

/* The fetch thread: one GET; the keys replace the old ones only when the answer is a usable
 * JWKS. 0 or -1. */
static int fetch_url(struct td_jwks *j)
{
    struct body b = {0};
    struct key keys[MAX_KEYS];
    char err[300] = "";
    long status = 0;
    CURL *curl = curl_easy_init();
    if (!curl) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }
    curl_easy_setopt(curl, CURLOPT_URL, j->url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)URL_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, TD_USER_AGENT);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    if (cc != CURLE_OK) {
        snprintf(err, sizeof(err), "%s", curl_easy_strerror(cc));
        goto fail;
    }
    if (status != 200) {
        snprintf(err, sizeof(err), "HTTP %ld", status);
        goto fail;
    }
    int n = parse("the answer", b.buf, b.len, keys, err, sizeof(err));
    if (n < 0) {
        goto fail;
    }
    free(b.buf);
    pthread_mutex_lock(&j->mu);
    keys_clear(j->keys, &j->nkeys);
    memcpy(j->keys, keys, (size_t)n * sizeof(keys[0]));
    j->nkeys = (size_t)n;
    pthread_mutex_unlock(&j->mu);
    td_log_debug(NULL, NULL, NULL, "%s: jwks_url fetched (%d keys)", j->what, n);
    return 0;
fail:
    free(b.buf);
    td_log_warn(NULL, NULL, NULL, "%s: cannot fetch jwks_url: %s", j->what, err);
    return -1;
}

static void *url_thread(void *arg)
{
    struct td_jwks *j = arg;
    pthread_mutex_lock(&j->mu);
    while (!j->stopping) {
        j->want_fetch = false;
        j->fetched_ms = td_now_ms();
        pthread_mutex_unlock(&j->mu);
        int rc = fetch_url(j);
        pthread_mutex_lock(&j->mu);
        int64_t until = td_now_ms() + (rc == 0 ? URL_REFRESH_MS : URL_RETRY_MS);
        while (!j->stopping && !j->want_fetch && td_now_ms() < until) {
            struct timespec ts = {.tv_sec = (time_t)(until / 1000),
                                  .tv_nsec = (long)(until % 1000) * 1000000L};
            pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        }
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

int td_jwks_check_file(const char *jwks_file, char *err, size_t errlen)
{
    struct key keys[MAX_KEYS];
    struct stat st;
    int n = load(jwks_file, keys, &st, err, errlen);
    if (n > 0) {
        size_t nk = (size_t)n;
        keys_clear(keys, &nk);
    }
    return n;
}

struct td_jwks *td_jwks_new(const char *what, const char *jwks_file, const char *jwks_url,
                            const char *issuer, const char *audience, char *err, size_t errlen)
{
    struct td_jwks *j = calloc(1, sizeof(*j));
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* td_now_ms()'s clock */
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    j->what = strdup(what);
    j->issuer = strdup(issuer);
    j->audience = strdup(audience);
    if (jwks_url) {
        j->url = strdup(jwks_url);
    } else {
        j->path = strdup(jwks_file);
    }
    if (!j->what || !(j->path || j->url) || !j->issuer || !j->audience) {
        snprintf(err, errlen, "out of memory");
        td_jwks_free(j);
        return NULL;
    }
    if (j->url) {
        /* No key until the first fetch ends: tokens are refused meanwhile (the daemon does
         * not wait for the network to start). */
        if (pthread_create(&j->thread, NULL, url_thread, j) != 0) {
            snprintf(err, errlen, "cannot start the jwks_url thread");
            td_jwks_free(j);
            return NULL;
        }
        j->thread_started = true;
        return j;
    }
    int n = load(jwks_file, j->keys, &j->st, err, errlen);
    if (n < 0) {
        td_jwks_free(j);
        return NULL;
    }
    j->nkeys = (size_t)n;
    j->checked_ms = td_now_ms();
    return j;
}

void td_jwks_free(struct td_jwks *j)
{
    if (!j) {
        return;
    }
    if (j->thread_started) {
        pthread_mutex_lock(&j->mu);
        j->stopping = true;
        pthread_cond_signal(&j->cv);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->thread, NULL); /* a fetch running ends within URL_TIMEOUT_MS */
    }
    keys_clear(j->keys, &j->nkeys);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j->what);
    free(j->url);
    free(j->path);
    free(j->issuer);
    free(j->audience);
    free(j);
}

/* Under mu: reloads the keys when the file changed. */
static void maybe_reload(struct td_jwks *j)
{
    if (j->url) {
        return; /* the fetch thread keeps the keys */
    }
    int64_t now = td_now_ms();
    if (now - j->checked_ms < RECHECK_MS) {
        return;
    }
    j->checked_ms = now;
    struct stat st;
    if (stat(j->path, &st) < 0) {
        return; /* being replaced, or gone: keep the keys we have */
    }
    if (st.st_mtim.tv_sec == j->st.st_mtim.tv_sec && st.st_mtim.tv_nsec == j->st.st_mtim.tv_nsec &&
        st.st_size == j->st.st_size && st.st_ino == j->st.st_ino) {
        return;
    }
    struct key keys[MAX_KEYS];
    char err[300];
    int n = load(j->path, keys, &st, err, sizeof(err));
    if (n < 0) {
        if (!j->reload_warned) {
            td_log_warn(NULL, NULL, NULL,
                        "%s: jwks_file changed but cannot be used (%s); keeping "
                        "the keys read before",
                        j->what, err);
            j->reload_warned = true;
        }
        j->st = st; /* not again until it changes again */
        return;
    }
    keys_clear(j->keys, &j->nkeys);
    memcpy(j->keys, keys, (size_t)n * sizeof(keys[0]));
    j->nkeys = (size_t)n;
    j->st = st;
    j->reload_warned = false;
    td_log_info(NULL, NULL, NULL, "%s: jwks_file reloaded (%d keys)", j->what, n);
}

/* JWS ES256 signatures are r || s (32 bytes each); OpenSSL verifies DER. */
static unsigned char *es256_der(const unsigned char *sig, size_t len, size_t *derlen)
{
    if (len != 64) {
        return NULL;
    }
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return NULL;
    }
    int n = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    if (n <= 0) {
        return NULL;
    }
    *derlen = (size_t)n;
    return der;
}

static bool verify_sig(EVP_PKEY *pkey, bool ec, const char *signed_part, size_t signed_len,
                       const unsigned char *sig, size_t siglen)
{
    unsigned char *der = NULL;
    size_t derlen = 0;
    if (ec) {
        der = es256_der(sig, siglen, &derlen);
        if (!der) {
            return false;
        }
        sig = der;
        siglen = derlen;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok =
        md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
        EVP_DigestVerify(md, sig, siglen, (const unsigned char *)signed_part, signed_len) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return ok;
}

static bool aud_matches(const cJSON *aud, const char *want)
{
    if (cJSON_IsString(aud)) {
        return strcmp(aud->valuestring, want) == 0;
    }
    const cJSON *a;
    if (cJSON_IsArray(aud)) {
        cJSON_ArrayForEach(a, aud)
        {
            if (cJSON_IsString(a) && strcmp(a->valuestring, want) == 0) {
                return true;
            }
        }
    }
    return false;
}

static cJSON *decode_json(const char *part, size_t len)
{
    size_t n = 0;
    unsigned char *b = b64url(part, len, &n);
    cJSON *j = b ? cJSON_ParseWithLength((const char *)b, n) : NULL;
    free(b);
    return cJSON_IsObject(j) ? j : (cJSON_Delete(j), NULL);
}

int td_jwks_verify(struct td_jwks *j, const char *token, char *why, size_t whylen)
{
    cJSON *hdr = NULL, *claims = NULL;
    unsigned char *sig = NULL;
    int rc = -1;
    size_t len = strnlen(token, MAX_TOKEN_BYTES + 1);
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (len > MAX_TOKEN_BYTES || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) {
        snprintf(why, whylen, "not a JWT (three base64url parts)");
        return -1;
    }
    hdr = decode_json(token, (size_t)(d1 - token));
    claims = decode_json(d1 + 1, (size_t)(d2 - d1 - 1));
    size_t siglen = 0;
    sig = b64url(d2 + 1, len - (size_t)(d2 + 1 - token), &siglen);
    if (!hdr || !claims || !sig) {
        snprintf(why, whylen, "not a JWT (a part is not base64url JSON)");
        goto out;
    }
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(hdr, "kid");
    bool ec;
    if (cJSON_IsString(alg) && strcmp(alg->valuestring, "RS256") == 0) {
        ec = false;
    } else if (cJSON_IsString(alg) && strcmp(alg->valuestring, "ES256") == 0) {
        ec = true;
    } else {
        snprintf(why, whylen, "alg must be RS256 or ES256");
        goto out;
    }
    bool verified = false, candidate = false;
    pthread_mutex_lock(&j->mu);
    maybe_reload(j);
    for (size_t i = 0; i < j->nkeys && !verified; i++) {
        const struct key *k = &j->keys[i];
        if (k->ec != ec || (cJSON_IsString(kid) && (!k->kid || strcmp(k->kid, kid->valuestring)))) {
            continue;
        }
        candidate = true;
        verified = verify_sig(k->pkey, ec, token, (size_t)(d2 - token), sig, siglen);
    }
    if (!candidate && j->url && td_now_ms() - j->fetched_ms >= URL_MIN_GAP_MS) {
        /* the issuer may have rotated its keys since the last fetch */
        j->want_fetch = true;
        pthread_cond_signal(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    if (!verified) {
        snprintf(why, whylen, candidate ? "bad signature" : "no key in the JWKS for this token");
        goto out;
    }
    int64_t now = (int64_t)time(NULL);
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(claims, "nbf");
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");
    if (!cJSON_IsNumber(exp)) {
        snprintf(why, whylen, "no exp claim");
    } else if (exp->valuedouble + TD_JWKS_LEEWAY_S <= (double)now) {
        snprintf(why, whylen, "expired");
    } else if (nbf && (!cJSON_IsNumber(nbf) || nbf->valuedouble - TD_JWKS_LEEWAY_S > (double)now)) {
        snprintf(why, whylen, "not valid yet (nbf)");
    } else if (!cJSON_IsString(iss) || strcmp(iss->valuestring, j->issuer) != 0) {
        snprintf(why, whylen, "wrong issuer");
    } else if (!aud_matches(cJSON_GetObjectItemCaseSensitive(claims, "aud"), j->audience)) {
        snprintf(why, whylen, "wrong audience");
    } else {
        rc = 0;
    }
out:
    cJSON_Delete(hdr);
    cJSON_Delete(claims);
    free(sig);
    return rc;
}
