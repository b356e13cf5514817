/* kafka_lag.h - a Kafka consumer group's lag per partition as the brokers report it, published for
 * /metrics with td_source_set_lag.
 *
 * A thread of its own, so the blocking requests it makes (metadata, the group's committed offsets,
 * watermarks) never hold up the consumer's poll loop; the requests go through the consumer's own
 * rd_kafka_t (librdkafka's calls are thread-safe), so the lag costs no second client: no threads,
 * broker connections, buffers or OAUTHBEARER token fetches of its own (a client per source used to
 * add four threads and a connection to every broker). Every TD_LAG_EVERY_MS it reads, for every
 * partition of every topic the source reads (whether this member holds it or not), the group's
 * committed offset and the high watermark: lag = high - committed; a partition the group never
 * committed counts high - low with `start: earliest` (all of it will be read) and 0 with
 * `latest`. Thread: start and stop on the Kafka source's thread (kafka.c run; stop before it
 * closes the consumer); the rest its own.
 */
#ifndef TD_KAFKA_LAG_H
#define TD_KAFKA_LAG_H

#include <librdkafka/rdkafka.h>

#include "source.h"
#include "kafka_source.h"

struct td_kafka_lag;

/* The families the thread publishes (the Kafka descriptor's lag_families). */
extern const struct td_lag_family td_kafka_lag_families[];

/* Starts the thread asking through rk, the source's consumer. NULL, with the reason logged once,
 * when it cannot: the source runs on without broker lag. Stop and free with td_kafka_lag_stop
 * before the consumer is closed. src, conf and rk must outlive it. */
struct td_kafka_lag *td_kafka_lag_start(struct td_source *src,
                                        const struct td_conf_kafka_source *conf, rd_kafka_t *rk);
/* Asks the thread to stop, without waiting: it leaves after the request it is in, if any. NULL
 * is a no-op. Any thread, while kl lives. */
void td_kafka_lag_signal(struct td_kafka_lag *kl);
/* Stops (td_kafka_lag_signal) and joins the thread, which waits for the request it is in (up to
 * REQUEST_MS, 3 s, each; a round checks between them), and frees everything. Never on the loop
 * thread: the Kafka source's own thread calls it before it closes the consumer. NULL is a
 * no-op. */
void td_kafka_lag_stop(struct td_kafka_lag *kl);

#endif
