/* ce_kafka.c - the CloudEvents Kafka protocol binding, and the wrapping of records that are not
 * CloudEvents (README "Kafka"; docs/architecture.md has the path of one event).
 *
 * Binary mode: a ce_specversion header marks a CloudEvent; each ce_<attr> header is an
 * attribute, content-type is datacontenttype, the key is partitionkey and the value the data.
 * Structured mode: content-type application/cloudevents+json and the JSON event as the value.
 * Anything else is wrapped with a deterministic id (kafka:<topic>/<partition>/<offset>), so a
 * redelivered record is recognisably the same event.
 *
 * Records come from the network: header values may hold any bytes (or be null), a record may
 * carry thousands of headers or megabyte values. Nothing here trusts lengths or text; what a
 * wrapped event takes from headers is bounded (TD_KAFKA_MAX_HEADER_ATTRS and
 * TD_KAFKA_MAX_HEADER_VALUE): beyond that td_ce_from_kafka refuses the record with a reason
 * (it becomes a dead letter) and td_ce_wrap_kafka leaves the excess out.
 *
 * Ownership: returned events belong to the caller; td_ce_to_kafka fills malloc'd arrays freed
 * by td_kafka_headers_free. Everything here is pure and may run on any thread.
 */
#include "ce_kafka.h"
#include "ce_internal.h"
#include "ce_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CE_PREFIX     "ce_"
#define CE_PREFIX_LEN 3
#define HEADER_PREFIX "kafkaheader"
#define MAX_NAME      64 /* of a sanitized header name */
#define MAX_CT        256

/* A copy of LEN bytes as a C string, or NULL (*bad set) when they hold a NUL or are not
 * UTF-8; NULL with *bad clear is out of memory. */
static char *text_dup(const void *s, size_t len, bool *bad)
{
    *bad = s == NULL || memchr(s, '\0', len) != NULL ||
           !td_ce_utf8_valid((const unsigned char *)s, len);
    return *bad ? NULL : strndup(s, len);
}

/* A C string of LEN bytes with NULs dropped and bytes that are not UTF-8 replaced by U+FFFD.
 * NULL on out of memory. */
static char *text_lossy(const unsigned char *s, size_t len)
{
    char *out = malloc(len * 3 + 1);
    size_t n = 0;
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len;) {
        size_t k = td_ce_utf8_next(s + i, len - i);
        if (k == 0) {
            memcpy(out + n, "\xEF\xBF\xBD", 3);
            n += 3;
            i++;
        } else {
            if (!(k == 1 && s[i] == '\0')) {
                memcpy(out + n, s + i, k);
                n += k;
            }
            i += k;
        }
    }
    out[n] = '\0';
    return out;
}

static bool rec_ok(const struct td_kafka_record *r)
{
    return r != NULL && r->topic != NULL &&
           (r->nheaders == 0 || (r->hnames != NULL && r->hvalues != NULL && r->hlens != NULL));
}

/* Index of the last header named NAME (case-insensitive when NOCASE), or -1. */
static long find_header(const struct td_kafka_record *r, const char *name, bool nocase)
{
    long found = -1;
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *h = r->hnames[i] ? r->hnames[i] : "";
        if (nocase ? strcasecmp(h, name) == 0 : strcmp(h, name) == 0) {
            found = (long)i;
        }
    }
    return found;
}

/* The content-type header as a short C string into buf, or NULL. */
static const char *content_type(const struct td_kafka_record *r, char *buf, size_t buflen)
{
    long i = find_header(r, "content-type", true);
    if (i < 0 || r->hvalues[i] == NULL || r->hlens[i] >= buflen ||
        memchr(r->hvalues[i], '\0', r->hlens[i]) != NULL ||
        !td_ce_utf8_valid(r->hvalues[i], r->hlens[i])) {
        return NULL;
    }
    /* A control character makes it no media type (datacontenttype travels as a raw
     * Content-Type header): a wrapped record keeps it as kafkaheadercontenttype instead. */
    for (size_t j = 0; j < r->hlens[i]; j++) {
        unsigned char c = ((const unsigned char *)r->hvalues[i])[j];
        if (c < 0x20 || c == 0x7f) {
            return NULL;
        }
    }
    memcpy(buf, r->hvalues[i], r->hlens[i]);
    buf[r->hlens[i]] = '\0';
    return buf;
}

static struct td_event *from_binary(const struct td_kafka_record *r, char *err, size_t errlen)
{
    struct td_event *ev = td_event_new();
    char *val = NULL;
    bool bad;

