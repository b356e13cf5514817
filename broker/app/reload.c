/* reload.c - hot reload on SIGHUP (see reload.h for the rules).
 *
 * Ownership: struct td_reload owns the configurations the daemon ran with before the
 * current one that something still points into (old_cfgs), the retired trigger generations
 * with their sinks (gens), and the sources that are draining (retiring). A retiring source
 * with a replacement leaves the replacement in core->sources (created, not started) and starts
 * it once the old one stopped.
 *
 * A reload during a reload: when a source that is such an unstarted replacement changes or
 * goes away again, it is freed at once (it never ran, nothing else points to it) and the
 * draining source's record takes the newest replacement instead (or none), so one source at a
 * time reads and the latest settings win.
 *
 * An old configuration is freed as soon as nothing points into it any more: no retired
 * generation was built from it and no source (running, draining or waiting to start) has its
 * settings there. Sources that carry over unchanged keep the configuration they were built
 * from alive; everything else goes with the generation that drained, so memory stays flat over
 * any number of reloads.
 */
#include "reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "conn_budget.h"
#include "core.h"
#include "http_client.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "source.h"

#define CHECK_MS 50

struct gen {
    struct gen *next;
    const struct td_config *cfg; /* the configuration its triggers and sinks were built from */
    uint64_t gen;                /* its triggers' generation (td_trigger_rt.gen) */
    struct td_trigger_rt *triggers;
    size_t ntriggers;
    struct td_trigger_stats *at_swap; /* each trigger's counters when it was retired */
    struct td_sink **sinks;
    size_t nsinks;
    bool stopping; /* drained: its sinks were told to stop (collect) */
};

struct retiring {
    struct retiring *next;
    struct td_source *old;
    struct td_source *replacement; /* in core->sources, started once old is gone; or NULL */
    bool stopping;                 /* drained: its thread was told to stop (td_source_stop_by) */
};

struct td_reload {
    struct td_core *core;
    struct td_config **old_cfgs;
    size_t nold;
    struct gen *gens;
    struct retiring *retiring;
    struct td_timer timer;
};

static bool streq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Every setting of a source: a kept source runs on with the settings it was built with, so any
 * difference must restart it, or the new file would be silently ignored for it. The kind's own
 * settings are compared key by key through its table (td_config_same_settings), so a key a
 * plugin adds is compared without a line here. */
static bool same_source(const struct td_conf_source *a, const struct td_conf_source *b)
{
    return a->kind == b->kind && a->max_inflight == b->max_inflight &&
           a->stall_after_ms == b->stall_after_ms && streq(a->name, b->name) &&
           td_config_same_settings(a->plugin, a->settings, b->plugin, b->settings);
}

static struct td_source *find_source(struct td_core *core, const char *name)
{
    for (size_t i = 0; i < core->cfg->nsources; i++) {
        if (core->sources[i] && strcmp(core->sources[i]->name, name) == 0) {
            return core->sources[i];
        }
    }
    return NULL;
}

static bool same_kv(const struct td_kv_list *a, const struct td_kv_list *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (!streq(a->items[i].key, b->items[i].key) ||
            !streq(a->items[i].value, b->items[i].value)) {
            return false;
        }
    }
    return true;
}

/* What needs a restart rather than a reload. 0, or -1 with the reason. */
static int check_fixed(const struct td_config *old, const struct td_config *cfg, char *err,
                       size_t errlen)
{
    if (!streq(old->daemon.http_listen, cfg->daemon.http_listen)) {
        snprintf(err, errlen, "daemon.http.listen changed; that needs a restart");
        return -1;
    }
    const struct td_conf_daemon *od = &old->daemon, *nd = &cfg->daemon;
    if (!streq(od->http_probes_listen, nd->http_probes_listen) ||
        od->http_probes_on_listen != nd->http_probes_on_listen ||
        od->http_max_connections != nd->http_max_connections ||
        od->http_max_connections_per_ip != nd->http_max_connections_per_ip ||
        od->http_request_timeout_ms != nd->http_request_timeout_ms ||
        !streq(od->http_tls_cert, nd->http_tls_cert) ||
        !streq(od->http_tls_key, nd->http_tls_key) ||
        !streq(od->http_tls_client_ca, nd->http_tls_client_ca)) {
        snprintf(err, errlen, "daemon.http changed; that needs a restart");
        return -1;
    }
    if (!streq(od->tracing_endpoint, nd->tracing_endpoint) ||
        !same_kv(&od->tracing_headers, &nd->tracing_headers) ||
        od->tracing_sample_ratio != nd->tracing_sample_ratio ||
        od->tracing_timeout_ms != nd->tracing_timeout_ms ||
        od->tracing_interval_ms != nd->tracing_interval_ms ||
        od->tracing_queue_size != nd->tracing_queue_size ||
        !streq(od->tracing_service_name, nd->tracing_service_name)) {
        snprintf(err, errlen, "daemon.tracing changed; that needs a restart");
        return -1;
    }
    for (int pass = 0; pass < 2; pass++) {
        const struct td_config *a = pass ? cfg : old, *b = pass ? old : cfg;
        for (size_t i = 0; i < a->nsources; i++) {
            const struct td_source_ops *ops = td_source_ops_of(&a->sources[i]);
            if (!ops || !ops->restart_to_change) {
                continue;
            }
            const struct td_conf_source *other = td_config_source(b, a->sources[i].name);
            if (!other || !same_source(&a->sources[i], other)) {
                snprintf(err, errlen,
                         "%s source '%s' was added, removed or changed; that "
                         "needs a restart",
                         ops->name, a->sources[i].name);
                return -1;
            }
        }
    }
    return 0;
}

