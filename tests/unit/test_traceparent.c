/* test_traceparent.c - W3C trace context (traceparent.h): what a receiver must accept and refuse
 * (https://www.w3.org/TR/trace-context/#traceparent-header), formatting, tracestate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "traceparent.h"

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN  "00f067aa0ba902b7"

static void test_valid(void **state)
{
    struct td_trace_ctx ctx;
    assert_int_equal(td_traceparent_parse("00-" TRACE "-" SPAN "-01", &ctx), 0);
    assert_int_equal(ctx.trace_id[0], 0x4b);
    assert_int_equal(ctx.trace_id[15], 0x36);
    assert_int_equal(ctx.span_id[0], 0x00);
    assert_int_equal(ctx.span_id[7], 0xb7);
    assert_int_equal(ctx.flags, 1);
    assert_int_equal(td_traceparent_parse("00-" TRACE "-" SPAN "-00", &ctx), 0);
    assert_int_equal(ctx.flags, 0);
    /* optional whitespace around a header value */
    assert_int_equal(td_traceparent_parse("  00-" TRACE "-" SPAN "-01\t", &ctx), 0);
}

static void test_versions(void **state)
{
    struct td_trace_ctx ctx;
    /* ff is forbidden */
    assert_int_equal(td_traceparent_parse("ff-" TRACE "-" SPAN "-01", &ctx), -1);
    /* a future version is parsed as 00; extra fields after '-' are ignored, unknown flags too */
    assert_int_equal(td_traceparent_parse("cc-" TRACE "-" SPAN "-09-what-the-future", &ctx), 0);
    assert_int_equal(ctx.flags, 1);
    assert_int_equal(td_traceparent_parse("cc-" TRACE "-" SPAN "-01", &ctx), 0);
    /* ... but not glued on without the separator */
    assert_int_equal(td_traceparent_parse("cc-" TRACE "-" SPAN "-01x", &ctx), -1);
    /* version 00 has exactly four fields */
    assert_int_equal(td_traceparent_parse("00-" TRACE "-" SPAN "-01-extra", &ctx), -1);
    /* not hex, uppercase */
    assert_int_equal(td_traceparent_parse("0g-" TRACE "-" SPAN "-01", &ctx), -1);
    assert_int_equal(td_traceparent_parse("0A-" TRACE "-" SPAN "-01", &ctx), -1);
}

static void test_invalid(void **state)
{
    struct td_trace_ctx ctx;
    memset(&ctx, 0x5a, sizeof(ctx));
    const char *bad[] = {
        NULL,
        "",
        "00",
        /* all-zero ids */
        "00-00000000000000000000000000000000-" SPAN "-01",
        "00-" TRACE "-0000000000000000-01",
        /* lengths */
        "00-4bf92f3577b34da6a3ce929d0e0e473-" SPAN "-01",
        "00-4bf92f3577b34da6a3ce929d0e0e47366-" SPAN "-01",
        "00-" TRACE "-00f067aa0ba902b-01",
        "00-" TRACE "-00f067aa0ba902b77-01",
        "00-" TRACE "-" SPAN "-1",
        "00-" TRACE "-" SPAN "-011",
        /* uppercase hex is invalid */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-" SPAN "-01",
        "00-" TRACE "-00F067AA0BA902B7-01",
        /* separators */
        "00_" TRACE "-" SPAN "-01",
        "00-" TRACE "_" SPAN "-01",
        "00-" TRACE "-" SPAN "_01",
        /* not hex */
        "00-4bf92f3577b34da6a3ce929d0e0e473z-" SPAN "-01",
        "00-" TRACE "-" SPAN "-0x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (td_traceparent_parse(bad[i], &ctx) != -1) {
            fail_msg("accepted %s", bad[i]);
        }
    }
    /* the output is untouched on failure */
    assert_int_equal(ctx.flags, 0x5a);
}

static void test_format_round_trip(void **state)
{
    struct td_trace_ctx ctx;
    assert_int_equal(td_traceparent_parse("00-" TRACE "-" SPAN "-01", &ctx), 0);
    char out[TD_TRACEPARENT_SIZE];
    td_traceparent_format(ctx.trace_id, ctx.span_id, ctx.flags, out);
    assert_string_equal(out, "00-" TRACE "-" SPAN "-01");
    assert_int_equal(strlen(out), TD_TRACEPARENT_LEN);
    td_traceparent_format(ctx.trace_id, ctx.span_id, 0, out);
    assert_string_equal(out, "00-" TRACE "-" SPAN "-00");
}

static void test_tracestate(void **state)
{
    assert_true(td_tracestate_ok("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
    assert_true(td_tracestate_ok(""));
    assert_false(td_tracestate_ok("a=1\r\nX-Evil: 1"));
    assert_false(td_tracestate_ok("a=\x01"));
    char big[TD_TRACESTATE_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_false(td_tracestate_ok(big));
    big[TD_TRACESTATE_MAX] = '\0';
    assert_true(td_tracestate_ok(big));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),      cmocka_unit_test(test_versions),
        cmocka_unit_test(test_invalid),    cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_tracestate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
