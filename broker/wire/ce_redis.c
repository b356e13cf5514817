/* ce_redis.c - our CloudEvents binding for Redis stream entries (README "Redis Streams"), and the
 * wrapping of entries that are not CloudEvents.
 *
 * Binary mode: a field ce_specversion marks a CloudEvent; each ce_<attr> field is an attribute,
 * content-type is datacontenttype, data holds the data bytes, other fields are ignored.
 * Structured mode: content-type application/cloudevents+json and the JSON event in data.
 * Anything else is wrapped, the entry id the event id: an entry whose only field is data (or
 * data and content-type) is delivered as that payload, with the content-type field or the
 * detected type (JSON, UTF-8 text, bytes); any other entry's fields become a JSON object.
 * Field names and values carry lengths (they may hold NULs); nothing here trusts them to be
 * C strings. Everything here is pure and may run on any thread.
 */
#include "ce_redis.h"
#include "ce_internal.h"
#include "ce_json.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CE_PREFIX     "ce_"
#define CE_PREFIX_LEN 3

/* A growable byte buffer that remembers running out of memory. */
struct jbuf {
    char *p;
    size_t len;
    size_t cap;
    bool oom;
};

static void jbuf_put(struct jbuf *b, const void *data, size_t n)
{
    if (b->oom) {
        return;
    }
    if (n > SIZE_MAX - b->len - 1) {
        b->oom = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 256;
        while (cap < b->len + n + 1) {
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        }
        char *grown = realloc(b->p, cap);
        if (grown == NULL) {
            b->oom = true;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void jbuf_str(struct jbuf *b, const char *s)
{
    jbuf_put(b, s, strlen(s));
}

/* Appends S as a JSON string. Bytes that are not UTF-8 become U+FFFD; NULs and other control
 * characters are escaped. */
static void json_string(struct jbuf *b, const unsigned char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;

    jbuf_put(b, "\"", 1);
    while (i < len) {
        unsigned char c = s[i];
        size_t n;

        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            jbuf_put(b, esc, 2);
            i++;
        } else if (c == '\n') {
            jbuf_put(b, "\\n", 2);
            i++;
        } else if (c == '\t') {
            jbuf_put(b, "\\t", 2);
            i++;
        } else if (c == '\r') {
            jbuf_put(b, "\\r", 2);
            i++;
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            jbuf_put(b, esc, 6);
            i++;
        } else if (c < 0x80) {
            jbuf_put(b, &s[i], 1);
            i++;
        } else if ((n = td_ce_utf8_next(s + i, len - i)) != 0) {
            jbuf_put(b, &s[i], n);
            i += n;
        } else {
            jbuf_str(b, "\xEF\xBF\xBD");
            i++;
        }
    }
    jbuf_put(b, "\"", 1);
}

static const char *field(const struct td_redis_entry *e, size_t i, size_t *len)
{
    *len = e->field_lens[i];
    return e->fields[i] != NULL ? e->fields[i] : "";
}

static const char *value(const struct td_redis_entry *e, size_t i, size_t *len)
{
    *len = e->value_lens[i];
    return e->values[i] != NULL ? e->values[i] : "";
}

static bool field_is(const struct td_redis_entry *e, size_t i, const char *name, bool nocase)
{
    size_t len;
    const char *f = field(e, i, &len);

    if (len != strlen(name)) {
        return false;
    }
    return nocase ? strncasecmp(f, name, len) == 0 : memcmp(f, name, len) == 0;
}

/* Index of the last field named NAME, or -1 (last wins, as everywhere in this binding). */
static long find_field(const struct td_redis_entry *e, const char *name, bool nocase)
{
    long found = -1;

    for (size_t i = 0; i < e->n; i++) {
        if (field_is(e, i, name, nocase)) {
            found = (long)i;
        }
    }
    return found;
}

/* A copy of LEN bytes as a C string the caller frees, or NULL (*bad set) when they hold a NUL
 * or are not UTF-8; NULL with *bad clear is out of memory. */
static char *text_dup(const char *s, size_t len, bool *bad)
{
    *bad = memchr(s, '\0', len) != NULL || !td_ce_utf8_valid((const unsigned char *)s, len);
    return *bad ? NULL : strndup(s, len);
}

/* Binary mode. lenient: skip fields that are not valid attributes instead of failing (the
 * caller then repairs the required attributes). */
static struct td_event *from_binary(const struct td_redis_entry *e, bool lenient, char *err,
                                    size_t errlen)
{
    struct td_event *ev = td_event_new();
    char *name = NULL;
    char *val = NULL;
    bool bad;

    if (ev == NULL) {
        goto oom;
    }
    for (size_t i = 0; i < e->n; i++) {
        size_t flen;
        size_t vlen;
        const char *f = field(e, i, &flen);
        const char *v = value(e, i, &vlen);
        bool is_ct = field_is(e, i, "content-type", true);

        if (field_is(e, i, "data", false)) {
            if (td_event_set_data(ev, v, vlen) != 0) {
                goto oom;
            }
            continue;
        }
        if (!is_ct && (flen <= CE_PREFIX_LEN || memcmp(f, CE_PREFIX, CE_PREFIX_LEN) != 0)) {
            continue;
        }
        if (is_ct) {
            name = strdup("datacontenttype");
        } else {
            name = text_dup(f + CE_PREFIX_LEN, flen - CE_PREFIX_LEN, &bad);
            if (lenient && (bad || (name != NULL && !td_ce_valid_name(name)))) {
                free(name);
                name = NULL;
                continue;
            }
            if (bad || (name != NULL && !td_ce_valid_name(name))) {
                char why[160] = "it holds a NUL or is not UTF-8";
                if (!bad && name != NULL) {
                    td_ce_name_errf(name, why, sizeof(why)); /* the charset, or only the length */
                }
                td_ce_errf(err, errlen, "field '%.*s' does not name a valid attribute: %s",
                           (int)(flen > 64 ? 64 : flen), f, why);
                goto fail;
            }
        }
        if (name == NULL) {
            goto oom;
        }
        val = text_dup(v, vlen, &bad);
        if (bad && lenient) {
            free(name);
            name = NULL;
            continue;
        }
        if (bad) {
            td_ce_errf(err, errlen, "field '%.*s' is not UTF-8 text", (int)(flen > 64 ? 64 : flen),
                       f);
            goto fail;
        }
        if (val == NULL) {
            goto oom;
        }
        /* Past the cap even a salvage fails: the caller then wraps the whole entry as data,
         * so the dead letter keeps every field. */
        if (td_ce_decode_set(ev, name, val, TD_CE_STRING, err, errlen) != 0) {
            goto fail;
        }
        free(name);
        free(val);
        name = NULL;
        val = NULL;
    }
    if (!lenient && td_event_validate(ev, err, errlen) != 0) {
        goto fail;
    }
    return ev;
oom:
    td_ce_errf(err, errlen, "out of memory");
fail:
    free(name);
    free(val);
    td_event_unref(ev);
    return NULL;
}

/* For sorting field indexes by key text, then by position. */
struct keyref {
    const char *key;
    size_t len;
    size_t idx;
};

static int keyref_cmp(const void *a, const void *b)
{
    const struct keyref *x = a;
    const struct keyref *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);

    if (c != 0) {
        return c;
    }
    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : (x->idx > y->idx ? 1 : 0);
}

/* The fields as a JSON object (a malloc'd text the caller frees), or NULL on out of memory.
 * Keys are JSON strings (bytes that are not UTF-8 become U+FFFD). A value that is UTF-8 is a
 * JSON string (NULs escaped as \u0000); any other value becomes {"base64": "<its bytes>"},
 * which a consumer can tell apart from a string and decode losslessly. When a name repeats,
 * the last field wins. */
static char *fields_json(const struct td_redis_entry *e, size_t *outlen)
{
    struct jbuf keys = {0};
    struct jbuf out = {0};
    size_t *offs = NULL;
    struct keyref *refs = NULL;
    bool *skip = NULL;
    size_t n = e->n;

    offs = calloc(n + 1, sizeof(*offs));
    refs = calloc(n + 1, sizeof(*refs));
    skip = calloc(n + 1, sizeof(*skip));
    if (offs == NULL || refs == NULL || skip == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        size_t flen;
        const char *f = field(e, i, &flen);
        offs[i] = keys.len;
        json_string(&keys, (const unsigned char *)f, flen);
    }
    offs[n] = keys.len;
    if (keys.oom) {
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        refs[i].key = keys.p + offs[i];
        refs[i].len = offs[i + 1] - offs[i];
        refs[i].idx = i;
    }
    qsort(refs, n, sizeof(*refs), keyref_cmp);
    for (size_t i = 0; i + 1 < n; i++) {
        if (refs[i].len == refs[i + 1].len &&
            memcmp(refs[i].key, refs[i + 1].key, refs[i].len) == 0) {
            skip[refs[i].idx] = true;
        }
    }
    jbuf_put(&out, "{", 1);
    for (size_t i = 0, emitted = 0; i < n; i++) {
        size_t vlen;
        const unsigned char *v = (const unsigned char *)value(e, i, &vlen);

        if (skip[i]) {
            continue;
        }
        if (emitted++ > 0) {
            jbuf_put(&out, ",", 1);
        }
        jbuf_put(&out, keys.p + offs[i], offs[i + 1] - offs[i]);
        jbuf_put(&out, ":", 1);
        if (td_ce_utf8_valid(v, vlen)) {
            json_string(&out, v, vlen);
        } else {
            char *b64 = td_base64_encode(v, vlen);
            if (b64 == NULL) {
                goto fail;
            }
            jbuf_str(&out, "{\"base64\":\"");
            jbuf_str(&out, b64);
            jbuf_str(&out, "\"}");
            free(b64);
        }
    }
    jbuf_put(&out, "}", 1);
    if (out.oom) {
        goto fail;
    }
    free(keys.p);
    free(offs);
    free(refs);
    free(skip);
    *outlen = out.len;
    return out.p;
fail:
    free(keys.p);
    free(out.p);
    free(offs);
    free(refs);
    free(skip);
    return NULL;
}

/* The milliseconds of an entry id "<ms>-<seq>"; false when the id does not start that way. */
static bool id_millis(const char *id, int64_t *ms)
{
    int64_t v = 0;
    const char *p = id;

    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT64_MAX - 9) / 10) {
            return false;
        }
        v = v * 10 + (*p - '0');
    }
    if (p == id || (*p != '-' && *p != '\0')) {
        return false;
    }
    *ms = v;
    return true;
}

