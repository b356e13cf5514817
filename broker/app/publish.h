/* publish.h - `triggerd publish URL`: put one message on a queue, plain or as a CloudEvent in
 * binary mode, so users can feed and test their triggers with the same binary. */
#ifndef TD_PUBLISH_H
#define TD_PUBLISH_H

#include <stddef.h>

/* argv[0] is "publish". Returns the exit code (0 published, 1 failed, 2 usage). */
int td_publish_main(int argc, char **argv);

struct td_event;
/* publish_amqp.c: one message to amqp[s]://USER:PASS@HOST:PORT/VHOST/EXCHANGE?routing_key=K
 * with a publisher confirm. ev (binary mode) or, when NULL, the plain data with headers
 * ("K=V", AMQP headers) and content_type. key is the routing key when the URL has none.
 * Prints the message id (or "confirmed"). Returns 0, 1 (failed) or 2 (bad URL). */
int td_publish_amqp(const char *url, const struct td_event *ev, const void *data, size_t len,
                    const char *key, const char *content_type, const char *const *headers,
                    size_t nheaders);

#endif
