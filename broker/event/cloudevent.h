/* cloudevent.h - the CloudEvent 1.0 type and its codecs.
 *
 * An event is a list of context attributes (the required ones, the optional ones and
 * extensions, all by name) plus data bytes. Values are kept as the canonical string form of
 * the CloudEvents type system (what binary mode carries); `type` remembers whether a value
 * was a JSON integer or boolean so that structured mode writes it back the same way.
 *
 * Codecs: the HTTP binding (binary and structured, plus decoding for ingress and replies),
 * the JSON event format, and our Redis stream binding (DESIGN.md §2). Normalization of a
 * Redis entry that is not a CloudEvent ("wrapping") lives here too.
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
/* Lowercases and strips NAME to a valid attribute name into out (size outlen); returns 0, or
 * -1 if nothing valid remains. */
int td_ce_sanitize_name(const char *name, char *out, size_t outlen);
/* True when the content type is JSON (application/json, text/json or anything +json). NULL is
 * treated as JSON (the JSON format's default). */
bool td_ce_is_json_type(const char *content_type);

/* ---- the HTTP binding ---- */
struct td_http_header {
    char *name;
    char *value;
};
struct td_http_headers {
    struct td_http_header *items;
    size_t n;
};
void td_http_headers_free(struct td_http_headers *h); /* frees the items, not h */
/* Case-insensitive lookup; NULL when absent. */
const char *td_http_headers_get(const struct td_http_headers *h, const char *name);

/* Binary mode: fills headers ("ce-<attr>: <percent-encoded value>", and "Content-Type" from
 * datacontenttype) and points *body and *len at the event's data (not copied: valid while the
 * event lives). 0 or -1. The caller frees the headers with td_http_headers_free(). */
int td_ce_http_encode_binary(const struct td_event *ev, struct td_http_headers *out,
                             const unsigned char **body, size_t *len);
/* Binary mode without the intermediate list: calls fn once per header with the whole line
 * "Name: value" (the same names and values as td_ce_http_encode_binary; NUL-terminated, valid
 * during the call only); content_type tells the Content-Type line. 0; -1 on out of memory or
 * an attribute td_ce_http_encode_binary refuses; or the first non-zero value fn returned. */
typedef int (*td_ce_http_line_fn)(void *arg, const char *line, size_t len, bool content_type);
int td_ce_http_encode_binary_lines(const struct td_event *ev, td_ce_http_line_fn fn, void *arg);
/* Structured mode (and the JSON event format): a malloc'd JSON text, NUL-terminated, that the
 * caller frees. JSON data is embedded as "data"; text data of a text/... type as a "data"
 * string; anything else as "data_base64". NULL on out of memory. */
char *td_ce_to_json(const struct td_event *ev, size_t *len);
/* Parses one event in the JSON format; NULL with a message on error. */
struct td_event *td_ce_from_json(const char *json, size_t len, char *err, size_t errlen);
/* Decodes an HTTP request or response carrying one CloudEvent, binary (ce-specversion header)
 * or structured (Content-Type application/cloudevents+json). Returns the event, or NULL with
 * a message. *not_ce is set (and NULL returned, no message) when the message is neither. */
struct td_event *td_ce_http_decode(const struct td_http_headers *h, const unsigned char *body,
                                   size_t len, bool *not_ce, char *err, size_t errlen);

/* Percent-encodes a header value per the HTTP binding (space, '"', '%' and every byte outside
 * 0x21..0x7E, as UTF-8 bytes). Returns a malloc'd string, or NULL. */
char *td_ce_percent_encode(const char *value);
/* Decodes %XX sequences; returns a malloc'd string, or NULL when the result is not valid
 * UTF-8 or a sequence is malformed. */
char *td_ce_percent_decode(const char *value);