/* A plain payload entry: its only field is data, or data and content-type (what `triggerd
 * publish` writes without --ce-*). Such an entry is delivered as its data, not as an object of
 * its fields, so that filters, payload schemas and functions see what the producer sent. */
static bool plain_payload(const struct td_redis_entry *e, long *data, long *ct)
{
    *data = find_field(e, "data", false);
    *ct = find_field(e, "content-type", true);
    if (*data < 0) {
        return false;
    }
    return e->n == 1 || (e->n == 2 && *ct >= 0);
}

/* True when the LEN bytes at S are one JSON text (whitespace around it allowed, nothing else). */
static bool is_json(const char *s, size_t len, bool *oom)
{
    if (len == 0 || memchr(s, '\0', len) != NULL) {
        return false;
    }
    char *copy = strndup(s, len);
    if (copy == NULL) {
        *oom = true;
        return false;
    }
    cJSON *json = cJSON_ParseWithOpts(copy, NULL, true);
    bool ok = json != NULL;
    cJSON_Delete(json);
    free(copy);
    return ok;
}

/* The datacontenttype of a plain payload: the content-type field when it is usable text, else
 * detected from the bytes (JSON, UTF-8 text, or bytes). NULL on out of memory; the caller
 * frees. */
static char *plain_content_type(const struct td_redis_entry *e, long data, long ct)
{
    size_t len;
    const char *v;
    if (ct >= 0) {
        bool bad;
        v = value(e, (size_t)ct, &len);
        char *type = len > 0 ? text_dup(v, len, &bad) : NULL;
        if (type != NULL || (len > 0 && !bad)) {
            return type;
        }
    }
    v = value(e, (size_t)data, &len);
    bool oom = false;
    const char *detected =
        is_json(v, len, &oom) ? "application/json"
        : memchr(v, '\0', len) == NULL && td_ce_utf8_valid((const unsigned char *)v, len)
            ? "text/plain; charset=utf-8"
            : "application/octet-stream";
    return oom ? NULL : strdup(detected);
}

