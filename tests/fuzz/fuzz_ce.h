/* fuzz_ce.h - round trips through the CloudEvents codecs, shared by the CloudEvents targets.
 *
 * fuzz_ce_roundtrips(ev) takes an event a decoder accepted and checks that every encoder's
 * output decodes back to the same attributes (and, for the binary modes, the same data bytes):
 * the JSON format, HTTP binary mode, the Redis stream binding, Kafka and AMQP binary mode.
 * An encoder may refuse an event (an invalid attribute name, a value a header cannot carry);
 * what it produces must read back.
 */
#ifndef TD_FUZZ_CE_H
#define TD_FUZZ_CE_H

#include <amqp.h>
#include <cjson/cJSON.h>

#include "ce_amqp.h"
#include "ce_http.h"
#include "ce_internal.h"
#include "ce_json.h"
#include "ce_kafka.h"
#include "ce_redis.h"
#include "cloudevent.h"
#include "fuzz_common.h"
#include "json_text.h"

/* Every attribute of A is in B with the same string value. */
static inline void fuzz_ce_attrs_within(const struct td_event *a, const struct td_event *b,
                                        const char *how)
{
    for (size_t i = 0; i < a->nattrs; i++) {
        const char *v = td_event_get(b, a->attrs[i].name);
        FUZZ_CHECK(v != NULL, "%s: attribute '%s' lost", how, a->attrs[i].name);
        FUZZ_CHECK(strcmp(v, a->attrs[i].value) == 0, "%s: attribute '%s': '%s' became '%s'", how,
                   a->attrs[i].name, a->attrs[i].value, v);
    }
}

static inline void fuzz_ce_same(const struct td_event *a, const struct td_event *b, bool data,
                                const char *how)
{
    fuzz_ce_attrs_within(a, b, how);
    fuzz_ce_attrs_within(b, a, how);
    if (data) {
        size_t alen = a->data ? a->data_len : 0;
        size_t blen = b->data ? b->data_len : 0;
        FUZZ_CHECK(alen == blen && (alen == 0 || memcmp(a->data, b->data, alen) == 0),
                   "%s: data changed (%zu bytes became %zu)", how, alen, blen);
    }
}

static inline void fuzz_ce_json_roundtrip(const struct td_event *ev)
{
    char err[256] = "";
    size_t len = 0;
    char *json = td_ce_to_json(ev, &len);
    struct td_event *back;

    if (!json) {
        return;
    }
    FUZZ_CHECK(strlen(json) == len, "td_ce_to_json: length %zu, strlen %zu", len, strlen(json));
    back = td_ce_from_json(json, len, err, sizeof(err));
    FUZZ_CHECK(back != NULL, "json: own output refused: %s\n%s", err, json);
    fuzz_ce_attrs_within(ev, back, "json");
    fuzz_ce_attrs_within(back, ev, "json");
    /* Strict JSON data that went as "data" comes back as the same text without the blanks
     * between tokens (json_text.h), and the JSON text is one line (JSON-lines files). */
    size_t a = 0;
    size_t b = 0;
    FUZZ_CHECK(strchr(json, '\n') == NULL, "json: more than one line\n%s", json);
    if (ev->data != NULL && td_ce_is_json_type(td_event_get(ev, "datacontenttype")) &&
        td_json_strict((const char *)ev->data, ev->data_len, &a, &b)) {
        cJSON *root = cJSON_ParseWithLength(json, len);
        FUZZ_CHECK(root != NULL, "json: cJSON refuses our output\n%s", json);
        if (cJSON_GetObjectItemCaseSensitive(root, "data") != NULL) {
            char *want = malloc(b - a + 1);
            if (!want) {
                abort();
            }
            size_t n = td_json_compact((const char *)ev->data + a, b - a, want);
            FUZZ_CHECK(back->data != NULL && back->data_len == n &&
                           memcmp(back->data, want, n) == 0,
                       "json: strict data changed: %s", want);
            free(want);
        }
        cJSON_Delete(root);
    }
    /* A second trip must be exact: the first one has made cJSON-only JSON data strict. */
    char *json2 = td_ce_to_json(back, &len);
    if (json2) {
        FUZZ_CHECK(strcmp(json, json2) == 0, "json: not stable\n%s\n%s", json, json2);
        free(json2);
    }
    td_event_unref(back);
    free(json);
}

static inline void fuzz_ce_http_roundtrip(const struct td_event *ev)
{
    struct td_http_headers h = {0};
    const unsigned char *body = NULL;
    size_t len = 0;
    char err[256] = "";
    bool not_ce = false;
    struct td_event *back;

    /* Known (README.md, finding 3): binary mode writes datacontenttype as Content-Type, and a
     * receiver reads application/cloudevents+json there as structured mode. */
    const char *dct = td_event_get(ev, "datacontenttype");
    if (td_ce_media_is(dct, "application/cloudevents+json") ||
        td_ce_media_is(dct, "application/cloudevents-batch+json")) {
        return;
    }
    if (td_ce_http_encode_binary(ev, &h, &body, &len) != 0) {
        return;
    }
    back = td_ce_http_decode(&h, body, len, &not_ce, err, sizeof(err));
    FUZZ_CHECK(back != NULL, "http binary: own output refused (not_ce %d): %s", not_ce, err);
    fuzz_ce_same(ev, back, true, "http binary");
    td_event_unref(back);
    td_http_headers_free(&h);
}

