/* kafka_source.h - the Kafka source's settings (td_conf_source.settings of a kafka source; its
 * key table is in kafka.c), read by kafka.c and `check`. */
#ifndef TD_KAFKA_SOURCE_H
#define TD_KAFKA_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "kafka_security.h"
#include "kv.h"

struct td_conf_kafka_source {
    char *brokers;
    char **topics;
    size_t ntopics;
    char *group; /* default "triggerd" */
    char *start; /* earliest | latest, default earliest */
    struct td_kv_list properties;
    struct td_kafka_security sec; /* tls: and sasl: (kafka_security.h) */
};

#endif
