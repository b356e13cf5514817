/* kafka_log.c - librdkafka's log lines in our format (see kafka_log.h). */
#include "kafka_log.h"

#include <librdkafka/rdkafka.h>
#include <string.h>

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
    /* A request cut short because we destroy the handle (a sink closed at the end of redrive
     * or publish, or at shutdown, while a broker connection was still authenticating) is not
     * a fault: "SASL authentication error: ... Local: Broker handle destroyed" after a clean
     * run only misleads. */
    if (buf && strstr(buf, rd_kafka_err2str(RD_KAFKA_RESP_ERR__DESTROY))) {
        ours = TD_LOG_DEBUG;
    }
    if (ours > at_most) {
        ours = at_most;
    }
    td_log(ours, NULL, source, NULL, "%s%slibrdkafka %s: %s", what ? what : "", what ? ": " : "",
           fac ? fac : "", buf ? buf : "");
}
