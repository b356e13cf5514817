/* test_resolver.c - host names looked up on the resolver's thread, answered on the loop
 * (resolver.c): an answer arrives only from the loop, in order, with the addresses getaddrinfo
 * gives; a cancelled lookup never calls back; a resolver freed with lookups queued or running
 * leaks nothing (ASan) and calls nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>

#include "loop.h"
#include "resolver.h"

struct answer {
    int calls;
    int order; /* the how-many-th answer this was */
    struct td_resolve_result res;
};

static int answers;

static void on_answer(const struct td_resolve_result *res, void *arg)
{
    struct answer *a = arg;
    a->calls++;
    a->order = ++answers;
    a->res = *res;
}

/* Runs the loop until every answer in as[0..n) came, at most 60 s (a lookup that goes to an
 * unreachable DNS server takes its timeouts). */
static void pump(struct td_loop *loop, struct answer *as, size_t n)
{
    for (int i = 0; i < 12000; i++) {
        size_t done = 0;
        for (size_t k = 0; k < n; k++) {
            done += as[k].calls > 0;
        }
        if (done == n) {
            return;
        }
        td_loop_run_once(loop, 5);
    }
    fail_msg("no answer within 60 s");
}

static bool has_loopback(const struct td_resolve_result *res)
{
    for (size_t i = 0; i < res->n; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&res->addrs[i];
        if (sa->sa_family == AF_INET &&
            ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
            ((const struct sockaddr_in *)sa)->sin_port == htons(8080)) {
            return true;
        }
        if (sa->sa_family == AF_INET6 &&
            IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr) &&
            ((const struct sockaddr_in6 *)sa)->sin6_port == htons(8080)) {
            return true;
        }
    }
    return false;
}

static void test_answers_on_the_loop_in_order(void **state)
{
    (void)state;
    struct td_loop *loop = td_loop_new();
    struct td_resolver *r = td_resolver_new(loop);
    assert_non_null(r);
    answers = 0;
    struct answer as[3] = {{0}};
    assert_non_null(td_resolve_start(r, "localhost", "8080", on_answer, &as[0]));
    assert_non_null(td_resolve_start(r, "127.0.0.1", "8080", on_answer, &as[1]));
    assert_non_null(td_resolve_start(r, "no-such-host.invalid", "8080", on_answer, &as[2]));
    assert_int_equal(as[0].calls + as[1].calls + as[2].calls, 0); /* never from inside start */
    assert_int_equal(td_resolver_pending(r), 3);
    pump(loop, as, 3);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(as[k].calls, 1);
        assert_int_equal(as[k].order, k + 1);
    }
    assert_int_equal(as[0].res.err, 0);
    assert_true(has_loopback(&as[0].res));
    assert_int_equal(as[1].res.err, 0);
    assert_int_equal(as[1].res.n, 1);
    assert_true(has_loopback(&as[1].res));
    assert_int_not_equal(as[2].res.err, 0);
    assert_int_equal(as[2].res.n, 0);
    assert_int_equal(td_resolver_pending(r), 0);
    td_resolver_free(r);
    td_loop_free(loop);
}

static void test_cancel(void **state)
{
    (void)state;
    struct td_loop *loop = td_loop_new();
    struct td_resolver *r = td_resolver_new(loop);
    answers = 0;
    struct answer as[3] = {{0}};
    struct td_resolve *q0 = td_resolve_start(r, "localhost", "80", on_answer, &as[0]);
    struct td_resolve *q1 = td_resolve_start(r, "localhost", "81", on_answer, &as[1]);
    assert_non_null(td_resolve_start(r, "127.0.0.1", "82", on_answer, &as[2]));
    /* q0 may be queued, being looked up or answered by now; q1 is queued or later: either
     * way neither calls back */
    td_resolve_cancel(r, q0);
    td_resolve_cancel(r, q1);
    pump(loop, &as[2], 1);
    for (int i = 0; i < 20; i++) {
        td_loop_run_once(loop, 5);
    }
    assert_int_equal(as[0].calls, 0);
    assert_int_equal(as[1].calls, 0);
    assert_int_equal(as[2].calls, 1);
    assert_int_equal(td_resolver_pending(r), 0);
    td_resolver_free(r);
    td_loop_free(loop);
}

/* Freed with lookups queued (and maybe one running): no callback, no leak. Also a resolver that
 * never looked anything up (no thread) frees cleanly. */
static void test_free_with_lookups(void **state)
{
    (void)state;
    struct td_loop *loop = td_loop_new();
    struct td_resolver *r = td_resolver_new(loop);
    struct answer as[4] = {{0}};
    for (int k = 0; k < 4; k++) {
        assert_non_null(td_resolve_start(r, "localhost", "80", on_answer, &as[k]));
    }
    td_resolver_free(r);
    for (int i = 0; i < 20; i++) {
        td_loop_run_once(loop, 5);
    }
    for (int k = 0; k < 4; k++) {
        assert_int_equal(as[k].calls, 0);
    }
    td_resolver_free(td_resolver_new(loop));
    td_resolver_free(NULL);
    td_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_on_the_loop_in_order),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_free_with_lookups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
