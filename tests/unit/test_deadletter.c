/* test_deadletter.c - unit tests for the dead-letter form of an event (deadletter.h): the
 * Knative attributes and ours with their CloudEvents types, the TD_DL_DATA_MAX cap on
 * knativeerrordata (applied before base64), the original left untouched, and
 * td_deadletter_strip removing exactly what was added.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cloudevent.h"
#include "deadletter.h"

static const char *const dl_names[] = {"knativeerrordest",   "knativeerrorcode",
                                       "knativeerrordata",   "deadletterreason",
                                       "deadletterattempts", "deadlettertrigger"};

static struct td_event *original(void)
{
    struct td_event *ev = td_event_new();

    assert_non_null(ev);
    assert_int_equal(td_event_set(ev, "specversion", "1.0"), 0);
    assert_int_equal(td_event_set(ev, "id", "evt-1"), 0);
    assert_int_equal(td_event_set(ev, "source", "/orders"), 0);
    assert_int_equal(td_event_set(ev, "type", "com.example.order"), 0);
    assert_int_equal(td_event_set(ev, "datacontenttype", "application/json"), 0);
    assert_int_equal(td_event_set(ev, "myext", "keep-me"), 0);
    assert_int_equal(td_event_set_data(ev, "{\"n\":1}", 7), 0);
    return ev;
}

static const struct td_ce_attr *attr(const struct td_event *ev, const char *name)
{
    for (size_t i = 0; i < ev->nattrs; i++) {
        if (strcmp(ev->attrs[i].name, name) == 0) {
            return &ev->attrs[i];
        }
    }
    return NULL;
}

static void assert_attr(const struct td_event *ev, const char *name, const char *value,
                        enum td_ce_vtype type)
{
    const struct td_ce_attr *a = attr(ev, name);

    if (!a) {
        fail_msg("attribute %s missing", name);
    }
    assert_string_equal(a->value, value);
    assert_int_equal(a->type, type);
}

static void test_attributes_and_types(void **state)
{
    struct td_event *ev = original();
    const unsigned char body[] = "service unavailable";
    struct td_event *dl =
        td_deadletter_event(ev, "resize-uploads", "http://resize.default.svc", 503, body,
                            sizeof(body) - 1, TD_DL_RETRIES_EXHAUSTED, 6);

    assert_non_null(dl);
    assert_ptr_not_equal(dl, ev);
    assert_attr(dl, "knativeerrordest", "http://resize.default.svc", TD_CE_STRING);
    assert_attr(dl, "knativeerrorcode", "503", TD_CE_INTEGER);
    char *b64 = td_base64_encode(body, sizeof(body) - 1);
    assert_attr(dl, "knativeerrordata", b64, TD_CE_STRING);
    free(b64);
    assert_attr(dl, "deadletterreason", "retries_exhausted", TD_CE_STRING);
    assert_attr(dl, "deadletterattempts", "6", TD_CE_INTEGER);
    assert_attr(dl, "deadlettertrigger", "resize-uploads", TD_CE_STRING);
    /* the original attributes and data come along */
    assert_string_equal(td_event_get(dl, "id"), "evt-1");
    assert_string_equal(td_event_get(dl, "source"), "/orders");
    assert_string_equal(td_event_get(dl, "type"), "com.example.order");
    assert_string_equal(td_event_get(dl, "myext"), "keep-me");
    assert_int_equal(dl->data_len, 7);
    assert_memory_equal(dl->data, "{\"n\":1}", 7);
    /* the dead letter is a valid CloudEvent */
    char err[256];
    assert_int_equal(td_event_validate(dl, err, sizeof(err)), 0);
    /* and the original is untouched */
    for (size_t i = 0; i < sizeof(dl_names) / sizeof(dl_names[0]); i++) {
        assert_null(td_event_get(ev, dl_names[i]));
    }
    assert_int_equal(dl->refs, 1);
    td_event_unref(dl);
    td_event_unref(ev);
}

