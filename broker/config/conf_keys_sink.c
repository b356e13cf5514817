/* conf_keys_sink.c - the keys every sink has (sinks: NAME: {KIND: {...}}). A kind's own keys
 * are in its plugin's file (conf_table.h); the kinds come from sinks/registry.c.
 *
 * Thread: any; the tables are read-only.
 */
#include <stddef.h>

#include "config_internal.h"

#define SNK(f) offsetof(struct td_conf_sink, f)

/* Every kind has timeout (TD_SINK_TIMEOUT, in the kind's table: the queue sinks' has a
 * minimum), into td_conf_sink.timeout_ms. The sink's own key, beside its kind: rate, a token
 * bucket shared by every trigger that delivers to it (conf_keys_flow.c). */
static const struct td_conf_key sink_keys[] = {
    NESTED("rate", SNK(rate), &td_conf_rate_table),
};
const struct td_conf_table td_conf_sink_table = {
    TABLE("sink", sink_keys), .group_required = true,    .kind = td_conf_sink_kind,
    .kind_off = SNK(kind),    .plugin_off = SNK(plugin), .settings_off = SNK(settings)};
