/* ce_json.c - the CloudEvents JSON event format (also HTTP structured mode).
 *
 * Attributes become members with their JSON type (string, number for integers, boolean);
 * data goes in as a JSON value when the content type is JSON and the bytes are JSON, as a
 * string when the type is textual and the bytes are UTF-8, and as data_base64 otherwise.
 * Decoding is the reverse. cJSON trees never leave this file.
 *
 * JSON data keeps its numbers and strings as the producer wrote them, both ways: strict JSON
 * data is embedded as its own text without the blanks between tokens (cJSON_CreateRaw of
 * td_json_compact, so an event stays one line), and reading takes the data member's exact text
 * (json_text.h), so 12345678901234567890 or 0.1000000000000000055511151231257827 stay what they
 * are. Only data that cJSON accepts but RFC 8259 does not (01, control characters in strings) is
 * re-printed through a cJSON tree, which makes it strict JSON. Everything here is pure and may
 * run on any thread.
 */
#include "ce_json.h"
#include "ce_internal.h"
#include "json_text.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool td_ce_json_has_nul(const char *s, size_t len)
{
    bool in_string = false;

    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            in_string = s[i] == '"';
            continue;
        }
        if (s[i] == '"') {
            in_string = false;
        } else if (s[i] == '\\' && i + 1 < len) {
            /* An escape: \u0000 is the NUL; any other escaped character is skipped whole, so
             * the text \\u0000 (an escaped backslash, then "u0000") is not taken for one. */
            if (s[i + 1] == 'u' && len - i >= 6 && memcmp(s + i + 2, "0000", 4) == 0) {
                return true;
            }
            i++;
        }
    }
    return false;
}

/* Parses DATA as exactly one JSON value (trailing blanks allowed), or returns NULL. Rejects
 * embedded NULs, the escape \u0000 (cJSON would truncate the string at it) and invalid UTF-8,
 * which cJSON would otherwise pass through into its output.
 * The caller owns the returned tree. */
static cJSON *parse_json_data(const unsigned char *data, size_t len)
{
    const char *end = NULL;
    const char *stop = (const char *)data + len;
    cJSON *item;

    if (len == 0 || memchr(data, '\0', len) != NULL || !td_ce_utf8_valid(data, len) ||
        td_ce_json_has_nul((const char *)data, len)) {
        return NULL;
    }
    item = cJSON_ParseWithLengthOpts((const char *)data, len, &end, 0);
    if (item == NULL) {
        return NULL;
    }
    if (!td_json_blank_to(end, stop)) {
        cJSON_Delete(item);
        return NULL;
    }
    return item;
}

/* Whether every number in the tree is finite. cJSON reads a literal beyond a double's range
 * (7e777) as infinity and prints it as null, so data holding one would change when embedded
 * (found by fuzz_ce_http). The nesting is bounded by cJSON's own limit. */
static bool json_all_finite(const cJSON *item)
{
    if (cJSON_IsNumber(item)) {
        return isfinite(item->valuedouble);
    }
    for (const cJSON *c = item->child; c; c = c->next) {
        if (!json_all_finite(c)) {
            return false;
        }
    }
    return true;
}

/* Whether the tree, one level down in the event object, stays within cJSON's nesting limit
 * (1000, CJSON_NESTING_LIMIT): data 1000 deep makes an event 1001 deep that no cJSON reader
 * (our own decoder included) accepts, so it goes as data_base64. DEPTH is the containers
 * around ITEM, the event object included. */
static bool json_fits_nesting(const cJSON *item, int depth)
{
    if (!cJSON_IsArray(item) && !cJSON_IsObject(item)) {
        return true;
    }
    if (depth + 1 > 1000) {
        return false;
    }
    for (const cJSON *c = item->child; c; c = c->next) {
        if (!json_fits_nesting(c, depth + 1)) {
            return false;
        }
    }
    return true;
}

