/* test_filter.c - unit tests for trigger filters (filter.h): exact, prefix and suffix on one
 * or several attributes, absent attributes never matching, the all/any/not combinators and
 * their nesting, the NULL filter, and cesql (compiled once; a bad expression is refused with
 * its column; a node without a compiled expression never matches).
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
    assert_int_equal(td_event_set(ev, "source", "/clicks"), 0);
    assert_int_equal(td_event_set(ev, "type", "com.example.click"), 0);
    assert_int_equal(td_event_set(ev, "subject", "images/cat.png"), 0);
    assert_int_equal(td_event_set(ev, "region", ""), 0);
    return ev;
}

static struct td_filter *leaf(enum td_filter_kind kind, const char *key, const char *value)
{
    struct td_filter *f = td_filter_new(kind);

    assert_non_null(f);
    assert_int_equal(td_filter_add_attr(f, key, value), 0);
    return f;
}

static struct td_filter *node(enum td_filter_kind kind, struct td_filter *a, struct td_filter *b)
{
    struct td_filter *f = td_filter_new(kind);

    assert_non_null(f);
    if (a) {
        assert_int_equal(td_filter_add_child(f, a), 0);
    }
    if (b) {
        assert_int_equal(td_filter_add_child(f, b), 0);
    }
    return f;
}

/* Matches with a one-attribute leaf and frees it. */
static bool match1(const struct td_event *ev, enum td_filter_kind kind, const char *key,
                   const char *value)
{
    struct td_filter *f = leaf(kind, key, value);
    bool m = td_filter_match(f, ev);

    td_filter_free(f);
    return m;
}

static void test_null_matches_all(void **state)
{
    struct td_event *ev = event();
    struct td_event *empty = td_event_new();

    assert_true(td_filter_match(NULL, ev));
    assert_true(td_filter_match(NULL, empty));
    td_event_unref(empty);
    td_event_unref(ev);
}

static void test_exact(void **state)
{
    struct td_event *ev = event();

    assert_true(match1(ev, TD_FILTER_EXACT, "type", "com.example.click"));
    assert_false(match1(ev, TD_FILTER_EXACT, "type", "com.example"));
    assert_false(match1(ev, TD_FILTER_EXACT, "type", "com.example.click.more"));
    assert_false(match1(ev, TD_FILTER_EXACT, "type", "COM.EXAMPLE.CLICK")); /* case-sensitive */
    assert_false(match1(ev, TD_FILTER_EXACT, "type", ""));
    /* an attribute that is present and empty matches an empty value */
    assert_true(match1(ev, TD_FILTER_EXACT, "region", ""));
    td_event_unref(ev);
}

static void test_prefix(void **state)
{
    struct td_event *ev = event();

    assert_true(match1(ev, TD_FILTER_PREFIX, "subject", "images/"));
    assert_true(match1(ev, TD_FILTER_PREFIX, "subject", "images/cat.png"));
    assert_true(match1(ev, TD_FILTER_PREFIX, "subject", "i"));
    assert_false(match1(ev, TD_FILTER_PREFIX, "subject", "videos/"));
    assert_false(match1(ev, TD_FILTER_PREFIX, "subject", "Images/"));
    assert_false(match1(ev, TD_FILTER_PREFIX, "subject", "images/cat.png.bak"));
    assert_false(match1(ev, TD_FILTER_PREFIX, "subject", "cat"));
    td_event_unref(ev);
}

static void test_suffix(void **state)
{
    struct td_event *ev = event();

    assert_true(match1(ev, TD_FILTER_SUFFIX, "subject", ".png"));
    assert_true(match1(ev, TD_FILTER_SUFFIX, "subject", "images/cat.png"));
    assert_false(match1(ev, TD_FILTER_SUFFIX, "subject", ".jpg"));
    assert_false(match1(ev, TD_FILTER_SUFFIX, "subject", ".PNG"));
    assert_false(match1(ev, TD_FILTER_SUFFIX, "subject", "x/images/cat.png"));
    assert_false(match1(ev, TD_FILTER_SUFFIX, "subject", "images/"));
    td_event_unref(ev);
}

