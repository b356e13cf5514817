/* kafka_log.h - librdkafka's own log lines, through our logger.
 *
 * librdkafka prints "%3|1700000000.123|FAIL|rdkafka#producer-1| ..." on stderr unless a log
 * callback is set, which bypasses our format, level and JSON output. Every rd_kafka conf we
 * create (source, sink, publish, redrive, check) sets a callback that calls td_kafka_log with
 * who it belongs to. The callback runs on librdkafka's own threads; td_log is safe there (one
 * formatted line, one write(2), no shared state but the level and format set at start), so
 * log.queue is not needed. A burst of identical lines is logged once, then counted (see
 * td_kafka_log_tick).
 * Threads: any.
 */
#ifndef TD_KAFKA_LOG_H
#define TD_KAFKA_LOG_H

#include "config.h"

/* Our level for a librdkafka (syslog) level: 0-3 error, 4 warn, 5-6 info, 7 debug. */
enum td_log_level td_kafka_log_level(int level);

/* Logs one librdkafka line: "librdkafka FAC: BUF", with what (e.g. "sink 'dead'", "publish";
 * may be NULL) before it and source as the line's source field (may be NULL). At most
 * at_most: a daemon logs connection failures as warnings (it reconnects on its own), a
 * command as errors. A line about a request our own rd_kafka_destroy cut short ("Local:
 * Broker handle destroyed") is debug. */
void td_kafka_log(int level, enum td_log_level at_most, const char *source, const char *what,
                  const char *fac, const char *buf);
/* Repeats: the same line (level, source, what, fac, text) again within 1 s of its first
 * occurrence is not logged but counted; once the second is over, one line "... (repeated N more
 * times in M ms)" follows. td_kafka_log_tick logs the counts of the windows that are over (the
 * next td_kafka_log does too); td_kafka_log_flush logs every count now (at exit). */
void td_kafka_log_tick(void);
void td_kafka_log_flush(void);

#endif
