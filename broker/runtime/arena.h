/* arena.h - a bump allocator for many small allocations that die together.
 *
 * A hot path that builds a few dozen small objects and frees them all at once (a parsed Redis
 * reply of a hundred stream entries is ~2,000 of them) spends more in malloc and free than in
 * its own work; an arena hands out memory by moving a pointer and takes it all back with one
 * reset. Chunks are kept across resets (up to `keep`), so a steady load allocates nothing.
 * Threads: one at a time (no locking).
 */
#ifndef TD_ARENA_H
#define TD_ARENA_H

#include <stddef.h>

struct td_arena_chunk;

struct td_arena {
    struct td_arena_chunk *used;  /* chunks in use, the one being filled first */
    struct td_arena_chunk *spare; /* emptied by a reset, reused before malloc */
    size_t chunk_size;            /* bytes of a regular chunk */
    unsigned keep;                /* regular chunks a reset keeps (the rest are freed) */
    unsigned nspare;
};

/* An empty arena of chunk_size-byte chunks (allocated on first use), keeping at most keep of
 * them across resets. Nothing to free until the first td_arena_alloc. */
void td_arena_init(struct td_arena *a, size_t chunk_size, unsigned keep);
/* n bytes aligned for any type, valid until the next reset or release; NULL out of memory. A
 * request above a quarter of chunk_size gets a chunk of its own (freed by the reset). */
void *td_arena_alloc(struct td_arena *a, size_t n);
/* Takes back everything allocated; keeps up to `keep` regular chunks for reuse. */
void td_arena_reset(struct td_arena *a);
/* Frees every chunk; the arena is empty (and usable) again. */
void td_arena_release(struct td_arena *a);

#endif
