/* rabbitmq_lag.h - a RabbitMQ queue's depth as the broker reports it (a passive queue.declare),
 * published for /metrics with td_source_set_lag.
 *
 * What AMQP 0-9-1 gives: queue.declare-ok carries message-count (the messages ready for
 * delivery, not those delivered and awaiting an ack) and consumer-count. The unacknowledged count
 * of the whole queue (rabbitmqctl's messages_unacknowledged) is not in the protocol; only the
 * management HTTP API has it. This daemon's own share is triggerd_source_in_flight.
 */
#ifndef TD_RABBITMQ_LAG_H
#define TD_RABBITMQ_LAG_H

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>

#include "source.h"

/* The channel the passive declares use: never the consuming channel 1, so a queue deleted under
 * the source (404, which closes the channel it is asked on) never costs the consumer. */
#define TD_RABBITMQ_LAG_CHANNEL 2

/* The families td_rabbitmq_lag_report publishes (the RabbitMQ descriptor's lag_families). */
extern const struct td_lag_family td_rabbitmq_lag_families[];

/* Source thread (conn's): a passive queue.declare of queue on TD_RABBITMQ_LAG_CHANNEL (opened
 * first when *chan_open is false; *chan_open says afterwards whether it still is), publishing
 * triggerd_rabbitmq_queue_messages_ready and triggerd_rabbitmq_queue_consumers, and the ready
 * count as the source's total. A queue the broker does not have clears them. Deliveries on the
 * consuming channel that arrive meanwhile are queued by rabbitmq-c for the next read. Each
 * answer is awaited at most 2 s. 0, or -1 when the connection failed or the broker did not
 * answer (err says why; the caller disconnects). */
int td_rabbitmq_lag_report(struct td_source *src, amqp_connection_state_t conn, bool *chan_open,
                           const char *queue, char *err, size_t errlen);

#endif
