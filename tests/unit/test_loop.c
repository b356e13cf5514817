/* test_loop.c - unit tests for the event loop (loop.h): timers (deadline order, re-arming by
 * the returned delay, TD_LOOP_NOMORE, td_timer_stop, a heap of 1000 timers with random stops),
 * tasks posted from other threads (run on the loop thread, in order), fd watches on a pipe,
 * td_loop_stop from a callback and from another thread, and td_loop_run_pending; td_loop_fd_set
 * (epoll only when the interest changes) and td_loop_defer (once, at the end of the iteration).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static int setup_loop(void **state)
{
    struct td_loop *loop = td_loop_new();

    if (!loop) {
        return -1;
    }
    *state = loop;
    return 0;
}

static int teardown_loop(void **state)
{
    td_loop_free(*state);
    return 0;
}

/* A safety net: stops the loop after `ms` so a broken loop fails a test instead of hanging. */
static struct td_timer guard;
static bool guard_fired;

static int64_t on_guard(struct td_loop *loop, void *arg)
{
    guard_fired = true;
    td_loop_stop(loop);
    return TD_LOOP_NOMORE;
}

static void arm_guard(struct td_loop *loop, int64_t ms)
{
    guard_fired = false;
    td_timer_init(&guard, on_guard, NULL);
    assert_int_equal(td_timer_start(loop, &guard, ms), 0);
}

static void run(struct td_loop *loop)
{
    assert_int_equal(td_loop_run(loop), 0);
    td_timer_stop(loop, &guard);
}

/* ---- clocks ---- */

static void test_clocks(void **state)
{
    int64_t a = td_now_ms();
    sleep_ms(20);
    int64_t b = td_now_ms();

    assert_true(b - a >= 19);
    assert_true(b - a < 2000);
    int64_t wall = td_wall_ms();
    int64_t t = (int64_t)time(NULL) * 1000;
    assert_true(wall > t - 2000 && wall < t + 2000);
}

/* ---- timers ---- */

struct fire {
    struct td_timer timer;
    int id;
    int64_t deadline;
    int64_t fired_at;
    int fired;
    int64_t again; /* returned delay while fired < times */
    int times;
    bool stop_when_done; /* stop the loop at the last firing: no end timer to race with */
};

static int order[2048];
static int norder;
static int64_t order_deadline[2048];

static int64_t on_fire(struct td_loop *loop, void *arg)
{
    struct fire *f = arg;

    f->fired++;
    f->fired_at = td_now_ms();
    f->deadline = f->timer.deadline;
    assert_false(td_timer_armed(&f->timer)); /* disarmed while its callback runs */
    if (norder < 2048) {
        order_deadline[norder] = f->timer.deadline;
        order[norder++] = f->id;
    }
    if (f->fired < f->times) {
        return f->again;
    }
    if (f->stop_when_done) {
        td_loop_stop(loop);
    }
    return TD_LOOP_NOMORE;
}

static void fire_init(struct fire *f, int id)
{
    memset(f, 0, sizeof(*f));
    f->id = id;
    f->times = 1;
    td_timer_init(&f->timer, on_fire, f);
}

static int64_t on_stop(struct td_loop *loop, void *arg)
{
    int *count = arg;

    if (count) {
        (*count)++;
    }
    td_loop_stop(loop);
    return TD_LOOP_NOMORE;
}

static void test_timer_init_unarmed(void **state)
{
    struct td_loop *loop = *state;
    struct td_timer t;

    td_timer_init(&t, on_stop, NULL);
    assert_false(td_timer_armed(&t));
    int64_t before = td_now_ms(); /* not read after the start: a busy machine may pause us */
    assert_int_equal(td_timer_start(loop, &t, 100), 0);
    assert_true(td_timer_armed(&t));
    assert_true(t.deadline >= before + 100);
    td_timer_stop(loop, &t);
    assert_false(td_timer_armed(&t));
}

