/* test_jwks.c - the ingress's JWT verifier (sources/jwks.c) on hostile and edge-case input, with
 * a P-256 key this test makes with OpenSSL: a valid ES256 token passes; malformed tokens (empty,
 * missing parts, bad base64url, non-JSON parts, oversized, a signature of the wrong length),
 * other algorithms, a flipped signature bit, and claims outside their limits (exp within and
 * beyond the leeway, nbf, iss, aud as string and array) are refused without a crash; JWKS files
 * that are not JWKS or hold no usable key are refused with a message. The integration test
 * (test_ingress_jwt.py) checks tokens signed by an independent implementation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "jwks.h"

static char g_dir[] = "/tmp/td-jwks-XXXXXX";
static char g_jwks[256];
static EVP_PKEY *g_key;

static char *b64u(const unsigned char *in, size_t len)
{
    char *out = malloc(len * 4 / 3 + 8);
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    while (n > 0 && out[n - 1] == '=') {
        n--;
    }
    out[n] = '\0';
    for (char *p = out; *p; p++) {
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    }
    return out;
}

static char *b64u_str(const char *s)
{
    return b64u((const unsigned char *)s, strlen(s));
}

/* header.payload.signature with ES256 over the first two (raw r || s). Caller frees. */
static char *sign(const char *header, const char *claims)
{
    char *h = b64u_str(header), *p = b64u_str(claims);
    size_t n = strlen(h) + strlen(p) + 2;
    char *signing = malloc(n);
    snprintf(signing, n, "%s.%s", h, p);
    unsigned char der[128];
    size_t derlen = sizeof(der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, g_key), 1);
    assert_int_equal(EVP_DigestSign(md, der, &derlen, (unsigned char *)signing, strlen(signing)),
                     1);
    EVP_MD_CTX_free(md);
    const unsigned char *q = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)derlen);
    unsigned char raw[64];
    BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
    ECDSA_SIG_free(es);
    char *s = b64u(raw, 64);
    size_t tn = strlen(signing) + strlen(s) + 2;
    char *tok = malloc(tn);
    snprintf(tok, tn, "%s.%s", signing, s);
    free(h);
    free(p);
    free(signing);
    free(s);
    return tok;
}

static char *claims(long exp_off, const char *extra)
{
    char *c = malloc(512);
    long now = (long)time(NULL);
    snprintf(c, 512, "{\"iss\":\"https://iss\",\"aud\":\"triggerd\",\"exp\":%ld%s}", now + exp_off,
             extra ? extra : "");
    return c;
}

static const char *const HDR = "{\"alg\":\"ES256\",\"kid\":\"k1\"}";

static int setup(void **state)
{
    assert_non_null(mkdtemp(g_dir));
    g_key = EVP_EC_gen("P-256");
    assert_non_null(g_key);
    unsigned char pub[65];
    size_t publen = 0;
    assert_int_equal(
        EVP_PKEY_get_octet_string_param(g_key, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &publen),
        1);
    assert_int_equal(publen, 65);
    char *x = b64u(pub + 1, 32), *y = b64u(pub + 33, 32);
    snprintf(g_jwks, sizeof(g_jwks), "%s/jwks.json", g_dir);
    FILE *f = fopen(g_jwks, "w");
    fprintf(f,
            "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"},"
            "{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
            "{\"kty\":\"EC\",\"kid\":\"k1\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}",
            x, y);
    fclose(f);
    free(x);
    free(y);
    return 0;
}

static int teardown(void **state)
{
    EVP_PKEY_free(g_key);
    unlink(g_jwks);
    rmdir(g_dir);
    return 0;
}

static struct td_jwks *verifier(void)
{
    char err[300];
    struct td_jwks *j =
        td_jwks_new("test", g_jwks, NULL, "https://iss", "triggerd", err, sizeof(err));
    if (!j) {
        fail_msg("%s", err);
    }
    return j;
}

static void expect(struct td_jwks *j, const char *token, int want, const char *why_part)
{
    char why[128] = "";
    int rc = td_jwks_verify(j, token, why, sizeof(why));
    if (rc != want || (why_part && !strstr(why, why_part))) {
        fail_msg("token %.60s: rc %d (want %d), why '%s' (want '%s')", token, rc, want, why,
                 why_part ? why_part : "");
    }
}