static void test_absent_never_matches(void **state)
{
    struct td_event *ev = event();

    assert_false(match1(ev, TD_FILTER_EXACT, "missing", ""));
    assert_false(match1(ev, TD_FILTER_PREFIX, "missing", ""));
    assert_false(match1(ev, TD_FILTER_SUFFIX, "missing", ""));
    assert_false(match1(ev, TD_FILTER_EXACT, "missing", "x"));
    assert_false(match1(ev, TD_FILTER_PREFIX, "datacontenttype", "application/"));
    /* attribute names are case-sensitive too */
    assert_false(match1(ev, TD_FILTER_EXACT, "Type", "com.example.click"));
    td_event_unref(ev);
}

static void test_several_attrs_all_must_hold(void **state)
{
    struct td_event *ev = event();
    struct td_filter *f = leaf(TD_FILTER_EXACT, "type", "com.example.click");

    assert_int_equal(td_filter_add_attr(f, "source", "/clicks"), 0);
    assert_true(td_filter_match(f, ev));
    assert_int_equal(td_filter_add_attr(f, "subject", "images/dog.png"), 0);
    assert_false(td_filter_match(f, ev));
    td_filter_free(f);

    f = leaf(TD_FILTER_PREFIX, "type", "com.example.");
    assert_int_equal(td_filter_add_attr(f, "missing", ""), 0);
    assert_false(td_filter_match(f, ev));
    td_filter_free(f);

    /* an exact node without attributes has no condition */
    f = td_filter_new(TD_FILTER_EXACT);
    assert_true(td_filter_match(f, ev));
    td_filter_free(f);
    td_event_unref(ev);
}

static void test_all(void **state)
{
    struct td_event *ev = event();
    struct td_filter *f = node(TD_FILTER_ALL, leaf(TD_FILTER_EXACT, "type", "com.example.click"),
                               leaf(TD_FILTER_PREFIX, "subject", "images/"));

    assert_true(td_filter_match(f, ev));
    assert_int_equal(td_filter_add_child(f, leaf(TD_FILTER_SUFFIX, "subject", ".gif")), 0);
    assert_false(td_filter_match(f, ev));
    td_filter_free(f);

    /* all of nothing holds */
    f = node(TD_FILTER_ALL, NULL, NULL);
    assert_true(td_filter_match(f, ev));
    td_filter_free(f);

    /* one failing child among passing ones, in any position */
    f = node(TD_FILTER_ALL, leaf(TD_FILTER_EXACT, "type", "nope"),
             leaf(TD_FILTER_PREFIX, "subject", "images/"));
    assert_false(td_filter_match(f, ev));
    td_filter_free(f);
    td_event_unref(ev);
}

static void test_any(void **state)
{
    struct td_event *ev = event();
    struct td_filter *f = node(TD_FILTER_ANY, leaf(TD_FILTER_EXACT, "type", "nope"),
                               leaf(TD_FILTER_SUFFIX, "subject", ".png"));

    assert_true(td_filter_match(f, ev));
    td_filter_free(f);

    f = node(TD_FILTER_ANY, leaf(TD_FILTER_EXACT, "type", "nope"),
             leaf(TD_FILTER_SUFFIX, "subject", ".jpg"));
    assert_false(td_filter_match(f, ev));
    assert_int_equal(td_filter_add_child(f, leaf(TD_FILTER_EXACT, "source", "/clicks")), 0);
    assert_true(td_filter_match(f, ev));
    td_filter_free(f);

    /* any of nothing never holds */
    f = node(TD_FILTER_ANY, NULL, NULL);
    assert_false(td_filter_match(f, ev));
    td_filter_free(f);

    /* absent attributes do not match inside any either */
    f = node(TD_FILTER_ANY, leaf(TD_FILTER_PREFIX, "missing", ""),
             leaf(TD_FILTER_SUFFIX, "other", ""));
    assert_false(td_filter_match(f, ev));
    td_filter_free(f);
    td_event_unref(ev);
}

static void test_not(void **state)
{
    struct td_event *ev = event();
    struct td_filter *f = node(TD_FILTER_NOT, leaf(TD_FILTER_EXACT, "type", "nope"), NULL);

    assert_true(td_filter_match(f, ev));
    td_filter_free(f);

    f = node(TD_FILTER_NOT, leaf(TD_FILTER_EXACT, "type", "com.example.click"), NULL);
    assert_false(td_filter_match(f, ev));
    td_filter_free(f);

    /* not(absent attribute) holds: the inner filter does not match */
    f = node(TD_FILTER_NOT, leaf(TD_FILTER_EXACT, "missing", "x"), NULL);
    assert_true(td_filter_match(f, ev));
    td_filter_free(f);

    /* double negation */
    f = node(TD_FILTER_NOT, node(TD_FILTER_NOT, leaf(TD_FILTER_PREFIX, "subject", "images/"), NULL),
             NULL);
    assert_true(td_filter_match(f, ev));
    td_filter_free(f);
    td_event_unref(ev);
}