static void test_deadline_order(void **state)
{
    struct td_loop *loop = *state;
    const int64_t delays[] = {40, 10, 30, 0, 20, 5};
    struct fire f[6];
    struct td_timer end;
    int64_t start = td_now_ms();

    norder = 0;
    for (int i = 0; i < 6; i++) {
        fire_init(&f[i], i);
        assert_int_equal(td_timer_start(loop, &f[i].timer, delays[i]), 0);
    }
    td_timer_init(&end, on_stop, NULL);
    assert_int_equal(td_timer_start(loop, &end, 60), 0);
    arm_guard(loop, 3000);
    run(loop);
    assert_false(guard_fired);
    const int want[] = {3, 5, 1, 4, 2, 0};
    assert_int_equal(norder, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(order[i], want[i]);
        /* never early */
        assert_true(f[i].fired_at >= f[i].deadline);
        assert_true(f[i].deadline >= start + delays[i]);
        assert_int_equal(f[i].fired, 1);
        assert_false(td_timer_armed(&f[i].timer));
    }
}

static void test_rearm_by_return(void **state)
{
    struct td_loop *loop = *state;
    struct fire f;
    int64_t start = td_now_ms();

    norder = 0;
    fire_init(&f, 1);
    f.times = 4;
    f.again = 15;
    f.stop_when_done = true; /* not an end timer at 150 ms: a pause of 100 ms beat it */
    assert_int_equal(td_timer_start(loop, &f.timer, 0), 0);
    arm_guard(loop, 3000);
    run(loop);
    /* fired 4 times (three re-arms), then NOMORE left it unarmed for good */
    assert_false(guard_fired);
    assert_int_equal(f.fired, 4);
    assert_int_equal(norder, 4);
    assert_false(td_timer_armed(&f.timer));
    for (int i = 1; i < 4; i++) {
        assert_true(order_deadline[i] - order_deadline[i - 1] >= 15);
    }
    assert_true(f.fired_at - start >= 45);
}

static void test_rearm_zero_delay(void **state)
{
    struct td_loop *loop = *state;
    struct fire f;

    norder = 0;
    fire_init(&f, 1);
    f.times = 50;
    f.again = 0;
    f.stop_when_done = true;
    assert_int_equal(td_timer_start(loop, &f.timer, 0), 0);
    arm_guard(loop, 3000);
    run(loop);
    assert_false(guard_fired);
    assert_int_equal(f.fired, 50);
    assert_false(td_timer_armed(&f.timer));
}

static struct td_timer *self_timer;
static int self_runs;

/* Re-arms itself explicitly and returns NOMORE: the explicit arming wins (dispatch does this
 * when a retry fails synchronously and starts the same timer again). */
static int64_t on_self_rearm(struct td_loop *loop, void *arg)
{
    self_runs++;
    if (self_runs < 3) {
        assert_int_equal(td_timer_start(loop, self_timer, 5), 0);
    } else {
        td_loop_stop(loop);
    }
    return TD_LOOP_NOMORE;
}

static void test_rearm_inside_callback(void **state)
{
    struct td_loop *loop = *state;
    struct td_timer t;

    self_runs = 0;
    self_timer = &t;
    td_timer_init(&t, on_self_rearm, NULL);
    assert_int_equal(td_timer_start(loop, &t, 0), 0);
    arm_guard(loop, 3000);
    run(loop);
    assert_false(guard_fired);
    assert_int_equal(self_runs, 3);
    assert_false(td_timer_armed(&t));
}

