/* fuzz_json_text.c - json_text.h against cJSON on any bytes: the span that td_json_member_span
 * or td_json_element_next gives for each member or element of a document cJSON accepted parses
 * (by cJSON) to the same value cJSON put at that place; text td_json_strict accepts is text
 * cJSON reads too. That last check leans on Debian 12's cJSON (1.7.15-1+deb12u4), which reads
 * numbers of any length; upstream 1.7.15 refuses those over 63 characters.
 */
#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "json_text.h"

/* Same value, members in the same order. Not cJSON_Compare: it finds 1e550 (infinity) unequal
 * to itself. */
static bool same_value(const cJSON *x, const cJSON *y)
{
    if ((x->type & 0xFF) != (y->type & 0xFF)) {
        return false;
    }
    if (cJSON_IsNumber(x)) {
        return x->valuedouble == y->valuedouble;
    }
    if (cJSON_IsString(x)) {
        return strcmp(x->valuestring, y->valuestring) == 0;
    }
    for (x = x->child, y = y->child; x != NULL && y != NULL; x = x->next, y = y->next) {
        if ((x->string == NULL) != (y->string == NULL) ||
            (x->string != NULL && strcmp(x->string, y->string) != 0) || !same_value(x, y)) {
            return false;
        }
    }
    return x == NULL && y == NULL;
}

/* The span [A, B) of S holds exactly the value WANT. */
static void check_span(const char *s, size_t a, size_t b, const cJSON *want, size_t index)
{
    const char *end = NULL;
    cJSON *got;

    FUZZ_CHECK(a < b, "span %zu is empty", index);
    got = cJSON_ParseWithLengthOpts(s + a, b - a, &end, 0);
    FUZZ_CHECK(got != NULL, "span %zu (%.*s) does not parse", index, (int)(b - a), s + a);
    FUZZ_CHECK(end == s + b, "span %zu (%.*s) holds more than one value", index, (int)(b - a),
               s + a);
    FUZZ_CHECK(same_value(got, want), "span %zu (%.*s) is not the value cJSON saw", index,
               (int)(b - a), s + a);
    cJSON_Delete(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    cJSON *root = cJSON_ParseWithLength(s, size);
    size_t a = 0;
    size_t b = 0;
    size_t index = 0;
    size_t pos = 0;

    if (root != NULL && cJSON_IsObject(root)) {
        for (const cJSON *m = root->child; m != NULL; m = m->next, index++) {
            FUZZ_CHECK(td_json_member_span(s, size, index, &a, &b), "member %zu not found", index);
            check_span(s, a, b, m, index);
        }
        FUZZ_CHECK(!td_json_member_span(s, size, index, &a, &b), "a member past the last");
    } else if (root != NULL && cJSON_IsArray(root)) {
        for (const cJSON *e = root->child; e != NULL; e = e->next, index++) {
            FUZZ_CHECK(td_json_element_next(s, size, &pos, &a, &b), "element %zu not found", index);
            check_span(s, a, b, e, index);
        }
        FUZZ_CHECK(!td_json_element_next(s, size, &pos, &a, &b), "an element past the last");
    }
    cJSON_Delete(root);

    /* Compacting strict text keeps it strict and the same value, and leaves no blank outside a
     * string (so none at all between tokens: a second compaction changes nothing). */
    if (td_json_strict(s, size, &a, &b)) {
        char *once = malloc(b - a + 1);
        char *twice = malloc(b - a + 1);
        if (!once || !twice) {
            abort();
        }
        size_t n = td_json_compact(s + a, b - a, once);
        FUZZ_CHECK(td_json_strict(once, n, NULL, NULL), "compacted text is not strict: %s", once);
        FUZZ_CHECK(td_json_compact(once, n, twice) == n && memcmp(once, twice, n) == 0,
                   "compacting twice changed %s", once);
        cJSON *x = cJSON_ParseWithLength(s + a, b - a);
        cJSON *y = cJSON_ParseWithLength(once, n);
        FUZZ_CHECK((x == NULL) == (y == NULL) && (x == NULL || same_value(x, y)),
                   "compacting changed the value: %s", once);
        cJSON_Delete(x);
        cJSON_Delete(y);
        free(once);
        free(twice);
    }
    /* data_value (ce_json.c) embeds strict text without asking cJSON: it must be text cJSON
     * reads, lone surrogate escapes included (td_json_strict refuses them as cJSON does). */
    if (td_json_strict(s, size, &a, &b)) {
        const char *end = NULL;
        cJSON *item = cJSON_ParseWithLengthOpts(s + a, b - a, &end, 0);
        FUZZ_CHECK(item != NULL && end == s + b, "strict JSON that cJSON refuses: %.*s", (int)size,
                   s);
        cJSON_Delete(item);
    }
    return 0;
}
