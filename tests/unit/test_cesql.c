/* test_cesql.c - unit tests for the CloudEvents SQL engine (cesql.h): the project's own
 * vectors, written from the CESQL v1 specification (the CloudEvents TCK runs separately in
 * test_cesql_tck.c). Covers literals and escapes, precedence, 32-bit arithmetic and its
 * errors, casting, LIKE, IN, EXISTS, the built-in functions, error kinds and positions,
 * the filter semantics (td_cesql_match) and hostile expressions (deep nesting, long chains).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cesql.h"
#include "cloudevent.h"
#include "filter.h"

enum want_kind { W_BOOL, W_INT, W_STR };

struct vec {
    const char *expr;
    enum want_kind type;
    int64_t i; /* W_BOOL: 0/1, W_INT: the value */
    const char *s;
    enum td_cesql_errkind err;
};

static struct td_event *test_event(void)
{
    struct td_event *ev = td_event_new();
    assert_non_null(ev);
    assert_int_equal(td_event_set(ev, "specversion", "1.0"), 0);
    assert_int_equal(td_event_set(ev, "id", "evt-1"), 0);
    assert_int_equal(td_event_set(ev, "source", "https://example.com/orders"), 0);
    assert_int_equal(td_event_set(ev, "type", "com.example.order.created"), 0);
    assert_int_equal(td_event_set(ev, "subject", "images/cat.png"), 0);
    assert_int_equal(td_event_set(ev, "seq", "42"), 0);
    assert_int_equal(td_event_set(ev, "name", "Zoë"), 0);
    assert_int_equal(td_event_set(ev, "flag", "TRUE"), 0);
    assert_int_equal(td_event_set_typed(ev, "count", "7", TD_CE_INTEGER), 0);
    assert_int_equal(td_event_set_typed(ev, "vip", "true", TD_CE_BOOLEAN), 0);
    return ev;
}

#define B(e, v)                                                                                    \
    {                                                                                              \
        e, W_BOOL, v, NULL, TD_CESQL_OK                                                            \
    }
#define I(e, v)                                                                                    \
    {                                                                                              \
        e, W_INT, v, NULL, TD_CESQL_OK                                                             \
    }
#define S(e, v)                                                                                    \
    {                                                                                              \
        e, W_STR, 0, v, TD_CESQL_OK                                                                \
    }
#define BE(e, v, k)                                                                                \
    {                                                                                              \
        e, W_BOOL, v, NULL, k                                                                      \
    }
#define IE(e, v, k)                                                                                \
    {                                                                                              \
        e, W_INT, v, NULL, k                                                                       \
    }
#define SE(e, v, k)                                                                                \
    {                                                                                              \
        e, W_STR, 0, v, k                                                                          \
    }

