/* cesql.h - CloudEvents SQL (CESQL) v1: compile an expression once, evaluate it per event.
 *
 * Why: the `cesql` filter dialect of a trigger. The language is the one of the CloudEvents
 * SQL specification v1: integer, boolean and string literals ('...' or "..." with \' and \"
 * escapes), attribute access (identifiers are case-insensitive; extensions keep their JSON
 * type, everything else is a string), EXISTS, [NOT] IN, [NOT] LIKE with % _ and \ escapes,
 * 32-bit integer arithmetic (+ - * / %, unary -), comparisons (= != <> < <= > >=),
 * AND/OR/XOR (one precedence level, left to right, AND and OR short-circuit), NOT, and the
 * built-in functions ABS, LENGTH, CONCAT, CONCAT_WS, LOWER, UPPER, TRIM, LEFT, RIGHT,
 * SUBSTRING (2 and 3 arguments), INT, BOOL, STRING, IS_BOOL, IS_INT. Keywords and function
 * names are case-insensitive. Precedence follows the specification's grammar (tightest
 * first): function call, NOT, unary -, LIKE, EXISTS, IN, * / %, + -, = != <>,
 * < <= > >=, AND OR XOR.
 *
 * Errors are the specification's kinds. Parse and missingFunction errors are found when the
 * expression is compiled; math, cast, functionEvaluation, missingAttribute and generic ones
 * when it is evaluated, together with a value (the specification's total semantics: an
 * operator whose operand failed yields the zero value of its type; an operator's own failed
 * cast continues with the zero value of the target type). A filter treats any error as a
 * non-match. Integer overflow is a math error; the value is clamped to the 32-bit range.
 * LOWER/UPPER/TRIM act on ASCII; lengths and positions count Unicode code points (UTF-8).
 *
 * Hostile input: nesting deeper than TD_CESQL_MAX_NESTING and trees taller than
 * TD_CESQL_MAX_HEIGHT are parse errors, so neither compiling nor evaluating recurses without
 * bound.
 *
 * Ownership: td_cesql_compile returns an expression the caller frees with td_cesql_free; it
 * is read-only afterwards and may be evaluated from any thread at the same time. A value
 * filled by td_cesql_eval is released with td_cesql_value_clear.
 */
#ifndef TD_CESQL_H
#define TD_CESQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct td_event;

#define TD_CESQL_MAX_NESTING 128 /* parser recursion: parentheses, prefix operators, calls */
#define TD_CESQL_MAX_HEIGHT  512 /* height of the syntax tree (long operator chains) */

enum td_cesql_type { TD_CESQL_BOOLEAN, TD_CESQL_INTEGER, TD_CESQL_STRING };

enum td_cesql_errkind {
    TD_CESQL_OK = 0,
    TD_CESQL_ERR_PARSE,
    TD_CESQL_ERR_MATH,
    TD_CESQL_ERR_CAST,
    TD_CESQL_ERR_MISSING_FUNCTION,
    TD_CESQL_ERR_FUNCTION_EVALUATION,
    TD_CESQL_ERR_MISSING_ATTRIBUTE,
    TD_CESQL_ERR_GENERIC
};

struct td_cesql_error {
    enum td_cesql_errkind kind;
    int column; /* 1-based byte column in the expression (compile errors), else 0 */
    char message[200];
};

struct td_cesql_value {
    enum td_cesql_type type;
    bool b;
    int32_t i;
    const char *s; /* TD_CESQL_STRING: NUL-terminated, owned (owned != NULL) or borrowed */
    char *owned;
};

struct td_cesql;

/* Compiles expression; NULL with err filled (kind parse or missingFunction, the column and a
 * message) when it is not a valid CESQL v1 expression, or kind generic on out of memory.
 * Thread: any. */
struct td_cesql *td_cesql_compile(const char *expression, struct td_cesql_error *err);
void td_cesql_free(struct td_cesql *q); /* NULL is a no-op */

/* Evaluates q against ev. Always fills *out (release it with td_cesql_value_clear; strings may
 * borrow from ev, so clear it before ev goes away). Returns TD_CESQL_OK, or the kind of the
 * first error with its message in err (err may be NULL). Thread: any. */
enum td_cesql_errkind td_cesql_eval(const struct td_cesql *q, const struct td_event *ev,
                                    struct td_cesql_value *out, struct td_cesql_error *err);
/* The filter semantics: true only when the result is the boolean true and nothing failed.
 * err (may be NULL) says why not when evaluation failed. Thread: any. */
bool td_cesql_match(const struct td_cesql *q, const struct td_event *ev,
                    struct td_cesql_error *err);

void td_cesql_value_clear(struct td_cesql_value *v);
/* "parse", "math", "cast", "missingFunction", "functionEvaluation", "missingAttribute",
 * "generic" (the TCK's names), or "none". */
const char *td_cesql_errkind_name(enum td_cesql_errkind kind);

#endif
