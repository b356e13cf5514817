/* test_json_text.c - JSON as text (json_text.h) and what it is for: the CloudEvents JSON format
 * (ce_json.c, ce_batch.c) carries JSON data as the producer wrote it, both ways, where a cJSON
 * tree would change numbers it cannot hold exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ce_batch.h"
#include "ce_json.h"
#include "cloudevent.h"
#include "json_text.h"

#define BASE "\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\""

static bool strict(const char *s)
{
    return td_json_strict(s, strlen(s), NULL, NULL);
}

static void test_strict_accepts(void **state)
{
    static const char *const good[] = {"0",
                                       "-0",
                                       "12345678901234567890",
                                       "0.1000000000000000055511151231257827",
                                       "7e777",
                                       "-1.5E+3",
                                       "1e-2",
                                       "\"\"",
                                       "\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"",
                                       "true",
                                       "false",
                                       "null",
                                       "[]",
                                       "{}",
                                       " [ 1 , { \"a\" : [ ] } ]\r\n",
                                       "{\"a\":1,\"b\":[true,null]}",
                                       "\"h\xC3\xA9\""};
    size_t a = 9;
    size_t b = 9;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!strict(good[i])) {
            fail_msg("refused strict JSON: %s", good[i]);
        }
    }
    assert_true(td_json_strict(" \t{\"a\":1}\n", 10, &a, &b));
    assert_int_equal(a, 2);
    assert_int_equal(b, 9);
}

static void test_strict_refuses(void **state)
{
    /* What cJSON accepts and RFC 8259 does not, then what neither accepts. */
    static const char *const bad[] = {
        "01", "1.", "-.5", ".5", "+1", "1e", "1e+", "-", "\"a\tb\"", "\"\\x\"", "\"\\u12\"",
        "\"\\u12G4\"", "\0131", "1\x0b", "\xEF\xBB\xBF{}", "[1,]", "{\"a\":1,}", "{\"a\"}", "{1:2}",
        "[1 2]", "tru", "nul", "1 2", "", " ", "[", "\"abc", "{\"a\":[}",
        /* lone or broken surrogate escapes, which cJSON refuses */
        "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800x\"", "\"\\ud800\\"};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (strict(bad[i])) {
            fail_msg("took for strict JSON: '%s'", bad[i]);
        }
    }
    /* A surrogate pair is fine. */
    assert_true(strict("\"\\ud83d\\ude00\""));
    /* Only LEN bytes count. */
    assert_false(td_json_strict("12", 0, NULL, NULL));
    assert_true(td_json_strict("12x", 2, NULL, NULL));
    assert_false(td_json_strict(NULL, 0, NULL, NULL));
}

static void test_strict_depth(void **state)
{
    enum { DEEP = 1001 };
    char *s = malloc(2 * DEEP + 1);

    (void)state;
    assert_non_null(s);
    memset(s, '[', DEEP);
    memset(s + DEEP, ']', DEEP);
    s[2 * DEEP] = '\0';
    assert_false(strict(s));                                        /* 1001 deep */
    assert_true(td_json_strict(s + 1, 2 * (DEEP - 1), NULL, NULL)); /* 1000, cJSON's limit */
    assert_false(strict(s + 1));                                    /* one ']' too many */
    free(s);
}

static void test_compact(void **state)
{
    static const char s[] = " { \"a b\" : [ 1 ,\n\t2 ] , \"c\" : \"x \\\" y\\\\\" }\r\n";
    char out[sizeof(s)];

    (void)state;
    assert_true(strict(s));
    size_t n = td_json_compact(s, sizeof(s) - 1, out);
    assert_int_equal(n, strlen(out));
    assert_string_equal(out, "{\"a b\":[1,2],\"c\":\"x \\\" y\\\\\"}");
}

static void test_member_span(void **state)
{
    static const char doc[] = "\xEF\xBB\xBF {\"a\" :\"x\\\"}\" ,\"b\\u0020\":{\"c\":[1,\"]\"]},"
                              "\"d\":-1.5e3\x01}";
    size_t a = 0;
    size_t b = 0;

    (void)state;
    assert_true(td_json_member_span(doc, sizeof(doc) - 1, 0, &a, &b));
    assert_int_equal(b - a, 6);
    assert_memory_equal(doc + a, "\"x\\\"}\"", 6);
    assert_true(td_json_member_span(doc, sizeof(doc) - 1, 1, &a, &b));
    assert_memory_equal(doc + a, "{\"c\":[1,\"]\"]}", b - a);
    assert_int_equal(b - a, 13);
    assert_true(td_json_member_span(doc, sizeof(doc) - 1, 2, &a, &b));
    assert_memory_equal(doc + a, "-1.5e3", 6);
    assert_int_equal(b - a, 6);
    assert_false(td_json_member_span(doc, sizeof(doc) - 1, 3, &a, &b));
    assert_false(td_json_member_span("[1]", 3, 0, &a, &b));
    assert_false(td_json_member_span("{\"a\":[1", 7, 0, &a, &b));
    assert_false(td_json_member_span("{\"a\":\"1", 7, 0, &a, &b));
}

