/* test_ce_kafka.c - unit tests for the CloudEvents Kafka binding (ce_kafka.c): binary,
 * structured and wrapped records, the encoder the Kafka sink uses, and hostile records (bytes
 * that are not UTF-8, NULs, names with nothing valid in them, thousands of headers, a 1 MiB
 * header value, null headers), which must become an event or a reason, never a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ce_kafka.h"
#include "cloudevent.h"

/* A record under construction: up to MAXH headers. */
#define MAXH 12000

struct rec {
    struct td_kafka_record r;
    const char *names[MAXH];
    const void *values[MAXH];
    size_t lens[MAXH];
};

static void rec_init(struct rec *x, const char *key, const char *value)
{
    memset(x, 0, sizeof(*x));
    x->r.topic = "orders";
    x->r.partition = 2;
    x->r.offset = 42;
    x->r.timestamp_ms = 1700000000123;
    x->r.key = key;
    x->r.key_len = key ? strlen(key) : 0;
    x->r.value = value;
    x->r.value_len = value ? strlen(value) : 0;
    x->r.hnames = x->names;
    x->r.hvalues = x->values;
    x->r.hlens = x->lens;
}

static void hdr(struct rec *x, const char *name, const void *value, size_t len)
{
    x->names[x->r.nheaders] = name;
    x->values[x->r.nheaders] = value;
    x->lens[x->r.nheaders] = len;
    x->r.nheaders++;
}

static void hdrs(struct rec *x, const char *name, const char *value)
{
    hdr(x, name, value, strlen(value));
}