/* A JSON integer literal: -?(0|[1-9][0-9]*), safe to emit as a raw number. */
static bool json_integer_literal(const char *s)
{
    if (*s == '-') {
        s++;
    }
    if (*s == '0') {
        return s[1] == '\0';
    }
    if (*s < '1' || *s > '9') {
        return false;
    }
    while (*s >= '0' && *s <= '9') {
        s++;
    }
    return *s == '\0';
}

/* The JSON value of one attribute (the caller owns it), or NULL on out of memory. A value
 * that does not match its type is written as a string rather than lost. */
static cJSON *attr_value(const struct td_ce_attr *a)
{
    if (a->type == TD_CE_INTEGER && json_integer_literal(a->value)) {
        return cJSON_CreateRaw(a->value);
    }
    if (a->type == TD_CE_BOOLEAN && strcmp(a->value, "true") == 0) {
        return cJSON_CreateTrue();
    }
    if (a->type == TD_CE_BOOLEAN && strcmp(a->value, "false") == 0) {
        return cJSON_CreateFalse();
    }
    return cJSON_CreateString(a->value);
}

/* Builds the data member (the caller owns it) and says under which name it goes. */
static cJSON *data_value(const struct td_event *ev, const char **member)
{
    const char *dct = td_event_get(ev, "datacontenttype");
    cJSON *item;
    char *text;

    if (td_ce_is_json_type(dct)) {
        size_t a;
        size_t b;
        /* Strict JSON goes as its own text, compacted (the event stays one line: the file
         * sink's JSON lines, redrive), with no cJSON tree built for it: these checks refuse
         * all that cJSON would (json_text.h), and 999 levels leave one for the event. */
        bool strict = td_ce_utf8_valid(ev->data, ev->data_len) &&
                      !td_ce_json_has_nul((const char *)ev->data, ev->data_len) &&
                      td_json_strict_depth((const char *)ev->data, ev->data_len, 999, &a, &b);
        /* "data": null reads back as no data at all: the JSON null goes as data_base64
         * instead, so it survives (found by fuzz_ce_amqp). */
        if (strict && !(b - a == 4 && memcmp(ev->data + a, "null", 4) == 0)) {
            text = malloc(b - a + 1);
            if (text == NULL) {
                return NULL;
            }
            td_json_compact((const char *)ev->data + a, b - a, text);
            item = cJSON_CreateRaw(text);
            free(text);
            *member = "data";
            return item;
        }
        /* Only cJSON-valid: re-printed, unless it holds a number cJSON cannot (7e777 would
         * print as null; found by fuzz_ce_http) or nests too deep for the event. */
        item = strict ? NULL : parse_json_data(ev->data, ev->data_len);
        if (item != NULL && !cJSON_IsNull(item) && json_all_finite(item) &&
            json_fits_nesting(item, 1)) {
            *member = "data";
            return item;
        }
        cJSON_Delete(item);
    }
    /* Not for a JSON type that is also textual (text/json, text/x+json): the decoder reads a
     * string "data" under a JSON type as the JSON string itself, so "hello" would come back
     * as "\"hello\"" (found by fuzz_ce_json's strict-data check); such data goes as
     * data_base64. */
    if (!td_ce_is_json_type(dct) && td_ce_is_text_type(dct) &&
        memchr(ev->data, '\0', ev->data_len) == NULL && td_ce_utf8_valid(ev->data, ev->data_len)) {
        text = strndup((const char *)ev->data, ev->data_len);
        if (text == NULL) {
            return NULL;
        }
        item = cJSON_CreateString(text);
        free(text);
        *member = "data";
        return item;
    }
    text = td_base64_encode(ev->data, ev->data_len);
    if (text == NULL) {
        return NULL;
    }
    item = cJSON_CreateString(text);
    free(text);
    *member = "data_base64";
    return item;
}

/* Returns a malloc'd NUL-terminated JSON text the caller frees (free()); NULL on out of
 * memory. *len (when LEN is not NULL) gets its length. */
