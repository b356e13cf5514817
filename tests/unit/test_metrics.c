/* test_metrics.c - unit tests for metrics.c and ce_batch.c: latency buckets and dead-letter
 * reasons, a snapshot of a hand-built core rendered as Prometheus text, /status JSON and
 * readiness, and the batched CloudEvents decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "ce_batch.h"
#include "cloudevent.h"
#include "deadletter.h"
#include "core.h"
#include "metrics.h"
#include "source.h"
#include "stats.h"

static void test_latency_buckets(void **state)
{
    struct td_trigger_stats st;
    memset(&st, 0, sizeof(st));
    td_stats_observe_latency(&st, 0);     /* le 1ms */
    td_stats_observe_latency(&st, 1);     /* le 1ms (bounds are inclusive) */
    td_stats_observe_latency(&st, 7);     /* le 10ms */
    td_stats_observe_latency(&st, 99999); /* +Inf */
    td_stats_observe_latency(&st, -5);    /* clock oddities count as 0 */
    assert_int_equal(st.latency_buckets[0], 3);
    assert_int_equal(st.latency_buckets[3], 1);
    assert_int_equal(st.latency_buckets[TD_LATENCY_BUCKETS], 1);
    assert_int_equal(st.latency_count, 5);
    assert_int_equal(st.latency_sum_ms, 1 + 7 + 99999);
}

static void test_dead_letter_reasons(void **state)
{
    struct td_trigger_stats st;
    memset(&st, 0, sizeof(st));
    td_stats_count_dead_letter(&st, "final_status");
    td_stats_count_dead_letter(&st, "max_deliveries");
    td_stats_count_dead_letter(&st, "something new");
    td_stats_count_dead_letter(&st, NULL);
    td_stats_count_dead_letter(&st, TD_DL_SCHEMA);
    td_stats_count_dead_letter(&st, TD_DL_REPLY_FAILED);
    td_stats_count_dead_letter(&st, TD_DL_INVALID_EVENT);
    assert_int_equal(st.dead_by_reason[0], 1);
    assert_int_equal(st.dead_by_reason[2], 1);
    assert_int_equal(st.dead_by_reason[TD_DL_REASONS - 1], 2);
    assert_string_equal(td_stats_reason_name(1), "retries_exhausted");
    /* Every reason the daemon writes has its own slot: none of them is counted as "other". */
    const char *const written[] = {TD_DL_FINAL_STATUS,   TD_DL_RETRIES_EXHAUSTED,
                                   TD_DL_MAX_DELIVERIES, TD_DL_INVALID_EVENT,
                                   TD_DL_SCHEMA,         TD_DL_REPLY_FAILED};
    for (size_t i = 0; i < sizeof(written) / sizeof(written[0]); i++) {
        bool found = false;
        for (int r = 0; r < TD_DL_REASONS - 1; r++) {
            found = found || strcmp(td_stats_reason_name(r), written[i]) == 0;
        }
        assert_true(found);
    }
    assert_string_equal(td_stats_reason_name(TD_DL_REASONS - 1), "other");
    assert_int_equal(st.dead_by_reason[4], 1); /* schema */
    assert_int_equal(st.dead_by_reason[5], 1); /* reply_failed */
}

/* A core with one source and one trigger, no loop: enough for a snapshot. */
struct fake {
    struct td_config cfg;
    struct td_conf_source src_conf;
    struct td_conf_trigger trg_conf;
    struct td_source src;
    struct td_source *srcs[1];
    struct td_trigger_rt trg;
    struct td_core core;
};

static void fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->src_conf.name = "in\"q";
    f->src_conf.kind = TD_SOURCE_REDIS;
    f->src_conf.plugin = &td_source_ops_for(TD_SOURCE_REDIS)->conf; /* as the loader sets it */
    f->trg_conf.name = "t1";
    f->trg_conf.source = "in\"q";
    f->trg_conf.sink = "fn";
    f->cfg.sources = &f->src_conf;
    f->cfg.nsources = 1;
    f->cfg.triggers = &f->trg_conf;
    f->cfg.ntriggers = 1;
    f->src.conf = &f->src_conf;
    f->src.name = f->src_conf.name;
    atomic_store(&f->src.connected, true);
    atomic_store(&f->src.received, 12);
    atomic_store(&f->src.acked, 10);
    atomic_store(&f->src.backlog, 2);
    pthread_mutex_init(&f->src.lag_mu, NULL);
    f->src.lag_total = -1; /* unknown, as td_source_new leaves it */
    f->srcs[0] = &f->src;
    f->trg.conf = &f->trg_conf;
    f->trg.core = &f->core;
    f->trg.stats.matched = 12;
    f->trg.stats.delivered = 9;
    f->trg.stats.dead_lettered = 1;
    f->trg.stats.dead_by_reason[0] = 1;
    f->trg.stats.dead_by_reason[4] = 3; /* schema */
    f->trg.stats.replies = 5;
    f->trg.stats.replies_dropped = 4;
    td_stats_observe_latency(&f->trg.stats, 3);
    f->core.cfg = &f->cfg;
    f->core.sources = f->srcs;
    f->core.triggers = &f->trg;
    f->core.msgs_in_flight = 2;
}