static void test_timer_stop(void **state)
{
    struct td_loop *loop = *state;
    struct fire a, b, c;
    struct td_timer end;

    norder = 0;
    fire_init(&a, 1);
    fire_init(&b, 2);
    fire_init(&c, 3);
    /* stopping an unarmed timer is a no-op, twice too */
    td_timer_stop(loop, &a.timer);
    td_timer_stop(loop, &a.timer);
    assert_false(td_timer_armed(&a.timer));
    assert_int_equal(td_timer_start(loop, &a.timer, 10), 0);
    assert_int_equal(td_timer_start(loop, &b.timer, 20), 0);
    assert_int_equal(td_timer_start(loop, &c.timer, 30), 0);
    td_timer_stop(loop, &b.timer);
    assert_false(td_timer_armed(&b.timer));
    assert_true(td_timer_armed(&a.timer));
    assert_true(td_timer_armed(&c.timer));
    td_timer_stop(loop, &b.timer);
    /* restarting an armed timer moves it (once, not twice) */
    assert_int_equal(td_timer_start(loop, &a.timer, 40), 0);
    td_timer_init(&end, on_stop, NULL);
    assert_int_equal(td_timer_start(loop, &end, 70), 0);
    arm_guard(loop, 3000);
    run(loop);
    assert_int_equal(a.fired, 1);
    assert_int_equal(b.fired, 0);
    assert_int_equal(c.fired, 1);
    assert_int_equal(norder, 2);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[1], 1);
}

/* A callback stops another timer that is already due: it must not run. */
static struct fire *victim;

static int64_t on_kill_victim(struct td_loop *loop, void *arg)
{
    td_timer_stop(loop, &victim->timer);
    return TD_LOOP_NOMORE;
}

static void test_stop_due_timer_from_callback(void **state)
{
    struct td_loop *loop = *state;
    struct td_timer killer;
    struct fire v;
    struct td_timer end;

    norder = 0;
    fire_init(&v, 9);
    victim = &v;
    td_timer_init(&killer, on_kill_victim, NULL);
    assert_int_equal(td_timer_start(loop, &killer, 0), 0);
    assert_int_equal(td_timer_start(loop, &v.timer, 1), 0);
    sleep_ms(5); /* both are due when the loop looks */
    td_timer_init(&end, on_stop, NULL);
    assert_int_equal(td_timer_start(loop, &end, 20), 0);
    arm_guard(loop, 3000);
    run(loop);
    assert_int_equal(v.fired, 0);
}

/* ---- many timers ---- */

#define NMANY 1000

static struct fire many[NMANY];
static int many_left;

static int64_t on_many(struct td_loop *loop, void *arg)
{
    struct fire *f = arg;

    on_fire(loop, f);
    if (--many_left == 0) {
        td_loop_stop(loop);
    }
    return TD_LOOP_NOMORE;
}

static void test_many_timers_random_stops(void **state)
{
    struct td_loop *loop = *state;
    bool stopped[NMANY];
    unsigned seed = 12345;

    norder = 0;
    many_left = 0;
    for (int i = 0; i < NMANY; i++) {
        fire_init(&many[i], i);
        td_timer_init(&many[i].timer, on_many, &many[i]);
        assert_int_equal(td_timer_start(loop, &many[i].timer, rand_r(&seed) % 200), 0);
        stopped[i] = false;
    }
    /* restart a random tenth with new deadlines (heap moves both ways) */
    for (int i = 0; i < NMANY / 10; i++) {
        int k = rand_r(&seed) % NMANY;
        assert_int_equal(td_timer_start(loop, &many[k].timer, rand_r(&seed) % 200), 0);
    }
    /* stop a random third */
    int nstopped = 0;
    while (nstopped < NMANY / 3) {
        int k = rand_r(&seed) % NMANY;
        if (!stopped[k]) {
            td_timer_stop(loop, &many[k].timer);
            stopped[k] = true;
            nstopped++;
        }
    }
    for (int i = 0; i < NMANY; i++) {
        assert_int_equal(td_timer_armed(&many[i].timer), !stopped[i]);
        many_left += !stopped[i];
    }
    int expected = many_left;
    arm_guard(loop, 4000);
    run(loop);
    assert_false(guard_fired);
    assert_int_equal(norder, expected);
    for (int i = 0; i < NMANY; i++) {
        assert_int_equal(many[i].fired, stopped[i] ? 0 : 1);
        if (!stopped[i]) {
            assert_true(many[i].fired_at >= many[i].deadline);
        }
    }
    for (int i = 1; i < norder; i++) {
        if (order_deadline[i] < order_deadline[i - 1]) {
            fail_msg("timer %d (deadline %lld) fired after timer %d (deadline %lld)", order[i],
                     (long long)order_deadline[i], order[i - 1], (long long)order_deadline[i - 1]);
        }
    }
}

