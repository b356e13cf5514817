/* retry.h - how long to wait before the next attempt: capped exponential or linear backoff
 * with full jitter, and Retry-After honoured up to a cap. Pure functions: the caller passes
 * the random number, so tests can pin it.
 * Threads: any.
 */
#ifndef TD_RETRY_H
#define TD_RETRY_H

#include <stdint.h>

#include "config.h"

/* The ceiling of the wait before retry number `retry` (1 = the first retry): backoff_delay *
 * 2^(retry-1) (exponential) or backoff_delay * retry (linear), capped by backoff_max. */
int64_t td_retry_ceiling_ms(const struct td_conf_delivery *d, int retry);

/* The wait before retry `retry`: uniform in [0, ceiling] from rnd (full jitter), and at least
 * min(retry_after_ms, retry_after_max) when the target sent Retry-After (retry_after_ms >= 0). */
int64_t td_retry_delay_ms(const struct td_conf_delivery *d, int retry, int64_t retry_after_ms,
                          uint64_t rnd);

/* A random 64-bit number (xorshift seeded from the clock and the thread), or what the source
 * td_random_set installed returns. */
uint64_t td_random(void);
/* Tests: the random source behind td_random (the jitter of every retry wait); NULL restores
 * the built-in xorshift. */
typedef uint64_t (*td_random_fn)(void);
void td_random_set(td_random_fn fn);

#endif
