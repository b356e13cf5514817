/* fuzz_ce_json.c - td_ce_from_json (the JSON event format, structured mode) on any bytes; an
 * accepted event goes through every encoder and back (fuzz_ce.h).
 */
#include "fuzz_ce.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    struct td_event *ev = td_ce_from_json((const char *)data, size, err, sizeof(err));

    if (ev) {
        fuzz_ce_roundtrips(ev);
    } else {
        FUZZ_CHECK(err[0] != '\0', "refused without a message");
    }
    td_event_unref(ev);
    return 0;
}
