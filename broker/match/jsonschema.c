/* jsonschema.c - the JSON Schema subset of jsonschema.h, on cJSON and POSIX regex.
 *
 * Loading checks the schema once: every keyword we do not implement but that would assert
 * something is refused, every "pattern" is compiled (kept beside the node it came from),
 * every "$ref" must resolve inside the document. Validation walks schema and instance
 * together, writing only the first error (nested attempts under anyOf/oneOf/not are quiet).
 *
 * Ownership: the schema owns its cJSON tree and compiled patterns; instances are parsed per
 * call and freed before returning.
 */
#include "jsonschema.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 128 /* schema nesting at load; schema+instance nesting at validation */
/* uniqueItems: full comparisons allowed among items whose hashes collide, per array. Equal
 * items stop at the first; only items crafted to collide could use them up. */
#define MAX_UNIQUE_COMPARES 100000

struct pattern {
    const cJSON *node; /* the "pattern" string node */
    regex_t re;
};

struct td_jsonschema {
    cJSON *root;
    struct pattern *pats;
    size_t npats;
};

static const char *const unsupported[] = {"patternProperties",
                                          "if",
                                          "then",
                                          "else",
                                          "prefixItems",
                                          "contains",
                                          "minContains",
                                          "maxContains",
                                          "propertyNames",
                                          "dependentRequired",
                                          "dependentSchemas",
                                          "dependencies",
                                          "unevaluatedProperties",
                                          "unevaluatedItems",
                                          "$dynamicRef",
                                          "$recursiveRef",
                                          "additionalItems"};

/* ---- loading ---- */

struct loader {
    struct td_jsonschema *s;
    char *err;
    size_t errlen;
};

static int load_fail(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int load_fail(struct loader *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->err, ld->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Resolves a local reference "#" or "#/a/b" (JSON pointer, ~0 and ~1 unescaped). */
static const cJSON *resolve_ref(const cJSON *root, const char *ref)
{
    if (ref[0] != '#') {
        return NULL;
    }
    const cJSON *at = root;
    const char *p = ref + 1;
    if (*p == '\0') {
        return root;
    }
    if (*p != '/') {
        return NULL;
    }
    char tok[256];
    while (*p == '/' && at) {
        p++;
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof(tok)) {
            if (p[0] == '~' && p[1] == '0') {
                tok[n++] = '~';
                p += 2;
            } else if (p[0] == '~' && p[1] == '1') {
                tok[n++] = '/';
                p += 2;
            } else {
                tok[n++] = *p++;
            }
        }
        tok[n] = '\0';
        if (cJSON_IsArray(at)) {
            char *end;
            long i = strtol(tok, &end, 10);
            at = (*end == '\0' && n > 0) ? cJSON_GetArrayItem(at, (int)i) : NULL;
        } else {
            at = cJSON_GetObjectItemCaseSensitive(at, tok);
        }
    }
    return *p == '\0' ? at : NULL;
}

static bool is_schema(const cJSON *n)
{
    return cJSON_IsObject(n) || cJSON_IsBool(n);
}

static int check_schema(struct loader *ld, const cJSON *sch, const char *where, int depth);

static int check_list(struct loader *ld, const cJSON *list, const char *kw, const char *where,
                      int depth)
{
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
        return load_fail(ld, "%s: '%s' must be a non-empty array of schemas", where, kw);
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        if (check_schema(ld, it, where, depth + 1) < 0) {
            return -1;
        }
    }
    return 0;
}

static int check_number(struct loader *ld, const cJSON *sch, const char *kw, const char *where,
                        bool nonneg_int)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sch, kw);
    if (!v) {
        return 0;
    }
    if (!cJSON_IsNumber(v) ||
        (nonneg_int && (v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble)))) {
        return load_fail(ld, "%s: '%s' must be a %s", where, kw,
                         nonneg_int ? "non-negative integer" : "number");
    }
    if (strcmp(kw, "multipleOf") == 0 && v->valuedouble <= 0) {
        return load_fail(ld, "%s: 'multipleOf' must be greater than 0", where);
    }
    return 0;
}

