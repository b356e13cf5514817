/* fuzz_time.c - td_ce_valid_time (RFC 3339, the `time` attribute) on any string, and
 * td_format_time_ms on any int64 (the first 8 bytes): what it writes must be valid RFC 3339.
 */
#include "cloudevent.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);
    char out[32];
    int64_t ms = 0;

    (void)td_ce_valid_time(s);
    memcpy(&ms, data, size < sizeof(ms) ? size : sizeof(ms));
    memset(out, 0x55, sizeof(out));
    td_format_time_ms(ms, out);
    FUZZ_CHECK(memchr(out, '\0', sizeof(out)) != NULL, "td_format_time_ms: not terminated");
    FUZZ_CHECK(td_ce_valid_time(out), "td_format_time_ms(%lld) wrote '%s'", (long long)ms, out);
    free(s);
    return 0;
}
