/* ce_kafka.h - the CloudEvents Kafka protocol binding (ce_kafka.c): binary mode as ce_ headers,
 * structured mode, and the wrapping of a record that is not a CloudEvent. Decoding for the Kafka
 * source and redrive, encoding for the Kafka sink and `triggerd publish`. The types are ours, not
 * librdkafka's, so the binding can be tested without a client.
 * Threads: any (no state).
 */
#ifndef TD_CE_KAFKA_H
#define TD_CE_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloudevent.h"

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

#endif
