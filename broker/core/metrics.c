/* metrics.c - snapshots of the daemon's counters and their three renderings (see metrics.h).
 *
 * A snapshot is a deep copy (names included) taken on the loop thread, so rendering never
 * touches the loop's structures, and a reload that frees the old configuration cannot leave
 * the HTTP thread with dangling names. Everything below the mutex is owned by struct
 * td_metrics and freed with it.
 */
#include "metrics.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core_state.h"
#include "dispatch.h"
#include "deadletter.h"
#include "loop.h"
#include "procstat.h"
#include "source.h"
#include "tracer.h"

struct snap_source {
    char *name;
    const char *kind;
    bool connected;
    long long received, acked, backlog, unmatched;
    int inflight;
    int64_t oldest_age_ms; /* -1: nothing in flight */
    int64_t stalled_ms;    /* td_source_watch: how long it has taken nothing; 0 when not stalled */
    struct td_lag_sample *lag; /* td_source_lag_copy's; owned by the snapshot */
    size_t nlag;
    long long lag_total; /* -1 unknown */
};

struct snap_trigger {
    char *name, *source, *sink;
    struct td_trigger_stats stats;
    struct td_trigger_census census;
};

struct snapshot {
    bool valid;
    bool draining;
    int64_t taken_wall_ms;
    long long in_flight, unmatched;
    struct snap_source *sources;
    size_t nsources;
    struct snap_trigger *triggers;
    size_t ntriggers;
    struct td_span_counts spans; /* tracing */
};

struct td_metrics {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct snapshot snap; /* under mu */
    uint64_t gen;         /* under mu: snapshots taken */
    bool asked;           /* under mu: a refresh task is posted and has not run yet */
    struct td_core *core; /* under mu (written on the loop) */
    atomic_llong heartbeat_ms;
    atomic_bool loaded;
    atomic_llong reloads_ok, reloads_failed;
    atomic_llong last_reload_wall_ms;
    atomic_bool last_reload_ok;
    atomic_llong refused_per_ip; /* ingress connections closed at accept: max_connections_per_ip */
    int64_t start_wall_ms;
};

static void snapshot_clear(struct snapshot *s)
{
    for (size_t i = 0; i < s->nsources; i++) {
        free(s->sources[i].name);
        td_lag_samples_free(s->sources[i].lag, s->sources[i].nlag);
    }
    for (size_t i = 0; i < s->ntriggers; i++) {
        free(s->triggers[i].name);
        free(s->triggers[i].source);
        free(s->triggers[i].sink);
    }
    free(s->sources);
    free(s->triggers);
    memset(s, 0, sizeof(*s));
}

struct td_metrics *td_metrics_new(void)
{
    struct td_metrics *m = calloc(1, sizeof(*m));
    if (!m) {
        return NULL;
    }
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_store(&m->heartbeat_ms, -1);
    m->start_wall_ms = td_wall_ms();
    return m;
}

