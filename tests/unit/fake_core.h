/* fake_core.h - the scaffolding the dispatch tests share (test_dispatch.c, test_backoff_clock.c):
 * the real router and dispatch on a real loop, with fakes around them.
 *
 *  - a fake sink (a td_sink_ops of our own) whose deliver() records the attempt and completes
 *    it later, from a loop timer after delay_ms (real or injected clock), with a scripted
 *    outcome (OK / RETRY / FINAL, status, Retry-After, body), or refuses to start;
 *  - a fake source: a struct td_source with a mailbox (mutex, done list, eventfd) and no
 *    thread, which the test drains itself with td_source_take_done;
 *  - a minimal struct td_core: loop, configuration, sources, sinks and triggers wired as the
 *    daemon's builder wires them.
 *
 * Ownership: the test owns every struct here (usually in a static harness); fake_source_new's
 * source is freed with td_source_free; fake_sink_clear frees what a fake sink allocated.
 * Threads: the test thread, which is the loop thread.
 */
#ifndef TD_FAKE_CORE_H
#define TD_FAKE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "core.h"
#include "loop.h"
#include "sink.h"
#include "source.h"

#define FAKE_MAXCALLS 64 /* calls recorded per fake sink (more are counted, not recorded) */

/* The outcome of one call of a fake sink. */
struct fake_script {
    enum td_result r;
    int status;
    int64_t retry_after_ms;
    const char *body; /* the response body, or NULL */
};

struct fake_sink;

/* An attempt in flight, completed by its timer. */
struct fake_pending {
    struct td_timer timer;
    struct fake_sink *fs;
    struct td_attempt *a;
    struct fake_script res;
    int call;
    struct fake_pending *next;
};

struct fake_sink {
    struct td_sink base; /* first: the td_sink pointer is the fake_sink pointer */
    struct td_conf_sink conf;
    /* outcome of call i: script[min(i, nscript - 1)]; no script: OK 200 */
    const struct fake_script *script;
    size_t nscript;
    int refuse_calls; /* the first N deliver() calls fail to start (return -1) */
    bool refuse_all;  /* every deliver() call fails to start */
    int64_t delay_ms; /* from deliver() to td_attempt_done() */
    int calls;
    int inflight, max_inflight;
    int max_running;           /* the trigger's running counter seen in deliver() */
    struct td_trigger_rt *trg; /* whose running counter to watch, or NULL */
    struct td_source *watch;   /* whose mailbox to watch, or NULL */
    bool completed_early;      /* watch's mailbox was not empty when an attempt started/ended */
    int64_t started_at[FAKE_MAXCALLS];
    int64_t done_at[FAKE_MAXCALLS];
    struct td_event *seen[FAKE_MAXCALLS]; /* clones of what deliver() got */
    struct fake_pending *pending;
};

/* A fake sink named NAME (kind http, dest http://fake/NAME) on loop, answering after
 * delay_ms. Zeroes *fs first. NAME must outlive the sink. */
void fake_sink_init(struct fake_sink *fs, const char *name, struct td_loop *loop, int64_t delay_ms);
/* Stops and frees the attempts still pending (a failed test's leftovers) and drops the
 * recorded events. */
void fake_sink_clear(struct fake_sink *fs);

/* The source configuration the fakes use: NAME, kind redis, max_inflight 100. */
void fake_source_conf(struct td_conf_source *conf, const char *name);
/* A source with a mailbox and no thread, emitting into core (td_core_emit). */
struct td_source *fake_source_new(const struct td_conf_source *conf, struct td_core *core);
/* True when the source's mailbox holds completed messages. */
bool fake_mailbox_nonempty(struct td_source *src);
/* A valid event (specversion 1.0, ID, source /test, TYPE) with one reference. */
struct td_event *fake_event(const char *id, const char *type);
/* A message from src carrying ev (the message owns it), counted in src's inflight as
 * td_source_emit would. */
struct td_msg *fake_msg(struct td_source *src, struct td_event *ev);

/* A configuration of one source, nsinks sinks and ntriggers triggers (arrays the caller
 * owns). */
void fake_config(struct td_config *cfg, struct td_conf_source *src, struct td_conf_sink *sinks,
                 size_t nsinks, struct td_conf_trigger *triggers, size_t ntriggers);
/* The core fields the router and dispatch read, and one trigger wired to its sink and
 * dead-letter target, as the daemon's builder does. */
void fake_core_init(struct td_core *core, struct td_config *cfg, struct td_loop *loop,
                    struct td_source **sources, struct td_sink **sinks,
                    struct td_trigger_rt *triggers);
void fake_trigger_init(struct td_trigger_rt *trg, struct td_conf_trigger *conf,
                       struct td_core *core, struct td_sink *sink, struct td_sink *dead_letter);

/* Whether this process maps a file whose path contains name (/proc/self/maps): what a test
 * reads to prove a library was or was not loaded. */
bool fake_lib_mapped(const char *name);

#endif
