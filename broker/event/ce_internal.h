/* ce_internal.h - helpers shared by the CloudEvents files: the event and its codecs in
 * broker/event/, the bindings in broker/wire/ (ce_redis.c, ce_kafka.c, ce_amqp.c), and the
 * encoders of `triggerd publish` (publish.c, publish_amqp.c), which build what the bindings read.
 *
 * The public contract is cloudevent.h and the codec headers (ce_json.h, ce_http.h, ce_batch.h,
 * ce_redis.h, ce_kafka.h, ce_amqp.h); this header only exists so that the codecs, which live
 * in one file each, can share UTF-8 checks, media-type tests and error formatting without
 * copying them. All functions may run on any thread and keep no state.
 */
#ifndef TD_CE_INTERNAL_H
#define TD_CE_INTERNAL_H

#include "cloudevent.h"

#include <stdbool.h>
#include <stddef.h>

/* True when the LEN bytes at S are well-formed UTF-8 (no overlongs, no surrogates, at most
 * U+10FFFF). NUL bytes are valid UTF-8; callers that need C strings check for them. */
bool td_ce_utf8_valid(const unsigned char *s, size_t len);
/* The length (1..4) of the well-formed UTF-8 sequence at S (LEN bytes available), or 0. */
size_t td_ce_utf8_next(const unsigned char *s, size_t len);

/* td_ce_media_is (exact media-type test) is public: see cloudevent.h. */

/* True when the content type is textual: text/..., application/xml or anything +xml. */
bool td_ce_is_text_type(const char *ct);

/* True for the attributes whose CloudEvents type is String, URI-reference or Timestamp
 * (specversion, id, source, type, datacontenttype, dataschema, subject, time): a binding that
 * carries typed values (JSON, AMQP) must refuse a boolean or an integer there, as every encoder
 * writes them as strings and the JSON format refuses anything else. */
bool td_ce_string_only(const char *name);

/* Sets an attribute read from the wire (copies name and value), refusing a new attribute once
 * the event holds TD_CE_MAX_ATTRS: 0, or -1 with a message ("more than 256 attributes ..." or
 * "out of memory"). Replacing an existing attribute is always allowed. */
int td_ce_decode_set(struct td_event *ev, const char *name, const char *value,
                     enum td_ce_vtype type, char *err, size_t errlen);

/* True when the JSON text S (LEN bytes) has a string holding the escape \u0000. cJSON 1.7.15
 * decodes it into a NUL inside its C string, which silently truncates the value ("nul\u0000
 * tail" would become "nul", and two ids could collide): decoders refuse such text instead. */
bool td_ce_json_has_nul(const char *s, size_t len);

/* snprintf into err (when err and errlen are non-zero); never fails. */
void td_ce_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
