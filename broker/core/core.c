/* core.c - the core: built from a configuration in one place, and its entry points for sources.
 *
 * The daemon at start, every SIGHUP reload and `triggerd redrive` used to assemble sinks and
 * triggers each in their own way, and they drifted: the reload's copy forgot the payload
 * schema, so a reload silently switched schema validation off. All three now call
 * td_core_build(), so a trigger is the same whichever path built it. redrive asks it for some
 * triggers only (want), and td_core_build_trigger adds one later through the same trigger_init
 * and build_sink: a redrive opens only the sinks of the triggers it sends through, not a
 * producer or a connection for every sink of the file (which also needed each one's
 * credentials on the machine that redrives).
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema.h"
#include "log.h"
#include "router.h"

static struct td_sink *sink_named(struct td_sink *const *sinks, size_t nsinks, const char *name)
{
    for (size_t i = 0; name && i < nsinks; i++) {
        if (sinks[i] && strcmp(sinks[i]->name, name) == 0) {
            return sinks[i];
        }
    }
    return NULL;
}

/* Fills trg for conf: its sinks looked up by name in sinks[0..nsinks), its payload schema
 * loaded (owned by trg). 0, or -1 with "file:line:col: trigger 'x': ..." in err; then trg has
 * no sinks (td_core_trigger_built is false) and no schema. */
static int trigger_init(struct td_trigger_rt *trg, struct td_core *core,
                        const struct td_conf_trigger *conf, struct td_sink *const *sinks,
                        size_t nsinks, char *err, size_t errlen)
{
    trg->conf = conf;
    trg->core = core;
    trg->sink = sink_named(sinks, nsinks, conf->sink);
    trg->dead_letter = sink_named(sinks, nsinks, conf->delivery.dead_letter);
    trg->reply = sink_named(sinks, nsinks, conf->reply);
    if (!trg->sink) {
        snprintf(err, errlen, "%s:%d:%d: trigger '%s': unknown sink", conf->pos.file,
                 conf->pos.line, conf->pos.col, conf->name);
        goto fail;
    }
    if (conf->schema) {
        char why[512];
        trg->schema = td_jsonschema_load(conf->schema, conf->pos.file, why, sizeof(why));
        if (!trg->schema) {
            snprintf(err, errlen, "%s:%d:%d: trigger '%s': schema: %s", conf->pos.file,
                     conf->pos.line, conf->pos.col, conf->name, why);
            goto fail;
        }
    }
    return 0;
fail:
    trg->sink = trg->dead_letter = trg->reply = NULL;
    return -1;
}

/* Builds sink i of cfg into sinks[i] unless it is there already. 0, or -1 with
 * "file:line:col: sink 'x': ..." in err. */
static int build_sink(struct td_core *core, const struct td_config *cfg, size_t i,
                      struct td_sink **sinks, char *err, size_t errlen)
{
    const struct td_conf_sink *sc = &cfg->sinks[i];
    char why[512];
    if (sinks[i]) {
        return 0;
    }
    sinks[i] = td_sink_new(sc, core->loop, core->http, why, sizeof(why));
    if (!sinks[i]) {
        snprintf(err, errlen, "%s:%d:%d: %s", sc->pos.file, sc->pos.line, sc->pos.col, why);
        return -1;
    }
    return 0;
}

/* Builds the sinks conf delivers to (sink, dead_letter, reply) that sinks[] lacks: what
 * trigger_init will look up, and nothing else. 0, or -1 with err. */
