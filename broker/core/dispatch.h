/* dispatch.h - owns the attempts of every delivery: a per-trigger in-flight limit, the
 * attempt timeout, retries on loop timers with backoff, and dead-lettering. A delivery ends
 * in exactly one way: delivered, dead-lettered, or released (left unacknowledged for
 * redelivery: no dead-letter target, or shutdown). Only then does its message count down.
 * Threads: loop only.
 */
#ifndef TD_DISPATCH_H
#define TD_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core_state.h"

struct td_msg;
struct td_source;
struct td_event;

/* What a trigger is doing right now (td_dispatch_census). */
struct td_trigger_census {
    int waiting;           /* matched, waiting for a concurrency slot */
    int running;           /* an attempt on the sink now */
    int retrying;          /* waiting for a retry timer */
    int dead_lettering;    /* on its way to the dead-letter target */
    int concurrency_limit; /* the in-flight limit now (delivery.concurrency; lower when adaptive) */
};

/* `dead_letter: native` (RabbitMQ): the broker's own dead-lettering, no sink. */
#define TD_DEAD_LETTER_NATIVE "native"
/* True when trg dead-letters natively: the message is finished with TD_OUTCOME_REJECT. */
bool td_dispatch_native_dl(const struct td_trigger_rt *trg);
/* Starts delivering ev (takes a reference) for msg to trg's sink. */
void td_dispatch_submit(struct td_trigger_rt *trg, struct td_msg *msg, struct td_event *ev);
/* Dead-letters ev (takes a reference) for msg at trg with reason, without an attempt on the
 * sink: natively, to trg's dead-letter target, or (no target) released for redelivery; the one
 * decision is dead_letter() in dispatch.c. msg->pending must count this trigger. */
void td_dispatch_dead_letter(struct td_trigger_rt *trg, struct td_msg *msg, struct td_event *ev,
                             const char *reason);
/* The same with why (may be NULL) as the explanation in knativeerrordata instead of the
 * message's own invalid reason: used when a trigger rejects one event (schema). */
void td_dispatch_dead_letter_why(struct td_trigger_rt *trg, struct td_msg *msg, struct td_event *ev,
                                 const char *reason, const char *why);
/* Shutdown: releases every delivery that has not started an attempt yet. */
void td_dispatch_release_waiting(struct td_trigger_rt *trg);
/* Finishes as released every delivery of a message of src read under generation gen (msg->gen)
 * that has not started an attempt: waiting for a slot, queued behind its lane, or waiting for a
 * retry timer. Running attempts (and dead-letter or reply stages) go on. Returns how many. */
size_t td_dispatch_cancel(struct td_core *core, const struct td_source *src, uint64_t gen);
/* Counts every live delivery of the core's current triggers (core->gen; out: core->cfg->ntriggers
 * entries; retired generations are not counted) and the
 * oldest received_ms of their messages by source (oldest: core->cfg->nsources entries, 0 when
 * the source has nothing in flight). Either may be NULL. Loop. */
void td_dispatch_census(struct td_core *core, struct td_trigger_census *out, int64_t *oldest);
/* Reload: how many live deliveries belong to triggers of generation gen (a retired one). */
size_t td_dispatch_busy(struct td_core *core, uint64_t gen);
/* Reload: frees what dispatch keeps per trigger, once td_dispatch_busy says none is left. */
void td_dispatch_trigger_free(struct td_trigger_rt *trg);
/* Teardown (loop stopped): frees every delivery of the core without completing it. */
void td_dispatch_abandon_all(struct td_core *core);

#endif
