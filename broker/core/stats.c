/* stats.c - the per-trigger counters (see stats.h). */
#include "stats.h"

#include <string.h>

#include "deadletter.h"

const int64_t td_latency_bounds_ms[TD_LATENCY_BUCKETS] = {1,   2,   5,    10,   25,   50,    100,
                                                          250, 500, 1000, 2500, 5000, 10000, 30000};

static const char *const reason_names[TD_DL_REASONS] = {TD_DL_FINAL_STATUS,
                                                        TD_DL_RETRIES_EXHAUSTED,
                                                        TD_DL_MAX_DELIVERIES,
                                                        TD_DL_INVALID_EVENT,
                                                        TD_DL_SCHEMA,
                                                        TD_DL_REPLY_FAILED,
                                                        "other"};

void td_stats_observe_latency(struct td_trigger_stats *st, int64_t ms)
{
    if (ms < 0) {
        ms = 0;
    }
    int b = 0;
    while (b < TD_LATENCY_BUCKETS && ms > td_latency_bounds_ms[b]) {
        b++;
    }
    st->latency_buckets[b]++;
    st->latency_count++;
    st->latency_sum_ms += (uint64_t)ms;
}

void td_stats_count_dead_letter(struct td_trigger_stats *st, const char *reason)
{
    int slot = TD_DL_REASONS - 1;
    for (int i = 0; reason && i < TD_DL_REASONS - 1; i++) {
        if (strcmp(reason, reason_names[i]) == 0) {
            slot = i;
            break;
        }
    }
    st->dead_by_reason[slot]++;
}

const char *td_stats_reason_name(int slot)
{
    return slot >= 0 && slot < TD_DL_REASONS ? reason_names[slot] : "other";
}
