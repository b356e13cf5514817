/* fuzz_creds.c - the credential parsers (sinks/creds.c, sinks/aws.c) on any bytes: base64url
 * (td_base64url_decode), the JWT "exp" claim of a metadata-server token (td_jwt_exp, both on the
 * input as a token and on a token whose claims are the input), the STS XML answer (td_xml_text
 * for every field, td_aws_parse_time_ms on the Expiration), and the header-safety check every
 * fetched value passes (td_secret_header_safe).
 *
 * Checks: no undefined behaviour (a JSON exp of 1e17 overflowed exp * 1000, 1e300 was an
 * out-of-range cast); an exp is -1 or within 1..TD_CREDS_MAX_EPOCH_S, so the callers' * 1000
 * cannot overflow; base64url output is bounded and NUL-terminated; a value that passes the
 * header check holds no byte below 0x21 and no 0x7F.
 */
#include "aws.h"
#include "cloudevent.h"
#include "creds.h"
#include "fuzz_common.h"
#include "secret.h"

static void check_exp(int64_t exp, const char *what)
{
    FUZZ_CHECK(exp == -1 || (exp > 0 && exp <= TD_CREDS_MAX_EPOCH_S), "%s: exp %lld", what,
               (long long)exp);
    if (exp > 0) {
        int64_t ms = exp * 1000; /* what gcp.c does with it */
        FUZZ_CHECK(ms / 1000 == exp, "%s: exp * 1000 overflows", what);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const tags[] = {"AccessKeyId", "SecretAccessKey", "SessionToken",
                                       "Expiration"};
    char *s = fuzz_strndup(data, size);
    size_t n = 0;
    unsigned char *dec = td_base64url_decode((const char *)data, size, &n);

    if (dec) {
        FUZZ_CHECK(n <= size * 3 / 4 + 1, "base64url: %zu bytes out of %zu", n, size);
        FUZZ_CHECK(dec[n] == '\0', "base64url: not NUL-terminated");
        free(dec);
    }

    /* The input as a token, then as the claims of one. */
    check_exp(td_jwt_exp(s), "token");
    char *b64 = td_base64_encode(data, size);
    FUZZ_CHECK(b64 != NULL, "base64 of %zu bytes", size);
    for (char *p = b64; *p; p++) {
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p == '=' ? '\0' : *p;
    }
    size_t jlen = strlen(b64) + 32;
    char *jwt = malloc(jlen);
    FUZZ_CHECK(jwt != NULL, "oom");
    snprintf(jwt, jlen, "eyJhbGciOiJub25lIn0.%s.sig", b64);
    check_exp(td_jwt_exp(jwt), "claims");
    free(jwt);
    free(b64);

    /* The STS answer. */
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        char *v = td_xml_text((const char *)data, size, tags[i]);
        if (!v) {
            continue;
        }
        if (i == 3) {
            long long ms = td_aws_parse_time_ms(v);
            (void)ms;
        }
        if (td_secret_header_safe(v)) {
            for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
                FUZZ_CHECK(*p >= 0x21 && *p != 0x7f, "header-safe value holds 0x%02x", *p);
            }
        }
        td_secret_free(v);
    }
    (void)td_aws_parse_time_ms(s);
    td_secret_free(s);
    return 0;
}