    if (ev == NULL) {
        goto oom;
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *h = r->hnames[i] ? r->hnames[i] : "";
        bool is_ct = strcasecmp(h, "content-type") == 0;
        const char *name = is_ct ? "datacontenttype" : h + CE_PREFIX_LEN;
        if (!is_ct && strncmp(h, CE_PREFIX, CE_PREFIX_LEN) != 0) {
            continue;
        }
        if (!is_ct && !td_ce_valid_name(name)) {
            char why[160];
            td_ce_name_errf(name, why, sizeof(why)); /* the charset, or only the length */
            td_ce_errf(err, errlen, "header '%.64s' does not name a valid attribute: %s", h, why);
            goto fail;
        }
        val = text_dup(r->hvalues[i], r->hlens[i], &bad);
        if (bad) {
            td_ce_errf(err, errlen, "header '%.64s' is not UTF-8 text", h);
            goto fail;
        }
        if (val == NULL) {
            goto oom;
        }
        if (td_ce_decode_set(ev, name, val, TD_CE_STRING, err, errlen) != 0) {
            goto fail;
        }
        free(val);
        val = NULL;
    }
    if (r->key != NULL && td_event_get(ev, "partitionkey") == NULL) {
        val = text_dup(r->key, r->key_len, &bad);
        if (val == NULL && !bad) {
            goto oom;
        }
        /* Under the same cap as the headers: 256 ce_ headers and a key are one too many,
         * an event no codec (the JSON one first) would take back. */
        if (val != NULL &&
            td_ce_decode_set(ev, "partitionkey", val, TD_CE_STRING, err, errlen) != 0) {
            goto fail;
        }
        free(val);
        val = NULL;
    }
    if (r->value != NULL && td_event_set_data(ev, r->value, r->value_len) != 0) {
        goto oom;
    }
    if (td_event_validate(ev, err, errlen) != 0) {
        goto fail;
    }
    return ev;
oom:
    td_ce_errf(err, errlen, "out of memory");
fail:
    free(val);
    td_event_unref(ev);
    return NULL;
}

/* Wraps R. FORCE (td_ce_wrap_kafka) never fails but on out of memory: missing defaults get
 * placeholders and headers past the limits are left out instead of refusing the record. */
static struct td_event *wrap(const struct td_kafka_record *r, const char *dflt_type,
                             const char *dflt_source, bool force, char *err, size_t errlen)
{
    struct td_event *ev = NULL;
    char *val = NULL;
    char id[512];
    char ts[32];
    char ctbuf[MAX_CT];
    bool no_type = dflt_type == NULL || *dflt_type == '\0';
    bool no_source = dflt_source == NULL || *dflt_source == '\0';
    size_t dropped = 0;
    size_t mapped = 0;
    bool bad;

    if (force) {
        dflt_type = no_type ? "dev.triggerd.kafka.record" : dflt_type;
        dflt_source = no_source ? "triggerd" : dflt_source;
    } else if (no_type || no_source) {
        td_ce_errf(err, errlen,
                   "record %.200s/%" PRId32 "/%" PRId64 " is not a CloudEvent and no event type "
                   "and source are configured to wrap it",
                   r->topic, r->partition, r->offset);
        return NULL;
    }
    snprintf(id, sizeof(id), "kafka:%s/%" PRId32 "/%" PRId64, r->topic, r->partition, r->offset);
    ev = td_event_new();
    if (ev == NULL || td_event_set(ev, "specversion", "1.0") != 0 ||
        td_event_set(ev, "id", id) != 0 || td_event_set(ev, "source", dflt_source) != 0 ||
        td_event_set(ev, "type", dflt_type) != 0) {
        goto oom;
    }
    if (r->timestamp_ms >= 0) {
        td_format_time_ms(r->timestamp_ms, ts);
        if (td_event_set(ev, "time", ts) != 0) {
            goto oom;
        }
    }
    if (r->key != NULL) {
        val = text_dup(r->key, r->key_len, &bad);
        if (bad) {
            val = td_base64_encode(r->key, r->key_len);
            if (val == NULL || td_event_set(ev, "partitionkeybase64", val) != 0) {
                goto oom;
            }
        } else if (val == NULL || td_event_set(ev, "partitionkey", val) != 0) {
            goto oom;
        }
        free(val);
        val = NULL;
    }
    const char *ct = content_type(r, ctbuf, sizeof(ctbuf));
    if (ct != NULL && td_event_set(ev, "datacontenttype", ct) != 0) {
        goto oom;
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *h = r->hnames[i] ? r->hnames[i] : "";
        char clean[MAX_NAME + 1];
        char name[sizeof(HEADER_PREFIX) + MAX_NAME + 1];
        if (strcasecmp(h, "content-type") == 0 && ct != NULL) {
            continue;
        }
        if (mapped >= TD_KAFKA_MAX_HEADER_ATTRS ||
            (r->hvalues[i] != NULL && r->hlens[i] > TD_KAFKA_MAX_HEADER_VALUE)) {
            if (!force) {
                if (mapped >= TD_KAFKA_MAX_HEADER_ATTRS) {
                    td_ce_errf(err, errlen,
                               "record has %zu headers; at most %d become event attributes",
                               r->nheaders, TD_KAFKA_MAX_HEADER_ATTRS);
                } else {
                    td_ce_errf(err, errlen,
                               "header '%.64s' has a %zu-byte value; at most %d bytes become an "
                               "event attribute",
                               h, r->hlens[i], TD_KAFKA_MAX_HEADER_VALUE);
                }
                goto fail;
            }
            dropped++;
            continue;
        }
        /* A name that sanitizes to nothing, or to more than MAX_NAME characters, is not kept:
         * there is no attribute it could become. */
        if (strlen(h) > 4 * MAX_NAME || td_ce_sanitize_name(h, clean, sizeof(clean)) != 0) {
            dropped++;
            continue;
        }
        snprintf(name, sizeof(name), "%s%s", HEADER_PREFIX, clean);
        val = r->hvalues[i] != NULL ? text_lossy(r->hvalues[i], r->hlens[i]) : strdup("");
        if (val == NULL || td_event_set(ev, name, val) != 0) {
            goto oom;
        }
        /* The W3C trace context headers (what OpenTelemetry's Kafka instrumentation writes)
         * are the distributed tracing extension's attributes too: the trace carries through. */
        if ((strcasecmp(h, "traceparent") == 0 || strcasecmp(h, "tracestate") == 0) &&
            td_event_set(ev, clean, val) != 0) {
            goto oom;
        }
        free(val);
        val = NULL;
        mapped++;
    }
    if (dropped > 0) {
        char n[32];
        snprintf(n, sizeof(n), "%zu", dropped);
        if (td_event_set_typed(ev, "kafkaheadersdropped", n, TD_CE_INTEGER) != 0) {
            goto oom;
        }
    }
    if (r->value != NULL && td_event_set_data(ev, r->value, r->value_len) != 0) {
        goto oom;
    }
    if (!force && td_event_validate(ev, err, errlen) != 0) {
        goto fail;
    }
    return ev;
oom:
    td_ce_errf(err, errlen, "out of memory");
fail:
    free(val);
    td_event_unref(ev);
    return NULL;
}

