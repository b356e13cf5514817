/* core_state.h - what the core holds: struct td_core (the loop, the HTTP client, the plugins, the
 * per-trigger runtime) and struct td_trigger_rt. Data only, no functions: the units of the core
 * (complete, dispatch, router, metrics, core.c) include this, so none of them has to include
 * another's header for its types, and the core's units form no include cycle.
 * Threads: loop, except where a field says otherwise.
 */
#ifndef TD_CORE_STATE_H
#define TD_CORE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "flow.h"
#include "http_client.h"
#include "loop.h"
#include "sink.h"
#include "source.h"
#include "stats.h"

struct td_delivery;
struct td_metrics;
struct td_http_server;
struct td_jsonschema;
struct td_lanes;
struct td_batcher;
struct td_tracer;

/* One trigger of one configuration: built by td_core_build (core.c), freed by
 * td_core_trigger_fini. */
struct td_trigger_rt {
    const struct td_conf_trigger *conf;
    struct td_core *core;
    /* The build that made it (core->gen while it is current): a reload retires a whole
     * generation, and dispatch tells current triggers from retired ones by this number. */
    uint64_t gen;
    struct td_sink *sink;
    struct td_sink *dead_letter;               /* NULL: failures are released for redelivery */
    struct td_sink *reply;                     /* reply: target, or NULL (replies ignored) */
    int running;                               /* attempts on the sink now */
    bool pumping;                              /* inside pump(): see dispatch.c */
    struct td_delivery *wait_head, *wait_tail; /* waiting for a slot */
    struct td_lanes *lanes;       /* ordering: the lanes with a delivery in progress (dispatch.c) */
    struct td_batcher *batch;     /* delivery.batch: its open and sent batches (batch.c), or NULL */
    struct td_jsonschema *schema; /* schema: the payload schema, owned, or NULL */
    /* Flow control (flow.h), set up by dispatch on first use (flow_ready): delivery.rate's
     * bucket, the concurrency limit now, and the timer that waits for the next token. */
    bool flow_ready;
    struct td_bucket rate;
    struct td_aimd conc;
    struct td_timer rate_timer;
    struct td_trigger_stats stats;
};

struct td_core {
    struct td_config *cfg;
    struct td_loop *loop;
    struct td_http_client *http;
    struct td_source **sources;     /* cfg->nsources */
    struct td_sink **sinks;         /* cfg->nsinks */
    struct td_trigger_rt *triggers; /* cfg->ntriggers */
    uint64_t gen;                   /* the generation of sinks and triggers (td_core_install) */
    uint64_t builds;                /* generations built so far (td_core_build) */
    bool draining;
    int64_t msgs_in_flight;         /* routed, not completed */
    struct td_delivery *deliveries; /* every live delivery, for teardown */
    uint64_t unmatched;             /* events no trigger wanted (acked at once) */
    struct td_metrics *metrics;     /* snapshots for /metrics and /status; NULL: none */
    struct td_http_server *httpd;   /* daemon.http.listen (ingress, probes); NULL: none */
    struct td_tracer *tracer;       /* daemon.tracing (tracer.h); NULL: tracing off */
};

#endif
