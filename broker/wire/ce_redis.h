/* ce_redis.h - our CloudEvents binding for Redis stream entries (ce_redis.c):
 * binary mode as ce_<attr> fields, structured mode, and the wrapping of an entry that is not a
 * CloudEvent. Decoding for the Redis source and redrive, encoding for the Redis sink and
 * `triggerd publish`.
 * Threads: any (no state).
 */
#ifndef TD_CE_REDIS_H
#define TD_CE_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include "cloudevent.h"

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

#endif