static int add_pattern(struct loader *ld, const cJSON *node, const char *where)
{
    struct pattern *pats = realloc(ld->s->pats, (ld->s->npats + 1) * sizeof(*pats));
    if (!pats) {
        return load_fail(ld, "out of memory");
    }
    ld->s->pats = pats;
    int rc = regcomp(&pats[ld->s->npats].re, node->valuestring, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[128];
        regerror(rc, &pats[ld->s->npats].re, msg, sizeof(msg));
        return load_fail(ld, "%s: 'pattern' \"%s\" is not a POSIX extended regular expression: %s",
                         where, node->valuestring, msg);
    }
    pats[ld->s->npats++].node = node;
    return 0;
}

static const char *const type_names[] = {"null",   "boolean", "object", "array",
                                         "number", "string",  "integer"};

static bool known_type(const cJSON *t)
{
    if (!cJSON_IsString(t)) {
        return false;
    }
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
        if (strcmp(t->valuestring, type_names[i]) == 0) {
            return true;
        }
    }
    return false;
}

static int check_schema(struct loader *ld, const cJSON *sch, const char *where, int depth)
{
    if (depth > MAX_DEPTH) {
        return load_fail(ld, "%s: schema nested deeper than %d", where, MAX_DEPTH);
    }
    if (cJSON_IsBool(sch)) {
        return 0;
    }
    if (!cJSON_IsObject(sch)) {
        return load_fail(ld, "%s: a schema must be an object or a boolean", where);
    }
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        if (cJSON_GetObjectItemCaseSensitive(sch, unsupported[i])) {
            return load_fail(ld, "%s: keyword '%s' is not supported by triggerd's validator", where,
                             unsupported[i]);
        }
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sch, "type");
    if (v) {
        bool ok = known_type(v);
        if (cJSON_IsArray(v)) {
            const cJSON *t;
            ok = cJSON_GetArraySize(v) > 0;
            cJSON_ArrayForEach(t, v)
            {
                ok = ok && known_type(t);
            }
        }
        if (!ok) {
            return load_fail(ld,
                             "%s: 'type' must be one of null, boolean, object, array, number, "
                             "string, integer (or a list of them)",
                             where);
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "$ref"))) {
        if (!cJSON_IsString(v) || !resolve_ref(ld->s->root, v->valuestring)) {
            return load_fail(ld, "%s: '$ref' %s%s%s does not resolve inside this file", where,
                             cJSON_IsString(v) ? "\"" : "",
                             cJSON_IsString(v) ? v->valuestring : "(not a string)",
                             cJSON_IsString(v) ? "\"" : "");
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "required"))) {
        const cJSON *r;
        bool ok = cJSON_IsArray(v);
        cJSON_ArrayForEach(r, v)
        {
            ok = ok && cJSON_IsString(r);
        }
        if (!ok) {
            return load_fail(ld, "%s: 'required' must be an array of strings", where);
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "enum")) && !cJSON_IsArray(v)) {
        return load_fail(ld, "%s: 'enum' must be an array", where);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "pattern"))) {
        if (!cJSON_IsString(v)) {
            return load_fail(ld, "%s: 'pattern' must be a string", where);
        }
        if (add_pattern(ld, v, where) < 0) {
            return -1;
        }
    }
    static const char *const nums[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                       "multipleOf"};
    static const char *const counts[] = {"minLength", "maxLength",     "minItems",
                                         "maxItems",  "minProperties", "maxProperties"};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (check_number(ld, sch, nums[i], where, false) < 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        if (check_number(ld, sch, counts[i], where, true) < 0) {
            return -1;
        }
    }
    static const char *const maps[] = {"properties", "$defs", "definitions"};
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        if (!(v = cJSON_GetObjectItemCaseSensitive(sch, maps[i]))) {
            continue;
        }
        if (!cJSON_IsObject(v)) {
            return load_fail(ld, "%s: '%s' must be an object", where, maps[i]);
        }
        const cJSON *p;
        cJSON_ArrayForEach(p, v)
        {
            if (check_schema(ld, p, where, depth + 1) < 0) {
                return -1;
            }
        }
    }
    static const char *const singles[] = {"additionalProperties", "items", "not"};
    for (size_t i = 0; i < sizeof(singles) / sizeof(singles[0]); i++) {
        if (!(v = cJSON_GetObjectItemCaseSensitive(sch, singles[i]))) {
            continue;
        }
        if (!is_schema(v)) {
            return load_fail(ld, "%s: '%s' must be a schema (an object or a boolean)%s", where,
                             singles[i],
                             cJSON_IsArray(v) ? "; tuple 'items' is not supported" : "");
        }
        if (check_schema(ld, v, where, depth + 1) < 0) {
            return -1;
        }
    }
    static const char *const lists[] = {"anyOf", "allOf", "oneOf"};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        if ((v = cJSON_GetObjectItemCaseSensitive(sch, lists[i])) &&
            check_list(ld, v, lists[i], where, depth) < 0) {
            return -1;
        }
    }
    return 0;
}