void td_metrics_free(struct td_metrics *m)
{
    if (!m) {
        return;
    }
    snapshot_clear(&m->snap);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void td_metrics_attach(struct td_metrics *m, struct td_core *core)
{
    pthread_mutex_lock(&m->mu);
    m->core = core;
    pthread_mutex_unlock(&m->mu);
}

/* Builds a snapshot of core into out. Loop thread. -1 on out of memory. */
static int take(struct td_core *core, struct snapshot *out)
{
    const struct td_config *cfg = core->cfg;
    int64_t *oldest = calloc(cfg->nsources + 1, sizeof(*oldest));
    struct td_trigger_census *census = calloc(cfg->ntriggers + 1, sizeof(*census));
    out->sources = calloc(cfg->nsources + 1, sizeof(*out->sources));
    out->triggers = calloc(cfg->ntriggers + 1, sizeof(*out->triggers));
    if (!oldest || !census || !out->sources || !out->triggers) {
        goto fail;
    }
    td_dispatch_census(core, census, oldest);
    int64_t now = td_now_ms();
    for (size_t i = 0; i < cfg->nsources; i++) {
        struct td_source *src = core->sources[i];
        struct snap_source *ss = &out->sources[i];
        out->nsources++;
        ss->name = strdup(cfg->sources[i].name);
        if (!ss->name) {
            goto fail;
        }
        const struct td_source_ops *ops = td_source_ops_of(&cfg->sources[i]);
        ss->kind = ops ? ops->name : NULL;
        ss->oldest_age_ms = oldest[i] ? now - oldest[i] : -1;
        if (src) {
            ss->connected = atomic_load(&src->connected);
            ss->received = atomic_load(&src->received);
            ss->acked = atomic_load(&src->acked);
            ss->backlog = atomic_load(&src->backlog);
            ss->inflight = atomic_load(&src->inflight);
            ss->stalled_ms = src->watch.stalled ? now - src->watch.since_ms : 0;
            if (src->watch.stalled && ss->stalled_ms <= 0) {
                ss->stalled_ms = 1;
            }
            ss->unmatched = atomic_load(&src->unmatched);
            ss->lag_total = td_source_lag_copy(src, &ss->lag, &ss->nlag);
        } else {
            ss->backlog = -1;
            ss->lag_total = -1;
        }
    }
    for (size_t i = 0; i < cfg->ntriggers; i++) {
        const struct td_trigger_rt *trg = &core->triggers[i];
        struct snap_trigger *st = &out->triggers[i];
        out->ntriggers++;
        st->name = strdup(cfg->triggers[i].name);
        st->source = strdup(cfg->triggers[i].source);
        st->sink = strdup(cfg->triggers[i].sink);
        if (!st->name || !st->source || !st->sink) {
            goto fail;
        }
        st->stats = trg->stats;
        st->census = census[i];
    }
    out->valid = true;
    out->draining = core->draining;
    out->in_flight = core->msgs_in_flight;
    out->unmatched = (long long)core->unmatched;
    td_tracer_counts(core->tracer, &out->spans);
    out->taken_wall_ms = td_wall_ms();
    free(oldest);
    free(census);
    return 0;
fail:
    free(oldest);
    free(census);
    snapshot_clear(out);
    return -1;
}

void td_metrics_refresh(struct td_metrics *m)
{
    struct snapshot s = {0};
    pthread_mutex_lock(&m->mu);
    struct td_core *core = m->core;
    m->asked = false;
    pthread_mutex_unlock(&m->mu);
    if (!core || take(core, &s) < 0) {
        return;
    }
    pthread_mutex_lock(&m->mu);
    snapshot_clear(&m->snap);
    m->snap = s;
    m->gen++;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->mu);
}

static void on_refresh(struct td_loop *loop, void *arg)
{
    td_metrics_refresh(arg);
}

int td_metrics_fresh(struct td_metrics *m, int timeout_ms)
{
    pthread_mutex_lock(&m->mu);
    uint64_t gen = m->gen;
    if (!m->core) {
        pthread_mutex_unlock(&m->mu);
        return -1;
    }
    if (!m->asked) {
        if (td_loop_post(m->core->loop, on_refresh, m) == 0) {
            m->asked = true;
        }
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    while (m->gen == gen && rc == 0) {
        rc = pthread_cond_timedwait(&m->cond, &m->mu, &until);
    }
    bool fresh = m->gen != gen;
    pthread_mutex_unlock(&m->mu);
    return fresh ? 0 : -1;
}

void td_metrics_heartbeat(struct td_metrics *m)
{
    atomic_store(&m->heartbeat_ms, td_now_ms());
}

int64_t td_metrics_heartbeat_age_ms(struct td_metrics *m)
{
    long long hb = atomic_load(&m->heartbeat_ms);
    return hb < 0 ? INT64_MAX : td_now_ms() - hb;
}

void td_metrics_set_loaded(struct td_metrics *m, bool loaded)
{
    atomic_store(&m->loaded, loaded);
}

void td_metrics_count_reload(struct td_metrics *m, bool ok)
{
    atomic_fetch_add(ok ? &m->reloads_ok : &m->reloads_failed, 1);
    atomic_store(&m->last_reload_ok, ok);
    atomic_store(&m->last_reload_wall_ms, td_wall_ms());
}

void td_metrics_count_refused_per_ip(struct td_metrics *m)
{
    atomic_fetch_add(&m->refused_per_ip, 1);
}

/* ---- Prometheus ---- */

/* Writes a label value with \, " and newline escaped. */
static void put_label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"') {
            fputc('\\', f);
            fputc(*v, f);
        } else if (*v == '\n') {
            fputs("\\n", f);
        } else {
            fputc(*v, f);
        }
    }
}

