/* source.c - what every source shares: the mailbox, credits, the thread, and creating a source
 * through its kind's descriptor (registry.c). */
#include "source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cloudevent.h"
#include "log.h"
#include "trace_msg.h"

const char *const td_source_start_names[] = {"earliest", "latest", NULL};

void td_msg_free(struct td_msg *msg)
{
    if (!msg) {
        return;
    }
    td_event_unref(msg->ev);
    free(msg->invalid);
    free(msg->coord);
    free(msg->final_why);
    free(msg->tp_header);
    free(msg->ts_header);
    td_trace_msg_free(msg->trace);
    free(msg);
}

/* The deferred wake-up (td_source_complete_batched): one eventfd write for the iteration. */
static void wake_source(struct td_loop *loop, void *arg)
{
    (void)loop;
    struct td_source *src = arg;
    uint64_t one = 1;
    ssize_t w = write(src->mailbox_fd, &one, sizeof(one));
    (void)w;
}

/* The part of a source every kind shares: counters, the done list and its mailbox. NULL with a
 * message in err on failure. The caller frees with td_source_free(). */
static struct td_source *source_alloc(const char *name, char *err, size_t errlen)
{
    struct td_source *src = calloc(1, sizeof(*src));
    if (!src) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    src->name = name;
    atomic_store(&src->backlog, -1);
    src->lag_total = -1;
    pthread_mutex_init(&src->lag_mu, NULL);
    src->stopfd = -1;
    td_loop_defer_init(&src->wake, wake_source, src);
    pthread_mutex_init(&src->mu, NULL);
    src->mailbox_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (src->mailbox_fd < 0) {
        snprintf(err, errlen, "source '%s': eventfd failed", name);
        td_source_free(src);
        return NULL;
    }
    return src;
}

