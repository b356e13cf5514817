/* cloudevent.c - the CloudEvent 1.0 type: attributes by name, data bytes, refcounting,
 * validation and the content-type rules every codec shares.
 *
 * The codecs live beside it, one job per file: ce_http.c (HTTP binding and percent-encoding),
 * ce_json.c (JSON event format), ce_redis.c (our Redis stream binding), ce_text.c (UTF-8,
 * base64 and RFC 3339 time). Attributes keep their insertion order so that encoders write
 * them back in the order they were received; replacing a value keeps its position.
 */
#include "cloudevent.h"
#include "ce_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void td_ce_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Any thread. The caller owns the returned event (one reference; td_event_unref frees). */
struct td_event *td_event_new(void)
{
    struct td_event *ev = calloc(1, sizeof(*ev));

    if (ev == NULL) {
        return NULL;
    }
    atomic_init(&ev->refs, 1);
    return ev;
}

/* The context attributes of the spec and of the extensions every source sets: an event names
 * them with these instead of a copy of its own, one malloc and one free less per attribute of
 * every event. Nothing writes to an attribute's name, so sharing one is safe. */
static const char known_names[][16] = {
    "specversion",     "id",          "source",     "type",        "subject", "time", "dataschema",
    "datacontenttype", "traceparent", "tracestate", "partitionkey"};
#define NKNOWN (sizeof(known_names) / sizeof(known_names[0]))

static bool is_known_name(const char *name)
{
    uintptr_t p = (uintptr_t)name, first = (uintptr_t)known_names[0];
    return p >= first && p < first + sizeof(known_names);
}

/* The event's copy of name: the shared one for a known name, else a malloc'd one. */
static char *name_copy(const char *name)
{
    size_t len = strlen(name);
    if (len < sizeof(known_names[0])) {
        for (size_t i = 0; i < NKNOWN; i++) {
            if (known_names[i][0] == name[0] && memcmp(known_names[i], name, len + 1) == 0) {
                return (char *)known_names[i];
            }
        }
    }
    return strdup(name);
}

static void name_free(char *name)
{
    if (!is_known_name(name)) {
        free(name);
    }
}

/* The event's copy of a value: in its pool while there is room, else malloc'd. */
static char *value_copy(struct td_event *ev, const char *value)
{
    size_t len = strlen(value);
    if (len < sizeof(ev->pool) - ev->pool_used) {
        char *p = ev->pool + ev->pool_used;
        memcpy(p, value, len + 1);
        ev->pool_used += len + 1;
        return p;
    }
    return strdup(value);
}

/* Frees a value unless it is in the pool (whose room is not reused: an event's values are
 * seldom replaced, and never many times). */
static void value_free(struct td_event *ev, char *value)
{
    uintptr_t v = (uintptr_t)value, pool = (uintptr_t)ev->pool;
    if (v < pool || v >= pool + sizeof(ev->pool)) {
        free(value);
    }
}

static void event_free(struct td_event *ev)
{
    for (size_t i = 0; i < ev->nattrs; i++) {
        name_free(ev->attrs[i].name);
        value_free(ev, ev->attrs[i].value);
    }
    if (ev->attrs != ev->inline_attrs) {
        free(ev->attrs);
    }
    free(ev->slots);
    free(ev->data);
    free(ev);
}

/* Any thread. A deep copy with one reference that the caller owns; NULL on out of memory. */
struct td_event *td_event_clone(const struct td_event *ev)
{
    struct td_event *cp;

    if (ev == NULL) {
        return NULL;
    }
    cp = td_event_new();
    if (cp == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < ev->nattrs; i++) {
        const struct td_ce_attr *a = &ev->attrs[i];
        if (td_event_set_typed(cp, a->name, a->value, a->type) != 0) {
            goto fail;
        }
    }
    if (ev->data != NULL && td_event_set_data(cp, ev->data, ev->data_len) != 0) {
        goto fail;
    }
    return cp;
fail:
    td_event_unref(cp);
    return NULL;
}

struct td_event *td_event_ref(struct td_event *ev)
{
    if (ev != NULL) {
        /* Relaxed: whoever passes ev on to another thread publishes it by other means. */
        atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
    }
    return ev;
}

void td_event_unref(struct td_event *ev)
{
    if (ev == NULL) {
        return;
    }
    /* Release on every drop and acquire on the last one, so each thread's last use of the
     * event happens before event_free. */
    if (atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_acq_rel) <= 1) {
        event_free(ev);
    }
}

/* Below this many attributes a linear scan beats hashing; from it on the index is kept. */
#define TD_CE_INDEX_MIN 16