static void test_prometheus(void **state)
{
    struct fake f;
    fake_init(&f);
    struct td_metrics *m = td_metrics_new();
    assert_non_null(m);
    td_metrics_attach(m, &f.core);
    td_metrics_refresh(m);
    td_metrics_count_reload(m, true);
    td_metrics_count_reload(m, false);
    size_t len = 0;
    char *text = td_metrics_prometheus(m, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "triggerd_source_events_received_total{source=\"in\\\"q\"} 12\n"));
    assert_non_null(strstr(text, "triggerd_redis_pending_messages{source=\"in\\\"q\"} 2\n"));
    assert_non_null(strstr(
        text, "triggerd_trigger_deliveries_total{trigger=\"t1\",outcome=\"delivered\"} 9\n"));
    assert_non_null(strstr(
        text, "triggerd_trigger_dead_letters_total{trigger=\"t1\",reason=\"final_status\"} 1\n"));
    assert_non_null(
        strstr(text, "triggerd_trigger_dead_letters_total{trigger=\"t1\",reason=\"schema\"} 3\n"));
    assert_non_null(
        strstr(text, "triggerd_trigger_replies_total{trigger=\"t1\",outcome=\"dropped\"} 4\n"));
    assert_non_null(
        strstr(text, "triggerd_trigger_replies_total{trigger=\"t1\",outcome=\"delivered\"} 5\n"));
    assert_non_null(strstr(
        text, "triggerd_trigger_delivery_latency_seconds_bucket{trigger=\"t1\",le=\"0.005\"} 1\n"));
    assert_non_null(strstr(text, "triggerd_reloads_total{result=\"failure\"} 1\n"));
    assert_non_null(strstr(text, "triggerd_messages_in_flight 2\n"));
    assert_non_null(strstr(text, "# TYPE triggerd_trigger_delivery_latency_seconds histogram\n"));
    free(text);
    td_metrics_attach(m, NULL);
    assert_int_equal(td_metrics_fresh(m, 10), -1); /* detached: the old snapshot stays */
    td_metrics_free(m);
}

static void test_status_and_readiness(void **state)
{
    struct fake f;
    fake_init(&f);
    struct td_metrics *m = td_metrics_new();
    td_metrics_attach(m, &f.core);
    size_t len;
    bool ready = true;
    char *text = td_metrics_readiness(m, &ready, &len);
    assert_false(ready); /* no snapshot yet, not loaded */
    free(text);
    td_metrics_set_loaded(m, true);
    td_metrics_refresh(m);
    text = td_metrics_readiness(m, &ready, &len);
    assert_true(ready);
    free(text);
    atomic_store(&f.src.connected, false);
    td_metrics_refresh(m);
    text = td_metrics_readiness(m, &ready, &len);
    assert_false(ready);
    assert_non_null(strstr(text, "is not connected"));
    free(text);
    text = td_metrics_status_json(m, &len);
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "triggers"), 0);
    assert_string_equal(cJSON_GetObjectItem(t, "name")->valuestring, "t1");
    assert_int_equal(cJSON_GetObjectItem(t, "delivered")->valueint, 9);
    assert_int_equal(cJSON_GetObjectItem(t, "in_flight")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItem(t, "replies_dropped")->valueint, 4);
    cJSON *by_reason = cJSON_GetObjectItem(t, "dead_letters_by_reason");
    assert_int_equal(cJSON_GetObjectItem(by_reason, "schema")->valueint, 3);
    cJSON_Delete(root);
    free(text);
    td_metrics_attach(m, NULL);
    td_metrics_free(m);
}

