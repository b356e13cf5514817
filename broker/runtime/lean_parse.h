/* lean_parse.h - what the lean HTTP client (http_lean.c) reads without libcurl: its target URL
 * and the HTTP date a Retry-After may hold, so that a daemon whose sinks all use the lean
 * client never loads libcurl (curl_api.h says why that matters).
 *
 * td_lean_url_parse takes the plain http:// URLs the lean client served when libcurl's URL
 * parser read them, and gives the same parts libcurl gave: the host as written (an IPv6 literal
 * in brackets, in inet_ntop's form), the port (80 when none), the path with its dot segments
 * removed ("/" when empty), the query as written, no fragment. It refuses what it does not read
 * the way libcurl did (user info, an IPv6 zone, a numeric host that is not a dotted quad, which
 * libcurl rewrites, anything http_parser does not take): such a sink stays on libcurl, which
 * serves it as before.
 * Threads: any.
 */
#ifndef TD_LEAN_PARSE_H
#define TD_LEAN_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct td_lean_url {
    char host[260]; /* a name, a dotted quad, or "[ipv6]" */
    bool ip4, ip6;  /* host is an address (ip6: in brackets) */
    long port;
    char *path;  /* "/..." (malloc'd) */
    char *query; /* without its "?", or NULL when the URL has none (malloc'd) */
};

/* 0, or -1 with why in err (u then holds nothing to free). */
int td_lean_url_parse(const char *url, struct td_lean_url *u, char *err, size_t errlen);
void td_lean_url_clear(struct td_lean_url *u);

/* An HTTP date (RFC 9110 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms, all
 * in GMT): the time, or -1 when s is none of them. Leading and trailing blanks are skipped. */
time_t td_http_date_parse(const char *s);

/* A Retry-After value (delta-seconds or an HTTP date) as the wait in ms from now_wall_ms (the
 * wall clock in ms: td_wall_ms()); 0 when unreadable or past, at most a day. A date is measured
 * against the precise wall clock, not time(NULL): on Linux time() reads a coarse clock that can
 * lag by milliseconds, still saying the last second, and that made a date one second ahead a wait
 * of two (libcurl's CURLINFO_RETRY_AFTER has that flaw). */
int64_t td_retry_after_ms(const char *v, int64_t now_wall_ms);

#endif
