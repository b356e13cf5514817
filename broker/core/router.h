/* router.h - from a source message to the triggers that want it (see router.c).
 * Threads: loop.
 */
#ifndef TD_ROUTER_H
#define TD_ROUTER_H

struct td_core;
struct td_msg;
struct td_event;
struct td_trigger_rt;

/* Routes one message to every trigger of its source whose filters match (the message counts
 * one pending unit per matched trigger); a message no trigger wants is acknowledged at once. */
void td_router_route(struct td_core *core, struct td_msg *msg);
/* What happens to msg at one trigger that wants it, as ev (the trigger's view of the event;
 * dispatch takes its own reference, the caller keeps its own): dead-lettered when the source
 * gave up on it (msg->dl_reason) or its data fails the trigger's payload schema, else submitted
 * to the trigger's sink. msg->pending must already count this trigger. */
void td_router_deliver(struct td_trigger_rt *trg, struct td_msg *msg, struct td_event *ev);

#endif