static const struct vec vectors[] = {
    /* literals */
    I("2147483647", 2147483647),
    I("-2147483648", INT32_MIN),
    I("+5", 5),
    S("'it\\'s'", "it's"),
    S("\"say \\\"hi\\\"\"", "say \"hi\""),
    S("'back\\slash'", "back\\slash"),
    S("''", ""),
    B("tRuE", 1),
    /* attributes: case-insensitive names, typed extensions, strings otherwise */
    S("ID", "evt-1"),
    I("count", 7),
    B("vip", 1),
    S("seq", "42"),
    BE("nosuch", 0, TD_CESQL_ERR_MISSING_ATTRIBUTE),
    B("EXISTS subject AND NOT EXISTS nosuch", 1),
    /* precedence: AND/OR/XOR share one level, left to right (the spec's grammar) */
    B("TRUE OR TRUE AND FALSE", 0),
    B("TRUE OR (TRUE AND FALSE)", 1),
    B("FALSE AND FALSE OR TRUE", 1),
    I("2 + 3 * 4", 14),
    I("(2 + 3) * 4", 20),
    I("10 - 2 - 3", 5),
    I("100 / 10 / 5", 2),
    B("1 + 1 = 2", 1),
    BE("1 < 2 = TRUE", 0, TD_CESQL_ERR_CAST), /* = binds tighter: 1 < (2 = TRUE) */
    I("-3 * -3", 9),
    I("- - 4", 4),
    /* 32-bit arithmetic */
    I("-7 / 2", -3),
    I("-7 % 2", -1),
    I("7 % -2", 1),
    IE("2147483647 + 1", INT32_MAX, TD_CESQL_ERR_MATH),
    IE("-2147483648 - 1", INT32_MIN, TD_CESQL_ERR_MATH),
    IE("65536 * 65536", INT32_MAX, TD_CESQL_ERR_MATH),
    IE("-2147483648 / -1", INT32_MAX, TD_CESQL_ERR_MATH),
    I("-2147483648 % -1", 0),
    IE("-(-2147483648)", INT32_MAX, TD_CESQL_ERR_MATH),
    IE("1 % 0", 0, TD_CESQL_ERR_MATH),
    I("seq + 1", 43),
    I("count * 2", 14),
    IE("'abc' + 1", 1, TD_CESQL_ERR_CAST),
    IE("'2147483648' + 0", 0, TD_CESQL_ERR_CAST),
    /* comparison and casting */
    B("seq = 42", 1),
    B("42 = seq", 1),
    B("seq > 41 AND seq <= 42", 1),
    B("'10' > '9'", 1), /* integers, not strings */
    B("flag = TRUE", 1),
    B("TRUE = flag", 0), /* the left operand is cast to the right one's type */
    B("count = '7'", 1),
    BE("10 AND TRUE", 0, TD_CESQL_ERR_CAST),
    BE("'yes' OR FALSE", 0, TD_CESQL_ERR_CAST),
    B("TRUE XOR FALSE", 1),
    BE("subject = nosuch", 0, TD_CESQL_ERR_MISSING_ATTRIBUTE),
    BE("FALSE OR nosuch = 'x'", 0, TD_CESQL_ERR_MISSING_ATTRIBUTE),
    B("FALSE AND nosuch = 'x'", 0),
    /* LIKE */
    B("subject LIKE 'images/%.png'", 1),
    B("subject LIKE 'images/___.png'", 1),
    B("subject NOT LIKE 'videos/%'", 1),
    B("name LIKE 'Zo_'", 1), /* _ is one character, not one byte */
    B("'100%' LIKE '100\\%'", 1),
    B("'1000' LIKE '100\\%'", 0),
    B("'a_c' LIKE 'a\\_c'", 1),
    B("'abc' LIKE 'a\\_c'", 0),
    B("'a\\b' LIKE 'a\\\\b'", 1),
    B("'' LIKE '%'", 1),
    B("'abc' LIKE '%%%c'", 1),
    B("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaab' LIKE '%a%a%a%a%a%a%a%a%c'", 0),
    B("count LIKE '7'", 1),
    /* IN */
    B("type IN ('a', 'com.example.order.created')", 1),
    B("seq IN (41, 43)", 0), /* elements are cast to the subject's type (string) */
    B("seq IN (41, 42)", 1),
    B("count IN ('6', '7')", 1),
    B("count NOT IN (1, 2, 3)", 1),
    BE("count IN ('x', 7)", 1, TD_CESQL_ERR_CAST),
    BE("nosuch IN (1)", 0, TD_CESQL_ERR_MISSING_ATTRIBUTE),
    /* functions */
    I("LENGTH(name)", 3),
    I("length('')", 0),
    S("CONCAT(id, '/', count)", "evt-1/7"),
    S("CONCAT_WS('.', 'a', TRUE, 3)", "a.true.3"),
    S("UPPER(name)", "ZOë"),
    S("lower('MiXeD')", "mixed"),
    S("TRIM('\t x \n')", "x"),
    S("LEFT(name, 2)", "Zo"),
    S("RIGHT(name, 1)", "ë"),
    S("RIGHT('abc', 0)", ""),
    SE("RIGHT('abc', -1)", "abc", TD_CESQL_ERR_FUNCTION_EVALUATION),
    S("SUBSTRING(name, 3)", "ë"),
    S("SUBSTRING('abcdef', -2, 10)", "ef"),
    SE("SUBSTRING('abcdef', 2, -1)", "", TD_CESQL_ERR_FUNCTION_EVALUATION),
    I("ABS(-5) + ABS(5)", 10),
    IE("ABS(-2147483648)", INT32_MAX, TD_CESQL_ERR_MATH),
    I("INT('-12')", -12),
    IE("INT('1.5')", 0, TD_CESQL_ERR_CAST),
    B("BOOL('False')", 0),
    B("BOOL(count)", 1),
    S("STRING(count)", "7"),
    S("string(vip)", "true"),
    B("IS_INT(seq)", 1),
    B("IS_INT('4x')", 0),
    B("IS_INT(count)", 1),
    B("IS_BOOL(flag)", 1),
    B("IS_BOOL(seq)", 0),
    B("IS_BOOL(vip)", 1),
    I("LENGTH(CONCAT(UPPER(LOWER(TRIM(' ab '))), 'c'))", 3),
    IE("LENGTH(nosuch)", 0, TD_CESQL_ERR_MISSING_ATTRIBUTE),
    SE("CONCAT('a', 1 / 0)", "", TD_CESQL_ERR_MATH),
    S("CONCAT('a', 'b', 'c', 'd', 'e', 'f', 'g')", "abcdefg"),
};

