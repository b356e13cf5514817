/* stats.h - the per-trigger counters: what dispatch and the router write, and metrics.c and
 * reload.c read. Their own unit so that dispatch counts without including metrics, and metrics
 * reads without including dispatch (neither depends on the other).
 * Threads: the counters are written on the loop thread only; other threads see them through a
 * metrics snapshot. The functions here are pure (any thread) on the struct they are given.
 */
#ifndef TD_STATS_H
#define TD_STATS_H

#include <stdint.h>

/* Delivery latency buckets (upper bounds in td_latency_bounds_ms); not cumulative here. */
#define TD_LATENCY_BUCKETS 14
/* dead_by_reason slots: every deadletterreason of deadletter.h in that order, then "other" (a
 * reason this build does not know; none is written today). */
#define TD_DL_REASONS 7

/* Plain uint64_t counters only: reload.c adds them up as an array (add_stats). */
struct td_trigger_stats {
    uint64_t matched;
    uint64_t delivered;
    uint64_t attempts;
    uint64_t retries;
    uint64_t dead_lettered;
    uint64_t released;
    uint64_t dead_by_reason[TD_DL_REASONS];
    uint64_t replies;         /* reply events delivered to the reply target */
    uint64_t replies_dropped; /* reply events dropped by the TTL loop guard */
    uint64_t latency_count;   /* deliveries timed: from read at the source to the sink's 2xx */
    uint64_t latency_sum_ms;
    uint64_t latency_buckets[TD_LATENCY_BUCKETS + 1]; /* the last one is +Inf */
    uint64_t batches;      /* delivery.batch: batches sent (attempts of a batch on the sink) */
    uint64_t batch_events; /* events in those batches (the mean size: batch_events / batches) */
};

/* The latency bucket upper bounds in milliseconds (TD_LATENCY_BUCKETS of them; +Inf after). */
extern const int64_t td_latency_bounds_ms[TD_LATENCY_BUCKETS];

/* Counts one delivery that took ms from the source to the sink's 2xx. */
void td_stats_observe_latency(struct td_trigger_stats *st, int64_t ms);
/* Counts one dead letter written with reason (a deadletterreason value; NULL or unknown: the
 * "other" slot). */
void td_stats_count_dead_letter(struct td_trigger_stats *st, const char *reason);
/* The deadletterreason value of a dead_by_reason slot ("other" for the last and out of range). */
const char *td_stats_reason_name(int slot);

#endif
