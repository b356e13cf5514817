/* source.h - the source plugin interface and the message it hands to the core.
 *
 * A source runs its client library on a thread of its own. It turns what it reads into a
 * struct td_msg (a normalized CloudEvent plus the coordinates it needs to acknowledge it) and
 * hands batches of them to the core with td_source_emit(). The core calls
 * td_source_complete() exactly once per message when every trigger is done with it; that
 * puts the message in the source's mailbox and wakes its thread (mailbox_fd), which then
 * acknowledges (or leaves pending, for TD_OUTCOME_RELEASE) and frees it. Client handles never
 * leave the source thread.
 *
 * Backpressure is by credit: a source reads at most max_inflight messages that are not yet
 * completed (td_source_credit), so the memory between sources and sinks is bounded.
 */
#ifndef TD_SOURCE_H
#define TD_SOURCE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf_table.h"
#include "config.h"
#include "loop.h"

struct td_event;
struct td_source;
struct td_trace_msg;

enum td_outcome {
    TD_OUTCOME_ACK,     /* delivered or dead-lettered: acknowledge / commit */
    TD_OUTCOME_RELEASE, /* not done (shutdown, dead-letter target down): leave for redelivery */
    TD_OUTCOME_REJECT,  /* dead_letter: native: the broker dead-letters it (AMQP basic.nack
                         * requeue=false to the queue's dead-letter exchange) */
};

/* One message from a source to the core. A source that needs more per message (Kafka's offset,
 * RabbitMQ's delivery tag, the ingress's request) embeds struct td_msg first in a struct of
 * its own and allocates that: td_msg_free frees the whole block, the core never looks past
 * the td_msg, and the source reads its part back when the message returns to its mailbox. */
struct td_msg {
    struct td_msg *next; /* batch and mailbox link */
    struct td_source *src;
    struct td_event *ev;   /* one reference, owned; always set (a wrapper when invalid) */
    bool wrapped;          /* ev was made by wrapping a non-CloudEvent message */
    char *invalid;         /* malloc'd reason when the message is not a valid event */
    const char *dl_reason; /* static: dead-letter at once with this reason (e.g. max_deliveries) */
    int deliveries;        /* times the broker says it was delivered; 0 when unknown */
    char *coord;           /* malloc'd source coordinates (Redis entry id) */
    int64_t received_ms;   /* td_now_ms() when read */
    /* Ordering lanes (delivery.ordering), hashes of the source's coordinates: same lane, same
     * order. Only meaningful when `ordered` is set (Kafka); other sources are unordered. */
    bool ordered;
    uint64_t lane_partition; /* topic + partition */
    uint64_t lane_key;       /* topic + partition + record key */
    /* The source's generation the message was read under (Kafka: the partition assignment,
     * RabbitMQ: the channel); td_source_cancel(src, gen) cancels by it. */
    uint64_t gen;
    /* owned by the core while in flight */
    int pending;  /* triggers still working on it */
    bool release; /* at least one trigger could not finish: do not ack */
    /* A trigger without dead_letter failed it for good (a final HTTP status, an invalid event,
     * the payload schema): redelivery cannot help. malloc'd "trigger: reason" of the first such
     * failure, and the function's status (0 when there was no answer). Loop thread while in
     * flight; the source reads it after completion (the ingress answers 422 with it). */
    char *final_why;
    int final_status;
    bool reject; /* a trigger dead-lettered it natively (TD_OUTCOME_REJECT) */
    /* Tracing: the transport's trace context (the ingress's traceparent and tracestate request
     * headers; malloc'd, or NULL), and the message's trace while it is in the core (tracer.h;
     * NULL when tracing is off). td_msg_free frees all three. */
    char *tp_header, *ts_header;
    struct td_trace_msg *trace;
};

/* Frees a message and everything it owns. NULL is a no-op. Thread: any. */
void td_msg_free(struct td_msg *msg);

/* Lag as the broker sees it (td_source_set_lag): per kind, the gauge families its plugin
 * exports (struct td_source_ops.lag_families), and one sample of one of them. Every sample
 * carries the label source="<name>" first, then up to TD_LAG_LABELS of its own. */
#define TD_LAG_LABELS 3
/* How often a source asks its broker for the lag (a modest rate: the query is never on the
 * delivery path, and /metrics serves the last answer). */