struct built {
    struct td_core_parts parts; /* sinks and triggers (td_core_build) */
    struct td_source **sources;
    bool *fresh; /* sources[i] was created now (not carried over) */
};

static void built_free(struct built *b, const struct td_config *cfg)
{
    for (size_t i = 0; b->sources && i < cfg->nsources; i++) {
        if (b->fresh[i]) {
            td_source_free(b->sources[i]);
        }
    }
    td_core_parts_free(&b->parts, cfg);
    free(b->sources);
    free(b->fresh);
}

/* Builds every plugin of cfg; carries over unchanged sources. 0, or -1 with a message. */
static int build(struct td_reload *rl, struct td_config *cfg, struct built *b, char *err,
                 size_t errlen)
{
    struct td_core *core = rl->core;
    b->sources = calloc(cfg->nsources + 1, sizeof(*b->sources));
    b->fresh = calloc(cfg->nsources + 1, sizeof(*b->fresh));
    if (!b->sources || !b->fresh) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (td_core_build(core, cfg, NULL, &b->parts, err, errlen) < 0) {
        return -1;
    }
    const struct td_source_host host = {
        .emit = td_core_emit, .cancel = td_core_cancel, .core = core, .httpd = core->httpd};
    for (size_t i = 0; i < cfg->nsources; i++) {
        struct td_source *old = find_source(core, cfg->sources[i].name);
        if (old && same_source(old->conf, &cfg->sources[i])) {
            b->sources[i] = old;
            continue;
        }
        b->sources[i] = td_source_new(&cfg->sources[i], &host, err, errlen);
        if (!b->sources[i]) {
            return -1;
        }
        b->fresh[i] = true;
    }
    return 0;
}

static void add_stats(struct td_trigger_stats *to, const struct td_trigger_stats *now,
                      const struct td_trigger_stats *then)
{
    _Static_assert(sizeof(struct td_trigger_stats) % sizeof(uint64_t) == 0,
                   "td_trigger_stats holds only uint64_t counters");
    uint64_t *t = (uint64_t *)to;
    const uint64_t *n = (const uint64_t *)now, *p = (const uint64_t *)then;
    for (size_t i = 0; i < sizeof(*to) / sizeof(uint64_t); i++) {
        t[i] += n[i] - p[i];
    }
}

static struct td_trigger_rt *current_trigger(struct td_core *core, const char *name)
{
    for (size_t i = 0; i < core->cfg->ntriggers; i++) {
        if (strcmp(core->triggers[i].conf->name, name) == 0) {
            return &core->triggers[i];
        }
    }
    return NULL;
}

static void gen_free(struct gen *g)
{
    for (size_t i = 0; i < g->ntriggers; i++) {
        td_core_trigger_fini(&g->triggers[i]);
    }
    td_sinks_free(g->sinks, g->nsinks);
    free(g->sinks);
    free(g->triggers);
    free(g->at_swap);
    free(g);
}

/* src's settings live in cfg. */
static bool source_in(const struct td_source *src, const struct td_config *cfg)
{
    return src && td_config_source(cfg, src->name) == src->conf;
}

