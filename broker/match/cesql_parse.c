/* cesql_parse.c - the CESQL v1 lexer and parser: expression text -> syntax tree (see cesql.h
 * for the language and cesql_internal.h for the tree).
 *
 * Why a hand-written precedence-climbing parser: the grammar is small, errors must say the
 * column, and nesting must be bounded (hostile expressions) - every recursion counts against
 * TD_CESQL_MAX_NESTING and every node against TD_CESQL_MAX_HEIGHT.
 *
 * The text is first cut into tokens (an array freed before returning), then parsed; function
 * names are resolved against the built-ins in a last pass, so a syntax error is reported
 * before an unknown function. Ownership: td_cesql_compile returns a tree the caller frees with
 * td_cesql_free.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cesql_internal.h"

enum tok_kind {
    T_EOF,
    T_INT,
    T_STR,
    T_IDENT,
    T_LPAREN,
    T_RPAREN,
    T_COMMA,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_PERCENT,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_AND,
    T_OR,
    T_XOR,
    T_NOT,
    T_LIKE,
    T_IN,
    T_EXISTS,
    T_TRUE,
    T_FALSE
};

struct tok {
    enum tok_kind kind;
    int column;
    uint64_t num; /* T_INT, saturated above 2^32 */
    char *text;   /* T_STR: the decoded literal; T_IDENT: as written */
};

struct parser {
    struct tok *toks;
    size_t ntoks;
    size_t pos;
    int nesting;
    struct td_cesql_error *err;
    bool failed;
};

static const struct {
    const char *word;
    enum tok_kind kind;
} keywords[] = {{"AND", T_AND},       {"OR", T_OR},     {"XOR", T_XOR},
                {"NOT", T_NOT},       {"LIKE", T_LIKE}, {"IN", T_IN},
                {"EXISTS", T_EXISTS}, {"TRUE", T_TRUE}, {"FALSE", T_FALSE}};

static void fail_at(struct parser *p, enum td_cesql_errkind kind, int column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail_at(struct parser *p, enum td_cesql_errkind kind, int column, const char *fmt, ...)
{
    if (p->failed) {
        return;
    }
    p->failed = true;
    p->err->kind = kind;
    p->err->column = column;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->message, sizeof(p->err->message), fmt, ap);
    va_end(ap);
}

/* ---- lexer ---- */

static int push_tok(struct parser *p, size_t *cap, struct tok t)
{
    if (p->ntoks == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct tok *toks = realloc(p->toks, ncap * sizeof(*toks));
        if (!toks) {
            free(t.text);
            fail_at(p, TD_CESQL_ERR_GENERIC, t.column, "out of memory");
            return -1;
        }
        p->toks = toks;
        *cap = ncap;
    }
    p->toks[p->ntoks++] = t;
    return 0;
}

/* A quoted literal starting at s[i] (the quote); returns the index after it, or 0. */
static size_t lex_string(struct parser *p, const char *s, size_t i, struct tok *t)
{
    char q = s[i];
    size_t len = strlen(s + i);
    char *out = malloc(len + 1);
    size_t n = 0;
    if (!out) {
        fail_at(p, TD_CESQL_ERR_GENERIC, t->column, "out of memory");
        return 0;
    }
    for (size_t j = i + 1; s[j]; j++) {
        if (s[j] == '\\' && s[j + 1] == q) {
            out[n++] = q;
            j++;
        } else if (s[j] == q) {
            out[n] = '\0';
            t->text = out;
            return j + 1;
        } else {
            out[n++] = s[j];
        }
    }
    free(out);
    fail_at(p, TD_CESQL_ERR_PARSE, t->column, "unterminated string literal");
    return 0;
}