static void test_reason_constants(void **state)
{
    struct td_event *ev = original();
    const char *const reasons[] = {TD_DL_FINAL_STATUS, TD_DL_RETRIES_EXHAUSTED,
                                   TD_DL_MAX_DELIVERIES, TD_DL_INVALID_EVENT};
    const char *const want[] = {"final_status", "retries_exhausted", "max_deliveries",
                                "invalid_event"};

    for (size_t i = 0; i < 4; i++) {
        struct td_event *dl = td_deadletter_event(ev, "t", "d", 400, NULL, 0, reasons[i], 1);
        assert_non_null(dl);
        assert_string_equal(td_event_get(dl, "deadletterreason"), want[i]);
        td_event_unref(dl);
    }
    td_event_unref(ev);
}

static void test_no_body_no_data_attribute(void **state)
{
    struct td_event *ev = original();
    struct td_event *dl =
        td_deadletter_event(ev, "t", "http://x", 0, NULL, 0, TD_DL_RETRIES_EXHAUSTED, 4);

    assert_non_null(dl);
    assert_null(td_event_get(dl, "knativeerrordata"));
    /* no response at all: code 0 */
    assert_attr(dl, "knativeerrorcode", "0", TD_CE_INTEGER);
    assert_attr(dl, "deadletterattempts", "4", TD_CE_INTEGER);
    td_event_unref(dl);

    /* an empty body is no body */
    const unsigned char empty[1] = {0};
    dl = td_deadletter_event(ev, "t", "http://x", 404, empty, 0, TD_DL_FINAL_STATUS, 1);
    assert_non_null(dl);
    assert_null(td_event_get(dl, "knativeerrordata"));
    td_event_unref(dl);
    td_event_unref(ev);
}

static void test_null_trigger_and_dest(void **state)
{
    struct td_event *ev = original();
    struct td_event *dl = td_deadletter_event(ev, NULL, NULL, 400, NULL, 0, TD_DL_INVALID_EVENT, 0);

    assert_non_null(dl);
    assert_attr(dl, "knativeerrordest", "", TD_CE_STRING);
    assert_attr(dl, "deadlettertrigger", "", TD_CE_STRING);
    assert_attr(dl, "deadletterattempts", "0", TD_CE_INTEGER);
    td_event_unref(dl);
    td_event_unref(ev);
}

static void check_cap(size_t len)
{
    struct td_event *ev = original();
    unsigned char *body = malloc(len);

    assert_non_null(body);
    for (size_t i = 0; i < len; i++) {
        body[i] = (unsigned char)(i * 7 + 3); /* binary, NULs included */
    }
    struct td_event *dl = td_deadletter_event(ev, "t", "d", 500, body, len, "final_status", 1);
    assert_non_null(dl);
    const char *data = td_event_get(dl, "knativeerrordata");
    assert_non_null(data);
    size_t kept = len < TD_DL_DATA_MAX ? len : TD_DL_DATA_MAX;
    /* base64 of exactly the first `kept` bytes */
    assert_int_equal(strlen(data), 4 * ((kept + 2) / 3));
    size_t outlen = 0;
    unsigned char *decoded = td_base64_decode(data, strlen(data), &outlen);
    assert_non_null(decoded);
    assert_int_equal(outlen, kept);
    assert_memory_equal(decoded, body, kept);
    free(decoded);
    free(body);
    td_event_unref(dl);
    td_event_unref(ev);
}

static void test_data_cap(void **state)
{
    assert_int_equal(TD_DL_DATA_MAX, 1024);
    check_cap(1);
    check_cap(1023);
    check_cap(1024);
    check_cap(1025);
    check_cap(70000);
}

