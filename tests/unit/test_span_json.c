/* test_span_json.c - the OTLP/JSON encoding of spans (span_json.h): the field names and value
 * forms of the OTLP JSON mapping (hex ids, integer enums, 64-bit integers as strings), escaping,
 * optional fields, and a batch as an ExportTraceServiceRequest. Parsed back with cJSON. (The
 * integration test test_tracing.py decodes real exports with the official protobuf definitions.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "span_json.h"

static const uint8_t trace_id[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                     0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t span_id[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
static const uint8_t parent_id[8] = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31};

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_span_fields(void **state)
{
    const struct td_span_attr at[] = {
        {.key = "triggerd.trigger", .str = "resize \"x\"\n"},
        {.key = "http.response.status_code", .num = 503},
        {.key = "big", .num = INT64_MAX},
    };
    const struct td_span_rec r = {
        .trace_id = trace_id,
        .span_id = span_id,
        .parent_id = parent_id,
        .trace_state = "vendor=abc",
        .name = "deliver resize",
        .kind = TD_SPAN_CLIENT,
        .start_ns = 1700000000123456789,
        .end_ns = 1700000000223456789,
        .status = TD_STATUS_ERROR,
        .status_msg = "HTTP 503",
        .attrs = at,
        .nattrs = 3,
    };
    size_t len = 0;
    char *json = td_span_json(&r, &len);
    assert_non_null(json);
    assert_int_equal(strlen(json), len);
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    assert_string_equal(str(j, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(str(j, "spanId"), "00f067aa0ba902b7");
    assert_string_equal(str(j, "parentSpanId"), "b7ad6b7169203331");
    assert_string_equal(str(j, "traceState"), "vendor=abc");
    assert_string_equal(str(j, "name"), "deliver resize");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "kind")->valueint, 3);
    /* int64 as decimal strings: a JSON number would lose precision in many parsers */
    assert_string_equal(str(j, "startTimeUnixNano"), "1700000000123456789");
    assert_string_equal(str(j, "endTimeUnixNano"), "1700000000223456789");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(st, "code")->valueint, 2);
    assert_string_equal(str(st, "message"), "HTTP 503");
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(j, "attributes");
    assert_int_equal(cJSON_GetArraySize(attrs), 3);
    const cJSON *a0 = cJSON_GetArrayItem(attrs, 0);
    assert_string_equal(str(a0, "key"), "triggerd.trigger");
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(a0, "value"), "stringValue"),
                        "resize \"x\"\n");
    const cJSON *a1 = cJSON_GetArrayItem(attrs, 1);
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(a1, "value"), "intValue"), "503");
    const cJSON *a2 = cJSON_GetArrayItem(attrs, 2);
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(a2, "value"), "intValue"),
                        "9223372036854775807");
    cJSON_Delete(j);
    free(json);
}

static void test_span_optional(void **state)
{
    /* a root span without trace state, status unset, no attributes; an end before the start
     * (a clock step) is written as the start */
    const struct td_span_rec r = {
        .trace_id = trace_id,
        .span_id = span_id,
        .name = "process clicks",
        .kind = TD_SPAN_CONSUMER,
        .start_ns = 2000,
        .end_ns = 1000,
    };
    size_t len = 0;
    char *json = td_span_json(&r, &len);
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "parentSpanId"));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "traceState"));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "status"));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "kind")->valueint, 5);
    assert_string_equal(str(j, "endTimeUnixNano"), "2000");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "attributes")), 0);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "links"));
    cJSON_Delete(j);
    free(json);
}

static void test_span_link(void **state)
{
    const struct td_span_rec r = {.trace_id = trace_id,
                                  .span_id = span_id,
                                  .name = "process in",
                                  .kind = TD_SPAN_CONSUMER,
                                  .link_trace_id = trace_id,
                                  .link_span_id = parent_id};
    size_t len = 0;
    char *json = td_span_json(&r, &len);
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    const cJSON *links = cJSON_GetObjectItemCaseSensitive(j, "links");
    assert_int_equal(cJSON_GetArraySize(links), 1);
    const cJSON *l = cJSON_GetArrayItem(links, 0);
    assert_string_equal(str(l, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(str(l, "spanId"), "b7ad6b7169203331");
    cJSON_Delete(j);
    free(json);
}

static void test_batch(void **state)
{
    const struct td_span_rec r = {
        .trace_id = trace_id, .span_id = span_id, .name = "s", .kind = TD_SPAN_PRODUCER};
    char *spans[2];
    size_t lens[2];
    spans[0] = td_span_json(&r, &lens[0]);
    spans[1] = td_span_json(&r, &lens[1]);
    size_t len = 0;
    char *body = td_span_batch_json(spans, lens, 2, "svc \"a\"", &len);
    assert_non_null(body);
    cJSON *j = cJSON_Parse(body);
    assert_non_null(j);
    const cJSON *rs = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "resourceSpans"), 0);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(rs, "resource");
    const cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res, "attributes"), 0);
    assert_string_equal(str(a0, "key"), "service.name");
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(a0, "value"), "stringValue"),
                        "svc \"a\"");
    const cJSON *ss = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(rs, "scopeSpans"), 0);
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(ss, "scope"), "name"), "triggerd");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ss, "spans")), 2);
    cJSON_Delete(j);
    free(body);
    free(spans[0]);
    free(spans[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span_fields),
        cmocka_unit_test(test_span_optional),
        cmocka_unit_test(test_span_link),
        cmocka_unit_test(test_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
