/* test_ce_amqp.c - unit tests of the CloudEvents AMQP binding (broker/wire/ce_amqp.c): binary mode
 * with both prefixes and typed values, structured mode, wrapping (message-id or SHA-256 id,
 * timestamp, content type, headers as extensions), hostile properties (huge and nested tables,
 * invalid UTF-8, NULs, oversized values, binary body with a JSON content type) and the
 * encoder's round trip. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <amqp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ce_amqp.h"
#include "ce_json.h"
#include "cloudevent.h"

static amqp_table_entry_t str_entry(const char *k, const char *v)
{
    amqp_table_entry_t e = {.key = amqp_cstring_bytes(k)};
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_cstring_bytes(v);
    return e;
}

static amqp_basic_properties_t props_with(amqp_table_entry_t *e, int n)
{
    amqp_basic_properties_t p = {0};
    p._flags = AMQP_BASIC_HEADERS_FLAG;
    p.headers.entries = e;
    p.headers.num_entries = n;
    return p;
}

static struct td_event *decode(const amqp_basic_properties_t *p, const char *body, bool *wrapped,
                               char *err)
{
    return td_ce_from_amqp(p, body, strlen(body), "q", "dflt.type", "/dflt", wrapped, err, 256);
}

static void test_binary(void **state)
{
    amqp_table_entry_t e[6] = {
        str_entry("cloudEvents:specversion", "1.0"),  str_entry("cloudEvents:id", "e1"),
        str_entry("cloudEvents_type", "t"),           str_entry("CloudEvents:source", "/s"),
        {.key = amqp_cstring_bytes("cloudEvents:n")}, str_entry("other", "ignored")};
    e[4].value.kind = AMQP_FIELD_KIND_I32;
    e[4].value.value.i32 = -7;
    amqp_basic_properties_t p = props_with(e, 6);
    p._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
    p.content_type = amqp_cstring_bytes("text/plain");
    bool wrapped = true;
    char err[256] = "";
    struct td_event *ev = decode(&p, "hi", &wrapped, err);
    assert_non_null(ev);
    assert_false(wrapped);
    assert_string_equal(td_event_get(ev, "id"), "e1");
    assert_string_equal(td_event_get(ev, "type"), "t");
    assert_string_equal(td_event_get(ev, "source"), "/s");
    assert_string_equal(td_event_get(ev, "n"), "-7");
    assert_string_equal(td_event_get(ev, "datacontenttype"), "text/plain");
    assert_null(td_event_get(ev, "other"));
    assert_int_equal(ev->data_len, 2);
    td_event_unref(ev);
}

static void test_binary_invalid(void **state)
{
    char err[256] = "";
    bool wrapped;
    /* missing id */
    amqp_table_entry_t e[3] = {str_entry("cloudEvents:specversion", "1.0"),
                               str_entry("cloudEvents:type", "t"),
                               str_entry("cloudEvents:source", "/s")};
    amqp_basic_properties_t p = props_with(e, 3);
    assert_null(decode(&p, "", &wrapped, err));
    assert_non_null(strstr(err, "id"));
    /* a table as an attribute value */
    amqp_table_entry_t inner = str_entry("a", "b");
    amqp_table_entry_t e2[4] = {str_entry("cloudEvents:specversion", "1.0"),
                                str_entry("cloudEvents:id", "x"),
                                str_entry("cloudEvents:source", "/s"),
                                {.key = amqp_cstring_bytes("cloudEvents:type")}};
    e2[3].value.kind = AMQP_FIELD_KIND_TABLE;
    e2[3].value.value.table.num_entries = 1;
    e2[3].value.value.table.entries = &inner;
    p = props_with(e2, 4);
    err[0] = '\0';
    assert_null(decode(&p, "", &wrapped, err));
    assert_non_null(strstr(err, "'type'"));
    /* invalid UTF-8 in an attribute, a bad attribute name */
    amqp_table_entry_t e3[5] = {
        str_entry("cloudEvents:specversion", "1.0"), str_entry("cloudEvents:id", "x"),
        str_entry("cloudEvents:type", "t"), str_entry("cloudEvents:source", "\xff\xfe"),
        str_entry("cloudEvents:Bad-Name", "v")};
    p = props_with(e3, 4);
    assert_null(decode(&p, "", &wrapped, err));
    p = props_with(e3, 5);
    e3[3] = str_entry("cloudEvents:source", "/ok");
    assert_null(decode(&p, "", &wrapped, err));
    assert_non_null(strstr(err, "invalid attribute name"));
    /* a boolean or an integer where CloudEvents wants a string (fuzz_ce_amqp found a boolean
     * `type` that then became "type":true in the JSON format) */
    amqp_table_entry_t e4[4] = {str_entry("cloudEvents:specversion", "1.0"),
                                str_entry("cloudEvents:id", "x"),
                                str_entry("cloudEvents:source", "/s"),
                                {.key = amqp_cstring_bytes("cloudEvents:type")}};
    e4[3].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    e4[3].value.value.boolean = 1;
    p = props_with(e4, 4);
    err[0] = '\0';
    assert_null(decode(&p, "", &wrapped, err));
    assert_non_null(strstr(err, "'type' must be a string"));
    e4[3] = str_entry("cloudEvents:type", "t");
    e4[1].value.kind = AMQP_FIELD_KIND_I64;
    e4[1].value.value.i64 = 42;
    err[0] = '\0';
    assert_null(decode(&p, "", &wrapped, err));
    assert_non_null(strstr(err, "'id' must be a string"));
    /* the wrapper used for its dead letter always works */
    struct td_event *ev = td_ce_wrap_amqp(&p, "b", 1, "q", "t", "/s");
    assert_non_null(ev);
    td_event_unref(ev);
}

