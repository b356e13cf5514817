/* loop.c - epoll, a timer heap and a cross-thread task queue (see loop.h). */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct fd_watch {
    td_fd_fn fn;
    void *arg;
    uint32_t events; /* the interest registered with epoll (td_loop_fd_set compares it) */
    bool used;
};

struct task {
    struct task *next;
    td_task_fn fn;
    void *arg;
};

struct td_loop {
    int epfd;
    int wakefd;
    atomic_bool stop;
    struct fd_watch *watches; /* indexed by fd */
    size_t nwatches;
    struct td_timer **heap;
    size_t nheap, capheap;
    pthread_mutex_t mu; /* guards the task list */
    struct task *head, *tail;
    struct td_loop_defer *defers; /* loop thread only: run at the end of the iteration */
};

/* The injected clock (tests), or NULL: read on every td_now_ms from any thread. */
static _Atomic(td_clock_fn) clock_fn;

void td_clock_set(td_clock_fn fn)
{
    atomic_store(&clock_fn, fn);
}

int64_t td_now_ms(void)
{
    td_clock_fn fn = atomic_load_explicit(&clock_fn, memory_order_relaxed);
    if (fn) {
        return fn();
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t td_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct td_loop *td_loop_new(void)
{
    struct td_loop *loop = calloc(1, sizeof(*loop));
    if (!loop) {
        return NULL;
    }
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&loop->mu, NULL);
    if (loop->epfd < 0 || loop->wakefd < 0) {
        goto fail;
    }
    struct epoll_event ee = {.events = EPOLLIN, .data.fd = loop->wakefd};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ee) < 0) {
        goto fail;
    }
    return loop;
fail:
    td_loop_free(loop);
    return NULL;
}

void td_loop_free(struct td_loop *loop)
{
    if (!loop) {
        return;
    }
    if (loop->epfd >= 0) {
        close(loop->epfd);
    }
    if (loop->wakefd >= 0) {
        close(loop->wakefd);
    }
    for (struct task *t = loop->head, *next; t; t = next) {
        next = t->next;
        free(t);
    }
    pthread_mutex_destroy(&loop->mu);
    free(loop->watches);
    free(loop->heap);
    free(loop);
}

/* ---- timers: a binary min-heap on deadline ---- */

static void heap_set(struct td_loop *loop, size_t i, struct td_timer *t)
{
    loop->heap[i] = t;
    t->slot = i;
}

static void heap_up(struct td_loop *loop, size_t i)
{
    struct td_timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (loop->heap[parent]->deadline <= t->deadline) {
            break;
        }
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(struct td_loop *loop, size_t i)
{
    struct td_timer *t = loop->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= loop->nheap) {
            break;
        }
        if (child + 1 < loop->nheap &&
            loop->heap[child + 1]->deadline < loop->heap[child]->deadline) {
            child++;
        }
        if (loop->heap[child]->deadline >= t->deadline) {
            break;
        }
        heap_set(loop, i, loop->heap[child]);
        i = child;
    }
    heap_set(loop, i, t);
}

void td_timer_init(struct td_timer *t, td_timer_fn fn, void *arg)
{
    t->deadline = 0;
    t->slot = SIZE_MAX;
    t->fn = fn;
    t->arg = arg;
}

bool td_timer_armed(const struct td_timer *t)
{
    return t->slot != SIZE_MAX;
}

void td_timer_stop(struct td_loop *loop, struct td_timer *t)
{
    if (t->slot == SIZE_MAX) {
        return;
    }
    size_t i = t->slot;
    t->slot = SIZE_MAX;
    loop->nheap--;
    if (i == loop->nheap) {
        return;
    }
    struct td_timer *moved = loop->heap[loop->nheap];
    heap_set(loop, i, moved);
    heap_down(loop, i);
    heap_up(loop, moved->slot);
}