void td_jsonschema_free(struct td_jsonschema *s)
{
    if (!s) {
        return;
    }
    for (size_t i = 0; i < s->npats; i++) {
        regfree(&s->pats[i].re);
    }
    free(s->pats);
    cJSON_Delete(s->root);
    free(s);
}

struct td_jsonschema *td_jsonschema_parse(const char *text, size_t len, char *err, size_t errlen)
{
    struct td_jsonschema *s = calloc(1, sizeof(*s));
    struct loader ld = {.s = s, .err = err, .errlen = errlen};
    if (!s) {
        load_fail(&ld, "out of memory");
        goto fail;
    }
    s->root = cJSON_ParseWithLength(text, len);
    if (!s->root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= text && at <= text + len ? (size_t)(at - text) : 0;
        load_fail(&ld, "not valid JSON (near byte %zu)", off);
        goto fail;
    }
    if (check_schema(&ld, s->root, "schema", 0) < 0) {
        goto fail;
    }
    return s;
fail:
    td_jsonschema_free(s);
    return NULL;
}

struct td_jsonschema *td_jsonschema_load(const char *path, const char *relative_to, char *err,
                                         size_t errlen)
{
    char full[4096];
    char *text = NULL;
    struct td_jsonschema *s = NULL;
    const char *slash = relative_to ? strrchr(relative_to, '/') : NULL;
    if (path[0] != '/' && slash) {
        snprintf(full, sizeof(full), "%.*s/%s", (int)(slash - relative_to), relative_to, path);
    } else {
        snprintf(full, sizeof(full), "%s", path);
    }
    FILE *f = fopen(full, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", full, strerror(errno));
        goto fail;
    }
    size_t cap = 4096, len = 0;
    text = malloc(cap);
    while (text) {
        len += fread(text + len, 1, cap - len, f);
        if (len < cap) {
            break;
        }
        char *more = cap < (64u << 20) ? realloc(text, cap * 2) : NULL;
        if (!more) {
            snprintf(err, errlen, "%s: too large or out of memory", full);
            goto fail;
        }
        text = more;
        cap *= 2;
    }
    if (!text || ferror(f)) {
        snprintf(err, errlen, "cannot read %s", full);
        goto fail;
    }
    char msg[400];
    s = td_jsonschema_parse(text, len, msg, sizeof(msg));
    if (!s) {
        snprintf(err, errlen, "%s: %s", full, msg);
    }
fail:
    if (f) {
        fclose(f);
    }
    free(text);
    return s;
}

/* ---- validation ---- */

struct vctx {
    const struct td_jsonschema *s;
    char *err;
    size_t errlen;
    int quiet; /* > 0: inside anyOf/oneOf/not, errors are not written */
    char path[512];
    size_t pathlen;
};