static void test_structured(void **state)
{
    amqp_basic_properties_t p = {0};
    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG;
    p.content_type = amqp_cstring_bytes("application/cloudevents+json; charset=utf-8");
    bool wrapped = true;
    char err[256];
    struct td_event *ev = decode(
        &p, "{\"specversion\":\"1.0\",\"id\":\"s1\",\"type\":\"t\",\"source\":\"/s\",\"data\":{}}",
        &wrapped, err);
    assert_non_null(ev);
    assert_false(wrapped);
    assert_string_equal(td_event_get(ev, "id"), "s1");
    td_event_unref(ev);
    assert_null(decode(&p, "{not json", &wrapped, err));
}

static void test_wrapped(void **state)
{
    amqp_table_entry_t e[5] = {
        str_entry("X-Tenant", "acme"),
        str_entry("id", "no-override"),
        {.key = amqp_cstring_bytes("flag")},
        {.key = amqp_cstring_bytes("when")},
        str_entry("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")};
    e[2].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    e[2].value.value.boolean = 1;
    e[3].value.kind = AMQP_FIELD_KIND_TIMESTAMP;
    e[3].value.value.u64 = 1700000000;
    amqp_basic_properties_t p = props_with(e, 5);
    p._flags |= AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    p.timestamp = 1700000000;
    p.content_type = amqp_cstring_bytes("application/json");
    bool wrapped = false;
    char err[256];
    struct td_event *ev = decode(&p, "{\"a\":1}", &wrapped, err);
    assert_non_null(ev);
    assert_true(wrapped);
    /* a W3C traceparent header is the distributed tracing extension's attribute (tracing) */
    assert_string_equal(td_event_get(ev, "traceparent"),
                        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    /* sha256("q\0{\"a\":1}") */
    const char *id = td_event_get(ev, "id");
    assert_int_equal(strlen(id), 64);
    struct td_event *again = decode(&p, "{\"a\":1}", &wrapped, err);
    assert_string_equal(td_event_get(again, "id"), id);
    struct td_event *other = decode(&p, "{\"a\":2}", &wrapped, err);
    assert_string_not_equal(td_event_get(other, "id"), id);
    assert_string_equal(td_event_get(ev, "type"), "dflt.type");
    assert_string_equal(td_event_get(ev, "source"), "/dflt");
    assert_string_equal(td_event_get(ev, "time"), "2023-11-14T22:13:20.000Z");
    assert_string_equal(td_event_get(ev, "datacontenttype"), "application/json");
    assert_string_equal(td_event_get(ev, "xtenant"), "acme");
    assert_string_equal(td_event_get(ev, "flag"), "true");
    assert_string_equal(td_event_get(ev, "when"), "2023-11-14T22:13:20.000Z");
    assert_string_equal(td_event_get(ev, "amqpheadersdropped"), "1"); /* "id" */
    assert_int_equal(td_event_validate(ev, err, sizeof(err)), 0);
    td_event_unref(ev);
    td_event_unref(again);
    td_event_unref(other);

    p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    p.message_id = amqp_cstring_bytes("m-1");
    ev = decode(&p, "x", &wrapped, err);
    assert_string_equal(td_event_get(ev, "id"), "m-1");
    td_event_unref(ev);

    ev = td_ce_from_amqp(NULL, NULL, 0, "q", "t", "/s", &wrapped, err, sizeof(err));
    assert_non_null(ev);
    assert_true(wrapped);
    td_event_unref(ev);
}

static void test_hostile(void **state)
{
    enum { N = 20000 };
    amqp_table_entry_t *e = calloc(N + 4, sizeof(*e));
    char(*keys)[16] = calloc(N, sizeof(*keys));
    assert_non_null(e);
    assert_non_null(keys);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "h%d", i);
        e[i] = str_entry(keys[i], "v");
    }
    /* nested tables 3 deep and an array */
    amqp_table_entry_t deep = str_entry("z", "z");
    amqp_table_entry_t mid = {.key = amqp_cstring_bytes("m")};
    mid.value.kind = AMQP_FIELD_KIND_TABLE;
    mid.value.value.table.num_entries = 1;
    mid.value.value.table.entries = &deep;
    e[N].key = amqp_cstring_bytes("nested");
    e[N].value.kind = AMQP_FIELD_KIND_TABLE;
    e[N].value.value.table.num_entries = 1;
    e[N].value.value.table.entries = &mid;
    e[N + 1].key = amqp_cstring_bytes("arr");
    e[N + 1].value.kind = AMQP_FIELD_KIND_ARRAY;
    /* a key with a NUL inside, an empty key */
    e[N + 2].key = (amqp_bytes_t){.len = 3, .bytes = "a\0b"};
    e[N + 2].value.kind = AMQP_FIELD_KIND_VOID;
    e[N + 3].key = (amqp_bytes_t){.len = 0, .bytes = ""};
    e[N + 3].value.kind = AMQP_FIELD_KIND_VOID;
    amqp_basic_properties_t p = props_with(e, N + 4);
    /* invalid UTF-8 in message-id and content type; a binary body with a JSON type */
    p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
    p.message_id = (amqp_bytes_t){.len = 4, .bytes = "\xc3\x28\x00z"};
    p.content_type = (amqp_bytes_t){.len = 17, .bytes = "application/json\xff"};
    unsigned char body[256];
    for (int i = 0; i < 256; i++) {
        body[i] = (unsigned char)i;
    }
    bool wrapped = false;
    char err[256];
    struct td_event *ev =
        td_ce_from_amqp(&p, body, sizeof(body), "q", "t", "/s", &wrapped, err, sizeof(err));
    assert_non_null(ev);
    assert_true(wrapped);
    assert_int_equal(td_event_validate(ev, err, sizeof(err)), 0);
    assert_string_equal(td_event_get(ev, "id"), "\xEF\xBF\xBD(\xEF\xBF\xBDz");
    assert_string_equal(td_event_get(ev, "datacontenttype"), "application/json\xEF\xBF\xBD");
    char want[16];
    snprintf(want, sizeof(want), "%d", N + 4 - TD_AMQP_MAX_HEADER_ATTRS);
    assert_string_equal(td_event_get(ev, "amqpheadersdropped"), want);
    assert_int_equal(ev->data_len, 256);
    /* structured JSON of it still works (data_base64: the body is not JSON) */
    size_t len;
    char *json = td_ce_to_json(ev, &len);
    assert_non_null(json);
    assert_non_null(strstr(json, "data_base64"));
    free(json);
    td_event_unref(ev);

    /* too many binary-mode attributes */
    for (int i = 0; i < 300; i++) {
        snprintf(keys[i], sizeof(keys[i]), "cloudEvents:a%d", i);
        e[i] = str_entry(keys[i], "v");
    }
    p = props_with(e, 300);
    assert_null(td_ce_from_amqp(&p, "", 0, "q", "t", "/s", &wrapped, err, sizeof(err)));
    assert_non_null(strstr(err, "more than"));
    free(e);
    free(keys);
}

