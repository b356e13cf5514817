/* redrive_store.h - the dead-letter targets `triggerd redrive` reads that live in a message
 * broker: a Kafka topic (redrive_kafka.c) and a RabbitMQ queue (redrive_amqp.c). redrive.c
 * wraps them in its store_ops next to the Redis and file stores.
 *
 * Unlike a stream or a file, neither can delete one entry after the fact, so they let an entry
 * go as soon as it is done (td_redrive_*_done: a Kafka commit of the done prefix, a RabbitMQ
 * basic.ack); flush, at the end, finishes and puts back what was not done (the last commit;
 * basic.nack with requeue). Reads stop at the end as it was at open (Kafka: each partition's high
 * watermark; RabbitMQ: the queue's message count), so dead letters written anew during the
 * run are left for the next one.
 *
 * Ownership: open returns a state the caller passes to close, which frees it; read fills
 * entries whose handle (malloc'd) and event (a reference) belong to the caller. Threads: the
 * caller's only (the redrive loop).
 */
#ifndef TD_REDRIVE_STORE_H
#define TD_REDRIVE_STORE_H

#include <stddef.h>

#include "cloudevent.h"
#include "config.h"

/* The consumer group redrive reads Kafka dead-letter topics with (its committed offsets are
 * where the next redrive starts). */
#define TD_REDRIVE_KAFKA_GROUP "triggerd-redrive"

struct td_redrive_entry {
    char *handle;        /* where it is in the store: "partition/offset", a delivery tag... */
    struct td_event *ev; /* NULL: not a readable CloudEvent (left in place) */
};

/* Up to max entries after those read so far: how many (0 at the end), or -1 with a message. */
struct td_redrive_kafka;
struct td_redrive_kafka *td_redrive_kafka_open(const struct td_conf_sink *conf, char *err,
                                               size_t errlen);
int td_redrive_kafka_read(struct td_redrive_kafka *k, struct td_redrive_entry *out, int max,
                          char *err, size_t errlen);
void td_redrive_kafka_done(struct td_redrive_kafka *k, const char *handle);
/* At the end: commits the done prefix synchronously (nothing when nothing was done). 0 or -1. */
int td_redrive_kafka_flush(struct td_redrive_kafka *k, char *err, size_t errlen);
/* Frees k (NULL is a no-op). */
void td_redrive_kafka_close(struct td_redrive_kafka *k);

/* queue: where the dead letters sit (the queue bound to the sink's exchange and key). */
struct td_redrive_amqp;
struct td_redrive_amqp *td_redrive_amqp_open(const struct td_conf_sink *conf, const char *queue,
                                             char *err, size_t errlen);
int td_redrive_amqp_read(struct td_redrive_amqp *q, struct td_redrive_entry *out, int max,
                         char *err, size_t errlen);
void td_redrive_amqp_done(struct td_redrive_amqp *q, const char *handle);
/* At the end: requeues (basic.nack) what was read and not acked; -1 when an ack or the nack
 * could not be sent (those messages come back on their own when the connection closes). */
int td_redrive_amqp_flush(struct td_redrive_amqp *q, char *err, size_t errlen);
/* Closes the connection and frees q (NULL is a no-op). */
void td_redrive_amqp_close(struct td_redrive_amqp *q);

#endif
