/* fuzz_ce_amqp.c - the AMQP 0-9-1 binding (broker/wire/ce_amqp.c): td_ce_from_amqp and
 * td_ce_wrap_amqp on a delivery built from the input. Lines (split on '\n'): 1, property flags
 * (first byte: 1 content type, 2 message id, 4 timestamp, 8 headers); 2, the content type; 3, the
 * message id; 4, the timestamp (its first 8 bytes, little-endian); 5, the body; then header key,
 * header value, key, value... The first byte of a value picks its field kind and the rest is its
 * payload: S utf8, B bytes, b boolean, i i8, I i32, l i64, U u64, f f32, d f64, t timestamp, T an
 * empty table, A an empty array, anything else void. Numbers take up to 8 payload bytes.
 *
 * A read event must be valid and survive every encoder (fuzz_ce.h); a refused delivery must still
 * wrap (what is dead-lettered) into something the dead-letter encoders can write.
 */
#include "fuzz_ce.h"

#define MAX_LINES 1024

static amqp_field_value_t field(const char *s, size_t len)
{
    amqp_field_value_t v;
    uint64_t num = 0;

    memset(&v, 0, sizeof(v));
    if (len > 1) {
        memcpy(&num, s + 1, len - 1 < 8 ? len - 1 : 8);
    }
    switch (len ? s[0] : 0) {
    case 'S':
    case 'B':
        v.kind = s[0] == 'S' ? AMQP_FIELD_KIND_UTF8 : AMQP_FIELD_KIND_BYTES;
        v.value.bytes.bytes = (void *)(s + 1);
        v.value.bytes.len = len - 1;
        break;
    case 'b':
        v.kind = AMQP_FIELD_KIND_BOOLEAN;
        v.value.boolean = (amqp_boolean_t)(num & 1);
        break;
    case 'i':
        v.kind = AMQP_FIELD_KIND_I8;
        v.value.i8 = (int8_t)num;
        break;
    case 'I':
        v.kind = AMQP_FIELD_KIND_I32;
        v.value.i32 = (int32_t)num;
        break;
    case 'l':
        v.kind = AMQP_FIELD_KIND_I64;
        v.value.i64 = (int64_t)num;
        break;
    case 'U':
        v.kind = AMQP_FIELD_KIND_U64;
        v.value.u64 = num;
        break;
    case 'f':
        v.kind = AMQP_FIELD_KIND_F32;
        memcpy(&v.value.f32, &num, sizeof(v.value.f32));
        break;
    case 'd':
        v.kind = AMQP_FIELD_KIND_F64;
        memcpy(&v.value.f64, &num, sizeof(v.value.f64));
        break;
    case 't':
        v.kind = AMQP_FIELD_KIND_TIMESTAMP;
        v.value.u64 = num;
        break;
    case 'T':
        v.kind = AMQP_FIELD_KIND_TABLE;
        break;
    case 'A':
        v.kind = AMQP_FIELD_KIND_ARRAY;
        break;
    default:
        v.kind = AMQP_FIELD_KIND_VOID;
        break;
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *strs[MAX_LINES + 1];
    size_t lens[MAX_LINES + 1];
    amqp_table_entry_t entries[MAX_LINES / 2];
    size_t nstr = 0;
    size_t pos = 0;
    char err[256] = "";
    bool wrapped = false;
    struct td_event *ev;
    amqp_basic_properties_t p;
    uint64_t ts = 0;

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
    while (nstr < 5) {
        strs[nstr] = fuzz_strndup(data, 0);
        lens[nstr++] = 0;
    }
    if (nstr % 2 == 0) { /* a key without a value gets a void one */
        strs[nstr] = fuzz_strndup(data, 0);
        lens[nstr++] = 0;
    }
    memset(&p, 0, sizeof(p));
    unsigned flags = lens[0] ? (unsigned char)strs[0][0] : 0;
    if (flags & 1) {
        p._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        p.content_type = (amqp_bytes_t){lens[1], strs[1]};
    }
    if (flags & 2) {
        p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        p.message_id = (amqp_bytes_t){lens[2], strs[2]};
    }
    if (flags & 4) {
        memcpy(&ts, strs[3], lens[3] < 8 ? lens[3] : 8);
        p._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
        p.timestamp = ts;
    }
    if (flags & 8) {
        p._flags |= AMQP_BASIC_HEADERS_FLAG;
        p.headers.entries = entries;
        for (size_t i = 5; i + 1 < nstr; i += 2) {
            amqp_table_entry_t *e = &entries[p.headers.num_entries++];
            e->key = (amqp_bytes_t){lens[i], strs[i]};
            e->value = field(strs[i + 1], lens[i + 1]);
        }
    }

    ev = td_ce_from_amqp(&p, strs[4], lens[4], "fuzzq", "com.example.fuzz", "/fuzz", &wrapped, err,
                         sizeof(err));
    if (ev) {
        fuzz_ce_roundtrips(ev);
        td_event_unref(ev);
    } else {
        FUZZ_CHECK(err[0] != '\0', "refused without a message");
    }
    ev = td_ce_wrap_amqp(&p, strs[4], lens[4], "fuzzq", "com.example.fuzz", "/fuzz");
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
