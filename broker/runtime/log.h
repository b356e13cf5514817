/* log.h - one line per event of interest, as text or JSON, on stderr.
 *
 * Every line carries time, level and message, and the trigger, source and event id when the
 * caller knows them. A line is formatted in a local buffer and written with one write(2), so
 * lines from different threads never interleave. Secrets never reach a log line: callers log
 * names, never URLs with credentials (td_log_redact_url strips them).
 * Threads: any.
 */
#ifndef TD_LOG_H
#define TD_LOG_H

#include <stddef.h>
#include <stdint.h>

enum td_log_format { TD_LOG_TEXT, TD_LOG_JSON };
enum td_log_level { TD_LOG_DEBUG, TD_LOG_INFO, TD_LOG_WARN, TD_LOG_ERROR };

void td_log_init(enum td_log_level level, enum td_log_format format);
int td_log_enabled(enum td_log_level level);

/* trigger, source and id may be NULL. */
void td_log(enum td_log_level level, const char *trigger, const char *source, const char *id,
            const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The trace a line about an event belongs to (tracing, broker/trace/tracer.h): 16 and 8
 * bytes, written as the fields trace_id and span_id in lowercase hex; NULL: none. */
struct td_log_trace {
    const uint8_t *trace_id;
    const uint8_t *span_id;
};
/* td_log with the event's trace ids (either may be NULL). */
void td_log_t(enum td_log_level level, struct td_log_trace tr, const char *trigger,
              const char *source, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#define td_log_debug(...) td_log(TD_LOG_DEBUG, __VA_ARGS__)
#define td_log_info(...)  td_log(TD_LOG_INFO, __VA_ARGS__)
#define td_log_warn(...)  td_log(TD_LOG_WARN, __VA_ARGS__)
#define td_log_error(...) td_log(TD_LOG_ERROR, __VA_ARGS__)

/* Copies url into out without the user-info part ("redis://:pw@h:1/0" -> "redis://h:1/0") and
 * without query and fragment, where keys travel ("https://f/api?code=K" -> "https://f/api"). */
void td_log_redact_url(const char *url, char *out, size_t outlen);

#endif
