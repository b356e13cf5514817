/* redis_lag.h - a Redis stream consumer group's lag and pending count as Redis reports them
 * (XINFO GROUPS), published for /metrics with td_source_set_lag.
 */
#ifndef TD_REDIS_LAG_H
#define TD_REDIS_LAG_H

#include "redis_conn.h"

#include "source.h"

/* The families td_redis_lag_report publishes (the Redis descriptor's lag_families). */
extern const struct td_lag_family td_redis_lag_families[];

/* Source thread (c's): asks c for the group's entry of XINFO GROUPS and publishes
 * triggerd_redis_stream_group_lag (Redis 7's `lag`; where it is nil, 0 when no entry follows
 * the group's last-delivered-id, else XINFO STREAM's entries-added minus the group's
 * entries-read; XLEN while the group has read nothing; else no sample) and
 * triggerd_redis_stream_group_messages_pending (`pending`), and their sum as the source's total. A
 * missing stream or group clears them. 0, or -1 when the connection failed (td_rconn_error says
 * why; the caller reconnects). */
int td_redis_lag_report(struct td_source *src, struct td_rconn *c, const char *stream,
                        const char *group);

#endif
