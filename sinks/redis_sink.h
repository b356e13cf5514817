/* redis_sink.h - the Redis sink's settings (td_conf_sink.settings of a redis sink; its key
 * table is in redis.c), read by redis.c, `check` and `redrive` (the stream is a store). */
#ifndef TD_REDIS_SINK_H
#define TD_REDIS_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "redis_conf.h"

struct td_conf_redis_sink {
    char *url;
    char *stream;
    int64_t maxlen;               /* 0: no trimming */
    struct td_conf_redis_tls tls; /* used with a rediss:// url */
};

#endif