static int lex(struct parser *p, const char *s)
{
    size_t cap = 0;
    size_t i = 0;
    for (;;) {
        while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' ||
               s[i] == '\v') {
            i++;
        }
        struct tok t = {.kind = T_EOF, .column = (int)i + 1};
        char c = s[i];
        if (c == '\0') {
            return push_tok(p, &cap, t);
        }
        if (isalnum((unsigned char)c) || c == '_') {
            size_t j = i;
            bool digits = true;
            while (isalnum((unsigned char)s[j]) || s[j] == '_') {
                digits &= isdigit((unsigned char)s[j]) != 0;
                j++;
            }
            if (digits) {
                t.kind = T_INT;
                for (size_t k = i; k < j; k++) {
                    t.num = t.num * 10 + (uint64_t)(s[k] - '0');
                    if (t.num > UINT32_MAX) {
                        t.num = (uint64_t)UINT32_MAX + 1;
                    }
                }
            } else {
                t.kind = T_IDENT;
                for (size_t k = 0; k < sizeof(keywords) / sizeof(keywords[0]); k++) {
                    if (strlen(keywords[k].word) == j - i &&
                        strncasecmp(keywords[k].word, s + i, j - i) == 0) {
                        t.kind = keywords[k].kind;
                    }
                }
                if (t.kind == T_IDENT && !(t.text = strndup(s + i, j - i))) {
                    fail_at(p, TD_CESQL_ERR_GENERIC, t.column, "out of memory");
                    return -1;
                }
            }
            i = j;
        } else if (c == '\'' || c == '"') {
            t.kind = T_STR;
            i = lex_string(p, s, i, &t);
            if (i == 0) {
                return -1;
            }
        } else {
            size_t w = 1;
            switch (c) {
            case '(':
                t.kind = T_LPAREN;
                break;
            case ')':
                t.kind = T_RPAREN;
                break;
            case ',':
                t.kind = T_COMMA;
                break;
            case '+':
                t.kind = T_PLUS;
                break;
            case '-':
                t.kind = T_MINUS;
                break;
            case '*':
                t.kind = T_STAR;
                break;
            case '/':
                t.kind = T_SLASH;
                break;
            case '%':
                t.kind = T_PERCENT;
                break;
            case '=':
                t.kind = T_EQ;
                break;
            case '!':
                if (s[i + 1] != '=') {
                    fail_at(p, TD_CESQL_ERR_PARSE, t.column, "unexpected '!' (did you mean '!=')");
                    return -1;
                }
                t.kind = T_NE;
                w = 2;
                break;
            case '<':
                t.kind = s[i + 1] == '=' ? T_LE : s[i + 1] == '>' ? T_NE : T_LT;
                w = t.kind == T_LT ? 1 : 2;
                break;
            case '>':
                t.kind = s[i + 1] == '=' ? T_GE : T_GT;
                w = t.kind == T_GT ? 1 : 2;
                break;
            default:
                if (isprint((unsigned char)c)) {
                    fail_at(p, TD_CESQL_ERR_PARSE, t.column, "unexpected character '%c'", c);
                } else {
                    fail_at(p, TD_CESQL_ERR_PARSE, t.column, "unexpected byte 0x%02x",
                            (unsigned char)c);
                }
                return -1;
            }
            i += w;
        }
        if (push_tok(p, &cap, t) < 0) {
            return -1;
        }
    }
}

/* ---- tree ---- */

void td_cesql_node_free(struct cq_node *n)
{
    if (!n) {
        return;
    }
    for (size_t i = 0; i < n->nkids; i++) {
        td_cesql_node_free(n->kids[i]);
    }
    free(n->kids);
    free(n->lit.owned);
    free(n->name);
    free(n->pattern);
    free(n);
}

static struct cq_node *node_new(struct parser *p, enum cq_op op, int column)
{
    struct cq_node *n = calloc(1, sizeof(*n));
    if (!n) {
        fail_at(p, TD_CESQL_ERR_GENERIC, column, "out of memory");
        return NULL;
    }
    n->op = op;
    n->column = column;
    n->height = 1;
    return n;
}

