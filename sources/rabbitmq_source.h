/* rabbitmq_source.h - the RabbitMQ source's settings (td_conf_source.settings of a rabbitmq
 * source; its key table is in rabbitmq.c), and facts of the source that `check` and `run`
 * reason about before the source exists (check_rabbitmq.c: the worst-case hold of a delivery
 * against the queue's consumer_timeout). The source itself is reached only through its descriptor.
 */
#ifndef TD_RABBITMQ_SOURCE_H
#define TD_RABBITMQ_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp_conf.h"
#include "config.h"
#include "kv.h"

/* Where the id of a wrapped RabbitMQ message without a message-id comes from (a stream queue's
 * x-stream-offset wins over both: unique and stable). */
enum td_amqp_id_from {
    TD_ID_FROM_BODY_HASH, /* sha256(queue, body): stable across redeliveries, equal bodies collide
                           */
    TD_ID_FROM_DELIVERY,  /* queue, connection token, delivery tag: unique, new on redelivery */
};

struct td_conf_rabbitmq_source {
    char *url;
    char *queue;
    struct td_amqp_tls tls;       /* tls: {ca_file, cert_file, key_file, server_name, ...} */
    int auth_mechanism;           /* enum td_amqp_auth_mechanism, default plain */
    int prefetch;                 /* default 100 */
    int heartbeat;                /* seconds (written as a duration, e.g. 30s), default 30 */
    int max_deliveries;           /* default 10; 0 = unlimited */
    int64_t consumer_timeout_ms;  /* the broker's consumer_timeout, default 30m; 0 = off */
    enum td_amqp_id_from id_from; /* default delivery */
    /* declare: {durable, arguments, exchange, exchange_type, bindings}, declared on connect */
    bool declare;
    bool declare_durable;                /* default true (queue and exchange) */
    struct td_kv_list declare_arguments; /* x-arguments; integers and true/false go typed */
    char *declare_exchange;              /* NULL: no exchange */
    char *declare_exchange_type;         /* direct | fanout | topic | headers, default direct */
    char **declare_bindings;             /* routing keys binding the queue to the exchange */
    size_t ndeclare_bindings;
};

/* RabbitMQ's default consumer_timeout: a delivery held longer closes the channel. */
#define TD_RABBITMQ_CONSUMER_TIMEOUT_MS (30 * 60 * 1000)
/* The longest a released delivery is held before it is requeued (the requeue backoff, 1 s
 * doubling per delivery up to this, and at most a quarter of consumer_timeout). */
#define TD_RABBITMQ_REQUEUE_DELAY_MAX_MS 30000

/* The prefetch count the source asks for (basic.qos): prefetch capped by max_inflight
 * (prefetch 0 = max_inflight) and by 65535. Any thread. */
int td_rabbitmq_window(const struct td_conf_source *src);

#endif