/* FNV-1a: attribute names are short; the index only has to spread them. Names chosen to
 * collide cost at most TD_CE_MAX_ATTRS probes per lookup, as the linear scan always did. */
static uint32_t name_hash(const char *name)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return h;
}

/* Puts attrs[i] into the index (which has room: nslots > nattrs). */
static void index_put(struct td_event *ev, size_t i)
{
    size_t mask = ev->nslots - 1;
    size_t s = name_hash(ev->attrs[i].name) & mask;

    while (ev->slots[s] != 0) {
        s = (s + 1) & mask;
    }
    ev->slots[s] = (uint32_t)(i + 1);
}

/* (Re)builds the index for at least WANT attributes, or drops it for a small event.
 * 0, or -1 on out of memory (the old index, if any, is then still valid). */
static int index_build(struct td_event *ev, size_t want)
{
    size_t n = 64;
    uint32_t *slots;

    if (want < TD_CE_INDEX_MIN) {
        free(ev->slots);
        ev->slots = NULL;
        ev->nslots = 0;
        return 0;
    }
    while (n < 2 * want) {
        n *= 2;
    }
    if (n == ev->nslots) {
        memset(ev->slots, 0, n * sizeof(*slots));
        slots = ev->slots;
    } else {
        slots = calloc(n, sizeof(*slots));
        if (slots == NULL) {
            return -1;
        }
        free(ev->slots);
    }
    ev->slots = slots;
    ev->nslots = n;
    for (size_t i = 0; i < ev->nattrs; i++) {
        index_put(ev, i);
    }
    return 0;
}

static struct td_ce_attr *find_attr(const struct td_event *ev, const char *name)
{
    if (ev->slots != NULL) {
        size_t mask = ev->nslots - 1;
        for (size_t s = name_hash(name) & mask; ev->slots[s] != 0; s = (s + 1) & mask) {
            struct td_ce_attr *a = &ev->attrs[ev->slots[s] - 1];
            if (strcmp(a->name, name) == 0) {
                return a;
            }
        }
        return NULL;
    }
    /* The first letters differ for most pairs: a byte compare spares a strcmp call, and a
     * lookup of an attribute the event lacks (most lookups of extensions) compares them all. */
    for (size_t i = 0; i < ev->nattrs; i++) {
        if (ev->attrs[i].name[0] == name[0] && strcmp(ev->attrs[i].name, name) == 0) {
            return &ev->attrs[i];
        }
    }
    return NULL;
}

const char *td_event_get(const struct td_event *ev, const char *name)
{
    const struct td_ce_attr *a;

    if (ev == NULL || name == NULL) {
        return NULL;
    }
    a = find_attr(ev, name);
    return a != NULL ? a->value : NULL;
}

int td_event_set(struct td_event *ev, const char *name, const char *value)
{
    return td_event_set_typed(ev, name, value, TD_CE_STRING);
}

/* Copies NAME and VALUE; the event owns the copies. On failure the event is unchanged. */
int td_event_set_typed(struct td_event *ev, const char *name, const char *value,
                       enum td_ce_vtype type)
{
    struct td_ce_attr *a;
    char *vcopy = NULL;
    char *ncopy = NULL;

    if (ev == NULL || name == NULL || value == NULL) {
        goto fail;
    }
    vcopy = value_copy(ev, value);
    if (vcopy == NULL) {
        goto fail;
    }
    a = find_attr(ev, name);
    if (a != NULL) {
        value_free(ev, a->value);
        a->value = vcopy;
        a->type = type;
        return 0;
    }
    ncopy = name_copy(name);
    if (ncopy == NULL) {
        goto fail;
    }
    if (ev->attrs == NULL) {
        ev->attrs = ev->inline_attrs;
        ev->cap = TD_CE_INLINE_ATTRS;
    }
    if (ev->nattrs == ev->cap) {
        size_t cap = ev->cap * 2;
        struct td_ce_attr *grown;
        if (ev->attrs == ev->inline_attrs) {
            grown = malloc(cap * sizeof(*grown));
            if (grown != NULL) {
                memcpy(grown, ev->attrs, ev->nattrs * sizeof(*grown));
            }
        } else {
            grown = realloc(ev->attrs, cap * sizeof(*grown));
        }
        if (grown == NULL) {
            goto fail;
        }
        ev->attrs = grown;
        ev->cap = cap;
    }
    /* Grow the index before adding, so a failure leaves the event as it was. */
    if ((ev->nattrs + 1 >= TD_CE_INDEX_MIN && ev->slots == NULL) ||
        (ev->slots != NULL && 2 * (ev->nattrs + 1) > ev->nslots)) {
        if (index_build(ev, ev->nattrs + 1) != 0) {
            goto fail;
        }
    }
    ev->attrs[ev->nattrs].name = ncopy;
    ev->attrs[ev->nattrs].value = vcopy;
    ev->attrs[ev->nattrs].type = type;
    ev->nattrs++;
    if (ev->slots != NULL) {
        index_put(ev, ev->nattrs - 1);
    }
    return 0;
fail:
    if (vcopy != NULL) {
        value_free(ev, vcopy);
    }
    if (ncopy != NULL) {
        name_free(ncopy);
    }
    return -1;
}

