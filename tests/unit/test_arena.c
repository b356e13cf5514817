/* test_arena.c - unit tests for the bump allocator (arena.h) and the hiredis replies built in
 * one (redis_arena.h): alignment, big requests, chunks kept across a reset; replies parsed
 * from real RESP bytes read the same as hiredis's own, stay intact while a second one is
 * parsed, and give their memory back only when the last one alive is freed, including a reply
 * a protocol error abandoned half way. No server is needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdalign.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "arena.h"
#include "redis_arena.h"

static void test_alloc_aligned_and_distinct(void **state)
{
    (void)state;
    struct td_arena a;
    td_arena_init(&a, 1024, 2);
    char *prev = NULL;
    for (size_t n = 1; n < 200; n++) {
        char *p = td_arena_alloc(&a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
        memset(p, (int)n, n); /* ASan: the whole request is ours */
        if (prev) {
            assert_ptr_not_equal(p, prev);
        }
        prev = p;
    }
    td_arena_release(&a);
}

static void test_big_request_keeps_the_chunk_filling(void **state)
{
    (void)state;
    struct td_arena a;
    td_arena_init(&a, 1024, 2);
    char *small1 = td_arena_alloc(&a, 16);
    char *big = td_arena_alloc(&a, 5000); /* above a quarter of a chunk: a chunk of its own */
    char *small2 = td_arena_alloc(&a, 16);
    assert_non_null(small1);
    assert_non_null(big);
    assert_non_null(small2);
    memset(big, 1, 5000);
    /* The small ones come from the same regular chunk, one after the other. */
    assert_true(small2 > small1 && small2 - small1 < 1024);
    td_arena_reset(&a); /* frees the big chunk (ASan/valgrind see a leak otherwise) */
    td_arena_release(&a);
}

static void test_reset_reuses_kept_chunks(void **state)
{
    (void)state;
    struct td_arena a;
    td_arena_init(&a, 1024, 2);
    char *first = td_arena_alloc(&a, 100);
    for (int i = 0; i < 40; i++) { /* about four chunks */
        assert_non_null(td_arena_alloc(&a, 100));
    }
    td_arena_reset(&a);
    assert_int_equal(a.nspare, 2); /* keep = 2: the others were freed */
    char *again = td_arena_alloc(&a, 100);
    assert_non_null(again);
    assert_int_equal(a.nspare, 1); /* the chunk in use came from the spares */
    (void)first;
    td_arena_release(&a);
    assert_null(a.spare);
    assert_null(a.used);
    /* Usable again after a release. */
    assert_non_null(td_arena_alloc(&a, 10));
    td_arena_release(&a);
}

/* ---- replies ---- */

/* An XREADGROUP reply: [[stream, [[id, [f, v, f, v]], [id, [f, v]]]]], and a nil element. */
static const char XREAD[] =
    "*1\r\n"
    "*2\r\n$6\r\nstream\r\n"
    "*3\r\n"
    "*2\r\n$3\r\n1-1\r\n*4\r\n$4\r\ntype\r\n$1\r\nt\r\n$4\r\ndata\r\n$5\r\nhello\r\n"
    "*2\r\n$3\r\n1-2\r\n*2\r\n$1\r\nf\r\n$0\r\n\r\n"
    "*2\r\n$3\r\n1-3\r\n*-1\r\n";

static redisReader *arena_reader(struct td_redis_arena **ra)
{
    redisReader *r = redisReaderCreate();
    assert_non_null(r);
    *ra = td_redis_arena_new();
    assert_non_null(*ra);
    td_redis_arena_attach(*ra, r);
    return r;
}

static redisReply *next_reply(redisReader *r)
{
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
    return reply;
}

static void check_xread(const redisReply *top)
{
    assert_int_equal(top->type, REDIS_REPLY_ARRAY);
    assert_int_equal(top->elements, 1);
    const redisReply *stream = top->element[0];
    assert_int_equal(stream->elements, 2);
    assert_string_equal(stream->element[0]->str, "stream");
    const redisReply *entries = stream->element[1];
    assert_int_equal(entries->elements, 3);
    const redisReply *e1 = entries->element[0];
    assert_string_equal(e1->element[0]->str, "1-1");
    assert_int_equal(e1->element[1]->elements, 4);
    assert_string_equal(e1->element[1]->element[3]->str, "hello");
    assert_int_equal(e1->element[1]->element[3]->len, 5);
    const redisReply *e2 = entries->element[1];
    assert_int_equal(e2->element[1]->element[1]->type, REDIS_REPLY_STRING);
    assert_int_equal(e2->element[1]->element[1]->len, 0);
    assert_string_equal(e2->element[1]->element[1]->str, "");
    assert_int_equal(entries->element[2]->element[1]->type, REDIS_REPLY_NIL);
}

