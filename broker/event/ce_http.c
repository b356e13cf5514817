/* ce_http.c - the CloudEvents HTTP protocol binding: binary mode encoding, decoding of binary
 * and structured requests/responses, and the header percent-encoding the binding requires.
 *
 * Binary mode maps each attribute to a "ce-<name>" header (datacontenttype to Content-Type)
 * and the data to the body; structured mode is the JSON format (ce_json.c) with Content-Type
 * application/cloudevents+json. Header values coming in are percent-decoded and must be UTF-8.
 * Everything here is pure and may run on any thread.
 */
#include "ce_http.h"
#include "ce_internal.h"
#include "ce_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void td_http_headers_free(struct td_http_headers *h)
{
    if (h == NULL) {
        return;
    }
    for (size_t i = 0; i < h->n; i++) {
        free(h->items[i].name);
        free(h->items[i].value);
    }
    free(h->items);
    h->items = NULL;
    h->n = 0;
}

/* The last header named NAME wins, as for attributes. */
const char *td_http_headers_get(const struct td_http_headers *h, const char *name)
{
    const char *found = NULL;

    if (h == NULL || name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < h->n; i++) {
        if (h->items[i].name != NULL && h->items[i].value != NULL &&
            strcasecmp(h->items[i].name, name) == 0) {
            found = h->items[i].value;
        }
    }
    return found;
}

static bool needs_encoding(unsigned char c)
{
    return c < 0x21 || c > 0x7E || c == '"' || c == '%';
}