static void check_vector(const struct vec *v, const struct td_event *ev)
{
    struct td_cesql_error err;
    struct td_cesql *q = td_cesql_compile(v->expr, &err);
    if (!q) {
        fail_msg("%s: compile error column %d: %s", v->expr, err.column, err.message);
    }
    struct td_cesql_value val;
    enum td_cesql_errkind kind = td_cesql_eval(q, ev, &val, &err);
    if (kind != v->err) {
        fail_msg("%s: error %s (%s), want %s", v->expr, td_cesql_errkind_name(kind), err.message,
                 td_cesql_errkind_name(v->err));
    }
    switch (v->type) {
    case W_BOOL:
        if (val.type != TD_CESQL_BOOLEAN || val.b != (v->i != 0)) {
            fail_msg("%s: type %d value %d, want boolean %d", v->expr, val.type, (int)val.b,
                     (int)v->i);
        }
        break;
    case W_INT:
        if (val.type != TD_CESQL_INTEGER || val.i != v->i) {
            fail_msg("%s: type %d value %d, want integer %lld", v->expr, val.type, (int)val.i,
                     (long long)v->i);
        }
        break;
    case W_STR:
        if (val.type != TD_CESQL_STRING || strcmp(val.s, v->s) != 0) {
            fail_msg("%s: type %d value '%s', want '%s'", v->expr, val.type,
                     val.type == TD_CESQL_STRING ? val.s : "", v->s);
        }
        break;
    }
    td_cesql_value_clear(&val);
    td_cesql_free(q);
}

static void test_vectors(void **state)
{
    struct td_event *ev = test_event();
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        check_vector(&vectors[i], ev);
    }
    td_event_unref(ev);
}

struct bad {
    const char *expr;
    enum td_cesql_errkind kind;
    int column;
    const char *msg_part;
};

