/* cloudevent.h - the CloudEvent 1.0 type: attributes, data, validation, and the text helpers
 * every codec shares (attribute names, media types, base64, RFC 3339 times).
 *
 * An event is a list of context attributes (the required ones, the optional ones and
 * extensions, all by name) plus data bytes. Values are kept as the canonical string form of
 * the CloudEvents type system (what binary mode carries); `type` remembers whether a value
 * was a JSON integer or boolean so that structured mode writes it back the same way.
 *
 * The codecs have a header each: the JSON event format (ce_json.h) and batches of it
 * (ce_batch.h), the HTTP binding (ce_http.h) in broker/event/; the Redis stream, Kafka and
 * AMQP 0-9-1 bindings (ce_redis.h, ce_kafka.h, ce_amqp.h) in broker/wire/. Wrapping a broker
 * message that is not a CloudEvent is each binding's job.
 *
 * Ownership: td_event_new/clone return an event with one reference; td_event_ref adds one,
 * td_event_unref drops one and frees at zero. The reference count is atomic, so references
 * may be taken and dropped on any thread (a source thread frees its message's reference
 * while the loop may still hold others); everything else about an event is not thread-safe:
 * one thread at a time changes it (a source thread builds it, then hands it to the loop).
 */
#ifndef TD_CLOUDEVENT_H
#define TD_CLOUDEVENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when the media type of CT (parameters after ';' and surrounding blanks ignored,
 * case-insensitive) is exactly TYPE: "application/cloudevents+jsonXYZ" is not
 * application/cloudevents+json. False for NULL. Any thread. */
bool td_ce_media_is(const char *ct, const char *type);

enum td_ce_vtype { TD_CE_STRING, TD_CE_INTEGER, TD_CE_BOOLEAN };

struct td_ce_attr {
    char *name; /* lowercase a-z0-9, at most 20 chars recommended, validated by td_event_validate */
    char *value;
    enum td_ce_vtype type;
};

#define TD_CE_INLINE_ATTRS 8
#define TD_CE_POOL         256

struct td_event {
    atomic_int refs;
    struct td_ce_attr *attrs;
    size_t nattrs;
    size_t cap;
    /* Open-addressing index over attrs by name (slot = attr index + 1, 0 = empty), built once
     * the event has TD_CE_INDEX_MIN attributes: lookups stay O(1) however many a decoder adds.
     * NULL for small events, which a linear scan serves faster. */
    uint32_t *slots;
    size_t nslots;       /* a power of two, at least twice nattrs */
    unsigned char *data; /* NULL when the event has no data */
    size_t data_len;
    /* The first attributes and their short values live in the event's own allocation: a
     * decoded event needs no malloc per attribute. attrs points at inline_attrs until an event
     * has more; a value is copied into pool while it has room (pool_used), else malloc'd. */
    struct td_ce_attr inline_attrs[TD_CE_INLINE_ATTRS];
    size_t pool_used;
    char pool[TD_CE_POOL];
};

struct td_event *td_event_new(void);
struct td_event *td_event_clone(const struct td_event *ev);
struct td_event *td_event_ref(struct td_event *ev);
void td_event_unref(struct td_event *ev); /* NULL is a no-op */

/* The value of attribute NAME (any attribute, "datacontenttype" included), or NULL. */
const char *td_event_get(const struct td_event *ev, const char *name);
/* Sets (adds or replaces) an attribute; copies name and value. 0 or -1 (out of memory). */
int td_event_set(struct td_event *ev, const char *name, const char *value);
int td_event_set_typed(struct td_event *ev, const char *name, const char *value,
                       enum td_ce_vtype type);
void td_event_unset(struct td_event *ev, const char *name);
/* Copies LEN bytes as the data (len 0 with data != NULL is empty data). 0 or -1. */
int td_event_set_data(struct td_event *ev, const void *data, size_t len);

/* Checks specversion 1.0, the required attributes (id, source, specversion, type, non-empty),
 * attribute names ([a-z0-9]+) and the time format (RFC 3339). 0, or -1 with a message. */
int td_event_validate(const struct td_event *ev, char *err, size_t errlen);
/* The most attributes (required, optional and extensions together) a decoder accepts in one
 * event, in every binding: JSON/structured, HTTP binary headers, Redis ce_ fields, Kafka ce_
 * headers and AMQP cloudEvents: headers. The CloudEvents spec needs a handful; 256 leaves room
 * for generous extensions and bounds what one hostile message costs. An event past it is
 * refused by the decoder ("more than 256 attributes"): 400 at the ingress, an invalid_event
 * dead letter from a broker source. Events the broker builds itself (wrapping, dead-letter
 * attributes) may go a few past it. */
#define TD_CE_MAX_ATTRS 256
/* The longest attribute name any binding accepts. */
#define TD_CE_NAME_MAX 200
/* True when NAME is a valid CloudEvents attribute name ([a-z0-9]+, at most TD_CE_NAME_MAX). */
bool td_ce_valid_name(const char *name);
/* Why NAME fails td_ce_valid_name, into err (ERRLEN bytes): "attribute name '...' is too long
 * (N characters, at most 200)" when only its length is wrong, else "invalid attribute name
 * '...' (lowercase letters and digits only)". The loader, the decoders and publish all say it
 * in these words. */
void td_ce_name_errf(const char *name, char *err, size_t errlen);
/* Lowercases and strips NAME to a valid attribute name into out (size outlen); returns 0, or
 * -1 if nothing valid remains. */
int td_ce_sanitize_name(const char *name, char *out, size_t outlen);
/* True when the content type is JSON (application/json, text/json or anything +json). NULL is
 * treated as JSON (the JSON format's default). */
bool td_ce_is_json_type(const char *content_type);

/* ---- helpers ---- */
/* Base64 (standard alphabet, padded). Return malloc'd buffers, NULL on error. */
char *td_base64_encode(const unsigned char *in, size_t len);
unsigned char *td_base64_decode(const char *in, size_t len, size_t *outlen);
/* Formats UNIX milliseconds as RFC 3339 UTC ("2024-01-02T03:04:05.678Z") into out[32]. */
void td_format_time_ms(int64_t ms, char out[32]);
/* True when s is a valid RFC 3339 timestamp. */
bool td_ce_valid_time(const char *s);

#endif
