/* kafka_props.c - the trigger file's Kafka properties against librdkafka (kafka_props.h).
 *
 * Thread: any.
 */
#include "kafka_props.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "kafka_log.h"

/* librdkafka's threads (none start here, but a conf may log while properties are set). */
static void check_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    td_kafka_log(level, TD_LOG_ERROR, NULL, "triggerd check", fac, buf);
}

/* Kafka properties go to librdkafka as they are, and `run` refuses the file when librdkafka
 * refuses one: apply them to a throwaway configuration the same way. The value may be a secret:
 * the message names the property, and librdkafka's reason only when it does not quote it. */
void td_kafka_check_properties(const struct td_kv_list *props, const char *what, const char *name,
                               const struct td_pos *pos, struct td_errors *errs)
{
    rd_kafka_conf_t *kc = props->n > 0 ? rd_kafka_conf_new() : NULL;
    if (kc) {
        rd_kafka_conf_set_log_cb(kc, check_log);
    }
    for (size_t i = 0; kc && i < props->n; i++) {
        const struct td_kv *kv = &props->items[i];
        char why[256];
        if (rd_kafka_conf_set(kc, kv->key, kv->value ? kv->value : "", why, sizeof(why)) ==
            RD_KAFKA_CONF_OK) {
            continue;
        }
        if (kv->value && kv->value[0] && strstr(why, kv->value)) {
            snprintf(why, sizeof(why), "invalid value (not shown)");
        }
        td_errors_add(errs, pos, "%s '%s': property '%s': %s", what, name, kv->key, why);
    }
    if (kc) {
        rd_kafka_conf_destroy(kc);
    }
}