static void test_not_needs_exactly_one_child(void **state)
{
    struct td_event *ev = event();
    struct td_filter *f = td_filter_new(TD_FILTER_NOT);

    /* malformed: never matches, whatever the children say */
    assert_false(td_filter_match(f, ev));
    td_filter_free(f);
    f = node(TD_FILTER_NOT, leaf(TD_FILTER_EXACT, "type", "a"), leaf(TD_FILTER_EXACT, "type", "b"));
    assert_false(td_filter_match(f, ev));
    td_filter_free(f);
    td_event_unref(ev);
}

static void test_nested(void **state)
{
    struct td_event *png = event();
    struct td_event *jpg = event();
    struct td_event *other = event();

    assert_int_equal(td_event_set(jpg, "subject", "images/cat.jpg"), 0);
    assert_int_equal(td_event_set(other, "type", "com.example.view"), 0);
    /* type == click AND (subject ends with .png OR .jpg) AND NOT source starts with /test */
    struct td_filter *exts = node(TD_FILTER_ANY, leaf(TD_FILTER_SUFFIX, "subject", ".png"),
                                  leaf(TD_FILTER_SUFFIX, "subject", ".jpg"));
    struct td_filter *f =
        node(TD_FILTER_ALL, leaf(TD_FILTER_EXACT, "type", "com.example.click"), exts);
    assert_int_equal(td_filter_add_child(
                         f, node(TD_FILTER_NOT, leaf(TD_FILTER_PREFIX, "source", "/test"), NULL)),
                     0);
    assert_true(td_filter_match(f, png));
    assert_true(td_filter_match(f, jpg));
    assert_false(td_filter_match(f, other));
    assert_int_equal(td_event_set(png, "source", "/test/clicks"), 0);
    assert_false(td_filter_match(f, png));
    assert_int_equal(td_event_set(jpg, "subject", "images/cat.gif"), 0);
    assert_false(td_filter_match(f, jpg));
    td_filter_free(f);
    td_event_unref(png);
    td_event_unref(jpg);
    td_event_unref(other);
}

static void test_cesql(void **state)
{
    char err[128] = "";
    struct td_filter *f = td_filter_new_cesql("type = 'x'", err, sizeof(err));
    struct td_event *click = event();

    assert_non_null(f);
    assert_false(td_filter_match(f, click));
    td_filter_free(f);
    f = td_filter_new_cesql("type = 'com.example.click' AND subject LIKE 'images/%'", err,
                            sizeof(err));
    assert_non_null(f);
    assert_true(td_filter_match(f, click));
    td_filter_free(f);
    td_event_unref(click);
    f = td_filter_new_cesql("type = ", err, sizeof(err));
    assert_null(f);
    assert_non_null(strstr(err, "column 8: "));
    /* a hand-made cesql node never matches (it would otherwise match everything silently) */
    struct td_event *ev = event();
    f = td_filter_new(TD_FILTER_CESQL);
    assert_false(td_filter_match(f, ev));
    td_filter_free(f);
    td_event_unref(ev);
}

static void test_free_null_and_copies(void **state)
{
    char key[] = "type";
    char value[] = "com.example.click";
    struct td_filter *f = td_filter_new(TD_FILTER_EXACT);
    struct td_event *ev = event();

    td_filter_free(NULL);
    assert_int_equal(td_filter_add_attr(f, key, value), 0);
    /* the filter copied key and value */
    key[0] = 'X';
    value[0] = 'X';
    assert_true(td_filter_match(f, ev));
    td_filter_free(f);
    td_event_unref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_matches_all),
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_suffix),
        cmocka_unit_test(test_absent_never_matches),
        cmocka_unit_test(test_several_attrs_all_must_hold),
        cmocka_unit_test(test_all),
        cmocka_unit_test(test_any),
        cmocka_unit_test(test_not),
        cmocka_unit_test(test_not_needs_exactly_one_child),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_cesql),
        cmocka_unit_test(test_free_null_and_copies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
