/* core.h - the core: building it from a configuration, and its entry points for sources.
 *
 * struct td_core and struct td_trigger_rt are in core_state.h (data only); this header adds
 * what core.c does: build the sinks and triggers of a configuration in one place (the daemon
 * at start, every SIGHUP reload and `triggerd redrive` call td_core_build, so a trigger is the
 * same whichever path built it; redrive builds only the triggers it sends through and their
 * sinks), take batches from source threads (td_core_emit) and cancel what a source gave up
 * (td_core_cancel).
 * Threads: loop, except where a function says otherwise.
 */
#ifndef TD_CORE_H
#define TD_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core_state.h"
#include "dispatch.h"

/* Source threads call this (via td_source_emit) with a batch; it hops to the loop. Any thread. */
void td_core_emit(void *core, struct td_msg *batch);

/* Any thread (a source's): stop dispatching what src read under generation gen (msg->gen) and
 * has not started an attempt; those messages complete as released. Posted to the loop; a
 * source that gave the partition up discards the late completions. */
void td_core_cancel(void *core, struct td_source *src, uint64_t gen);

/* The sinks and triggers of one configuration: one generation. Owned by whoever holds it:
 * td_core_parts_free before td_core_install, the core (and then a reload's retired
 * generation) after. */
struct td_core_parts {
    struct td_sink **sinks;         /* cfg->nsinks */
    struct td_trigger_rt *triggers; /* cfg->ntriggers */
    uint64_t gen;                   /* stamped on every trigger */
};

/* Builds every sink of cfg (on core->loop and core->http, which must exist) and every trigger
 * (its sinks looked up by name, its payload schema loaded), stamped with a new generation.
 * want (the daemon, a reload: NULL) narrows it: cfg->ntriggers flags, and only the triggers
 * flagged are built, with only the sinks they deliver to (sink, dead_letter, reply); no other
 * sink is created, so none connects, opens a file or needs its credentials. A trigger left out
 * still has its conf, core and gen (it can be found by name) but no sinks
 * (td_core_trigger_built is false); td_core_build_trigger builds it later. Does not touch what
 * core runs now. 0, or -1 with "file:line:col: ..." in err; on failure parts holds what was
 * built (free it with td_core_parts_free). Loop (or before it runs). */
int td_core_build(struct td_core *core, const struct td_config *cfg, const bool *want,
                  struct td_core_parts *parts, char *err, size_t errlen);

/* Whether trg was built: false when td_core_build's want left it out or td_core_build_trigger
 * failed. A trigger that was not must not be given messages. */
static inline bool td_core_trigger_built(const struct td_trigger_rt *trg)
{
    return trg->sink != NULL;
}

/* Builds trg, one of the installed triggers (core->triggers) that td_core_build's want left
 * out, as td_core_build would have: the sinks it delivers to that core->sinks lacks, then the
 * trigger. Nothing when it is built already. 0, or -1 with "file:line:col: ..." in err (trg
 * stays unbuilt and the sinks built for it are freed again: no built trigger uses them, so no
 * attempt is in flight on them). Loop. */
int td_core_build_trigger(struct td_core *core, struct td_trigger_rt *trg, char *err,
                          size_t errlen);
/* Frees parts built from cfg that were never installed. */
void td_core_parts_free(struct td_core_parts *parts, const struct td_config *cfg);
/* Makes cfg and parts (taken) the core's current configuration, sinks and triggers. What was
 * current before is the caller's (reload.c retires it as a generation). */
void td_core_install(struct td_core *core, struct td_config *cfg, struct td_core_parts *parts);

/* Hands msg (the core owns it from here) to trg alone, without routing or filters: as the router
 * would after a match (dead letter for msg->dl_reason, the payload schema, then the sink).
 * `triggerd redrive` sends each entry through the trigger that dead-lettered it this way. */
void td_core_submit(struct td_core *core, struct td_trigger_rt *trg, struct td_msg *msg);

/* Frees what td_core_build and dispatch attached to trg (lanes, schema); not trg itself.
 * Idempotent. */
void td_core_trigger_fini(struct td_trigger_rt *trg);

#endif
