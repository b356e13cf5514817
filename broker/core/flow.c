/* flow.c - the token bucket and the AIMD concurrency limit (see flow.h). Pure arithmetic, so
 * the unit tests drive it with a made-up clock.
 */
#include "flow.h"

void td_bucket_init(struct td_bucket *b, int events, int64_t per_ms, int burst, int64_t now_ms)
{
    b->events = events > 0 ? events : 0;
    b->per_ms = per_ms > 0 ? per_ms : 1000;
    b->burst = burst > 0 ? burst : 1;
    b->credit = b->burst * b->per_ms;
    b->last_ms = now_ms;
    b->waiting = false;
    b->nline = 0;
}

/* Brings the credit up to now_ms. A bucket nobody waits on stops at burst whole tokens, as a
 * token bucket does. While someone waits (b->waiting: the last td_bucket_wait_ms said "not yet"
 * and nothing took a token since), the waiter would have taken each token the moment it became
 * whole; the clock ticks in ms, so it finds it a little later, and what accrued meanwhile is
 * kept rather than dropped at the cap (a part of a token, never a whole one more): else every
 * rate whose tokens are not a whole number of ms apart would come out slower (300/s with
 * burst 1 would give 250/s), and more so on a loaded machine. */
static void refill(struct td_bucket *b, int64_t now_ms)
{
    int64_t cap = b->burst * b->per_ms;
    if (now_ms <= b->last_ms) {
        return; /* the clock never goes back; equal: nothing to add */
    }
    int64_t dt = now_ms - b->last_ms;
    b->last_ms = now_ms;
    /* dt may be days: compare before multiplying, so events * dt cannot overflow (credit below
     * zero is a batch's debt: it is paid before the bucket fills) */
    if (dt > (cap + b->per_ms - (b->credit < 0 ? b->credit : 0)) / b->events + 1) {
        b->credit = cap; /* a long quiet spell: full */
        return;
    }
    b->credit += b->events * dt;
    if (!b->waiting && b->credit > cap) {
        b->credit = cap;
    } else if (b->credit >= cap + b->per_ms) {
        b->credit = cap + b->credit % b->per_ms;
    }
}

int64_t td_bucket_wait_ms(struct td_bucket *b, int64_t now_ms)
{
    if (!td_bucket_limited(b)) {
        return 0;
    }
    refill(b, now_ms);
    if (b->credit >= b->per_ms) {
        return 0;
    }
    b->waiting = true;
    int64_t missing = b->per_ms - b->credit;
    return (missing + b->events - 1) / b->events; /* rounded up: the token is whole by then */
}

void td_bucket_take(struct td_bucket *b)
{
    if (td_bucket_limited(b) && b->credit >= b->per_ms) {
        b->credit -= b->per_ms;
        b->waiting = false; /* served; the next "not yet" says again that someone waits */
    }
}

void td_bucket_take_n(struct td_bucket *b, int n)
{
    if (td_bucket_limited(b) && b->credit >= b->per_ms && n > 0) {
        b->credit -= (int64_t)n * b->per_ms; /* below zero: a debt the refill pays first */
        b->waiting = false;
    }
}

/* Ms between two tokens, rounded up. */
static int64_t interval_ms(const struct td_bucket *b)
{
    return (b->per_ms + b->events - 1) / b->events;
}

static int line_find(const struct td_bucket *b, const void *who)
{
    for (int i = 0; i < b->nline; i++) {
        if (b->line[i] == who) {
            return i;
        }
    }
    return -1;
}

static void line_remove(struct td_bucket *b, int i)
{
    for (; i + 1 < b->nline; i++) {
        b->line[i] = b->line[i + 1];
        b->asked_ms[i] = b->asked_ms[i + 1];
    }
    b->nline--;
}

/* WHO asked at now_ms: its place is kept (or it joins at the end, if there is room). */
static void line_ask(struct td_bucket *b, const void *who, int64_t now_ms)
{
    int i = line_find(b, who);
    if (i < 0 && b->nline < TD_BUCKET_LINE) {
        i = b->nline++;
        b->line[i] = who;
    }
    if (i >= 0) {
        b->asked_ms[i] = now_ms;
    }
}

int64_t td_bucket_wait_for(struct td_bucket *b, const void *who, int64_t now_ms)
{
    if (!td_bucket_limited(b)) {
        return 0;
    }
    int64_t stale = 4 * interval_ms(b) + 50;
    for (int i = 0; i < b->nline;) {
        if (now_ms - b->asked_ms[i] > stale) {
            line_remove(b, i);
        } else {
            i++;
        }
    }
    int64_t wait = td_bucket_wait_ms(b, now_ms);
    /* WHO's turn: first in line, or nobody in line (or a full line WHO is not in: no order is
     * kept beyond TD_BUCKET_LINE sharers) */
    bool turn =
        b->nline == 0 || b->line[0] == who || (b->nline == TD_BUCKET_LINE && line_find(b, who) < 0);
    if (wait == 0 && turn) {
        return 0;
    }
    line_ask(b, who, now_ms);
    return wait > 0 ? wait : interval_ms(b); /* not its turn: the first in line takes this one */
}

void td_bucket_take_for(struct td_bucket *b, const void *who)
{
    td_bucket_take_for_n(b, who, 1);
}

void td_bucket_take_for_n(struct td_bucket *b, const void *who, int n)
{
    td_bucket_take_n(b, n);
    int i = line_find(b, who);
    if (i >= 0) {
        line_remove(b, i);
    }
}

int64_t td_bucket_tokens(struct td_bucket *b, int64_t now_ms)
{
    if (!td_bucket_limited(b)) {
        return INT64_MAX;
    }
    refill(b, now_ms);
    return b->credit / b->per_ms;
}

void td_aimd_init(struct td_aimd *a, int max, bool adaptive)
{
    a->max = max > 0 ? max : 1;
    a->adaptive = adaptive;
    a->limit = a->max; /* as the fixed limit would: the first overload finds the level */
    a->epoch = 0;
    a->grow = 0;
    a->ceiling = 0;
}

bool td_aimd_is_overload(int http_status, int retry_after_ms)
{
    return http_status == 429 || http_status == 503 || retry_after_ms >= 0;
}

bool td_aimd_overload(struct td_aimd *a, uint32_t epoch, int inflight)
{
    if (!a->adaptive || epoch != a->epoch) {
        return false; /* sent before the last cut: that cut already answered this window */
    }
    /* Half of what was really in flight (TCP halves its flight size, not an unused window). */
    int base = inflight < a->limit ? inflight : a->limit;
    a->ceiling = inflight > 1 ? inflight : 1;
    a->limit = base / 2 > 1 ? base / 2 : 1;
    a->epoch++;
    a->grow = 0;
    return true;
}

bool td_aimd_success(struct td_aimd *a, bool limited)
{
    if (!a->adaptive || !limited || a->limit >= a->max) {
        return false;
    }
    int need = a->limit;
    if (a->ceiling && a->limit + 1 >= a->ceiling) {
        need = a->limit * TD_AIMD_PROBE; /* the next step reaches the level that overloaded */
    }
    if (++a->grow < need) {
        return false;
    }
    a->grow = 0;
    a->limit++;
    if (a->ceiling && a->limit > a->ceiling) {
        a->ceiling = 0; /* past it without overload: the function has grown, probe normally */
    }
    return true;
}
