/* kafka_record.c - a librdkafka message as a struct td_kafka_record (see kafka_record.h).
 *
 * Thread: any.
 */
#include "kafka_record.h"

#include <stdlib.h>

int td_kafka_record_of(const rd_kafka_message_t *rm, const char *topic, struct td_kafka_record *rec)
{
    rd_kafka_headers_t *hdrs = NULL;
    size_t nh = 0;
    if (rd_kafka_message_headers(rm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
        nh = rd_kafka_header_cnt(hdrs);
    }
    /* one more than needed: calloc(0) may answer NULL, which would read as out of memory */
    const char **names = calloc(nh + 1, sizeof(*names));
    const void **values = calloc(nh + 1, sizeof(*values));
    size_t *lens = calloc(nh + 1, sizeof(*lens));
    if (!names || !values || !lens) {
        free(names);
        free(values);
        free(lens);
        return -1;
    }
    for (size_t i = 0; i < nh; i++) {
        if (rd_kafka_header_get_all(hdrs, i, &names[i], &values[i], &lens[i]) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            names[i] = "";
            values[i] = NULL;
            lens[i] = 0;
        }
    }
    rd_kafka_timestamp_type_t tstype;
    *rec = (struct td_kafka_record){
        .topic = topic,
        .partition = rm->partition,
        .offset = rm->offset,
        .timestamp_ms = rd_kafka_message_timestamp(rm, &tstype),
        .key = rm->key,
        .key_len = rm->key_len,
        .value = rm->payload,
        .value_len = rm->len,
        .hnames = names,
        .hvalues = values,
        .hlens = lens,
        .nheaders = nh,
    };
    return 0;
}

void td_kafka_record_release(struct td_kafka_record *rec)
{
    free((void *)rec->hnames);
    free((void *)rec->hvalues);
    free((void *)rec->hlens);
    rec->hnames = NULL;
    rec->hvalues = NULL;
    rec->hlens = NULL;
    rec->nheaders = 0;
}
