/* cesql_internal.h - the compiled form of a CESQL expression, shared by the parser
 * (cesql_parse.c, which builds it) and the evaluator (cesql_eval.c, which walks it).
 * Not part of the public interface: use cesql.h.
 *
 * Ownership: every node owns its children, its name and its literal string; td_cesql_free
 * frees the tree. Tree height is at most TD_CESQL_MAX_HEIGHT, so recursive walks are bounded.
 */
#ifndef TD_CESQL_INTERNAL_H
#define TD_CESQL_INTERNAL_H

#include "cesql.h"

enum cq_op {
    CQ_LIT,
    CQ_ATTR,
    CQ_EXISTS,
    CQ_NOT,
    CQ_NEG,
    CQ_AND,
    CQ_OR,
    CQ_XOR,
    CQ_EQ,
    CQ_NE,
    CQ_LT,
    CQ_LE,
    CQ_GT,
    CQ_GE,
    CQ_ADD,
    CQ_SUB,
    CQ_MUL,
    CQ_DIV,
    CQ_MOD,
    CQ_LIKE,
    CQ_IN,
    CQ_CALL
};

/* One element of a compiled LIKE pattern: a literal code point, '_' or '%'. */
enum cq_like_kind { CQ_LIKE_CHAR, CQ_LIKE_ONE, CQ_LIKE_ANY };
struct cq_like_elem {
    enum cq_like_kind kind;
    uint32_t cp;
};

struct cq_node;
struct cq_ctx;
typedef int (*cq_fn)(struct cq_ctx *cx, struct td_cesql_value *args, size_t nargs,
                     struct td_cesql_value *out);

/* A built-in function: arity min..max (max -1: variadic, the extra arguments of type
 * vararg), parameter types (CQ_ANY: no cast). */
#define CQ_ANY (-1)
struct cq_func {
    const char *name;
    int min_args;
    int max_args;
    int params[3];
    int vararg;
    enum td_cesql_type ret;
    cq_fn fn;
};

struct cq_node {
    enum cq_op op;
    bool negated;                 /* NOT LIKE, NOT IN */
    int column;                   /* where the node starts, 1-based */
    int height;                   /* 1 for a leaf */
    struct td_cesql_value lit;    /* CQ_LIT (string literals owned) */
    char *name;                   /* CQ_ATTR/CQ_EXISTS: lowercased; CQ_CALL: uppercased */
    const struct cq_func *fn;     /* CQ_CALL, resolved after parsing */
    struct cq_like_elem *pattern; /* CQ_LIKE */
    size_t npattern;
    struct cq_node **kids; /* operands; CQ_IN: the subject then the set; CQ_CALL: arguments */
    size_t nkids;
};

struct td_cesql {
    struct cq_node *root;
};

/* Finds the built-in NAME (uppercase) taking nargs arguments, or NULL (cesql_eval.c). */
const struct cq_func *td_cesql_find_function(const char *name, size_t nargs);
/* Decodes the UTF-8 character at s[i] (len bytes in all): stores its code point (an invalid
 * byte stands for itself, marked with bit 31) and returns its length (>= 1). */
size_t td_cesql_u8_next(const char *s, size_t len, size_t i, uint32_t *cp);
void td_cesql_node_free(struct cq_node *n);

#endif
