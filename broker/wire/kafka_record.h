/* kafka_record.h - a librdkafka message seen as the struct td_kafka_record the CloudEvents
 * binding reads (ce_kafka.h), for the Kafka source and `triggerd redrive --from` a Kafka target.
 * Thread: any (the caller's message).
 */
#ifndef TD_KAFKA_RECORD_H
#define TD_KAFKA_RECORD_H

#include <librdkafka/rdkafka.h>

#include "ce_kafka.h"

/* Fills rec from rm, read from topic: partition, offset, timestamp, key, value and every
 * header (a header librdkafka cannot give is left as an empty name with no value). rec borrows
 * rm's bytes and topic; its header arrays are allocated here and freed by
 * td_kafka_record_release. 0, or -1 on out of memory (nothing to release). */
int td_kafka_record_of(const rd_kafka_message_t *rm, const char *topic,
                       struct td_kafka_record *rec);
/* Frees the header arrays td_kafka_record_of allocated (rec's bytes stay rm's). */
void td_kafka_record_release(struct td_kafka_record *rec);

#endif
