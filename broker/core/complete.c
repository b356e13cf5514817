/* complete.c - the end of a message's trip through the core (see complete.h). */
#include "complete.h"

#include "core_state.h"
#include "source.h"
#include "tracer.h"

void td_core_msg_done(struct td_core *core, struct td_msg *msg, bool release)
{
    if (release) {
        msg->release = true;
    }
    if (--msg->pending > 0) {
        return;
    }
    core->msgs_in_flight--;
    enum td_outcome outcome = msg->release  ? TD_OUTCOME_RELEASE
                              : msg->reject ? TD_OUTCOME_REJECT
                                            : TD_OUTCOME_ACK;
    td_trace_msg_end(msg, outcome);
    if (core->loop) {
        td_source_complete_batched(msg->src, msg, outcome, core->loop);
    } else {
        td_source_complete(msg->src, msg, outcome);
    }
}