static const struct bad bad_exprs[] = {
    {"", TD_CESQL_ERR_PARSE, 1, "expected a value"},
    {"a AND", TD_CESQL_ERR_PARSE, 6, "end of the expression"},
    {"(a = 1", TD_CESQL_ERR_PARSE, 7, "')'"},
    {"a = 1)", TD_CESQL_ERR_PARSE, 6, "but found ')'"},
    {"'open", TD_CESQL_ERR_PARSE, 1, "unterminated"},
    {"a LIKE b", TD_CESQL_ERR_PARSE, 8, "string literal pattern"},
    {"a IN 1", TD_CESQL_ERR_PARSE, 6, "'(' after IN"},
    {"a IN ()", TD_CESQL_ERR_PARSE, 7, "expected a value"},
    {"EXISTS 'x'", TD_CESQL_ERR_PARSE, 8, "attribute name"},
    {"2147483648", TD_CESQL_ERR_PARSE, 1, "32-bit"},
    {"-2147483649", TD_CESQL_ERR_PARSE, 2, "32-bit"},
    {"a ! b", TD_CESQL_ERR_PARSE, 3, "'!'"},
    {"a = #", TD_CESQL_ERR_PARSE, 5, "'#'"},
    {"my_attr = 1", TD_CESQL_ERR_PARSE, 1, "not an attribute name"},
    {"F1(2)", TD_CESQL_ERR_PARSE, 1, "not a function name"},
    {"NOPE(1)", TD_CESQL_ERR_MISSING_FUNCTION, 1, "NOPE"},
    {"TRUE AND abs(1, 2)", TD_CESQL_ERR_MISSING_FUNCTION, 10, "ABS taking 2 arguments"},
    {"SUBSTRING('a')", TD_CESQL_ERR_MISSING_FUNCTION, 1, "SUBSTRING"},
    {"NOPE(", TD_CESQL_ERR_PARSE, 6, "expected a value"},
    {"1 2", TD_CESQL_ERR_PARSE, 3, "but found an integer"},
};

static void test_compile_errors(void **state)
{
    for (size_t i = 0; i < sizeof(bad_exprs) / sizeof(bad_exprs[0]); i++) {
        const struct bad *b = &bad_exprs[i];
        struct td_cesql_error err;
        struct td_cesql *q = td_cesql_compile(b->expr, &err);
        if (q) {
            fail_msg("'%s' compiled", b->expr);
        }
        if (err.kind != b->kind || err.column != b->column || !strstr(err.message, b->msg_part)) {
            fail_msg("'%s': %s column %d: %s; want %s column %d containing \"%s\"", b->expr,
                     td_cesql_errkind_name(err.kind), err.column, err.message,
                     td_cesql_errkind_name(b->kind), b->column, b->msg_part);
        }
    }
    struct td_cesql_error err;
    assert_null(td_cesql_compile(NULL, &err));
    assert_int_equal(err.kind, TD_CESQL_ERR_PARSE);
}

/* Hostile expressions: nesting and chains beyond the limits are parse errors, not a crash. */
static void test_hostile(void **state)
{
    size_t n = 200000;
    char *s = malloc(2 * n + 2);
    assert_non_null(s);
    struct td_cesql_error err;

    memset(s, '(', n);
    s[n] = '1';
    memset(s + n + 1, ')', n);
    s[2 * n + 1] = '\0';
    assert_null(td_cesql_compile(s, &err));
    assert_int_equal(err.kind, TD_CESQL_ERR_PARSE);
    assert_non_null(strstr(err.message, "nested too deeply"));

    for (size_t i = 0; i < n; i++) {
        memcpy(s + 4 * i, "NOT ", 4);
        if (4 * (i + 1) >= 2 * n) {
            s[4 * i] = '\0';
            break;
        }
    }
    assert_null(td_cesql_compile(s, &err));
    assert_int_equal(err.kind, TD_CESQL_ERR_PARSE);

    /* a long left-deep chain: 1+1+1+... */
    size_t terms = 50000;
    for (size_t i = 0; i < terms; i++) {
        memcpy(s + 2 * i, "1+", 2);
    }
    s[2 * terms - 1] = '\0';
    assert_null(td_cesql_compile(s, &err));
    assert_int_equal(err.kind, TD_CESQL_ERR_PARSE);
    assert_non_null(strstr(err.message, "too complex"));
    free(s);

    /* within the limits: 60 parentheses and a 400-term chain evaluate */
    char buf[4096];
    size_t at = 0;
    for (int i = 0; i < 60; i++) {
        buf[at++] = '(';
    }
    buf[at++] = '7';
    for (int i = 0; i < 60; i++) {
        buf[at++] = ')';
    }
    buf[at] = '\0';
    struct td_cesql *q = td_cesql_compile(buf, &err);
    assert_non_null(q);
    struct td_cesql_value v;
    assert_int_equal(td_cesql_eval(q, NULL, &v, &err), TD_CESQL_OK);
    assert_int_equal(v.i, 7);
    td_cesql_value_clear(&v);
    td_cesql_free(q);
    at = 0;
    for (int i = 0; i < 400; i++) {
        memcpy(buf + at, "1+", 2);
        at += 2;
    }
    buf[at - 1] = '\0';
    q = td_cesql_compile(buf, &err);
    assert_non_null(q);
    assert_int_equal(td_cesql_eval(q, NULL, &v, &err), TD_CESQL_OK);
    assert_int_equal(v.i, 400);
    td_cesql_value_clear(&v);
    td_cesql_free(q);

    /* a pathological LIKE finishes (no exponential backtracking) */
    char subject[2100], pattern[200];
    memset(subject, 'a', 2000);
    subject[2000] = '\0';
    strcpy(pattern, "%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%b");
    struct td_event *ev = td_event_new();
    assert_int_equal(td_event_set(ev, "long", subject), 0);
    snprintf(buf, sizeof(buf), "long LIKE '%s'", pattern);
    q = td_cesql_compile(buf, &err);
    assert_non_null(q);
    assert_false(td_cesql_match(q, ev, &err));
    td_cesql_free(q);
    td_event_unref(ev);
}