static bool cfg_in_use(const struct td_reload *rl, const struct td_config *cfg)
{
    const struct td_core *core = rl->core;
    for (const struct gen *g = rl->gens; g; g = g->next) {
        if (g->cfg == cfg) {
            return true;
        }
    }
    for (const struct retiring *r = rl->retiring; r; r = r->next) {
        if (source_in(r->old, cfg) || source_in(r->replacement, cfg)) {
            return true;
        }
    }
    for (size_t i = 0; i < core->cfg->nsources; i++) {
        if (source_in(core->sources[i], cfg)) {
            return true;
        }
    }
    return false;
}

/* Frees the old configurations nothing points into any more. */
static void free_unused_cfgs(struct td_reload *rl)
{
    size_t kept = 0;
    for (size_t i = 0; i < rl->nold; i++) {
        if (cfg_in_use(rl, rl->old_cfgs[i])) {
            rl->old_cfgs[kept++] = rl->old_cfgs[i];
        } else {
            td_config_free(rl->old_cfgs[i]);
        }
    }
    rl->nold = kept;
}

/* How long a retiring source's thread may wait for its broker once drained (td_source_stop_by):
 * the current configuration's shutdown_grace, at least RETIRE_STOP_MIN_MS (room for the last
 * commit when a broker answers, as at shutdown). */
#define RETIRE_STOP_MIN_MS 2000

static int64_t retire_grace_ms(const struct td_core *core)
{
    int64_t g = core->cfg->daemon.shutdown_grace_ms;
    return g > RETIRE_STOP_MIN_MS ? g : RETIRE_STOP_MIN_MS;
}

/* Frees what has finished draining; true while something is still draining. */
static bool collect(struct td_reload *rl)
{
    struct td_core *core = rl->core;
    for (struct gen **pp = &rl->gens; *pp;) {
        struct gen *g = *pp;
        if (td_dispatch_busy(core, g->gen) > 0) {
            pp = &g->next;
            continue;
        }
        /* As for a retiring source below: the sinks are told to stop and looked at again on the
         * next ticks, and freed once none would wait (a RabbitMQ sink's close waits for the
         * broker's close-ok up to TD_AMQP_CLOSE_MS: with a broker that does not answer, freeing
         * it at once held the loop, the ingress and every other trigger for 2 s). */
        if (!g->stopping) {
            td_sinks_stop(g->sinks, g->nsinks);
            g->stopping = true;
        }
        if (!td_sinks_stopped(g->sinks, g->nsinks)) {
            pp = &g->next;
            continue;
        }
        for (size_t i = 0; i < g->ntriggers; i++) {
            struct td_trigger_rt *now = current_trigger(core, g->triggers[i].conf->name);
            if (now) {
                add_stats(&now->stats, &g->triggers[i].stats, &g->at_swap[i]);
            }
        }
        *pp = g->next;
        gen_free(g);
    }
    for (struct retiring **pp = &rl->retiring; *pp;) {
        struct retiring *r = *pp;
        if (atomic_load(&r->old->inflight) > 0 && !core->draining) {
            pp = &r->next;
            continue;
        }
        if (core->draining) {
            pp = &r->next; /* teardown stops it */
            continue;
        }
        /* This runs on the loop: the source's thread is told to stop and looked at again on
         * the next tick, and joined only once it has left, so the loop never waits for it (a
         * Kafka source's thread waits for its lag thread's request and its consumer's close,
         * which wait for the broker: seconds, or as long as a broker does not answer). The
         * stop has the deadline a shutdown has (shutdown_grace): a replacement waits for the
         * old source to leave (never two consumers at once), and without one a source moved
         * off a broker that died would never restart; what the old one could not commit is
         * read again (at least once). */
        if (!r->stopping) {
            td_source_stop_by(r->old, td_now_ms() + retire_grace_ms(core));
            r->stopping = true;
        }
        if (!td_source_stopped(r->old)) {
            pp = &r->next;
            continue;
        }
        r->old->ops->stop(r->old);
        td_log_info(NULL, r->old->name, NULL, "drained; %s",
                    r->replacement ? "restarting" : "stopped");
        td_source_free(r->old);
        if (r->replacement && r->replacement->ops->start(r->replacement) < 0) {
            td_log_error(NULL, r->replacement->name, NULL, "could not start after the reload");
        }
        *pp = r->next;
        free(r);
    }
    free_unused_cfgs(rl);
    return rl->gens || rl->retiring;
}

static int64_t on_check(struct td_loop *loop, void *arg)
{
    struct td_reload *rl = arg;
    return collect(rl) ? CHECK_MS : TD_LOOP_NOMORE;
}