static void help(FILE *f, const char *name, const char *type, const char *text)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* name{key="v"} value */
static void sample(FILE *f, const char *name, const char *key, const char *v, const char *key2,
                   const char *v2, double value)
{
    fputs(name, f);
    if (key) {
        fprintf(f, "{%s=\"", key);
        put_label(f, v);
        fputc('"', f);
        if (key2) {
            fprintf(f, ",%s=\"", key2);
            put_label(f, v2);
            fputc('"', f);
        }
        fputc('}', f);
    }
    fprintf(f, " %.17g\n", value);
}

static void render_sources(FILE *f, const struct snapshot *s)
{
    help(f, "triggerd_source_events_received_total", "counter",
         "Messages read from the source and handed to the router.");
    for (size_t i = 0; i < s->nsources; i++) {
        sample(f, "triggerd_source_events_received_total", "source", s->sources[i].name, NULL, NULL,
               (double)s->sources[i].received);
    }
    help(f, "triggerd_source_events_acked_total", "counter",
         "Messages acknowledged at the source (delivered or dead-lettered).");
    for (size_t i = 0; i < s->nsources; i++) {
        sample(f, "triggerd_source_events_acked_total", "source", s->sources[i].name, NULL, NULL,
               (double)s->sources[i].acked);
    }
    help(f, "triggerd_events_unmatched_total", "counter",
         "Events no trigger on their source wanted (acknowledged at once).");
    for (size_t i = 0; i < s->nsources; i++) {
        sample(f, "triggerd_events_unmatched_total", "source", s->sources[i].name, NULL, NULL,
               (double)s->sources[i].unmatched);
    }
    help(f, "triggerd_source_connected", "gauge", "1 when the source is connected to its broker.");
    for (size_t i = 0; i < s->nsources; i++) {
        sample(f, "triggerd_source_connected", "source", s->sources[i].name, NULL, NULL,
               s->sources[i].connected ? 1 : 0);
    }
    help(f, "triggerd_source_in_flight", "gauge", "Messages read and not yet acknowledged.");
    for (size_t i = 0; i < s->nsources; i++) {
        sample(f, "triggerd_source_in_flight", "source", s->sources[i].name, NULL, NULL,
               s->sources[i].inflight);
    }
    help(f, "triggerd_source_oldest_unacked_age_seconds", "gauge",
         "Age of the oldest message of the source still being delivered (0 when none).");
    for (size_t i = 0; i < s->nsources; i++) {
        int64_t age = s->sources[i].oldest_age_ms;
        sample(f, "triggerd_source_oldest_unacked_age_seconds", "source", s->sources[i].name, NULL,
               NULL, age < 0 ? 0 : (double)age / 1000.0);
    }
    help(f, "triggerd_source_stalled", "gauge",
         "1 while the source has work waiting and credit but took nothing for stall_after.");
    for (size_t i = 0; i < s->nsources; i++) {
        sample(f, "triggerd_source_stalled", "source", s->sources[i].name, NULL, NULL,
               s->sources[i].stalled_ms > 0 ? 1 : 0);
    }
    /* Per kind, the backlog under the name its plugin gives it (the descriptor's). */
    for (size_t k = 0; td_source_kind_at(k); k++) {
        const struct td_source_ops *kind = td_source_kind_at(k);
        if (!kind->backlog_metric) {
            continue;
        }
        help(f, kind->backlog_metric, "gauge", kind->backlog_help);
        for (size_t i = 0; i < s->nsources; i++) {
            if (s->sources[i].kind && strcmp(s->sources[i].kind, kind->name) == 0 &&
                s->sources[i].backlog >= 0) {
                sample(f, kind->backlog_metric, "source", s->sources[i].name, NULL, NULL,
                       (double)s->sources[i].backlog);
            }
        }
    }
}

/* One lag sample: family{source="..",key="val",...} value. */
static void lag_sample(FILE *f, const char *source, const struct td_lag_sample *ls)
{
    fprintf(f, "%s{source=\"", ls->family);
    put_label(f, source);
    fputc('"', f);
    for (int k = 0; k < TD_LAG_LABELS && ls->key[k]; k++) {
        fprintf(f, ",%s=\"", ls->key[k]);
        put_label(f, ls->val[k] ? ls->val[k] : "");
        fputc('"', f);
    }
    fprintf(f, "} %lld\n", ls->value);
}