static bool vfail(struct vctx *vc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool vfail(struct vctx *vc, const char *fmt, ...)
{
    if (vc->quiet > 0) {
        return false;
    }
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(vc->err, vc->errlen, "at %s: %s", vc->pathlen ? vc->path : "/", msg);
    vc->quiet++; /* the first error is the one reported */
    return false;
}

/* Appends "/seg" (JSON pointer escaped) to the path; returns the old length. */
static size_t push_path(struct vctx *vc, const char *seg)
{
    size_t old = vc->pathlen;
    size_t n = old;
    if (n + 1 < sizeof(vc->path)) {
        vc->path[n++] = '/';
    }
    for (; *seg && n + 2 < sizeof(vc->path); seg++) {
        if (*seg == '~' || *seg == '/') {
            vc->path[n++] = '~';
            vc->path[n++] = *seg == '~' ? '0' : '1';
        } else {
            vc->path[n++] = *seg;
        }
    }
    vc->path[n] = '\0';
    vc->pathlen = n;
    return old;
}

static void pop_path(struct vctx *vc, size_t old)
{
    vc->pathlen = old;
    vc->path[old] = '\0';
}

static const char *json_type(const cJSON *v)
{
    if (cJSON_IsNull(v)) {
        return "null";
    }
    if (cJSON_IsBool(v)) {
        return "boolean";
    }
    if (cJSON_IsNumber(v)) {
        return v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9e15 ? "integer"
                                                                                      : "number";
    }
    if (cJSON_IsString(v)) {
        return "string";
    }
    return cJSON_IsArray(v) ? "array" : "object";
}

static bool type_is(const cJSON *inst, const char *want)
{
    const char *have = json_type(inst);
    return strcmp(have, want) == 0 || (strcmp(want, "number") == 0 && strcmp(have, "integer") == 0);
}

static size_t u8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

static const regex_t *find_pattern(const struct td_jsonschema *s, const cJSON *node)
{
    for (size_t i = 0; i < s->npats; i++) {
        if (s->pats[i].node == node) {
            return &s->pats[i].re;
        }
    }
    return NULL;
}

static bool validate(struct vctx *vc, const cJSON *sch, const cJSON *inst, int depth);

static bool check_numbers(struct vctx *vc, const cJSON *sch, const cJSON *inst)
{
    double x = inst->valuedouble;
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "minimum")) && x < v->valuedouble) {
        return vfail(vc, "%g is less than the minimum %g", x, v->valuedouble);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "maximum")) && x > v->valuedouble) {
        return vfail(vc, "%g is greater than the maximum %g", x, v->valuedouble);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "exclusiveMinimum")) && x <= v->valuedouble) {
        return vfail(vc, "%g is not greater than %g", x, v->valuedouble);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "exclusiveMaximum")) && x >= v->valuedouble) {
        return vfail(vc, "%g is not less than %g", x, v->valuedouble);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "multipleOf"))) {
        double q = x / v->valuedouble;
        if (fabs(q - nearbyint(q)) > 1e-9) {
            return vfail(vc, "%g is not a multiple of %g", x, v->valuedouble);
        }
    }
    return true;
}

static bool check_string(struct vctx *vc, const cJSON *sch, const cJSON *inst)
{
    const cJSON *v;
    size_t n = u8_chars(inst->valuestring);
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "minLength")) && (double)n < v->valuedouble) {
        return vfail(vc, "string shorter than %g characters", v->valuedouble);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "maxLength")) && (double)n > v->valuedouble) {
        return vfail(vc, "string longer than %g characters", v->valuedouble);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "pattern"))) {
        const regex_t *re = find_pattern(vc->s, v);
        if (re && regexec(re, inst->valuestring, 0, NULL, 0) != 0) {
            return vfail(vc, "string does not match the pattern \"%s\"", v->valuestring);
        }
    }
    return true;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h;
}

/* A hash that agrees with cJSON_Compare(a, b, true): equal values hash alike (numbers by
 * value, -0 as 0; object members in any order). Depth is bounded by the parser's own limit. */
static uint64_t json_hash(const cJSON *j)
{
    uint64_t h = (uint64_t)(j->type & 0xff) * 0x9e3779b97f4a7c15ULL;

    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble == 0 ? 0.0 : j->valuedouble;
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        return mix64(h ^ bits);
    }
    if (cJSON_IsString(j)) {
        return mix64(h ^ str_hash(j->valuestring));
    }
    if (cJSON_IsArray(j)) {
        for (const cJSON *c = j->child; c; c = c->next) {
            h = mix64(h * 31 + json_hash(c));
        }
        return h;
    }
    if (cJSON_IsObject(j)) {
        uint64_t sum = 0; /* commutative: member order does not matter */
        for (const cJSON *c = j->child; c; c = c->next) {
            sum += mix64(str_hash(c->string ? c->string : "") ^ (json_hash(c) << 1));
        }
        return mix64(h ^ sum);
    }
    return mix64(h);
}

