/* fuzz_cesql.c - the CESQL v1 parser and evaluator (cesql.h). The first line of the input is
 * the expression; the rest, when present, is an event in the JSON format to evaluate it on
 * (else a fixed event with string, integer and boolean extensions). Checks: td_cesql_eval is
 * deterministic and td_cesql_match agrees with it; compile errors carry a kind and a column.
 */
#include "ce_json.h"
#include "cesql.h"
#include "cloudevent.h"
#include "fuzz_common.h"

static struct td_event *fixed_event(void)
{
    struct td_event *ev = td_event_new();

    if (!ev || td_event_set(ev, "specversion", "1.0") != 0 || td_event_set(ev, "id", "42") != 0 ||
        td_event_set(ev, "source", "/fuzz/src") != 0 ||
        td_event_set(ev, "type", "com.example.Fuzz") != 0 ||
        td_event_set(ev, "subject", "Ünïcode subject") != 0 ||
        td_event_set(ev, "time", "2024-01-02T03:04:05Z") != 0 ||
        td_event_set(ev, "datacontenttype", "application/json") != 0 ||
        td_event_set(ev, "ext", "text") != 0 ||
        td_event_set_typed(ev, "count", "-2147483648", TD_CE_INTEGER) != 0 ||
        td_event_set_typed(ev, "big", "2147483647", TD_CE_INTEGER) != 0 ||
        td_event_set_typed(ev, "flag", "true", TD_CE_BOOLEAN) != 0 ||
        td_event_set(ev, "num", "17") != 0 || td_event_set_data(ev, "{\"a\":1}", 7) != 0) {
        abort();
    }
    return ev;
}

static bool same_value(const struct td_cesql_value *a, const struct td_cesql_value *b)
{
    if (a->type != b->type) {
        return false;
    }
    switch (a->type) {
    case TD_CESQL_BOOLEAN:
        return a->b == b->b;
    case TD_CESQL_INTEGER:
        return a->i == b->i;
    case TD_CESQL_STRING:
        return a->s && b->s && strcmp(a->s, b->s) == 0;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t elen = nl ? (size_t)(nl - data) : size;
    char *expr = fuzz_strndup(data, elen);
    struct td_cesql_error cerr;
    struct td_cesql *q;
    struct td_event *ev = NULL;

    memset(&cerr, 0, sizeof(cerr));
    q = td_cesql_compile(expr, &cerr);
    if (!q) {
        FUZZ_CHECK(cerr.kind == TD_CESQL_ERR_PARSE || cerr.kind == TD_CESQL_ERR_MISSING_FUNCTION ||
                       cerr.kind == TD_CESQL_ERR_GENERIC,
                   "compile error of kind %s", td_cesql_errkind_name(cerr.kind));
        FUZZ_CHECK(cerr.message[0] != '\0', "compile error without a message");
        goto done;
    }
    if (nl) {
        char err[256];
        ev = td_ce_from_json((const char *)nl + 1, size - elen - 1, err, sizeof(err));
    }
    if (!ev) {
        ev = fixed_event();
    }
    struct td_cesql_value v1;
    struct td_cesql_value v2;
    struct td_cesql_error e1;
    memset(&v1, 0, sizeof(v1));
    memset(&v2, 0, sizeof(v2));
    enum td_cesql_errkind k1 = td_cesql_eval(q, ev, &v1, &e1);
    enum td_cesql_errkind k2 = td_cesql_eval(q, ev, &v2, NULL);
    FUZZ_CHECK(k1 == k2, "eval not deterministic: %s then %s", td_cesql_errkind_name(k1),
               td_cesql_errkind_name(k2));
    FUZZ_CHECK(same_value(&v1, &v2), "eval not deterministic (value)");
    if (v1.type == TD_CESQL_STRING) {
        FUZZ_CHECK(v1.s != NULL, "a string value without a string");
    }
    bool m = td_cesql_match(q, ev, NULL);
    FUZZ_CHECK(m == (k1 == TD_CESQL_OK && v1.type == TD_CESQL_BOOLEAN && v1.b),
               "match %d disagrees with eval (%s)", m, td_cesql_errkind_name(k1));
    td_cesql_value_clear(&v1);
    td_cesql_value_clear(&v2);
done:
    td_cesql_free(q);
    td_event_unref(ev);
    free(expr);
    return 0;
}