static void test_reply_reads_like_hiredis(void **state)
{
    (void)state;
    struct td_redis_arena *ra;
    redisReader *r = arena_reader(&ra);
    assert_int_equal(redisReaderFeed(r, XREAD, sizeof(XREAD) - 1), REDIS_OK);
    redisReply *top = next_reply(r);
    assert_non_null(top);
    check_xread(top);
    r->fn->freeObject(top);

    /* Integers, statuses, errors and empty arrays, one after the other. */
    static const char MIX[] = ":42\r\n+OK\r\n-NOGROUP no such group\r\n*0\r\n";
    assert_int_equal(redisReaderFeed(r, MIX, sizeof(MIX) - 1), REDIS_OK);
    redisReply *i = next_reply(r), *ok = next_reply(r), *err = next_reply(r),
               *empty = next_reply(r);
    assert_int_equal(i->type, REDIS_REPLY_INTEGER);
    assert_int_equal(i->integer, 42);
    assert_int_equal(ok->type, REDIS_REPLY_STATUS);
    assert_string_equal(ok->str, "OK");
    assert_int_equal(err->type, REDIS_REPLY_ERROR);
    assert_string_equal(err->str, "NOGROUP no such group");
    assert_int_equal(empty->type, REDIS_REPLY_ARRAY);
    assert_int_equal(empty->elements, 0);
    r->fn->freeObject(i);
    r->fn->freeObject(ok);
    r->fn->freeObject(err);
    r->fn->freeObject(empty);
    redisReaderFree(r);
    td_redis_arena_free(ra);
}

static void test_two_replies_alive(void **state)
{
    (void)state;
    struct td_redis_arena *ra;
    redisReader *r = arena_reader(&ra);
    assert_int_equal(redisReaderFeed(r, XREAD, sizeof(XREAD) - 1), REDIS_OK);
    assert_int_equal(redisReaderFeed(r, XREAD, sizeof(XREAD) - 1), REDIS_OK);
    redisReply *a = next_reply(r);
    redisReply *b = next_reply(r);
    assert_ptr_not_equal(a, b);
    r->fn->freeObject(a); /* b is still alive: nothing may be reset under it */
    /* A third reply allocated now must not overwrite b. */
    assert_int_equal(redisReaderFeed(r, XREAD, sizeof(XREAD) - 1), REDIS_OK);
    redisReply *c = next_reply(r);
    check_xread(b);
    check_xread(c);
    r->fn->freeObject(b);
    r->fn->freeObject(c);
    /* Everything freed: the next reply starts again where the first one did. */
    assert_int_equal(redisReaderFeed(r, XREAD, sizeof(XREAD) - 1), REDIS_OK);
    redisReply *d = next_reply(r);
    assert_ptr_equal(d, a);
    check_xread(d);
    r->fn->freeObject(d);
    redisReaderFree(r);
    td_redis_arena_free(ra);
}

static void test_protocol_error_gives_back_the_partial_reply(void **state)
{
    (void)state;
    struct td_redis_arena *ra;
    redisReader *r = arena_reader(&ra);
    assert_int_equal(redisReaderFeed(r, XREAD, sizeof(XREAD) - 1), REDIS_OK);
    redisReply *first = next_reply(r);
    r->fn->freeObject(first);
    /* Half an array, then a byte no reply starts with. */
    static const char BAD[] = "*3\r\n$1\r\na\r\n!";
    assert_int_equal(redisReaderFeed(r, BAD, sizeof(BAD) - 1), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_ERR);
    assert_null(reply);
    redisReaderFree(r);

    /* The abandoned reply was freed: a new reader on the same arena starts at the start. */
    r = redisReaderCreate();
    assert_non_null(r);
    td_redis_arena_attach(ra, r);
    assert_int_equal(redisReaderFeed(r, XREAD, sizeof(XREAD) - 1), REDIS_OK);
    redisReply *again = next_reply(r);
    assert_ptr_equal(again, first);
    r->fn->freeObject(again);
    redisReaderFree(r);
    td_redis_arena_free(ra);
}

static void test_reader_freed_mid_reply(void **state)
{
    (void)state;
    struct td_redis_arena *ra;
    redisReader *r = arena_reader(&ra);
    static const char HALF[] = "*2\r\n$1\r\na\r\n"; /* the second element never comes */
    assert_int_equal(redisReaderFeed(r, HALF, sizeof(HALF) - 1), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
    assert_null(reply);
    redisReaderFree(r);      /* frees the half reply through the arena */
    td_redis_arena_free(ra); /* ASan/valgrind: nothing left behind */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_aligned_and_distinct),
        cmocka_unit_test(test_big_request_keeps_the_chunk_filling),
        cmocka_unit_test(test_reset_reuses_kept_chunks),
        cmocka_unit_test(test_reply_reads_like_hiredis),
        cmocka_unit_test(test_two_replies_alive),
        cmocka_unit_test(test_protocol_error_gives_back_the_partial_reply),
        cmocka_unit_test(test_reader_freed_mid_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
