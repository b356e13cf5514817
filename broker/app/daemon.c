/* daemon.c - the lifecycle of `triggerd run` (see daemon.h). */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "check.h"
#include "conn_budget.h"
#include "core.h"
#include "curl_api.h"
#include "fdlimit.h"
#include "http_client.h"
#include "http_server.h"
#include "kafka_log.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "reload.h"
#include "sigwatch.h"
#include "source.h"
#include "tracer.h"

#define TD_PROBES_MAX_CONNECTIONS 32

struct daemon {
    struct td_core core;
    int sigfd;
    int signals;
    bool ready;
    int64_t drain_deadline;
    int64_t trace_flush_until; /* drained: the last spans are exported until then (0: not yet) */
    struct td_timer ready_timer;
    struct td_timer drain_timer;
    struct td_timer watchdog_timer;
    struct td_timer status_timer;
    struct td_timer stall_timer;
    int64_t watchdog_ms;
    struct td_reload *reload; /* SIGHUP */
    const char *config_path;
    long nofile;                    /* RLIMIT_NOFILE in force (after raising it) */
    struct td_http_server *probesd; /* daemon.http.probes_listen, or NULL */
};

static void print_errors(const struct td_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++) {
        fprintf(stderr, "%s\n", errs->msgs[i]);
    }
}

static bool all_connected(struct td_core *core)
{
    for (size_t i = 0; i < core->cfg->nsources; i++) {
        if (!atomic_load(&core->sources[i]->connected)) {
            return false;
        }
    }
    return true;
}

/* systemctl status shows this line: what the daemon is doing, refreshed every few seconds. */
static int64_t on_status(struct td_loop *loop, void *arg)
{
    struct daemon *d = arg;
    if (d->core.draining) {
        return TD_LOOP_NOMORE;
    }
    uint64_t delivered = 0, retries = 0, dead = 0;
    for (size_t i = 0; i < d->core.cfg->ntriggers; i++) {
        const struct td_trigger_stats *st = &d->core.triggers[i].stats;
        delivered += st->delivered;
        retries += st->retries;
        dead += st->dead_lettered;
    }
    char status[256];
    snprintf(status, sizeof(status),
             "STATUS=%zu triggers; in flight %lld, delivered %llu, retries %llu, "
             "dead-lettered %llu",
             d->core.cfg->ntriggers, (long long)d->core.msgs_in_flight,
             (unsigned long long)delivered, (unsigned long long)retries, (unsigned long long)dead);
    td_notify(status);
    return 5000;
}

static int64_t on_ready_check(struct td_loop *loop, void *arg)
{
    struct daemon *d = arg;
    if (d->core.draining) {
        return TD_LOOP_NOMORE;
    }
    if (!all_connected(&d->core)) {
        return 20;
    }
    d->ready = true;
    td_log_info(NULL, NULL, NULL, "ready");
    char status[128];
    snprintf(status, sizeof(status), "READY=1\nSTATUS=%zu sources, %zu triggers",
             d->core.cfg->nsources, d->core.cfg->ntriggers);
    td_notify(status);
    if (getenv("NOTIFY_SOCKET")) {
        td_timer_init(&d->status_timer, on_status, d);
        td_timer_start(loop, &d->status_timer, 5000);
    }
    return TD_LOOP_NOMORE;
}

/* The progress watch of every running source (td_source_watch): a stall is logged once when it
 * starts and once when it ends; /readyz reports it meanwhile. */
static int64_t on_stall_check(struct td_loop *loop, void *arg)
{
    struct daemon *d = arg;
    if (d->core.draining) {
        return TD_LOOP_NOMORE;
    }
    /* A burst of identical librdkafka lines was logged once: its count follows within a second
     * or two, not only with the next librdkafka line. */
    td_kafka_log_tick();
    int64_t now = td_now_ms();
    for (size_t i = 0; i < d->core.cfg->nsources; i++) {
        struct td_source *src = d->core.sources[i];
        if (!src) {
            continue;
        }
        int change = td_source_watch(src, now);
        if (change > 0) {
            td_log_error(NULL, src->name, NULL,
                         "stalled: %lld waiting at the broker, %d in flight, nothing read or "
                         "acknowledged for %lld ms (stall_after); reported not ready",
                         (long long)atomic_load(&src->backlog), atomic_load(&src->inflight),
                         (long long)(now - src->watch.since_ms));
        } else if (change < 0) {
            td_log_info(NULL, src->name, NULL, "progressing again after a stall; ready");
        }
    }
    return 1000;
}

