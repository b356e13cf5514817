/* source.c - what every source shares: the mailbox, credits, and the plugin table. */
#include "source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cloudevent.h"
#include "log.h"

void td_msg_free(struct td_msg *msg)
{
    if (!msg) {
        return;
    }
    td_event_unref(msg->ev);
    free(msg->invalid);
    free(msg->coord);
    free(msg->final_why);
    free(msg);
}

static const struct td_source_ops *ops_for(enum td_source_kind kind)
{
    switch (kind) {
    case TD_SOURCE_REDIS:
        return &td_source_redis_ops;
    case TD_SOURCE_HTTP:
        return &td_source_http_ops;
    case TD_SOURCE_KAFKA:
        return &td_source_kafka_ops;
    case TD_SOURCE_RABBITMQ:
        return &td_source_rabbitmq_ops;
    default:
        return NULL;
    }
}

static const char *const kind_names[] = {"redis", "kafka", "rabbitmq", "http"};

struct td_source *td_source_new(const struct td_conf_source *conf, td_emit_fn emit, void *core,
                                char *err, size_t errlen)
{
    const struct td_source_ops *ops = ops_for(conf->kind);
    if (!ops) {
        snprintf(
            err, errlen, "source '%s': %s sources are not supported by this build yet", conf->name,
            (size_t)conf->kind < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[conf->kind]
                                                                            : "these");
        return NULL;
    }
    struct td_source *src = calloc(1, sizeof(*src));
    if (!src) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    src->ops = ops;
    src->conf = conf;
    src->name = conf->name;
    src->emit = emit;
    src->core = core;
    atomic_store(&src->backlog, -1);
    pthread_mutex_init(&src->mu, NULL);
    src->mailbox_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (src->mailbox_fd < 0) {
        snprintf(err, errlen, "source '%s': eventfd failed", conf->name);
        td_source_free(src);
        return NULL;
    }
    if (ops->init(src, err, errlen) < 0) {
        src->ops = NULL; /* nothing for destroy to free */
        td_source_free(src);
        return NULL;
    }
    return src;
}

void td_source_free(struct td_source *src)
{
    if (!src) {
        return;
    }
    if (src->ops && src->ops->destroy) {
        src->ops->destroy(src);
    }
    for (struct td_msg *m = src->done, *next; m; m = next) {
        next = m->next;
        td_msg_free(m);
    }
    if (src->mailbox_fd >= 0) {
        close(src->mailbox_fd);
    }
    pthread_mutex_destroy(&src->mu);
    free(src);
}

void td_source_emit(struct td_source *src, struct td_msg *batch)
{
    int n = 0;
    for (struct td_msg *m = batch; m; m = m->next) {
        m->src = src;
        n++;
    }
    if (n == 0) {
        return;
    }
    atomic_fetch_add(&src->inflight, n);
    atomic_fetch_add(&src->received, n);
    src->emit(src->core, batch);
}

int td_source_credit(struct td_source *src)
{
    int max = src->conf->max_inflight;
    int credit = max - atomic_load(&src->inflight);
    return credit > 0 ? credit : 0;
}

int td_source_watch(struct td_source *src, int64_t now_ms)
{
    long long received = atomic_load(&src->received);
    long long acked = atomic_load(&src->acked);
    long long backlog = atomic_load(&src->backlog);
    int inflight = atomic_load(&src->inflight);
    int max = src->conf->max_inflight;
    bool waiting = atomic_load(&src->connected) && backlog > inflight && inflight < max;
    if (!waiting || received != src->watch.received || acked != src->watch.acked ||
        src->watch.since_ms == 0) {
        src->watch.received = received;
        src->watch.acked = acked;
        src->watch.since_ms = now_ms;
        if (src->watch.stalled) {
            src->watch.stalled = false;
            return -1;
        }
        return 0;
    }
    int64_t limit = src->conf->stall_after_ms;
    if (!src->watch.stalled && limit > 0 && now_ms - src->watch.since_ms >= limit) {
        src->watch.stalled = true;
        return 1;
    }
    return 0;
}

void td_source_complete(struct td_source *src, struct td_msg *msg, enum td_outcome outcome)
{
    msg->release = outcome == TD_OUTCOME_RELEASE;
    msg->reject = outcome == TD_OUTCOME_REJECT;
    pthread_mutex_lock(&src->mu);
    bool was_empty = src->done == NULL;
    msg->next = src->done;
    src->done = msg;
    pthread_mutex_unlock(&src->mu);
    if (was_empty) { /* one wake-up per batch of completions, not one per message */
        uint64_t one = 1;
        ssize_t w = write(src->mailbox_fd, &one, sizeof(one));
        (void)w;
    }
}

int td_source_spawn(struct td_source *src, pthread_t *thread, bool *started, void *(*fn)(void *),
                    void *arg)
{
    if (*started) {
        return 0;
    }
    if (pthread_create(thread, NULL, fn, arg) != 0) {
        td_log_error(NULL, src->name, NULL, "cannot start the source thread");
        return -1;
    }
    *started = true;
    return 0;
}

void td_source_stop_thread(pthread_t *thread, bool *started, atomic_bool *quiesce,
                           atomic_bool *stop, int stopfd)
{
    if (!*started) {
        return;
    }
    atomic_store(quiesce, true);
    atomic_store(stop, true);
    uint64_t one = 1;
    ssize_t w = write(stopfd, &one, sizeof(one));
    (void)w;
    pthread_join(*thread, NULL);
    *started = false;
}

struct td_msg *td_source_take_done(struct td_source *src)
{
    uint64_t n;
    ssize_t r = read(src->mailbox_fd, &n, sizeof(n));
    (void)r;
    pthread_mutex_lock(&src->mu);
    struct td_msg *list = src->done;
    src->done = NULL;
    pthread_mutex_unlock(&src->mu);
    int count = 0;
    for (struct td_msg *m = list; m; m = m->next) {
        count++;
    }
    atomic_fetch_sub(&src->inflight, count);
    return list;
}
