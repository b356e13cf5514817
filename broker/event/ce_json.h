/* ce_json.h - the CloudEvents JSON event format (ce_json.c): one event as a JSON object. It is
 * HTTP's structured mode, the file sink's line format, a redrive file's entries and what every
 * binding's structured mode (content type application/cloudevents+json) carries; batches of it
 * are ce_batch.h.
 * Threads: any (no state).
 */
#ifndef TD_CE_JSON_H
#define TD_CE_JSON_H

#include <stddef.h>

#include "cloudevent.h"

/* Structured mode (and the JSON event format): a malloc'd JSON text, NUL-terminated, that the
 * caller frees. JSON data is embedded as "data"; text data of a text/... type as a "data"
 * string; anything else as "data_base64". NULL on out of memory. */
char *td_ce_to_json(const struct td_event *ev, size_t *len);
/* Parses one event in the JSON format; NULL with a message on error. */
struct td_event *td_ce_from_json(const char *json, size_t len, char *err, size_t errlen);

#endif