static void test_encode_round_trip(void **state)
{
    struct td_event *ev = td_event_new();
    assert_int_equal(td_event_set(ev, "specversion", "1.0"), 0);
    assert_int_equal(td_event_set(ev, "id", "r1"), 0);
    assert_int_equal(td_event_set(ev, "type", "t"), 0);
    assert_int_equal(td_event_set(ev, "source", "/s"), 0);
    assert_int_equal(td_event_set(ev, "datacontenttype", "application/json"), 0);
    assert_int_equal(td_event_set_typed(ev, "knativeerrorcode", "400", TD_CE_INTEGER), 0);
    assert_int_equal(td_event_set_typed(ev, "flag", "false", TD_CE_BOOLEAN), 0);
    assert_int_equal(td_event_set_data(ev, "{\"k\":1}", 7), 0);
    struct td_amqp_out *out = td_ce_to_amqp(ev);
    assert_non_null(out);
    const amqp_basic_properties_t *p = (const amqp_basic_properties_t *)td_amqp_out_props(out);
    assert_int_equal(p->delivery_mode, AMQP_DELIVERY_PERSISTENT);
    assert_memory_equal(p->message_id.bytes, "r1", 2);
    assert_memory_equal(p->content_type.bytes, "application/json", 16);
    size_t len;
    const void *body = td_amqp_out_body(out, &len);
    bool wrapped = true;
    char err[256];
    struct td_event *back = td_ce_from_amqp(p, body, len, "q", "x", "/x", &wrapped, err, 256);
    assert_non_null(back);
    assert_false(wrapped);
    assert_string_equal(td_event_get(back, "id"), "r1");
    assert_string_equal(td_event_get(back, "knativeerrorcode"), "400");
    assert_string_equal(td_event_get(back, "flag"), "false");
    assert_string_equal(td_event_get(back, "datacontenttype"), "application/json");
    assert_int_equal(back->data_len, 7);
    assert_memory_equal(back->data, "{\"k\":1}", 7);
    td_event_unref(back);
    td_amqp_out_free(out);
    td_amqp_out_free(NULL);
    td_event_unref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary),     cmocka_unit_test(test_binary_invalid),
        cmocka_unit_test(test_structured), cmocka_unit_test(test_wrapped),
        cmocka_unit_test(test_hostile),    cmocka_unit_test(test_encode_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