static int64_t on_watchdog(struct td_loop *loop, void *arg)
{
    struct daemon *d = arg;
    /* This timer runs only while the loop turns: a stuck loop stops the pings. */
    td_notify("WATCHDOG=1");
    return d->watchdog_ms / 3 > 0 ? d->watchdog_ms / 3 : 1;
}

/* How long a drained daemon waits for the export of its last spans (tracing). */
#define TRACE_FLUSH_MS 2000

static int64_t on_drain_check(struct td_loop *loop, void *arg)
{
    struct daemon *d = arg;
    if (d->core.msgs_in_flight == 0) {
        /* The spans of the last events go out first, for a bounded time: a collector that does
         * not answer delays the exit by at most TRACE_FLUSH_MS (within shutdown_grace). */
        if (!d->trace_flush_until) {
            d->trace_flush_until = td_now_ms() + TRACE_FLUSH_MS;
        }
        if (!td_tracer_flush(d->core.tracer) && td_now_ms() < d->trace_flush_until &&
            td_now_ms() < d->drain_deadline) {
            return 20;
        }
        td_log_info(NULL, NULL, NULL, "drained; stopping");
        td_loop_stop(loop);
        return TD_LOOP_NOMORE;
    }
    if (td_now_ms() >= d->drain_deadline) {
        td_log_warn(NULL, NULL, NULL,
                    "shutdown_grace elapsed with %lld messages in flight; they stay "
                    "unacknowledged and will be redelivered",
                    (long long)d->core.msgs_in_flight);
        td_loop_stop(loop);
        return TD_LOOP_NOMORE;
    }
    return 20;
}

static void begin_drain(struct daemon *d)
{
    struct td_core *core = &d->core;
    core->draining = true;
    td_metrics_set_loaded(core->metrics, false);
    td_notify("STOPPING=1");
    td_log_info(NULL, NULL, NULL, "stopping: %lld messages in flight, grace %lld ms",
                (long long)core->msgs_in_flight, (long long)core->cfg->daemon.shutdown_grace_ms);
    for (size_t i = 0; i < core->cfg->nsources; i++) {
        core->sources[i]->ops->quiesce(core->sources[i]);
    }
    for (size_t i = 0; i < core->cfg->ntriggers; i++) {
        td_dispatch_release_waiting(&core->triggers[i]);
    }
    td_reload_drain(d->reload);
    d->drain_deadline = td_now_ms() + core->cfg->daemon.shutdown_grace_ms;
    td_timer_init(&d->drain_timer, on_drain_check, d);
    td_timer_start(core->loop, &d->drain_timer, 0);
}

/* The second SIGTERM/SIGINT: out at once, on whichever thread read it. The drain and the
 * teardown acknowledge only what was done, so what is unfinished stays with the broker and is
 * redelivered. The log line is one write(2) (log.c), so it is out before the process ends. */
static void exit_now(void)
{
    td_log_warn(NULL, NULL, NULL, "second signal: exiting now");
    _exit(1);
}

static void on_signal(struct td_loop *loop, int fd, uint32_t events, void *arg)
{
    struct daemon *d = arg;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            if (d->core.draining || !d->reload) {
                td_log_warn(NULL, NULL, NULL, "SIGHUP while stopping; ignored");
            } else {
                td_reload_run(d->reload, d->config_path);
            }
            continue;
        }
        if (++d->signals == 1) {
            begin_drain(d);
        } else {
            exit_now();
        }
    }
}

/* Signals read while teardown runs (on the watcher thread, sigwatch.h): the loop has stopped,
 * so nothing else reads them. A second SIGTERM/SIGINT, counting the one that began the drain,
 * ends the process as it does during the drain; d->signals is the watcher's alone by then. */
static void on_signal_stopping(int signo, void *arg)
{
    struct daemon *d = arg;
    if (signo == SIGHUP) {
        td_log_warn(NULL, NULL, NULL, "SIGHUP while stopping; ignored");
        return;
    }
    if (++d->signals == 1) {
        /* Teardown without a drain (the loop failed, or the start did): it is what a first
         * signal asks for already. */
        td_log_warn(NULL, NULL, NULL, "signal while stopping; again to exit now");
        return;
    }
    exit_now();
}

/* The listeners, with limits derived from the descriptor budget (see fdlimit.h): inbound
 * connections get at most half of RLIMIT_NOFILE, the probes listener a few of the other half. */