/* Appends kid to n (taking it; freed on failure). 0 or -1. */
static int add_kid(struct parser *p, struct cq_node *n, struct cq_node *kid)
{
    struct cq_node **kids = realloc(n->kids, (n->nkids + 1) * sizeof(*kids));
    if (!kids) {
        td_cesql_node_free(kid);
        fail_at(p, TD_CESQL_ERR_GENERIC, n->column, "out of memory");
        return -1;
    }
    n->kids = kids;
    kids[n->nkids++] = kid;
    if (kid->height + 1 > n->height) {
        n->height = kid->height + 1;
    }
    if (n->height > TD_CESQL_MAX_HEIGHT) {
        fail_at(p, TD_CESQL_ERR_PARSE, n->column,
                "expression too complex (more than %d levels of operators)", TD_CESQL_MAX_HEIGHT);
        return -1;
    }
    return 0;
}

static const struct tok *peek(const struct parser *p, size_t ahead)
{
    size_t i = p->pos + ahead;
    return &p->toks[i < p->ntoks ? i : p->ntoks - 1];
}

static const char *tok_name(const struct tok *t)
{
    switch (t->kind) {
    case T_EOF:
        return "the end of the expression";
    case T_INT:
        return "an integer";
    case T_STR:
        return "a string literal";
    case T_IDENT:
        return "an identifier";
    case T_LPAREN:
        return "'('";
    case T_RPAREN:
        return "')'";
    case T_COMMA:
        return "','";
    case T_PLUS:
        return "'+'";
    case T_MINUS:
        return "'-'";
    case T_STAR:
        return "'*'";
    case T_SLASH:
        return "'/'";
    case T_PERCENT:
        return "'%'";
    case T_EQ:
        return "'='";
    case T_NE:
        return "'!='";
    case T_LT:
        return "'<'";
    case T_LE:
        return "'<='";
    case T_GT:
        return "'>'";
    case T_GE:
        return "'>='";
    case T_AND:
        return "AND";
    case T_OR:
        return "OR";
    case T_XOR:
        return "XOR";
    case T_NOT:
        return "NOT";
    case T_LIKE:
        return "LIKE";
    case T_IN:
        return "IN";
    case T_EXISTS:
        return "EXISTS";
    case T_TRUE:
        return "TRUE";
    case T_FALSE:
        return "FALSE";
    }
    return "a token";
}

static int expect(struct parser *p, enum tok_kind kind, const char *what)
{
    const struct tok *t = peek(p, 0);
    if (t->kind != kind) {
        fail_at(p, TD_CESQL_ERR_PARSE, t->column, "expected %s but found %s", what, tok_name(t));
        return -1;
    }
    p->pos++;
    return 0;
}

/* An attribute name: letters and digits only (the CloudEvents naming rule, case folded). */
static char *attr_name(struct parser *p, const struct tok *t)
{
    for (const char *c = t->text; *c; c++) {
        if (!isalnum((unsigned char)*c)) {
            fail_at(p, TD_CESQL_ERR_PARSE, t->column,
                    "'%s' is not an attribute name (letters and digits only)", t->text);
            return NULL;
        }
    }
    char *name = strdup(t->text);
    if (!name) {
        fail_at(p, TD_CESQL_ERR_GENERIC, t->column, "out of memory");
        return NULL;
    }
    for (char *c = name; *c; c++) {
        *c = (char)tolower((unsigned char)*c);
    }
    return name;
}

static struct cq_node *int_literal(struct parser *p, const struct tok *t, bool negative)
{
    uint64_t limit = negative ? (uint64_t)INT32_MAX + 1 : (uint64_t)INT32_MAX;
    if (t->num > limit) {
        fail_at(p, TD_CESQL_ERR_PARSE, t->column,
                "integer literal out of the 32-bit range (-2147483648..2147483647)");
        return NULL;
    }
    struct cq_node *n = node_new(p, CQ_LIT, t->column);
    if (n) {
        n->lit.type = TD_CESQL_INTEGER;
        n->lit.i = negative ? (int32_t)(-(int64_t)t->num) : (int32_t)t->num;
    }
    return n;
}

/* Compiles a LIKE pattern: % and _ are wildcards; \%, \_ and \\ stand for themselves; any
 * other backslash is literal. */
