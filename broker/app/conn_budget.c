/* conn_budget.c - the connections a configuration can need at once (see conn_budget.h). */
#include "conn_budget.h"

#include "config.h"
#include "sink.h"

/* Whether the sink named name sends through the shared HTTP client: its kind's descriptor
 * says so (sinks/registry.c), so a new HTTP-speaking kind needs no edit here. */
static bool speaks_http(const struct td_config *cfg, const char *name)
{
    const struct td_conf_sink *k = name ? td_config_sink(cfg, name) : NULL;
    const struct td_sink_desc *d = k ? td_sink_desc_of(k) : NULL;
    return d && d->uses_http;
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
        size_t conc = (size_t)trg->delivery.concurrency; /* the loader: at least 1 */
        n += speaks_http(cfg, trg->sink) ? conc : 0;
        n += speaks_http(cfg, trg->delivery.dead_letter) ? conc : 0;
        n += speaks_http(cfg, trg->reply) ? conc : 0;
    }
    return n;
}
