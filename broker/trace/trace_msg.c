/* trace_msg.c - the destructor of struct td_trace_msg (see trace_msg.h). */
#include "trace_msg.h"

#include <stdlib.h>

void td_trace_msg_free(struct td_trace_msg *t)
{
    if (!t) {
        return;
    }
    free(t->tracestate);
    free(t);
}
