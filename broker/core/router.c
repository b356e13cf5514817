/* router.c - from a source message to the triggers that want it.
 *
 * Each trigger on the message's source gets its own view of the event (the trigger's event:
 * defaults when the message was wrapped; shared, not copied, when it has none), and its filter
 * decides on that view; its set: overrides are applied only to what it delivers (filters see
 * the event as it arrived, as in Knative); a trigger with a payload schema dead-letters an event
 * whose data fails it (reason "schema") instead of delivering it. The message counts one
 * pending unit per matched trigger plus one held by the router while it fans out, so it is
 * acknowledged exactly once, after the last trigger finished. A message no trigger wants is
 * acknowledged at once, counted, and (the first per source) logged at info.
 */
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevent.h"
#include "complete.h"
#include "core_state.h"
#include "deadletter.h"
#include "dispatch.h"
#include "filter.h"
#include "jsonschema.h"
#include "log.h"
#include "tracer.h"

/* Returns the event trg's filters see (one reference, the caller unrefs): the message's
 * event, with the trigger's event: {type, source} when the message was wrapped. NULL on out
 * of memory. Shared, not copied, when nothing changes. */
static struct td_event *event_for(const struct td_conf_trigger *conf, struct td_msg *msg)
{
    bool defaults = msg->wrapped && (conf->event_type || conf->event_source);
    if (!defaults) {
        return td_event_ref(msg->ev);
    }
    struct td_event *ev = td_event_clone(msg->ev);
    if (!ev) {
        return NULL;
    }
    int rc = 0;
    if (conf->event_type) {
        rc |= td_event_set(ev, "type", conf->event_type);
    }
    if (conf->event_source) {
        rc |= td_event_set(ev, "source", conf->event_source);
    }
    if (rc != 0) {
        td_event_unref(ev);
        return NULL;
    }
    return ev;
}

/* The event the trigger's function gets: ev with its event: {set} overrides, applied after
 * the filters matched (filters see the event as it arrived, as in Knative). Takes the
 * caller's reference to ev; returns one reference, or NULL on out of memory. */
static struct td_event *with_overrides(const struct td_conf_trigger *conf, struct td_event *ev)
{
    if (conf->event_set.n == 0) {
        return ev;
    }
    struct td_event *out = td_event_clone(ev);
    td_event_unref(ev);
    if (!out) {
        return NULL;
    }
    int rc = 0;
    for (size_t i = 0; i < conf->event_set.n; i++) {
        rc |= td_event_set(out, conf->event_set.items[i].key, conf->event_set.items[i].value);
    }
    if (rc != 0) {
        td_event_unref(out);
        return NULL;
    }
    return out;
}

/* An invalid event: filters cannot be trusted on it, so it goes to every trigger of its source
 * that dead-letters natively and to each distinct dead-letter target of the others, once per
 * target; dispatch decides and does the rest (td_dispatch_dead_letter). With none of those it
 * is released for redelivery. */
static void route_dead_letter(struct td_core *core, struct td_msg *msg, const char *reason)
{
    int sent = 0;
    for (size_t i = 0; i < core->cfg->ntriggers; i++) {
        struct td_trigger_rt *trg = &core->triggers[i];
        if (strcmp(trg->conf->source, msg->src->name) != 0) {
            continue;
        }
        bool native = td_dispatch_native_dl(trg);
        if (!native && !trg->dead_letter) {
            continue;
        }
        bool seen = false;
        for (size_t j = 0; !native && j < i; j++) {
            struct td_trigger_rt *other = &core->triggers[j];
            seen |= strcmp(other->conf->source, msg->src->name) == 0 &&
                    other->dead_letter == trg->dead_letter;
        }
        if (seen) {
            continue;
        }
        struct td_event *ev = event_for(trg->conf, msg);
        if (!ev) {
            msg->release = true;
            continue;
        }
        msg->pending++;
        td_dispatch_dead_letter(trg, msg, ev, reason);
        td_event_unref(ev);
        sent++;
    }
    if (sent == 0) {
        td_log_t(TD_LOG_ERROR, td_trace_log_ids(msg, NULL), NULL, msg->src->name, msg->coord,
                 "%s%s%s, and no trigger on this source has a dead_letter target; left "
                 "unacknowledged",
                 reason, msg->invalid ? ": " : "", msg->invalid ? msg->invalid : "");
        msg->release = true;
    }
}

