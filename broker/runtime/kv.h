/* kv.h - an ordered list of string pairs: the trigger file's maps (headers, properties,
 * declare arguments, event.set) and the attribute tests of filters share it.
 * Data only; whoever fills a list owns its strings and frees them.
 */
#ifndef TD_KV_H
#define TD_KV_H

#include <stddef.h>

struct td_kv {
    char *key;
    char *value;
};

struct td_kv_list {
    struct td_kv *items;
    size_t n;
};

#endif
