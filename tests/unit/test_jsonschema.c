/* test_jsonschema.c - unit tests for the payload validator (jsonschema.h): every supported
 * keyword with a passing and a failing instance, the first-error message and its JSON
 * pointer, local $ref, refused keywords and bad schemas at load time, loading from a file
 * relative to the trigger file, and hostile input (deep data, $ref cycles).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonschema.h"

static struct td_jsonschema *parse(const char *text)
{
    char err[512];
    struct td_jsonschema *s = td_jsonschema_parse(text, strlen(text), err, sizeof(err));
    if (!s) {
        fail_msg("schema %s: %s", text, err);
    }
    return s;
}

/* want_err NULL: the instance must be valid; else invalid with want_err in the message. */
static void check(const struct td_jsonschema *s, const char *inst, const char *want_err)
{
    char err[512] = "";
    int rc = td_jsonschema_validate(s, inst, inst ? strlen(inst) : 0, err, sizeof(err));
    if (!want_err && rc != 0) {
        fail_msg("%s: invalid (%s), want valid", inst, err);
    }
    if (want_err && (rc == 0 || !strstr(err, want_err))) {
        fail_msg("%s: rc %d '%s', want an error containing '%s'", inst, rc, err, want_err);
    }
}

static const char order_schema[] =
    "{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\", \"title\": \"order\","
    " \"type\": \"object\", \"required\": [\"id\", \"items\"], \"additionalProperties\": false,"
    " \"properties\": {"
    "   \"id\": {\"type\": \"string\", \"pattern\": \"^ord-[0-9]+$\"},"
    "   \"total\": {\"type\": \"number\", \"minimum\": 0, \"exclusiveMaximum\": 10000},"
    "   \"status\": {\"enum\": [\"new\", \"paid\"]},"
    "   \"items\": {\"type\": \"array\", \"minItems\": 1, \"items\": {\"$ref\": \"#/$defs/item\"}},"
    "   \"note\": {\"type\": [\"string\", \"null\"], \"maxLength\": 5}"
    " },"
    " \"$defs\": {\"item\": {\"type\": \"object\", \"required\": [\"sku\"],"
    "   \"properties\": {\"sku\": {\"type\": \"string\", \"minLength\": 2},"
    "                  \"qty\": {\"type\": \"integer\", \"minimum\": 1, \"multipleOf\": 1}}}}}";

static void test_object_schema(void **state)
{
    struct td_jsonschema *s = parse(order_schema);
    check(s, "{\"id\":\"ord-1\",\"items\":[{\"sku\":\"ab\",\"qty\":2}]}", NULL);
    check(s, "{\"id\":\"ord-1\",\"items\":[{\"sku\":\"ab\"}],\"note\":null,\"status\":\"paid\"}",
          NULL);
    check(s, "{\"id\":\"ord-1\",\"items\":[{\"sku\":\"ab\"}],\"note\":\"héllo\"}", NULL);
    check(s, "{\"items\":[{\"sku\":\"ab\"}]}", "at /: required property 'id' is missing");
    check(s, "{\"id\":\"x-1\",\"items\":[{\"sku\":\"ab\"}]}",
          "at /id: string does not match the pattern");
    check(s, "{\"id\":\"ord-1\",\"items\":[]}", "at /items: fewer than 1 items");
    check(s, "{\"id\":\"ord-1\",\"items\":[{\"sku\":\"ab\"},{\"sku\":\"b\"}]}",
          "at /items/1/sku: string shorter than 2");
    check(s, "{\"id\":\"ord-1\",\"items\":[{\"sku\":\"ab\",\"qty\":1.5}]}",
          "at /items/0/qty: expected integer, got number");
    check(s, "{\"id\":\"ord-1\",\"items\":[{\"sku\":\"ab\",\"qty\":0}]}",
          "at /items/0/qty: 0 is less than the minimum 1");
    check(s, "{\"id\":\"ord-1\",\"items\":[{\"sku\":\"ab\"}],\"total\":10000}",
          "at /total: 10000 is not less than 10000");
    check(s, "{\"id\":\"ord-1\",\"items\":[{\"sku\":\"ab\"}],\"status\":\"gone\"}",
          "at /status: value is not one of 'enum'");
    check(s, "{\"id\":\"ord-1\",\"items\":[{\"sku\":\"ab\"}],\"extra\":1}",
          "at /: property 'extra' is not allowed");
    check(s, "{\"id\":\"ord-1\",\"items\":[{\"sku\":\"ab\"}],\"note\":\"toolong\"}",
          "at /note: string longer than 5");
    check(s, "{\"id\":\"ord-1\",\"items\":[{\"sku\":\"ab\"}],\"note\":3}",
          "expected string or null, got integer");
    check(s, "[1]", "at /: expected object, got array");
    check(s, "{\"id\": ", "not JSON");
    check(s, NULL, "expected object, got null"); /* no data is JSON null */
    td_jsonschema_free(s);
}