/* ---- tasks ---- */

struct post_ctx {
    struct td_loop *loop;
    pthread_t loop_thread;
    int producers;
    int per_producer;
    int next[8]; /* the next sequence number expected from each producer */
    int total;
    bool wrong_thread;
    bool out_of_order;
};

struct post_item {
    struct post_ctx *ctx;
    int producer;
    int seq;
};

static void on_post(struct td_loop *loop, void *arg)
{
    struct post_item *it = arg;
    struct post_ctx *ctx = it->ctx;

    if (!pthread_equal(pthread_self(), ctx->loop_thread)) {
        ctx->wrong_thread = true;
    }
    if (it->seq != ctx->next[it->producer]) {
        ctx->out_of_order = true;
    }
    ctx->next[it->producer] = it->seq + 1;
    free(it);
    if (++ctx->total == ctx->producers * ctx->per_producer) {
        td_loop_stop(loop);
    }
}

struct producer {
    struct post_ctx *ctx;
    int id;
};

static void *producer_main(void *arg)
{
    struct producer *p = arg;

    for (int i = 0; i < p->ctx->per_producer; i++) {
        struct post_item *it = malloc(sizeof(*it));
        it->ctx = p->ctx;
        it->producer = p->id;
        it->seq = i;
        if (td_loop_post(p->ctx->loop, on_post, it) != 0) {
            free(it);
        }
        if (i % 100 == 0) {
            sleep_ms(1);
        }
    }
    return NULL;
}

static void run_producers(struct td_loop *loop, int nproducers, int per)
{
    struct post_ctx ctx;
    pthread_t th[8];
    struct producer p[8];

    memset(&ctx, 0, sizeof(ctx));
    ctx.loop = loop;
    ctx.loop_thread = pthread_self();
    ctx.producers = nproducers;
    ctx.per_producer = per;
    for (int i = 0; i < nproducers; i++) {
        p[i].ctx = &ctx;
        p[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, producer_main, &p[i]), 0);
    }
    arm_guard(loop, 4000);
    run(loop);
    for (int i = 0; i < nproducers; i++) {
        pthread_join(th[i], NULL);
    }
    assert_false(guard_fired);
    assert_int_equal(ctx.total, nproducers * per);
    assert_false(ctx.wrong_thread);
    assert_false(ctx.out_of_order);
    for (int i = 0; i < nproducers; i++) {
        assert_int_equal(ctx.next[i], per);
    }
}

static void test_post_from_thread(void **state)
{
    run_producers(*state, 1, 2000);
}

static void test_post_from_many_threads(void **state)
{
    run_producers(*state, 4, 1000);
}

static int pending_log[16];
static int npending;

static void on_pending(struct td_loop *loop, void *arg)
{
    pending_log[npending++] = (int)(intptr_t)arg;
}

static void test_run_pending(void **state)
{
    struct td_loop *loop = *state;

    npending = 0;
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(td_loop_post(loop, on_pending, (void *)(intptr_t)i), 0);
    }
    assert_int_equal(npending, 0); /* nothing runs before the loop runs them */
    td_loop_run_pending(loop);
    assert_int_equal(npending, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(pending_log[i], i + 1);
    }
    /* each task runs once */
    td_loop_run_pending(loop);
    assert_int_equal(npending, 5);
    /* with nothing posted, run_pending returns at once */
    td_loop_run_pending(loop);
    assert_int_equal(npending, 5);
}

