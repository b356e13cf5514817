/* kafka_log.c - librdkafka's log lines in our format (see kafka_log.h). */
#include "kafka_log.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "loop.h"

/* Repeats: librdkafka logs one line per request or partition, so one broker event can come as a
 * burst of identical lines (a hundred "COMMITFAIL ... Unknown member" in one millisecond when a
 * frozen broker resumed). A line is logged at once; the same line (level, source, what, fac and
 * text) again within REPEAT_WINDOW_MS of it is only counted, and "repeated N more times" is
 * logged once the window is over (on the next librdkafka line or td_kafka_log_tick) or at
 * td_kafka_log_flush. REPEAT_SLOTS windows are open at once; a new line evicts the oldest. */
#define REPEAT_WINDOW_MS 1000
#define REPEAT_SLOTS     16
#define REPEAT_TEXT      1024

struct repeat {
    bool used;
    enum td_log_level level;
    int64_t first_ms;
    long count; /* lines suppressed since first_ms */
    char source[128];
    char what[128];
    char text[REPEAT_TEXT]; /* "FAC: BUF", truncated */
};

static pthread_mutex_t repeat_mu = PTHREAD_MUTEX_INITIALIZER;
static struct repeat repeats[REPEAT_SLOTS]; /* under repeat_mu */

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

static void emit(enum td_log_level level, const char *source, const char *what, const char *text,
                 long repeated, int64_t ms)
{
    if (repeated > 0) {
        td_log(level, NULL, source[0] ? source : NULL, NULL,
               "%s%slibrdkafka %s (repeated %ld more times in %lld ms)", what, what[0] ? ": " : "",
               text, repeated, (long long)ms);
    } else {
        td_log(level, NULL, source[0] ? source : NULL, NULL, "%s%slibrdkafka %s", what,
               what[0] ? ": " : "", text);
    }
}

/* Closes a window: its count, if any, is logged. Under repeat_mu. */
static void close_window(struct repeat *r, int64_t now)
{
    if (r->used && r->count > 0) {
        emit(r->level, r->source, r->what, r->text, r->count, now - r->first_ms);
    }
    r->used = false;
}

/* Closes the windows that are over (all with force). Under repeat_mu. */
static void close_windows(int64_t now, bool force)
{
    for (int i = 0; i < REPEAT_SLOTS; i++) {
        if (repeats[i].used && (force || now - repeats[i].first_ms >= REPEAT_WINDOW_MS)) {
            close_window(&repeats[i], now);
        }
    }
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
    if (!td_log_enabled(ours)) {
        return; /* not logged: nothing to count either */
    }
    struct repeat line = {.used = true, .level = ours};
    snprintf(line.source, sizeof(line.source), "%s", source ? source : "");
    snprintf(line.what, sizeof(line.what), "%s", what ? what : "");
    snprintf(line.text, sizeof(line.text), "%s: %s", fac ? fac : "", buf ? buf : "");
    int64_t now = td_now_ms();
    pthread_mutex_lock(&repeat_mu);
    close_windows(now, false);
    struct repeat *oldest = &repeats[0];
    for (int i = 0; i < REPEAT_SLOTS; i++) {
        struct repeat *r = &repeats[i];
        if (r->used && r->level == line.level && strcmp(r->text, line.text) == 0 &&
            strcmp(r->source, line.source) == 0 && strcmp(r->what, line.what) == 0) {
            r->count++;
            pthread_mutex_unlock(&repeat_mu);
            return;
        }
        if (!r->used || (oldest->used && r->first_ms < oldest->first_ms)) {
            oldest = r;
        }
    }
    close_window(oldest, now);
    *oldest = line;
    oldest->first_ms = now;
    /* Logged under the lock, so that a count is never logged before its first line. */
    emit(line.level, line.source, line.what, line.text, 0, 0);
    pthread_mutex_unlock(&repeat_mu);
}

void td_kafka_log_tick(void)
{
    pthread_mutex_lock(&repeat_mu);
    close_windows(td_now_ms(), false);
    pthread_mutex_unlock(&repeat_mu);
}

void td_kafka_log_flush(void)
{
    pthread_mutex_lock(&repeat_mu);
    close_windows(td_now_ms(), true);
    pthread_mutex_unlock(&repeat_mu);
}