/* Wraps E. FORCE (for td_ce_wrap_redis) never fails but on out of memory: a missing id, type
 * or source gets a placeholder, and the result is not validated. */
static struct td_event *wrap(const struct td_redis_entry *e, const char *dflt_type,
                             const char *dflt_source, bool force, char *err, size_t errlen)
{
    struct td_event *ev = NULL;
    char *json = NULL; /* the data: the fields as a JSON object, or a plain payload */
    char *ctype = NULL;
    size_t json_len = 0;
    char ts[32];
    int64_t ms;

    const char *id = e->id != NULL && *e->id != '\0' ? e->id : NULL;
    bool no_type = dflt_type == NULL || *dflt_type == '\0';
    bool no_source = dflt_source == NULL || *dflt_source == '\0';

    if (force) {
        id = id != NULL ? id : "redis:unknown";
        dflt_type = no_type ? "triggerd.redis.entry" : dflt_type;
        dflt_source = no_source ? "triggerd" : dflt_source;
    } else if (id == NULL) {
        td_ce_errf(err, errlen, "stream entry has no id");
        goto fail;
    } else if (no_type || no_source) {
        td_ce_errf(err, errlen,
                   "entry %.64s is not a CloudEvent and no event type and source "
                   "are configured to wrap it",
                   id);
        goto fail;
    }
    ev = td_event_new();
    long data_field, ct_field;
    bool plain = plain_payload(e, &data_field, &ct_field);
    if (plain) {
        const char *dv = value(e, (size_t)data_field, &json_len);
        ctype = plain_content_type(e, data_field, ct_field);
        json = malloc(json_len + 1);
        if (json != NULL) {
            memcpy(json, dv, json_len);
            json[json_len] = '\0';
        }
    } else {
        json = fields_json(e, &json_len);
    }
    if (ev == NULL || json == NULL || (plain && ctype == NULL)) {
        goto oom;
    }
    if (td_event_set(ev, "specversion", "1.0") != 0 || td_event_set(ev, "id", id) != 0 ||
        td_event_set(ev, "source", dflt_source) != 0 || td_event_set(ev, "type", dflt_type) != 0) {
        goto oom;
    }
    if (id_millis(id, &ms)) {
        td_format_time_ms(ms, ts);
        if (td_event_set(ev, "time", ts) != 0) {
            goto oom;
        }
    }
    if (td_event_set(ev, "datacontenttype", plain ? ctype : "application/json") != 0 ||
        td_event_set_data(ev, json, json_len) != 0) {
        goto oom;
    }
    if (!force && td_event_validate(ev, err, errlen) != 0) {
        goto fail;
    }
    free(json);
    free(ctype);
    return ev;
oom:
    td_ce_errf(err, errlen, "out of memory");
fail:
    free(json);
    free(ctype);
    td_event_unref(ev);
    return NULL;
}