struct hashed {
    uint64_t h;
    const cJSON *item;
};

static int hashed_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct hashed *)a)->h;
    uint64_t y = ((const struct hashed *)b)->h;
    return x < y ? -1 : x > y;
}

/* uniqueItems in O(n log n): hash every item, sort by hash, and compare in full only items
 * whose hashes are equal (comparing all pairs took minutes on a large hostile array). */
static bool check_unique(struct vctx *vc, const cJSON *inst)
{
    size_t n = 0;
    size_t compares = 0;
    struct hashed *hs;

    for (const cJSON *a = inst->child; a; a = a->next) {
        n++;
    }
    if (n < 2) {
        return true;
    }
    hs = malloc(n * sizeof(*hs));
    if (!hs) {
        return vfail(vc, "out of memory checking uniqueItems");
    }
    n = 0;
    for (const cJSON *a = inst->child; a; a = a->next) {
        hs[n].h = json_hash(a);
        hs[n++].item = a;
    }
    qsort(hs, n, sizeof(*hs), hashed_cmp);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n && hs[j].h == hs[i].h; j++) {
            if (++compares > MAX_UNIQUE_COMPARES) {
                free(hs);
                return vfail(vc, "too many colliding items to check uniqueItems");
            }
            if (cJSON_Compare(hs[i].item, hs[j].item, true)) {
                free(hs);
                return vfail(vc, "items are not unique");
            }
        }
    }
    free(hs);
    return true;
}

static bool check_array(struct vctx *vc, const cJSON *sch, const cJSON *inst, int depth)
{
    const cJSON *v;
    double n = cJSON_GetArraySize(inst);
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "minItems")) && n < v->valuedouble) {
        return vfail(vc, "fewer than %g items", v->valuedouble);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "maxItems")) && n > v->valuedouble) {
        return vfail(vc, "more than %g items", v->valuedouble);
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sch, "uniqueItems")) &&
        !check_unique(vc, inst)) {
        return false;
    }
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(sch, "items");
    if (items) {
        int i = 0;
        for (const cJSON *it = inst->child; it; it = it->next, i++) {
            char seg[24];
            snprintf(seg, sizeof(seg), "%d", i);
            size_t old = push_path(vc, seg);
            bool ok = validate(vc, items, it, depth + 1);
            pop_path(vc, old);
            if (!ok) {
                return false;
            }
        }
    }
    return true;
}

static bool check_object(struct vctx *vc, const cJSON *sch, const cJSON *inst, int depth)
{
    const cJSON *v;
    double n = cJSON_GetArraySize(inst);
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "minProperties")) && n < v->valuedouble) {
        return vfail(vc, "fewer than %g properties", v->valuedouble);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "maxProperties")) && n > v->valuedouble) {
        return vfail(vc, "more than %g properties", v->valuedouble);
    }
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(sch, "required");
    const cJSON *r;
    cJSON_ArrayForEach(r, req)
    {
        if (!cJSON_GetObjectItemCaseSensitive(inst, r->valuestring)) {
            return vfail(vc, "required property '%s' is missing", r->valuestring);
        }
    }
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(sch, "properties");
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(sch, "additionalProperties");
    for (const cJSON *m = inst->child; m; m = m->next) {
        const cJSON *ps = props ? cJSON_GetObjectItemCaseSensitive(props, m->string) : NULL;
        if (!ps && cJSON_IsFalse(extra)) {
            return vfail(vc, "property '%s' is not allowed", m->string);
        }
        const cJSON *use = ps ? ps : (cJSON_IsObject(extra) ? extra : NULL);
        if (use) {
            size_t old = push_path(vc, m->string);
            bool ok = validate(vc, use, m, depth + 1);
            pop_path(vc, old);
            if (!ok) {
                return false;
            }
        }
    }
    return true;
}