static void test_free_drops_pending(void **state)
{
    struct td_loop *loop = td_loop_new();

    assert_non_null(loop);
    npending = 0;
    assert_int_equal(td_loop_post(loop, on_pending, (void *)1), 0);
    assert_int_equal(td_loop_post(loop, on_pending, (void *)2), 0);
    td_loop_free(loop); /* no leak (ASan), nothing run */
    assert_int_equal(npending, 0);
    td_loop_free(NULL);
}

/* A task posted on the loop thread while the loop runs (from a timer) runs too. */
static int64_t on_post_from_timer(struct td_loop *loop, void *arg)
{
    assert_int_equal(td_loop_post(loop, on_pending, (void *)7), 0);
    return TD_LOOP_NOMORE;
}

static void test_post_from_loop_thread(void **state)
{
    struct td_loop *loop = *state;
    struct td_timer t;

    npending = 0;
    td_timer_init(&t, on_post_from_timer, NULL);
    assert_int_equal(td_timer_start(loop, &t, 5), 0);
    assert_int_equal(td_loop_post(loop, on_pending, (void *)3), 0);
    arm_guard(loop, 3000);
    /* stop well after the timer's task ran */
    struct td_timer t2;
    td_timer_init(&t2, on_stop, NULL);
    assert_int_equal(td_timer_start(loop, &t2, 100), 0);
    run(loop);
    assert_false(guard_fired);
    assert_int_equal(npending, 2);
    assert_int_equal(pending_log[0], 3);
    assert_int_equal(pending_log[1], 7);
}

/* ---- file descriptors ---- */

struct pipe_ctx {
    int rfd, wfd;
    char got[64];
    size_t ngot;
    int calls;
    int other_calls;
    uint32_t events;
};

static void on_readable(struct td_loop *loop, int fd, uint32_t events, void *arg)
{
    struct pipe_ctx *p = arg;
    char buf[16];

    p->calls++;
    p->events = events;
    assert_int_equal(fd, p->rfd);
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0 && p->ngot + (size_t)n < sizeof(p->got)) {
        memcpy(p->got + p->ngot, buf, (size_t)n);
        p->ngot += (size_t)n;
    }
    if (p->ngot >= 6) {
        td_loop_stop(loop);
    }
}

static void on_readable_other(struct td_loop *loop, int fd, uint32_t events, void *arg)
{
    struct pipe_ctx *p = arg;
    char buf[16];

    p->other_calls++;
    ssize_t n = read(fd, buf, sizeof(buf));
    (void)n;
    td_loop_stop(loop);
}

static struct pipe_ctx *writer_pipe;

static int64_t on_write_later(struct td_loop *loop, void *arg)
{
    const char *s = arg;
    ssize_t n = write(writer_pipe->wfd, s, strlen(s));

    assert_int_equal(n, (ssize_t)strlen(s));
    return TD_LOOP_NOMORE;
}

