/* filter_bench.c - filter evaluations per second (issue 6): a typical 5-clause Knative-style
 * filter (exact, prefix, suffix, any, not) and a CESQL expression of similar weight, on one
 * realistic event, beside the cost of the empty filter (the loop's own overhead) measured in
 * the same run. Prints figures only; nothing is asserted.
 *
 * Build and run: cmake --build build --target bench_filter && build/bench_filter [seconds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cesql.h"
#include "cloudevent.h"
#include "filter.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Evaluations per second of f on ev for about secs seconds; *hits counts matches. */
static double rate(const struct td_filter *f, const struct td_event *ev, double secs, long *hits)
{
    long n = 0;
    double t0 = now_s(), t = t0;
    *hits = 0;
    while (t - t0 < secs) {
        for (int i = 0; i < 10000; i++) {
            *hits += td_filter_match(f, ev);
        }
        n += 10000;
        t = now_s();
    }
    return (double)n / (t - t0);
}

static struct td_filter *leaf(enum td_filter_kind kind, const char *k, const char *v)
{
    struct td_filter *f = td_filter_new(kind);
    if (!f || td_filter_add_attr(f, k, v) < 0) {
        td_filter_free(f);
        return NULL;
    }
    return f;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    char err[256];
    int rc = 1;
    struct td_event *ev = td_event_new();
    struct td_filter *knative = td_filter_new(TD_FILTER_ALL);
    struct td_filter *any = td_filter_new(TD_FILTER_ANY);
    struct td_filter *neg = td_filter_new(TD_FILTER_NOT);
    struct td_filter *cesql = td_filter_new_cesql(
        "type = 'com.example.order.created' AND source LIKE '/orders/%' AND subject LIKE "
        "'%.png' AND (region = 'eu' OR region = 'us') AND NOT (INT(priority) > 9)",
        err, sizeof(err));
    if (!ev || !knative || !any || !neg || !cesql) {
        fprintf(stderr, "setup failed: %s\n", cesql ? "out of memory" : err);
        goto fail;
    }
    td_event_set(ev, "specversion", "1.0");
    td_event_set(ev, "id", "2f0a5c1e-8d3b-4a57-9c1f-6b2e0d4a7c91");
    td_event_set(ev, "source", "/orders/eu/shop-17");
    td_event_set(ev, "type", "com.example.order.created");
    td_event_set(ev, "subject", "images/products/1234.png");
    td_event_set(ev, "time", "2026-11-26T07:00:00.123Z");
    td_event_set(ev, "datacontenttype", "application/json");
    td_event_set(ev, "region", "eu");
    td_event_set(ev, "priority", "5");
    td_event_set(ev, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    /* the same five conditions, as Knative dialects */
    td_filter_add_child(knative, leaf(TD_FILTER_EXACT, "type", "com.example.order.created"));
    td_filter_add_child(knative, leaf(TD_FILTER_PREFIX, "source", "/orders/"));
    td_filter_add_child(knative, leaf(TD_FILTER_SUFFIX, "subject", ".png"));
    td_filter_add_child(any, leaf(TD_FILTER_EXACT, "region", "eu"));
    td_filter_add_child(any, leaf(TD_FILTER_EXACT, "region", "us"));
    td_filter_add_child(knative, any);
    any = NULL;
    td_filter_add_child(neg, leaf(TD_FILTER_EXACT, "priority", "10"));
    td_filter_add_child(knative, neg);
    neg = NULL;

    long hits;
    double base = rate(NULL, ev, secs, &hits);
    double k = rate(knative, ev, secs, &hits);
    long khits = hits;
    double c = rate(cesql, ev, secs, &hits);
    printf("filter evaluations per second (one core, %.1fs each, event with 10 attributes)\n",
           secs);
    printf("  no filter (loop ceiling)      %12.0f /s\n", base);
    printf("  5-clause Knative filter       %12.0f /s  (%.0f ns each, matched %s)\n", k, 1e9 / k,
           khits ? "yes" : "no");
    printf("  5-clause CESQL expression     %12.0f /s  (%.0f ns each, matched %s)\n", c, 1e9 / c,
           hits ? "yes" : "no");
    rc = 0;
fail:
    td_filter_free(knative);
    td_filter_free(any);
    td_filter_free(neg);
    td_filter_free(cesql);
    td_event_unref(ev);
    return rc;
}
