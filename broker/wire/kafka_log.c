/* kafka_log.c - librdkafka's log lines in our format (see kafka_log.h). */
#include "kafka_log.h"

#include "log.h"

enum td_log_level td_kafka_log_level(int level)
{
    if (level <= 3) {
        return TD_LOG_ERROR;
    }
    if (level == 4) {
        return TD_LOG_WARN;
    }
    return level <= 6 ? TD_LOG_INFO : TD_LOG_DEBUG;
}

void td_kafka_log(int level, enum td_log_level at_most, const char *source, const char *what,
                  const char *fac, const char *buf)
{
    enum td_log_level ours = td_kafka_log_level(level);
    if (ours > at_most) {
        ours = at_most;
    }
    td_log(ours, NULL, source, NULL, "%s%slibrdkafka %s: %s", what ? what : "", what ? ": " : "",
           fac ? fac : "", buf ? buf : "");
}