char *td_ce_to_json(const struct td_event *ev, size_t *len)
{
    cJSON *root = NULL;
    cJSON *item;
    char *out = NULL;

    if (ev == NULL) {
        goto fail;
    }
    root = cJSON_CreateObject();
    if (root == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < ev->nattrs; i++) {
        /* "data" is reserved (td_event_validate refuses it): never a second data member. */
        if (strcmp(ev->attrs[i].name, "data") == 0) {
            continue;
        }
        item = attr_value(&ev->attrs[i]);
        if (item == NULL) {
            goto fail;
        }
        if (!cJSON_AddItemToObject(root, ev->attrs[i].name, item)) {
            cJSON_Delete(item);
            goto fail;
        }
    }
    if (ev->data != NULL) {
        const char *member = NULL;
        item = data_value(ev, &member);
        if (item == NULL) {
            goto fail;
        }
        if (!cJSON_AddItemToObject(root, member, item)) {
            cJSON_Delete(item);
            goto fail;
        }
    }
    out = cJSON_PrintUnformatted(root);
    if (out == NULL) {
        goto fail;
    }
    /* cJSON allocates with malloc unless hooks are set; we never set them. */
    cJSON_Delete(root);
    if (len != NULL) {
        *len = strlen(out);
    }
    return out;
fail:
    cJSON_Delete(root);
    return NULL;
}

