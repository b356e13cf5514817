/* lean_parse.c - the lean client's URL and HTTP-date parsing (see lean_parse.h). */
#include "lean_parse.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 3986 5.2.4 remove_dot_segments, in place; path starts with '/'. */
static void remove_dot_segments(char *path)
{
    char *in = path, *out = path;
    while (*in) {
        if (in[0] == '/' && in[1] == '.' && (in[2] == '/' || in[2] == '\0')) {
            in += 2; /* "/./" -> "/", "/." -> "/" */
            if (*in == '\0') {
                *out++ = '/';
            }
        } else if (in[0] == '/' && in[1] == '.' && in[2] == '.' &&
                   (in[3] == '/' || in[3] == '\0')) {
            in += 3; /* "/../" -> "/" and the last output segment goes */
            while (out > path && *--out != '/') {
            }
            if (*in == '\0') {
                *out++ = '/';
            }
        } else {
            do {
                *out++ = *in++;
            } while (*in && *in != '/');
        }
    }
    *out = '\0';
    if (out == path) {
        path[0] = '/';
        path[1] = '\0';
    }
}

static char *field(const char *url, const struct http_parser_url *pu, int f)
{
    size_t len = pu->field_data[f].len;
    char *s = malloc(len + 2); /* room for remove_dot_segments' "/" of an empty path */
    if (s) {
        memcpy(s, url + pu->field_data[f].off, len);
        s[len] = '\0';
    }
    return s;
}

int td_lean_url_parse(const char *url, struct td_lean_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    const char *colon = strchr(url, ':');
    if (strncasecmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, colon && colon != url ? "not a plain http:// URL" : "not a URL");
        return -1;
    }
    struct http_parser_url pu;
    http_parser_url_init(&pu);
    if (http_parser_parse_url(url, strlen(url), 0, &pu) != 0 || !(pu.field_set & (1 << UF_HOST)) ||
        pu.field_data[UF_HOST].len == 0) {
        snprintf(err, errlen, "not a URL");
        return -1;
    }
    if (pu.field_set & (1 << UF_USERINFO) || memchr(url, '@', pu.field_data[UF_HOST].off)) {
        snprintf(err, errlen, "user info in the URL");
        return -1;
    }
    const char *h = url + pu.field_data[UF_HOST].off;
    size_t hl = pu.field_data[UF_HOST].len;
    bool bracket = pu.field_data[UF_HOST].off > 0 && h[-1] == '[';
    if (bracket) {
        char ip[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        if (hl >= sizeof(ip) || memchr(h, '%', hl)) {
            snprintf(err, errlen, "an IPv6 address with a zone, or not an IPv6 address");
            return -1;
        }
        memcpy(ip, h, hl);
        ip[hl] = '\0';
        if (inet_pton(AF_INET6, ip, &a6) != 1 || !inet_ntop(AF_INET6, &a6, ip, sizeof(ip))) {
            snprintf(err, errlen, "not a URL");
            return -1;
        }
        /* as libcurl does: inet_ntop's form unless that differs from the address as written
         * only in case */
        if (strlen(ip) == hl && strncasecmp(ip, h, hl) == 0) {
            memcpy(ip, h, hl);
        }
        snprintf(u->host, sizeof(u->host), "[%s]", ip);
        u->ip6 = true;
    } else {
        struct in_addr a4;
        if (hl >= sizeof(u->host) - 4) {
            snprintf(err, errlen, "a host name too long");
            return -1;
        }
        memcpy(u->host, h, hl);
        u->host[hl] = '\0';
        u->ip4 = inet_pton(AF_INET, u->host, &a4) == 1;
        /* "127.1", "0x7f.0.0.1", "2130706433": libcurl rewrites these to a dotted quad */
        const char *last = u->host + hl;
        while (last > u->host && last[-1] == '.') {
            last--;
        }
        while (last > u->host && last[-1] != '.') {
            last--;
        }
        if (!u->ip4 && *last >= '0' && *last <= '9') {
            snprintf(err, errlen, "a numeric host that is not a dotted quad");
            return -1;
        }
    }
    u->port = 80;
    if (pu.field_set & (1 << UF_PORT)) {
        u->port = pu.port;
    }
    if (!u->ip4 && !u->ip6 && (u->port <= 0 || u->port > 65535)) {
        snprintf(err, errlen, "a port out of range");
        return -1;
    }
    if (pu.field_set & (1 << UF_PATH)) {
        u->path = field(url, &pu, UF_PATH);
    } else {
        u->path = strdup("/");
    }
    /* '?' cannot occur before the path: a '?' before any '#' starts the query */
    const char *qm = strchr(url, '?'), *hash = strchr(url, '#');
    if (pu.field_set & (1 << UF_QUERY)) {
        u->query = field(url, &pu, UF_QUERY);
    } else if (qm && (!hash || qm < hash)) {
        u->query = strdup(""); /* "http://h/p?": libcurl sends the empty query */
    }
    if (qm && (!hash || qm < hash) && !u->query) {
        goto oom;
    }
    if (!u->path) {
        goto oom;
    }
    remove_dot_segments(u->path);
    return 0;
oom:
    td_lean_url_clear(u);
    snprintf(err, errlen, "out of memory");
    return -1;
}

