/* conf_keys_flow.c - the flow-control keys: rate: {events, per, burst} (a trigger's delivery: and
 * a sink's) and delivery.concurrency, an integer or {max, adaptive}. Kept apart from
 * conf_keys_trigger.c so each part of the format stays a small table of its own.
 *
 * Thread: any; the tables are read-only.
 */
#include <stddef.h>
#include <stdint.h>

#include "config_internal.h"
#include "secret.h"

#define RATE(f) offsetof(struct td_conf_rate, f)
#define DLV(f)  offsetof(struct td_conf_delivery, f)

/* burst not written: one second's worth of events, at least 1 and at most events. Enough to
 * absorb a loop that wakes a little late (a bucket of 1 token would lose every late
 * millisecond, so 100/s would come out as 90/s on a busy machine), and never more than the
 * events of one period, so `{events: 600, per: 1m}` does not start with 600 at once. */
#define RATE_PER_MAX_MS (24LL * 3600 * 1000) /* a day: the bucket's arithmetic stays in range */
static int check_rate(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    struct td_conf_rate *r = base;
    if (r->per_ms > RATE_PER_MAX_MS) {
        ERR_AT(ld, td_conf_map_get(map, "per"), "'per' must be at most 24h");
        return -1;
    }
    if (r->burst == 0 && r->events > 0 && r->per_ms > 0) {
        int64_t per_second = (int64_t)r->events * 1000 / r->per_ms;
        r->burst = (int)(per_second < 1 ? 1 : per_second > r->events ? r->events : per_second);
    }
    return 0;
}

static const struct td_conf_key rate_keys[] = {
    {.name = "events",
     .type = TD_K_INT,
     .off = RATE(events),
     .min = 1,
     .max = 1000000,
     .required = true},
    {.name = "per", .type = TD_K_DUR, .off = RATE(per_ms), .min = 1, .dflt = "1s"},
    INT("burst", RATE(burst), 1, 1000000), /* no default here: check_rate computes it */
};
const struct td_conf_table td_conf_rate_table = {TABLE("rate", rate_keys), .check = check_rate};

static const struct td_conf_key concurrency_keys[] = {
    INT_D("max", DLV(concurrency), 1, 1000000, "64"),
    BOOL_D("adaptive", DLV(concurrency_adaptive), "false"),
};
static const struct td_conf_table concurrency_table = {TABLE("concurrency", concurrency_keys)};

/* concurrency: 64 (the first spelling, kept: {max: 64, adaptive: false}) or {max, adaptive}. */
int td_conf_concurrency_key(struct td_conf_loader *ld, const struct td_ynode *val, void *base)
{
    struct td_conf_delivery *dlv = base;
    struct td_conf_sval v = {0};
    char buf[128];
    long long n;
    int rc = -1;

    if (val->kind == TD_YMAP) {
        dlv->concurrency_adaptive = false; /* a default too, in case walked twice */
        td_conf_walk(ld, &concurrency_table, val, base);
        return 0;
    }
    if (val->kind != TD_YSCALAR || td_ynode_is_null(val)) {
        ERR_AT(ld, val, "'concurrency' must be an integer or a mapping {max, adaptive} (got %s)",
               td_conf_kind_name(val));
        return -1;
    }
    if (td_conf_scalar(ld, val, "concurrency", &v) < 0) {
        return -1;
    }
    if (td_conf_parse_int(&v, &n) < 0) {
        ERR_AT(ld, val, "'concurrency' must be an integer or a mapping {max, adaptive} (got %s)",
               td_conf_shown(&v, buf, sizeof(buf)));
    } else if (n < concurrency_keys[0].min) {
        ERR_AT(ld, val, "'concurrency' must be at least %lld", concurrency_keys[0].min);
    } else if (n > concurrency_keys[0].max) {
        ERR_AT(ld, val, "'concurrency' must be at most %lld", concurrency_keys[0].max);
    } else {
        dlv->concurrency = (int)n;
        dlv->concurrency_adaptive = false;
        rc = 0;
    }
    td_secret_free(v.s);
    return rc;
}
