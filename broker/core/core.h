/* core.h - the running daemon's state shared by the router, dispatch and the lifecycle:
 * the loop, the HTTP client, the plugins and the per-trigger runtime.
 * Threads: loop, except where a function says otherwise.
 */
#ifndef TD_CORE_H
#define TD_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "dispatch.h"
#include "http_client.h"
#include "loop.h"
#include "sink.h"
#include "source.h"

struct td_delivery;
struct td_metrics;
struct td_http_server;

struct td_core {
    struct td_config *cfg;
    struct td_loop *loop;
    struct td_http_client *http;
    struct td_source **sources;     /* cfg->nsources */
    struct td_sink **sinks;         /* cfg->nsinks */
    struct td_trigger_rt *triggers; /* cfg->ntriggers */
    bool draining;
    int64_t msgs_in_flight;         /* routed, not completed */
    struct td_delivery *deliveries; /* every live delivery, for teardown */
    uint64_t unmatched;             /* events no trigger wanted (acked at once) */
    struct td_metrics *metrics;     /* snapshots for /metrics and /status; NULL: none */
    struct td_http_server *httpd;   /* daemon.http.listen (ingress, probes); NULL: none */
};

/* Source threads call this (via td_source_emit) with a batch; it hops to the loop. */
void td_core_emit(void *core, struct td_msg *batch);
/* Routes one message to its triggers (router.c). Loop. */
void td_router_route(struct td_core *core, struct td_msg *msg);
/* A trigger finished with msg; when the last one did, the source acks or releases it. */
void td_core_msg_done(struct td_core *core, struct td_msg *msg, bool release);

/* Any thread (a source's): stop dispatching what src read under generation gen (msg->gen) and
 * has not started an attempt; those messages complete as released. Posted to the loop; a
 * source that gave the partition up discards the late completions. */
void td_core_cancel(void *core, struct td_source *src, uint64_t gen);

struct td_sink *td_core_sink(struct td_core *core, const char *name);

/* Fills trg for conf: its sinks looked up by name in sinks[0..nsinks), its payload schema loaded
 * (owned by trg). The daemon at start and every reload build triggers only through this (core.c).
 * 0, or -1 with "file:line:col: trigger 'x': ..." in err. Loop thread (or before the loop runs). */
int td_core_trigger_init(struct td_trigger_rt *trg, struct td_core *core,
                         const struct td_conf_trigger *conf, struct td_sink *const *sinks,
                         size_t nsinks, char *err, size_t errlen);
/* Frees what td_core_trigger_init and dispatch attached to trg (lanes, schema); not trg itself.
 * Idempotent. */
void td_core_trigger_fini(struct td_trigger_rt *trg);

#endif
