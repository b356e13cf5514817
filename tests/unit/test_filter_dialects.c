/* test_filter_dialects.c - more filter tests (filter.h): the exact/prefix/suffix maps,
 * the all/any/not combinators and cesql, with absent attributes, non-string attributes
 * (compared through their string form) and case sensitivity. Vectors written from the
 * CloudEvents Subscriptions API filter dialects as Knative implements them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cloudevent.h"
#include "filter.h"

static struct td_event *event(void)
{
    struct td_event *ev = td_event_new();
    assert_non_null(ev);
    assert_int_equal(td_event_set(ev, "specversion", "1.0"), 0);
    assert_int_equal(td_event_set(ev, "id", "1"), 0);
    assert_int_equal(td_event_set(ev, "source", "/orders/eu"), 0);
    assert_int_equal(td_event_set(ev, "type", "com.example.order.created"), 0);
    assert_int_equal(td_event_set(ev, "subject", ""), 0);
    assert_int_equal(td_event_set_typed(ev, "priority", "5", TD_CE_INTEGER), 0);
    assert_int_equal(td_event_set_typed(ev, "urgent", "true", TD_CE_BOOLEAN), 0);
    return ev;
}

static struct td_filter *attrs(enum td_filter_kind kind, const char *k1, const char *v1,
                               const char *k2, const char *v2)
{
    struct td_filter *f = td_filter_new(kind);
    assert_non_null(f);
    assert_int_equal(td_filter_add_attr(f, k1, v1), 0);
    if (k2) {
        assert_int_equal(td_filter_add_attr(f, k2, v2), 0);
    }
    return f;
}

static struct td_filter *combine(enum td_filter_kind kind, struct td_filter *a, struct td_filter *b)
{
    struct td_filter *f = td_filter_new(kind);
    assert_non_null(f);
    assert_int_equal(td_filter_add_child(f, a), 0);
    if (b) {
        assert_int_equal(td_filter_add_child(f, b), 0);
    }
    return f;
}

static void expect(struct td_filter *f, const struct td_event *ev, bool want)
{
    assert_int_equal(td_filter_match(f, ev), want);
    td_filter_free(f);
}

static void test_exact(void **state)
{
    struct td_event *ev = event();
    expect(attrs(TD_FILTER_EXACT, "type", "com.example.order.created", NULL, NULL), ev, true);
    expect(attrs(TD_FILTER_EXACT, "type", "com.example.order.created", "source", "/orders/eu"), ev,
           true);
    expect(attrs(TD_FILTER_EXACT, "type", "com.example.order.created", "source", "/orders/us"), ev,
           false);
    expect(attrs(TD_FILTER_EXACT, "type", "COM.EXAMPLE.ORDER.CREATED", NULL, NULL), ev, false);
    expect(attrs(TD_FILTER_EXACT, "missing", "", NULL, NULL), ev, false);  /* absent never */
    expect(attrs(TD_FILTER_EXACT, "subject", "", NULL, NULL), ev, true);   /* present, empty */
    expect(attrs(TD_FILTER_EXACT, "priority", "5", NULL, NULL), ev, true); /* as a string */
    expect(attrs(TD_FILTER_EXACT, "urgent", "true", NULL, NULL), ev, true);
    expect(attrs(TD_FILTER_EXACT, "priority", "05", NULL, NULL), ev, false);
    td_event_unref(ev);
}

static void test_prefix_suffix(void **state)
{
    struct td_event *ev = event();
    expect(attrs(TD_FILTER_PREFIX, "type", "com.example.", NULL, NULL), ev, true);
    expect(attrs(TD_FILTER_PREFIX, "type", "", NULL, NULL), ev, true);
    expect(attrs(TD_FILTER_PREFIX, "type", "com.example.order.created.more", NULL, NULL), ev,
           false);
    expect(attrs(TD_FILTER_PREFIX, "type", "Com.", NULL, NULL), ev, false);
    expect(attrs(TD_FILTER_PREFIX, "missing", "", NULL, NULL), ev, false);
    expect(attrs(TD_FILTER_PREFIX, "type", "com.", "source", "/orders/"), ev, true);
    expect(attrs(TD_FILTER_PREFIX, "type", "com.", "source", "/users/"), ev, false);
    expect(attrs(TD_FILTER_SUFFIX, "type", ".created", NULL, NULL), ev, true);
    expect(attrs(TD_FILTER_SUFFIX, "type", ".CREATED", NULL, NULL), ev, false);
    expect(attrs(TD_FILTER_SUFFIX, "source", "/orders/eu/x", NULL, NULL), ev, false);
    expect(attrs(TD_FILTER_SUFFIX, "missing", "", NULL, NULL), ev, false);
    expect(attrs(TD_FILTER_SUFFIX, "priority", "5", NULL, NULL), ev, true);
    td_event_unref(ev);
}

static void test_combinators(void **state)
{
    struct td_event *ev = event();
    struct td_filter *yes = NULL, *no = NULL;
#define YES attrs(TD_FILTER_EXACT, "id", "1", NULL, NULL)
#define NO  attrs(TD_FILTER_EXACT, "id", "2", NULL, NULL)
    expect(combine(TD_FILTER_ALL, YES, YES), ev, true);
    expect(combine(TD_FILTER_ALL, YES, NO), ev, false);
    expect(combine(TD_FILTER_ANY, NO, YES), ev, true);
    expect(combine(TD_FILTER_ANY, NO, NO), ev, false);
    expect(combine(TD_FILTER_NOT, NO, NULL), ev, true);
    expect(combine(TD_FILTER_NOT, YES, NULL), ev, false);
    expect(combine(TD_FILTER_NOT, attrs(TD_FILTER_EXACT, "missing", "x", NULL, NULL), NULL), ev,
           true);
    /* nested: all(any(no, not(no)), prefix) */
    expect(combine(TD_FILTER_ALL, combine(TD_FILTER_ANY, NO, combine(TD_FILTER_NOT, NO, NULL)),
                   attrs(TD_FILTER_PREFIX, "type", "com.", NULL, NULL)),
           ev, true);
    /* empty all matches, empty any does not */
    expect(td_filter_new(TD_FILTER_ALL), ev, true);
    expect(td_filter_new(TD_FILTER_ANY), ev, false);
    /* NULL matches everything; freeing NULL is fine */
    assert_true(td_filter_match(NULL, ev));
    td_filter_free(NULL);
    (void)yes;
    (void)no;
#undef YES
#undef NO
    td_event_unref(ev);
}

static void test_cesql_in_tree(void **state)
{
    char err[256];
    struct td_event *ev = event();
    struct td_filter *c = td_filter_new_cesql("priority > 3 AND urgent", err, sizeof(err));
    assert_non_null(c);
    expect(combine(TD_FILTER_ALL, c, attrs(TD_FILTER_SUFFIX, "type", ".created", NULL, NULL)), ev,
           true);
    c = td_filter_new_cesql("missing = 'x'", err, sizeof(err));
    assert_non_null(c);
    expect(combine(TD_FILTER_NOT, c, NULL), ev, true); /* the error is a non-match, negated */
    td_event_unref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_prefix_suffix),
        cmocka_unit_test(test_combinators),
        cmocka_unit_test(test_cesql_in_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
