/* retry.c - backoff arithmetic (see retry.h). */
#include "retry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

int64_t td_retry_ceiling_ms(const struct td_conf_delivery *d, int retry)
{
    int64_t base = d->backoff_delay_ms > 0 ? d->backoff_delay_ms : 0;
    int64_t cap = d->backoff_max_ms > 0 ? d->backoff_max_ms : INT64_MAX;
    if (retry < 1) {
        retry = 1;
    }
    int64_t ceiling;
    if (d->backoff == TD_BACKOFF_LINEAR) {
        ceiling = base > cap / retry ? cap : base * retry;
    } else {
        ceiling = base;
        for (int i = 1; i < retry && ceiling > 0 && ceiling < cap; i++) {
            ceiling = ceiling > cap / 2 ? cap : ceiling * 2;
        }
    }
    return ceiling < cap ? ceiling : cap;
}

int64_t td_retry_delay_ms(const struct td_conf_delivery *d, int retry, int64_t retry_after_ms,
                          uint64_t rnd)
{
    int64_t ceiling = td_retry_ceiling_ms(d, retry);
    int64_t wait = ceiling > 0 ? (int64_t)(rnd % ((uint64_t)ceiling + 1)) : 0;
    if (retry_after_ms >= 0) {
        int64_t max = d->retry_after_max_ms > 0 ? d->retry_after_max_ms : INT64_MAX;
        int64_t ra = retry_after_ms < max ? retry_after_ms : max;
        if (ra > wait) {
            wait = ra;
        }
    }
    return wait;
}

/* The injected random source (tests), or NULL. */
static _Atomic(td_random_fn) random_fn;

void td_random_set(td_random_fn fn)
{
    atomic_store(&random_fn, fn);
}

uint64_t td_random(void)
{
    td_random_fn fn = atomic_load_explicit(&random_fn, memory_order_relaxed);
    if (fn) {
        return fn();
    }
    static _Thread_local uint64_t state;
    if (state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)pthread_self() ^
                0x9E3779B97F4A7C15ull;
    }
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}
