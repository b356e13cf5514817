/* rabbitmq_sink.h - the RabbitMQ sink's settings (td_conf_sink.settings of a rabbitmq sink;
 * its key table is in rabbitmq.c), read by rabbitmq.c, `check` and `redrive`. */
#ifndef TD_RABBITMQ_SINK_H
#define TD_RABBITMQ_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amqp_conf.h"
#include "config.h"

struct td_conf_rabbitmq_sink {
    char *url;
    char *exchange;
    char *routing_key;
    struct td_amqp_tls tls; /* tls: {ca_file, cert_file, key_file, server_name, ...} */
    int auth_mechanism;     /* enum td_amqp_auth_mechanism, default plain */
};

#endif
