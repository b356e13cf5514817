/* cesql_eval.c - evaluation of a compiled CESQL v1 expression against one event, the casting
 * rules and the built-in functions (see cesql.h for the semantics).
 *
 * Every node returns a value and an error kind. When an operand fails, the operator yields
 * the zero value of its type (false, 0, "") with the operand's error; when the operator's
 * own cast or arithmetic fails, it goes on with the zero value of the cast's target type and
 * reports its error. Only the first error's message is kept. Walks are recursive; the
 * parser bounds the tree's height (TD_CESQL_MAX_HEIGHT).
 *
 * Ownership: a value's string is either borrowed (a literal in the tree, an attribute of the
 * event, a static "true"/"false") or owned (value.owned, freed by td_cesql_value_clear).
 * Borrowed strings live as long as the tree and the event, i.e. the whole evaluation.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cesql_internal.h"
#include "cloudevent.h"

struct cq_ctx {
    const struct td_event *ev;
    struct td_cesql_error *err;
    enum td_cesql_errkind first;
};

static int raise_err(struct cq_ctx *cx, enum td_cesql_errkind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int raise_err(struct cq_ctx *cx, enum td_cesql_errkind kind, const char *fmt, ...)
{
    if (cx->first == TD_CESQL_OK) {
        cx->first = kind;
        cx->err->kind = kind;
        cx->err->column = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cx->err->message, sizeof(cx->err->message), fmt, ap);
        va_end(ap);
    }
    return kind;
}

/* ---- values ---- */

void td_cesql_value_clear(struct td_cesql_value *v)
{
    if (!v) {
        return;
    }
    free(v->owned);
    memset(v, 0, sizeof(*v));
}

static void set_bool(struct td_cesql_value *v, bool b)
{
    td_cesql_value_clear(v);
    v->type = TD_CESQL_BOOLEAN;
    v->b = b;
}

static void set_int(struct td_cesql_value *v, int32_t i)
{
    td_cesql_value_clear(v);
    v->type = TD_CESQL_INTEGER;
    v->i = i;
}

static void set_str(struct td_cesql_value *v, const char *s, char *owned)
{
    td_cesql_value_clear(v);
    v->type = TD_CESQL_STRING;
    v->s = s;
    v->owned = owned;
}

/* The zero value of type t: false, 0 or "". */
static void set_zero(struct td_cesql_value *v, enum td_cesql_type t)
{
    if (t == TD_CESQL_BOOLEAN) {
        set_bool(v, false);
    } else if (t == TD_CESQL_INTEGER) {
        set_int(v, 0);
    } else {
        set_str(v, "", NULL);
    }
}

/* Takes a malloc'd string (NULL: out of memory, which becomes a generic error and ""). */
static int set_new_str(struct cq_ctx *cx, struct td_cesql_value *v, char *s)
{
    if (!s) {
        set_str(v, "", NULL);
        return raise_err(cx, TD_CESQL_ERR_GENERIC, "out of memory");
    }
    set_str(v, s, s);
    return TD_CESQL_OK;
}

/* Moves *from into *to (from is left empty). */
static void move_value(struct td_cesql_value *to, struct td_cesql_value *from)
{
    td_cesql_value_clear(to);
    *to = *from;
    memset(from, 0, sizeof(*from));
}

static const char *type_name(enum td_cesql_type t)
{
    return t == TD_CESQL_BOOLEAN ? "boolean" : t == TD_CESQL_INTEGER ? "integer" : "string";
}

/* ---- casting ---- */

/* A decimal integer with an optional sign, in the 32-bit range, nothing else. */
static bool parse_int(const char *s, int32_t *out)
{
    bool neg = *s == '-';
    if (*s == '-' || *s == '+') {
        s++;
    }
    if (*s < '0' || *s > '9') {
        return false;
    }
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
        v = v * 10 + (*s - '0');
        if (v > (int64_t)INT32_MAX + 1) {
            return false;
        }
    }
    v = neg ? -v : v;
    if (v > INT32_MAX || v < INT32_MIN) {
        return false;
    }
    *out = (int32_t)v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    if (strcasecmp(s, "true") == 0) {
        *out = true;
        return true;
    }
    if (strcasecmp(s, "false") == 0) {
        *out = false;
        return true;
    }
    return false;
}

/* Casts v in place to type to. Implicit casts refuse integer -> boolean; the explicit BOOL()
 * maps 0 to false and anything else to true. On failure v becomes the zero value of to and a
 * cast error is returned. */
