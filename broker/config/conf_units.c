/* conf_units.c - durations ("250ms", "1m30s", "PT0.2S") and sizes ("64KiB", "1MB") as the
 * trigger file writes them (td_parse_duration, td_parse_size in config.h).
 *
 * Thread: any; no state.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

/* Parses "DIGITS[.DIGITS]" at *s into a value scaled by 1000 (milli-units); advances *s. */
static int parse_milli(const char **s, int64_t *milli)
{
    const char *p = *s;
    int64_t whole = 0;
    int64_t frac = 0;
    int64_t scale = 1000;

    if (!isdigit((unsigned char)*p)) {
        return -1;
    }
    while (isdigit((unsigned char)*p)) {
        if (whole > (INT64_MAX / 10000 - 9) / 10) {
            return -1;
        }
        whole = whole * 10 + (*p++ - '0');
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) {
            return -1;
        }
        while (isdigit((unsigned char)*p)) {
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
            p++;
        }
    }
    *milli = whole * 1000 + frac;
    *s = p;
    return 0;
}

/* One "<number><unit>" term; *s moves past it. units: the table to match, longest first. */
static int duration_term(const char **s, const char *const *units, const int64_t *unit_ms,
                         size_t nunits, int64_t *ms)
{
    int64_t milli;
    if (parse_milli(s, &milli) < 0) {
        return -1;
    }
    for (size_t i = 0; i < nunits; i++) {
        size_t n = strlen(units[i]);
        if (strncmp(*s, units[i], n) == 0) {
            if (milli > INT64_MAX / unit_ms[i]) {
                return -1;
            }
            *ms = milli * unit_ms[i] / 1000; /* fractions of a millisecond are dropped */
            *s += n;
            return 0;
        }
    }
    return -1;
}

/* "250ms", "10s", "5m", "1h", "1.5s", a bare number of seconds, compound Go-style terms in
 * decreasing order ("1h30m", "1m30.5s"), and ISO 8601 as Knative writes delivery durations
 * ("PT0.2S", "PT1M30S"). */
int td_parse_duration(const char *s, int64_t *ms)
{
    static const char *const go_units[] = {"ms", "h", "m", "s"};
    static const int64_t go_ms[] = {1, 3600000, 60000, 1000};
    static const char *const iso_units[] = {"H", "M", "S"};
    static const int64_t iso_ms[] = {3600000, 60000, 1000};
    int64_t total = 0, term, last_unit = INT64_MAX;
    bool iso = false;

    if (!s || !*s) {
        return -1;
    }
    if (s[0] == 'P' && s[1] == 'T') {
        iso = true;
        s += 2;
        if (!*s) {
            return -1;
        }
    } else {
        /* a bare number is seconds */
        const char *p = s;
        int64_t milli;
        if (parse_milli(&p, &milli) == 0 && *p == '\0') {
            *ms = milli;
            return 0;
        }
    }
    while (*s) {
        const char *before = s;
        if (duration_term(&s, iso ? iso_units : go_units, iso ? iso_ms : go_ms, iso ? 3 : 4,
                          &term) < 0) {
            return -1;
        }
        /* the unit just matched, by the characters consumed after the number */
        int64_t unit = 0;
        const char *u = s - 1;
        if (!iso && u > before && *u == 's' && u[-1] == 'm') {
            unit = 1;
        } else {
            unit = (*u == 'h' || *u == 'H') ? 3600000 : (*u == 'm' || *u == 'M') ? 60000 : 1000;
        }
        if (unit >= last_unit || total > INT64_MAX - term) {
            return -1; /* units in decreasing order, each once */
        }
        last_unit = unit;
        total += term;
    }
    *ms = total;
    return 0;
}

int td_parse_size(const char *s, int64_t *bytes)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {{"", 1},          {"B", 1},           {"KB", 1000},
                 {"MB", 1000000},  {"GB", 1000000000}, {"KiB", 1024},
                 {"MiB", 1048576}, {"GiB", 1073741824}};
    int64_t n = 0;

    if (!s || !isdigit((unsigned char)*s)) {
        return -1;
    }
    while (isdigit((unsigned char)*s)) {
        if (n > (INT64_MAX - 9) / 10) {
            return -1;
        }
        n = n * 10 + (*s++ - '0');
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(s, units[i].unit) == 0) {
            if (n > INT64_MAX / units[i].mult) {
                return -1;
            }
            *bytes = n * units[i].mult;
            return 0;
        }
    }
    return -1;
}