/* The filter semantics: only a boolean true without errors passes. */
static void test_match(void **state)
{
    struct td_event *ev = test_event();
    struct td_cesql_error err;
    static const struct {
        const char *expr;
        bool want;
        enum td_cesql_errkind kind;
    } cases[] = {
        {"type LIKE 'com.example.%'", true, TD_CESQL_OK},
        {"type = 'other'", false, TD_CESQL_OK},
        {"count", false, TD_CESQL_ERR_GENERIC}, /* an integer, not a boolean */
        {"'true'", false, TD_CESQL_ERR_GENERIC},
        {"nosuch = 'x' OR TRUE", false, TD_CESQL_ERR_MISSING_ATTRIBUTE},
        {"NOT (nosuch = 'x')", false, TD_CESQL_ERR_MISSING_ATTRIBUTE},
        {"1 / 0 = 0", false, TD_CESQL_ERR_MATH},
        {"vip", true, TD_CESQL_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct td_cesql *q = td_cesql_compile(cases[i].expr, &err);
        assert_non_null(q);
        bool got = td_cesql_match(q, ev, &err);
        if (got != cases[i].want || (!got && err.kind != cases[i].kind)) {
            fail_msg("%s: match %d (%s), want %d (%s)", cases[i].expr, got,
                     td_cesql_errkind_name(err.kind), cases[i].want,
                     td_cesql_errkind_name(cases[i].kind));
        }
        td_cesql_free(q);
    }
    td_event_unref(ev);
}

/* Through filter.h: compiled once, "column N: message" on error, freed with the filter. */
static void test_filter_cesql(void **state)
{
    char err[256];
    struct td_event *ev = test_event();
    struct td_filter *f =
        td_filter_new_cesql("subject LIKE 'images/%' AND count > 5", err, sizeof(err));
    assert_non_null(f);
    assert_int_equal(f->kind, TD_FILTER_CESQL);
    assert_true(td_filter_match(f, ev));
    td_filter_free(f);
    f = td_filter_new_cesql("subject LIKE 'images/%' AND nosuch > 5", err, sizeof(err));
    assert_non_null(f);
    assert_false(td_filter_match(f, ev));
    td_filter_free(f);
    assert_null(td_filter_new_cesql("type = = 'x'", err, sizeof(err)));
    assert_string_equal(err, "column 8: expected a value but found '='");
    assert_null(td_filter_new_cesql("FOO(type)", err, sizeof(err)));
    assert_string_equal(err, "column 1: no function FOO taking 1 argument");
    td_event_unref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),      cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_hostile),      cmocka_unit_test(test_match),
        cmocka_unit_test(test_filter_cesql),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
