/* conf_batch.c - what may batch (delivery.batch): checked once every trigger and sink is read,
 * as it depends on the trigger's sink. The keys themselves are in conf_keys_trigger.c.
 *
 * Thread: any (the loader's).
 */
#include <stddef.h>

#include "config_internal.h"

/* The sink kinds whose plugins implement deliver_batch (sink.h): the HTTP engine (http, and
 * openfaas through it) and lambda. */
static bool kind_batches(enum td_sink_kind kind)
{
    return kind == TD_SINK_HTTP || kind == TD_SINK_OPENFAAS || kind == TD_SINK_LAMBDA;
}

void td_conf_check_batch(struct td_conf_loader *ld)
{
    const struct td_config *cfg = ld->cfg;
    for (size_t i = 0; i < cfg->ntriggers; i++) {
        const struct td_conf_trigger *trg = &cfg->triggers[i];
        const struct td_conf_batch *b = &trg->delivery.batch;
        if (!b->enabled) {
            continue;
        }
        const struct td_conf_sink *k = trg->sink ? td_config_sink(cfg, trg->sink) : NULL;
        if (k && !kind_batches(k->kind)) {
            td_conf_errorf(ld, &b->pos,
                           "delivery.batch needs an http, openfaas or lambda sink ('%s' is a %s "
                           "sink, which takes one event at a time)",
                           trg->sink, k->plugin ? k->plugin->name : "different");
        }
        if (trg->reply) {
            /* a reply event answers one event; a batch's answer is about many */
            td_conf_errorf(ld, &b->pos, "delivery.batch cannot be used with reply:");
        }
    }
}