static int cast_value(struct cq_ctx *cx, struct td_cesql_value *v, enum td_cesql_type to,
                      bool explicit_cast)
{
    if (v->type == to) {
        return TD_CESQL_OK;
    }
    if (to == TD_CESQL_STRING) {
        if (v->type == TD_CESQL_BOOLEAN) {
            set_str(v, v->b ? "true" : "false", NULL);
            return TD_CESQL_OK;
        }
        char buf[16];
        snprintf(buf, sizeof(buf), "%d", (int)v->i);
        return set_new_str(cx, v, strdup(buf));
    }
    if (to == TD_CESQL_INTEGER) {
        int32_t i = 0;
        if (v->type == TD_CESQL_BOOLEAN) {
            set_int(v, v->b ? 1 : 0);
            return TD_CESQL_OK;
        }
        if (parse_int(v->s, &i)) {
            set_int(v, i);
            return TD_CESQL_OK;
        }
        int rc =
            raise_err(cx, TD_CESQL_ERR_CAST, "cannot cast the string '%s' to an integer", v->s);
        set_int(v, 0);
        return rc;
    }
    bool b = false;
    if (v->type == TD_CESQL_INTEGER) {
        if (explicit_cast) {
            set_bool(v, v->i != 0);
            return TD_CESQL_OK;
        }
        int rc = raise_err(cx, TD_CESQL_ERR_CAST,
                           "cannot use the integer %d as a boolean (use BOOL())", (int)v->i);
        set_bool(v, false);
        return rc;
    }
    if (parse_bool(v->s, &b)) {
        set_bool(v, b);
        return TD_CESQL_OK;
    }
    int rc = raise_err(cx, TD_CESQL_ERR_CAST, "cannot cast the string '%s' to a boolean", v->s);
    set_bool(v, false);
    return rc;
}

static bool values_equal(const struct td_cesql_value *a, const struct td_cesql_value *b)
{
    if (a->type != b->type) {
        return false;
    }
    switch (a->type) {
    case TD_CESQL_BOOLEAN:
        return a->b == b->b;
    case TD_CESQL_INTEGER:
        return a->i == b->i;
    case TD_CESQL_STRING:
        return strcmp(a->s, b->s) == 0;
    }
    return false;
}

/* ---- UTF-8 ---- */

size_t td_cesql_u8_next(const char *s, size_t len, size_t i, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[i];
    size_t n = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 1) {
        *cp = c;
        return 1;
    }
    if (n == 0 || i + n > len) {
        *cp = 0x80000000u | c;
        return 1;
    }
    uint32_t v = c & (0x7Fu >> n);
    for (size_t k = 1; k < n; k++) {
        if ((u[i + k] & 0xC0) != 0x80) {
            *cp = 0x80000000u | c;
            return 1;
        }
        v = (v << 6) | (u[i + k] & 0x3Fu);
    }
    *cp = v;
    return n;
}

static size_t u8_length(const char *s)
{
    size_t len = strlen(s), n = 0;
    uint32_t cp;
    for (size_t i = 0; i < len; i += td_cesql_u8_next(s, len, i, &cp)) {
        n++;
    }
    return n;
}

/* Byte offset of the chars-th character of s (or its length). */
static size_t u8_offset(const char *s, size_t chars)
{
    size_t len = strlen(s), i = 0;
    uint32_t cp;
    while (chars > 0 && i < len) {
        i += td_cesql_u8_next(s, len, i, &cp);
        chars--;
    }
    return i;
}

/* ---- LIKE ---- */

/* Wildcard match without recursion: on a mismatch, back up to the last '%' and let it eat one
 * more character. O(len(s) * len(pattern)) at worst. */
static bool like_match(const char *s, const struct cq_like_elem *pat, size_t npat)
{
    size_t len = strlen(s);
    size_t si = 0, pi = 0;
    size_t star_p = SIZE_MAX, star_s = 0;
    uint32_t cp;
    while (si < len) {
        size_t w = td_cesql_u8_next(s, len, si, &cp);
        if (pi < npat &&
            (pat[pi].kind == CQ_LIKE_ONE || (pat[pi].kind == CQ_LIKE_CHAR && pat[pi].cp == cp))) {
            si += w;
            pi++;
        } else if (pi < npat && pat[pi].kind == CQ_LIKE_ANY) {
            star_p = pi++;
            star_s = si;
        } else if (star_p != SIZE_MAX) {
            pi = star_p + 1;
            star_s += td_cesql_u8_next(s, len, star_s, &cp);
            si = star_s;
        } else {
            return false;
        }
    }
    while (pi < npat && pat[pi].kind == CQ_LIKE_ANY) {
        pi++;
    }
    return pi == npat;
}