#define TD_LAG_EVERY_MS 5000
struct td_lag_family {
    const char *name;
    const char *help;
};
struct td_lag_sample {
    const char *family;             /* static: the name of one of the kind's lag_families */
    const char *key[TD_LAG_LABELS]; /* static label names; NULL ends the list */
    char *val[TD_LAG_LABELS];       /* malloc'd label values, owned by the sample */
    long long value;
};
/* Frees n samples and the array. NULL is a no-op. Thread: any. */
void td_lag_samples_free(struct td_lag_sample *samples, size_t n);

/* A source kind's descriptor: one static instance in the plugin's own file, listed once in
 * sources/registry.c (the only place that names every source). */
struct td_source_ops {
    const char *name;         /* the trigger-file kind ("redis"): messages, check, metrics */
    enum td_source_kind kind; /* the configuration's tag for it (config.h); TD_SOURCE_OTHER for
                               * a kind the core has no special case for */
    /* Its settings: name, id, key table and the size of the block the table fills (the plugin's
     * own struct); the loader reads it through td_conf_source_kind(). Set with TD_SOURCE_KIND. */
    struct td_conf_kind conf;
    /* The gauge its backlog (struct td_source.backlog) is exported as besides the generic
     * ones, and the gauge's help text; NULL when the kind has none. */
    const char *backlog_metric;
    const char *backlog_help;
    /* The lag gauges its plugin publishes with td_source_set_lag, ended by {NULL}; NULL when
     * the kind has none. Rendered (HELP and TYPE) even while no source of the kind has a sample. */
    const struct td_lag_family *lag_families;
    /* Checks the settings and allocates src->impl; no I/O. 0, or -1 with a message. */
    int (*init)(struct td_source *src, char *err, size_t errlen);
    /* Spawns the source thread. 0 or -1 (with the reason logged). */
    int (*start)(struct td_source *src);
    /* Stop reading new messages; keep acknowledging completions. Any thread. */
    void (*quiesce)(struct td_source *src);
    /* Acknowledge what is in the mailbox, then stop and join the thread. Any thread but the
     * source's own. */
    void (*stop)(struct td_source *src);
    /* Frees the plugin's state (after stop). */
    void (*destroy)(struct td_source *src);
    /* Sources of this kind are bound at start (the ingress: routes on the daemon's HTTP server),
     * so a reload that adds, removes or changes one is refused: it needs a restart. */
    bool restart_to_change;
    /* `triggerd check`, as td_sink_desc.check; cfg is the whole file (for what sources of the
     * kind must not share). NULL: nothing more. */
    void (*check)(const struct td_config *cfg, const struct td_conf_source *src,
                  struct td_errors *errs);
};

/* The name, tag and settings of a descriptor, said once:
 *   TD_SOURCE_KIND("redis", TD_SOURCE_REDIS, &redis_source_table, struct td_conf_redis_source) */
#define TD_SOURCE_KIND(name_, kind_, table_, type_)                                                \
    .name = (name_), .kind = (kind_),                                                              \
    .conf = {.name = (name_), .id = (kind_), .table = (table_), .size = sizeof(type_)}

/* The values of a source's `start:` key (Kafka, Redis), for its key table's `names`:
 * "earliest", "latest", NULL. */
extern const char *const td_source_start_names[];

/* The registry (registry.c). The descriptor of a kind, or NULL when this build has none
 * (TD_SOURCE_OTHER names no one kind: use td_source_ops_of). */
const struct td_source_ops *td_source_ops_for(enum td_source_kind kind);
/* The descriptor of the kind conf was loaded as (conf->plugin), or NULL. */
const struct td_source_ops *td_source_ops_of(const struct td_conf_source *conf);
/* The kind's name, or NULL when this build has no such kind. */
const char *td_source_kind_name(enum td_source_kind kind);
/* The i-th registered kind, in registry order; NULL past the last. For walking all kinds. */
const struct td_source_ops *td_source_kind_at(size_t i);

/* The core's side: called (on the source thread) with a NULL-terminated batch of messages. */
typedef void (*td_emit_fn)(void *core, struct td_msg *batch);
/* The core's side, any thread: stop dispatching what src read under generation gen (msg->gen)
 * and has not started; those are completed as released. */
typedef void (*td_cancel_fn)(void *core, struct td_source *src, uint64_t gen);

