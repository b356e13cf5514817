/* kafka_sink.h - the Kafka sink's settings (td_conf_sink.settings of a kafka sink; its key
 * table is in kafka.c), read by kafka.c, `check` and `redrive` (the topic is a store). */
#ifndef TD_KAFKA_SINK_H
#define TD_KAFKA_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "kafka_security.h"
#include "kv.h"

struct td_conf_kafka_sink {
    char *brokers;
    char *topic;
    struct td_kv_list properties;
    struct td_kafka_security sec; /* tls: and sasl: (kafka_security.h) */
};

#endif