int td_timer_start(struct td_loop *loop, struct td_timer *t, int64_t delay_ms)
{
    td_timer_stop(loop, t);
    if (loop->nheap == loop->capheap) {
        size_t cap = loop->capheap ? loop->capheap * 2 : 64;
        struct td_timer **heap = realloc(loop->heap, cap * sizeof(*heap));
        if (!heap) {
            return -1;
        }
        loop->heap = heap;
        loop->capheap = cap;
    }
    /* A year is forever here, and keeps the deadline far from overflowing. */
    const int64_t year = 366LL * 24 * 3600 * 1000;
    t->deadline = td_now_ms() + (delay_ms > 0 ? (delay_ms < year ? delay_ms : year) : 0);
    heap_set(loop, loop->nheap++, t);
    heap_up(loop, t->slot);
    return 0;
}

static void run_timers(struct td_loop *loop)
{
    int64_t now = td_now_ms();
    while (loop->nheap > 0 && loop->heap[0]->deadline <= now) {
        struct td_timer *t = loop->heap[0];
        td_timer_stop(loop, t);
        int64_t next = t->fn(loop, t->arg);
        /* The callback may have freed its owner (and t) when it returns NOMORE. */
        if (next != TD_LOOP_NOMORE && !td_timer_armed(t)) {
            td_timer_start(loop, t, next);
        }
    }
}

/* ---- file descriptors ---- */

static int watch_slot(struct td_loop *loop, int fd)
{
    if (fd < 0) {
        return -1;
    }
    if ((size_t)fd >= loop->nwatches) {
        size_t n = (size_t)fd + 64;
        struct fd_watch *w = realloc(loop->watches, n * sizeof(*w));
        if (!w) {
            return -1;
        }
        memset(w + loop->nwatches, 0, (n - loop->nwatches) * sizeof(*w));
        loop->watches = w;
        loop->nwatches = n;
    }
    return 0;
}

static int fd_ctl(struct td_loop *loop, int op, int fd, uint32_t events, td_fd_fn fn, void *arg)
{
    if (watch_slot(loop, fd) < 0) {
        return -1;
    }
    struct epoll_event ee = {.events = events, .data.fd = fd};
    if (epoll_ctl(loop->epfd, op, fd, &ee) < 0) {
        return -1;
    }
    loop->watches[fd] = (struct fd_watch){.fn = fn, .arg = arg, .events = events, .used = true};
    return 0;
}

int td_loop_fd_set(struct td_loop *loop, int fd, uint32_t events, td_fd_fn fn, void *arg)
{
    if (fd >= 0 && (size_t)fd < loop->nwatches && loop->watches[fd].used) {
        struct fd_watch *w = &loop->watches[fd];
        if (w->events == events) {
            w->fn = fn; /* the same interest: epoll needs no call */
            w->arg = arg;
            return 0;
        }
        if (fd_ctl(loop, EPOLL_CTL_MOD, fd, events, fn, arg) == 0) {
            return 0;
        }
        if (errno != ENOENT) {
            return -1;
        }
        /* closed and reopened behind our back (epoll forgot it at the close): start over */
        loop->watches[fd].used = false;
    }
    if (fd_ctl(loop, EPOLL_CTL_ADD, fd, events, fn, arg) == 0) {
        return 0;
    }
    return errno == EEXIST ? fd_ctl(loop, EPOLL_CTL_MOD, fd, events, fn, arg) : -1;
}

int td_loop_fd_add(struct td_loop *loop, int fd, uint32_t events, td_fd_fn fn, void *arg)
{
    return fd_ctl(loop, EPOLL_CTL_ADD, fd, events, fn, arg);
}

int td_loop_fd_mod(struct td_loop *loop, int fd, uint32_t events, td_fd_fn fn, void *arg)
{
    return fd_ctl(loop, EPOLL_CTL_MOD, fd, events, fn, arg);
}

uint32_t td_loop_fd_events(const struct td_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nwatches || !loop->watches[fd].used) {
        return 0;
    }
    return loop->watches[fd].events;
}