static void test_combinators(void **state)
{
    struct td_jsonschema *s =
        parse("{\"anyOf\": [{\"type\": \"string\"}, {\"type\": \"integer\", \"maximum\": 3}],"
              " \"not\": {\"const\": \"forbidden\"}}");
    check(s, "\"x\"", NULL);
    check(s, "2", NULL);
    check(s, "7", "matches none of the 'anyOf' schemas");
    check(s, "\"forbidden\"", "must not match the 'not' schema");
    td_jsonschema_free(s);

    s = parse("{\"oneOf\": [{\"type\": \"number\"}, {\"type\": \"integer\"}]}");
    check(s, "1.5", NULL);
    check(s, "1", "matches 2 of the 'oneOf' schemas");
    td_jsonschema_free(s);

    s = parse("{\"allOf\": [{\"minProperties\": 1}, {\"maxProperties\": 2},"
              " {\"additionalProperties\": {\"type\": \"boolean\"}}]}");
    check(s, "{\"a\": true}", NULL);
    check(s, "{}", "fewer than 1 properties");
    check(s, "{\"a\": true, \"b\": false, \"c\": true}", "more than 2 properties");
    check(s, "{\"a\": 1}", "at /a: expected boolean, got integer");
    td_jsonschema_free(s);

    s = parse("{\"type\": \"array\", \"uniqueItems\": true, \"maxItems\": 3}");
    check(s, "[1, \"1\", {\"a\": 1}]", NULL);
    check(s, "[{\"a\": 1, \"b\": 2}, {\"b\": 2, \"a\": 1}]", "not unique");
    check(s, "[1, 2, 3, 4]", "more than 3 items");
    td_jsonschema_free(s);

    s = parse("false");
    check(s, "1", "no value is allowed here");
    td_jsonschema_free(s);
    s = parse("{\"properties\": {\"a~/b\": false}}");
    check(s, "{\"a~/b\": 1}", "at /a~0~1b: no value is allowed");
    td_jsonschema_free(s);
}

static void test_bad_schemas(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } bad[] = {
        {"{", "not valid JSON"},
        {"3", "a schema must be an object or a boolean"},
        {"{\"type\": \"float\"}", "'type' must be one of"},
        {"{\"patternProperties\": {}}", "'patternProperties' is not supported"},
        {"{\"properties\": {\"a\": {\"if\": true}}}", "'if' is not supported"},
        {"{\"$ref\": \"#/$defs/missing\"}", "does not resolve"},
        {"{\"$ref\": \"other.json#/a\"}", "does not resolve"},
        {"{\"pattern\": \"(\"}", "not a POSIX extended regular expression"},
        {"{\"minLength\": -1}", "non-negative integer"},
        {"{\"multipleOf\": 0}", "greater than 0"},
        {"{\"required\": [1]}", "array of strings"},
        {"{\"items\": [{}]}", "tuple 'items' is not supported"},
        {"{\"anyOf\": []}", "non-empty array"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[512] = "";
        struct td_jsonschema *s =
            td_jsonschema_parse(bad[i].text, strlen(bad[i].text), err, sizeof(err));
        if (s || !strstr(err, bad[i].want)) {
            fail_msg("%s: loaded=%d err '%s', want '%s'", bad[i].text, s != NULL, err, bad[i].want);
        }
    }
}