/* ---- evaluation ---- */

static int eval(const struct cq_node *n, struct cq_ctx *cx, struct td_cesql_value *out);

static const struct td_ce_attr *find_attr(const struct td_event *ev, const char *name)
{
    for (size_t i = 0; ev && i < ev->nattrs; i++) {
        if (strcmp(ev->attrs[i].name, name) == 0) {
            return &ev->attrs[i];
        }
    }
    return NULL;
}

static int eval_attr(const struct cq_node *n, struct cq_ctx *cx, struct td_cesql_value *out)
{
    const struct td_ce_attr *a = find_attr(cx->ev, n->name);
    if (!a || !a->value) {
        set_bool(out, false);
        return raise_err(cx, TD_CESQL_ERR_MISSING_ATTRIBUTE, "the event has no attribute '%s'",
                         n->name);
    }
    int32_t i;
    bool b;
    if (a->type == TD_CE_INTEGER && parse_int(a->value, &i)) {
        set_int(out, i);
    } else if (a->type == TD_CE_BOOLEAN && parse_bool(a->value, &b)) {
        set_bool(out, b);
    } else {
        set_str(out, a->value, NULL);
    }
    return TD_CESQL_OK;
}

/* NOT and unary minus. */
static int eval_unary(const struct cq_node *n, struct cq_ctx *cx, struct td_cesql_value *out)
{
    struct td_cesql_value v = {0};
    enum td_cesql_type t = n->op == CQ_NOT ? TD_CESQL_BOOLEAN : TD_CESQL_INTEGER;
    int rc = eval(n->kids[0], cx, &v);
    if (rc != TD_CESQL_OK) {
        td_cesql_value_clear(&v);
        set_zero(out, t);
        return rc;
    }
    rc = cast_value(cx, &v, t, false);
    if (n->op == CQ_NOT) {
        set_bool(out, !v.b);
    } else if (v.i == INT32_MIN) {
        int mrc = raise_err(cx, TD_CESQL_ERR_MATH, "integer overflow: -(%d)", (int)v.i);
        rc = rc ? rc : mrc;
        set_int(out, INT32_MAX);
    } else {
        set_int(out, -v.i);
    }
    td_cesql_value_clear(&v);
    return rc;
}

/* AND and OR (short-circuit), XOR. */
static int eval_logic(const struct cq_node *n, struct cq_ctx *cx, struct td_cesql_value *out)
{
    struct td_cesql_value v = {0};
    int rc = eval(n->kids[0], cx, &v);
    if (rc != TD_CESQL_OK) {
        td_cesql_value_clear(&v);
        set_bool(out, false);
        return rc;
    }
    int own = cast_value(cx, &v, TD_CESQL_BOOLEAN, false);
    bool left = v.b;
    td_cesql_value_clear(&v);
    if ((n->op == CQ_AND && !left) || (n->op == CQ_OR && left)) {
        set_bool(out, left);
        return own;
    }
    rc = eval(n->kids[1], cx, &v);
    if (rc != TD_CESQL_OK) {
        td_cesql_value_clear(&v);
        set_bool(out, false);
        return own ? own : rc;
    }
    int own2 = cast_value(cx, &v, TD_CESQL_BOOLEAN, false);
    bool right = v.b;
    td_cesql_value_clear(&v);
    set_bool(out, n->op == CQ_AND ? left && right : n->op == CQ_OR ? left || right : left != right);
    return own ? own : own2;
}

