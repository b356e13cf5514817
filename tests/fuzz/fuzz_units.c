/* fuzz_units.c - td_parse_duration and td_parse_size (every duration and size of the trigger
 * file) on any string: a result is never negative, and reads back the same when written in
 * the smallest unit ("<ms>ms" below 10^14 ms, "<bytes>").
 */
#include <inttypes.h>

#include "config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);
    int64_t v = -1;
    char buf[64];

    if (td_parse_duration(s, &v) == 0) {
        FUZZ_CHECK(v >= 0, "duration '%s' is %" PRId64 " ms", s, v);
        int64_t back = -1;
        /* The digit limit of the number does not depend on the unit: 1e15 s parses, 1e15 ms
         * does not. Harmless (30 000 years); checked below that. */
        if (v >= INT64_C(100000000000000)) {
            v = 0;
        }
        snprintf(buf, sizeof(buf), "%" PRId64 "ms", v);
        FUZZ_CHECK(td_parse_duration(buf, &back) == 0 && back == v, "'%s' reads back as %" PRId64,
                   buf, back);
    }
    v = -1;
    if (td_parse_size(s, &v) == 0) {
        FUZZ_CHECK(v >= 0, "size '%s' is %" PRId64, s, v);
        int64_t back = -1;
        snprintf(buf, sizeof(buf), "%" PRId64, v);
        FUZZ_CHECK(td_parse_size(buf, &back) == 0 && back == v, "'%s' reads back as %" PRId64, buf,
                   back);
    }
    free(s);
    return 0;
}
