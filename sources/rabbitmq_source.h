/* rabbitmq_source.h - facts of the RabbitMQ source that `check` and `run` reason about before
 * the source exists (check_rabbitmq.c: the worst-case hold of a delivery against the queue's
 * consumer_timeout). The source itself is reached only through its descriptor. */
#ifndef TD_RABBITMQ_SOURCE_H
#define TD_RABBITMQ_SOURCE_H

#include "config.h"

/* RabbitMQ's default consumer_timeout: a delivery held longer closes the channel. */
#define TD_RABBITMQ_CONSUMER_TIMEOUT_MS (30 * 60 * 1000)
/* The longest a released delivery is held before it is requeued (the requeue backoff, 1 s
 * doubling per delivery up to this, and at most a quarter of consumer_timeout). */
#define TD_RABBITMQ_REQUEUE_DELAY_MAX_MS 30000

/* The prefetch count the source asks for (basic.qos): prefetch capped by max_inflight
 * (prefetch 0 = max_inflight) and by 65535. Any thread. */
int td_rabbitmq_window(const struct td_conf_source *src);

#endif