struct td_http_server;

/* What the core lends every source: the only way a plugin reaches the core. Copied into
 * struct td_source by td_source_new. */
struct td_source_host {
    td_emit_fn emit;
    td_cancel_fn cancel; /* NULL: nothing is ever cancelled (td_source_cancel is a no-op) */
    void *core;
    struct td_http_server *httpd; /* daemon.http.listen's server (the ingress routes on it);
                                   * NULL when there is none */
};

struct td_source {
    const struct td_source_ops *ops;
    const struct td_conf_source *conf;
    const char *name; /* conf->name */
    void *impl;
    td_emit_fn emit; /* the host's (struct td_source_host) */
    td_cancel_fn cancel;
    void *core;
    struct td_http_server *httpd;
    atomic_bool connected; /* for readiness */
    atomic_int inflight;   /* emitted, not yet completed */
    atomic_llong received; /* counters for metrics */
    atomic_llong acked;
    atomic_llong backlog;   /* what waits at the broker (Redis pending, Kafka lag); -1 unknown */
    atomic_llong unmatched; /* events no trigger wanted (written by the loop) */
    /* Lag from the broker's point of view (td_source_set_lag), under lag_mu: the kind's
     * samples and their total in messages (triggerd_source_lag_messages); -1 unknown. */
    pthread_mutex_t lag_mu;
    struct td_lag_sample *lag;
    size_t nlag;
    long long lag_total;
    atomic_bool unmatched_told; /* the first unmatched event was logged at info */
    /* Progress watch (td_source_watch), loop thread only: the counters last seen, since when
     * they have not moved, and whether the source is reported stalled. */
    struct {
        long long received, acked;
        int64_t since_ms;
        bool stalled;
    } watch;
    /* mailbox of completed messages */
    pthread_mutex_t mu;
    struct td_msg *done;
    int mailbox_fd; /* eventfd: readable when the mailbox is not empty */
    /* td_source_complete_batched (loop thread only): the mailbox_fd write waits until the end of
     * the loop iteration, wake_loop is the loop it is queued on. */
    struct td_loop_defer wake;
    struct td_loop *wake_loop;
    /* The source's thread (td_source_spawn, td_source_stop_thread). quiesce: stop reading new
     * messages, keep acknowledging (set from any thread, read by the plugin's thread); stop:
     * leave the thread; stopfd: an eventfd the thread polls, written by td_source_stop_begin,
     * open only while the thread runs (-1 otherwise). exited: the plugin's function returned
     * (set last on the thread, so a join then waits for nothing; td_source_stopped). run_fn,
     * run_arg, thread, started: the spawner's. stop_by_ms: when the thread should be gone
     * (td_now_ms; 0: no bound), for a plugin whose way out waits for a broker (td_source_stop_by).
     */
    atomic_bool quiesce;
    atomic_bool stop;
    atomic_bool exited;
    _Atomic int64_t stop_by_ms;
    int stopfd;
    void *(*run_fn)(void *);
    void *run_arg;
    pthread_t thread;
    bool started;
};

/* Creates the plugin for conf->kind; NULL with a message in err when the kind is not built in
 * or the settings are unusable. Free with td_source_free(). */
struct td_source *td_source_new(const struct td_conf_source *conf,
                                const struct td_source_host *host, char *err, size_t errlen);
/* A source without a plugin or a thread: its counters and mailbox only, for a caller that makes
 * messages itself on the loop and watches mailbox_fd there (`triggerd redrive`). name is not
 * copied; conf and emit are NULL (no td_source_emit, credit or watch). Free with
 * td_source_free(). */
struct td_source *td_source_new_local(const char *name, char *err, size_t errlen);
void td_source_free(struct td_source *src);

/* Source thread: hands a batch to the core (counts it in flight). */
void td_source_emit(struct td_source *src, struct td_msg *batch);
/* Source thread: asks the core to cancel what was read under generation gen and has not
 * started (host->cancel); the messages come back through the mailbox as released. */