/* The trigger's payload schema (schema: FILE), when it has one, accepts the event's data: JSON
 * data (no data counts as JSON null). Otherwise false with the first error in why. */
static bool payload_ok(const struct td_trigger_rt *trg, const struct td_event *ev, char *why,
                       size_t whylen)
{
    if (!trg->schema) {
        return true;
    }
    const char *ct = td_event_get(ev, "datacontenttype");
    if (ev->data && !td_ce_is_json_type(ct)) {
        snprintf(why, whylen, "the data is %s, not JSON", ct);
        return false;
    }
    return td_jsonschema_validate(trg->schema, (const char *)ev->data, ev->data ? ev->data_len : 0,
                                  why, whylen) == 0;
}

/* A message no trigger wanted: counted per source, and the first one per source logged at
 * info so that "nothing happened" always has an explanation (a source a reload recreates is a
 * new source and tells again); later ones only at debug, since a busy source whose triggers
 * filter most events out would otherwise flood the log. */
static void unmatched(struct td_core *core, struct td_msg *msg)
{
    core->unmatched++;
    atomic_fetch_add(&msg->src->unmatched, 1);
    const char *id = td_event_get(msg->ev, "id");
    const char *type = td_event_get(msg->ev, "type");
    bool first = !atomic_exchange(&msg->src->unmatched_told, true);
    td_log_t(first ? TD_LOG_INFO : TD_LOG_DEBUG, td_trace_log_ids(msg, NULL), NULL, msg->src->name,
             id, "event %s (type %s) matched no trigger on source '%s' and was acknowledged%s",
             id ? id : "(none)", type ? type : "(none)", msg->src->name,
             first ? "; further ones are counted in triggerd_events_unmatched_total and logged "
                     "at debug level"
                   : "");
}

void td_router_deliver(struct td_trigger_rt *trg, struct td_msg *msg, struct td_event *ev)
{
    char why[512];
    if (msg->dl_reason) {
        /* The source gave up on it (max_deliveries): each trigger that wants it dead-letters
         * it its own way, or keeps it unacknowledged. */
        td_dispatch_dead_letter(trg, msg, ev, msg->dl_reason);
    } else if (payload_ok(trg, ev, why, sizeof(why))) {
        td_dispatch_submit(trg, msg, ev);
    } else {
        td_dispatch_dead_letter_why(trg, msg, ev, TD_DL_SCHEMA, why);
    }
}

void td_router_route(struct td_core *core, struct td_msg *msg)
{
    core->msgs_in_flight++;
    msg->pending = 1; /* the router's own hold, dropped at the end */
    td_trace_msg_begin(core->tracer, msg);
    if (core->draining) {
        td_core_msg_done(core, msg, true);
        return;
    }
    if (msg->invalid) {
        /* Filters cannot be trusted on an event that is not one: every trigger on the
         * source gets to keep it. */
        route_dead_letter(core, msg, TD_DL_INVALID_EVENT);
        td_core_msg_done(core, msg, false);
        return;
    }
    int matched = 0;
    for (size_t i = 0; i < core->cfg->ntriggers; i++) {
        struct td_trigger_rt *trg = &core->triggers[i];
        if (strcmp(trg->conf->source, msg->src->name) != 0) {
            continue;
        }
        struct td_event *ev = event_for(trg->conf, msg);
        if (!ev) {
            msg->release = true;
            continue;
        }
        if (td_filter_match(trg->conf->filter, ev)) {
            ev = with_overrides(trg->conf, ev);
            if (!ev) {
                msg->release = true;
                continue;
            }
            msg->pending++;
            matched++;
            td_router_deliver(trg, msg, ev);
        }
        td_event_unref(ev);
    }
    if (matched == 0) {
        unmatched(core, msg);
    }
    td_core_msg_done(core, msg, false);
}