/* ---- the Redis stream binding ---- */
/* One stream entry: field/value pairs as hiredis hands them over. */
struct td_redis_entry {
    const char *id; /* "1700000000000-0" */
    const char *const *fields;
    const size_t *field_lens;
    const char *const *values;
    const size_t *value_lens;
    size_t n;
};
/* Normalizes an entry: binary mode (a ce_specversion field), structured mode (content-type
 * application/cloudevents+json) or, for anything else, a wrapped event: id = entry id,
 * type/source = dflt_type/dflt_source, time from the id's milliseconds, data = the data field
 * when it is the only one (or comes with content-type alone; datacontenttype = that field, else
 * detected: application/json, text/plain; charset=utf-8 or application/octet-stream), else a
 * JSON object of the fields (datacontenttype application/json). *wrapped says which. Returns NULL
 * with a message when the entry claims to be a CloudEvent but is not a valid one. */
struct td_event *td_ce_from_redis(const struct td_redis_entry *entry, const char *dflt_type,
                                  const char *dflt_source, bool *wrapped, char *err, size_t errlen);
/* Wraps an entry as if it were not a CloudEvent (the third case of td_ce_from_redis), whatever
 * its fields say: used to dead-letter an entry that claimed to be a CloudEvent but was not a
 * valid one. NULL only on out of memory. */
struct td_event *td_ce_wrap_redis(const struct td_redis_entry *entry, const char *dflt_type,
                                  const char *dflt_source);
/* What to dead-letter for an entry td_ce_from_redis refused: a binary-mode entry keeps every
 * attribute and the data it had, with only the missing or unusable required attributes
 * filled in (id = entry id, type/source = the defaults); anything else is wrapped
 * (td_ce_wrap_redis). NULL only on out of memory. */
struct td_event *td_ce_salvage_redis(const struct td_redis_entry *entry, const char *dflt_type,
                                     const char *dflt_source);
/* Binary mode as stream fields: argv-style arrays (ce_<attr>..., content-type, data), malloc'd;
 * free with td_redis_fields_free(). 0 or -1. */
struct td_redis_fields {
    char **argv;
    size_t *lens;
    size_t n;
};
int td_ce_to_redis(const struct td_event *ev, struct td_redis_fields *out);
void td_redis_fields_free(struct td_redis_fields *f);

/* ---- the Kafka binding (ce_kafka.c) ---- */
/* One record as librdkafka hands it over; nothing is NUL-terminated except names. */
struct td_kafka_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* -1 when the record has none */
    const void *key;      /* NULL: no key */
    size_t key_len;
    const void *value; /* NULL: a tombstone, no data */
    size_t value_len;
    const char *const *hnames;  /* header names (C strings) */
    const void *const *hvalues; /* header values, NULL for a null header */
    const size_t *hlens;
    size_t nheaders;
};
/* Wrapping limits: a record with more headers, or a header value longer than this, is not
 * turned into attributes (td_ce_from_kafka fails with a reason: a dead letter). */
#define TD_KAFKA_MAX_HEADER_ATTRS 128
#define TD_KAFKA_MAX_HEADER_VALUE 8192
/* Normalizes a record: binary mode (a ce_specversion header: ce_<attr> headers, content-type,
 * key to partitionkey, value as data), structured mode (content-type
 * application/cloudevents+json, the JSON event as value) or, for anything else, a wrapped
 * event: id kafka:<topic>/<partition>/<offset>, type/source the defaults, time from the record
 * timestamp, partitionkey from a UTF-8 key, datacontenttype from content-type, data the value,
 * and every other header as the extension kafkaheader<name> (name lowercased, stripped to
 * [a-z0-9]; values that are not UTF-8 get U+FFFD). Returns an event the caller owns, or NULL
 * with a message when the record claims to be a CloudEvent but is not a valid one, or is too
 * hostile to wrap (see the limits). Any thread. */
struct td_event *td_ce_from_kafka(const struct td_kafka_record *rec, const char *dflt_type,
                                  const char *dflt_source, bool *wrapped, char *err, size_t errlen);