static int build_sinks_of(struct td_core *core, const struct td_config *cfg,
                          const struct td_conf_trigger *conf, struct td_sink **sinks, char *err,
                          size_t errlen)
{
    const char *uses[] = {conf->sink, conf->delivery.dead_letter, conf->reply};
    for (size_t u = 0; u < sizeof(uses) / sizeof(uses[0]); u++) {
        for (size_t i = 0; uses[u] && i < cfg->nsinks; i++) {
            if (strcmp(cfg->sinks[i].name, uses[u]) == 0 &&
                build_sink(core, cfg, i, sinks, err, errlen) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

void td_core_trigger_fini(struct td_trigger_rt *trg)
{
    td_dispatch_trigger_free(trg);
    td_jsonschema_free(trg->schema);
    trg->schema = NULL;
}

int td_core_build(struct td_core *core, const struct td_config *cfg, const bool *want,
                  struct td_core_parts *parts, char *err, size_t errlen)
{
    parts->sinks = calloc(cfg->nsinks + 1, sizeof(*parts->sinks));
    parts->triggers = calloc(cfg->ntriggers + 1, sizeof(*parts->triggers));
    parts->gen = ++core->builds;
    if (!parts->sinks || !parts->triggers) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* Without want (the daemon, a reload) every sink is built first, in the file's order, so
     * `run` refuses a sink it cannot build whether or not a trigger names it yet. */
    for (size_t i = 0; !want && i < cfg->nsinks; i++) {
        if (build_sink(core, cfg, i, parts->sinks, err, errlen) < 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < cfg->ntriggers; i++) {
        struct td_trigger_rt *trg = &parts->triggers[i];
        trg->gen = parts->gen;
        /* Every trigger can be found by name (trg->conf); one left out has no sinks yet. */
        trg->conf = &cfg->triggers[i];
        trg->core = core;
        if (want && !want[i]) {
            continue;
        }
        if (want && build_sinks_of(core, cfg, trg->conf, parts->sinks, err, errlen) < 0) {
            return -1;
        }
        if (trigger_init(trg, core, trg->conf, parts->sinks, cfg->nsinks, err, errlen) < 0) {
            return -1;
        }
    }
    return 0;
}

int td_core_build_trigger(struct td_core *core, struct td_trigger_rt *trg, char *err, size_t errlen)
{
    const struct td_config *cfg = core->cfg;
    if (td_core_trigger_built(trg)) {
        return 0;
    }
    bool *had = calloc(cfg->nsinks + 1, sizeof(*had));
    if (!had) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->nsinks; i++) {
        had[i] = core->sinks[i] != NULL;
    }
    int rc = build_sinks_of(core, cfg, trg->conf, core->sinks, err, errlen);
    if (rc == 0) {
        rc = trigger_init(trg, core, trg->conf, core->sinks, cfg->nsinks, err, errlen);
    }
    /* A sink built for this trigger alone (no built trigger needed it before) goes with it, so
     * that a trigger that cannot be built leaves no producer connecting for nothing. */
    for (size_t i = 0; rc < 0 && i < cfg->nsinks; i++) {
        if (!had[i]) {
            td_sink_free(core->sinks[i]);
            core->sinks[i] = NULL;
        }
    }
    free(had);
    return rc;
}

void td_core_parts_free(struct td_core_parts *parts, const struct td_config *cfg)
{
    td_sinks_free(parts->sinks, parts->sinks ? cfg->nsinks : 0);
    for (size_t i = 0; parts->triggers && i < cfg->ntriggers; i++) {
        td_core_trigger_fini(&parts->triggers[i]);
    }
    free(parts->sinks);
    free(parts->triggers);
    parts->sinks = NULL;
    parts->triggers = NULL;
}

void td_core_install(struct td_core *core, struct td_config *cfg, struct td_core_parts *parts)
{
    core->cfg = cfg;
    core->sinks = parts->sinks;
    core->triggers = parts->triggers;
    core->gen = parts->gen;
    parts->sinks = NULL;
    parts->triggers = NULL;
}

void td_core_submit(struct td_core *core, struct td_trigger_rt *trg, struct td_msg *msg)
{
    core->msgs_in_flight++;
    msg->pending = 1; /* trg's unit */
    td_router_deliver(trg, msg, msg->ev);
}

static void on_batch(struct td_loop *loop, void *arg)
{
    struct td_msg *msg = arg;
    while (msg) {
        struct td_msg *next = msg->next;
        msg->next = NULL;
        td_router_route(msg->src->core, msg);
        msg = next;
    }
}

void td_core_emit(void *corep, struct td_msg *batch)
{
    struct td_core *core = corep;
    if (td_loop_post(core->loop, on_batch, batch) < 0) {
        /* Out of memory: these entries were read but never routed; they stay pending at the
         * broker and come back (reaper / restart). Free them without acking. */
        while (batch) {
            struct td_msg *next = batch->next;
            td_source_complete(batch->src, batch, TD_OUTCOME_RELEASE);
            batch = next;
        }
    }
}

struct cancel_task {
    struct td_core *core;
    struct td_source *src;
    uint64_t gen;
};

static void on_cancel(struct td_loop *loop, void *arg)
{
    struct cancel_task *t = arg;
    size_t n = td_dispatch_cancel(t->core, t->src, t->gen);
    if (n > 0) {
        td_log_debug(NULL, t->src->name, NULL, "cancelled %zu deliveries not started", n);
    }
    free(t);
}

void td_core_cancel(void *corep, struct td_source *src, uint64_t gen)
{
    struct td_core *core = corep;
    struct cancel_task *t = malloc(sizeof(*t));
    if (!t) {
        return; /* the source waits for them instead, bounded */
    }
    t->core = core;
    t->src = src;
    t->gen = gen;
    if (td_loop_post(core->loop, on_cancel, t) < 0) {
        free(t);
    }
}