void td_source_cancel(struct td_source *src, uint64_t gen);
/* How many more messages the source may read now. Source thread. */
int td_source_credit(struct td_source *src);
/* Any thread (the loop): the message is finished; the source acks or releases it. */
void td_source_complete(struct td_source *src, struct td_msg *msg, enum td_outcome outcome);
/* Loop thread: the same, with the source thread's wake-up deferred to the end of the loop
 * iteration (td_loop_defer): the message is in the mailbox at once (td_source_take_done sees
 * it), but the thread is woken once per iteration with every message the iteration finished,
 * not once per completion (each wake-up was a write, a context switch and an XACK of a few
 * ids). td_source_free cancels a wake-up still queued. */
void td_source_complete_batched(struct td_source *src, struct td_msg *msg, enum td_outcome outcome,
                                struct td_loop *loop);
/* Source thread: takes the whole mailbox (a list linked by next; release flag = outcome). */
struct td_msg *td_source_take_done(struct td_source *src);

/* Any thread (the plugin's, at its lag interval): publishes the lag the broker reports for
 * /metrics. Takes ownership of samples (malloc'd array of n, each value malloc'd; NULL and 0
 * clears) and frees the previous ones. total: the messages waiting in all, or -1 unknown. */
void td_source_set_lag(struct td_source *src, struct td_lag_sample *samples, size_t n,
                       long long total);
/* Any thread (the loop's snapshot): a deep copy of the lag samples into *out (the caller frees it
 * with td_lag_samples_free) and *n; returns the total (-1 unknown). *out is NULL on out of
 * memory or when there is none. */
long long td_source_lag_copy(struct td_source *src, struct td_lag_sample **out, size_t *n);

/* Loop thread, about once a second: a source is stalled when it is connected, more waits at
 * the broker than it has in flight (backlog > inflight), it has credit to take more, and it has
 * neither read nor acknowledged anything for stall_after. That is a consumer that stopped
 * taking work it could take (a partition left paused, a pending list nobody claims), not a
 * slow function (then credit runs out) or an idle one (then nothing waits). Returns +1 when
 * the source just became stalled, -1 when it just recovered, else 0; src->watch says the state. */
int td_source_watch(struct td_source *src, int64_t now_ms);

/* The thread every plugin runs on, started and stopped the same way. spawn creates stopfd and
 * runs fn(arg) on src->thread; 0, or -1 with the reason logged. stop_thread raises quiesce and
 * stop, wakes the thread through stopfd (td_source_stop_begin), joins it and closes stopfd.
 * Neither does anything twice. Any thread but the source's own. */
int td_source_spawn(struct td_source *src, void *(*fn)(void *), void *arg);
void td_source_stop_thread(struct td_source *src);
/* The first half of td_source_stop_thread, which never waits: raises quiesce and stop and wakes
 * the thread. A caller that must not block (the loop retiring a source on a reload) calls it,
 * then ops->stop once td_source_stopped says the join will not wait (the plugin's thread may
 * take seconds to leave: a Kafka consumer's close waits for its broker). Any thread but the
 * source's own; a no-op when the thread does not run. */
void td_source_stop_begin(struct td_source *src);
/* True when src's thread does not run or its function has returned, so that ops->stop joins at
 * once. The thread that started and stops src. */
bool td_source_stopped(struct td_source *src);
/* td_source_stop_begin with a deadline (td_now_ms): a plugin whose thread waits for a broker on
 * its way out (the Kafka consumer's close: a last commit, leaving the group) gives up the wait at
 * deadline_ms and leaves, with what it could not commit left for redelivery. Shutdown calls it
 * for every source before joining any, so their waits overlap and end with shutdown_grace; a
 * reload calls it for a retiring source once drained (reload.c: its shutdown_grace too). Called
 * again, the earlier deadline stands. Any thread but the source's own; a no-op when the thread
 * does not run. */
void td_source_stop_by(struct td_source *src, int64_t deadline_ms);
/* A plugin's destroy left a thread of its own behind, still running (a Kafka consumer whose
 * close was given up at shutdown_grace is destroyed on a detached thread, because librdkafka
 * waits for its broker there). The process must then leave with _exit, not exit: exit's
 * handlers (libcurl's and OpenSSL's cleanup, the sanitizers' checks) would free or inspect what
 * that thread may still be using. td_source_left_behind says how many were. Any thread. */
void td_source_leave_behind(void);
unsigned td_source_left_behind(void);
/* The plain quiesce op: raises src->quiesce, which the plugin's thread polls. Any thread. */
void td_source_quiesce(struct td_source *src);

#endif