/* Returns a malloc'd string the caller frees; NULL on out of memory. */
char *td_ce_percent_encode(const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len;
    char *out;
    size_t o = 0;

    if (value == NULL) {
        return NULL;
    }
    len = strlen(value);
    if (len >= (SIZE_MAX - 1) / 3) {
        return NULL;
    }
    out = malloc(len * 3 + 1);
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (needs_encoding(c)) {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return out;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Returns a malloc'd string the caller frees; NULL on a malformed %XY, a %00 (it would cut
 * the C string short), a result that is not UTF-8, or out of memory. Characters that should
 * have been encoded but were not are passed through, as the binding asks of receivers. */
char *td_ce_percent_decode(const char *value)
{
    size_t len;
    char *out = NULL;
    size_t o = 0;

    if (value == NULL) {
        goto fail;
    }
    len = strlen(value);
    out = malloc(len + 1);
    if (out == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < len; i++) {
        int hi;
        int lo;

        if (value[i] != '%') {
            out[o++] = value[i];
            continue;
        }
        if (i + 2 >= len) {
            goto fail;
        }
        hi = hex_value(value[i + 1]);
        lo = hex_value(value[i + 2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            goto fail;
        }
        out[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[o] = '\0';
    if (!td_ce_utf8_valid((const unsigned char *)out, o)) {
        goto fail;
    }
    return out;
fail:
    free(out);
    return NULL;
}

/* Takes ownership of name and value (frees them on failure). */
static int headers_push(struct td_http_headers *h, size_t *cap, char *name, char *value)
{
    if (name == NULL || value == NULL) {
        goto fail;
    }
    if (h->n == *cap) {
        size_t ncap = *cap != 0 ? *cap * 2 : 8;
        struct td_http_header *grown = realloc(h->items, ncap * sizeof(*grown));
        if (grown == NULL) {
            goto fail;
        }
        h->items = grown;
        *cap = ncap;
    }
    h->items[h->n].name = name;
    h->items[h->n].value = value;
    h->n++;
    return 0;
fail:
    free(name);
    free(value);
    return -1;
}

/* A Content-Type goes out verbatim, so it must not be able to end the header. */
static bool safe_header_value(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7F) {
            return false;
        }
    }
    return true;
}

int td_ce_http_encode_binary_lines(const struct td_event *ev, td_ce_http_line_fn fn, void *arg)
{
    char stack[512];

    if (ev == NULL || fn == NULL) {
        return -1;
    }
    for (size_t i = 0; i < ev->nattrs; i++) {
        const struct td_ce_attr *a = &ev->attrs[i];

        if (!td_ce_valid_name(a->name) || a->value == NULL) {
            return -1;
        }
        bool ct = strcmp(a->name, "datacontenttype") == 0;
        size_t vlen = strlen(a->value);
        size_t nlen = ct ? strlen("Content-Type") : strlen(a->name) + 3;
        if ((ct && !safe_header_value(a->value)) || vlen >= (SIZE_MAX - nlen - 3) / 3) {
            return -1;
        }
        size_t need = nlen + 2 + (ct ? vlen : vlen * 3) + 1;
        char *line = need <= sizeof(stack) ? stack : malloc(need);
        if (line == NULL) {
            return -1;
        }
        size_t o;
        if (ct) {
            memcpy(line, "Content-Type: ", 14);
            memcpy(line + 14, a->value, vlen);
            o = 14 + vlen;
        } else {
            static const char hex[] = "0123456789ABCDEF";
            memcpy(line, "ce-", 3);
            memcpy(line + 3, a->name, nlen - 3);
            o = nlen;
            line[o++] = ':';
            line[o++] = ' ';
            for (size_t j = 0; j < vlen; j++) {
                unsigned char c = (unsigned char)a->value[j];
                if (needs_encoding(c)) {
                    line[o++] = '%';
                    line[o++] = hex[c >> 4];
                    line[o++] = hex[c & 15];
                } else {
                    line[o++] = (char)c;
                }
            }
        }
        line[o] = '\0';
        int rc = fn(arg, line, o, ct);
        if (line != stack) {
            free(line);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Fails (-1) on out of memory, on an attribute name that is not [a-z0-9]+ or on a
 * datacontenttype holding control characters: both would let a value forge headers. */
int td_ce_http_encode_binary(const struct td_event *ev, struct td_http_headers *out,
                             const unsigned char **body, size_t *len)
{
    size_t cap = 0;

    if (ev == NULL || out == NULL) {
        return -1;
    }
    out->items = NULL;
    out->n = 0;
    for (size_t i = 0; i < ev->nattrs; i++) {
        const struct td_ce_attr *a = &ev->attrs[i];
        char *name;
        char *value;

        if (!td_ce_valid_name(a->name)) {
            goto fail;
        }
        if (strcmp(a->name, "datacontenttype") == 0) {
            if (!safe_header_value(a->value)) {
                goto fail;
            }
            name = strdup("Content-Type");
            value = strdup(a->value);
        } else {
            size_t nlen = strlen(a->name);
            name = malloc(nlen + 4);
            if (name != NULL) {
                memcpy(name, "ce-", 3);
                memcpy(name + 3, a->name, nlen + 1);
            }
            value = td_ce_percent_encode(a->value);
        }
        if (headers_push(out, &cap, name, value) != 0) {
            goto fail;
        }
    }
    if (body != NULL) {
        *body = ev->data;
    }
    if (len != NULL) {
        *len = ev->data != NULL ? ev->data_len : 0;
    }
    return 0;
fail:
    td_http_headers_free(out);
    return -1;
}

static struct td_event *decode_binary(const struct td_http_headers *h, const unsigned char *body,
                                      size_t len, char *err, size_t errlen)
{
    struct td_event *ev = td_event_new();
    char *attr = NULL;
    const char *ct;

    if (ev == NULL) {
        td_ce_errf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < h->n; i++) {
        const char *name = h->items[i].name;
        char *value;

        if (name == NULL || h->items[i].value == NULL || strncasecmp(name, "ce-", 3) != 0) {
            continue;
        }
        free(attr);
        attr = strdup(name + 3);
        if (attr == NULL) {
            td_ce_errf(err, errlen, "out of memory");
            goto fail;
        }
        for (char *p = attr; *p != '\0'; p++) {
            *p = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
        }
        if (!td_ce_valid_name(attr)) {
            char why[160];
            td_ce_name_errf(attr, why, sizeof(why)); /* the charset, or only the length */
            td_ce_errf(err, errlen, "header '%.64s' does not name a valid attribute: %s", name,
                       why);
            goto fail;
        }
        value = td_ce_percent_decode(h->items[i].value);
        if (value == NULL) {
            td_ce_errf(err, errlen, "header '%.64s' is not percent-encoded UTF-8", name);
            goto fail;
        }
        if (td_ce_decode_set(ev, attr, value, TD_CE_STRING, err, errlen) != 0) {
            free(value);
            goto fail;
        }
        free(value);
    }
    ct = td_http_headers_get(h, "content-type");
    if (ct != NULL && td_event_set(ev, "datacontenttype", ct) != 0) {
        td_ce_errf(err, errlen, "out of memory");
        goto fail;
    }
    if (body != NULL && len > 0 && td_event_set_data(ev, body, len) != 0) {
        td_ce_errf(err, errlen, "out of memory");
        goto fail;
    }
    if (td_event_validate(ev, err, errlen) != 0) {
        goto fail;
    }
    free(attr);
    return ev;
fail:
    free(attr);
    td_event_unref(ev);
    return NULL;
}

/* Returns an event the caller owns (td_event_unref), or NULL. Batched mode
 * (application/cloudevents-batch+json) is reported as an error, not as "not a CloudEvent":
 * wrapping a whole batch as one event's data would hide the mistake. */
struct td_event *td_ce_http_decode(const struct td_http_headers *h, const unsigned char *body,
                                   size_t len, bool *not_ce, char *err, size_t errlen)
{
    const char *ct;

    if (not_ce != NULL) {
        *not_ce = false;
    }
    td_ce_errf(err, errlen, "%s", "");
    if (h == NULL) {
        td_ce_errf(err, errlen, "no headers");
        return NULL;
    }
    ct = td_http_headers_get(h, "content-type");
    if (td_ce_media_is(ct, "application/cloudevents+json")) {
        if (body == NULL || len == 0) {
            td_ce_errf(err, errlen, "structured CloudEvent with an empty body");
            return NULL;
        }
        return td_ce_from_json((const char *)body, len, err, errlen);
    }
    if (td_ce_media_is(ct, "application/cloudevents-batch+json")) {
        td_ce_errf(err, errlen, "batched CloudEvents are not supported");
        return NULL;
    }
    if (td_http_headers_get(h, "ce-specversion") != NULL) {
        return decode_binary(h, body, len, err, errlen);
    }
    if (not_ce != NULL) {
        *not_ce = true;
    }
    return NULL;
}
