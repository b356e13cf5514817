/* redis_arena.h - hiredis reply functions that build a reader's replies in an arena.
 *
 * hiredis's own functions make two mallocs per string and per array: an XREADGROUP reply of a
 * hundred entries is ~2,000 of them, freed one by one, which cost the Redis source more CPU
 * than everything else it does per entry. These build every part of a reply with a pointer
 * bump (arena.h) and take the whole reply back when the last one given out is freed. The
 * replies are plain redisReply trees (the same fields, read the same way); they must be freed
 * through the reader's freeObject (td_rconn_reply_free), never with freeReplyObject.
 * Threads: the reader's.
 */
#ifndef TD_REDIS_ARENA_H
#define TD_REDIS_ARENA_H

#include <hiredis/hiredis.h>

struct td_redis_arena;

/* A new arena for one reader; NULL out of memory. Free it after the reader
 * (td_redis_arena_free), since freeing the reader frees a reply it was parsing. */
struct td_redis_arena *td_redis_arena_new(void);
/* Makes r build its replies in ra from now on: only between replies (none half parsed). */
void td_redis_arena_attach(struct td_redis_arena *ra, redisReader *r);
void td_redis_arena_free(struct td_redis_arena *ra); /* NULL is a no-op */

#endif
