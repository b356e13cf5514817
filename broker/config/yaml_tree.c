/* yaml_tree.c - builds a td_ynode tree from libyaml's event stream (see yaml_tree.h).
 *
 * The event API gives a mark (zero-based line and column) for every node; we store them
 * 1-based. Containers under construction are kept on an explicit stack bounded by
 * TD_YAML_MAX_DEPTH, so hostile nesting is an error instead of a crash.
 */
#include "yaml_tree.h"
#include "secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

void td_ynode_free(struct td_ynode *node)
{
    if (!node) {
        return;
    }
    for (size_t i = 0; i < node->n; i++) {
        td_ynode_free(node->items[i]);
    }
    free(node->items);
    /* A scalar may be a literal secret (password: hunter2): wiped like every copy. */
    if (node->value) {
        td_secret_free_n(node->value, node->len + 1);
    }
    free(node);
}

bool td_ynode_is_null(const struct td_ynode *node)
{
    if (!node || node->kind != TD_YSCALAR || !node->plain) {
        return false;
    }
    const char *v = node->value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static void set_error(struct td_yaml_error *err, int line, int col, const char *msg)
{
    err->line = line;
    err->col = col;
    snprintf(err->msg, sizeof(err->msg), "%s", msg);
}

/* Line and column (1-based) of byte OFFSET in BUF, for reader errors that carry no mark. */
static void offset_to_pos(const char *buf, size_t len, size_t offset, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (buf[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static void parser_error(const yaml_parser_t *parser, const char *buf, size_t len,
                         struct td_yaml_error *err)
{
    char msg[256];
    int line;
    int col;
    if (parser->error == YAML_READER_ERROR) {
        offset_to_pos(buf, len, parser->problem_offset, &line, &col);
        snprintf(msg, sizeof(msg), "invalid YAML: %s",
                 parser->problem ? parser->problem : "unreadable input");
    } else if (parser->error == YAML_MEMORY_ERROR) {
        line = 1;
        col = 1;
        snprintf(msg, sizeof(msg), "out of memory while parsing");
    } else {
        line = (int)parser->problem_mark.line + 1;
        col = (int)parser->problem_mark.column + 1;
        if (parser->context) {
            snprintf(msg, sizeof(msg), "invalid YAML: %s %s",
                     parser->problem ? parser->problem : "syntax error", parser->context);
        } else {
            snprintf(msg, sizeof(msg), "invalid YAML: %s",
                     parser->problem ? parser->problem : "syntax error");
        }
    }
    set_error(err, line, col, msg);
}

static struct td_ynode *node_new(enum td_ynode_kind kind, const yaml_mark_t *mark)
{
    struct td_ynode *node = calloc(1, sizeof(*node));
    if (node) {
        node->kind = kind;
        node->line = (int)mark->line + 1;
        node->col = (int)mark->column + 1;
    }
    return node;
}

static int node_append(struct td_ynode *parent, struct td_ynode *child)
{
    struct td_ynode **items = realloc(parent->items, (parent->n + 1) * sizeof(*items));
    if (!items) {
        return -1;
    }
    parent->items = items;
    items[parent->n++] = child;
    return 0;
}

int td_yaml_parse(const char *buf, size_t len, struct td_ynode **root, struct td_yaml_error *err)
{
    yaml_parser_t parser;
    yaml_event_t event;
    struct td_ynode *stack[TD_YAML_MAX_DEPTH];
    int depth = 0;
    int ndocs = 0;
    bool done = false;
    struct td_ynode *top = NULL;

    *root = NULL;
    if (!yaml_parser_initialize(&parser)) {
        set_error(err, 1, 1, "out of memory while parsing");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &event)) {
            parser_error(&parser, buf, len, err);
            goto fail;
        }
        struct td_ynode *node = NULL;
        int line = (int)event.start_mark.line + 1;
        int col = (int)event.start_mark.column + 1;
        switch (event.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > 1) {
                set_error(err, line, col, "only one YAML document per file is allowed");
                yaml_event_delete(&event);
                goto fail;
            }
            break;
        case YAML_ALIAS_EVENT:
            set_error(err, line, col, "YAML aliases (*name) are not supported");
            yaml_event_delete(&event);
            goto fail;
        case YAML_SCALAR_EVENT:
            node = node_new(TD_YSCALAR, &event.start_mark);
            if (node) {
                node->len = event.data.scalar.length;
                node->value = malloc(node->len + 1);
                node->plain = event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                if (node->value) {
                    memcpy(node->value, event.data.scalar.value, node->len);
                    node->value[node->len] = '\0';
                }
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
            node = node_new(TD_YSEQ, &event.start_mark);
            break;
        case YAML_MAPPING_START_EVENT:
            node = node_new(TD_YMAP, &event.start_mark);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        bool container =
            event.type == YAML_SEQUENCE_START_EVENT || event.type == YAML_MAPPING_START_EVENT;
        bool is_node = container || event.type == YAML_SCALAR_EVENT;
        yaml_event_delete(&event);
        if (!is_node) {
            continue;
        }
        if (!node || (node->kind == TD_YSCALAR && !node->value)) {
            td_ynode_free(node);
            set_error(err, line, col, "out of memory while parsing");
            goto fail;
        }
        if (depth == 0) {
            top = node;
        } else if (node_append(stack[depth - 1], node) < 0) {
            td_ynode_free(node);
            set_error(err, line, col, "out of memory while parsing");
            goto fail;
        }
        if (container) {
            if (depth == TD_YAML_MAX_DEPTH) {
                set_error(err, line, col, "nesting is too deep");
                goto fail;
            }
            stack[depth++] = node;
        }
    }
    yaml_parser_delete(&parser);
    *root = top;
    return 0;
fail:
    td_ynode_free(top);
    yaml_parser_delete(&parser);
    return -1;
}
