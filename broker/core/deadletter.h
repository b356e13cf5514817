/* deadletter.h - the dead-letter form of an event: the original plus extension attributes
 * saying why, as Knative does (knativeerrordest, knativeerrorcode, knativeerrordata) and our
 * own (deadletterreason, deadletterattempts, deadlettertrigger, which redrive uses).
 * Threads: any.
 */
#ifndef TD_DEADLETTER_H
#define TD_DEADLETTER_H

#include <stdbool.h>
#include <stddef.h>

#include "dl_reasons.h" /* TD_DL_*: the reasons */

struct td_event;

/* True when redelivering an event that failed for reason cannot help (a final status, an
 * invalid event, the payload schema): a trigger without a dead-letter target then marks the
 * message failed for good (td_msg.final_why; the ingress answers 422). The others (retries
 * exhausted, max_deliveries, a failed reply) may succeed later. */
bool td_deadletter_permanent(const char *reason);

/* At most this much of the response body goes into knativeerrordata (before base64). */
#define TD_DL_DATA_MAX 1024

/* Returns a new event (one reference, the caller unrefs) or NULL on out of memory. body may
 * be NULL. */
struct td_event *td_deadletter_event(const struct td_event *ev, const char *trigger,
                                     const char *dest, int code, const unsigned char *body,
                                     size_t len, const char *reason, int attempts);

/* Removes the dead-letter attributes again (for redrive). */
void td_deadletter_strip(struct td_event *ev);

#endif