static inline void fuzz_ce_redis_roundtrip(const struct td_event *ev)
{
    struct td_redis_fields f = {0};
    const char **fields;
    const char **values;
    size_t *flens;
    size_t *vlens;
    struct td_redis_entry entry;
    char err[256] = "";
    bool wrapped = true;
    struct td_event *back;

    if (td_ce_to_redis(ev, &f) != 0) {
        return;
    }
    FUZZ_CHECK(f.n % 2 == 0, "redis: odd field count %zu", f.n);
    fields = calloc(f.n / 2 + 1, sizeof(*fields));
    values = calloc(f.n / 2 + 1, sizeof(*values));
    flens = calloc(f.n / 2 + 1, sizeof(*flens));
    vlens = calloc(f.n / 2 + 1, sizeof(*vlens));
    if (!fields || !values || !flens || !vlens) {
        abort();
    }
    for (size_t i = 0; i < f.n / 2; i++) {
        fields[i] = f.argv[2 * i];
        flens[i] = f.lens[2 * i];
        values[i] = f.argv[2 * i + 1];
        vlens[i] = f.lens[2 * i + 1];
    }
    entry = (struct td_redis_entry){"1700000000000-0", fields, flens, values, vlens, f.n / 2};
    back = td_ce_from_redis(&entry, "fuzz.type", "/fuzz", &wrapped, err, sizeof(err));
    FUZZ_CHECK(back != NULL, "redis: own output refused: %s", err);
    FUZZ_CHECK(!wrapped, "redis: own output read back as a wrapped entry");
    fuzz_ce_same(ev, back, true, "redis");
    td_event_unref(back);
    free(fields);
    free(values);
    free(flens);
    free(vlens);
    td_redis_fields_free(&f);
}

static inline void fuzz_ce_kafka_roundtrip(const struct td_event *ev)
{
    struct td_kafka_headers kh = {0};
    struct td_kafka_record rec;
    size_t *hlens;
    const char *key;
    char err[256] = "";
    bool wrapped = true;
    struct td_event *back;

    if (td_ce_to_kafka(ev, &kh) != 0) {
        return;
    }
    hlens = calloc(kh.n + 1, sizeof(*hlens));
    if (!hlens) {
        abort();
    }
    for (size_t i = 0; i < kh.n; i++) {
        hlens[i] = strlen(kh.values[i]);
    }
    key = td_event_get(ev, "partitionkey");
    memset(&rec, 0, sizeof(rec));
    rec.topic = "fuzz";
    rec.timestamp_ms = 1700000000000;
    rec.key = key;
    rec.key_len = key ? strlen(key) : 0;
    rec.value = ev->data;
    rec.value_len = ev->data ? ev->data_len : 0;
    rec.hnames = (const char *const *)kh.names;
    rec.hvalues = (const void *const *)kh.values;
    rec.hlens = hlens;
    rec.nheaders = kh.n;
    back = td_ce_from_kafka(&rec, "fuzz.type", "/fuzz", &wrapped, err, sizeof(err));
    /* Finding 2 (fixed): every binding accepts the same attribute names (TD_CE_NAME_MAX). */
    if (ev->nattrs <= TD_KAFKA_MAX_HEADER_ATTRS) {
        FUZZ_CHECK(back != NULL, "kafka: own output refused: %s", err);
    }
    if (back) {
        FUZZ_CHECK(!wrapped, "kafka: own output read back as a wrapped record");
        fuzz_ce_same(ev, back, true, "kafka");
    }
    td_event_unref(back);
    free(hlens);
    td_kafka_headers_free(&kh);
}

static inline void fuzz_ce_amqp_roundtrip(const struct td_event *ev)
{
    struct td_amqp_out *out = td_ce_to_amqp(ev);
    const void *body;
    size_t len = 0;
    char err[256] = "";
    bool wrapped = true;
    struct td_event *back;

    if (!out) {
        return;
    }
    body = td_amqp_out_body(out, &len);
    back = td_ce_from_amqp(td_amqp_out_props(out), body, len, "fuzz", "fuzz.type", "/fuzz",
                           &wrapped, err, sizeof(err));
    if (ev->nattrs <= TD_AMQP_MAX_HEADER_ATTRS) {
        FUZZ_CHECK(back != NULL, "amqp: own output refused: %s", err);
    }
    if (back) {
        /* Finding 1 (fixed): a datacontenttype that is empty or over 255 bytes is invalid, so
         * a decoded event never carries one the AMQP binding would lose. */
        FUZZ_CHECK(!wrapped, "amqp: own output read back as a wrapped message");
        fuzz_ce_same(ev, back, true, "amqp");
    }
    td_event_unref(back);
    td_amqp_out_free(out);
}

/* EV was accepted by a decoder that validates: it must be valid, and every encoding of it
 * must decode back to it. */
static inline void fuzz_ce_roundtrips(const struct td_event *ev)
{
    char err[256] = "";

    FUZZ_CHECK(td_event_validate(ev, err, sizeof(err)) == 0, "decoded event invalid: %s", err);
    fuzz_ce_json_roundtrip(ev);
    fuzz_ce_http_roundtrip(ev);
    fuzz_ce_redis_roundtrip(ev);
    fuzz_ce_kafka_roundtrip(ev);
    fuzz_ce_amqp_roundtrip(ev);
}

#endif