/* Returns an event the caller owns (td_event_unref), or NULL with a message. */
struct td_event *td_ce_from_redis(const struct td_redis_entry *entry, const char *dflt_type,
                                  const char *dflt_source, bool *wrapped, char *err, size_t errlen)
{
    long ct;

    if (wrapped != NULL) {
        *wrapped = false;
    }
    if (entry == NULL || (entry->n > 0 && (entry->fields == NULL || entry->field_lens == NULL ||
                                           entry->values == NULL || entry->value_lens == NULL))) {
        td_ce_errf(err, errlen, "malformed stream entry");
        return NULL;
    }
    if (find_field(entry, "ce_specversion", false) >= 0) {
        return from_binary(entry, false, err, errlen);
    }
    ct = find_field(entry, "content-type", true);
    if (ct >= 0) {
        size_t ctlen;
        const char *ctv = value(entry, (size_t)ct, &ctlen);
        char buf[64];

        if (ctlen < sizeof(buf) && memchr(ctv, '\0', ctlen) == NULL) {
            memcpy(buf, ctv, ctlen);
            buf[ctlen] = '\0';
            if (td_ce_media_is(buf, "application/cloudevents+json")) {
                long d = find_field(entry, "data", false);
                size_t dlen;
                const char *dv;
                if (d < 0) {
                    td_ce_errf(err, errlen, "structured CloudEvent entry has no 'data' field");
                    return NULL;
                }
                dv = value(entry, (size_t)d, &dlen);
                return td_ce_from_json(dv, dlen, err, errlen);
            }
        }
    }
    if (wrapped != NULL) {
        *wrapped = true;
    }
    return wrap(entry, dflt_type, dflt_source, false, err, errlen);
}

/* Returns an event the caller owns; NULL only on out of memory (or a malformed entry struct).
 * Placeholders: id "redis:unknown", type "triggerd.redis.entry", source "triggerd". */
struct td_event *td_ce_wrap_redis(const struct td_redis_entry *entry, const char *dflt_type,
                                  const char *dflt_source)
{
    if (entry == NULL || (entry->n > 0 && (entry->fields == NULL || entry->field_lens == NULL ||
                                           entry->values == NULL || entry->value_lens == NULL))) {
        return NULL;
    }
    return wrap(entry, dflt_type, dflt_source, true, NULL, 0);
}