struct td_event *td_ce_from_kafka(const struct td_kafka_record *rec, const char *dflt_type,
                                  const char *dflt_source, bool *wrapped, char *err, size_t errlen)
{
    char ctbuf[MAX_CT];

    if (wrapped != NULL) {
        *wrapped = false;
    }
    if (!rec_ok(rec)) {
        td_ce_errf(err, errlen, "malformed record");
        return NULL;
    }
    if (find_header(rec, "ce_specversion", false) >= 0) {
        return from_binary(rec, err, errlen);
    }
    const char *ct = content_type(rec, ctbuf, sizeof(ctbuf));
    if (ct != NULL && td_ce_media_is(ct, "application/cloudevents+json")) {
        if (rec->value == NULL) {
            td_ce_errf(err, errlen, "structured CloudEvent record has no value");
            return NULL;
        }
        return td_ce_from_json(rec->value, rec->value_len, err, errlen);
    }
    if (wrapped != NULL) {
        *wrapped = true;
    }
    return wrap(rec, dflt_type, dflt_source, false, err, errlen);
}

struct td_event *td_ce_wrap_kafka(const struct td_kafka_record *rec, const char *dflt_type,
                                  const char *dflt_source)
{
    if (!rec_ok(rec)) {
        return NULL;
    }
    return wrap(rec, dflt_type, dflt_source, true, NULL, 0);
}

void td_kafka_headers_free(struct td_kafka_headers *h)
{
    if (h == NULL) {
        return;
    }
    for (size_t i = 0; i < h->n; i++) {
        free(h->names[i]);
        free(h->values[i]);
    }
    free(h->names);
    free(h->values);
    h->names = NULL;
    h->values = NULL;
    h->n = 0;
}

static int push(struct td_kafka_headers *h, const char *prefix, const char *name, const char *val)
{
    size_t plen = strlen(prefix);
    size_t nlen = strlen(name);
    char *n = malloc(plen + nlen + 1);
    char *v = strdup(val);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return -1;
    }
    memcpy(n, prefix, plen);
    memcpy(n + plen, name, nlen + 1);
    h->names[h->n] = n;
    h->values[h->n] = v;
    h->n++;
    return 0;
}

int td_ce_to_kafka(const struct td_event *ev, struct td_kafka_headers *out)
{
    if (out == NULL) {
        return -1;
    }
    out->names = NULL;
    out->values = NULL;
    out->n = 0;
    if (ev == NULL || td_event_get(ev, "specversion") == NULL) {
        goto fail;
    }
    out->names = calloc(ev->nattrs + 1, sizeof(*out->names));
    out->values = calloc(ev->nattrs + 1, sizeof(*out->values));
    if (out->names == NULL || out->values == NULL) {
        goto fail;
    }
    /* specversion first, so a reader that stops early still sees a CloudEvent */
    if (push(out, CE_PREFIX, "specversion", td_event_get(ev, "specversion")) != 0) {
        goto fail;
    }
    for (size_t i = 0; i < ev->nattrs; i++) {
        const struct td_ce_attr *a = &ev->attrs[i];
        if (!td_ce_valid_name(a->name)) {
            goto fail;
        }
        if (strcmp(a->name, "specversion") == 0) {
            continue;
        }
        if (strcmp(a->name, "datacontenttype") == 0) {
            if (push(out, "", "content-type", a->value) != 0) {
                goto fail;
            }
        } else if (push(out, CE_PREFIX, a->name, a->value) != 0) {
            goto fail;
        }
    }
    return 0;
fail:
    td_kafka_headers_free(out);
    return -1;
}