/* Wraps a record whatever it says, within the limits (headers past them are left out and
 * counted in kafkaheadersdropped): for dead-lettering an invalid record. NULL only on out of
 * memory. */
struct td_event *td_ce_wrap_kafka(const struct td_kafka_record *rec, const char *dflt_type,
                                  const char *dflt_source);
/* Binary mode as Kafka headers: ce_<attr> for every attribute but datacontenttype, which
 * becomes content-type. The key is partitionkey (NULL when absent); the value is ev->data.
 * Free with td_kafka_headers_free(). 0 or -1 (out of memory, invalid attribute name). */
struct td_kafka_headers {
    char **names;
    char **values; /* C strings */
    size_t n;
};
int td_ce_to_kafka(const struct td_event *ev, struct td_kafka_headers *out);
void td_kafka_headers_free(struct td_kafka_headers *h);

/* ---- the AMQP 0-9-1 binding (ce_amqp.c, rabbitmq-c types) ---- */
struct amqp_basic_properties_t_;
/* Wrapping limits: headers past TD_AMQP_MAX_HEADER_ATTRS, values longer than
 * TD_AMQP_MAX_HEADER_VALUE, nested tables or arrays, and a content type that is no valid
 * datacontenttype (a control character, over 255 bytes) are left out of a wrapped event and counted
 * in the extension amqpheadersdropped; binary mode with more attributes is invalid. */
#define TD_AMQP_MAX_HEADER_ATTRS 128
#define TD_AMQP_MAX_HEADER_VALUE 8192
/* Normalizes a delivery: binary mode (headers prefixed cloudEvents: or cloudEvents_ are the
 * attributes, the content type is datacontenttype, the body the data), structured mode
 * (content type application/cloudevents+json) or, for anything else, a wrapped event: id from
 * message-id or else the hex SHA-256 of queue, NUL, body; type/source the defaults; time from
 * the timestamp property; datacontenttype from the content type; every other header an
 * extension attribute named by td_ce_sanitize_name (values: strings with invalid UTF-8 get
 * U+FFFD, integers, booleans, timestamps as RFC 3339). props may be NULL. Returns an event the
 * caller owns, or NULL with a message when the message claims to be a CloudEvent but is not a
 * valid one. Any thread. */
struct td_event *td_ce_from_amqp(const struct amqp_basic_properties_t_ *props, const void *body,
                                 size_t len, const char *queue, const char *dflt_type,
                                 const char *dflt_source, bool *wrapped, char *err, size_t errlen);
/* Wraps a delivery whatever it says (for dead-lettering an invalid one). NULL only on out of
 * memory. */
struct td_event *td_ce_wrap_amqp(const struct amqp_basic_properties_t_ *props, const void *body,
                                 size_t len, const char *queue, const char *dflt_type,
                                 const char *dflt_source);
/* Binary mode for basic.publish: cloudEvents:<attr> headers (integers and booleans typed),
 * content_type = datacontenttype, message_id = id, persistent delivery mode; the body is a copy
 * of the data. Owns everything it points to; free with td_amqp_out_free(). NULL on out of
 * memory. */
struct td_amqp_out;
struct td_amqp_out *td_ce_to_amqp(const struct td_event *ev);
const struct amqp_basic_properties_t_ *td_amqp_out_props(const struct td_amqp_out *o);
const void *td_amqp_out_body(const struct td_amqp_out *o, size_t *len);
void td_amqp_out_free(struct td_amqp_out *o);

/* ---- helpers ---- */
/* Base64 (standard alphabet, padded). Return malloc'd buffers, NULL on error. */
char *td_base64_encode(const unsigned char *in, size_t len);
unsigned char *td_base64_decode(const char *in, size_t len, size_t *outlen);
/* Formats UNIX milliseconds as RFC 3339 UTC ("2024-01-02T03:04:05.678Z") into out[32]. */
void td_format_time_ms(int64_t ms, char out[32]);
/* True when s is a valid RFC 3339 timestamp. */
bool td_ce_valid_time(const char *s);

#endif