/* anyOf / allOf / oneOf / not. */
static bool check_combinators(struct vctx *vc, const cJSON *sch, const cJSON *inst, int depth)
{
    const cJSON *list, *it;
    if ((list = cJSON_GetObjectItemCaseSensitive(sch, "allOf"))) {
        cJSON_ArrayForEach(it, list)
        {
            if (!validate(vc, it, inst, depth + 1)) {
                return false;
            }
        }
    }
    if ((list = cJSON_GetObjectItemCaseSensitive(sch, "anyOf"))) {
        bool any = false;
        vc->quiet++;
        cJSON_ArrayForEach(it, list)
        {
            if ((any = validate(vc, it, inst, depth + 1))) {
                break;
            }
        }
        vc->quiet--;
        if (!any) {
            return vfail(vc, "matches none of the 'anyOf' schemas");
        }
    }
    if ((list = cJSON_GetObjectItemCaseSensitive(sch, "oneOf"))) {
        int matches = 0;
        vc->quiet++;
        cJSON_ArrayForEach(it, list)
        {
            matches += validate(vc, it, inst, depth + 1);
        }
        vc->quiet--;
        if (matches != 1) {
            return vfail(vc, "matches %d of the 'oneOf' schemas, not exactly one", matches);
        }
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(sch, "not"))) {
        vc->quiet++;
        bool ok = validate(vc, it, inst, depth + 1);
        vc->quiet--;
        if (ok) {
            return vfail(vc, "must not match the 'not' schema");
        }
    }
    return true;
}

static bool validate(struct vctx *vc, const cJSON *sch, const cJSON *inst, int depth)
{
    if (depth > MAX_DEPTH) {
        return vfail(vc, "nested deeper than %d (or a $ref cycle)", MAX_DEPTH);
    }
    if (cJSON_IsBool(sch)) {
        return cJSON_IsTrue(sch) ? true : vfail(vc, "no value is allowed here");
    }
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "$ref"))) {
        const cJSON *target = resolve_ref(vc->s->root, v->valuestring);
        if (!target || !validate(vc, target, inst, depth + 1)) {
            return target ? false : vfail(vc, "unresolved $ref");
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "type"))) {
        bool ok = cJSON_IsString(v) && type_is(inst, v->valuestring);
        const cJSON *t;
        if (cJSON_IsArray(v)) {
            cJSON_ArrayForEach(t, v)
            {
                ok = ok || type_is(inst, t->valuestring);
            }
        }
        if (!ok) {
            char want[128] = "";
            if (cJSON_IsString(v)) {
                snprintf(want, sizeof(want), "%s", v->valuestring);
            } else {
                cJSON_ArrayForEach(t, v)
                {
                    size_t at = strlen(want);
                    snprintf(want + at, sizeof(want) - at, "%s%s", at ? " or " : "",
                             t->valuestring);
                }
            }
            return vfail(vc, "expected %s, got %s", want, json_type(inst));
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "const")) && !cJSON_Compare(v, inst, true)) {
        return vfail(vc, "value differs from 'const'");
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(sch, "enum"))) {
        bool found = false;
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            found = found || cJSON_Compare(e, inst, true);
        }
        if (!found) {
            return vfail(vc, "value is not one of 'enum'");
        }
    }
    bool ok = true;
    if (cJSON_IsNumber(inst)) {
        ok = check_numbers(vc, sch, inst);
    } else if (cJSON_IsString(inst)) {
        ok = check_string(vc, sch, inst);
    } else if (cJSON_IsArray(inst)) {
        ok = check_array(vc, sch, inst, depth);
    } else if (cJSON_IsObject(inst)) {
        ok = check_object(vc, sch, inst, depth);
    }
    return ok && check_combinators(vc, sch, inst, depth);
}

int td_jsonschema_validate(const struct td_jsonschema *s, const char *json, size_t len, char *err,
                           size_t errlen)
{
    struct vctx vc = {.s = s, .err = err, .errlen = errlen};
    cJSON *inst = NULL;
    int rc = -1;
    if (!json || len == 0) {
        inst = cJSON_CreateNull();
    } else {
        inst = cJSON_ParseWithLength(json, len);
        if (!inst) {
            snprintf(err, errlen, "the data is not JSON");
            goto fail;
        }
    }
    if (!inst) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    rc = validate(&vc, s->root, inst, 0) ? 0 : -1;
fail:
    cJSON_Delete(inst);
    return rc;
}
