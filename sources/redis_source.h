/* redis_source.h - the Redis source's settings (td_conf_source.settings of a redis source; its
 * key table is in redis.c), read by redis.c and `check`. */
#ifndef TD_REDIS_SOURCE_H
#define TD_REDIS_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "redis_conf.h"

struct td_conf_redis_source {
    char *url; /* redis[s]://[user:password@]host[:port][/db] */
    char *stream;
    char *group;           /* default "triggerd" */
    char *consumer;        /* default: the host name */
    char *start;           /* "earliest" (0) | "latest" ($), used when the group is created */
    int64_t claim_idle_ms; /* default 60s; 0 disables the reaper */
    int max_deliveries;    /* default 10; 0 = unlimited */
    int batch;             /* entries per XREADGROUP, default 100 */
    int64_t block_ms;      /* XREADGROUP BLOCK, default 1000 */
    struct td_conf_redis_tls tls; /* used with a rediss:// url */
};

#endif
