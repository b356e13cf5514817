/* check_rabbitmq.c - the checks `triggerd check` and `triggerd run` make for RabbitMQ sources
 * and sinks: the AMQP URLs parse, and no trigger on a RabbitMQ source can hold a delivery past
 * the broker's consumer_timeout.
 *
 * Why: RabbitMQ closes a channel whose consumer holds a delivery unacknowledged longer than
 * consumer_timeout (30 minutes by default). The daemon would survive it (reconnect, the
 * message is redelivered), but every other delivery of that channel would be redelivered too,
 * and a retry policy that long would redeliver forever. So a policy whose worst case exceeds it
 * is refused up front: (retry + 1) attempts of `timeout` each, plus every backoff wait at its
 * ceiling or at retry_after_max (a Retry-After can force that), whichever is longer.
 * Threads: any. */
#include <stdio.h>
#include <string.h>

#include "amqp_util.h"
#include "check.h"
#include "config.h"
#include "retry.h"

static void check_url(const char *url, bool with_exchange, const struct td_pos *pos,
                      struct td_errors *errs)
{
    struct td_amqp_addr addr;
    char err[256];
    if (!url) {
        return;
    }
    if (td_amqp_addr_parse(url, with_exchange, &addr, err, sizeof(err)) < 0) {
        td_errors_add(errs, pos, "%s", err);
        return;
    }
    td_amqp_addr_free(&addr);
}

int64_t td_check_worst_hold_ms(const struct td_conf_trigger *trg, const struct td_conf_sink *sink)
{
    const struct td_conf_delivery *d = &trg->delivery;
    int64_t timeout = d->timeout_ms > 0              ? d->timeout_ms
                      : sink && sink->timeout_ms > 0 ? sink->timeout_ms
                                                     : 10000;
    int64_t total = timeout;
    for (int r = 1; r <= d->retry && total <= TD_RABBITMQ_CONSUMER_TIMEOUT_MS; r++) {
        int64_t wait = td_retry_ceiling_ms(d, r);
        if (d->retry_after_max_ms > wait) {
            wait = d->retry_after_max_ms;
        }
        total += wait + timeout;
    }
    return total;
}

void td_check_rabbitmq(const struct td_config *cfg, struct td_errors *errs)
{
    for (size_t i = 0; i < cfg->nsources; i++) {
        const struct td_conf_source *src = &cfg->sources[i];
        if (src->kind == TD_SOURCE_RABBITMQ) {
            check_url(src->rabbitmq.url, false, &src->pos, errs);
        }
    }
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const struct td_conf_sink *k = &cfg->sinks[i];
        if (k->kind == TD_SINK_RABBITMQ) {
            check_url(k->rabbitmq.url, false, &k->pos, errs);
        }
    }
    for (size_t i = 0; i < cfg->ntriggers; i++) {
        const struct td_conf_trigger *trg = &cfg->triggers[i];
        const struct td_conf_source *src = td_config_source(cfg, trg->source);
        if (!src || src->kind != TD_SOURCE_RABBITMQ) {
            continue;
        }
        int64_t worst = td_check_worst_hold_ms(trg, td_config_sink(cfg, trg->sink));
        if (worst > TD_RABBITMQ_CONSUMER_TIMEOUT_MS) {
            td_errors_add(
                errs, &trg->pos,
                "trigger '%s': its retry policy can hold a RabbitMQ delivery for at least %lld s "
                "(%d attempts of their timeout plus backoff waits, Retry-After up to "
                "retry_after_max), past RabbitMQ's consumer_timeout of %d s; lower "
                "retry, backoff_max, retry_after_max or timeout",
                trg->name, (long long)(worst / 1000), trg->delivery.retry + 1,
                TD_RABBITMQ_CONSUMER_TIMEOUT_MS / 1000);
        }
    }
}
