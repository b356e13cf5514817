/* redis_arena.c - hiredis replies built in an arena (redis_arena.h).
 *
 * hiredis hands freeObject the reply it returned (or the one it was parsing when it failed):
 * a root, never a part. Each root carries a pointer back to its arena in front of it, and the
 * arena counts the roots alive; when the count drops to 0, everything goes with one reset. Two
 * roots can be alive at once (a caller holding one reply while the next is parsed): the reset
 * then waits for both.
 */
#include "redis_arena.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

/* 64 KiB chunks, four kept: a read of a hundred 1 KiB entries fits in the kept ones. */
#define CHUNK_SIZE  (64 * 1024)
#define CHUNKS_KEPT 4

struct td_redis_arena {
    struct td_arena arena;
    size_t roots; /* replies given out or being parsed, not yet freed */
};

/* A root, with its way back to the arena in front of the reply hiredis sees. */
struct root {
    struct td_redis_arena *owner;
    redisReply reply;
};

static redisReply *new_reply(const redisReadTask *task, int type)
{
    struct td_redis_arena *ra = task->privdata;
    redisReply *r;
    if (task->parent) {
        if (!(r = td_arena_alloc(&ra->arena, sizeof(*r)))) {
            return NULL;
        }
        memset(r, 0, sizeof(*r));
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    } else {
        struct root *root = td_arena_alloc(&ra->arena, sizeof(*root));
        if (!root) {
            return NULL;
        }
        memset(root, 0, sizeof(*root));
        root->owner = ra;
        ra->roots++;
        r = &root->reply;
    }
    r->type = type;
    return r;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    struct td_redis_arena *ra = task->privdata;
    /* The copy first: a root counted and then failed would keep the arena from resetting. */
    char *copy = td_arena_alloc(&ra->arena, len + 1);
    if (!copy) {
        return NULL;
    }
    memcpy(copy, str, len);
    copy[len] = '\0';
    redisReply *r = new_reply(task, task->type);
    if (r) {
        r->str = copy;
        r->len = len;
    }
    return r;
}

static void *create_array(const redisReadTask *task, int elements)
{
    struct td_redis_arena *ra = task->privdata;
    redisReply **element = NULL;
    if (elements > 0) {
        size_t bytes = (size_t)elements * sizeof(*element);
        if (!(element = td_arena_alloc(&ra->arena, bytes))) {
            return NULL;
        }
        memset(element, 0, bytes);
    }
    redisReply *r = new_reply(task, REDIS_REPLY_ARRAY);
    if (r) {
        r->element = element;
        r->elements = elements > 0 ? (size_t)elements : 0;
    }
    return r;
}

static void *create_integer(const redisReadTask *task, long long value)
{
    redisReply *r = new_reply(task, REDIS_REPLY_INTEGER);
    if (r) {
        r->integer = value;
    }
    return r;
}

static void *create_nil(const redisReadTask *task)
{
    return new_reply(task, REDIS_REPLY_NIL);
}

static void free_root(void *obj)
{
    struct root *root = (struct root *)((char *)obj - offsetof(struct root, reply));
    struct td_redis_arena *ra = root->owner;
    if (ra->roots > 0 && --ra->roots == 0) {
        td_arena_reset(&ra->arena);
    }
}

static redisReplyObjectFunctions arena_functions = {
    .createString = create_string,
    .createArray = create_array,
    .createInteger = create_integer,
    .createNil = create_nil,
    .freeObject = free_root,
};

struct td_redis_arena *td_redis_arena_new(void)
{
    struct td_redis_arena *ra = calloc(1, sizeof(*ra));
    if (ra) {
        td_arena_init(&ra->arena, CHUNK_SIZE, CHUNKS_KEPT);
    }
    return ra;
}

void td_redis_arena_attach(struct td_redis_arena *ra, redisReader *r)
{
    r->fn = &arena_functions;
    r->privdata = ra;
}

void td_redis_arena_free(struct td_redis_arena *ra)
{
    if (ra) {
        td_arena_release(&ra->arena);
        free(ra);
    }
}