struct td_source *td_source_new(const struct td_conf_source *conf,
                                const struct td_source_host *host, char *err, size_t errlen)
{
    const struct td_source_ops *ops = td_source_ops_of(conf);
    if (!ops) {
        snprintf(err, errlen, "source '%s': this kind of source is not supported by this build yet",
                 conf->name);
        return NULL;
    }
    struct td_source *src = source_alloc(conf->name, err, errlen);
    if (!src) {
        return NULL;
    }
    src->ops = ops;
    src->conf = conf;
    src->emit = host->emit;
    src->cancel = host->cancel;
    src->core = host->core;
    src->httpd = host->httpd;
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
    if (src->wake_loop) {
        td_loop_defer_cancel(src->wake_loop, &src->wake); /* it would write a closed eventfd */
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
    td_lag_samples_free(src->lag, src->nlag);
    pthread_mutex_destroy(&src->lag_mu);
    free(src);
}

void td_lag_samples_free(struct td_lag_sample *samples, size_t n)
{
    for (size_t i = 0; samples && i < n; i++) {
        for (int k = 0; k < TD_LAG_LABELS; k++) {
            free(samples[i].val[k]);
        }
    }
    free(samples);
}

void td_source_set_lag(struct td_source *src, struct td_lag_sample *samples, size_t n,
                       long long total)
{
    pthread_mutex_lock(&src->lag_mu);
    struct td_lag_sample *old = src->lag;
    size_t nold = src->nlag;
    src->lag = samples;
    src->nlag = samples ? n : 0;
    src->lag_total = total;
    pthread_mutex_unlock(&src->lag_mu);
    td_lag_samples_free(old, nold);
}

long long td_source_lag_copy(struct td_source *src, struct td_lag_sample **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&src->lag_mu);
    long long total = src->lag_total;
    struct td_lag_sample *copy = src->nlag ? calloc(src->nlag, sizeof(*copy)) : NULL;
    size_t done = 0;
    for (; copy && done < src->nlag; done++) {
        copy[done] = src->lag[done];
        bool ok = true;
        for (int k = 0; k < TD_LAG_LABELS; k++) {
            copy[done].val[k] = src->lag[done].val[k] ? strdup(src->lag[done].val[k]) : NULL;
            ok = ok && (copy[done].val[k] || !src->lag[done].val[k]);
        }
        if (!ok) {
            td_lag_samples_free(copy, done + 1);
            copy = NULL;
        }
    }
    pthread_mutex_unlock(&src->lag_mu);
    if (copy) {
        *out = copy;
        *n = done;
    }
    return total;
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

void td_source_cancel(struct td_source *src, uint64_t gen)
{
    if (src->cancel) {
        src->cancel(src->core, src, gen);
    }
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

/* Puts msg in the mailbox; true when the mailbox was empty (the thread needs a wake-up). */
static bool mailbox_put(struct td_source *src, struct td_msg *msg, enum td_outcome outcome)
{
    msg->release = outcome == TD_OUTCOME_RELEASE;
    msg->reject = outcome == TD_OUTCOME_REJECT;
    pthread_mutex_lock(&src->mu);
    bool was_empty = src->done == NULL;
    msg->next = src->done;
    src->done = msg;
    pthread_mutex_unlock(&src->mu);
    return was_empty;
}

void td_source_complete(struct td_source *src, struct td_msg *msg, enum td_outcome outcome)
{
    if (mailbox_put(src, msg, outcome)) { /* one wake-up per batch of completions */
        uint64_t one = 1;
        ssize_t w = write(src->mailbox_fd, &one, sizeof(one));
        (void)w;
    }
}

void td_source_complete_batched(struct td_source *src, struct td_msg *msg, enum td_outcome outcome,
                                struct td_loop *loop)
{
    /* A put into an empty mailbox queues the wake-up; puts after it (the thread has not taken
     * the mailbox yet) ride on it. If the thread takes the mailbox before the iteration ends,
     * the next put finds it empty again and the one queued wake-up covers it too. */
    if (mailbox_put(src, msg, outcome)) {
        src->wake_loop = loop;
        td_loop_defer(loop, &src->wake);
    }
}

/* The thread's function: the plugin's, then the mark td_source_stopped reads. */
static void *source_thread(void *arg)
{
    struct td_source *src = arg;
    src->run_fn(src->run_arg);
    atomic_store(&src->exited, true);
    return NULL;
}

int td_source_spawn(struct td_source *src, void *(*fn)(void *), void *arg)
{
    if (src->started) {
        return 0;
    }
    src->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (src->stopfd < 0) {
        td_log_error(NULL, src->name, NULL, "cannot start the source thread: eventfd failed");
        return -1;
    }
    src->run_fn = fn;
    src->run_arg = arg;
    atomic_store(&src->exited, false);
    atomic_store(&src->stop_by_ms, 0);
    if (pthread_create(&src->thread, NULL, source_thread, src) != 0) {
        td_log_error(NULL, src->name, NULL, "cannot start the source thread");
        close(src->stopfd);
        src->stopfd = -1;
        return -1;
    }
    src->started = true;
    return 0;
}

void td_source_stop_begin(struct td_source *src)
{
    if (!src->started) {
        return;
    }
    atomic_store(&src->quiesce, true);
    atomic_store(&src->stop, true);
    uint64_t one = 1;
    ssize_t w = write(src->stopfd, &one, sizeof(one));
    (void)w;
}

void td_source_stop_by(struct td_source *src, int64_t deadline_ms)
{
    if (!src->started) {
        return;
    }
    /* Before the wake-up, so the thread sees the deadline once it is on its way out. Only ever
     * earlier: a retiring source's deadline stands when shutdown's comes later. One writer (the
     * thread that stops src), so no compare-and-swap is needed. */
    int64_t cur = atomic_load(&src->stop_by_ms);
    if (cur == 0 || deadline_ms < cur) {
        atomic_store(&src->stop_by_ms, deadline_ms);
    }
    td_source_stop_begin(src);
}

static _Atomic unsigned left_behind;

void td_source_leave_behind(void)
{
    atomic_fetch_add(&left_behind, 1);
}

unsigned td_source_left_behind(void)
{
    return atomic_load(&left_behind);
}

bool td_source_stopped(struct td_source *src)
{
    return !src->started || atomic_load(&src->exited);
}

void td_source_stop_thread(struct td_source *src)
{
    if (!src->started) {
        return;
    }
    td_source_stop_begin(src);
    pthread_join(src->thread, NULL);
    close(src->stopfd);
    src->stopfd = -1;
    src->started = false;
}

void td_source_quiesce(struct td_source *src)
{
    atomic_store(&src->quiesce, true);
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

struct td_source *td_source_new_local(const char *name, char *err, size_t errlen)
{
    return source_alloc(name, err, errlen);
}