static int32_t clamp(int64_t v)
{
    return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/* Comparisons and arithmetic: both operands are evaluated, then cast. */
static int eval_binary(const struct cq_node *n, struct cq_ctx *cx, struct td_cesql_value *out)
{
    struct td_cesql_value a = {0}, b = {0};
    bool arith =
        n->op == CQ_ADD || n->op == CQ_SUB || n->op == CQ_MUL || n->op == CQ_DIV || n->op == CQ_MOD;
    enum td_cesql_type ret = arith ? TD_CESQL_INTEGER : TD_CESQL_BOOLEAN;
    int own = TD_CESQL_OK;
    int rc = eval(n->kids[0], cx, &a);
    if (rc == TD_CESQL_OK) {
        rc = eval(n->kids[1], cx, &b);
    }
    if (rc != TD_CESQL_OK) {
        set_zero(out, ret);
        goto done;
    }
    if (n->op == CQ_EQ || n->op == CQ_NE) {
        /* Ambiguous operator: the right operand's type decides, the left one is cast. */
        own = cast_value(cx, &a, b.type, false);
        bool eq = values_equal(&a, &b);
        set_bool(out, n->op == CQ_EQ ? eq : !eq);
        rc = own;
        goto done;
    }
    own = cast_value(cx, &a, TD_CESQL_INTEGER, false);
    int own2 = cast_value(cx, &b, TD_CESQL_INTEGER, false);
    own = own ? own : own2;
    int64_t x = a.i, y = b.i, r = 0;
    switch (n->op) {
    case CQ_LT:
        set_bool(out, x < y);
        break;
    case CQ_LE:
        set_bool(out, x <= y);
        break;
    case CQ_GT:
        set_bool(out, x > y);
        break;
    case CQ_GE:
        set_bool(out, x >= y);
        break;
    default:
        if ((n->op == CQ_DIV || n->op == CQ_MOD) && y == 0) {
            own2 = raise_err(cx, TD_CESQL_ERR_MATH, "division by zero");
            own = own ? own : own2;
            set_int(out, 0);
            break;
        }
        r = n->op == CQ_ADD   ? x + y
            : n->op == CQ_SUB ? x - y
            : n->op == CQ_MUL ? x * y
            : n->op == CQ_DIV ? x / y
                              : x % y;
        if (r > INT32_MAX || r < INT32_MIN) {
            own2 = raise_err(cx, TD_CESQL_ERR_MATH,
                             "integer overflow: %lld does not fit in 32 bits", (long long)r);
            own = own ? own : own2;
        }
        set_int(out, clamp(r));
        break;
    }
    rc = own;
done:
    td_cesql_value_clear(&a);
    td_cesql_value_clear(&b);
    return rc;
}

static int eval_like(const struct cq_node *n, struct cq_ctx *cx, struct td_cesql_value *out)
{
    struct td_cesql_value v = {0};
    int rc = eval(n->kids[0], cx, &v);
    if (rc != TD_CESQL_OK) {
        td_cesql_value_clear(&v);
        set_bool(out, false);
        return rc;
    }
    rc = cast_value(cx, &v, TD_CESQL_STRING, false);
    bool m = like_match(v.s, n->pattern, n->npattern);
    td_cesql_value_clear(&v);
    set_bool(out, m != n->negated);
    return rc;
}

/* x [NOT] IN (y1, ...): each element is cast to x's type, then compared as '=' does. */
static int eval_in(const struct cq_node *n, struct cq_ctx *cx, struct td_cesql_value *out)
{
    struct td_cesql_value x = {0}, y = {0};
    bool found = false;
    int own = TD_CESQL_OK;
    int rc = eval(n->kids[0], cx, &x);
    for (size_t i = 1; rc == TD_CESQL_OK && i < n->nkids && !found; i++) {
        rc = eval(n->kids[i], cx, &y);
        if (rc == TD_CESQL_OK) {
            int c = cast_value(cx, &y, x.type, false);
            own = own ? own : c;
            found = values_equal(&x, &y);
        }
        td_cesql_value_clear(&y);
    }
    td_cesql_value_clear(&x);
    if (rc != TD_CESQL_OK) {
        set_bool(out, false);
        return rc;
    }
    set_bool(out, found != n->negated);
    return own;
}

static int eval_call(const struct cq_node *n, struct cq_ctx *cx, struct td_cesql_value *out)
{
    const struct cq_func *fn = n->fn;
    struct td_cesql_value small[4] = {{0}};
    struct td_cesql_value *args = small;
    size_t done = 0;
    int rc = TD_CESQL_OK, own = TD_CESQL_OK;
    if (n->nkids > 4) {
        args = calloc(n->nkids, sizeof(*args));
        if (!args) {
            args = small;
            set_zero(out, fn->ret);
            rc = raise_err(cx, TD_CESQL_ERR_GENERIC, "out of memory");
            goto fail;
        }
    }
    for (; done < n->nkids; done++) {
        rc = eval(n->kids[done], cx, &args[done]);
        if (rc != TD_CESQL_OK) {
            done++;
            set_zero(out, fn->ret);
            goto fail;
        }
        /* The arity was checked when compiling: params covers every fixed argument. */
        int want = done < 3 ? fn->params[done] : fn->vararg;
        if (want != CQ_ANY) {
            int c = cast_value(cx, &args[done], (enum td_cesql_type)want, false);
            own = own ? own : c;
        }
    }
    set_zero(out, fn->ret);
    rc = fn->fn(cx, args, n->nkids, out);
    rc = own ? own : rc;
fail:
    for (size_t i = 0; i < done; i++) {
        td_cesql_value_clear(&args[i]);
    }
    if (args != small) {
        free(args);
    }
    return rc;
}

static int eval(const struct cq_node *n, struct cq_ctx *cx, struct td_cesql_value *out)
{
    switch (n->op) {
    case CQ_LIT:
        td_cesql_value_clear(out);
        *out = n->lit;
        out->owned = NULL; /* borrowed from the tree */
        return TD_CESQL_OK;
    case CQ_ATTR:
        return eval_attr(n, cx, out);
    case CQ_EXISTS:
        set_bool(out, find_attr(cx->ev, n->name) != NULL);
        return TD_CESQL_OK;
    case CQ_NOT:
    case CQ_NEG:
        return eval_unary(n, cx, out);
    case CQ_AND:
    case CQ_OR:
    case CQ_XOR:
        return eval_logic(n, cx, out);
    case CQ_LIKE:
        return eval_like(n, cx, out);
    case CQ_IN:
        return eval_in(n, cx, out);
    case CQ_CALL:
        return eval_call(n, cx, out);
    default:
        return eval_binary(n, cx, out);
    }
}

enum td_cesql_errkind td_cesql_eval(const struct td_cesql *q, const struct td_event *ev,
                                    struct td_cesql_value *out, struct td_cesql_error *err)
{
    struct td_cesql_error scratch;
    struct cq_ctx cx = {.ev = ev, .err = err ? err : &scratch};
    memset(cx.err, 0, sizeof(*cx.err));
    memset(out, 0, sizeof(*out));
    if (!q || !q->root) {
        set_bool(out, false);
        return (enum td_cesql_errkind)raise_err(&cx, TD_CESQL_ERR_GENERIC, "no expression");
    }
    eval(q->root, &cx, out);
    return cx.first;
}

bool td_cesql_match(const struct td_cesql *q, const struct td_event *ev, struct td_cesql_error *err)
{
    struct td_cesql_error scratch;
    struct td_cesql_error *e = err ? err : &scratch;
    struct td_cesql_value v;
    enum td_cesql_errkind rc = td_cesql_eval(q, ev, &v, e);
    bool ok = rc == TD_CESQL_OK && v.type == TD_CESQL_BOOLEAN && v.b;
    if (rc == TD_CESQL_OK && v.type != TD_CESQL_BOOLEAN) {
        e->kind = TD_CESQL_ERR_GENERIC;
        snprintf(e->message, sizeof(e->message), "the value is a %s, not a boolean",
                 type_name(v.type));
    }
    td_cesql_value_clear(&v);
    return ok;
}

const char *td_cesql_errkind_name(enum td_cesql_errkind kind)
{
    switch (kind) {
    case TD_CESQL_OK:
        return "none";
    case TD_CESQL_ERR_PARSE:
        return "parse";
    case TD_CESQL_ERR_MATH:
        return "math";
    case TD_CESQL_ERR_CAST:
        return "cast";
    case TD_CESQL_ERR_MISSING_FUNCTION:
        return "missingFunction";
    case TD_CESQL_ERR_FUNCTION_EVALUATION:
        return "functionEvaluation";
    case TD_CESQL_ERR_MISSING_ATTRIBUTE:
        return "missingAttribute";
    case TD_CESQL_ERR_GENERIC:
        return "generic";
    }
    return "generic";
}

/* ---- built-in functions: arguments are already cast to the declared types ---- */

static int fn_abs(struct cq_ctx *cx, struct td_cesql_value *a, size_t n, struct td_cesql_value *out)
{
    if (a[0].i == INT32_MIN) {
        set_int(out, INT32_MAX);
        return raise_err(cx, TD_CESQL_ERR_MATH, "ABS(-2147483648) does not fit in 32 bits");
    }
    set_int(out, a[0].i < 0 ? -a[0].i : a[0].i);
    return TD_CESQL_OK;
}

static int fn_length(struct cq_ctx *cx, struct td_cesql_value *a, size_t n,
                     struct td_cesql_value *out)
{
    set_int(out, clamp((int64_t)u8_length(a[0].s)));
    return TD_CESQL_OK;
}

/* Joins a[first..n) with sep between them. */
static int join(struct cq_ctx *cx, struct td_cesql_value *a, size_t first, size_t n,
                const char *sep, struct td_cesql_value *out)
{
    size_t total = 1, seplen = strlen(sep);
    for (size_t i = first; i < n; i++) {
        total += strlen(a[i].s) + seplen;
    }
    char *s = malloc(total);
    if (!s) {
        return set_new_str(cx, out, NULL);
    }
    size_t at = 0;
    for (size_t i = first; i < n; i++) {
        if (i > first) {
            memcpy(s + at, sep, seplen);
            at += seplen;
        }
        size_t l = strlen(a[i].s);
        memcpy(s + at, a[i].s, l);
        at += l;
    }
    s[at] = '\0';
    return set_new_str(cx, out, s);
}

static int fn_concat(struct cq_ctx *cx, struct td_cesql_value *a, size_t n,
                     struct td_cesql_value *out)
{
    return join(cx, a, 0, n, "", out);
}

static int fn_concat_ws(struct cq_ctx *cx, struct td_cesql_value *a, size_t n,
                        struct td_cesql_value *out)
{
    return join(cx, a, 1, n, a[0].s, out);
}

static int change_case(struct cq_ctx *cx, struct td_cesql_value *a, struct td_cesql_value *out,
                       bool upper)
{
    char *s = strdup(a[0].s);
    for (char *c = s; c && *c; c++) {
        if (upper && *c >= 'a' && *c <= 'z') {
            *c = (char)(*c - 'a' + 'A');
        } else if (!upper && *c >= 'A' && *c <= 'Z') {
            *c = (char)(*c - 'A' + 'a');
        }
    }
    return set_new_str(cx, out, s);
}

static int fn_lower(struct cq_ctx *cx, struct td_cesql_value *a, size_t n,
                    struct td_cesql_value *out)
{
    return change_case(cx, a, out, false);
}

static int fn_upper(struct cq_ctx *cx, struct td_cesql_value *a, size_t n,
                    struct td_cesql_value *out)
{
    return change_case(cx, a, out, true);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int fn_trim(struct cq_ctx *cx, struct td_cesql_value *a, size_t n,
                   struct td_cesql_value *out)
{
    const char *s = a[0].s;
    size_t len = strlen(s), lo = 0;
    while (lo < len && is_space(s[lo])) {
        lo++;
    }
    while (len > lo && is_space(s[len - 1])) {
        len--;
    }
    return set_new_str(cx, out, strndup(s + lo, len - lo));
}

static int fn_left_right(struct cq_ctx *cx, struct td_cesql_value *a, struct td_cesql_value *out,
                         bool left)
{
    const char *fname = left ? "LEFT" : "RIGHT";
    if (a[1].i < 0) {
        move_value(out, &a[0]);
        return raise_err(cx, TD_CESQL_ERR_FUNCTION_EVALUATION, "%s: negative length %d", fname,
                         (int)a[1].i);
    }
    size_t chars = u8_length(a[0].s), want = (size_t)a[1].i;
    if (want >= chars) {
        move_value(out, &a[0]);
        return TD_CESQL_OK;
    }
    const char *s = a[0].s;
    if (left) {
        return set_new_str(cx, out, strndup(s, u8_offset(s, want)));
    }
    return set_new_str(cx, out, strdup(s + u8_offset(s, chars - want)));
}

static int fn_left(struct cq_ctx *cx, struct td_cesql_value *a, size_t n,
                   struct td_cesql_value *out)
{
    return fn_left_right(cx, a, out, true);
}

static int fn_right(struct cq_ctx *cx, struct td_cesql_value *a, size_t n,
                    struct td_cesql_value *out)
{
    return fn_left_right(cx, a, out, false);
}

/* SUBSTRING(x, pos[, len]): 1-based pos, negative counts from the end, 0 gives "". */
static int fn_substring(struct cq_ctx *cx, struct td_cesql_value *a, size_t n,
                        struct td_cesql_value *out)
{
    const char *s = a[0].s;
    int64_t chars = (int64_t)u8_length(s), pos = a[1].i;
    int64_t want = n == 3 ? a[2].i : chars;
    if (pos > chars || pos < -chars || want < 0) {
        set_str(out, "", NULL);
        return raise_err(cx, TD_CESQL_ERR_FUNCTION_EVALUATION,
                         "SUBSTRING: position %lld%s out of range for a string of %lld characters",
                         (long long)pos, want < 0 ? " or negative length" : "", (long long)chars);
    }
    if (pos == 0) {
        set_str(out, "", NULL);
        return TD_CESQL_OK;
    }
    int64_t start = pos > 0 ? pos - 1 : chars + pos;
    if (want > chars - start) {
        want = chars - start;
    }
    size_t from = u8_offset(s, (size_t)start);
    size_t to = from + u8_offset(s + from, (size_t)want);
    return set_new_str(cx, out, strndup(s + from, to - from));
}

static int fn_int(struct cq_ctx *cx, struct td_cesql_value *a, size_t n, struct td_cesql_value *out)
{
    int rc = cast_value(cx, &a[0], TD_CESQL_INTEGER, true);
    move_value(out, &a[0]);
    return rc;
}

static int fn_bool(struct cq_ctx *cx, struct td_cesql_value *a, size_t n,
                   struct td_cesql_value *out)
{
    int rc = cast_value(cx, &a[0], TD_CESQL_BOOLEAN, true);
    move_value(out, &a[0]);
    return rc;
}

static int fn_string(struct cq_ctx *cx, struct td_cesql_value *a, size_t n,
                     struct td_cesql_value *out)
{
    int rc = cast_value(cx, &a[0], TD_CESQL_STRING, true);
    move_value(out, &a[0]);
    return rc;
}

static int fn_is_bool(struct cq_ctx *cx, struct td_cesql_value *a, size_t n,
                      struct td_cesql_value *out)
{
    bool b;
    set_bool(out, a[0].type == TD_CESQL_BOOLEAN ||
                      (a[0].type == TD_CESQL_STRING && parse_bool(a[0].s, &b)));
    return TD_CESQL_OK;
}

static int fn_is_int(struct cq_ctx *cx, struct td_cesql_value *a, size_t n,
                     struct td_cesql_value *out)
{
    int32_t i;
    set_bool(out, a[0].type == TD_CESQL_INTEGER ||
                      (a[0].type == TD_CESQL_STRING && parse_int(a[0].s, &i)));
    return TD_CESQL_OK;
}

#define S TD_CESQL_STRING
#define I TD_CESQL_INTEGER
#define B TD_CESQL_BOOLEAN
static const struct cq_func functions[] = {
    {"ABS", 1, 1, {I}, CQ_ANY, I, fn_abs},
    {"LENGTH", 1, 1, {S}, CQ_ANY, I, fn_length},
    {"CONCAT", 0, -1, {S, S, S}, S, S, fn_concat},
    {"CONCAT_WS", 1, -1, {S, S, S}, S, S, fn_concat_ws},
    {"LOWER", 1, 1, {S}, CQ_ANY, S, fn_lower},
    {"UPPER", 1, 1, {S}, CQ_ANY, S, fn_upper},
    {"TRIM", 1, 1, {S}, CQ_ANY, S, fn_trim},
    {"LEFT", 2, 2, {S, I}, CQ_ANY, S, fn_left},
    {"RIGHT", 2, 2, {S, I}, CQ_ANY, S, fn_right},
    {"SUBSTRING", 2, 3, {S, I, I}, CQ_ANY, S, fn_substring},
    {"INT", 1, 1, {CQ_ANY}, CQ_ANY, I, fn_int},
    {"BOOL", 1, 1, {CQ_ANY}, CQ_ANY, B, fn_bool},
    {"STRING", 1, 1, {CQ_ANY}, CQ_ANY, S, fn_string},
    {"IS_BOOL", 1, 1, {CQ_ANY}, CQ_ANY, B, fn_is_bool},
    {"IS_INT", 1, 1, {CQ_ANY}, CQ_ANY, B, fn_is_int},
};
#undef S
#undef I
#undef B

const struct cq_func *td_cesql_find_function(const char *name, size_t nargs)
{
    for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++) {
        const struct cq_func *f = &functions[i];
        if (strcmp(f->name, name) == 0 && nargs >= (size_t)f->min_args &&
            (f->max_args < 0 || nargs <= (size_t)f->max_args)) {
            return f;
        }
    }
    return NULL;
}
