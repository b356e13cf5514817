/* dispatch.h - owns the attempts of every delivery: a per-trigger in-flight limit, the
 * attempt timeout, retries on loop timers with backoff, and dead-lettering. A delivery ends
 * in exactly one way: delivered, dead-lettered, or released (left unacknowledged for
 * redelivery: no dead-letter target, or shutdown). Only then does its message count down.
 * Threads: loop only.
 */
#ifndef TD_DISPATCH_H
#define TD_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"
#include "sink.h"

struct td_core;
struct td_msg;
struct td_event;
struct td_delivery;

struct td_trigger_stats {
    uint64_t matched;
    uint64_t delivered;
    uint64_t attempts;
    uint64_t retries;
    uint64_t dead_lettered;
    uint64_t released;
};

struct td_trigger_rt {
    const struct td_conf_trigger *conf;
    struct td_core *core;
    struct td_sink *sink;
    struct td_sink *dead_letter;               /* NULL: failures are released for redelivery */
    int running;                               /* attempts on the sink now */
    struct td_delivery *wait_head, *wait_tail; /* waiting for a slot */
    struct td_trigger_stats stats;
};

/* Starts delivering ev (takes a reference) for msg to trg's sink. */
void td_dispatch_submit(struct td_trigger_rt *trg, struct td_msg *msg, struct td_event *ev);
/* Sends ev (takes a reference) for msg straight to trg's dead-letter target with reason. */
void td_dispatch_dead_letter(struct td_trigger_rt *trg, struct td_msg *msg, struct td_event *ev,
                             const char *reason);
/* Shutdown: releases every delivery that has not started an attempt yet. */
void td_dispatch_release_waiting(struct td_trigger_rt *trg);
/* Teardown (loop stopped): frees every delivery of the core without completing it. */
void td_dispatch_abandon_all(struct td_core *core);

#endif