static void test_existing_attributes_replaced(void **state)
{
    /* Dead-lettering a dead letter again (redrive failed): one value per attribute. */
    struct td_event *ev = original();
    struct td_event *dl1 = td_deadletter_event(ev, "t1", "d1", 503, (const unsigned char *)"a", 1,
                                               TD_DL_RETRIES_EXHAUSTED, 4);
    assert_non_null(dl1);
    struct td_event *dl2 =
        td_deadletter_event(dl1, "t2", "d2", 404, NULL, 0, TD_DL_FINAL_STATUS, 1);
    assert_non_null(dl2);
    size_t count = 0;
    for (size_t i = 0; i < dl2->nattrs; i++) {
        count += strcmp(dl2->attrs[i].name, "deadletterreason") == 0;
    }
    assert_int_equal(count, 1);
    assert_attr(dl2, "deadletterreason", "final_status", TD_CE_STRING);
    assert_attr(dl2, "knativeerrorcode", "404", TD_CE_INTEGER);
    assert_attr(dl2, "deadlettertrigger", "t2", TD_CE_STRING);
    td_event_unref(dl2);
    td_event_unref(dl1);
    td_event_unref(ev);
}

static void test_strip(void **state)
{
    struct td_event *ev = original();
    size_t nattrs = ev->nattrs;
    struct td_event *dl = td_deadletter_event(ev, "t", "http://x", 500,
                                              (const unsigned char *)"oops", 4, "final_status", 1);

    assert_non_null(dl);
    assert_int_equal(dl->nattrs, nattrs + 6);
    td_deadletter_strip(dl);
    for (size_t i = 0; i < sizeof(dl_names) / sizeof(dl_names[0]); i++) {
        assert_null(td_event_get(dl, dl_names[i]));
    }
    /* everything else stays */
    assert_int_equal(dl->nattrs, nattrs);
    for (size_t i = 0; i < ev->nattrs; i++) {
        const char *v = td_event_get(dl, ev->attrs[i].name);
        assert_non_null(v);
        assert_string_equal(v, ev->attrs[i].value);
    }
    assert_int_equal(dl->data_len, ev->data_len);
    /* stripping an event without them is a no-op */
    td_deadletter_strip(dl);
    assert_int_equal(dl->nattrs, nattrs);
    td_event_unref(dl);
    td_event_unref(ev);
}

static void test_strip_without_data_attribute(void **state)
{
    struct td_event *ev = original();
    struct td_event *dl = td_deadletter_event(ev, "t", "d", 0, NULL, 0, "retries_exhausted", 3);

    assert_non_null(dl);
    assert_int_equal(dl->nattrs, ev->nattrs + 5);
    td_deadletter_strip(dl);
    assert_int_equal(dl->nattrs, ev->nattrs);
    td_event_unref(dl);
    td_event_unref(ev);
}

/* Redelivery cannot help these: a trigger without a target marks the message failed for good. */
static void test_permanent_reasons(void **state)
{
    assert_true(td_deadletter_permanent(TD_DL_FINAL_STATUS));
    assert_true(td_deadletter_permanent(TD_DL_INVALID_EVENT));
    assert_true(td_deadletter_permanent(TD_DL_SCHEMA));
    assert_false(td_deadletter_permanent(TD_DL_RETRIES_EXHAUSTED));
    assert_false(td_deadletter_permanent(TD_DL_MAX_DELIVERIES));
    assert_false(td_deadletter_permanent(TD_DL_REPLY_FAILED));
    assert_false(td_deadletter_permanent("something new"));
    assert_false(td_deadletter_permanent(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attributes_and_types),
        cmocka_unit_test(test_permanent_reasons),
        cmocka_unit_test(test_reason_constants),
        cmocka_unit_test(test_no_body_no_data_attribute),
        cmocka_unit_test(test_null_trigger_and_dest),
        cmocka_unit_test(test_data_cap),
        cmocka_unit_test(test_existing_attributes_replaced),
        cmocka_unit_test(test_strip),
        cmocka_unit_test(test_strip_without_data_attribute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
