/* check_rabbitmq.c - the checks `triggerd check` and `triggerd run` make for RabbitMQ sources
 * and sinks: the AMQP URLs parse and agree with the tls: block and auth_mechanism, the TLS files
 * are certificates and keys (amqp_conf.h), no trigger on a RabbitMQ source asks for an ordering a
 * queue cannot give, and no trigger on a RabbitMQ source can hold a delivery past the broker's
 * consumer_timeout.
 *
 * Why: RabbitMQ closes a channel whose consumer holds a delivery unacknowledged longer than
 * consumer_timeout (30 minutes by default; the source's consumer_timeout: says when the broker
 * was configured otherwise). The daemon would survive it (reconnect, the message is
 * redelivered), but every other delivery of that channel would be redelivered too, and a retry
 * policy that long would redeliver forever. So a policy whose worst case exceeds it is refused
 * up front: (retry + 1) attempts of `timeout` each, plus every backoff wait at its ceiling or
 * at retry_after_max (a Retry-After can force that), whichever is longer.
 *
 * A delivery can also wait in the prefetch window behind `concurrency` others, each as slow as
 * that: ceil(window / concurrency) rounds. That worst case needs the function to fail slowly for
 * a whole window at once, and refusing it would refuse ordinary settings (prefetch 50,
 * concurrency 4), so it is a warning: past it the broker closes the channel and redelivers the
 * window, and max_deliveries bounds how often that can happen to one message.
 *
 * ordering: partition | key needs partitions or keys; a queue has neither, so it is refused
 * rather than silently ignored.
 * Threads: any. */
#include <stdio.h>
#include <string.h>

#include "amqp_conf.h"
#include "check.h"
#include "config.h"
#include "rabbitmq_sink.h"
#include "rabbitmq_source.h"
#include "retry.h"

/* Far past any consumer_timeout; keeps the sum from overflowing with retry: 1000000. */
#define HOLD_CAP_MS (400LL * 24 * 3600 * 1000)

int64_t td_check_worst_hold_ms(const struct td_conf_trigger *trg, const struct td_conf_sink *sink)
{
    const struct td_conf_delivery *d = &trg->delivery;
    int64_t timeout = d->timeout_ms > 0              ? d->timeout_ms
                      : sink && sink->timeout_ms > 0 ? sink->timeout_ms
                                                     : 10000;
    int64_t total = timeout;
    for (int r = 1; r <= d->retry && total <= HOLD_CAP_MS; r++) {
        int64_t wait = td_retry_ceiling_ms(d, r);
        if (d->retry_after_max_ms > wait) {
            wait = d->retry_after_max_ms;
        }
        total += wait + timeout;
    }
    return total;
}

int64_t td_check_queued_hold_ms(const struct td_conf_source *src, const struct td_conf_trigger *trg,
                                const struct td_conf_sink *sink)
{
    int64_t one = td_check_worst_hold_ms(trg, sink);
    int conc = trg->delivery.concurrency; /* the loader's table: at least 1 */
    int64_t rounds = (td_rabbitmq_window(src) + conc - 1) / conc;
    if (one > HOLD_CAP_MS / rounds) {
        return HOLD_CAP_MS;
    }
    return rounds * one + TD_RABBITMQ_REQUEUE_DELAY_MAX_MS;
}