static void test_fd_watch_pipe(void **state)
{
    struct td_loop *loop = *state;
    struct pipe_ctx p;
    int fds[2];
    struct td_timer w1, w2;

    memset(&p, 0, sizeof(p));
    assert_int_equal(pipe(fds), 0);
    p.rfd = fds[0];
    p.wfd = fds[1];
    writer_pipe = &p;
    assert_int_equal(td_loop_fd_add(loop, p.rfd, EPOLLIN, on_readable, &p), 0);
    /* adding the same fd twice fails */
    assert_int_equal(td_loop_fd_add(loop, p.rfd, EPOLLIN, on_readable, &p), -1);
    td_timer_init(&w1, on_write_later, "abc");
    td_timer_init(&w2, on_write_later, "def");
    assert_int_equal(td_timer_start(loop, &w1, 5), 0);
    assert_int_equal(td_timer_start(loop, &w2, 25), 0);
    arm_guard(loop, 3000);
    run(loop);
    assert_false(guard_fired);
    assert_int_equal(p.ngot, 6);
    assert_memory_equal(p.got, "abcdef", 6);
    assert_true(p.calls >= 2);
    assert_true(p.events & EPOLLIN);

    /* fd_mod switches the callback */
    assert_int_equal(td_loop_fd_mod(loop, p.rfd, EPOLLIN, on_readable_other, &p), 0);
    assert_int_equal(write(p.wfd, "x", 1), 1);
    int calls = p.calls;
    arm_guard(loop, 3000);
    run(loop);
    assert_false(guard_fired);
    assert_int_equal(p.other_calls, 1);
    assert_int_equal(p.calls, calls);

    /* after fd_del nothing is called, though the pipe is readable */
    td_loop_fd_del(loop, p.rfd);
    td_loop_fd_del(loop, p.rfd); /* twice is harmless */
    assert_int_equal(write(p.wfd, "y", 1), 1);
    struct td_timer end;
    td_timer_init(&end, on_stop, NULL);
    assert_int_equal(td_timer_start(loop, &end, 30), 0);
    arm_guard(loop, 3000);
    run(loop);
    assert_false(guard_fired);
    assert_int_equal(p.other_calls, 1);
    assert_int_equal(p.calls, calls);
    /* modifying an fd that is not watched fails; negative fds are refused */
    assert_int_equal(td_loop_fd_mod(loop, p.rfd, EPOLLIN, on_readable, &p), -1);
    assert_int_equal(td_loop_fd_add(loop, -1, EPOLLIN, on_readable, &p), -1);
    close(p.rfd);
    close(p.wfd);
}

static void on_hangup(struct td_loop *loop, int fd, uint32_t events, void *arg)
{
    uint32_t *seen = arg;

    *seen = events;
    td_loop_fd_del(loop, fd);
    td_loop_stop(loop);
}

static void test_fd_hangup_reported(void **state)
{
    struct td_loop *loop = *state;
    int fds[2];
    uint32_t seen = 0;

    assert_int_equal(pipe(fds), 0);
    assert_int_equal(td_loop_fd_add(loop, fds[0], EPOLLIN, on_hangup, &seen), 0);
    close(fds[1]);
    arm_guard(loop, 3000);
    run(loop);
    assert_false(guard_fired);
    assert_true(seen & EPOLLHUP);
    close(fds[0]);
}

static void test_fd_set(void **state)
{
    struct td_loop *loop = *state;
    struct pipe_ctx p;
    int fds[2];

    memset(&p, 0, sizeof(p));
    assert_int_equal(pipe(fds), 0);
    p.rfd = fds[0];
    p.wfd = fds[1];
    assert_int_equal(td_loop_fd_events(loop, p.rfd), 0);
    /* not watched yet: added */
    assert_int_equal(td_loop_fd_set(loop, p.rfd, EPOLLIN, on_readable, &p), 0);
    assert_int_equal(td_loop_fd_events(loop, p.rfd), EPOLLIN);
    assert_int_equal(write(p.wfd, "a", 1), 1);
    assert_int_equal(td_loop_run_once(loop, 1000), 1);
    assert_int_equal(p.calls, 1);
    /* the same interest, another callback: switched */
    assert_int_equal(td_loop_fd_set(loop, p.rfd, EPOLLIN, on_readable_other, &p), 0);
    assert_int_equal(write(p.wfd, "b", 1), 1);
    assert_int_equal(td_loop_run_once(loop, 1000), 1);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.other_calls, 1);
    td_loop_run_once(loop, 0); /* the wake-up of on_readable_other's td_loop_stop */
    /* another interest: modified (a pipe's read end is never writable: nothing is reported) */
    assert_int_equal(td_loop_fd_set(loop, p.rfd, EPOLLOUT, on_readable, &p), 0);
    assert_int_equal(td_loop_fd_events(loop, p.rfd), EPOLLOUT);
    assert_int_equal(write(p.wfd, "c", 1), 1);
    assert_int_equal(td_loop_run_once(loop, 20), 0);
    assert_int_equal(td_loop_fd_set(loop, p.rfd, EPOLLIN, on_readable, &p), 0);
    assert_int_equal(td_loop_run_once(loop, 1000), 1); /* "c" */
    assert_int_equal(p.calls, 2);
    /* the same interest calls no epoll_ctl: a new pipe that reuses the numbers of a closed one
     * (epoll forgot it at the close) is not registered by it ... */
    close(p.rfd);
    close(p.wfd);
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(fds[0], p.rfd);
    p.wfd = fds[1];
    assert_int_equal(td_loop_fd_set(loop, p.rfd, EPOLLIN, on_readable, &p), 0);
    assert_int_equal(write(p.wfd, "d", 1), 1);
    assert_int_equal(td_loop_run_once(loop, 20), 0);
    /* ... while another interest finds it gone (ENOENT) and adds it */
    assert_int_equal(td_loop_fd_set(loop, p.rfd, EPOLLIN | EPOLLRDHUP, on_readable, &p), 0);
    assert_int_equal(td_loop_run_once(loop, 1000), 1);
    assert_int_equal(p.calls, 3);
    td_loop_fd_del(loop, p.rfd);
    assert_int_equal(td_loop_fd_events(loop, p.rfd), 0);
    close(p.rfd);
    close(p.wfd);
}

