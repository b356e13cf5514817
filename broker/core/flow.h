/* flow.h - flow control of deliveries: a token bucket (delivery.rate, sinks.NAME.rate) and the
 * adaptive concurrency limit (delivery.concurrency: {max, adaptive}). Arithmetic only: no loop,
 * no timers, no allocation; the caller passes the clock. dispatch.c holds one td_bucket per
 * trigger and each sink one shared by its triggers, one td_aimd per trigger, and arms the timer
 * that waits for the next token.
 * Threads: a bucket or limit is used by one thread (the loop).
 */
#ifndef TD_FLOW_H
#define TD_FLOW_H

#include <stdbool.h>
#include <stdint.h>

/* A token bucket: starts full with `burst` tokens and gains `events` tokens every `per_ms`,
 * never holding more than `burst`; a delivery takes one. So at most burst + events * T / per
 * deliveries start in any window of T ms, and a backlog starts with exactly `burst` at once,
 * then one every per / events. Kept exactly in integers: every ms adds `events` units of
 * credit and a token costs `per_ms` units, so no rounding drifts however long it runs.
 * events == 0: no limit. */
#define TD_BUCKET_LINE 16 /* sharers queued in turn; beyond that, first to ask takes */
struct td_bucket {
    int64_t events, per_ms, burst;
    int64_t credit;  /* below (burst + 1) * per_ms: at most burst whole tokens and a part;
                      * below 0 after a batch took more than there was (td_bucket_take_n) */
    int64_t last_ms; /* when credit was last brought up to date */
    bool waiting;    /* someone was told "not yet" and has not taken a token since (flow.c) */
    /* Who waits for a token, first come first served, when several share the bucket (a sink's,
     * td_bucket_wait_for). Identities only, never dereferenced, so one that went away (a
     * reload) just falls out when it stops asking. */
    const void *line[TD_BUCKET_LINE];
    int64_t asked_ms[TD_BUCKET_LINE]; /* when each last asked */
    int nline;
};

/* Sets b to a full bucket at now_ms; events == 0 makes an unlimited bucket. */
void td_bucket_init(struct td_bucket *b, int events, int64_t per_ms, int burst, int64_t now_ms);
static inline bool td_bucket_limited(const struct td_bucket *b)
{
    return b->events > 0;
}
/* Ms until b holds a whole token at now_ms: 0 when it holds one now (unlimited: always 0). */
int64_t td_bucket_wait_ms(struct td_bucket *b, int64_t now_ms);
/* Takes one token; the caller saw td_bucket_wait_ms() == 0 at the same now_ms. */
void td_bucket_take(struct td_bucket *b);
/* Takes n tokens (a batch of n events) once b holds one: past what it holds, the credit goes
 * below zero, a debt paid before the next token is whole, so the rate holds for batches larger
 * than burst too. */
void td_bucket_take_n(struct td_bucket *b, int n);
/* The same for a bucket several share (a sink's, by its triggers): WHO gets a token only in
 * its turn, so a sharer whose timer happens to fire first cannot take every token while the
 * others wait. A sharer told "not yet" joins the line; when a token is there, the first in line
 * takes it and the others are told to ask again in one token's interval. One that stops asking
 * for 4 intervals + 50 ms (its work went away, or it waits on its own bucket now) leaves the
 * line. td_bucket_take_for takes the token and WHO's place in line. */
int64_t td_bucket_wait_for(struct td_bucket *b, const void *who, int64_t now_ms);
void td_bucket_take_for(struct td_bucket *b, const void *who);
void td_bucket_take_for_n(struct td_bucket *b, const void *who, int n);
/* Whole tokens held at now_ms (for tests and logs). */
int64_t td_bucket_tokens(struct td_bucket *b, int64_t now_ms);

/* AIMD on the in-flight limit, as TCP does with its window. A sign of overload (an answer 429
 * or 503, or any answer with Retry-After) cuts the limit to half the attempts in flight when it
 * came (at least 1) - once per round trip: only an answer to an attempt started after the last
 * cut can cut again (each attempt carries the cut count, `epoch`, of its start), so a window of
 * 429s sent before the cut counts once. A 2xx answer while the limit was in use counts towards
 * growth: +1 after `limit` of them (about +1 per round trip), up to max. Near the level that was
 * last cut from, growth is TD_AIMD_PROBE times slower (the known ceiling is probed gently, as
 * CUBIC's plateau does): with a small ceiling, halving and plain +1 per round trip would hit it
 * every few round trips and keep the overload share near 1 / ceiling. */
#define TD_AIMD_PROBE 16
struct td_aimd {
    int max;
    bool adaptive;
    int limit;      /* the in-flight limit now: max when not adaptive */
    uint32_t epoch; /* cuts so far */
    int grow;       /* 2xx answers counted towards the next +1 */
    int ceiling;    /* the in-flight count at the last cut (0: none yet, or passed) */
};

void td_aimd_init(struct td_aimd *a, int max, bool adaptive);
/* An answer that signals overload, to an attempt started at epoch, with inflight attempts
 * (this one included) when it came. True when it cut the limit. */
bool td_aimd_overload(struct td_aimd *a, uint32_t epoch, int inflight);
/* A 2xx answer; limited: the trigger had work waiting or every slot in use, so the limit was
 * what held it back (growing a limit nobody reaches proves nothing). True when it grew. */
bool td_aimd_success(struct td_aimd *a, bool limited);
/* Whether an answer signals overload: status 429 or 503, or a Retry-After (retry_after_ms >= 0). */
bool td_aimd_is_overload(int http_status, int retry_after_ms);

#endif