void td_lean_url_clear(struct td_lean_url *u)
{
    free(u->path);
    free(u->query);
    u->path = u->query = NULL;
}

/* ---- HTTP dates ----------------------------------------------------------------------------- */

static const char *skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    return s;
}

/* n digits (exactly when exact, else 1 to n) into *v; the end, or NULL. */
static const char *digits(const char *s, int n, bool exact, int *v)
{
    int i = 0;
    *v = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        *v = *v * 10 + (s[i] - '0');
    }
    return (i == 0 || (exact && i != n)) ? NULL : s + i;
}

static const char *month(const char *s, int *mon)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++) {
        if (strncmp(s, names + 3 * i, 3) == 0) {
            *mon = i;
            return s + 3;
        }
    }
    return NULL;
}

/* "HH:MM:SS" */
static const char *clock_time(const char *s, struct tm *tm)
{
    if (!(s = digits(s, 2, true, &tm->tm_hour)) || *s++ != ':' ||
        !(s = digits(s, 2, true, &tm->tm_min)) || *s++ != ':' ||
        !(s = digits(s, 2, true, &tm->tm_sec))) {
        return NULL;
    }
    return s;
}

time_t td_http_date_parse(const char *s)
{
    static const char *const days[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                       "Friday", "Saturday", "Sunday"};
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    s = skip_blanks(s);
    size_t dl = 0;
    while ((s[dl] >= 'A' && s[dl] <= 'Z') || (s[dl] >= 'a' && s[dl] <= 'z')) {
        dl++;
    }
    bool day_ok = false, long_day = false;
    for (int i = 0; i < 7; i++) {
        if ((dl == 3 && strncmp(s, days[i], 3) == 0) ||
            (dl == strlen(days[i]) && strncmp(s, days[i], dl) == 0)) {
            day_ok = true;
            long_day = dl > 3;
        }
    }
    if (!day_ok) {
        return -1;
    }
    s += dl;
    int year;
    if (*s == ',' && !long_day) { /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
        if (*++s != ' ' || !(s = digits(s + 1, 2, true, &tm.tm_mday)) || *s++ != ' ' ||
            !(s = month(s, &tm.tm_mon)) || *s++ != ' ' || !(s = digits(s, 4, true, &year)) ||
            *s++ != ' ' || !(s = clock_time(s, &tm)) || strncmp(s, " GMT", 4) != 0) {
            return -1;
        }
        s += 4;
    } else if (*s == ',' && long_day) { /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
        if (*++s != ' ' || !(s = digits(s + 1, 2, true, &tm.tm_mday)) || *s++ != '-' ||
            !(s = month(s, &tm.tm_mon)) || *s++ != '-' || !(s = digits(s, 2, true, &year)) ||
            *s++ != ' ' || !(s = clock_time(s, &tm)) || strncmp(s, " GMT", 4) != 0) {
            return -1;
        }
        s += 4;
        year += year < 70 ? 2000 : 1900; /* as libcurl reads two-digit years */
    } else if (*s == ' ' && !long_day) { /* asctime: "Sun Nov  6 08:49:37 1994" */
        s++;
        if (!(s = month(s, &tm.tm_mon)) || *s++ != ' ') {
            return -1;
        }
        if (*s == ' ') {
            s++;
        }
        if (!(s = digits(s, 2, false, &tm.tm_mday)) || *s++ != ' ' || !(s = clock_time(s, &tm)) ||
            *s++ != ' ' || !(s = digits(s, 4, true, &year))) {
            return -1;
        }
    } else {
        return -1;
    }
    if (*skip_blanks(s) != '\0' || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60 || year < 1970) {
        return -1;
    }
    tm.tm_year = year - 1900;
    return timegm(&tm);
}

int64_t td_retry_after_ms(const char *v, int64_t now_wall_ms)
{
    const int64_t day_ms = 86400 * 1000;
    v = skip_blanks(v);
    if (*v >= '0' && *v <= '9') {
        int64_t s = 0;
        for (; *v >= '0' && *v <= '9'; v++) {
            if (s < 86400) { /* clamped: a hostile header must not overflow the arithmetic */
                s = s * 10 + (*v - '0');
            }
        }
        return s < 86400 ? s * 1000 : day_ms;
    }
    time_t when = td_http_date_parse(v); /* -1 when unreadable: 0 below */
    if (when < 0) {
        return 0;
    }
    int64_t ms = (int64_t)when * 1000 - now_wall_ms;
    return ms <= 0 ? 0 : ms < day_ms ? ms : day_ms;
}