struct td_reload *td_reload_new(struct td_core *core)
{
    struct td_reload *rl = calloc(1, sizeof(*rl));
    if (rl) {
        rl->core = core;
        td_timer_init(&rl->timer, on_check, rl);
    }
    return rl;
}

/* The retiring source that will start src once it drained, or NULL. */
static struct retiring *waiting_for(struct td_reload *rl, const struct td_source *src)
{
    for (struct retiring *r = rl->retiring; r; r = r->next) {
        if (r->replacement == src) {
            return r;
        }
    }
    return NULL;
}

/* Switches the core to cfg and b (both taken). -1 (nothing changed) on out of memory. */
static int swap(struct td_reload *rl, struct td_config *cfg, struct built *b, int *restarted)
{
    struct td_core *core = rl->core;
    struct td_config *old = core->cfg;
    struct gen *g = calloc(1, sizeof(*g));
    struct td_config **cfgs = realloc(rl->old_cfgs, (rl->nold + 1) * sizeof(*cfgs));
    struct retiring **rets = calloc(old->nsources + 1, sizeof(*rets));
    if (cfgs) {
        rl->old_cfgs = cfgs;
    }
    if (g) {
        g->at_swap = calloc(old->ntriggers + 1, sizeof(*g->at_swap));
    }
    bool ok = g && g->at_swap && cfgs && rets;
    for (size_t i = 0; ok && i < old->nsources; i++) {
        bool kept = false;
        for (size_t j = 0; j < cfg->nsources; j++) {
            kept |= b->sources[j] == core->sources[i];
        }
        if (!kept && !(rets[i] = calloc(1, sizeof(**rets)))) {
            ok = false;
        }
    }
    if (!ok) {
        for (size_t i = 0; rets && i < old->nsources; i++) {
            free(rets[i]);
        }
        free(rets);
        if (g) {
            free(g->at_swap);
        }
        free(g);
        return -1;
    }
    /* From here on nothing fails. */
    g->cfg = old;
    g->gen = core->gen;
    g->triggers = core->triggers;
    g->ntriggers = old->ntriggers;
    g->sinks = core->sinks;
    g->nsinks = old->nsinks;
    for (size_t i = 0; i < old->ntriggers; i++) {
        g->at_swap[i] = g->triggers[i].stats;
        for (size_t j = 0; j < cfg->ntriggers; j++) {
            struct td_trigger_rt *now = &b->parts.triggers[j];
            if (strcmp(now->conf->name, g->triggers[i].conf->name) == 0) {
                now->stats = g->triggers[i].stats; /* counters continue */
            }
        }
    }
    g->next = rl->gens;
    rl->gens = g;
    for (size_t i = 0; i < old->nsources; i++) {
        if (!rets[i]) {
            continue;
        }
        struct retiring *r = rets[i];
        r->old = core->sources[i];
        for (size_t j = 0; j < cfg->nsources; j++) {
            if (b->fresh[j] && strcmp(b->sources[j]->name, r->old->name) == 0) {
                r->replacement = b->sources[j];
                (*restarted)++;
            }
        }
        struct retiring *waiting = waiting_for(rl, r->old);
        if (waiting) {
            /* r->old is an earlier reload's replacement, never started: the source still
             * draining hands over to the newest one (or to none) instead. */
            waiting->replacement = r->replacement;
            td_source_free(r->old);
            free(r);
            continue;
        }
        r->old->ops->quiesce(r->old);
        r->next = rl->retiring;
        rl->retiring = r;
    }
    free(rets);
    rl->old_cfgs[rl->nold++] = old;
    free(core->sources);
    td_core_install(core, cfg, &b->parts);
    core->sources = b->sources;
    /* Brand-new sources start now; replacements once their predecessor drained. A source
     * that comes back while its earlier self still drains (removed, then added again) waits
     * for it the same way: two never read at once. */
    for (size_t j = 0; j < cfg->nsources; j++) {
        bool replacing = false;
        for (struct retiring *r = rl->retiring; r; r = r->next) {
            replacing |= r->replacement == b->sources[j];
        }
        for (struct retiring *r = rl->retiring; b->fresh[j] && !replacing && r; r = r->next) {
            if (!r->replacement && strcmp(r->old->name, b->sources[j]->name) == 0) {
                r->replacement = b->sources[j];
                replacing = true;
                (*restarted)++;
            }
        }
        if (b->fresh[j] && !replacing && b->sources[j]->ops->start(b->sources[j]) < 0) {
            td_log_error(NULL, b->sources[j]->name, NULL, "could not start after the reload");
        }
    }
    free(b->fresh);
    free_unused_cfgs(rl);
    td_timer_start(core->loop, &rl->timer, 0);
    return 0;
}