bool td_ce_string_only(const char *name)
{
    static const char *const names[] = {"specversion",     "id",         "source",  "type",
                                        "datacontenttype", "dataschema", "subject", "time"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Sets one attribute from a member; 0 or -1 with a message. */
static int set_member(struct td_event *ev, const cJSON *m, char *err, size_t errlen)
{
    const char *name = m->string;
    char num[32];

    if (!td_ce_valid_name(name)) {
        td_ce_name_errf(name, err, errlen);
        return -1;
    }
    if (cJSON_IsNull(m)) {
        td_event_unset(ev, name); /* null is the same as absent */
        return 0;
    }
    if (cJSON_IsString(m)) {
        return td_ce_decode_set(ev, name, m->valuestring, TD_CE_STRING, err, errlen);
    }
    if (td_ce_string_only(name)) {
        td_ce_errf(err, errlen, "attribute '%s' must be a string", name);
        return -1;
    }
    if (cJSON_IsBool(m)) {
        return td_ce_decode_set(ev, name, cJSON_IsTrue(m) ? "true" : "false", TD_CE_BOOLEAN, err,
                                errlen);
    }
    if (cJSON_IsNumber(m)) {
        double d = m->valuedouble;
        /* Integral and exactly representable: at most 2^53 in magnitude. */
        if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || (double)(long long)d != d) {
            td_ce_errf(err, errlen, "attribute '%s' is a number but not an integer", name);
            return -1;
        }
        snprintf(num, sizeof(num), "%lld", (long long)d);
        return td_ce_decode_set(ev, name, num, TD_CE_INTEGER, err, errlen);
    }
    td_ce_errf(err, errlen, "attribute '%s' must be a string, integer or boolean", name);
    return -1;
}

/* Sets the data from "data" (a JSON value, the INDEX-th member of the document JSON) or
 * "data_base64"; 0 or -1 with a message. */
static int set_data(struct td_event *ev, const char *json, size_t len, const cJSON *data,
                    size_t index, const cJSON *b64, char *err, size_t errlen)
{
    size_t a;
    size_t b;

    unsigned char *bytes = NULL;
    char *text = NULL;
    size_t n = 0;
    int rc = -1;

    if (b64 != NULL) {
        if (!cJSON_IsString(b64)) {
            td_ce_errf(err, errlen, "data_base64 must be a string");
            goto fail;
        }
        bytes = td_base64_decode(b64->valuestring, strlen(b64->valuestring), &n);
        if (bytes == NULL) {
            td_ce_errf(err, errlen, "data_base64 is not valid base64");
            goto fail;
        }
        if (td_event_set_data(ev, bytes, n) != 0) {
            goto oom;
        }
    } else if (data != NULL) {
        if (!td_ce_is_json_type(td_event_get(ev, "datacontenttype")) && cJSON_IsString(data)) {
            if (td_event_set_data(ev, data->valuestring, strlen(data->valuestring)) != 0) {
                goto oom;
            }
        } else {
            /* A JSON value, kept as the producer wrote it when that is strict JSON (also for
             * a non-JSON type given a non-string value), else re-printed by cJSON. */
            if (td_json_member_span(json, len, index, &a, &b) &&
                td_json_strict(json + a, b - a, NULL, NULL)) {
                if (td_event_set_data(ev, json + a, b - a) != 0) {
                    goto oom;
                }
            } else {
                text = cJSON_PrintUnformatted(data);
                if (text == NULL || td_event_set_data(ev, text, strlen(text)) != 0) {
                    goto oom;
                }
            }
        }
    }
    rc = 0;
    goto fail;
oom:
    td_ce_errf(err, errlen, "out of memory");
fail:
    free(bytes);
    free(text);
    return rc;
}

/* Returns an event the caller owns (td_event_unref), or NULL with a message. */
struct td_event *td_ce_from_json(const char *json, size_t len, char *err, size_t errlen)
{
    struct td_event *ev = NULL;
    cJSON *root = NULL;
    const cJSON *data = NULL;
    const cJSON *b64 = NULL;
    const cJSON *m;
    size_t nmembers = 0;
    size_t index = 0;
    size_t data_index = 0;

    if (json == NULL || len == 0) {
        td_ce_errf(err, errlen, "empty event");
        goto fail;
    }
    if (!td_ce_utf8_valid((const unsigned char *)json, len)) {
        td_ce_errf(err, errlen, "event is not valid UTF-8");
        goto fail;
    }
    if (td_ce_json_has_nul(json, len)) {
        td_ce_errf(err, errlen, "event holds \\u0000 (a NUL) in a string, which cannot be kept");
        goto fail;
    }
    root = parse_json_data((const unsigned char *)json, len);
    if (root == NULL) {
        td_ce_errf(err, errlen, "event is not valid JSON");
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        td_ce_errf(err, errlen, "event is not a JSON object");
        goto fail;
    }
    /* Refuse a hostile event before any work per member (data and data_base64 aside). */
    cJSON_ArrayForEach(m, root)
    {
        if (++nmembers > TD_CE_MAX_ATTRS + 2) {
            td_ce_errf(err, errlen, "more than %d attributes (the limit per event)",
                       TD_CE_MAX_ATTRS);
            goto fail;
        }
    }
    ev = td_event_new();
    if (ev == NULL) {
        td_ce_errf(err, errlen, "out of memory");
        goto fail;
    }
    for (m = root->child; m != NULL; m = m->next, index++) {
        if (m->string == NULL) {
            continue;
        }
        if (strcmp(m->string, "data") == 0) {
            data = cJSON_IsNull(m) ? NULL : m;
            data_index = index;
        } else if (strcmp(m->string, "data_base64") == 0) {
            b64 = cJSON_IsNull(m) ? NULL : m;
        } else if (set_member(ev, m, err, errlen) != 0) {
            goto fail;
        }
    }
    if (data != NULL && b64 != NULL) {
        td_ce_errf(err, errlen, "event has both data and data_base64");
        goto fail;
    }
    if (set_data(ev, json, len, data, data_index, b64, err, errlen) != 0) {
        goto fail;
    }
    if (td_event_validate(ev, err, errlen) != 0) {
        goto fail;
    }
    cJSON_Delete(root);
    return ev;
fail:
    cJSON_Delete(root);
    td_event_unref(ev);
    return NULL;
}