static void test_load_file(void **state)
{
    char dir[] = "/tmp/td-jsonschema-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], trig[256], err[512];
    snprintf(path, sizeof(path), "%s/s.json", dir);
    snprintf(trig, sizeof(trig), "%s/triggers.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"type\": \"object\", \"required\": [\"a\"]}", f);
    fclose(f);
    struct td_jsonschema *s = td_jsonschema_load("s.json", trig, err, sizeof(err));
    assert_non_null(s);
    check(s, "{\"a\": 1}", NULL);
    check(s, "{}", "required property 'a'");
    td_jsonschema_free(s);
    s = td_jsonschema_load(path, NULL, err, sizeof(err));
    assert_non_null(s);
    td_jsonschema_free(s);
    assert_null(td_jsonschema_load("nope.json", trig, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot read"));
    assert_non_null(strstr(err, "nope.json"));
    unlink(path);
    rmdir(dir);
    td_jsonschema_free(NULL);
}

static void test_hostile(void **state)
{
    /* a $ref cycle is an error for the instance, not an endless loop */
    struct td_jsonschema *s = parse("{\"$ref\": \"#\"}");
    check(s, "1", "nested deeper than");
    td_jsonschema_free(s);
    /* deep data under a recursive schema */
    s = parse("{\"type\": \"array\", \"items\": {\"$ref\": \"#\"}}");
    size_t n = 900;
    char *deep = malloc(2 * n + 1);
    assert_non_null(deep);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    check(s, deep, "nested deeper than");
    check(s, "[[[]]]", NULL);
    free(deep);
    td_jsonschema_free(s);
}

/* uniqueItems on untrusted data (issue 11, Low 12): all pairs of 300,000 items are 4.5e10
 * comparisons (minutes, past the CTest timeout); hashing and sorting take a fraction of a second.
 * Equal values in every JSON shape are still found, object members in any order. */
static void test_unique_items_large(void **state)
{
    struct td_jsonschema *s = parse("{\"type\": \"array\", \"uniqueItems\": true}");
    const size_t n = 300000;
    size_t cap = n * 12 + 64;
    char *json = malloc(cap);
    size_t len = 0;

    assert_non_null(json);
    json[len++] = '[';
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(json + len, cap - len, "%s%zu", i ? "," : "", i);
    }
    strcpy(json + len, "]");
    check(s, json, NULL);
    /* the same with a duplicate at the very end */
    snprintf(json + len, cap - len, ",17]");
    check(s, json, "items are not unique");
    free(json);

    check(s, "[1, 1.0]", "items are not unique");
    check(s, "[0, -0]", "items are not unique");
    check(s, "[1, \"1\", true, null, [1], {\"a\": 1}]", NULL);
    check(s, "[{\"a\": 1, \"b\": [2, {\"c\": null}]}, {\"b\": [2, {\"c\": null}], \"a\": 1}]",
          "items are not unique");
    check(s, "[{\"a\": 1, \"b\": 2}, {\"a\": 2, \"b\": 1}]", NULL);
    check(s, "[[1, 2], [2, 1]]", NULL);
    check(s, "[\"x\", \"y\", \"x\"]", "items are not unique");
    check(s, "[]", NULL);
    td_jsonschema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unique_items_large), cmocka_unit_test(test_object_schema),
        cmocka_unit_test(test_combinators),        cmocka_unit_test(test_bad_schemas),
        cmocka_unit_test(test_load_file),          cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