struct td_event *td_ce_salvage_redis(const struct td_redis_entry *entry, const char *dflt_type,
                                     const char *dflt_source)
{
    char err[8];
    if (entry == NULL || (entry->n > 0 && (entry->fields == NULL || entry->field_lens == NULL ||
                                           entry->values == NULL || entry->value_lens == NULL))) {
        return NULL;
    }
    struct td_event *ev = NULL;
    if (find_field(entry, "ce_specversion", false) >= 0) {
        ev = from_binary(entry, true, err, sizeof(err));
    }
    if (ev != NULL) {
        /* Keep what the producer wrote; fill in only what is missing or unusable. */
        int rc = 0;
        const char *v = td_event_get(ev, "specversion");
        if (v == NULL || strcmp(v, "1.0") != 0) {
            rc |= td_event_set(ev, "specversion", "1.0");
        }
        v = td_event_get(ev, "id");
        if (v == NULL || *v == '\0') {
            rc |= td_event_set(ev, "id", entry->id != NULL ? entry->id : "redis:unknown");
        }
        v = td_event_get(ev, "type");
        if (v == NULL || *v == '\0') {
            rc |= td_event_set(ev, "type", dflt_type != NULL ? dflt_type : "triggerd.redis.entry");
        }
        v = td_event_get(ev, "source");
        if (v == NULL || *v == '\0') {
            rc |= td_event_set(ev, "source", dflt_source != NULL ? dflt_source : "triggerd");
        }
        v = td_event_get(ev, "time");
        if (v != NULL && !td_ce_valid_time(v)) {
            td_event_unset(ev, "time");
        }
        if (rc == 0 && td_event_validate(ev, err, sizeof(err)) == 0) {
            return ev;
        }
        td_event_unref(ev);
    }
    return td_ce_wrap_redis(entry, dflt_type, dflt_source);
}

void td_redis_fields_free(struct td_redis_fields *f)
{
    if (f == NULL) {
        return;
    }
    for (size_t i = 0; i < f->n; i++) {
        free(f->argv[i]);
    }
    free(f->argv);
    free(f->lens);
    f->argv = NULL;
    f->lens = NULL;
    f->n = 0;
}

/* Appends one string of LEN bytes (copied, NUL-terminated) to the next free slot. */
static int push(struct td_redis_fields *f, const char *prefix, const void *s, size_t len)
{
    size_t plen = strlen(prefix);
    char *copy;

    if (len > SIZE_MAX - plen - 1) {
        return -1;
    }
    copy = malloc(plen + len + 1);
    if (copy == NULL) {
        return -1;
    }
    memcpy(copy, prefix, plen);
    if (len > 0) {
        memcpy(copy + plen, s, len);
    }
    copy[plen + len] = '\0';
    f->argv[f->n] = copy;
    f->lens[f->n] = plen + len;
    f->n++;
    return 0;
}

/* Fills OUT with field, value, field, value... (out->n strings, each malloc'd and also
 * NUL-terminated), ce_specversion first; the caller frees them with td_redis_fields_free().
 * -1 on out of memory, when specversion is missing (the entry would read back as a wrapped
 * message) or when an attribute name is not [a-z0-9]+. */
int td_ce_to_redis(const struct td_event *ev, struct td_redis_fields *out)
{
    const char *sv;
    const char *dct;
    size_t max;

    if (out == NULL) {
        return -1;
    }
    out->argv = NULL;
    out->lens = NULL;
    out->n = 0;
    if (ev == NULL) {
        goto fail;
    }
    sv = td_event_get(ev, "specversion");
    if (sv == NULL) {
        goto fail;
    }
    max = 2 * ev->nattrs + 2;
    out->argv = calloc(max, sizeof(*out->argv));
    out->lens = calloc(max, sizeof(*out->lens));
    if (out->argv == NULL || out->lens == NULL) {
        goto fail;
    }
    if (push(out, "ce_specversion", "", 0) != 0 || push(out, "", sv, strlen(sv)) != 0) {
        goto fail;
    }
    for (size_t i = 0; i < ev->nattrs; i++) {
        const struct td_ce_attr *a = &ev->attrs[i];
        if (!td_ce_valid_name(a->name)) {
            goto fail;
        }
        if (strcmp(a->name, "specversion") == 0 || strcmp(a->name, "datacontenttype") == 0) {
            continue;
        }
        if (push(out, CE_PREFIX, a->name, strlen(a->name)) != 0 ||
            push(out, "", a->value, strlen(a->value)) != 0) {
            goto fail;
        }
    }
    dct = td_event_get(ev, "datacontenttype");
    if (dct != NULL &&
        (push(out, "content-type", "", 0) != 0 || push(out, "", dct, strlen(dct)) != 0)) {
        goto fail;
    }
    if (ev->data != NULL &&
        (push(out, "data", "", 0) != 0 || push(out, "", ev->data, ev->data_len) != 0)) {
        goto fail;
    }
    return 0;
fail:
    td_redis_fields_free(out);
    return -1;
}