static void test_wrapped(void **state)
{
    struct rec *x = malloc(sizeof(*x));
    char err[256] = "";
    bool wrapped = false;
    rec_init(x, "user-7", "{\"a\":1}");
    hdrs(x, "Content-Type", "application/json");
    hdrs(x, "X-Trace-Id", "abc");
    struct td_event *ev = td_ce_from_kafka(&x->r, "t.type", "/src", &wrapped, err, sizeof(err));
    assert_non_null(ev);
    assert_true(wrapped);
    assert_string_equal(td_event_get(ev, "id"), "kafka:orders/2/42");
    assert_string_equal(td_event_get(ev, "type"), "t.type");
    assert_string_equal(td_event_get(ev, "source"), "/src");
    assert_string_equal(td_event_get(ev, "time"), "2023-11-14T22:13:20.123Z");
    assert_string_equal(td_event_get(ev, "partitionkey"), "user-7");
    assert_string_equal(td_event_get(ev, "datacontenttype"), "application/json");
    assert_string_equal(td_event_get(ev, "kafkaheaderxtraceid"), "abc");
    assert_null(td_event_get(ev, "traceparent"));
    assert_int_equal(ev->data_len, 7);
    assert_memory_equal(ev->data, "{\"a\":1}", 7);
    assert_int_equal(td_event_validate(ev, err, sizeof(err)), 0);
    td_event_unref(ev);
    /* the W3C trace context headers also become the distributed tracing extension */
    rec_init(x, NULL, "x");
    hdrs(x, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    hdrs(x, "TraceState", "vendor=abc");
    ev = td_ce_from_kafka(&x->r, "t", "/s", &wrapped, err, sizeof(err));
    assert_non_null(ev);
    assert_string_equal(td_event_get(ev, "traceparent"),
                        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_string_equal(td_event_get(ev, "tracestate"), "vendor=abc");
    assert_string_equal(td_event_get(ev, "kafkaheadertraceparent"),
                        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    td_event_unref(ev);
    /* no timestamp, no key, a tombstone */
    rec_init(x, NULL, NULL);
    x->r.timestamp_ms = -1;
    ev = td_ce_from_kafka(&x->r, "t", "/s", &wrapped, err, sizeof(err));
    assert_non_null(ev);
    assert_null(td_event_get(ev, "time"));
    assert_null(td_event_get(ev, "partitionkey"));
    assert_null(ev->data);
    td_event_unref(ev);
    /* no defaults to wrap with: a reason */
    rec_init(x, NULL, "x");
    assert_null(td_ce_from_kafka(&x->r, NULL, "/s", &wrapped, err, sizeof(err)));
    assert_non_null(strstr(err, "not a CloudEvent"));
    free(x);
}

static void test_binary(void **state)
{
    struct rec *x = malloc(sizeof(*x));
    char err[256] = "";
    bool wrapped = true;
    rec_init(x, "k", "hello");
    hdrs(x, "ce_specversion", "1.0");
    hdrs(x, "ce_id", "e-1");
    hdrs(x, "ce_source", "/orders");
    hdrs(x, "ce_type", "com.example.order");
    hdrs(x, "ce_traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    hdrs(x, "content-type", "text/plain");
    hdrs(x, "other", "ignored");
    struct td_event *ev = td_ce_from_kafka(&x->r, "t", "/s", &wrapped, err, sizeof(err));
    assert_non_null(ev);
    assert_false(wrapped);
    assert_string_equal(td_event_get(ev, "id"), "e-1");
    assert_string_equal(td_event_get(ev, "type"), "com.example.order");
    assert_string_equal(td_event_get(ev, "datacontenttype"), "text/plain");
    assert_string_equal(td_event_get(ev, "partitionkey"), "k");
    assert_non_null(td_event_get(ev, "traceparent"));
    assert_null(td_event_get(ev, "other"));
    assert_memory_equal(ev->data, "hello", 5);

    /* round trip through the sink's encoder */
    struct td_kafka_headers h;
    assert_int_equal(td_ce_to_kafka(ev, &h), 0);
    assert_string_equal(h.names[0], "ce_specversion");
    struct rec *y = malloc(sizeof(*y));
    rec_init(y, td_event_get(ev, "partitionkey"), "hello");
    for (size_t i = 0; i < h.n; i++) {
        hdrs(y, h.names[i], h.values[i]);
    }
    struct td_event *back = td_ce_from_kafka(&y->r, "t", "/s", &wrapped, err, sizeof(err));
    assert_non_null(back);
    assert_false(wrapped);
    for (size_t i = 0; i < ev->nattrs; i++) {
        assert_string_equal(td_event_get(back, ev->attrs[i].name), ev->attrs[i].value);
    }
    td_event_unref(back);
    td_kafka_headers_free(&h);
    td_kafka_headers_free(&h); /* idempotent */
    td_event_unref(ev);

    /* missing required attribute: a reason */
    rec_init(x, NULL, "x");
    hdrs(x, "ce_specversion", "1.0");
    hdrs(x, "ce_id", "e-2");
    assert_null(td_ce_from_kafka(&x->r, "t", "/s", &wrapped, err, sizeof(err)));
    assert_true(strlen(err) > 0);
    free(x);
    free(y);
}

static void test_structured(void **state)
{
    struct rec *x = malloc(sizeof(*x));
    char err[256] = "";
    bool wrapped = true;
    rec_init(x, NULL,
             "{\"specversion\":\"1.0\",\"id\":\"s-1\",\"source\":\"/x\",\"type\":\"t\","
             "\"data\":{\"a\":1}}");
    hdrs(x, "content-type", "application/cloudevents+json; charset=utf-8");
    struct td_event *ev = td_ce_from_kafka(&x->r, "t", "/s", &wrapped, err, sizeof(err));
    assert_non_null(ev);
    assert_false(wrapped);
    assert_string_equal(td_event_get(ev, "id"), "s-1");
    td_event_unref(ev);
    rec_init(x, NULL, "{not json");
    hdrs(x, "content-type", "application/cloudevents+json");
    assert_null(td_ce_from_kafka(&x->r, "t", "/s", &wrapped, err, sizeof(err)));
    rec_init(x, NULL, NULL);
    hdrs(x, "content-type", "application/cloudevents+json");
    assert_null(td_ce_from_kafka(&x->r, "t", "/s", &wrapped, err, sizeof(err)));
    free(x);
}

static void test_hostile(void **state)
{
    struct rec *x = malloc(sizeof(*x));
    char err[256] = "";
    bool wrapped;
    static const char bad[] = {(char)0xff, (char)0xfe, 'x', (char)0xc3, 0, 'y'};
    /* not UTF-8, NULs, names with nothing valid, null values, a binary key */
    rec_init(x, NULL, "v");
    x->r.key = bad;
    x->r.key_len = sizeof(bad);
    hdr(x, "X-Bad", bad, sizeof(bad));
    hdr(x, "---", "v", 1);
    hdr(x, "", "v", 1);
    hdr(x, NULL, "v", 1);
    hdr(x, "nullvalue", NULL, 0);
    hdr(x, "\xff\xfe", "v", 1);
    hdr(x, "content-type", bad, sizeof(bad));
    struct td_event *ev = td_ce_from_kafka(&x->r, "t", "/s", &wrapped, err, sizeof(err));
    assert_non_null(ev);
    assert_true(wrapped);
    assert_int_equal(td_event_validate(ev, err, sizeof(err)), 0);
    assert_string_equal(td_event_get(ev, "kafkaheaderxbad"),
                        "\xEF\xBF\xBD\xEF\xBF\xBDx\xEF\xBF\xBDy");
    assert_string_equal(td_event_get(ev, "kafkaheadernullvalue"), "");
    assert_null(td_event_get(ev, "partitionkey"));
    assert_non_null(td_event_get(ev, "partitionkeybase64"));
    assert_null(td_event_get(ev, "datacontenttype"));
    assert_non_null(td_event_get(ev, "kafkaheadersdropped"));
    td_event_unref(ev);

    /* a header overriding the required attributes cannot: they are prefixed */
    rec_init(x, NULL, "v");
    hdrs(x, "id", "evil");
    hdrs(x, "type", "evil");
    ev = td_ce_from_kafka(&x->r, "t", "/s", &wrapped, err, sizeof(err));
    assert_string_equal(td_event_get(ev, "id"), "kafka:orders/2/42");
    assert_string_equal(td_event_get(ev, "kafkaheaderid"), "evil");
    td_event_unref(ev);

    /* 10 000 headers: refused with a reason, wrapped within the limit when forced */
    rec_init(x, NULL, "v");
    static char names[10000][8];
    for (int i = 0; i < 10000; i++) {
        snprintf(names[i], sizeof(names[i]), "h%d", i);
        hdr(x, names[i], "v", 1);
    }
    assert_null(td_ce_from_kafka(&x->r, "t", "/s", &wrapped, err, sizeof(err)));
    assert_non_null(strstr(err, "headers"));
    ev = td_ce_wrap_kafka(&x->r, "t", "/s");
    assert_non_null(ev);
    assert_true(ev->nattrs <= TD_KAFKA_MAX_HEADER_ATTRS + 10);
    assert_string_equal(td_event_get(ev, "kafkaheadersdropped"), "9872");
    td_event_unref(ev);

    /* a 1 MiB header value */
    size_t big_len = 1 << 20;
    char *big = malloc(big_len);
    memset(big, 'a', big_len);
    rec_init(x, NULL, "v");
    hdr(x, "big", big, big_len);
    assert_null(td_ce_from_kafka(&x->r, "t", "/s", &wrapped, err, sizeof(err)));
    assert_non_null(strstr(err, "big"));
    ev = td_ce_wrap_kafka(&x->r, "t", "/s");
    assert_non_null(ev);
    assert_null(td_event_get(ev, "kafkaheaderbig"));
    td_event_unref(ev);
    free(big);

    /* binary mode with bytes that are not UTF-8, or a bad attribute name: a reason */
    rec_init(x, NULL, "v");
    hdrs(x, "ce_specversion", "1.0");
    hdrs(x, "ce_id", "1");
    hdrs(x, "ce_source", "/s");
    hdr(x, "ce_type", bad, sizeof(bad));
    assert_null(td_ce_from_kafka(&x->r, "t", "/s", &wrapped, err, sizeof(err)));
    assert_non_null(strstr(err, "UTF-8"));
    ev = td_ce_wrap_kafka(&x->r, NULL, NULL);
    assert_non_null(ev);
    assert_string_equal(td_event_get(ev, "kafkaheadercespecversion"), "1.0");
    td_event_unref(ev);
    rec_init(x, NULL, "v");
    hdrs(x, "ce_specversion", "1.0");
    hdrs(x, "ce_Bad-Name", "1");
    assert_null(td_ce_from_kafka(&x->r, "t", "/s", &wrapped, err, sizeof(err)));

    /* a malformed struct */
    x->r.hnames = NULL;
    assert_null(td_ce_from_kafka(&x->r, "t", "/s", &wrapped, err, sizeof(err)));
    assert_null(td_ce_wrap_kafka(&x->r, "t", "/s"));
    assert_null(td_ce_from_kafka(NULL, "t", "/s", &wrapped, err, sizeof(err)));
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrapped),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_structured),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
