/* test_source_wake.c - completions handed back to a source on the loop thread
 * (td_source_complete_batched): each message is in the mailbox at once, but the source thread's
 * wake-up (its mailbox eventfd) is written once, at the end of the loop iteration, for all the
 * iteration completed; a wake-up still queued when the source is freed is cancelled.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "loop.h"
#include "source.h"

static bool mailbox_readable(struct td_source *src)
{
    struct pollfd p = {.fd = src->mailbox_fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static struct td_msg *new_msg(void)
{
    struct td_msg *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    return m;
}

static size_t free_list(struct td_msg *m)
{
    size_t n = 0;
    while (m) {
        struct td_msg *next = m->next;
        td_msg_free(m);
        m = next;
        n++;
    }
    return n;
}

struct ctx {
    struct td_source *src;
    int n;
};

static void complete_some(struct td_loop *loop, void *arg)
{
    struct ctx *c = arg;
    for (int i = 0; i < c->n; i++) {
        td_source_complete_batched(c->src, new_msg(), TD_OUTCOME_ACK, loop);
        /* in the mailbox already, but the thread is not woken yet */
        pthread_mutex_lock(&c->src->mu);
        assert_non_null(c->src->done);
        pthread_mutex_unlock(&c->src->mu);
        assert_false(mailbox_readable(c->src));
    }
}

static void test_one_wakeup_per_iteration(void **state)
{
    (void)state;
    char err[128];
    struct td_loop *loop = td_loop_new();
    struct td_source *src = td_source_new_local("s", err, sizeof(err));
    assert_non_null(loop);
    assert_non_null(src);
    atomic_store(&src->inflight, 10);
    struct ctx c = {.src = src, .n = 5};
    assert_int_equal(td_loop_post(loop, complete_some, &c), 0);
    assert_int_equal(td_loop_run_once(loop, 1000), 1);
    assert_true(mailbox_readable(src));
    uint64_t writes = 0;
    assert_int_equal(read(src->mailbox_fd, &writes, sizeof(writes)), (ssize_t)sizeof(writes));
    assert_int_equal(writes, 1); /* five completions, one wake-up */
    assert_int_equal(free_list(td_source_take_done(src)), 5);
    assert_int_equal(atomic_load(&src->inflight), 5);
    /* the next iteration's completions wake it again */
    assert_int_equal(td_loop_post(loop, complete_some, &c), 0);
    assert_int_equal(td_loop_run_once(loop, 1000), 1);
    assert_true(mailbox_readable(src));
    assert_int_equal(free_list(td_source_take_done(src)), 5);
    assert_false(mailbox_readable(src)); /* take_done consumed the wake-up */
    td_source_free(src);
    td_loop_free(loop);
}

static void complete_then_free(struct td_loop *loop, void *arg)
{
    struct ctx *c = arg;
    td_source_complete_batched(c->src, new_msg(), TD_OUTCOME_RELEASE, loop);
    struct td_msg *m = td_source_take_done(c->src);
    assert_non_null(m);
    assert_true(m->release);
    free_list(m);
    /* a reload frees a drained source on the loop thread: its queued wake-up must go too */
    td_source_free(c->src);
    c->src = NULL;
}

static void test_free_cancels_queued_wakeup(void **state)
{
    (void)state;
    char err[128];
    struct td_loop *loop = td_loop_new();
    struct ctx c = {.src = td_source_new_local("s", err, sizeof(err))};
    assert_non_null(c.src);
    atomic_store(&c.src->inflight, 1);
    assert_int_equal(td_loop_post(loop, complete_then_free, &c), 0);
    /* without the cancel the end of the iteration would write to the freed source (ASan) */
    assert_int_equal(td_loop_run_once(loop, 1000), 1);
    assert_null(c.src);
    td_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_wakeup_per_iteration),
        cmocka_unit_test(test_free_cancels_queued_wakeup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