void td_event_unset(struct td_event *ev, const char *name)
{
    struct td_ce_attr *a;
    size_t i;

    if (ev == NULL || name == NULL) {
        return;
    }
    a = find_attr(ev, name);
    if (a == NULL) {
        return;
    }
    i = (size_t)(a - ev->attrs);
    name_free(a->name);
    value_free(ev, a->value);
    memmove(&ev->attrs[i], &ev->attrs[i + 1], (ev->nattrs - i - 1) * sizeof(*a));
    ev->nattrs--;
    /* Positions moved: rebuild in place (same size, so it cannot fail), or drop the index. */
    if (ev->slots != NULL) {
        (void)index_build(ev, ev->nattrs < TD_CE_INDEX_MIN ? 0 : ev->nslots / 2);
    }
}

int td_ce_decode_set(struct td_event *ev, const char *name, const char *value,
                     enum td_ce_vtype type, char *err, size_t errlen)
{
    if (ev->nattrs >= TD_CE_MAX_ATTRS && td_event_get(ev, name) == NULL) {
        td_ce_errf(err, errlen, "more than %d attributes (the limit per event)", TD_CE_MAX_ATTRS);
        return -1;
    }
    if (td_event_set_typed(ev, name, value, type) != 0) {
        td_ce_errf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Copies the bytes; data NULL clears the data (the event then has none). */
int td_event_set_data(struct td_event *ev, const void *data, size_t len)
{
    unsigned char *copy;

    if (ev == NULL) {
        return -1;
    }
    if (data == NULL) {
        if (len != 0) {
            return -1;
        }
        free(ev->data);
        ev->data = NULL;
        ev->data_len = 0;
        return 0;
    }
    copy = malloc(len != 0 ? len : 1);
    if (copy == NULL) {
        return -1;
    }
    memcpy(copy, data, len);
    free(ev->data);
    ev->data = copy;
    ev->data_len = len;
    return 0;
}

bool td_ce_valid_name(const char *name)
{
    /* The spec recommends at most 20 characters; one cap for every binding (AMQP keys hold
     * 255 bytes with the "cloudEvents:" prefix) keeps an event any decoder accepted
     * encodable by every encoder, and decodable again. */
    if (name == NULL || *name == '\0' || strlen(name) > TD_CE_NAME_MAX) {
        return false;
    }
    for (const char *p = name; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) {
            return false;
        }
    }
    return true;
}

void td_ce_name_errf(const char *name, char *err, size_t errlen)
{
    size_t len = name ? strlen(name) : 0;
    bool charset_ok = len > 0;
    for (size_t i = 0; i < len && charset_ok; i++) {
        charset_ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9');
    }
    /* Only the length wrong: "invalid" alone would send the user looking for a bad character. */
    if (charset_ok && len > TD_CE_NAME_MAX) {
        td_ce_errf(err, errlen,
                   "attribute name '%.32s...' is too long (%zu characters, at most %d)", name, len,
                   TD_CE_NAME_MAX);
        return;
    }
    td_ce_errf(err, errlen, "invalid attribute name '%.64s' (lowercase letters and digits only)",
               name ? name : "");
}

/* Returns -1 also when the sanitized name does not fit in out (it is never truncated, so two
 * long names cannot silently collide). */
int td_ce_sanitize_name(const char *name, char *out, size_t outlen)
{
    size_t n = 0;

    if (name == NULL || out == NULL || outlen == 0) {
        return -1;
    }
    for (const char *p = name; *p != '\0'; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            continue;
        }
        if (n + 1 >= outlen) {
            out[0] = '\0';
            return -1;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return n > 0 ? 0 : -1;
}

/* The media type of CT without parameters and blanks: start and length. */
static void media_type(const char *ct, const char **start, size_t *len)
{
    const char *end;

    while (*ct == ' ' || *ct == '\t') {
        ct++;
    }
    end = ct;
    while (*end != '\0' && *end != ';') {
        end++;
    }
    while (end > ct && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    *start = ct;
    *len = (size_t)(end - ct);
}

bool td_ce_media_is(const char *ct, const char *type)
{
    const char *mt;
    size_t len;

    if (ct == NULL) {
        return false;
    }
    media_type(ct, &mt, &len);
    return len == strlen(type) && strncasecmp(mt, type, len) == 0;
}

static bool media_has_suffix(const char *ct, const char *suffix)
{
    const char *mt;
    size_t len;
    size_t slen = strlen(suffix);

    media_type(ct, &mt, &len);
    return len > slen && strncasecmp(mt + len - slen, suffix, slen) == 0;
}

bool td_ce_is_json_type(const char *content_type)
{
    if (content_type == NULL) {
        return true;
    }
    return td_ce_media_is(content_type, "application/json") ||
           td_ce_media_is(content_type, "text/json") || media_has_suffix(content_type, "+json");
}

bool td_ce_is_text_type(const char *ct)
{
    const char *mt;
    size_t len;

    if (ct == NULL) {
        return false;
    }
    media_type(ct, &mt, &len);
    return (len > 5 && strncasecmp(mt, "text/", 5) == 0) || td_ce_media_is(ct, "application/xml") ||
           media_has_suffix(ct, "+xml");
}

static bool valid_integer(const char *s)
{
    const char *p = s;

    if (*p == '-') {
        p++;
    }
    if (*p == '\0') {
        return false;
    }
    for (; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p)) {
            return false;
        }
    }
    return true;
}

static int check_required(const struct td_event *ev, const char *name, char *err, size_t errlen)
{
    const char *v = td_event_get(ev, name);

    if (v == NULL) {
        td_ce_errf(err, errlen, "missing required attribute '%s'", name);
        return -1;
    }
    if (*v == '\0') {
        td_ce_errf(err, errlen, "required attribute '%s' is empty", name);
        return -1;
    }
    return 0;
}

int td_event_validate(const struct td_event *ev, char *err, size_t errlen)
{
    const char *sv;
    const char *time;

    if (ev == NULL) {
        td_ce_errf(err, errlen, "no event");
        return -1;
    }
    if (check_required(ev, "specversion", err, errlen) != 0) {
        return -1;
    }
    sv = td_event_get(ev, "specversion");
    if (strcmp(sv, "1.0") != 0) {
        td_ce_errf(err, errlen, "unsupported specversion '%.32s' (want 1.0)", sv);
        return -1;
    }
    if (check_required(ev, "id", err, errlen) != 0 ||
        check_required(ev, "source", err, errlen) != 0 ||
        check_required(ev, "type", err, errlen) != 0) {
        return -1;
    }
    for (size_t i = 0; i < ev->nattrs; i++) {
        const struct td_ce_attr *a = &ev->attrs[i];
        if (!td_ce_valid_name(a->name)) {
            td_ce_name_errf(a->name, err, errlen);
            return -1;
        }
        if (strcmp(a->name, "data") == 0) {
            td_ce_errf(err, errlen, "'data' is reserved and cannot be an attribute name");
            return -1;
        }
        if (!td_ce_utf8_valid((const unsigned char *)a->value, strlen(a->value))) {
            td_ce_errf(err, errlen, "attribute '%s' is not valid UTF-8", a->name);
            return -1;
        }
        /* Other attributes are percent-encoded in binary mode, but datacontenttype travels
         * as a raw Content-Type header: a control character there could never be sent. */
        if (strcmp(a->name, "datacontenttype") == 0 && (!*a->value || strlen(a->value) > 255)) {
            td_ce_errf(err, errlen, "datacontenttype must be a media type of 1 to 255 bytes");
            return -1;
        }
        if (strcmp(a->name, "datacontenttype") == 0) {
            for (const unsigned char *p = (const unsigned char *)a->value; *p; p++) {
                if (*p < 0x20 || *p == 0x7f) {
                    td_ce_errf(err, errlen, "datacontenttype holds a control character");
                    return -1;
                }
            }
        }
        if (a->type == TD_CE_INTEGER && !valid_integer(a->value)) {
            td_ce_errf(err, errlen, "attribute '%s' is not an integer", a->name);
            return -1;
        }
        if (a->type == TD_CE_BOOLEAN && strcmp(a->value, "true") != 0 &&
            strcmp(a->value, "false") != 0) {
            td_ce_errf(err, errlen, "attribute '%s' is not a boolean", a->name);
            return -1;
        }
    }
    time = td_event_get(ev, "time");
    if (time != NULL && !td_ce_valid_time(time)) {
        td_ce_errf(err, errlen, "attribute 'time' is not an RFC 3339 timestamp: '%.64s'", time);
        return -1;
    }
    return 0;
}
