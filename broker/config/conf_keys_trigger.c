/* conf_keys_trigger.c - the keys of a trigger (triggers: [...]), its event: and delivery:
 * blocks: names, types, limits and defaults. filter: and filters: are built in conf_filter.c.
 *
 * Thread: any; the tables are read-only.
 */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

#include "cloudevent.h"

static const char *const backoff_names[] = {"exponential", "linear", NULL};
static const char *const ordering_names[] = {"unordered", "partition", "key", NULL};

/* ---- triggers (base: struct td_conf_trigger; delivery: struct td_conf_delivery) ---- */
#define TRG(f) offsetof(struct td_conf_trigger, f)
#define DLV(f) offsetof(struct td_conf_delivery, f)

static int check_delivery(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    struct td_conf_delivery *dlv = base;
    const struct td_ynode *at = td_conf_map_get(map, "backoff_max");
    const struct td_ynode *ord = td_conf_map_get(map, "ordering");

    if (ord) {
        dlv->ordering_pos = td_conf_pos(ld, ord); /* for checks that depend on the source */
    }

    if (dlv->backoff_max_ms < dlv->backoff_delay_ms) {
        ERR_AT(ld, at ? at : td_conf_map_get(map, "backoff_delay"),
               "'backoff_max' must not be less than 'backoff_delay'");
        return -1;
    }
    return 0;
}

/* delivery.batch: the keys here; what may batch (the sink's kind, reply:) is checked once every
 * sink is known (td_conf_check_batch, conf_batch.c). */
#define BAT(f) offsetof(struct td_conf_batch, f)
static const struct td_conf_key batch_keys[] = {
    INT_D("max_events", BAT(max_events), 1, 10000, "100"),
    {.name = "max_bytes", .type = TD_K_SIZE, .off = BAT(max_bytes), .dflt = "1MiB"},
    {.name = "max_wait", .type = TD_K_DUR, .off = BAT(max_wait_ms), .min = 1, .dflt = "50ms"},
};
static int check_batch(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    struct td_conf_batch *b = base;
    b->enabled = true; /* only a written batch: map is checked */
    b->pos = td_conf_pos(ld, map);
    if (b->max_bytes < 1024 || b->max_bytes > 64 * 1024 * 1024) {
        const struct td_ynode *at = td_conf_map_get(map, "max_bytes");
        ERR_AT(ld, at ? at : map, "'max_bytes' must be between 1KiB and 64MiB");
        return -1;
    }
    return 0;
}
static const struct td_conf_table batch_table = {TABLE("batch", batch_keys), .check = check_batch};

static const struct td_conf_key delivery_keys[] = {
    INT_D("retry", DLV(retry), 0, 1000000, "3"),
    ENUM_D("backoff", DLV(backoff), backoff_names, "exponential"),
    DUR_D("backoff_delay", DLV(backoff_delay_ms), "200ms"),
    DUR_D("backoff_max", DLV(backoff_max_ms), "30s"),
    DUR("timeout", DLV(timeout_ms)), /* no default: 0 is the sink's timeout */
    DUR_D("retry_after_max", DLV(retry_after_max_ms), "60s"),
    ENUM_D("ordering", DLV(ordering), ordering_names, "unordered"),
    /* 64 or {max: 64, adaptive: false}, and rate: {events, per, burst} (conf_keys_flow.c) */
    {.name = "concurrency", .type = TD_K_CUSTOM, .fn = td_conf_concurrency_key, .dflt = "64"},
    NESTED("rate", DLV(rate), &td_conf_rate_table),
    REF_STR("dead_letter", DLV(dead_letter), DLV(dead_letter_pos)),
    {.name = "retry_on",
     .type = TD_K_INTLIST,
     .off = DLV(retry_on),
     .off2 = DLV(nretry_on),
     .min = 100,
     .max = 599},
    NESTED("batch", DLV(batch), &batch_table),
};
static const struct td_conf_table delivery_table = {TABLE("delivery", delivery_keys),
                                                    .check = check_delivery};

static const struct td_conf_key event_keys[] = {
    STR("type", TRG(event_type)),
    STR("source", TRG(event_source)),
    {.name = "set", .type = TD_K_STRMAP, .off = TRG(event_set), .attrs = true},
};
/* set: overrides must leave a valid event, and may not forge its identity. */
static int check_event(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    const struct td_conf_trigger *trg = base;
    const struct td_ynode *set = td_conf_map_get(map, "set");
    int rc = 0;
    for (size_t i = 0; i < trg->event_set.n; i++) {
        const char *k = trg->event_set.items[i].key;
        const char *v = trg->event_set.items[i].value;
        const struct td_ynode *at = set ? td_conf_map_get(set, k) : map;
        if (strcmp(k, "data") == 0 || strcmp(k, "data_base64") == 0 ||
            strcmp(k, "specversion") == 0 || strcmp(k, "id") == 0) {
            ERR_AT(ld, at, "'%s' cannot be set: it is the event's own", k);
            rc = -1;
        } else if ((strcmp(k, "type") == 0 || strcmp(k, "source") == 0) && !*v) {
            ERR_AT(ld, at, "'%s' cannot be set to an empty string", k);
            rc = -1;
        } else if (strcmp(k, "time") == 0 && !td_ce_valid_time(v)) {
            ERR_AT(ld, at, "'time' must be an RFC 3339 timestamp");
            rc = -1;
        }
    }
    return rc;
}

static const struct td_conf_table event_table = {TABLE("event", event_keys), .check = check_event};

static const struct td_conf_key trigger_keys[] = {
    REQ_STR("name", TRG(name)),
    {.name = "source",
     .type = TD_K_STR,
     .off = TRG(source),
     .off2 = TRG(source_pos),
     .pos = true,
     .required = true},
    NESTED("event", 0, &event_table),
    CUSTOM("filter", td_conf_filter_key),
    CUSTOM("filters", td_conf_filters_key),
    {.name = "sink",
     .type = TD_K_STR,
     .off = TRG(sink),
     .off2 = TRG(sink_pos),
     .pos = true,
     .required = true},
    REF_STR("reply", TRG(reply), TRG(reply_pos)),
    STR("schema", TRG(schema)),
    NESTED("delivery", TRG(delivery), &delivery_table),
};
const struct td_conf_table td_conf_trigger_table = {TABLE("trigger", trigger_keys)};
