/* fuzz_ce_http.c - td_ce_http_decode (an HTTP request or response carrying a CloudEvent,
 * binary or structured mode) on an HTTP-like input: "Name: value" lines up to an empty line,
 * then the body. An accepted event goes through every encoder and back (fuzz_ce.h).
 */
#include "fuzz_ce.h"

#define MAX_HEADERS 256

static char *dup_range(const uint8_t *p, size_t n)
{
    return fuzz_strndup(p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct td_http_headers h = {0};
    struct td_event *ev;
    char err[256] = "";
    bool not_ce = false;
    size_t pos = 0;

    h.items = calloc(MAX_HEADERS, sizeof(*h.items));
    if (!h.items) {
        abort();
    }
    while (pos < size && h.n < MAX_HEADERS) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - data) : size;
        size_t line_end = end > pos && data[end - 1] == '\r' ? end - 1 : end;
        if (line_end == pos) { /* the empty line: the body follows */
            pos = nl ? end + 1 : size;
            break;
        }
        const uint8_t *colon = memchr(data + pos, ':', line_end - pos);
        size_t name_end = colon ? (size_t)(colon - data) : line_end;
        size_t vstart = colon ? name_end + 1 : line_end;
        while (vstart < line_end && data[vstart] == ' ') {
            vstart++;
        }
        h.items[h.n].name = dup_range(data + pos, name_end - pos);
        h.items[h.n].value = dup_range(data + vstart, line_end - vstart);
        h.n++;
        pos = nl ? end + 1 : size;
    }
    /* The body in an exact-size buffer, so that ASan sees a read past its end. */
    size_t blen = size - pos;
    unsigned char *body = blen ? malloc(blen) : NULL;
    if (blen) {
        if (!body) {
            abort();
        }
        memcpy(body, data + pos, blen);
    }

    ev = td_ce_http_decode(&h, body, blen, &not_ce, err, sizeof(err));
    if (ev) {
        FUZZ_CHECK(!not_ce, "an event that is not a CloudEvent");
        fuzz_ce_roundtrips(ev);
    } else {
        FUZZ_CHECK(not_ce || err[0] != '\0', "refused without a message");
    }
    td_event_unref(ev);
    free(body);
    td_http_headers_free(&h);
    return 0;
}