void td_check_rabbitmq(const struct td_config *cfg, struct td_errors *errs)
{
    for (size_t i = 0; i < cfg->nsources; i++) {
        const struct td_conf_source *src = &cfg->sources[i];
        if (src->kind == TD_SOURCE_RABBITMQ) {
            const struct td_conf_rabbitmq_source *c = src->settings;
            char who[300];
            snprintf(who, sizeof(who), "source '%s'", src->name);
            td_amqp_conf_check(who, c->url, &c->tls, c->auth_mechanism, &src->pos, errs, NULL);
        }
    }
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const struct td_conf_sink *k = &cfg->sinks[i];
        if (k->kind == TD_SINK_RABBITMQ) {
            const struct td_conf_rabbitmq_sink *c = k->settings;
            char who[300];
            snprintf(who, sizeof(who), "sink '%s'", k->name);
            td_amqp_conf_check(who, c->url, &c->tls, c->auth_mechanism, &k->pos, errs, NULL);
        }
    }
    for (size_t i = 0; i < cfg->ntriggers; i++) {
        const struct td_conf_trigger *trg = &cfg->triggers[i];
        const struct td_conf_source *src = td_config_source(cfg, trg->source);
        if (!src || src->kind != TD_SOURCE_RABBITMQ) {
            continue;
        }
        if (trg->delivery.ordering != TD_ORDER_UNORDERED) {
            const struct td_pos *pos =
                trg->delivery.ordering_pos.line > 0 ? &trg->delivery.ordering_pos : &trg->pos;
            td_errors_add(errs, pos,
                          "trigger '%s': ordering: %s is not supported on a RabbitMQ source (a "
                          "queue has no partitions or keys, and deliveries run concurrently); "
                          "remove it, or use concurrency: 1 with prefetch: 1 for one at a time",
                          trg->name,
                          trg->delivery.ordering == TD_ORDER_PARTITION ? "partition" : "key");
        }
        int64_t limit = TD_SETTINGS(src, struct td_conf_rabbitmq_source)->consumer_timeout_ms;
        if (limit <= 0) {
            continue; /* consumer_timeout: 0: the broker has it switched off */
        }
        int64_t worst = td_check_worst_hold_ms(trg, td_config_sink(cfg, trg->sink));
        if (worst > limit) {
            td_errors_add(
                errs, &trg->pos,
                "trigger '%s': its retry policy can hold a RabbitMQ delivery for at least %lld s "
                "(%d attempts of their timeout plus backoff waits, Retry-After up to "
                "retry_after_max), past RabbitMQ's consumer_timeout of %lld s; lower "
                "retry, backoff_max, retry_after_max or timeout",
                trg->name, (long long)(worst / 1000), trg->delivery.retry + 1,
                (long long)(limit / 1000));
        }
    }
}

void td_check_rabbitmq_warnings(const struct td_config *cfg, struct td_errors *warns)
{
    char who[300];
    for (size_t i = 0; i < cfg->nsources; i++) {
        const struct td_conf_source *src = &cfg->sources[i];
        if (src->kind == TD_SOURCE_RABBITMQ) {
            const struct td_conf_rabbitmq_source *c = src->settings;
            snprintf(who, sizeof(who), "source '%s'", src->name);
            td_amqp_conf_check(who, c->url, &c->tls, c->auth_mechanism, &src->pos, NULL, warns);
        }
    }
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const struct td_conf_sink *k = &cfg->sinks[i];
        if (k->kind == TD_SINK_RABBITMQ) {
            const struct td_conf_rabbitmq_sink *c = k->settings;
            snprintf(who, sizeof(who), "sink '%s'", k->name);
            td_amqp_conf_check(who, c->url, &c->tls, c->auth_mechanism, &k->pos, NULL, warns);
        }
    }
    for (size_t i = 0; i < cfg->ntriggers; i++) {
        const struct td_conf_trigger *trg = &cfg->triggers[i];
        const struct td_conf_source *src = td_config_source(cfg, trg->source);
        if (!src || src->kind != TD_SOURCE_RABBITMQ ||
            TD_SETTINGS(src, struct td_conf_rabbitmq_source)->consumer_timeout_ms <= 0) {
            continue;
        }
        const struct td_conf_sink *sink = td_config_sink(cfg, trg->sink);
        int64_t limit = TD_SETTINGS(src, struct td_conf_rabbitmq_source)->consumer_timeout_ms;
        int64_t one = td_check_worst_hold_ms(trg, sink);
        int64_t queued = td_check_queued_hold_ms(src, trg, sink);
        if (one <= limit && queued > limit) {
            td_errors_add(warns, &trg->pos,
                          "warning: trigger '%s': a delivery can wait in the prefetch window "
                          "(%d) behind concurrency %d, so with a function failing slowly it "
                          "could be held %lld s, past consumer_timeout (%lld s); the broker "
                          "would then close the channel and redeliver the window. Lower the "
                          "source's prefetch or raise concurrency",
                          trg->name, td_rabbitmq_window(src), trg->delivery.concurrency,
                          (long long)(queued / 1000), (long long)(limit / 1000));
        }
    }
}