static int compile_pattern(struct parser *p, struct cq_node *n, const char *pat)
{
    size_t len = strlen(pat);
    n->pattern = calloc(len + 1, sizeof(*n->pattern));
    if (!n->pattern) {
        fail_at(p, TD_CESQL_ERR_GENERIC, n->column, "out of memory");
        return -1;
    }
    size_t i = 0;
    while (i < len) {
        struct cq_like_elem e = {.kind = CQ_LIKE_CHAR};
        if (pat[i] == '\\' && (pat[i + 1] == '%' || pat[i + 1] == '_' || pat[i + 1] == '\\')) {
            e.cp = (uint32_t)pat[i + 1];
            i += 2;
        } else if (pat[i] == '%') {
            e.kind = CQ_LIKE_ANY;
            i++;
            if (n->npattern > 0 && n->pattern[n->npattern - 1].kind == CQ_LIKE_ANY) {
                continue;
            }
        } else if (pat[i] == '_') {
            e.kind = CQ_LIKE_ONE;
            i++;
        } else {
            i += td_cesql_u8_next(pat, len, i, &e.cp);
        }
        n->pattern[n->npattern++] = e;
    }
    return 0;
}

static struct cq_node *parse_expr(struct parser *p, int minprec);

static struct cq_node *parse_call(struct parser *p, const struct tok *t)
{
    for (const char *c = t->text; *c; c++) {
        if (!isalpha((unsigned char)*c) && *c != '_') {
            fail_at(p, TD_CESQL_ERR_PARSE, t->column,
                    "'%s' is not a function name (letters and '_' only)", t->text);
            return NULL;
        }
    }
    struct cq_node *n = node_new(p, CQ_CALL, t->column);
    if (!n || !(n->name = strdup(t->text))) {
        fail_at(p, TD_CESQL_ERR_GENERIC, t->column, "out of memory");
        goto fail;
    }
    for (char *c = n->name; *c; c++) {
        *c = (char)toupper((unsigned char)*c);
    }
    p->pos++; /* '(' */
    if (peek(p, 0)->kind == T_RPAREN) {
        p->pos++;
        return n;
    }
    for (;;) {
        struct cq_node *arg = parse_expr(p, 0);
        if (!arg || add_kid(p, n, arg) < 0) {
            goto fail;
        }
        if (peek(p, 0)->kind == T_COMMA) {
            p->pos++;
            continue;
        }
        if (expect(p, T_RPAREN, "',' or ')' after a function argument") < 0) {
            goto fail;
        }
        return n;
    }
fail:
    td_cesql_node_free(n);
    return NULL;
}

/* A primary: literal, identifier, call, (expr), EXISTS x, or a prefix operator with its
 * operand (which binds tighter than every binary operator). */