/* Lag from the brokers' point of view: the total per source, then each kind's own families. */
static void render_lag(FILE *f, const struct snapshot *s)
{
    help(f, "triggerd_source_lag_messages", "gauge",
         "Messages waiting at the broker for the source, as the broker reports them: Kafka "
         "committed-offset lag over the topics' partitions, Redis group lag, RabbitMQ "
         "ready messages.");
    for (size_t i = 0; i < s->nsources; i++) {
        if (s->sources[i].lag_total >= 0) {
            sample(f, "triggerd_source_lag_messages", "source", s->sources[i].name, NULL, NULL,
                   (double)s->sources[i].lag_total);
        }
    }
    for (size_t k = 0; td_source_kind_at(k); k++) {
        const struct td_source_ops *kind = td_source_kind_at(k);
        for (const struct td_lag_family *fam = kind->lag_families; fam && fam->name; fam++) {
            help(f, fam->name, "gauge", fam->help);
            for (size_t i = 0; i < s->nsources; i++) {
                const struct snap_source *ss = &s->sources[i];
                if (!ss->kind || strcmp(ss->kind, kind->name) != 0) {
                    continue;
                }
                for (size_t j = 0; j < ss->nlag; j++) {
                    if (strcmp(ss->lag[j].family, fam->name) == 0) {
                        lag_sample(f, ss->name, &ss->lag[j]);
                    }
                }
            }
        }
    }
}

