/* metrics.h - what the daemon counts, and how other threads get to see it.
 *
 * The counters live where they are written: per trigger in struct td_trigger_stats (stats.h;
 * loop thread only, plain integers), per source in the td_source atomics. The HTTP server runs on
 * a thread of its own, so it never reads the loop's structures directly: it asks the loop for
 * a snapshot (td_metrics_fresh posts a task and waits a bounded time), and renders /metrics,
 * /status and /readyz from that copy under the metrics mutex. A loop that does not answer in
 * time leaves the previous snapshot in place, marked stale. /healthz uses only the heartbeat,
 * an atomic the loop refreshes from a timer.
 *
 * Ownership: td_metrics_new() returns an object the caller frees with td_metrics_free(); the
 * render functions return malloc'd text the caller frees.
 */
#ifndef TD_METRICS_H
#define TD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

struct td_core;
struct td_metrics;

struct td_metrics *td_metrics_new(void);
void td_metrics_free(struct td_metrics *m); /* NULL is a no-op */

/* Loop: snapshots come from core (its loop is where td_metrics_fresh posts); NULL detaches,
 * after which td_metrics_fresh returns the last snapshot at once. */
void td_metrics_attach(struct td_metrics *m, struct td_core *core);
/* Loop: takes a snapshot of the attached core now. */
void td_metrics_refresh(struct td_metrics *m);
/* Any thread but the loop: asks the loop for a snapshot and waits up to timeout_ms. 0 when a
 * fresh one arrived, -1 when the previous one stays (loop busy, stuck or gone). */
int td_metrics_fresh(struct td_metrics *m, int timeout_ms);

/* Loop: the loop is alive now. */
void td_metrics_heartbeat(struct td_metrics *m);
/* Any: milliseconds since the last heartbeat (INT64_MAX before the first). */
int64_t td_metrics_heartbeat_age_ms(struct td_metrics *m);
/* Any: every trigger is loaded and running (false before start, while draining). */
void td_metrics_set_loaded(struct td_metrics *m, bool loaded);
/* Any: one reload happened, successfully or not. */
void td_metrics_count_reload(struct td_metrics *m, bool ok);
/* Any (the HTTP server's thread): a connection to daemon.http.listen was closed at accept
 * because its address had max_connections_per_ip open. */
void td_metrics_count_refused_per_ip(struct td_metrics *m);

/* Any (usually the HTTP thread), from the last snapshot: */
/* Prometheus text exposition format 0.0.4. NULL on out of memory. */
char *td_metrics_prometheus(struct td_metrics *m, size_t *len);
/* /status: {"ready":..,"draining":..,"triggers":[{name, in_flight, retrying, ...}],...}. */
char *td_metrics_status_json(struct td_metrics *m, size_t *len);
/* /readyz: sets *ready; the body is {"ready":bool,"reasons":[...]}. */
char *td_metrics_readiness(struct td_metrics *m, bool *ready, size_t *len);

#endif
