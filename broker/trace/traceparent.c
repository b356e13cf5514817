/* traceparent.c - W3C traceparent parsing and formatting (see traceparent.h). */
#include "traceparent.h"

#include <string.h>

static int hexval(char c)
{
    /* Only lowercase: W3C says uppercase hex makes the header invalid. */
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* n bytes from 2n hex digits at s; -1 on any other character. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

bool td_trace_id_zero(const uint8_t *id, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (id[i]) {
            return false;
        }
    }
    return true;
}

int td_traceparent_parse(const char *s, struct td_trace_ctx *out)
{
    if (!s) {
        return -1;
    }
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
        len--;
    }
    if (len < TD_TRACEPARENT_LEN) {
        return -1;
    }
    uint8_t version;
    if (unhex(s, &version, 1) < 0 || version == 0xff) {
        return -1;
    }
    /* Version 00 has exactly four fields; a later version may add fields after a '-'. */
    if (version == 0 ? len != TD_TRACEPARENT_LEN
                     : len > TD_TRACEPARENT_LEN && s[TD_TRACEPARENT_LEN] != '-') {
        return -1;
    }
    if (s[2] != '-' || s[35] != '-' || s[52] != '-') {
        return -1;
    }
    struct td_trace_ctx ctx;
    if (unhex(s + 3, ctx.trace_id, 16) < 0 || unhex(s + 36, ctx.span_id, 8) < 0 ||
        unhex(s + 53, &ctx.flags, 1) < 0) {
        return -1;
    }
    if (td_trace_id_zero(ctx.trace_id, 16) || td_trace_id_zero(ctx.span_id, 8)) {
        return -1;
    }
    if (version > 0) {
        /* Flags this version does not know are not passed on (W3C: only the known ones). */
        ctx.flags &= TD_TRACE_SAMPLED;
    }
    *out = ctx;
    return 0;
}

void td_trace_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void td_traceparent_format(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                           char out[TD_TRACEPARENT_SIZE])
{
    out[0] = '0';
    out[1] = '0';
    out[2] = '-';
    td_trace_hex(trace_id, 16, out + 3);
    out[35] = '-';
    td_trace_hex(span_id, 8, out + 36);
    out[52] = '-';
    td_trace_hex(&flags, 1, out + 53);
}

bool td_tracestate_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        if (n >= TD_TRACESTATE_MAX || (unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e) {
            return false;
        }
    }
    return true;
}
