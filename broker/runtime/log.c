/* log.c - the line formatter behind log.h.
 *
 * The level and the format are written by the loop (start, reload) while every thread logs:
 * both are atomics, read once per line (relaxed: a line may use the settings from just before
 * a reload, never a torn or mixed pair of reads within the line).
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = TD_LOG_INFO;
static atomic_int log_format = TD_LOG_TEXT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void td_log_init(enum td_log_level level, enum td_log_format format)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
    atomic_store_explicit(&log_format, (int)format, memory_order_relaxed);
}

int td_log_enabled(enum td_log_level level)
{
    return (int)level >= atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* Appends s to buf as the inside of a JSON string. Returns the new length. */
static size_t put_json(char *buf, size_t len, size_t cap, const char *s)
{
    for (; *s && len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c < 0x20) {
            len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
        } else {
            buf[len++] = (char)c;
        }
    }
    return len;
}

/* Appends s to buf for a text line: control characters (below 0x20, and 0x7F) and the
 * backslash are escaped (\n, \r, \t, \\, \xNN), so an event id or a message holding a newline
 * can never forge a second log line. Stops while 5 bytes are left. Returns the new length. */
static size_t put_text(char *buf, size_t len, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    for (; *s && len + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        char e = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\\' ? '\\' : 0;
        if (e) {
            buf[len++] = '\\';
            buf[len++] = e;
        } else if (c < 0x20 || c == 0x7f) {
            buf[len++] = '\\';
            buf[len++] = 'x';
            buf[len++] = hex[c >> 4];
            buf[len++] = hex[c & 15];
        } else {
            buf[len++] = (char)c;
        }
    }
    buf[len] = '\0';
    return len;
}

/* Appends one field; it goes in whole or not at all, so a JSON line always stays valid. */
static size_t put_field(char *buf, size_t len, size_t cap, bool json, const char *key,
                        const char *value)
{
    if (!value) {
        return len;
    }
    char field[1024];
    size_t n;
    if (json) {
        n = (size_t)snprintf(field, sizeof(field), ",\"%s\":\"", key);
        n = put_json(field, n, sizeof(field) - 2, value);
        field[n++] = '"';
    } else {
        n = (size_t)snprintf(field, sizeof(field), " %s=", key);
        n = put_text(field, n, sizeof(field), value);
    }
    if (len + n + 2 >= cap) {
        return len;
    }
    memcpy(buf + len, field, n);
    return len + n;
}

static void hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void vlog(enum td_log_level level, struct td_log_trace tr, const char *trigger,
                 const char *source, const char *id, const char *fmt, va_list ap)
{
    bool json = atomic_load_explicit(&log_format, memory_order_relaxed) == TD_LOG_JSON;
    char msg[2048];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    char trace_id[33], span_id[17];
    if (tr.trace_id) {
        hex(tr.trace_id, 16, trace_id);
    }
    if (tr.span_id) {
        hex(tr.span_id, 8, span_id);
    }

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[80];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(ts.tv_nsec / 1000000) % 1000);

    char line[4096];
    size_t cap = sizeof(line) - 2, len;
    if (json) {
        len = (size_t)snprintf(line, cap, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", when,
                               level_names[level]);
        len = put_json(line, len, cap, msg);
        line[len++] = '"';
        len = put_field(line, len, cap, json, "trigger", trigger);
        len = put_field(line, len, cap, json, "source", source);
        len = put_field(line, len, cap, json, "id", id);
        len = put_field(line, len, cap, json, "trace_id", tr.trace_id ? trace_id : NULL);
        len = put_field(line, len, cap, json, "span_id", tr.span_id ? span_id : NULL);
        line[len++] = '}';
    } else {
        len = (size_t)snprintf(line, cap, "%s %-5s ", when, level_names[level]);
        len = len < cap ? len : cap - 1;
        len = put_text(line, len, cap, msg);
        len = put_field(line, len, cap, json, "trigger", trigger);
        len = put_field(line, len, cap, json, "source", source);
        len = put_field(line, len, cap, json, "id", id);
        len = put_field(line, len, cap, json, "trace_id", tr.trace_id ? trace_id : NULL);
        len = put_field(line, len, cap, json, "span_id", tr.span_id ? span_id : NULL);
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void td_log(enum td_log_level level, const char *trigger, const char *source, const char *id,
            const char *fmt, ...)
{
    if (!td_log_enabled(level)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vlog(level, (struct td_log_trace){0}, trigger, source, id, fmt, ap);
    va_end(ap);
}

void td_log_t(enum td_log_level level, struct td_log_trace tr, const char *trigger,
              const char *source, const char *id, const char *fmt, ...)
{
    if (!td_log_enabled(level)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vlog(level, tr, trigger, source, id, fmt, ap);
    va_end(ap);
}

void td_log_redact_url(const char *url, char *out, size_t outlen)
{
    if (!url) {
        snprintf(out, outlen, "(none)");
        return;
    }
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *end = host + strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *p = host; p < end; p++) {
        if (*p == '@') {
            at = p;
        }
    }
    /* The query and fragment go too: keys travel there (Azure's ?code=, signed URLs). */
    const char *rest = at ? at + 1 : host;
    int keep = (int)strcspn(rest, "?#");
    snprintf(out, outlen, "%.*s%.*s", (int)(host - url), url, keep, rest);
}