static void test_element_next(void **state)
{
    static const char doc[] = " [ {\"a\":\"]\"} ,2,\"s\"\n] trailing";
    size_t pos = 0;
    size_t a = 0;
    size_t b = 0;

    (void)state;
    assert_true(td_json_element_next(doc, sizeof(doc) - 1, &pos, &a, &b));
    assert_memory_equal(doc + a, "{\"a\":\"]\"}", b - a);
    assert_int_equal(b - a, 9);
    assert_true(td_json_element_next(doc, sizeof(doc) - 1, &pos, &a, &b));
    assert_memory_equal(doc + a, "2", b - a);
    assert_true(td_json_element_next(doc, sizeof(doc) - 1, &pos, &a, &b));
    assert_memory_equal(doc + a, "\"s\"", b - a);
    assert_false(td_json_element_next(doc, sizeof(doc) - 1, &pos, &a, &b));
    pos = 0;
    assert_false(td_json_element_next(" [ ]", 4, &pos, &a, &b));
    pos = 0;
    assert_false(td_json_element_next("{}", 2, &pos, &a, &b));
}

static void assert_data(const struct td_event *ev, const char *want)
{
    assert_non_null(ev);
    assert_non_null(ev->data);
    if (ev->data_len != strlen(want) || memcmp(ev->data, want, ev->data_len) != 0) {
        fail_msg("data is '%.*s', want '%s'", (int)ev->data_len, (const char *)ev->data, want);
    }
}

static struct td_event *decode(const char *json)
{
    char err[256] = "";
    struct td_event *ev = td_ce_from_json(json, strlen(json), err, sizeof(err));
    if (ev == NULL) {
        fail_msg("refused: %s: %s", err, json);
    }
    return ev;
}

/* Reading a structured event keeps its data's text: big integers, long decimals and numbers
 * beyond a double's range come out as they went in. */
