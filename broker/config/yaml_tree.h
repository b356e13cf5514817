/* yaml_tree.h - a YAML document as a small tree of nodes that remember where they were written.
 *
 * The loader (conf_walk.c) walks this tree with its key tables. It exists because libyaml's own
 * document API resolves aliases into shared (possibly cyclic) nodes and hides whether a scalar was
 * quoted; we want neither: aliases are rejected, the quoting style is kept (a quoted "5" is a
 * string, not an integer), and nesting is bounded so no input can exhaust the stack.
 *
 * Ownership: td_yaml_parse returns a tree the caller frees with td_ynode_free().
 * Threads: any.
 */
#ifndef TD_YAML_TREE_H
#define TD_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>

#define TD_YAML_MAX_DEPTH 64

enum td_ynode_kind { TD_YSCALAR, TD_YSEQ, TD_YMAP };

struct td_ynode {
    enum td_ynode_kind kind;
    int line;    /* 1-based */
    int col;     /* 1-based */
    char *value; /* scalar text, NUL-terminated (len excludes the NUL) */
    size_t len;
    bool plain;              /* a plain (unquoted, non-block) scalar */
    struct td_ynode **items; /* sequence: the items; mapping: key, value, key, value, ... */
    size_t n;                /* number of entries in items (twice the pairs for a mapping) */
};

struct td_yaml_error {
    int line; /* 1-based */
    int col;
    char msg[256];
};

/* Parses BUF (LEN bytes) as at most one YAML document. Returns 0 and sets *root (NULL when the
 * input holds no document at all), or -1 with the first problem in *err. */
int td_yaml_parse(const char *buf, size_t len, struct td_ynode **root, struct td_yaml_error *err);
void td_ynode_free(struct td_ynode *node);

/* True for a plain scalar YAML reads as null: empty, "~", "null", "Null", "NULL". */
bool td_ynode_is_null(const struct td_ynode *node);

#endif
