/* json_text.c - JSON as text: a strict RFC 8259 check, and the spans of values in a document
 * cJSON has accepted (json_text.h).
 *
 * The span scanners trust that cJSON accepted the text, so they only find boundaries (strings,
 * brackets, delimiters); they never read past LEN whatever the bytes are, and they use cJSON's
 * own notion of whitespace (any byte up to 0x20, and a UTF-8 BOM at the very start) so that
 * they see the same members cJSON saw.
 */
#include "json_text.h"

#include <string.h>

/* cJSON's CJSON_NESTING_LIMIT: deeper text never reaches us, since cJSON refused it first. */
#define JSON_MAX_DEPTH 1000

struct cursor {
    const unsigned char *s;
    size_t len;
    size_t i;
    int max_depth; /* td_json_strict_depth: how many containers may nest */
};

static bool at(const struct cursor *c, unsigned char ch)
{
    return c->i < c->len && c->s[c->i] == ch;
}

static void skip_strict_ws(struct cursor *c)
{
    while (c->i < c->len &&
           (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r')) {
        c->i++;
    }
}

/* The four hex digits after the 'u' of an escape at the cursor (at the 'u'), or -1. */
static long hex4(const struct cursor *c)
{
    long v = 0;
    for (size_t k = 1; k <= 4; k++) {
        unsigned char ch = c->i + k < c->len ? c->s[c->i + k] : 0;
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0) {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

static bool strict_string(struct cursor *c)
{
    c->i++; /* the opening quote */
    while (c->i < c->len) {
        unsigned char ch = c->s[c->i];
        if (ch == '"') {
            c->i++;
            return true;
        }
        if (ch < 0x20) {
            return false;
        }
        if (ch == '\\') {
            if (++c->i >= c->len) {
                return false;
            }
            ch = c->s[c->i];
            if (ch == 'u') {
                /* As cJSON reads it: a surrogate only as a high-low pair, or the text is
                 * refused (RFC 8259 allows a lone one, cJSON and our decoder do not). */
                long v = hex4(c);
                if (v < 0 || (v >= 0xDC00 && v <= 0xDFFF)) {
                    return false;
                }
                c->i += 4;
                if (v >= 0xD800 && v <= 0xDBFF) {
                    if (c->len - c->i < 3 || c->s[c->i + 1] != '\\' || c->s[c->i + 2] != 'u') {
                        return false;
                    }
                    c->i += 2;
                    v = hex4(c);
                    if (v < 0xDC00 || v > 0xDFFF) {
                        return false;
                    }
                    c->i += 4;
                }
            } else if (ch == '\0' || strchr("\"\\/bfnrt", ch) == NULL) {
                return false;
            }
        }
        c->i++;
    }
    return false;
}

static size_t digits(struct cursor *c)
{
    size_t n = 0;
    while (c->i < c->len && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
        c->i++;
        n++;
    }
    return n;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool strict_number(struct cursor *c)
{
    if (at(c, '-')) {
        c->i++;
    }
    if (at(c, '0')) {
        c->i++;
    } else if (c->i >= c->len || c->s[c->i] < '1' || c->s[c->i] > '9' || digits(c) == 0) {
        return false;
    }
    if (at(c, '.')) {
        c->i++;
        if (digits(c) == 0) {
            return false;
        }
    }
    if (at(c, 'e') || at(c, 'E')) {
        c->i++;
        if (at(c, '+') || at(c, '-')) {
            c->i++;
        }
        if (digits(c) == 0) {
            return false;
        }
    }
    return true;
}

static bool strict_literal(struct cursor *c, const char *word)
{
    size_t n = strlen(word);
    if (c->len - c->i < n || memcmp(c->s + c->i, word, n) != 0) {
        return false;
    }
    c->i += n;
    return true;
}

static bool strict_value(struct cursor *c, int depth);

/* An object or an array; CLOSE is '}' or ']'. */
static bool strict_container(struct cursor *c, unsigned char close, int depth)
{
    if (depth >= c->max_depth) {
        return false;
    }
    c->i++;
    skip_strict_ws(c);
    if (at(c, close)) {
        c->i++;
        return true;
    }
    for (;;) {
        skip_strict_ws(c);
        if (close == '}') {
            if (!at(c, '"') || !strict_string(c)) {
                return false;
            }
            skip_strict_ws(c);
            if (!at(c, ':')) {
                return false;
            }
            c->i++;
            skip_strict_ws(c);
        }
        if (!strict_value(c, depth + 1)) {
            return false;
        }
        skip_strict_ws(c);
        if (at(c, ',')) {
            c->i++;
            continue;
        }
        if (at(c, close)) {
            c->i++;
            return true;
        }
        return false;
    }
}

static bool strict_value(struct cursor *c, int depth)
{
    if (c->i >= c->len) {
        return false;
    }
    switch (c->s[c->i]) {
    case '{':
        return strict_container(c, '}', depth);
    case '[':
        return strict_container(c, ']', depth);
    case '"':
        return strict_string(c);
    case 't':
        return strict_literal(c, "true");
    case 'f':
        return strict_literal(c, "false");
    case 'n':
        return strict_literal(c, "null");
    default:
        return strict_number(c);
    }
}

bool td_json_strict(const char *s, size_t len, size_t *start, size_t *end)
{
    return td_json_strict_depth(s, len, JSON_MAX_DEPTH, start, end);
}

bool td_json_strict_depth(const char *s, size_t len, int max_depth, size_t *start, size_t *end)
{
    struct cursor c = {(const unsigned char *)s, len, 0, max_depth};
    size_t a;
    size_t b;

    if (s == NULL) {
        return false;
    }
    skip_strict_ws(&c);
    a = c.i;
    if (!strict_value(&c, 0)) {
        return false;
    }
    b = c.i;
    skip_strict_ws(&c);
    if (c.i != len) {
        return false;
    }
    if (start != NULL) {
        *start = a;
    }
    if (end != NULL) {
        *end = b;
    }
    return true;
}

bool td_json_blank_to(const char *p, const char *stop)
{
    if (p == NULL) {
        return false;
    }
    while (p < stop && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p == stop;
}

size_t td_json_compact(const char *s, size_t len, char *out)
{
    size_t n = 0;
    bool in_string = false;

    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (in_string) {
            out[n++] = ch;
            if (ch == '\\' && i + 1 < len) {
                out[n++] = s[++i];
            } else if (ch == '"') {
                in_string = false;
            }
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            continue;
        }
        in_string = ch == '"';
        out[n++] = ch;
    }
    out[n] = '\0';
    return n;
}

/* ---- spans in text cJSON accepted --------------------------------------------------------- */

static void skip_cjson_ws(struct cursor *c)
{
    while (c->i < c->len && c->s[c->i] <= 0x20) {
        c->i++;
    }
}

/* cJSON skips a UTF-8 byte order mark before the first value. */
static void skip_bom(struct cursor *c)
{
    if (c->len >= 3 && memcmp(c->s, "\xEF\xBB\xBF", 3) == 0) {
        c->i = 3;
    }
}

/* Moves past the string at the cursor (at its opening quote); false if it does not end. */
static bool skip_string(struct cursor *c)
{
    for (c->i++; c->i < c->len; c->i++) {
        if (c->s[c->i] == '\\') {
            c->i++;
        } else if (c->s[c->i] == '"') {
            c->i++;
            return true;
        }
    }
    return false;
}

/* Moves past the value at the cursor; false if the text ends first. A scalar ends at what cJSON
 * accepts after one: whitespace, ',', ']' or '}'. */
static bool skip_value(struct cursor *c)
{
    size_t depth = 0;

    if (c->i >= c->len) {
        return false;
    }
    if (c->s[c->i] == '"') {
        return skip_string(c);
    }
    if (c->s[c->i] != '{' && c->s[c->i] != '[') {
        size_t from = c->i;
        while (c->i < c->len && c->s[c->i] > 0x20 && c->s[c->i] != ',' && c->s[c->i] != ']' &&
               c->s[c->i] != '}') {
            c->i++;
        }
        return c->i > from;
    }
    while (c->i < c->len) {
        unsigned char ch = c->s[c->i];
        if (ch == '"') {
            if (!skip_string(c)) {
                return false;
            }
            continue;
        }
        if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (--depth == 0) {
                c->i++;
                return true;
            }
        }
        c->i++;
    }
    return false;
}

/* Skips blanks, then CH; false when CH is not next. */
static bool expect(struct cursor *c, unsigned char ch)
{
    skip_cjson_ws(c);
    if (!at(c, ch)) {
        return false;
    }
    c->i++;
    return true;
}

/* Skips blanks, then the value, whose span lands in [*start, *end). */
static bool value_span(struct cursor *c, size_t *start, size_t *end)
{
    skip_cjson_ws(c);
    size_t a = c->i;
    if (!skip_value(c)) {
        return false;
    }
    *start = a;
    *end = c->i;
    return true;
}

bool td_json_member_span(const char *s, size_t len, size_t index, size_t *start, size_t *end)
{
    struct cursor c = {(const unsigned char *)s, len, 0, 0};

    if (s == NULL) {
        return false;
    }
    skip_bom(&c);
    if (!expect(&c, '{')) {
        return false;
    }
    for (size_t k = 0;; k++) {
        size_t a;
        size_t b;
        skip_cjson_ws(&c);
        if (!at(&c, '"') || !skip_string(&c) || !expect(&c, ':') || !value_span(&c, &a, &b)) {
            return false;
        }
        if (k == index) {
            *start = a;
            *end = b;
            return true;
        }
        if (!expect(&c, ',')) {
            return false;
        }
    }
}

bool td_json_element_next(const char *s, size_t len, size_t *pos, size_t *start, size_t *end)
{
    struct cursor c = {(const unsigned char *)s, len, *pos, 0};

    if (s == NULL) {
        return false;
    }
    if (*pos == 0) {
        skip_bom(&c);
        if (!expect(&c, '[')) {
            return false;
        }
        skip_cjson_ws(&c);
        if (at(&c, ']')) {
            return false;
        }
    } else if (!expect(&c, ',')) {
        return false;
    }
    if (!value_span(&c, start, end)) {
        return false;
    }
    *pos = c.i;
    return true;
}
