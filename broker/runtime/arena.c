/* arena.c - the bump allocator (arena.h). */
#include "arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

struct td_arena_chunk {
    struct td_arena_chunk *next;
    size_t size; /* bytes in mem */
    size_t used;
    alignas(max_align_t) unsigned char mem[];
};

#define ALIGN (alignof(max_align_t))

void td_arena_init(struct td_arena *a, size_t chunk_size, unsigned keep)
{
    a->used = NULL;
    a->spare = NULL;
    a->chunk_size = chunk_size;
    a->keep = keep;
    a->nspare = 0;
}

static struct td_arena_chunk *chunk_new(size_t size)
{
    struct td_arena_chunk *c = malloc(sizeof(*c) + size);
    if (c) {
        c->next = NULL;
        c->size = size;
        c->used = 0;
    }
    return c;
}

void *td_arena_alloc(struct td_arena *a, size_t n)
{
    if (n > SIZE_MAX - ALIGN) {
        return NULL;
    }
    n = (n + ALIGN - 1) & ~(ALIGN - 1);
    struct td_arena_chunk *c = a->used;
    if (c && c->size - c->used >= n) {
        void *p = c->mem + c->used;
        c->used += n;
        return p;
    }
    if (n > a->chunk_size / 4) {
        /* Its own chunk, behind the one being filled, whose room stays in use. */
        struct td_arena_chunk *big = chunk_new(n);
        if (!big) {
            return NULL;
        }
        big->used = n;
        if (c) {
            big->next = c->next;
            c->next = big;
        } else {
            a->used = big;
        }
        return big->mem;
    }
    if (a->spare) {
        c = a->spare;
        a->spare = c->next;
        a->nspare--;
    } else if (!(c = chunk_new(a->chunk_size))) {
        return NULL;
    }
    c->used = n;
    c->next = a->used;
    a->used = c;
    return c->mem;
}

void td_arena_reset(struct td_arena *a)
{
    struct td_arena_chunk *c = a->used;
    while (c) {
        struct td_arena_chunk *next = c->next;
        if (c->size == a->chunk_size && a->nspare < a->keep) {
            c->used = 0;
            c->next = a->spare;
            a->spare = c;
            a->nspare++;
        } else {
            free(c);
        }
        c = next;
    }
    a->used = NULL;
}

void td_arena_release(struct td_arena *a)
{
    td_arena_reset(a);
    struct td_arena_chunk *c = a->spare;
    while (c) {
        struct td_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->spare = NULL;
    a->nspare = 0;
}
