/* fuzz_ce_kafka.c - the Kafka binding (broker/wire/ce_kafka.c): td_ce_from_kafka and
 * td_ce_wrap_kafka on a record built from the input. Lines (split on '\n') are: the key (an
 * empty line: no key), the value (a line holding only 0x01: a tombstone), then header name,
 * header value, name, value... (a value holding only 0x01 is a null header). Each value is in a
 * buffer of its own, as librdkafka hands them over, so NULs inside values are possible.
 *
 * A read event must be valid and survive every encoder (fuzz_ce.h); a refused record must still
 * wrap (what is dead-lettered) into something the dead-letter encoders can write.
 */
#include "fuzz_ce.h"

#define MAX_LINES 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *strs[MAX_LINES + 1];
    size_t lens[MAX_LINES + 1];
    const char *hnames[MAX_LINES / 2];
    const void *hvalues[MAX_LINES / 2];
    size_t hlens[MAX_LINES / 2];
    size_t nstr = 0;
    size_t pos = 0;
    char err[256] = "";
    bool wrapped = false;
    struct td_event *ev;

    while (nstr < MAX_LINES) {
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
    while (nstr < 2) {
        strs[nstr] = fuzz_strndup(data, 0);
        lens[nstr++] = 0;
    }
    if (nstr % 2 == 1) { /* a header without a value gets an empty one */
        strs[nstr] = fuzz_strndup(data, 0);
        lens[nstr++] = 0;
    }
    struct td_kafka_record rec = {
        .topic = "fuzz",
        .partition = 3,
        .offset = 42,
        .timestamp_ms = 1700000000000,
        .key = lens[0] ? strs[0] : NULL,
        .key_len = lens[0],
        .value = (lens[1] == 1 && strs[1][0] == 1) ? NULL : strs[1],
        .value_len = (lens[1] == 1 && strs[1][0] == 1) ? 0 : lens[1],
        .hnames = hnames,
        .hvalues = hvalues,
        .hlens = hlens,
    };
    for (size_t i = 2; i + 1 < nstr; i += 2) {
        bool null = lens[i + 1] == 1 && strs[i + 1][0] == 1;
        hnames[rec.nheaders] = strs[i];
        hvalues[rec.nheaders] = null ? NULL : strs[i + 1];
        hlens[rec.nheaders] = null ? 0 : lens[i + 1];
        rec.nheaders++;
    }

    ev = td_ce_from_kafka(&rec, "com.example.fuzz", "/fuzz", &wrapped, err, sizeof(err));
    if (ev) {
        fuzz_ce_roundtrips(ev);
        td_event_unref(ev);
    } else {
        FUZZ_CHECK(err[0] != '\0', "refused without a message");
    }
    ev = td_ce_wrap_kafka(&rec, "com.example.fuzz", "/fuzz");
    FUZZ_CHECK(ev != NULL, "wrap failed");
    char *json = td_ce_to_json(ev, NULL);
    free(json);
    struct td_redis_fields f = {0};
    if (td_ce_to_redis(ev, &f) == 0) {
        td_redis_fields_free(&f);
    }
    td_event_unref(ev);

    for (size_t i = 0; i < nstr; i++) {
        free(strs[i]);
    }
    return 0;
}
