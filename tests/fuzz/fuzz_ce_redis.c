/* fuzz_ce_redis.c - the Redis stream binding (README "Redis Streams"): td_ce_from_redis,
 * td_ce_salvage_redis and td_ce_wrap_redis on an entry built from the input. Lines (split on
 * '\n') are: the entry id, then field, value, field, value... Each string is in a buffer of
 * its own, NUL-terminated as hiredis hands them over, so NUL bytes inside values are possible.
 * A read event must be valid and survive every encoder (fuzz_ce.h); a refused entry must
 * still salvage and wrap into something the dead-letter encoders can write.
 */
#include "fuzz_ce.h"

#define MAX_FIELDS 512

static void dead_letter_encodes(const struct td_event *ev)
{
    struct td_redis_fields f = {0};
    size_t len = 0;
    char *json = td_ce_to_json(ev, &len);

    free(json);
    if (td_ce_to_redis(ev, &f) == 0) {
        td_redis_fields_free(&f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *strs[2 * MAX_FIELDS + 1];
    size_t lens[2 * MAX_FIELDS + 1];
    const char *fields[MAX_FIELDS];
    const char *values[MAX_FIELDS];
    size_t flens[MAX_FIELDS];
    size_t vlens[MAX_FIELDS];
    size_t nstr = 0;
    size_t pos = 0;
    struct td_redis_entry entry;
    struct td_event *ev;
    char err[256] = "";
    bool wrapped = false;

    while (nstr < 2 * MAX_FIELDS + 1) {
        const uint8_t *nl = pos < size ? memchr(data + pos, '\n', size - pos) : NULL;
        size_t end = nl ? (size_t)(nl - data) : size;
        strs[nstr] = fuzz_strndup(data + pos, end - pos);
        lens[nstr] = end - pos;
        nstr++;
        if (!nl) {
            break;
        }
        pos = end + 1;
    }
    if (nstr % 2 == 0) { /* a field without a value gets an empty one */
        strs[nstr] = fuzz_strndup(data, 0);
        lens[nstr] = 0;
        nstr++;
    }
    for (size_t i = 1; i + 1 < nstr; i += 2) {
        fields[i / 2] = strs[i];
        flens[i / 2] = lens[i];
        values[i / 2] = strs[i + 1];
        vlens[i / 2] = lens[i + 1];
    }
    entry = (struct td_redis_entry){strs[0], fields, flens, values, vlens, nstr / 2};

    ev = td_ce_from_redis(&entry, "com.example.fuzz", "/fuzz", &wrapped, err, sizeof(err));
    if (ev) {
        fuzz_ce_roundtrips(ev);
        td_event_unref(ev);
    } else {
        FUZZ_CHECK(err[0] != '\0', "refused without a message");
        ev = td_ce_salvage_redis(&entry, "com.example.fuzz", "/fuzz");
        FUZZ_CHECK(ev != NULL, "salvage failed");
        dead_letter_encodes(ev);
        td_event_unref(ev);
    }
    ev = td_ce_wrap_redis(&entry, "com.example.fuzz", "/fuzz");
    FUZZ_CHECK(ev != NULL, "wrap failed");
    dead_letter_encodes(ev);
    td_event_unref(ev);

    for (size_t i = 0; i < nstr; i++) {
        free(strs[i]);
    }
    return 0;
}