bool td_reload_run(struct td_reload *rl, const char *path)
{
    struct td_core *core = rl->core;
    struct td_errors errs = {0};
    struct built b = {0};
    char err[512] = "";
    int restarted = 0;
    td_notify("RELOADING=1");
    td_log_info(NULL, NULL, NULL, "SIGHUP: reloading %s", path);
    struct td_config *cfg = td_config_load(path, &errs);
    if (cfg) {
        td_check_rabbitmq(cfg, &errs); /* what `check` and a start refuse, a reload refuses too */
        if (errs.n > 0) {
            td_config_free(cfg);
            cfg = NULL;
        }
    }
    if (!cfg) {
        for (size_t i = 0; i < errs.n; i++) {
            td_log_error(NULL, NULL, NULL, "reload: %s", errs.msgs[i]);
        }
        snprintf(err, sizeof(err), "%zu errors in the new configuration", errs.n);
        goto fail;
    }
    if (check_fixed(core->cfg, cfg, err, sizeof(err)) < 0 ||
        build(rl, cfg, &b, err, sizeof(err)) < 0) {
        goto fail;
    }
    if (swap(rl, cfg, &b, &restarted) < 0) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }
    /* Only raises: the retiring triggers' connections age out of curl's cache by themselves. */
    td_http_client_reserve(core->http, td_conn_budget(cfg));
    td_errors_clear(&errs);
    td_log_init(cfg->daemon.log_level, cfg->daemon.log_format);
    td_metrics_count_reload(core->metrics, true);
    td_log_info(NULL, NULL, NULL, "reloaded: %zu sources (%d restarting), %zu sinks, %zu triggers",
                cfg->nsources, restarted, cfg->nsinks, cfg->ntriggers);
    char status[160];
    snprintf(status, sizeof(status), "READY=1\nSTATUS=%zu sources, %zu triggers (reloaded)",
             cfg->nsources, cfg->ntriggers);
    td_notify(status);
    return true;
fail:
    if (cfg) {
        built_free(&b, cfg);
    }
    td_config_free(cfg);
    td_errors_clear(&errs);
    td_metrics_count_reload(core->metrics, false);
    td_log_error(NULL, NULL, NULL, "reload failed, the running configuration stays: %s", err);
    td_notify("READY=1");
    return false;
}

void td_reload_drain(struct td_reload *rl)
{
    for (struct gen *g = rl ? rl->gens : NULL; g; g = g->next) {
        for (size_t i = 0; i < g->ntriggers; i++) {
            td_dispatch_release_waiting(&g->triggers[i]);
        }
    }
}

void td_reload_stop_sources(struct td_reload *rl, int64_t deadline_ms)
{
    for (struct retiring *r = rl ? rl->retiring : NULL; r; r = r->next) {
        r->old->ops->quiesce(r->old);
    }
    /* All told first, then joined: their waits for a broker overlap. A source collect already
     * told to stop keeps its deadline if that is earlier. */
    for (struct retiring *r = rl ? rl->retiring : NULL; r; r = r->next) {
        td_source_stop_by(r->old, deadline_ms);
    }
    for (struct retiring *r = rl ? rl->retiring : NULL; r; r = r->next) {
        r->old->ops->stop(r->old);
    }
}

void td_reload_stop_sinks(struct td_reload *rl)
{
    for (struct gen *g = rl ? rl->gens : NULL; g; g = g->next) {
        td_sinks_stop(g->sinks, g->nsinks);
    }
}

void td_reload_free_sinks(struct td_reload *rl)
{
    for (struct gen *g = rl ? rl->gens : NULL; g; g = g->next) {
        for (size_t i = 0; i < g->nsinks; i++) {
            td_sink_free(g->sinks[i]);
        }
        free(g->sinks);
        g->sinks = NULL;
    }
}

void td_reload_free(struct td_reload *rl)
{
    if (!rl) {
        return;
    }
    td_timer_stop(rl->core->loop, &rl->timer);
    while (rl->gens) {
        struct gen *g = rl->gens;
        rl->gens = g->next;
        gen_free(g);
    }
    while (rl->retiring) {
        struct retiring *r = rl->retiring;
        rl->retiring = r->next;
        td_source_free(r->old);
        free(r);
    }
    for (size_t i = 0; i < rl->nold; i++) {
        td_config_free(rl->old_cfgs[i]);
    }
    free(rl->old_cfgs);
    free(rl);
}