static int build_http(struct daemon *d, char *err, size_t errlen)
{
    const struct td_conf_daemon *dc = &d->core.cfg->daemon;
    int clamped = 0;
    struct td_http_limits lim = {
        .max_connections = td_fdlimit_inbound(d->nofile, dc->http_max_connections, &clamped),
        .max_connections_per_ip = dc->http_max_connections_per_ip,
        .request_timeout_ms = dc->http_request_timeout_ms,
    };
    if (clamped) {
        td_log_warn(NULL, NULL, NULL,
                    "daemon.http.max_connections %d lowered to %d: inbound connections may use at "
                    "most half of the %ld file descriptors (raise LimitNOFILE= / ulimit -n)",
                    dc->http_max_connections, lim.max_connections, d->nofile);
    }
    unsigned int what =
        TD_HTTP_SERVE_ROUTES | (dc->http_probes_on_listen ? TD_HTTP_SERVE_PROBES : 0);
    /* Before the sources: an ingress source registers its path on it. */
    d->core.httpd =
        td_http_server_new(dc->http_listen, what, &lim, d->core.metrics, d->core.loop, err, errlen);
    if (!d->core.httpd) {
        return -1;
    }
    if (dc->http_tls_cert && td_http_server_tls(d->core.httpd, dc->http_tls_cert, dc->http_tls_key,
                                                dc->http_tls_client_ca, err, errlen) < 0) {
        return -1;
    }
    if (dc->http_probes_listen) {
        /* Kubelets and scrapers: a handful of connections, from few addresses. */
        struct td_http_limits plim = {.max_connections = TD_PROBES_MAX_CONNECTIONS,
                                      .max_connections_per_ip = 0,
                                      .request_timeout_ms = dc->http_request_timeout_ms};
        d->probesd = td_http_server_new(dc->http_probes_listen, TD_HTTP_SERVE_PROBES, &plim,
                                        d->core.metrics, d->core.loop, err, errlen);
        if (!d->probesd) {
            return -1;
        }
    }
    return 0;
}