static void render_triggers(FILE *f, const struct snapshot *s)
{
    help(f, "triggerd_trigger_matched_total", "counter", "Events the trigger's filter accepted.");
    for (size_t i = 0; i < s->ntriggers; i++) {
        sample(f, "triggerd_trigger_matched_total", "trigger", s->triggers[i].name, NULL, NULL,
               (double)s->triggers[i].stats.matched);
    }
    help(f, "triggerd_trigger_deliveries_total", "counter",
         "Finished deliveries by outcome: delivered, dead_lettered, released (left for "
         "redelivery).");
    for (size_t i = 0; i < s->ntriggers; i++) {
        const struct snap_trigger *t = &s->triggers[i];
        sample(f, "triggerd_trigger_deliveries_total", "trigger", t->name, "outcome", "delivered",
               (double)t->stats.delivered);
        sample(f, "triggerd_trigger_deliveries_total", "trigger", t->name, "outcome",
               "dead_lettered", (double)t->stats.dead_lettered);
        sample(f, "triggerd_trigger_deliveries_total", "trigger", t->name, "outcome", "released",
               (double)t->stats.released);
    }
    help(f, "triggerd_trigger_attempts_total", "counter", "Attempts on the trigger's sink.");
    for (size_t i = 0; i < s->ntriggers; i++) {
        sample(f, "triggerd_trigger_attempts_total", "trigger", s->triggers[i].name, NULL, NULL,
               (double)s->triggers[i].stats.attempts);
    }
    help(f, "triggerd_trigger_retries_total", "counter", "Retries scheduled after a failure.");
    for (size_t i = 0; i < s->ntriggers; i++) {
        sample(f, "triggerd_trigger_retries_total", "trigger", s->triggers[i].name, NULL, NULL,
               (double)s->triggers[i].stats.retries);
    }
    /* delivery.batch: the mean batch size is batch_events_total / batches_total */
    help(f, "triggerd_trigger_batches_total", "counter",
         "Batches sent to the trigger's sink (delivery.batch), retries included.");
    for (size_t i = 0; i < s->ntriggers; i++) {
        sample(f, "triggerd_trigger_batches_total", "trigger", s->triggers[i].name, NULL, NULL,
               (double)s->triggers[i].stats.batches);
    }
    help(f, "triggerd_trigger_batch_events_total", "counter",
         "Events sent in those batches (each attempt of an event counts).");
    for (size_t i = 0; i < s->ntriggers; i++) {
        sample(f, "triggerd_trigger_batch_events_total", "trigger", s->triggers[i].name, NULL, NULL,
               (double)s->triggers[i].stats.batch_events);
    }
    help(f, "triggerd_trigger_dead_letters_total", "counter",
         "Dead letters written to the trigger's dead-letter target, by deadletterreason.");
    for (size_t i = 0; i < s->ntriggers; i++) {
        for (int r = 0; r < TD_DL_REASONS; r++) {
            sample(f, "triggerd_trigger_dead_letters_total", "trigger", s->triggers[i].name,
                   "reason", td_stats_reason_name(r),
                   (double)s->triggers[i].stats.dead_by_reason[r]);
        }
    }
    help(f, "triggerd_trigger_replies_total", "counter",
         "Reply events the function answered with, by outcome: delivered to the reply target, or "
         "dropped by the triggerdttl loop guard.");
    for (size_t i = 0; i < s->ntriggers; i++) {
        const struct snap_trigger *t = &s->triggers[i];
        sample(f, "triggerd_trigger_replies_total", "trigger", t->name, "outcome", "delivered",
               (double)t->stats.replies);
        sample(f, "triggerd_trigger_replies_total", "trigger", t->name, "outcome", "dropped",
               (double)t->stats.replies_dropped);
    }
    help(f, "triggerd_trigger_in_flight", "gauge",
         "Deliveries not finished: waiting, running, retrying or dead-lettering.");
    for (size_t i = 0; i < s->ntriggers; i++) {
        const struct td_trigger_census *c = &s->triggers[i].census;
        sample(f, "triggerd_trigger_in_flight", "trigger", s->triggers[i].name, NULL, NULL,
               c->waiting + c->running + c->retrying + c->dead_lettering);
    }
    help(f, "triggerd_trigger_retrying", "gauge", "Deliveries waiting for a retry timer.");
    for (size_t i = 0; i < s->ntriggers; i++) {
        sample(f, "triggerd_trigger_retrying", "trigger", s->triggers[i].name, NULL, NULL,
               s->triggers[i].census.retrying);
    }
    help(f, "triggerd_trigger_concurrency_limit", "gauge",
         "Attempts the trigger may have in flight now: delivery.concurrency, or less while "
         "adaptive concurrency backs off after 429/503/Retry-After answers.");
    for (size_t i = 0; i < s->ntriggers; i++) {
        sample(f, "triggerd_trigger_concurrency_limit", "trigger", s->triggers[i].name, NULL, NULL,
               s->triggers[i].census.concurrency_limit);
    }
    help(f, "triggerd_trigger_delivery_latency_seconds", "histogram",
         "From reading the message at the source to the sink's 2xx.");
    for (size_t i = 0; i < s->ntriggers; i++) {
        const struct snap_trigger *t = &s->triggers[i];
        uint64_t cum = 0;
        char le[32];
        for (int b = 0; b <= TD_LATENCY_BUCKETS; b++) {
            cum += t->stats.latency_buckets[b];
            if (b < TD_LATENCY_BUCKETS) {
                snprintf(le, sizeof(le), "%g", (double)td_latency_bounds_ms[b] / 1000.0);
            } else {
                snprintf(le, sizeof(le), "+Inf");
            }
            sample(f, "triggerd_trigger_delivery_latency_seconds_bucket", "trigger", t->name, "le",
                   le, (double)cum);
        }
        sample(f, "triggerd_trigger_delivery_latency_seconds_sum", "trigger", t->name, NULL, NULL,
               (double)t->stats.latency_sum_ms / 1000.0);
        sample(f, "triggerd_trigger_delivery_latency_seconds_count", "trigger", t->name, NULL, NULL,
               (double)t->stats.latency_count);
    }
}

/* The process_* families under the client libraries' names, help texts and types; a figure
 * /proc cannot give is left without a sample (its HELP/TYPE stay, so the family is known). */
