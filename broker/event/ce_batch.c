/* ce_batch.c - the batched JSON format of CloudEvents (see ce_batch.h). Each element's own text
 * (its span in the batch, json_text.h) goes through the single-event JSON decoder (ce_json.c),
 * so both modes accept exactly the same events and keep JSON data as the producer wrote it. */
#include "ce_batch.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ce_internal.h"
#include "ce_json.h"
#include "cloudevent.h"
#include "json_text.h"

void td_ce_batch_free(struct td_event **evs, size_t n)
{
    for (size_t i = 0; evs && i < n; i++) {
        td_event_unref(evs[i]);
    }
    free(evs);
}

int td_ce_batch_decode(const char *json, size_t len, struct td_event ***out, size_t *n, char *err,
                       size_t errlen)
{
    cJSON *root = NULL;
    struct td_event **evs = NULL;
    size_t count = 0;
    char why[256];
    *out = NULL;
    *n = 0;
    if (!json || len == 0) {
        td_ce_errf(err, errlen, "empty batch");
        goto fail;
    }
    if (!td_ce_utf8_valid((const unsigned char *)json, len)) {
        td_ce_errf(err, errlen, "batch is not valid UTF-8");
        goto fail;
    }
    /* Checked on the raw text: cJSON would cut the string at it. */
    if (td_ce_json_has_nul(json, len)) {
        td_ce_errf(err, errlen, "batch holds \\u0000 (a NUL) in a string, which cannot be kept");
        goto fail;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    /* Only blanks after the array, as after a single event (ce_json.c). */
    if (root && !td_json_blank_to(end, json + len)) {
        td_ce_errf(err, errlen, "batch has bytes after its JSON array");
        goto fail;
    }
    if (!root || !cJSON_IsArray(root)) {
        td_ce_errf(err, errlen, root ? "batch is not a JSON array" : "batch is not valid JSON");
        goto fail;
    }
    size_t total = (size_t)cJSON_GetArraySize(root);
    evs = calloc(total + 1, sizeof(*evs));
    if (!evs) {
        td_ce_errf(err, errlen, "out of memory");
        goto fail;
    }
    const cJSON *item;
    size_t pos = 0;
    cJSON_ArrayForEach(item, root)
    {
        size_t a;
        size_t b;
        if (!cJSON_IsObject(item)) {
            td_ce_errf(err, errlen, "batch element %zu: not a JSON object", count);
            goto fail;
        }
        /* cJSON accepted the array, so its elements' spans are there in the same order. */
        if (!td_json_element_next(json, len, &pos, &a, &b)) {
            td_ce_errf(err, errlen, "batch element %zu: not found in the text", count);
            goto fail;
        }
        why[0] = '\0';
        evs[count] = td_ce_from_json(json + a, b - a, why, sizeof(why));
        if (!evs[count]) {
            td_ce_errf(err, errlen, "batch element %zu: %s", count, why);
            goto fail;
        }
        count++;
    }
    cJSON_Delete(root);
    *out = evs;
    *n = count;
    return 0;
fail:
    cJSON_Delete(root);
    td_ce_batch_free(evs, count);
    return -1;
}
