/* ce_amqp.c - the CloudEvents AMQP binding for RabbitMQ (AMQP 0-9-1 via rabbitmq-c): from a
 * delivery's properties and body to an event, and from an event to basic.publish properties.
 *
 * Why its own file: AMQP headers are typed tables (integers, booleans, timestamps, nested
 * tables, byte strings), unlike the flat text of HTTP, Redis and Kafka headers, and messages
 * come from any publisher: every value is checked (UTF-8, size, kind) before it becomes an
 * attribute, so a hostile message is wrapped or refused with a reason, never crashes.
 *
 * Ownership: decoding returns a new event; td_ce_to_amqp returns a struct td_amqp_out that
 * owns copies of every string and the body (free with td_amqp_out_free).
 * Threads: any; no state.
 */
#include <amqp.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ce_amqp.h"
#include "ce_internal.h"
#include "ce_json.h"

#define MAX_BINARY_ATTRS TD_CE_MAX_ATTRS /* one cap for every binding */
#define MAX_ATTR_VALUE   65536

/* Attributes a header may never set on a wrapped event. */
static const char *const reserved[] = {
    "specversion",       "id",         "source",  "type", "time",
    "datacontenttype",   "dataschema", "subject", "data", "data_base64",
    "amqpheadersdropped"};

static bool is_reserved(const char *name)
{
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcmp(name, reserved[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* A malloc'd NUL-terminated copy of LEN bytes, invalid UTF-8 and NULs replaced by U+FFFD. */
static char *utf8_repair(const unsigned char *s, size_t len)
{
    char *out = malloc(len * 3 + 1);
    size_t n = 0;
    if (!out) {
        return NULL;
    }
    for (size_t i = 0; i < len;) {
        size_t k = s[i] == 0 ? 0 : td_ce_utf8_next(s + i, len - i);
        if (k == 0) {
            memcpy(out + n, "\xEF\xBF\xBD", 3);
            n += 3;
            i++;
        } else {
            memcpy(out + n, s + i, k);
            n += k;
            i += k;
        }
    }
    out[n] = '\0';
    return out;
}

/* Strict copy for binary-mode attributes: NULL (and *bad set) when not UTF-8 or with NULs. */
static char *utf8_strict(const void *p, size_t len, bool *bad)
{
    const unsigned char *s = p;
    if (len > MAX_ATTR_VALUE || memchr(s, 0, len) || !td_ce_utf8_valid(s, len)) {
        *bad = true;
        return NULL;
    }
    char *out = malloc(len + 1);
    if (out) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

/* The text form of a scalar header value and its CloudEvents type. Returns a malloc'd string,
 * or NULL with *unsupported set (tables, arrays, decimals, void) or on out of memory. STRICT:
 * strings must be valid UTF-8 (else *unsupported); otherwise they are repaired. */
static char *field_text(const amqp_field_value_t *v, bool strict, enum td_ce_vtype *type,
                        bool *unsupported)
{
    char buf[64];
    *type = TD_CE_STRING;
    switch (v->kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
        if (v->value.bytes.len > (strict ? MAX_ATTR_VALUE : TD_AMQP_MAX_HEADER_VALUE)) {
            *unsupported = true;
            return NULL;
        }
        if (strict) {
            return utf8_strict(v->value.bytes.bytes, v->value.bytes.len, unsupported);
        }
        return utf8_repair(v->value.bytes.bytes, v->value.bytes.len);
    case AMQP_FIELD_KIND_BOOLEAN:
        *type = TD_CE_BOOLEAN;
        return strdup(v->value.boolean ? "true" : "false");
    case AMQP_FIELD_KIND_I8:
        snprintf(buf, sizeof(buf), "%d", v->value.i8);
        break;
    case AMQP_FIELD_KIND_U8:
        snprintf(buf, sizeof(buf), "%u", v->value.u8);
        break;
    case AMQP_FIELD_KIND_I16:
        snprintf(buf, sizeof(buf), "%d", v->value.i16);
        break;
    case AMQP_FIELD_KIND_U16:
        snprintf(buf, sizeof(buf), "%u", v->value.u16);
        break;
    case AMQP_FIELD_KIND_I32:
        snprintf(buf, sizeof(buf), "%" PRId32, v->value.i32);
        break;
    case AMQP_FIELD_KIND_U32:
        snprintf(buf, sizeof(buf), "%" PRIu32, v->value.u32);
        if (v->value.u32 > INT32_MAX) {
            return strdup(buf); /* outside the CloudEvents Integer range: a string */
        }
        break;
    case AMQP_FIELD_KIND_I64:
        snprintf(buf, sizeof(buf), "%" PRId64, v->value.i64);
        if (v->value.i64 > INT32_MAX || v->value.i64 < INT32_MIN) {
            return strdup(buf);
        }
        break;
    case AMQP_FIELD_KIND_U64:
        snprintf(buf, sizeof(buf), "%" PRIu64, v->value.u64);
        if (v->value.u64 > INT32_MAX) {
            return strdup(buf);
        }
        break;
    case AMQP_FIELD_KIND_F32:
        snprintf(buf, sizeof(buf), "%.9g", (double)v->value.f32);
        return strdup(buf);
    case AMQP_FIELD_KIND_F64:
        snprintf(buf, sizeof(buf), "%.17g", v->value.f64);
        return strdup(buf);
    case AMQP_FIELD_KIND_TIMESTAMP:
        if (v->value.u64 > (uint64_t)253402300799) { /* after 9999-12-31 */
            *unsupported = true;
            return NULL;
        }
        td_format_time_ms((int64_t)v->value.u64 * 1000, buf);
        return strdup(buf);
    default: /* tables, arrays, decimals, void */
        *unsupported = true;
        return NULL;
    }
    *type = TD_CE_INTEGER;
    return strdup(buf);
}

/* "cloudEvents:" or "cloudEvents_" (any case): the length of the prefix, or 0. */
static size_t ce_prefix(amqp_bytes_t key)
{
    if (key.len > 12 && strncasecmp(key.bytes, "cloudEvents", 11) == 0) {
        char c = ((const char *)key.bytes)[11];
        if (c == ':' || c == '_') {
            return 12;
        }
    }
    return 0;
}

static bool has_flag(const amqp_basic_properties_t *p, amqp_flags_t f)
{
    return p && (p->_flags & f);
}

/* The content type as a C string (repaired, at most 256 bytes), or NULL. */
static char *content_type(const amqp_basic_properties_t *p)
{
    if (!has_flag(p, AMQP_BASIC_CONTENT_TYPE_FLAG) || p->content_type.len == 0 ||
        p->content_type.len > 256) {
        return NULL;
    }
    return utf8_repair(p->content_type.bytes, p->content_type.len);
}

static struct td_event *from_binary(const amqp_basic_properties_t *p, const void *body, size_t len,
                                    char *err, size_t errlen)
{
    struct td_event *ev = td_event_new();
    char *ct = content_type(p);
    char name[TD_CE_NAME_MAX + 2];
    size_t nattrs = 0;
    if (!ev) {
        goto oom;
    }
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        size_t plen = ce_prefix(e->key);
        if (!plen) {
            continue;
        }
        size_t nlen = e->key.len - plen;
        if (nlen >= sizeof(name)) {
            td_ce_errf(err, errlen, "attribute name too long in header '%.40s...'",
                       (const char *)e->key.bytes);
            goto fail;
        }
        memcpy(name, (const char *)e->key.bytes + plen, nlen);
        name[nlen] = '\0';
        if (!td_ce_valid_name(name) || strcmp(name, "data") == 0) {
            td_ce_errf(err, errlen, "invalid attribute name in header 'cloudEvents:%.*s'",
                       (int)nlen, name);
            goto fail;
        }
        if (++nattrs > MAX_BINARY_ATTRS) {
            td_ce_errf(err, errlen, "more than %d cloudEvents attributes", MAX_BINARY_ATTRS);
            goto fail;
        }
        enum td_ce_vtype type;
        bool bad = false;
        char *value = field_text(&e->value, true, &type, &bad);
        if (!value) {
            if (bad) {
                td_ce_errf(err, errlen,
                           "attribute '%s' has a value of an unusable kind or encoding "
                           "(table, array, invalid UTF-8 or too long)",
                           name);
                goto fail;
            }
            goto oom;
        }
        if (strcmp(name, "specversion") == 0 || strcmp(name, "datacontenttype") == 0) {
            type = TD_CE_STRING;
        } else if (type != TD_CE_STRING && td_ce_string_only(name)) {
            /* a boolean `type` would become "type":true in the JSON format, which no reader
             * (ours included) accepts: refused here, as the JSON format refuses it */
            td_ce_errf(err, errlen, "attribute '%s' must be a string", name);
            free(value);
            goto fail;
        }
        int rc = td_event_set_typed(ev, name, value, type);
        free(value);
        if (rc != 0) {
            goto oom;
        }
    }
    if (ct && td_event_set(ev, "datacontenttype", ct) != 0) {
        goto oom;
    }
    if (td_event_set_data(ev, body ? body : "", len) != 0) {
        goto oom;
    }
    if (td_event_validate(ev, err, errlen) != 0) {
        goto fail;
    }
    free(ct);
    return ev;
oom:
    td_ce_errf(err, errlen, "out of memory");
fail:
    free(ct);
    td_event_unref(ev);
    return NULL;
}

/* Hex SHA-256 of queue, NUL, body into out[65]. */
static int hash_id(const char *queue, const void *body, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(ctx, queue ? queue : "", strlen(queue ? queue : "") + 1) &&
             (len == 0 || EVP_DigestUpdate(ctx, body, len)) && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return -1;
    }
    for (unsigned int i = 0; i < mdlen && i < 32; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
    return 0;
}

static struct td_event *wrap(const amqp_basic_properties_t *p, const void *body, size_t len,
                             const char *queue, const char *dflt_type, const char *dflt_source)
{
    struct td_event *ev = td_event_new();
    char *ct = content_type(p);
    char *mid = NULL;
    char idbuf[65], ts[32], name[64], count[24];
    size_t kept = 0, dropped = 0;
    if (!ev) {
        goto fail;
    }
    if (has_flag(p, AMQP_BASIC_MESSAGE_ID_FLAG) && p->message_id.len > 0 &&
        p->message_id.len <= 1024) {
        mid = utf8_repair(p->message_id.bytes, p->message_id.len);
        if (!mid) {
            goto fail;
        }
    } else if (hash_id(queue, body, len, idbuf) < 0) {
        goto fail;
    }
    int rc = td_event_set(ev, "specversion", "1.0");
    rc |= td_event_set(ev, "id", mid ? mid : idbuf);
    rc |= td_event_set(ev, "type", dflt_type && *dflt_type ? dflt_type : "dev.triggerd.amqp");
    rc |= td_event_set(ev, "source", dflt_source && *dflt_source ? dflt_source : "triggerd");
    if (has_flag(p, AMQP_BASIC_TIMESTAMP_FLAG) && p->timestamp <= (uint64_t)253402300799) {
        td_format_time_ms((int64_t)p->timestamp * 1000, ts);
        rc |= td_event_set(ev, "time", ts);
    }
    /* A content type that td_event_validate would refuse (a control character: datacontenttype
     * travels as a raw Content-Type header; over 255 bytes once invalid UTF-8 was repaired into
     * U+FFFD) is left out, and counted. */
    bool ct_bad = ct && strlen(ct) > 255;
    for (const unsigned char *c = (const unsigned char *)ct; c && *c && !ct_bad; c++) {
        ct_bad = *c < 0x20 || *c == 0x7f;
    }
    if (ct_bad) {
        free(ct);
        ct = NULL;
        dropped++;
    }
    if (ct) {
        rc |= td_event_set(ev, "datacontenttype", ct);
    }
    if (rc != 0) {
        goto fail;
    }
    for (int i = 0; p && (p->_flags & AMQP_BASIC_HEADERS_FLAG) && i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        char key[256];
        if (e->key.len == 0 || e->key.len >= sizeof(key) || kept >= TD_AMQP_MAX_HEADER_ATTRS) {
            dropped++;
            continue;
        }
        memcpy(key, e->key.bytes, e->key.len);
        key[e->key.len] = '\0';
        if (memchr(key, '\0', e->key.len) || td_ce_sanitize_name(key, name, sizeof(name)) < 0 ||
            is_reserved(name) || td_event_get(ev, name)) {
            dropped++;
            continue;
        }
        enum td_ce_vtype type;
        bool unsupported = false;
        char *value = field_text(&e->value, false, &type, &unsupported);
        if (!value) {
            if (!unsupported) {
                goto fail;
            }
            dropped++;
            continue;
        }
        rc = td_event_set_typed(ev, name, value, type);
        free(value);
        if (rc != 0) {
            goto fail;
        }
        kept++;
    }
    if (dropped > 0) {
        snprintf(count, sizeof(count), "%zu", dropped);
        if (td_event_set_typed(ev, "amqpheadersdropped", count, TD_CE_INTEGER) != 0) {
            goto fail;
        }
    }
    if (td_event_set_data(ev, body ? body : "", len) != 0) {
        goto fail;
    }
    free(ct);
    free(mid);
    return ev;
fail:
    free(ct);
    free(mid);
    td_event_unref(ev);
    return NULL;
}

struct td_event *td_ce_wrap_amqp(const struct amqp_basic_properties_t_ *props, const void *body,
                                 size_t len, const char *queue, const char *dflt_type,
                                 const char *dflt_source)
{
    return wrap(props, body, len, queue, dflt_type, dflt_source);
}

struct td_event *td_ce_from_amqp(const struct amqp_basic_properties_t_ *props, const void *body,
                                 size_t len, const char *queue, const char *dflt_type,
                                 const char *dflt_source, bool *wrapped, char *err, size_t errlen)
{
    const amqp_basic_properties_t *p = props;
    *wrapped = false;
    if (has_flag(p, AMQP_BASIC_HEADERS_FLAG)) {
        for (int i = 0; i < p->headers.num_entries; i++) {
            if (ce_prefix(p->headers.entries[i].key)) {
                return from_binary(p, body, len, err, errlen);
            }
        }
    }
    char *ct = content_type(p);
    bool structured = ct && td_ce_media_is(ct, "application/cloudevents+json");
    free(ct);
    if (structured) {
        return td_ce_from_json(body ? body : "", len, err, errlen);
    }
    *wrapped = true;
    struct td_event *ev = wrap(p, body, len, queue, dflt_type, dflt_source);
    if (!ev) {
        td_ce_errf(err, errlen, "out of memory");
    }
    return ev;
}

/* ---- encoding ---- */

struct td_amqp_out {
    amqp_basic_properties_t props;
    amqp_table_entry_t *entries;
    char **strs; /* every string the properties point to */
    size_t nstrs;
    unsigned char *body;
    size_t body_len;
};

void td_amqp_out_free(struct td_amqp_out *o)
{
    if (!o) {
        return;
    }
    for (size_t i = 0; i < o->nstrs; i++) {
        free(o->strs[i]);
    }
    free(o->strs);
    free(o->entries);
    free(o->body);
    free(o);
}

/* Takes S (malloc'd) into o's string list; returns it as amqp bytes. */
static int keep(struct td_amqp_out *o, char *s, amqp_bytes_t *out)
{
    if (!s) {
        return -1;
    }
    o->strs[o->nstrs++] = s;
    out->bytes = s;
    out->len = strlen(s);
    return 0;
}

struct td_amqp_out *td_ce_to_amqp(const struct td_event *ev)
{
    struct td_amqp_out *o = calloc(1, sizeof(*o));
    if (!o) {
        return NULL;
    }
    o->entries = calloc(ev->nattrs + 1, sizeof(*o->entries));
    o->strs = calloc(2 * ev->nattrs + 4, sizeof(*o->strs));
    o->body = malloc(ev->data_len + 1);
    if (!o->entries || !o->strs || !o->body) {
        goto fail;
    }
    if (ev->data_len) {
        memcpy(o->body, ev->data, ev->data_len);
    }
    o->body_len = ev->data_len;
    amqp_basic_properties_t *p = &o->props;
    p->_flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    p->delivery_mode = AMQP_DELIVERY_PERSISTENT;
    int n = 0;
    for (size_t i = 0; i < ev->nattrs; i++) {
        const struct td_ce_attr *a = &ev->attrs[i];
        if (strcmp(a->name, "datacontenttype") == 0) {
            if (keep(o, strdup(a->value), &p->content_type) < 0) {
                goto fail;
            }
            p->_flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
            continue;
        }
        amqp_table_entry_t *e = &o->entries[n];
        size_t klen = strlen(a->name) + 13;
        char *key = malloc(klen);
        if (!key) {
            goto fail;
        }
        snprintf(key, klen, "cloudEvents:%s", a->name);
        if (keep(o, key, &e->key) < 0) {
            goto fail;
        }
        if (a->type == TD_CE_INTEGER) {
            e->value.kind = AMQP_FIELD_KIND_I64;
            e->value.value.i64 = strtoll(a->value, NULL, 10);
        } else if (a->type == TD_CE_BOOLEAN) {
            e->value.kind = AMQP_FIELD_KIND_BOOLEAN;
            e->value.value.boolean = strcmp(a->value, "true") == 0;
        } else {
            e->value.kind = AMQP_FIELD_KIND_UTF8;
            if (keep(o, strdup(a->value), &e->value.value.bytes) < 0) {
                goto fail;
            }
            if (strcmp(a->name, "id") == 0) {
                p->message_id = e->value.value.bytes; /* shared: owned once in strs */
                p->_flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
            }
        }
        n++;
    }
    p->headers.num_entries = n;
    p->headers.entries = o->entries;
    return o;
fail:
    td_amqp_out_free(o);
    return NULL;
}

const struct amqp_basic_properties_t_ *td_amqp_out_props(const struct td_amqp_out *o)
{
    return &o->props;
}

const void *td_amqp_out_body(const struct td_amqp_out *o, size_t *len)
{
    *len = o->body_len;
    return o->body;
}
