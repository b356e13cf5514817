/* ce_text.c - the byte-level helpers the CloudEvents codecs need: UTF-8 validation, base64
 * (RFC 4648, standard alphabet) and RFC 3339 timestamps.
 *
 * Base64 is written here rather than with EVP_EncodeBlock/EVP_DecodeBlock because those take
 * int lengths, silently accept whitespace and return padding bytes as data; a strict decoder is
 * a few lines. Everything here is pure and may run on any thread.
 */
#include "cloudevent.h"
#include "ce_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

size_t td_ce_utf8_next(const unsigned char *s, size_t len)
{
    unsigned char c;
    size_t need;
    unsigned int cp;
    unsigned int min;

    if (len == 0) {
        return 0;
    }
    c = s[0];
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        cp = c & 0x1Fu;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        cp = c & 0x0Fu;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        cp = c & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len - 1 < need) {
        return 0;
    }
    for (size_t k = 1; k <= need; k++) {
        if ((s[k] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[k] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return need + 1;
}

bool td_ce_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = td_ce_utf8_next(s + i, len - i);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Returns a malloc'd NUL-terminated string the caller frees; NULL on out of memory. */
char *td_base64_encode(const unsigned char *in, size_t len)
{
    char *out;
    size_t o = 0;
    size_t i = 0;

    if (in == NULL && len != 0) {
        return NULL;
    }
    if (len / 3 >= (SIZE_MAX - 5) / 4) {
        return NULL;
    }
    out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL) {
        return NULL;
    }
    for (; len - i >= 3; i += 3) {
        unsigned long v =
            ((unsigned long)in[i] << 16) | ((unsigned long)in[i + 1] << 8) | in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned long v = (unsigned long)in[i] << 16;
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        unsigned long v = ((unsigned long)in[i] << 16) | ((unsigned long)in[i + 1] << 8);
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

/* Strict: only the alphabet, '=' padding only at the end (missing padding is accepted), no
 * whitespace. Returns a malloc'd buffer (never NULL for valid input, even when empty) the
 * caller frees, with its length in *outlen; NULL on bad input or out of memory. */
unsigned char *td_base64_decode(const char *in, size_t len, size_t *outlen)
{
    unsigned char *out = NULL;
    size_t o = 0;
    unsigned long acc = 0;
    int bits = 0;
    size_t pad = 0;

    if ((in == NULL && len != 0) || outlen == NULL) {
        goto fail;
    }
    while (pad < 2 && len > pad && in[len - pad - 1] == '=') {
        pad++;
    }
    if (pad > 0 && len % 4 != 0) {
        goto fail;
    }
    len -= pad;
    if (len % 4 == 1) {
        goto fail;
    }
    out = malloc(len / 4 * 3 + 3);
    if (out == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) {
            goto fail;
        }
        acc = ((acc << 6) | (unsigned long)v) & 0xFFFFFFul;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)((acc >> bits) & 0xFF);
        }
    }
    *outlen = o;
    return out;
fail:
    free(out);
    return NULL;
}

/* Clamped to the years RFC 3339 can write, 0000 to 9999. */
void td_format_time_ms(int64_t ms, char out[32])
{
    const int64_t min_ms = -62167219200000LL; /* 0000-01-01T00:00:00.000Z */
    const int64_t max_ms = 253402300799999LL; /* 9999-12-31T23:59:59.999Z */
    int64_t secs;
    int64_t frac;
    struct tm tm;
    time_t t;

    ms = ms < min_ms ? min_ms : (ms > max_ms ? max_ms : ms);
    secs = ms / 1000;
    frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        secs--;
    }
    t = (time_t)secs;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, 32, "1970-01-01T00:00:00.000Z");
        return;
    }
    /* The modulos are no-ops after clamping; they tell the compiler the widths. */
    snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
             (unsigned)frac % 1000u);
}

/* Reads exactly N digits at *p into *v and advances; false when they are not there. */
static bool digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') {
            return false;
        }
        *v = *v * 10 + (c - '0');
    }
    *p += n;
    return true;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

/* RFC 3339 section 5.6 date-time: full-date "T" partial-time time-offset; 'T' and 'Z' in
 * either case, seconds up to 60 (leap second), any number of fraction digits. */
bool td_ce_valid_time(const char *s)
{
    int year, month, day, hour, min, sec, oh, om;
    const char *p = s;

    if (s == NULL) {
        return false;
    }
    if (!digits(&p, 4, &year) || *p++ != '-' || !digits(&p, 2, &month) || *p++ != '-' ||
        !digits(&p, 2, &day)) {
        return false;
    }
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)) {
        return false;
    }
    if (*p != 'T' && *p != 't') {
        return false;
    }
    p++;
    if (!digits(&p, 2, &hour) || *p++ != ':' || !digits(&p, 2, &min) || *p++ != ':' ||
        !digits(&p, 2, &sec)) {
        return false;
    }
    if (hour > 23 || min > 59 || sec > 60) {
        return false;
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') {
            return false;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        return p[1] == '\0';
    }
    if (*p != '+' && *p != '-') {
        return false;
    }
    p++;
    if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om)) {
        return false;
    }
    return oh <= 23 && om <= 59 && *p == '\0';
}
