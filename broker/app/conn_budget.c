/* conn_budget.c - the connections a configuration can need at once (see conn_budget.h). */
#include "conn_budget.h"

#include "config.h"

static bool speaks_http(const struct td_config *cfg, const char *name)
{
    const struct td_conf_sink *k = name ? td_config_sink(cfg, name) : NULL;
    return k &&
           (k->kind == TD_SINK_HTTP || k->kind == TD_SINK_OPENFAAS || k->kind == TD_SINK_LAMBDA);
}

size_t td_conn_budget(const struct td_config *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->nsinks; i++) {
        /* one token or credentials fetch at a time per sink (metadata server, STS) */
        n += speaks_http(cfg, cfg->sinks[i].name) ? 1 : 0;
    }
    for (size_t i = 0; i < cfg->ntriggers; i++) {
        const struct td_conf_trigger *trg = &cfg->triggers[i];
        size_t conc = trg->delivery.concurrency > 0 ? (size_t)trg->delivery.concurrency : 1;
        n += speaks_http(cfg, trg->sink) ? conc : 0;
        n += speaks_http(cfg, trg->delivery.dead_letter) ? conc : 0;
        n += speaks_http(cfg, trg->reply) ? conc : 0;
    }
    return n;
}