static struct cq_node *parse_prefix(struct parser *p)
{
    struct cq_node *n = NULL;
    const struct tok *t = peek(p, 0);
    if (++p->nesting > TD_CESQL_MAX_NESTING) {
        fail_at(p, TD_CESQL_ERR_PARSE, t->column, "expression nested too deeply (more than %d)",
                TD_CESQL_MAX_NESTING);
        goto fail;
    }
    switch (t->kind) {
    case T_INT:
        p->pos++;
        n = int_literal(p, t, false);
        break;
    case T_PLUS:
    case T_MINUS:
        if (peek(p, 1)->kind == T_INT) {
            const struct tok *num = peek(p, 1);
            p->pos += 2;
            n = int_literal(p, num, t->kind == T_MINUS);
            break;
        }
        if (t->kind == T_PLUS) {
            fail_at(p, TD_CESQL_ERR_PARSE, t->column, "unexpected '+'");
            goto fail;
        }
        /* fallthrough */
    case T_NOT: {
        p->pos++;
        struct cq_node *operand = parse_prefix(p);
        if (!operand) {
            goto fail;
        }
        n = node_new(p, t->kind == T_NOT ? CQ_NOT : CQ_NEG, t->column);
        if (!n) {
            td_cesql_node_free(operand);
            goto fail;
        }
        if (add_kid(p, n, operand) < 0) {
            goto fail;
        }
        break;
    }
    case T_STR:
        p->pos++;
        n = node_new(p, CQ_LIT, t->column);
        if (n) {
            n->lit.type = TD_CESQL_STRING;
            n->lit.owned = t->text;
            n->lit.s = t->text;
            p->toks[p->pos - 1].text = NULL; /* moved */
        }
        break;
    case T_TRUE:
    case T_FALSE:
        p->pos++;
        n = node_new(p, CQ_LIT, t->column);
        if (n) {
            n->lit.type = TD_CESQL_BOOLEAN;
            n->lit.b = t->kind == T_TRUE;
        }
        break;
    case T_EXISTS: {
        const struct tok *id = peek(p, 1);
        if (id->kind != T_IDENT) {
            fail_at(p, TD_CESQL_ERR_PARSE, id->column,
                    "expected an attribute name after EXISTS but found %s", tok_name(id));
            goto fail;
        }
        p->pos += 2;
        n = node_new(p, CQ_EXISTS, t->column);
        if (n && !(n->name = attr_name(p, id))) {
            goto fail;
        }
        break;
    }
    case T_LPAREN:
        p->pos++;
        n = parse_expr(p, 0);
        if (n && expect(p, T_RPAREN, "')'") < 0) {
            goto fail;
        }
        break;
    case T_IDENT:
        if (peek(p, 1)->kind == T_LPAREN) {
            p->pos++;
            n = parse_call(p, t);
            break;
        }
        p->pos++;
        n = node_new(p, CQ_ATTR, t->column);
        if (n && !(n->name = attr_name(p, t))) {
            goto fail;
        }
        break;
    default:
        fail_at(p, TD_CESQL_ERR_PARSE, t->column, "expected a value but found %s", tok_name(t));
        goto fail;
    }
    if (!n) {
        goto fail;
    }
    p->nesting--;
    return n;
fail:
    td_cesql_node_free(n);
    p->nesting--;
    return NULL;
}

/* The binary (and postfix LIKE / IN) operator at the current token: its precedence (higher
 * binds tighter) and how many tokens it spans, or 0. */
static int binary_prec(const struct parser *p, enum cq_op *op, bool *negated, size_t *width)
{
    const struct tok *t = peek(p, 0);
    *negated = false;
    *width = 1;
    switch (t->kind) {
    case T_NOT: {
        enum tok_kind next = peek(p, 1)->kind;
        if (next != T_LIKE && next != T_IN) {
            return 0;
        }
        *negated = true;
        *width = 2;
        *op = next == T_LIKE ? CQ_LIKE : CQ_IN;
        return next == T_LIKE ? 10 : 8;
    }
    case T_LIKE:
        *op = CQ_LIKE;
        return 10;
    case T_IN:
        *op = CQ_IN;
        return 8;
    case T_STAR:
        *op = CQ_MUL;
        return 7;
    case T_SLASH:
        *op = CQ_DIV;
        return 7;
    case T_PERCENT:
        *op = CQ_MOD;
        return 7;
    case T_PLUS:
        *op = CQ_ADD;
        return 6;
    case T_MINUS:
        *op = CQ_SUB;
        return 6;
    case T_EQ:
        *op = CQ_EQ;
        return 5;
    case T_NE:
        *op = CQ_NE;
        return 5;
    case T_LT:
        *op = CQ_LT;
        return 4;
    case T_LE:
        *op = CQ_LE;
        return 4;
    case T_GT:
        *op = CQ_GT;
        return 4;
    case T_GE:
        *op = CQ_GE;
        return 4;
    case T_AND:
        *op = CQ_AND;
        return 3;
    case T_OR:
        *op = CQ_OR;
        return 3;
    case T_XOR:
        *op = CQ_XOR;
        return 3;
    default:
        return 0;
    }
}

/* The right-hand side of LIKE (a string literal) or IN (a parenthesized list). */
static int parse_postfix(struct parser *p, struct cq_node *n)
{
    if (n->op == CQ_LIKE) {
        const struct tok *t = peek(p, 0);
        if (t->kind != T_STR) {
            fail_at(p, TD_CESQL_ERR_PARSE, t->column,
                    "LIKE needs a string literal pattern but found %s", tok_name(t));
            return -1;
        }
        p->pos++;
        return compile_pattern(p, n, t->text);
    }
    if (expect(p, T_LPAREN, "'(' after IN") < 0) {
        return -1;
    }
    for (;;) {
        struct cq_node *el = parse_expr(p, 0);
        if (!el || add_kid(p, n, el) < 0) {
            return -1;
        }
        if (peek(p, 0)->kind == T_COMMA) {
            p->pos++;
            continue;
        }
        return expect(p, T_RPAREN, "',' or ')' in the IN list");
    }
}

