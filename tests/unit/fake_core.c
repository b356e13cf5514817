/* fake_core.c - the fake sink, fake source and minimal core of the dispatch tests (see
 * fake_core.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "cloudevent.h"
#include "fake_core.h"

static int64_t on_complete(struct td_loop *loop, void *arg)
{
    struct fake_pending *p = arg;
    struct fake_sink *fs = p->fs;

    for (struct fake_pending **pp = &fs->pending; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    struct td_attempt *a = p->a;
    struct fake_script res = p->res;
    int call = p->call;
    free(p); /* the loop allows freeing the timer's owner when returning NOMORE */
    fs->inflight--;
    if (call < FAKE_MAXCALLS) {
        fs->done_at[call] = td_now_ms();
    }
    if (fs->watch) {
        fs->completed_early |= fake_mailbox_nonempty(fs->watch);
    }
    char reason[64];
    snprintf(reason, sizeof(reason), "fake %d", res.status);
    td_attempt_done(a, res.r, res.status, res.retry_after_ms, reason, res.body,
                    res.body ? strlen(res.body) : 0);
    return TD_LOOP_NOMORE;
}

/* One request, of a single event (ev) or of a batch (ev NULL): answered from the script. */
static int fake_start(struct fake_sink *fs, const struct td_event *ev, struct td_attempt *a)
{
    struct td_sink *k = &fs->base;
    int call = fs->calls++;

    assert_non_null(a->done);
    if (call < FAKE_MAXCALLS) {
        fs->started_at[call] = td_now_ms();
        fs->seen[call] = ev ? td_event_clone(ev) : NULL;
    }
    if (fs->watch) {
        fs->completed_early |= fake_mailbox_nonempty(fs->watch);
    }
    if (fs->trg && fs->trg->running > fs->max_running) {
        fs->max_running = fs->trg->running;
    }
    if (call < fs->refuse_calls || fs->refuse_all) {
        if (call < FAKE_MAXCALLS) {
            fs->done_at[call] = td_now_ms();
        }
        snprintf(a->reason, sizeof(a->reason), "refused to start");
        return -1;
    }
    struct fake_pending *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->fs = fs;
    p->a = a;
    p->call = call;
    p->res = (struct fake_script){TD_RESULT_OK, 200, -1, NULL};
    if (fs->nscript > 0) {
        p->res = fs->script[(size_t)call < fs->nscript ? (size_t)call : fs->nscript - 1];
    }
    p->next = fs->pending;
    fs->pending = p;
    a->sink_state = p;
    if (++fs->inflight > fs->max_inflight) {
        fs->max_inflight = fs->inflight;
    }
    td_timer_init(&p->timer, on_complete, p);
    assert_int_equal(td_timer_start(k->loop, &p->timer, fs->delay_ms), 0);
    return 0;
}

static int fake_deliver(struct td_sink *k, const struct td_event *ev, struct td_attempt *a)
{
    assert_ptr_equal(a->ev, ev);
    return fake_start((struct fake_sink *)k, ev, a);
}

/* A batch (batch.c) is one call: its body is not looked at, only counted as one request. */
static int fake_deliver_batch(struct td_sink *k, const char *body, size_t len, struct td_attempt *a)
{
    assert_non_null(body);
    assert_true(len > 0);
    assert_null(a->ev);
    return fake_start((struct fake_sink *)k, NULL, a);
}

/* deliver_batch is only used by triggers that set delivery.batch. */
static const struct td_sink_ops fake_ops = {
    .name = "fake", .deliver = fake_deliver, .deliver_batch = fake_deliver_batch};

void fake_sink_init(struct fake_sink *fs, const char *name, struct td_loop *loop, int64_t delay_ms)
{
    memset(fs, 0, sizeof(*fs));
    fs->conf.name = (char *)name;
    fs->conf.kind = TD_SINK_HTTP;
    fs->base.ops = &fake_ops;
    fs->base.conf = &fs->conf;
    fs->base.name = name;
    fs->base.loop = loop;
    snprintf(fs->base.dest, sizeof(fs->base.dest), "http://fake/%s", name);
    fs->delay_ms = delay_ms;
}

void fake_sink_clear(struct fake_sink *fs)
{
    while (fs->pending) {
        struct fake_pending *p = fs->pending;
        fs->pending = p->next;
        td_timer_stop(fs->base.loop, &p->timer);
        free(p);
    }
    for (int c = 0; c < FAKE_MAXCALLS; c++) {
        td_event_unref(fs->seen[c]);
        fs->seen[c] = NULL;
    }
}

void fake_source_conf(struct td_conf_source *conf, const char *name)
{
    conf->name = (char *)name;
    conf->kind = TD_SOURCE_REDIS;
    conf->plugin = &td_source_ops_for(TD_SOURCE_REDIS)->conf; /* as the loader sets it */
    conf->max_inflight = 100;
}

struct td_source *fake_source_new(const struct td_conf_source *conf, struct td_core *core)
{
    /* built as the daemon builds a source's shared part (mailbox, its deferred wake-up) */
    char err[128];
    struct td_source *src = td_source_new_local(conf->name, err, sizeof(err));
    assert_non_null(src);
    src->conf = conf;
    src->emit = td_core_emit;
    src->core = core;
    return src;
}

bool fake_mailbox_nonempty(struct td_source *src)
{
    pthread_mutex_lock(&src->mu);
    bool nonempty = src->done != NULL;
    pthread_mutex_unlock(&src->mu);
    return nonempty;
}

struct td_event *fake_event(const char *id, const char *type)
{
    struct td_event *ev = td_event_new();

    assert_non_null(ev);
    assert_int_equal(td_event_set(ev, "specversion", "1.0"), 0);
    assert_int_equal(td_event_set(ev, "id", id), 0);
    assert_int_equal(td_event_set(ev, "source", "/test"), 0);
    assert_int_equal(td_event_set(ev, "type", type), 0);
    return ev;
}

struct td_msg *fake_msg(struct td_source *src, struct td_event *ev)
{
    struct td_msg *msg = calloc(1, sizeof(*msg));

    assert_non_null(msg);
    msg->src = src;
    msg->ev = ev;
    msg->received_ms = td_now_ms();
    atomic_fetch_add(&src->inflight, 1);
    return msg;
}

void fake_config(struct td_config *cfg, struct td_conf_source *src, struct td_conf_sink *sinks,
                 size_t nsinks, struct td_conf_trigger *triggers, size_t ntriggers)
{
    cfg->version = 1;
    cfg->sources = src;
    cfg->nsources = 1;
    cfg->sinks = sinks;
    cfg->nsinks = nsinks;
    cfg->triggers = triggers;
    cfg->ntriggers = ntriggers;
}

void fake_core_init(struct td_core *core, struct td_config *cfg, struct td_loop *loop,
                    struct td_source **sources, struct td_sink **sinks,
                    struct td_trigger_rt *triggers)
{
    core->cfg = cfg;
    core->loop = loop;
    core->sources = sources;
    core->sinks = sinks;
    core->triggers = triggers;
}

void fake_trigger_init(struct td_trigger_rt *trg, struct td_conf_trigger *conf,
                       struct td_core *core, struct td_sink *sink, struct td_sink *dead_letter)
{
    trg->conf = conf;
    trg->core = core;
    trg->sink = sink;
    trg->dead_letter = dead_letter;
}

bool fake_lib_mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    bool found = false;
    while (f && fgets(line, sizeof(line), f)) {
        found = found || strstr(line, name) != NULL;
    }
    if (f) {
        fclose(f);
    }
    return found;
}