static void test_batch(void **state)
{
    const char *ok = "[{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"/s\",\"type\":\"t\"},"
                     "{\"specversion\":\"1.0\",\"id\":\"b\",\"source\":\"/s\",\"type\":\"t\","
                     "\"data\":{\"k\":1}}]";
    struct td_event **evs = NULL;
    size_t n = 0;
    char err[200];
    assert_int_equal(td_ce_batch_decode(ok, strlen(ok), &evs, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_string_equal(td_event_get(evs[1], "id"), "b");
    td_ce_batch_free(evs, n);
    assert_int_equal(td_ce_batch_decode("[]", 2, &evs, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    td_ce_batch_free(evs, n);
    const char *bad = "[{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"/s\",\"type\":\"t\"},1]";
    assert_int_equal(td_ce_batch_decode(bad, strlen(bad), &evs, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "element 1"));
    assert_int_equal(td_ce_batch_decode("{}", 2, &evs, &n, err, sizeof(err)), -1);
    assert_int_equal(td_ce_batch_decode("[", 1, &evs, &n, err, sizeof(err)), -1);
    assert_int_equal(td_ce_batch_decode("[\"\xff\"]", 5, &evs, &n, err, sizeof(err)), -1);
}

static struct td_lag_sample lag_sample(const char *family, const char *stream, const char *group,
                                       long long value)
{
    struct td_lag_sample ls = {.family = family, .key = {"stream", "group"}, .value = value};
    ls.val[0] = strdup(stream);
    ls.val[1] = strdup(group);
    return ls;
}

/* Lag from td_source_set_lag: absent while unknown (HELP/TYPE still there), rendered with the
 * source label first and the values escaped, only under the source's own kind's families,
 * replaced by the next set and gone when cleared. */
static void test_lag(void **state)
{
    struct fake f;
    fake_init(&f);
    struct td_metrics *m = td_metrics_new();
    td_metrics_attach(m, &f.core);
    td_metrics_refresh(m);
    size_t len = 0;
    char *text = td_metrics_prometheus(m, &len);
    assert_non_null(strstr(text, "# TYPE triggerd_source_lag_messages gauge\n"));
    assert_non_null(strstr(text, "# TYPE triggerd_redis_stream_group_lag gauge\n"));
    assert_non_null(strstr(text, "# TYPE triggerd_kafka_consumergroup_lag gauge\n"));
    assert_non_null(strstr(text, "# TYPE triggerd_rabbitmq_queue_messages_ready gauge\n"));
    assert_null(strstr(text, "triggerd_source_lag_messages{"));
    assert_null(strstr(text, "triggerd_redis_stream_group_lag{"));
    free(text);

    struct td_lag_sample *ls = calloc(3, sizeof(*ls));
    assert_non_null(ls);
    ls[0] = lag_sample("triggerd_redis_stream_group_lag", "s\"x", "g\n", 40);
    ls[1] = lag_sample("triggerd_redis_stream_group_messages_pending", "s\"x", "g\n", 10);
    ls[2] = lag_sample("triggerd_kafka_consumergroup_lag", "t", "g", 99); /* not a redis family */
    td_source_set_lag(&f.src, ls, 3, 40);
    td_metrics_refresh(m);
    text = td_metrics_prometheus(m, &len);
    assert_non_null(strstr(text, "triggerd_source_lag_messages{source=\"in\\\"q\"} 40\n"));
    assert_non_null(strstr(text,
                           "triggerd_redis_stream_group_lag{source=\"in\\\"q\",stream=\"s\\\"x\","
                           "group=\"g\\n\"} 40\n"));
    assert_non_null(strstr(text, "triggerd_redis_stream_group_messages_pending{source=\"in\\\"q\","
                                 "stream=\"s\\\"x\",group=\"g\\n\"} 10\n"));
    assert_null(strstr(text, "triggerd_kafka_consumergroup_lag{"));
    free(text);

    ls = calloc(1, sizeof(*ls));
    assert_non_null(ls);
    ls[0] = lag_sample("triggerd_redis_stream_group_lag", "s", "g", 0);
    td_source_set_lag(&f.src, ls, 1, 0); /* replaces (and frees) the previous samples */
    td_metrics_refresh(m);
    text = td_metrics_prometheus(m, &len);
    assert_non_null(strstr(text, "triggerd_redis_stream_group_lag{source=\"in\\\"q\",stream=\"s\","
                                 "group=\"g\"} 0\n"));
    assert_null(strstr(text, "triggerd_redis_stream_group_messages_pending{"));
    free(text);

    td_source_set_lag(&f.src, NULL, 0, -1);
    td_metrics_refresh(m);
    text = td_metrics_prometheus(m, &len);
    assert_null(strstr(text, "triggerd_redis_stream_group_lag{"));
    assert_null(strstr(text, "triggerd_source_lag_messages{"));
    free(text);
    td_metrics_attach(m, NULL);
    td_metrics_free(m);
    pthread_mutex_destroy(&f.src.lag_mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latency_buckets), cmocka_unit_test(test_dead_letter_reasons),
        cmocka_unit_test(test_prometheus),      cmocka_unit_test(test_status_and_readiness),
        cmocka_unit_test(test_batch),           cmocka_unit_test(test_lag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
