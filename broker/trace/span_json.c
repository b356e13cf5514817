/* span_json.c - OTLP/JSON encoding of spans (see span_json.h). Written by hand into a growing
 * buffer: a span is a fixed shape, and this runs once per span on the loop thread. */
#include "span_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "traceparent.h"

struct jbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct jbuf *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(struct jbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* s as a JSON string, quotes included. Bytes >= 0x80 pass as they are (UTF-8 stays UTF-8). */
static void put_str(struct jbuf *b, const char *s)
{
    put(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        put(b, run, (size_t)(s - run));
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(b, esc, 2);
        } else {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put(b, esc, 6);
        }
        run = s + 1;
    }
    put(b, run, (size_t)(s - run));
    put(b, "\"", 1);
}

static void put_hex(struct jbuf *b, const uint8_t *id, size_t n)
{
    char hex[33];
    td_trace_hex(id, n, hex);
    put(b, "\"", 1);
    put(b, hex, 2 * n);
    put(b, "\"", 1);
}

static void put_i64(struct jbuf *b, int64_t v)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "\"%" PRId64 "\"", v);
    put(b, num, (size_t)n);
}

static void put_attr(struct jbuf *b, const char *key, const char *str, int64_t num)
{
    puts_(b, "{\"key\":");
    put_str(b, key);
    if (str) {
        puts_(b, ",\"value\":{\"stringValue\":");
        put_str(b, str);
    } else {
        puts_(b, ",\"value\":{\"intValue\":");
        put_i64(b, num);
    }
    puts_(b, "}}");
}

char *td_span_json(const struct td_span_rec *r, size_t *len)
{
    struct jbuf b = {0};
    puts_(&b, "{\"traceId\":");
    put_hex(&b, r->trace_id, 16);
    puts_(&b, ",\"spanId\":");
    put_hex(&b, r->span_id, 8);
    if (r->parent_id) {
        puts_(&b, ",\"parentSpanId\":");
        put_hex(&b, r->parent_id, 8);
    }
    if (r->trace_state && r->trace_state[0]) {
        puts_(&b, ",\"traceState\":");
        put_str(&b, r->trace_state);
    }
    puts_(&b, ",\"name\":");
    put_str(&b, r->name);
    char kind[32];
    snprintf(kind, sizeof(kind), ",\"kind\":%d", (int)r->kind);
    puts_(&b, kind);
    puts_(&b, ",\"startTimeUnixNano\":");
    put_i64(&b, r->start_ns);
    puts_(&b, ",\"endTimeUnixNano\":");
    put_i64(&b, r->end_ns < r->start_ns ? r->start_ns : r->end_ns);
    puts_(&b, ",\"attributes\":[");
    for (size_t i = 0; i < r->nattrs; i++) {
        if (i) {
            put(&b, ",", 1);
        }
        put_attr(&b, r->attrs[i].key, r->attrs[i].str, r->attrs[i].num);
    }
    put(&b, "]", 1);
    if (r->link_trace_id && r->link_span_id) {
        puts_(&b, ",\"links\":[{\"traceId\":");
        put_hex(&b, r->link_trace_id, 16);
        puts_(&b, ",\"spanId\":");
        put_hex(&b, r->link_span_id, 8);
        puts_(&b, "}]");
    }
    if (r->status != TD_STATUS_UNSET) {
        char code[16];
        snprintf(code, sizeof(code), "%d", (int)r->status);
        puts_(&b, ",\"status\":{\"code\":");
        puts_(&b, code);
        if (r->status_msg && r->status_msg[0]) {
            puts_(&b, ",\"message\":");
            put_str(&b, r->status_msg);
        }
        put(&b, "}", 1);
    }
    put(&b, "}", 1);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

char *td_span_batch_json(char *const *spans, const size_t *lens, size_t n, const char *service,
                         size_t *len)
{
    struct jbuf b = {0};
    puts_(&b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    put_attr(&b, "service.name", service, 0);
    put(&b, ",", 1);
    put_attr(&b, "service.version", TD_VERSION, 0);
    puts_(&b, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"triggerd\",\"version\":\"" TD_VERSION
              "\"},\"spans\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) {
            put(&b, ",", 1);
        }
        put(&b, spans[i], lens[i]);
    }
    puts_(&b, "]}]}]}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