static void test_from_json_keeps_numbers(void **state)
{
    struct td_event *ev;

    (void)state;
    ev = decode("{" BASE ",\"datacontenttype\":\"application/json\",\"data\":"
                "{\"id\": 12345678901234567890, \"x\":0.1000000000000000055511151231257827,"
                "\"big\":7e777, \"s\":\"\\u00e9\"}  }");
    assert_data(ev, "{\"id\": 12345678901234567890, \"x\":0.1000000000000000055511151231257827,"
                    "\"big\":7e777, \"s\":\"\\u00e9\"}");
    td_event_unref(ev);

    /* A scalar, the last of two data members (cJSON's pick too), a key spelt with an escape;
     * then data that only cJSON accepts, re-printed as strict JSON rather than copied. */
    static const char *const cases[][2] = {
        {"{" BASE ",\"data\":1,\"data\":9007199254740993}", "9007199254740993"},
        {"{" BASE ",\"d\\u0061ta\":[1.10]}", "[1.10]"},
        {"{" BASE ",\"data\":{\"a\":01}}", "{\"a\":1}"},
        {"{" BASE ",\"data\":\"a\tb\"}", "\"a\\tb\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ev = decode(cases[i][0]);
        assert_data(ev, cases[i][1]);
        td_event_unref(ev);
    }
}

/* Writing one embeds strict JSON data with its numbers and strings as written, without the blanks
 * between tokens: a pretty-printed body must not split a JSON-lines file (the file sink). */
static void test_to_json_keeps_numbers(void **state)
{
    static const char data[] = " {\"id\":12345678901234567890,\n  \"x\":[0.10, 7e777],"
                               "\t\"s\":\" a\\\" \\n\"}\n";
    struct td_event *ev = decode("{" BASE ",\"datacontenttype\":\"application/json\"}");
    struct td_event *back;
    char *json;

    (void)state;
    assert_int_equal(td_event_set_data(ev, data, sizeof(data) - 1), 0);
    json = td_ce_to_json(ev, NULL);
    assert_non_null(json);
    assert_null(strchr(json, '\n'));
    assert_non_null(strstr(
        json, ",\"data\":{\"id\":12345678901234567890,\"x\":[0.10,7e777],\"s\":\" a\\\" \\n\"}}"));
    back = decode(json);
    assert_data(back, "{\"id\":12345678901234567890,\"x\":[0.10,7e777],\"s\":\" a\\\" \\n\"}");
    td_event_unref(back);
    free(json);

    /* cJSON-only JSON data is made strict; the JSON null still goes as data_base64. */
    assert_int_equal(td_event_set_data(ev, "{\"a\":-.5}", 9), 0);
    json = td_ce_to_json(ev, NULL);
    assert_non_null(strstr(json, "\"data\":{\"a\":-0.5}"));
    free(json);
    assert_int_equal(td_event_set_data(ev, " null ", 6), 0);
    json = td_ce_to_json(ev, NULL);
    assert_non_null(strstr(json, "\"data_base64\":\"IG51bGwg\""));
    free(json);
    td_event_unref(ev);
}

/* Data that does not go as "data" JSON comes back as the same bytes: under a JSON type that is
 * also textual (text/json) it is not sent as a JSON string, which the decoder would read as
 * JSON text (quotes and all); data as deep as cJSON's limit would make an event one deeper. */
static void test_to_json_data_base64_when_needed(void **state)
{
    static const char *const dcts[] = {"text/json", "text/x+json", "application/json"};
    static const char *const datas[] = {"hello", "\"\\ud800\"", "{\"a\":1"};
    char err[256] = "";
    enum { DEEP = 1000 };
    char *deep = malloc(2 * DEEP);

    (void)state;
    assert_non_null(deep);
    memset(deep, '[', DEEP);
    memset(deep + DEEP, ']', DEEP);
    for (size_t d = 0; d < sizeof(dcts) / sizeof(dcts[0]); d++) {
        for (size_t k = 0; k <= sizeof(datas) / sizeof(datas[0]); k++) {
            const char *data = k < 3 ? datas[k] : deep;
            size_t n = k < 3 ? strlen(datas[k]) : 2 * DEEP;
            char head[256];
            snprintf(head, sizeof(head), "{" BASE ",\"datacontenttype\":\"%s\"}", dcts[d]);
            struct td_event *ev = decode(head);
            assert_int_equal(td_event_set_data(ev, data, n), 0);
            size_t len = 0;
            char *json = td_ce_to_json(ev, &len);
            assert_non_null(json);
            struct td_event *back = td_ce_from_json(json, len, err, sizeof(err));
            if (back == NULL) {
                fail_msg("%s: own output refused: %s", dcts[d], err);
            }
            if (back->data_len != n || memcmp(back->data, data, n) != 0) {
                fail_msg("%s: data '%.40s' came back as '%.40s'", dcts[d], data,
                         (const char *)back->data);
            }
            td_event_unref(back);
            free(json);
            td_event_unref(ev);
        }
    }
    /* One level less still goes as "data", verbatim. */
    struct td_event *ev = decode("{" BASE ",\"datacontenttype\":\"application/json\"}");
    assert_int_equal(td_event_set_data(ev, deep + 1, 2 * (DEEP - 1)), 0);
    char *json = td_ce_to_json(ev, NULL);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"data\":[[["));
    free(json);
    td_event_unref(ev);
    free(deep);
}

/* A batch hands each element's own text to the decoder, so the same holds in batched mode. */
static void test_batch_keeps_numbers(void **state)
{
    static const char batch[] = "[{" BASE ",\"data\":{\"n\":12345678901234567890}},\n"
                                " {" BASE ",\"data\":[0.1000000000000000055511151231257827]} ]";
    struct td_event **evs = NULL;
    size_t n = 0;
    char err[256] = "";

    (void)state;
    assert_int_equal(td_ce_batch_decode(batch, sizeof(batch) - 1, &evs, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_data(evs[0], "{\"n\":12345678901234567890}");
    assert_data(evs[1], "[0.1000000000000000055511151231257827]");
    td_ce_batch_free(evs, n);

    /* Blanks may follow the array, nothing else (as after a single event). */
    assert_int_equal(td_ce_batch_decode("[] \r\n", 5, &evs, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    td_ce_batch_free(evs, n);
    assert_int_equal(td_ce_batch_decode("[]x", 3, &evs, &n, err, sizeof(err)), -1);
    assert_string_equal(err, "batch has bytes after its JSON array");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strict_accepts),
        cmocka_unit_test(test_strict_refuses),
        cmocka_unit_test(test_strict_depth),
        cmocka_unit_test(test_member_span),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_element_next),
        cmocka_unit_test(test_from_json_keeps_numbers),
        cmocka_unit_test(test_to_json_keeps_numbers),
        cmocka_unit_test(test_to_json_data_base64_when_needed),
        cmocka_unit_test(test_batch_keeps_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
