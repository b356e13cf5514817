/* fuzz_yaml_tree.c - td_yaml_parse (libyaml's event stream to a bounded tree) on any bytes,
 * then a walk that checks the tree's shape: mappings hold pairs, scalars hold a NUL at
 * value[len], depth stays within TD_YAML_MAX_DEPTH, positions are 1-based.
 */
#include "fuzz_common.h"
#include "yaml_tree.h"

static void check(const struct td_ynode *node, int depth)
{
    FUZZ_CHECK(depth <= TD_YAML_MAX_DEPTH + 1, "depth %d", depth);
    FUZZ_CHECK(node->line >= 1 && node->col >= 1, "position %d:%d", node->line, node->col);
    switch (node->kind) {
    case TD_YSCALAR:
        FUZZ_CHECK(node->value != NULL && node->value[node->len] == '\0', "scalar not terminated");
        FUZZ_CHECK(node->n == 0, "scalar with %zu items", node->n);
        (void)td_ynode_is_null(node);
        break;
    case TD_YMAP:
        FUZZ_CHECK(node->n % 2 == 0, "mapping with %zu entries", node->n);
        /* fall through */
    case TD_YSEQ:
        for (size_t i = 0; i < node->n; i++) {
            FUZZ_CHECK(node->items[i] != NULL, "NULL item %zu", i);
            check(node->items[i], depth + 1);
        }
        break;
    default:
        FUZZ_CHECK(0, "bad kind %d", (int)node->kind);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct td_ynode *root = NULL;
    struct td_yaml_error err;

    memset(&err, 0, sizeof(err));
    if (td_yaml_parse((const char *)data, size, &root, &err) == 0) {
        if (root) {
            check(root, 1);
        }
    } else {
        FUZZ_CHECK(root == NULL, "a tree came with an error");
        FUZZ_CHECK(err.msg[0] != '\0', "an error without a message");
        FUZZ_CHECK(err.line >= 1 && err.col >= 1, "error position %d:%d", err.line, err.col);
    }
    td_ynode_free(root);
    return 0;
}