void td_loop_fd_del(struct td_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nwatches || !loop->watches[fd].used) {
        return;
    }
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    loop->watches[fd].used = false;
}

/* ---- cross-thread tasks ---- */

int td_loop_post(struct td_loop *loop, td_task_fn fn, void *arg)
{
    struct task *t = malloc(sizeof(*t));
    if (!t) {
        return -1;
    }
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&loop->mu);
    bool was_empty = loop->head == NULL;
    if (loop->tail) {
        loop->tail->next = t;
    } else {
        loop->head = t;
    }
    loop->tail = t;
    pthread_mutex_unlock(&loop->mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(loop->wakefd, &one, sizeof(one));
        (void)w;
    }
    return 0;
}

void td_loop_defer_init(struct td_loop_defer *d, td_task_fn fn, void *arg)
{
    d->next = NULL;
    d->fn = fn;
    d->arg = arg;
    d->queued = false;
}

void td_loop_defer(struct td_loop *loop, struct td_loop_defer *d)
{
    if (d->queued) {
        return;
    }
    d->queued = true;
    d->next = loop->defers;
    loop->defers = d;
}

void td_loop_defer_cancel(struct td_loop *loop, struct td_loop_defer *d)
{
    if (!d->queued) {
        return;
    }
    for (struct td_loop_defer **pp = &loop->defers; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    d->queued = false;
    d->next = NULL;
}

/* Runs every queued defer once; one queued by a deferred function runs too. */
static void run_defers(struct td_loop *loop)
{
    while (loop->defers) {
        struct td_loop_defer *d = loop->defers;
        loop->defers = d->next;
        d->next = NULL;
        d->queued = false; /* before fn: it may queue itself again, or free its owner */
        d->fn(loop, d->arg);
    }
}

static void run_tasks(struct td_loop *loop)
{
    uint64_t n;
    ssize_t r = read(loop->wakefd, &n, sizeof(n));
    (void)r;
    pthread_mutex_lock(&loop->mu);
    struct task *t = loop->head;
    loop->head = loop->tail = NULL;
    pthread_mutex_unlock(&loop->mu);
    while (t) {
        struct task *next = t->next;
        t->fn(loop, t->arg);
        free(t);
        t = next;
    }
}

void td_loop_run_pending(struct td_loop *loop)
{
    run_tasks(loop);
    run_defers(loop);
}

void td_loop_stop(struct td_loop *loop)
{
    atomic_store(&loop->stop, true);
    uint64_t one = 1;
    ssize_t w = write(loop->wakefd, &one, sizeof(one));
    (void)w;
}

int td_loop_run_once(struct td_loop *loop, int timeout_ms)
{
    struct epoll_event events[64];
    int timeout = timeout_ms;
    if (loop->nheap > 0) {
        int64_t wait = loop->heap[0]->deadline - td_now_ms();
        int t = wait < 0 ? 0 : (wait > 60000 ? 60000 : (int)wait);
        if (timeout < 0 || t < timeout) {
            timeout = t;
        }
    }
    int n = epoll_wait(loop->epfd, events, 64, timeout);
    if (n < 0) {
        return errno == EINTR ? 0 : -1;
    }
    for (int i = 0; i < n; i++) {
        int fd = events[i].data.fd;
        if (fd == loop->wakefd) {
            run_tasks(loop);
            continue;
        }
        if ((size_t)fd < loop->nwatches && loop->watches[fd].used) {
            struct fd_watch w = loop->watches[fd];
            w.fn(loop, fd, events[i].events, w.arg);
        }
    }
    run_timers(loop);
    run_defers(loop);
    return n;
}

int td_loop_run(struct td_loop *loop)
{
    atomic_store(&loop->stop, false);
    while (!atomic_load(&loop->stop)) {
        if (td_loop_run_once(loop, -1) < 0) {
            return -1;
        }
    }
    return 0;
}
