/* fuzz_percent.c - td_ce_percent_decode (HTTP binary-mode header values) on any string, and
 * the round trips: decode(encode(s)) == s for valid UTF-8, encode(decode(s)) decodes to the
 * same text.
 */
#include "ce_http.h"
#include "ce_internal.h"
#include "cloudevent.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);
    char *dec = td_ce_percent_decode(s);
    char *enc = td_ce_percent_encode(s);

    if (dec) {
        FUZZ_CHECK(td_ce_utf8_valid((const unsigned char *)dec, strlen(dec)),
                   "decoded to invalid UTF-8");
        char *again = td_ce_percent_encode(dec);
        FUZZ_CHECK(again != NULL, "cannot encode what was decoded");
        char *back = td_ce_percent_decode(again);
        FUZZ_CHECK(back != NULL && strcmp(back, dec) == 0, "encode/decode changed '%s'", dec);
        free(back);
        free(again);
    }
    FUZZ_CHECK(enc != NULL, "encode failed");
    for (const char *p = enc; *p; p++) {
        unsigned char c = (unsigned char)*p;
        FUZZ_CHECK(c >= 0x21 && c <= 0x7e && c != '"', "encoded output has byte 0x%02x", c);
    }
    if (td_ce_utf8_valid((const unsigned char *)s, strlen(s))) {
        char *back = td_ce_percent_decode(enc);
        FUZZ_CHECK(back != NULL && strcmp(back, s) == 0, "decode(encode(s)) != s for '%s'", s);
        free(back);
    }
    free(enc);
    free(dec);
    free(s);
    return 0;
}