static int build(struct daemon *d)
{
    struct td_core *core = &d->core;
    struct td_config *cfg = core->cfg;
    char err[512];
    core->loop = td_loop_new();
    core->http = core->loop ? td_http_client_new(core->loop) : NULL;
    core->sources = calloc(cfg->nsources + 1, sizeof(*core->sources));
    core->metrics = td_metrics_new();
    if (!core->loop || !core->http || !core->sources || !core->metrics) {
        td_log_error(NULL, NULL, NULL, "out of memory");
        return -1;
    }
    td_metrics_attach(core->metrics, core);
    bool trace_err;
    core->tracer = td_tracer_new(&cfg->daemon, core->loop, core->http, &trace_err);
    if (trace_err) {
        td_log_error(NULL, NULL, NULL, "daemon.tracing: out of memory");
        return -1;
    }
    if (cfg->daemon.http_listen && build_http(d, err, sizeof(err)) < 0) {
        fprintf(stderr, "daemon.http: %s\n", err);
        return -1;
    }
    struct td_core_parts parts = {0};
    if (td_core_build(core, cfg, NULL, &parts, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        td_core_parts_free(&parts, cfg);
        return -1;
    }
    td_core_install(core, cfg, &parts);
    const struct td_source_host host = {
        .emit = td_core_emit, .cancel = td_core_cancel, .core = core, .httpd = core->httpd};
    /* Connections kept for reuse: what the triggers can have in flight at once. */
    td_http_client_reserve(core->http, td_conn_budget(cfg));
    for (size_t i = 0; i < cfg->nsources; i++) {
        core->sources[i] = td_source_new(&cfg->sources[i], &host, err, sizeof(err));
        if (!core->sources[i]) {
            fprintf(stderr, "%s:%d:%d: %s\n", cfg->sources[i].pos.file, cfg->sources[i].pos.line,
                    cfg->sources[i].pos.col, err);
            return -1;
        }
    }
    return 0;
}

/* The sources' last waits for a broker (a Kafka consumer's commit and leaving its group) end
 * with shutdown_grace, or this long after the loop stopped if the drain used up the grace: a
 * commit to a broker that answers takes milliseconds, so this is room for the last commit of
 * what the drain finished, not for a broker that does not answer (what is not committed then is
 * redelivered). A Kafka source's group-lag request in progress (up to 3 s, kafka_lag.c) may end
 * after it, and the sinks' closes (RabbitMQ: TD_AMQP_CLOSE_MS) come after the sources: shutdown
 * takes at most shutdown_grace + about 7 s. */
#define SOURCE_STOP_MIN_MS 2000

/* When the sources must be gone (td_source_stop_by). */
static int64_t sources_stop_by(const struct daemon *d)
{
    int64_t now = td_now_ms();
    int64_t by = d->drain_deadline ? d->drain_deadline
                                   : now + d->core.cfg->daemon.shutdown_grace_ms; /* no drain */
    return by > now + SOURCE_STOP_MIN_MS ? by : now + SOURCE_STOP_MIN_MS;
}

static void teardown(struct daemon *d)
{
    struct td_core *core = &d->core;
    struct td_config *cfg = core->cfg;
    core->draining = true;
    int64_t stop_by = sources_stop_by(d);
    /* 0. The loop no longer runs, so its on_signal no longer reads the signalfd: a watcher
     *    thread reads it until teardown ends, so that a second signal still ends the process
     *    at once while the sources wait for brokers that do not answer (up to stop_by and a
     *    few seconds, see SOURCE_STOP_MIN_MS). */
    struct td_sigwatch *watch = NULL;
    if (d->sigfd >= 0) {
        td_loop_fd_del(core->loop, d->sigfd);
        watch = td_sigwatch_start(d->sigfd, on_signal_stopping, d);
        if (!watch) {
            td_log_warn(NULL, NULL, NULL,
                        "cannot watch signals while stopping (%s): a second signal waits for "
                        "the sources to stop",
                        strerror(errno));
        }
    }
    /* 1. Sources stop reading, acknowledge what completed, and join their threads: after
     *    this nothing else is emitted or acked. All are told to stop (with the deadline)
     *    before any is joined, so their waits for their brokers overlap. */
    if (core->sources) {
        for (size_t i = 0; i < cfg->nsources; i++) {
            if (core->sources[i]) {
                core->sources[i]->ops->quiesce(core->sources[i]);
            }
        }
        /* Completions already queued for the loop (a file sink's fsync, say) finish first,
         * so their messages are in the mailboxes the sources acknowledge when they stop. */
        if (core->loop) {
            td_loop_run_pending(core->loop);
        }
        for (size_t i = 0; i < cfg->nsources; i++) {
            if (core->sources[i]) {
                td_source_stop_by(core->sources[i], stop_by);
            }
        }
    }
    td_reload_stop_sources(d->reload, stop_by);
    for (size_t i = 0; core->sources && i < cfg->nsources; i++) {
        if (core->sources[i]) {
            core->sources[i]->ops->stop(core->sources[i]);
        }
    }
    /* 1b. The HTTP server: ingress sources answered their requests when they stopped. */
    td_http_server_stop(core->httpd);
    td_http_server_stop(d->probesd);
    if (core->metrics) {
        td_metrics_attach(core->metrics, NULL);
    }
    /* 2. Batches and completions still queued for the loop run once (batches are released
     *    since we are draining), so nothing is left owned by an unrun task. */
    if (core->loop) {
        td_loop_run_pending(core->loop);
    }
    /* 3. Sinks: attempts still running are abandoned; then every delivery is freed. Their
     *    messages were never acknowledged, so the broker redelivers them. All are told to stop
     *    before any is freed, so the closes of producer connections to brokers that do not
     *    answer overlap (a RabbitMQ sink waits up to TD_AMQP_CLOSE_MS) instead of adding up. */
    td_sinks_stop(core->sinks, cfg->nsinks);
    td_reload_stop_sinks(d->reload);
    if (core->sinks) {
        for (size_t i = 0; i < cfg->nsinks; i++) {
            td_sink_free(core->sinks[i]);
        }
    }
    td_reload_free_sinks(d->reload);
    if (core->loop) {
        td_dispatch_abandon_all(core);
    }
    if (core->sources) {
        for (size_t i = 0; i < cfg->nsources; i++) {
            td_source_free(core->sources[i]);
        }
    }
    td_reload_free(d->reload); /* the configurations before this one too */
    td_http_server_free(core->httpd);
    td_http_server_free(d->probesd);
    td_metrics_free(core->metrics);
    td_http_client_free(core->http);
    td_tracer_free(core->tracer); /* after the client: no export answer can find it gone */
    td_loop_free(core->loop);
    free(core->sinks);
    free(core->sources);
    for (size_t i = 0; core->triggers && i < cfg->ntriggers; i++) {
        td_core_trigger_fini(&core->triggers[i]);
    }
    free(core->triggers);
    td_sigwatch_stop(watch); /* joined before its signalfd closes */
    if (d->sigfd >= 0) {
        close(d->sigfd);
    }
}

int td_daemon_run(const char *config_path)
{
    struct td_errors errs = {0};
    struct td_config *cfg = td_config_load(config_path, &errs);
    if (cfg) {
        td_check_rabbitmq(cfg, &errs); /* what `check` refuses, `run` refuses too */
    }
    if (!cfg || errs.n > 0) {
        print_errors(&errs);
        td_errors_clear(&errs);
        td_config_free(cfg);
        return 2;
    }
    td_errors_clear(&errs);
    td_log_init(cfg->daemon.log_level, cfg->daemon.log_format);
    td_check_rabbitmq_warnings(cfg, &errs); /* the warnings `check` prints, logged */
    for (size_t i = 0; i < errs.n; i++) {
        td_log_warn(NULL, NULL, NULL, "%s", errs.msgs[i]);
    }
    td_errors_clear(&errs);

    /* Signals are read from a signalfd on the loop; every thread started later inherits the
     * mask, so none of them is interrupted. SIGPIPE is ignored: a peer closing a socket is
     * an error return, not a death. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);

    /* libcurl is loaded (curl_api.h) and initialized when the HTTP client first needs it
     * (http_client.c), so a daemon that never uses it does not map it or its libraries. */
    char err[512];
    struct daemon *d = calloc(1, sizeof(*d));
    int rc = 1;
    if (!d) {
        goto out;
    }
    d->sigfd = -1;
    d->core.cfg = cfg;
    d->nofile = td_fdlimit_raise();
    td_log_info(NULL, NULL, NULL, "file descriptor limit %ld", d->nofile);
    d->config_path = config_path;
    if (build(d) < 0) {
        rc = 2;
        goto out;
    }
    d->reload = td_reload_new(&d->core);
    d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (d->sigfd < 0 || td_loop_fd_add(d->core.loop, d->sigfd, EPOLLIN, on_signal, d) < 0) {
        td_log_error(NULL, NULL, NULL, "cannot watch signals");
        goto out;
    }
    if (d->probesd && td_http_server_start(d->probesd, err, sizeof(err)) < 0) {
        td_log_error(NULL, NULL, NULL, "http (probes_listen): %s", err);
        goto out;
    }
    if (d->core.httpd && td_http_server_start(d->core.httpd, err, sizeof(err)) < 0) {
        td_log_error(NULL, NULL, NULL, "http: %s", err);
        goto out;
    }
    for (size_t i = 0; i < cfg->nsources; i++) {
        struct td_source *src = d->core.sources[i];
        if (src->ops->start(src) < 0) {
            goto out;
        }
    }
    td_metrics_set_loaded(d->core.metrics, true);
    td_log_info(NULL, NULL, NULL, "triggerd %s started: %zu sources, %zu sinks, %zu triggers",
                TD_VERSION, cfg->nsources, cfg->nsinks, cfg->ntriggers);
    td_timer_init(&d->ready_timer, on_ready_check, d);
    td_timer_start(d->core.loop, &d->ready_timer, 0);
    td_timer_init(&d->stall_timer, on_stall_check, d);
    td_timer_start(d->core.loop, &d->stall_timer, 1000);
    d->watchdog_ms = td_notify_watchdog_ms();
    if (d->watchdog_ms > 0) {
        td_timer_init(&d->watchdog_timer, on_watchdog, d);
        td_timer_start(d->core.loop, &d->watchdog_timer, 0);
    }
    if (td_loop_run(d->core.loop) < 0) {
        td_log_error(NULL, NULL, NULL, "the event loop failed");
        goto out;
    }
    rc = 0;
out:
    if (d) {
        teardown(d);
        cfg = d->core.cfg; /* after a reload, the current one */
        free(d);
    }
    td_kafka_log_flush(); /* the counts of repeated librdkafka lines not logged yet */
    td_log_info(NULL, NULL, NULL, "exit %d", rc);
    if (td_source_left_behind() > 0) {
        /* A consumer given up at shutdown_grace is still being destroyed on a thread of its
         * own (kafka.c): exit's handlers must not free what it uses. Nothing is left to write:
         * every sink and the log are done. */
        fflush(NULL);
        _exit(rc);
    }
    td_config_free(cfg);
    curl_global_cleanup();
    return rc;
}