/* ---- defers ---- */

struct defer_ctx {
    struct td_loop_defer d, other;
    int runs, other_runs, timer_runs;
    int timer_runs_seen; /* timer_runs when the defer ran */
    bool again;          /* the defer queues itself once more */
};

static void on_defer(struct td_loop *loop, void *arg)
{
    struct defer_ctx *c = arg;
    c->runs++;
    c->timer_runs_seen = c->timer_runs;
    if (c->again) {
        c->again = false;
        td_loop_defer(loop, &c->d);
    }
}

static void on_other_defer(struct td_loop *loop, void *arg)
{
    struct defer_ctx *c = arg;
    c->other_runs++;
}

static void queue_defer_task(struct td_loop *loop, void *arg)
{
    struct defer_ctx *c = arg;
    int runs = c->runs;
    /* queued three times in one iteration: runs once, at its end */
    td_loop_defer(loop, &c->d);
    td_loop_defer(loop, &c->d);
    td_loop_defer(loop, &c->other);
    td_loop_defer(loop, &c->d);
    assert_int_equal(c->runs, runs);
}

static int64_t on_defer_timer(struct td_loop *loop, void *arg)
{
    struct defer_ctx *c = arg;
    c->timer_runs++;
    return TD_LOOP_NOMORE;
}

static void test_defer(void **state)
{
    struct td_loop *loop = *state;
    struct defer_ctx c;
    struct td_timer t;

    memset(&c, 0, sizeof(c));
    td_loop_defer_init(&c.d, on_defer, &c);
    td_loop_defer_init(&c.other, on_other_defer, &c);
    td_timer_init(&t, on_defer_timer, &c);
    assert_int_equal(td_timer_start(loop, &t, 0), 0);
    assert_int_equal(td_loop_post(loop, queue_defer_task, &c), 0);
    assert_int_equal(td_loop_run_once(loop, 1000), 1);
    assert_int_equal(c.runs, 1);
    assert_int_equal(c.other_runs, 1);
    assert_int_equal(c.timer_runs_seen, 1); /* after the iteration's timers */
    /* nothing queued: nothing runs */
    assert_int_equal(td_loop_run_once(loop, 0), 0);
    assert_int_equal(c.runs, 1);
    /* a defer that queues itself from its function runs again before the iteration ends */
    c.again = true;
    td_loop_defer(loop, &c.d);
    assert_int_equal(td_loop_run_once(loop, 0), 0);
    assert_int_equal(c.runs, 3);
    /* cancelled: does not run; cancelling twice is harmless */
    td_loop_defer(loop, &c.other);
    td_loop_defer(loop, &c.d);
    td_loop_defer_cancel(loop, &c.d);
    td_loop_defer_cancel(loop, &c.d);
    assert_int_equal(td_loop_run_once(loop, 0), 0);
    assert_int_equal(c.runs, 3);
    assert_int_equal(c.other_runs, 2);
    /* td_loop_run_pending (teardown) runs the defers its tasks queue */
    assert_int_equal(td_loop_post(loop, queue_defer_task, &c), 0);
    td_loop_run_pending(loop);
    assert_int_equal(c.runs, 4);
    assert_int_equal(c.other_runs, 3);
}