static void test_valid_and_claims(void **state)
{
    struct td_jwks *j = verifier();
    char *c, *t;
    c = claims(300, NULL);
    t = sign(HDR, c);
    expect(j, t, 0, NULL);
    free(t);
    free(c);
    c = claims(-10, NULL); /* expired 10 s ago: within the leeway */
    t = sign(HDR, c);
    expect(j, t, 0, NULL);
    free(t);
    free(c);
    c = claims(-(TD_JWKS_LEEWAY_S + 5), NULL);
    t = sign(HDR, c);
    expect(j, t, -1, "expired");
    free(t);
    free(c);
    c = claims(300, ",\"nbf\":99999999999");
    t = sign(HDR, c);
    expect(j, t, -1, "nbf");
    free(t);
    free(c);
    t = sign(HDR, "{\"iss\":\"https://iss\",\"aud\":\"triggerd\"}");
    expect(j, t, -1, "exp");
    free(t);
    t = sign(HDR, "{\"iss\":\"https://iss\",\"aud\":[\"x\",\"triggerd\"],\"exp\":1e300}");
    expect(j, t, 0, NULL);
    free(t);
    t = sign(HDR, "{\"iss\":\"https://iss\",\"aud\":[\"x\",7],\"exp\":1e300}");
    expect(j, t, -1, "audience");
    free(t);
    t = sign(HDR, "{\"iss\":\"https://iss/\",\"aud\":\"triggerd\",\"exp\":1e300}");
    expect(j, t, -1, "issuer");
    free(t);
    t = sign(HDR, "{\"iss\":\"https://iss\",\"aud\":\"triggerd\",\"exp\":\"1e300\"}");
    expect(j, t, -1, "exp");
    free(t);
    td_jwks_free(j);
}

static void test_malformed(void **state)
{
    struct td_jwks *j = verifier();
    const char *bad[] = {"",
                         ".",
                         "..",
                         "...",
                         "a.b.c",
                         "a.b",
                         "eyJ9.e30.",
                         "e30.e30.e30",
                         "eyJhbGciOiJFUzI1NiJ9.e30.@@@",
                         "eyJhbGciOiJFUzI1NiJ9.=.AA",
                         "eyJhbGciOiJFUzI1NiJ9.e30.A"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect(j, bad[i], -1, NULL);
    }
    /* oversized */
    char *big = malloc(40000);
    memset(big, 'A', 39999);
    big[39999] = '\0';
    big[10] = '.';
    big[20] = '.';
    expect(j, big, -1, "not a JWT");
    free(big);
    /* other algorithms, with a real signature underneath */
    char *c = claims(300, NULL);
    const char *algs[] = {"{\"alg\":\"none\"}",
                          "{\"alg\":\"HS256\",\"kid\":\"k1\"}",
                          "{\"alg\":\"RS256\",\"kid\":\"k1\"}",
                          "{\"alg\":\"ES384\"}",
                          "{\"alg\":7}",
                          "{}"};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        char *t = sign(algs[i], c);
        expect(j, t, -1, i == 2 ? "no key" : "alg");
        free(t);
    }
    /* a flipped signature bit, a truncated signature, an unknown kid */
    char *t = sign(HDR, c);
    char *last = t + strlen(t) - 5;
    *last = *last == 'A' ? 'B' : 'A';
    expect(j, t, -1, "signature");
    t[strlen(t) - 4] = '\0';
    expect(j, t, -1, NULL);
    free(t);
    t = sign("{\"alg\":\"ES256\",\"kid\":\"k2\"}", c);
    expect(j, t, -1, "no key");
    free(t);
    t = sign("{\"alg\":\"ES256\"}", c); /* no kid: every EC key is tried */
    expect(j, t, 0, NULL);
    free(t);
    free(c);
    td_jwks_free(j);
}

static void test_files(void **state)
{
    char path[300], err[300];
    snprintf(path, sizeof(path), "%s/bad.json", g_dir);
    const char *docs[] = {
        "",
        "[]",
        "{\"keys\":{}}",
        "{\"keys\":[]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
        "not json"};
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        FILE *f = fopen(path, "w");
        fputs(docs[i], f);
        fclose(f);
        err[0] = '\0';
        assert_int_equal(td_jwks_check_file(path, err, sizeof(err)), -1);
        assert_non_null(strstr(err, path));
        assert_null(td_jwks_new("t", path, NULL, "i", "a", err, sizeof(err)));
    }
    unlink(path);
    assert_int_equal(td_jwks_check_file(path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot be read"));
    assert_int_equal(td_jwks_check_file(g_jwks, err, sizeof(err)), 1); /* oct, small RSA skipped */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_and_claims),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
