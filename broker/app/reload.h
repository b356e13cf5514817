/* reload.h - hot reload on SIGHUP.
 *
 * The new files are loaded and every plugin they need is built before anything changes; if
 * any of that fails, the running configuration stays and the failure is logged and counted.
 * Otherwise the core switches over on the loop thread in one step:
 *  - a source whose settings did not change keeps running (the same object, no pause);
 *  - a changed source stops reading, finishes (or leaves unacknowledged) what it has in flight,
 *    and only then is replaced by the new one, so the two never read concurrently;
 *  - a removed source is drained the same way and stops;
 *  - triggers and sinks are rebuilt: new messages go to the new ones at once, while deliveries
 *    in progress finish on the old ones (a retired generation, freed when its last delivery
 *    ended; its counters are folded into the new triggers of the same name).
 * Changing daemon.http or an HTTP ingress source needs a restart (the server's routes are
 * fixed while it runs); such a reload is refused. An old configuration is freed once nothing
 * points into it (no retired generation, no source built from it); a source that carried over
 * keeps the one it was built from. A reload while an earlier one still drains is safe: a
 * replacement that never started is dropped for the newer one.
 * Threads: loop only.
 */
#ifndef TD_RELOAD_H
#define TD_RELOAD_H

#include <stdbool.h>
#include <stdint.h>

struct td_core;
struct td_reload;

struct td_reload *td_reload_new(struct td_core *core);
/* Reloads from path. true when the new configuration is running. */
bool td_reload_run(struct td_reload *rl, const char *path);
/* Shutdown began: releases the retired triggers' waiting deliveries. */
void td_reload_drain(struct td_reload *rl);
/* Teardown, with the current sources: quiesce the sources still draining and tell them all to
 * stop by deadline_ms (td_source_stop_by), then join them. */
void td_reload_stop_sources(struct td_reload *rl, int64_t deadline_ms);
/* Teardown, before the current sinks are freed: tell the retired generations' sinks to finish
 * (td_sink_stop), so their closes overlap with the current sinks'. */
void td_reload_stop_sinks(struct td_reload *rl);
/* Teardown, with the current sinks: free the retired generations' sinks. */
void td_reload_free_sinks(struct td_reload *rl);
/* Teardown, after td_dispatch_abandon_all and before the loop is freed: frees everything
 * else, old configurations included. NULL is a no-op. */
void td_reload_free(struct td_reload *rl);

#endif