static void render_process(FILE *f)
{
    struct td_procstat ps;
    bool ok = td_procstat_read(&ps) == 0;
    help(f, "process_cpu_seconds_total", "counter",
         "Total user and system CPU time spent in seconds.");
    if (ok) {
        sample(f, "process_cpu_seconds_total", NULL, NULL, NULL, NULL, ps.cpu_seconds);
    }
    help(f, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    if (ok) {
        sample(f, "process_resident_memory_bytes", NULL, NULL, NULL, NULL, ps.resident_bytes);
    }
    help(f, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    if (ok) {
        sample(f, "process_virtual_memory_bytes", NULL, NULL, NULL, NULL, ps.virtual_bytes);
    }
    help(f, "process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.");
    if (ok) {
        sample(f, "process_start_time_seconds", NULL, NULL, NULL, NULL, ps.start_time_seconds);
    }
    help(f, "process_open_fds", "gauge", "Number of open file descriptors.");
    if (ps.open_fds >= 0) {
        sample(f, "process_open_fds", NULL, NULL, NULL, NULL, (double)ps.open_fds);
    }
    help(f, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    if (ps.max_fds >= 0) {
        sample(f, "process_max_fds", NULL, NULL, NULL, NULL, (double)ps.max_fds);
    }
}

char *td_metrics_prometheus(struct td_metrics *m, size_t *len)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    if (!f) {
        return NULL;
    }
    help(f, "triggerd_build_info", "gauge", "The version of this triggerd.");
    fprintf(f, "triggerd_build_info{version=\"%s\"} 1\n", TD_VERSION);
    render_process(f);
    help(f, "triggerd_start_time_seconds", "gauge", "When the daemon started (UNIX time).");
    fprintf(f, "triggerd_start_time_seconds %.3f\n", (double)m->start_wall_ms / 1000.0);
    help(f, "triggerd_reloads_total", "counter", "Configuration reloads (SIGHUP) by result.");
    fprintf(f, "triggerd_reloads_total{result=\"success\"} %lld\n",
            (long long)atomic_load(&m->reloads_ok));
    fprintf(f, "triggerd_reloads_total{result=\"failure\"} %lld\n",
            (long long)atomic_load(&m->reloads_failed));
    help(f, "triggerd_last_reload_successful", "gauge",
         "1 when the last reload succeeded (or none happened).");
    fprintf(f, "triggerd_last_reload_successful %d\n",
            atomic_load(&m->reloads_ok) + atomic_load(&m->reloads_failed) == 0 ||
                    atomic_load(&m->last_reload_ok)
                ? 1
                : 0);
    help(f, "triggerd_ingress_connections_refused_total", "counter",
         "Connections to daemon.http.listen closed at accept, by reason: per_ip (the client "
         "address had max_connections_per_ip open).");
    fprintf(f, "triggerd_ingress_connections_refused_total{reason=\"per_ip\"} %lld\n",
            (long long)atomic_load(&m->refused_per_ip));
    pthread_mutex_lock(&m->mu);
    const struct snapshot *s = &m->snap;
    help(f, "triggerd_messages_in_flight", "gauge", "Messages routed and not yet finished.");
    fprintf(f, "triggerd_messages_in_flight %lld\n", s->in_flight);
    render_sources(f, s);
    render_lag(f, s);
    render_triggers(f, s);
    td_tracer_render(f, &s->spans);
    pthread_mutex_unlock(&m->mu);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    *len = n;
    return text;
}

/* ---- JSON ---- */

static char *print_json(cJSON *root, size_t *len)
{
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (text) {
        *len = strlen(text);
    }
    return text;
}

/* Appends the reasons the daemon is not ready to arr (under mu); returns how many. */
static int not_ready_reasons(struct td_metrics *m, cJSON *arr)
{
    int n = 0;
    char why[320];
    if (!atomic_load(&m->loaded)) {
        cJSON_AddItemToArray(arr, cJSON_CreateString("triggers not loaded"));
        n++;
    }
    if (!m->snap.valid) {
        cJSON_AddItemToArray(arr, cJSON_CreateString("no state from the event loop yet"));
        return n + 1;
    }
    if (m->snap.draining) {
        cJSON_AddItemToArray(arr, cJSON_CreateString("shutting down"));
        n++;
    }
    for (size_t i = 0; i < m->snap.nsources; i++) {
        if (!m->snap.sources[i].connected) {
            snprintf(why, sizeof(why), "source '%s' is not connected", m->snap.sources[i].name);
            cJSON_AddItemToArray(arr, cJSON_CreateString(why));
            n++;
        }
        if (m->snap.sources[i].stalled_ms > 0) {
            snprintf(why, sizeof(why),
                     "source '%s' is stalled: %lld waiting, %d in flight, nothing read or "
                     "acknowledged for %lld s (stall_after)",
                     m->snap.sources[i].name, m->snap.sources[i].backlog,
                     m->snap.sources[i].inflight,
                     (long long)(m->snap.sources[i].stalled_ms / 1000));
            cJSON_AddItemToArray(arr, cJSON_CreateString(why));
            n++;
        }
    }
    return n;
}

char *td_metrics_readiness(struct td_metrics *m, bool *ready, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    if (!root || !arr) {
        cJSON_Delete(root);
        cJSON_Delete(arr);
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    int n = not_ready_reasons(m, arr);
    pthread_mutex_unlock(&m->mu);
    *ready = n == 0;
    cJSON_AddBoolToObject(root, "ready", *ready);
    cJSON_AddItemToObject(root, "reasons", arr);
    return print_json(root, len);
}

char *td_metrics_status_json(struct td_metrics *m, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *reasons = cJSON_CreateArray();
    cJSON *trgs = cJSON_CreateArray();
    cJSON *srcs = cJSON_CreateArray();
    if (!root || !reasons || !trgs || !srcs) {
        cJSON_Delete(root);
        cJSON_Delete(reasons);
        cJSON_Delete(trgs);
        cJSON_Delete(srcs);
        return NULL;
    }
    cJSON_AddStringToObject(root, "version", TD_VERSION);
    pthread_mutex_lock(&m->mu);
    const struct snapshot *s = &m->snap;
    cJSON_AddBoolToObject(root, "ready", not_ready_reasons(m, reasons) == 0);
    cJSON_AddItemToObject(root, "not_ready", reasons);
    cJSON_AddBoolToObject(root, "draining", s->draining);
    cJSON_AddNumberToObject(root, "messages_in_flight", (double)s->in_flight);
    cJSON_AddNumberToObject(root, "unmatched", (double)s->unmatched);
    cJSON_AddNumberToObject(root, "reloads", (double)atomic_load(&m->reloads_ok));
    cJSON_AddNumberToObject(root, "reload_failures", (double)atomic_load(&m->reloads_failed));
    for (size_t i = 0; i < s->ntriggers; i++) {
        const struct snap_trigger *t = &s->triggers[i];
        const struct td_trigger_census *c = &t->census;
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            continue;
        }
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "source", t->source);
        cJSON_AddStringToObject(o, "sink", t->sink);
        cJSON_AddNumberToObject(o, "in_flight",
                                c->waiting + c->running + c->retrying + c->dead_lettering);
        cJSON_AddNumberToObject(o, "waiting", c->waiting);
        cJSON_AddNumberToObject(o, "running", c->running);
        cJSON_AddNumberToObject(o, "retrying", c->retrying);
        cJSON_AddNumberToObject(o, "dead_lettering", c->dead_lettering);
        cJSON_AddNumberToObject(o, "concurrency_limit", c->concurrency_limit);
        cJSON_AddNumberToObject(o, "matched", (double)t->stats.matched);
        cJSON_AddNumberToObject(o, "delivered", (double)t->stats.delivered);
        cJSON_AddNumberToObject(o, "retries", (double)t->stats.retries);
        cJSON_AddNumberToObject(o, "dead_lettered", (double)t->stats.dead_lettered);
        cJSON_AddNumberToObject(o, "released", (double)t->stats.released);
        cJSON_AddNumberToObject(o, "replies", (double)t->stats.replies);
        cJSON_AddNumberToObject(o, "replies_dropped", (double)t->stats.replies_dropped);
        cJSON *by_reason = cJSON_AddObjectToObject(o, "dead_letters_by_reason");
        for (int r = 0; by_reason && r < TD_DL_REASONS; r++) {
            cJSON_AddNumberToObject(by_reason, td_stats_reason_name(r),
                                    (double)t->stats.dead_by_reason[r]);
        }
        cJSON_AddItemToArray(trgs, o);
    }
    for (size_t i = 0; i < s->nsources; i++) {
        const struct snap_source *ss = &s->sources[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) {
            continue;
        }
        cJSON_AddStringToObject(o, "name", ss->name);
        cJSON_AddStringToObject(o, "kind", ss->kind);
        cJSON_AddBoolToObject(o, "connected", ss->connected);
        cJSON_AddNumberToObject(o, "received", (double)ss->received);
        cJSON_AddNumberToObject(o, "acked", (double)ss->acked);
        cJSON_AddNumberToObject(o, "in_flight", ss->inflight);
        cJSON_AddNumberToObject(o, "oldest_unacked_ms",
                                ss->oldest_age_ms < 0 ? 0 : (double)ss->oldest_age_ms);
        cJSON_AddBoolToObject(o, "stalled", ss->stalled_ms > 0);
        if (ss->backlog >= 0) {
            cJSON_AddNumberToObject(o, "backlog", (double)ss->backlog);
        }
        cJSON_AddItemToArray(srcs, o);
    }
    pthread_mutex_unlock(&m->mu);
    cJSON_AddItemToObject(root, "triggers", trgs);
    cJSON_AddItemToObject(root, "sources", srcs);
    return print_json(root, len);
}