static struct cq_node *parse_expr(struct parser *p, int minprec)
{
    struct cq_node *left = parse_prefix(p);
    if (!left) {
        return NULL;
    }
    if (++p->nesting > TD_CESQL_MAX_NESTING) {
        fail_at(p, TD_CESQL_ERR_PARSE, left->column, "expression nested too deeply (more than %d)",
                TD_CESQL_MAX_NESTING);
        goto fail;
    }
    for (;;) {
        enum cq_op op;
        bool negated;
        size_t width;
        int prec = binary_prec(p, &op, &negated, &width);
        if (prec == 0 || prec < minprec) {
            break;
        }
        const struct tok *t = peek(p, 0);
        p->pos += width;
        struct cq_node *n = node_new(p, op, t->column);
        if (!n) {
            goto fail;
        }
        n->negated = negated;
        if (add_kid(p, n, left) < 0) {
            left = n;
            goto fail;
        }
        left = n;
        if (op == CQ_LIKE || op == CQ_IN) {
            if (parse_postfix(p, n) < 0) {
                goto fail;
            }
            continue;
        }
        struct cq_node *right = parse_expr(p, prec + 1);
        if (!right || add_kid(p, n, right) < 0) {
            goto fail;
        }
    }
    p->nesting--;
    return left;
fail:
    td_cesql_node_free(left);
    p->nesting--;
    return NULL;
}

/* Binds every call to its built-in (the tree's height is bounded, so recursion is too). */
static int resolve(struct parser *p, struct cq_node *n)
{
    if (n->op == CQ_CALL) {
        n->fn = td_cesql_find_function(n->name, n->nkids);
        if (!n->fn) {
            fail_at(p, TD_CESQL_ERR_MISSING_FUNCTION, n->column,
                    "no function %s taking %zu argument%s", n->name, n->nkids,
                    n->nkids == 1 ? "" : "s");
            return -1;
        }
    }
    for (size_t i = 0; i < n->nkids; i++) {
        if (resolve(p, n->kids[i]) < 0) {
            return -1;
        }
    }
    return 0;
}

struct td_cesql *td_cesql_compile(const char *expression, struct td_cesql_error *err)
{
    struct td_cesql_error scratch;
    struct parser p = {.err = err ? err : &scratch};
    struct td_cesql *q = NULL;
    struct cq_node *root = NULL;
    memset(p.err, 0, sizeof(*p.err));
    if (!expression) {
        fail_at(&p, TD_CESQL_ERR_PARSE, 1, "no expression");
        goto fail;
    }
    if (lex(&p, expression) < 0) {
        goto fail;
    }
    root = parse_expr(&p, 0);
    if (!root) {
        goto fail;
    }
    if (peek(&p, 0)->kind != T_EOF) {
        const struct tok *t = peek(&p, 0);
        fail_at(&p, TD_CESQL_ERR_PARSE, t->column,
                "expected an operator or the end of the expression but found %s", tok_name(t));
        goto fail;
    }
    if (resolve(&p, root) < 0) {
        goto fail;
    }
    q = calloc(1, sizeof(*q));
    if (!q) {
        fail_at(&p, TD_CESQL_ERR_GENERIC, 1, "out of memory");
        goto fail;
    }
    q->root = root;
    for (size_t i = 0; i < p.ntoks; i++) {
        free(p.toks[i].text);
    }
    free(p.toks);
    return q;
fail:
    td_cesql_node_free(root);
    for (size_t i = 0; i < p.ntoks; i++) {
        free(p.toks[i].text);
    }
    free(p.toks);
    return NULL;
}

void td_cesql_free(struct td_cesql *q)
{
    if (!q) {
        return;
    }
    td_cesql_node_free(q->root);
    free(q);
}
