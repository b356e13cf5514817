/* complete.h - the end of a message's trip through the core. A message counts one pending unit
 * per trigger working on it (plus the router's hold while it fans out); when the last one is
 * done the message goes back to its source to be acknowledged, rejected or released. Below
 * both the router and dispatch, so neither calls up into the other to finish a message.
 * Threads: loop.
 */
#ifndef TD_COMPLETE_H
#define TD_COMPLETE_H

#include <stdbool.h>

struct td_core;
struct td_msg;

/* One unit of msg is done (release: it must not be acknowledged). When it was the last, the
 * message leaves the core: td_source_complete_batched (the source thread is woken once at the
 * end of the loop iteration) with RELEASE if any unit released it, else REJECT if a trigger
 * dead-lettered it natively, else ACK. */
void td_core_msg_done(struct td_core *core, struct td_msg *msg, bool release);

#endif
