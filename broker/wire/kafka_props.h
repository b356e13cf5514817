/* kafka_props.h - what `triggerd check` says of the properties: of a Kafka source or sink.
 * They go to librdkafka as they are, and `run` refuses the file when librdkafka refuses one.
 * Thread: any.
 */
#ifndef TD_KAFKA_PROPS_H
#define TD_KAFKA_PROPS_H

#include "config.h"
#include "kv.h"

/* Applies props to a throwaway librdkafka configuration and adds an error to errs for each
 * one librdkafka refuses: "WHAT 'NAME': property 'KEY': reason" (a value that may be a secret
 * is never quoted). */
void td_kafka_check_properties(const struct td_kv_list *props, const char *what, const char *name,
                               const struct td_pos *pos, struct td_errors *errs);

#endif
