/* test_source_stop.c - a source thread stopped in two halves (td_source_stop_begin,
 * td_source_stopped), as a reload retires a source on the loop thread: telling the thread to stop
 * never waits for it, however long it takes to leave (a Kafka source's consumer close waits for
 * its broker), and the join comes only once it has left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "source.h"

/* The plugin's thread: waits for stopfd, then for the test's gate (its slow exit). */
struct slow_exit {
    struct td_source *src;
    int gate[2]; /* the test writes one byte to let the thread leave */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool leaving; /* under mu: the thread saw the stop and waits at the gate */
};

static void *slow_run(void *arg)
{
    struct slow_exit *se = arg;
    struct pollfd p = {.fd = se->src->stopfd, .events = POLLIN};
    while (!atomic_load(&se->src->stop)) {
        poll(&p, 1, -1);
    }
    pthread_mutex_lock(&se->mu);
    se->leaving = true;
    pthread_cond_signal(&se->cond);
    pthread_mutex_unlock(&se->mu);
    char c;
    ssize_t r = read(se->gate[0], &c, 1); /* blocks until the test opens the gate */
    (void)r;
    return NULL;
}

static void test_begin_never_waits(void **state)
{
    (void)state;
    char err[128];
    struct slow_exit se = {.src = td_source_new_local("s", err, sizeof(err))};
    assert_non_null(se.src);
    assert_int_equal(pipe(se.gate), 0);
    pthread_mutex_init(&se.mu, NULL);
    pthread_cond_init(&se.cond, NULL);
    assert_true(td_source_stopped(se.src)); /* no thread yet */
    assert_int_equal(td_source_spawn(se.src, slow_run, &se), 0);
    assert_false(td_source_stopped(se.src));

    /* Returns although the thread cannot leave before the gate opens: were it a join, this
     * test would hang here. */
    td_source_stop_begin(se.src);
    assert_true(atomic_load(&se.src->quiesce));
    pthread_mutex_lock(&se.mu);
    while (!se.leaving) {
        pthread_cond_wait(&se.cond, &se.mu);
    }
    pthread_mutex_unlock(&se.mu);
    /* The thread saw the stop and is on its way out, but has not left. */
    assert_false(td_source_stopped(se.src));
    td_source_stop_begin(se.src); /* twice is harmless */

    assert_int_equal(write(se.gate[1], "x", 1), 1);
    while (!td_source_stopped(se.src)) {
        poll(NULL, 0, 1);
    }
    td_source_stop_thread(se.src); /* joins a thread that has left */
    assert_false(se.src->started);
    assert_int_equal(se.src->stopfd, -1);
    assert_true(td_source_stopped(se.src));
    td_source_stop_begin(se.src); /* after the join: nothing (stopfd is closed) */

    close(se.gate[0]);
    close(se.gate[1]);
    pthread_cond_destroy(&se.cond);
    pthread_mutex_destroy(&se.mu);
    td_source_free(se.src);
}

/* A reload's retiring source gets a deadline (collect), then shutdown gives every source one:
 * the earlier stands, whichever comes first. */
static void test_stop_by_keeps_earlier(void **state)
{
    (void)state;
    char err[128];
    struct slow_exit se = {.src = td_source_new_local("s", err, sizeof(err))};
    assert_non_null(se.src);
    assert_int_equal(pipe(se.gate), 0);
    pthread_mutex_init(&se.mu, NULL);
    pthread_cond_init(&se.cond, NULL);
    td_source_stop_by(se.src, 1000); /* no thread: nothing */
    assert_int_equal(atomic_load(&se.src->stop_by_ms), 0);
    assert_int_equal(td_source_spawn(se.src, slow_run, &se), 0);
    td_source_stop_by(se.src, 5000);
    assert_int_equal(atomic_load(&se.src->stop_by_ms), 5000);
    assert_true(atomic_load(&se.src->stop));
    td_source_stop_by(se.src, 9000); /* later: the first stands */
    assert_int_equal(atomic_load(&se.src->stop_by_ms), 5000);
    td_source_stop_by(se.src, 3000); /* earlier: taken */
    assert_int_equal(atomic_load(&se.src->stop_by_ms), 3000);
    assert_int_equal(write(se.gate[1], "x", 1), 1);
    td_source_stop_thread(se.src);
    close(se.gate[0]);
    close(se.gate[1]);
    pthread_cond_destroy(&se.cond);
    pthread_mutex_destroy(&se.mu);
    td_source_free(se.src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_begin_never_waits),
        cmocka_unit_test(test_stop_by_keeps_earlier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
