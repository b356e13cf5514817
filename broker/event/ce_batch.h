/* ce_batch.h - batched CloudEvents (application/cloudevents-batch+json): a JSON array whose
 * every element is one event in the JSON format. Used by the HTTP ingress source.
 * Threads: any (pure).
 */
#ifndef TD_CE_BATCH_H
#define TD_CE_BATCH_H

#include <stddef.h>

struct td_event;

/* The media type of a batch (the CloudEvents HTTP binding's batched mode). */
#define TD_CE_BATCH_CONTENT_TYPE "application/cloudevents-batch+json"

/* Decodes a batch. Returns 0 and sets *out to a malloc'd array of *n events (one reference
 * each; free with td_ce_batch_free), or -1 with a message naming the first bad element. An
 * empty array is a valid batch of 0 events (*out may then be NULL). */
int td_ce_batch_decode(const char *json, size_t len, struct td_event ***out, size_t *n, char *err,
                       size_t errlen);
void td_ce_batch_free(struct td_event **evs, size_t n);

#endif
