/* fuzz_base64.c - td_base64_decode (data_base64 of the JSON format) on any bytes, and the
 * round trips: decode(encode(x)) == x, and a decoded value re-encodes to something that
 * decodes to it again.
 */
#include "cloudevent.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0;
    unsigned char *dec = td_base64_decode((const char *)data, size, &n);
    char *enc;

    if (dec) {
        enc = td_base64_encode(dec, n);
        FUZZ_CHECK(enc != NULL, "cannot encode %zu decoded bytes", n);
        size_t n2 = 0;
        unsigned char *back = td_base64_decode(enc, strlen(enc), &n2);
        FUZZ_CHECK(back != NULL && n2 == n && (n == 0 || memcmp(back, dec, n) == 0),
                   "re-encoded '%s' decodes differently", enc);
        free(back);
        free(enc);
        free(dec);
    }
    enc = td_base64_encode(data, size);
    FUZZ_CHECK(enc != NULL, "cannot encode %zu bytes", size);
    FUZZ_CHECK(strlen(enc) == (size + 2) / 3 * 4, "encoded length %zu for %zu bytes", strlen(enc),
               size);
    dec = td_base64_decode(enc, strlen(enc), &n);
    FUZZ_CHECK(dec != NULL && n == size && (size == 0 || memcmp(dec, data, size) == 0),
               "decode(encode(x)) != x for %zu bytes", size);
    free(dec);
    free(enc);
    return 0;
}
