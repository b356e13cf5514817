/* ce_amqp.h - the CloudEvents AMQP 0-9-1 binding for RabbitMQ (ce_amqp.c, rabbitmq-c types):
 * binary mode as cloudEvents: headers, structured mode, and the wrapping of a delivery that is
 * not a CloudEvent. Decoding for the RabbitMQ source and redrive, encoding for the RabbitMQ sink
 * and `triggerd publish`.
 * Threads: any (no state).
 */
#ifndef TD_CE_AMQP_H
#define TD_CE_AMQP_H

#include <stdbool.h>
#include <stddef.h>

#include "cloudevent.h"

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

#endif
