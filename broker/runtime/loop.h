/* loop.h - the single event loop every delivery runs on.
 *
 * epoll for file descriptors, a binary heap of timers (the nearest deadline is epoll_wait's
 * timeout), and an eventfd-backed task queue that other threads use to hand work to the loop
 * (td_loop_post). Nothing here blocks except epoll_wait itself.
 *
 * Timers are embedded in their owner (struct td_timer), so arming one allocates nothing.
 * A timer callback returns the delay in ms before it runs again, or TD_LOOP_NOMORE.
 * Threads: everything runs on the loop thread, except td_loop_post and td_loop_stop (any).
 */
#ifndef TD_LOOP_H
#define TD_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TD_LOOP_NOMORE (-1)

struct td_loop;

typedef int64_t (*td_timer_fn)(struct td_loop *loop, void *arg);
typedef void (*td_fd_fn)(struct td_loop *loop, int fd, uint32_t events, void *arg);
typedef void (*td_task_fn)(struct td_loop *loop, void *arg);

struct td_timer {
    int64_t deadline; /* td_now_ms() when it fires */
    size_t slot;      /* index in the heap, or SIZE_MAX when not armed */
    td_timer_fn fn;
    void *arg;
};

/* Monotonic milliseconds: CLOCK_MONOTONIC, or the clock td_clock_set installed. */
int64_t td_now_ms(void);
/* Tests: a clock in ms for td_now_ms (and so for every timer deadline); NULL restores
 * CLOCK_MONOTONIC. Set it before the loops and threads that read the clock start. */
typedef int64_t (*td_clock_fn)(void);
void td_clock_set(td_clock_fn fn);
/* Wall-clock milliseconds since the UNIX epoch. */
int64_t td_wall_ms(void);

struct td_loop *td_loop_new(void);
void td_loop_free(struct td_loop *loop); /* NULL is a no-op; pending posted tasks are dropped */

void td_timer_init(struct td_timer *t, td_timer_fn fn, void *arg);
/* (Re)arms t to fire in delay_ms. 0 or -1 (out of memory). */
int td_timer_start(struct td_loop *loop, struct td_timer *t, int64_t delay_ms);
void td_timer_stop(struct td_loop *loop, struct td_timer *t); /* no-op when not armed */
bool td_timer_armed(const struct td_timer *t);

/* events: EPOLLIN / EPOLLOUT. 0 or -1. */
int td_loop_fd_add(struct td_loop *loop, int fd, uint32_t events, td_fd_fn fn, void *arg);
int td_loop_fd_mod(struct td_loop *loop, int fd, uint32_t events, td_fd_fn fn, void *arg);
void td_loop_fd_del(struct td_loop *loop, int fd);
/* Watches fd for events with fn/arg, whether or not it is watched already, and calls epoll only
 * when the interest changes (ADD when new, MOD when different, nothing when the same: then only
 * fn/arg are replaced). A client that keeps idle sockets registered switches interest and
 * callback without a system call per request. 0 or -1. */
int td_loop_fd_set(struct td_loop *loop, int fd, uint32_t events, td_fd_fn fn, void *arg);
/* The interest fd is registered with (EPOLLIN / EPOLLOUT), 0 when it is not watched. */
uint32_t td_loop_fd_events(const struct td_loop *loop, int fd);

/* Work the loop thread runs once at the end of the current iteration (after the ready fds, the
 * posted tasks and the due timers), however often it was queued meanwhile: a completion path
 * that runs once per event queues its wake-up of another thread here, so that thread is woken
 * once per iteration with everything the iteration finished. Embedded in its owner, so
 * queuing allocates nothing. Loop thread only. The owner cancels it before it frees it. */
struct td_loop_defer {
    struct td_loop_defer *next;
    td_task_fn fn;
    void *arg;
    bool queued;
};
void td_loop_defer_init(struct td_loop_defer *d, td_task_fn fn, void *arg);
void td_loop_defer(struct td_loop *loop, struct td_loop_defer *d);        /* no-op when queued */
void td_loop_defer_cancel(struct td_loop *loop, struct td_loop_defer *d); /* no-op if not */

/* Any thread: runs fn(loop, arg) on the loop thread soon, in posting order. 0 or -1. */
int td_loop_post(struct td_loop *loop, td_task_fn fn, void *arg);

/* Runs the tasks posted so far, then the queued defers (teardown: after the loop stopped). */
void td_loop_run_pending(struct td_loop *loop);

/* Runs until td_loop_stop(). 0, or -1 if epoll failed. */
int td_loop_run(struct td_loop *loop);
/* One iteration of td_loop_run: waits up to timeout_ms (-1: no limit; capped by the nearest
 * timer) for file descriptors, then runs the ready ones, the posted tasks, the due timers and
 * the queued defers.
 * With a fake clock (td_clock_set), a test advances the clock and calls it with 0.
 * Returns how many fds were ready (the wake-up of posted tasks included), or -1 if epoll
 * failed (0 on EINTR). */
int td_loop_run_once(struct td_loop *loop, int timeout_ms);
void td_loop_stop(struct td_loop *loop); /* any thread */

#endif
