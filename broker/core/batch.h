/* batch.h - delivery.batch: several deliveries of one trigger in one request to its sink.
 *
 * Each event keeps its own struct td_delivery (dispatch.c): batch.c only gathers WAITING ones
 * into a batch, encodes them as one JSON array, runs one attempt on the sink (deliver_batch,
 * sink.h) and fans the answer out to every member, whose own retries, backoff and dead letter
 * then go on as for a single attempt. A batch holds ONE slot of the trigger's concurrency
 * limit. Ordering: an ordered lane puts only its head in the wait queue; when the head joins a
 * batch, the events queued behind it in its lane join right after it, in order (followers), and
 * nothing later of that lane goes out until they finished: a follower counts as delivered only
 * once every event before it in the lane was, else it goes back to its lane and is sent again.
 * Threads: loop only.
 */
#ifndef TD_BATCH_H
#define TD_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink.h"

struct td_trigger_rt;
struct td_delivery;
struct td_event;

/* pump()'s hook: for a batching trigger (delivery.batch on a sink with deliver_batch), moves
 * waiting deliveries into the open batch and sends every batch that is due (full, or max_wait
 * passed) while the trigger has a free slot; returns true. False for any other trigger
 * (pump() starts single attempts). */
bool td_batch_pump(struct td_trigger_rt *trg);
/* The open batch (not sent yet) goes back to the front of the wait queue, in order: before
 * dispatch releases or cancels waiting deliveries. */
void td_batch_dissolve(struct td_trigger_rt *trg);
/* Frees trg->batch: teardown and reload, when no delivery of trg is left (batches in flight
 * are abandoned with their attempts: their messages are redelivered). */
void td_batch_trigger_free(struct td_trigger_rt *trg);

/* The partial failures of a batch's 2xx answer, as AWS Lambda event source mappings define
 * them: {"batchItemFailures": [{"itemIdentifier": "<event id>"}, ...]}. ids[i] is member i's
 * event id; failed[i] is set for each one named. Returns 0 when the answer names none (an
 * empty body, one that is not a JSON object, no batchItemFailures, null or []), 1 when some
 * were named, -1 when the list is malformed or names an id not in the batch (then the whole
 * batch failed, as Lambda does) with why. Pure. */
int td_batch_parse_failures(const unsigned char *body, size_t len, const char *const *ids, size_t n,
                            bool *failed, char *why, size_t whylen);

/* ---- implemented by dispatch.c for batch.c ---- */

/* The head of trg's wait queue, unlinked, or NULL. */
struct td_delivery *td_dispatch_wait_pop(struct td_trigger_rt *trg);
/* Puts d back at the front of trg's wait queue (WAITING). */
void td_dispatch_wait_push_front(struct td_trigger_rt *trg, struct td_delivery *d);
/* The event d delivers (borrowed). */
const struct td_event *td_delivery_event(const struct td_delivery *d);
/* d's attempt starts as a member of a batch: counted, traced; its traceparent is d's. */
const char *td_delivery_batch_begin(struct td_delivery *d);
/* d's part of the batch's answer: d is delivered, retried or dead-lettered as after a single
 * attempt (d may be freed). Gives back no slot and does not pump: the caller does, once. */
void td_delivery_batch_done(struct td_delivery *d, enum td_result r, int http_status,
                            int64_t retry_after_ms, const char *reason, const void *body,
                            size_t len);
/* Ordered triggers: the next delivery queued in the lane d heads (or follows in this batch),
 * unlinked and chained as d's follower, so that a batch can carry several events of a lane in
 * order; NULL when there is none (or d is unordered). */
struct td_delivery *td_delivery_lane_pull(struct td_delivery *d);
/* The followers chained after d (not sent) go back to the front of their lane, in order. */
void td_delivery_lane_unpull(struct td_delivery *d);
/* True when d travels as a follower of its lane's head (td_delivery_lane_pull). */
bool td_delivery_follows(const struct td_delivery *d);
/* pump() of dispatch.c (re-entrant calls return at once). */
void td_dispatch_pump(struct td_trigger_rt *trg);
/* Flow control (flow.h) for a batch, which is one request against the trigger's concurrency and
 * n events against its rate: the in-flight limit now (fixed, or the adaptive one); whether a
 * batch of n events may go now (it takes n tokens from the trigger's and the sink's buckets,
 * else the rate timer pumps again when they are there); the adaptive limit's cut count, kept
 * by a batch when it is sent; and the sink's answer to a batch sent at epoch (before the slot
 * is given back). */
int td_dispatch_flow_limit(struct td_trigger_rt *trg);
bool td_dispatch_flow_admit(struct td_trigger_rt *trg, int n);
uint32_t td_dispatch_flow_epoch(const struct td_trigger_rt *trg);
void td_dispatch_flow_answer(struct td_trigger_rt *trg, const struct td_attempt *a, uint32_t epoch);

#endif