/* ---- stopping ---- */

static void test_stop_from_callback(void **state)
{
    struct td_loop *loop = *state;
    struct td_timer stopper;
    struct fire later;
    int stops = 0;

    norder = 0;
    td_timer_init(&stopper, on_stop, &stops);
    fire_init(&later, 5);
    /* 'later' far enough that a paused process does not find both due in one pass (the loop
     * runs every due timer before it looks at the stop). */
    assert_int_equal(td_timer_start(loop, &stopper, 10), 0);
    assert_int_equal(td_timer_start(loop, &later.timer, 1000), 0);
    arm_guard(loop, 3000);
    int64_t t0 = td_now_ms();
    run(loop);
    assert_int_equal(stops, 1);
    assert_int_equal(later.fired, 0); /* run returned at the stop, not after 'later' */
    assert_true(td_now_ms() - t0 < 2000);
    assert_true(td_timer_armed(&later.timer));
    /* the loop can run again and the pending timer fires then */
    assert_int_equal(td_timer_start(loop, &stopper, 1100), 0);
    arm_guard(loop, 3000);
    run(loop);
    assert_int_equal(later.fired, 1);
    assert_int_equal(stops, 2);
}

static void *stopper_main(void *arg)
{
    sleep_ms(40);
    td_loop_stop(arg);
    return NULL;
}

static void test_stop_from_other_thread(void **state)
{
    struct td_loop *loop = *state;
    pthread_t th;

    /* nothing armed: epoll_wait would sleep forever unless td_loop_stop wakes it */
    int64_t t0 = td_now_ms();
    assert_int_equal(pthread_create(&th, NULL, stopper_main, loop), 0);
    assert_int_equal(td_loop_run(loop), 0);
    int64_t took = td_now_ms() - t0;
    pthread_join(th, NULL);
    assert_true(took >= 35);
    assert_true(took < 2000);
}

static void test_stop_from_other_thread_with_timer(void **state)
{
    struct td_loop *loop = *state;
    pthread_t th;
    struct fire far;

    /* a timer a minute away must not keep the loop asleep after td_loop_stop */
    fire_init(&far, 1);
    assert_int_equal(td_timer_start(loop, &far.timer, 60000), 0);
    int64_t t0 = td_now_ms();
    assert_int_equal(pthread_create(&th, NULL, stopper_main, loop), 0);
    assert_int_equal(td_loop_run(loop), 0);
    pthread_join(th, NULL);
    assert_true(td_now_ms() - t0 < 2000);
    assert_int_equal(far.fired, 0);
    td_timer_stop(loop, &far.timer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clocks),
        cmocka_unit_test_setup_teardown(test_timer_init_unarmed, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_deadline_order, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_rearm_by_return, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_rearm_zero_delay, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_rearm_inside_callback, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_timer_stop, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_stop_due_timer_from_callback, setup_loop,
                                        teardown_loop),
        cmocka_unit_test_setup_teardown(test_many_timers_random_stops, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_post_from_thread, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_post_from_many_threads, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_run_pending, setup_loop, teardown_loop),
        cmocka_unit_test(test_free_drops_pending),
        cmocka_unit_test_setup_teardown(test_post_from_loop_thread, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_fd_watch_pipe, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_fd_hangup_reported, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_fd_set, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_defer, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_stop_from_callback, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_stop_from_other_thread, setup_loop, teardown_loop),
        cmocka_unit_test_setup_teardown(test_stop_from_other_thread_with_timer, setup_loop,
                                        teardown_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
