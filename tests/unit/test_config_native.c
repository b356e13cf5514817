/* test_config_native.c - unit tests of what the RabbitMQ work added to the loader and to
 * `check`: `dead_letter: native` (accepted on a rabbitmq source, refused elsewhere with the
 * position of the value), the source's `declare:` block, and the consumer_timeout guard
 * (td_check_worst_hold_ms / td_check_rabbitmq). Kept apart from test_config.c, which another
 * module owns. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "rabbitmq_source.h"

static char g_path[64];

static struct td_config *load(const char *text, struct td_errors *errs)
{
    snprintf(g_path, sizeof(g_path), "/tmp/td-native-XXXXXX");
    int fd = mkstemp(g_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct td_config *cfg = td_config_load(g_path, errs);
    unlink(g_path);
    return cfg;
}

static const char base[] =
    "version: 1\n"
    "sources:\n"
    "  q: {rabbitmq: {url: \"amqp://guest:guest@localhost:5672/%2f\", queue: jobs}}\n"
    "  r: {redis: {url: \"redis://localhost:6379/0\", stream: s}}\n"
    "sinks:\n"
    "  fn: {http: {url: \"http://localhost:1/\"}}\n"
    "triggers:\n";

static struct td_config *load_trigger(const char *trigger, struct td_errors *errs)
{
    char text[2048];
    snprintf(text, sizeof(text), "%s%s", base, trigger);
    return load(text, errs);
}

static void test_native_on_rabbitmq(void **state)
{
    struct td_errors errs = {0};
    struct td_config *cfg = load_trigger(
        "  - {name: t, source: q, sink: fn, delivery: {dead_letter: native}}\n", &errs);
    assert_non_null(cfg);
    assert_int_equal(errs.n, 0);
    assert_string_equal(cfg->triggers[0].delivery.dead_letter, "native");
    td_config_free(cfg);
}

static void test_native_on_redis_refused(void **state)
{
    struct td_errors errs = {0};
    struct td_config *cfg = load_trigger(
        "  - {name: t, source: r, sink: fn, delivery: {dead_letter: native}}\n", &errs);
    assert_null(cfg);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], ":8:60: dead_letter: native needs a rabbitmq source"));
    td_errors_clear(&errs);
}

static void test_unknown_dead_letter_still_refused(void **state)
{
    struct td_errors errs = {0};
    struct td_config *cfg = load_trigger(
        "  - {name: t, source: q, sink: fn, delivery: {dead_letter: nowhere}}\n", &errs);
    assert_null(cfg);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], "unknown sink 'nowhere'"));
    td_errors_clear(&errs);
}

static void test_declare(void **state)
{
    struct td_errors errs = {0};
    const char *text = "version: 1\n"
                       "sources:\n"
                       "  q: {rabbitmq: {url: \"amqp://h/%2f\", queue: jobs, declare: {\n"
                       "      arguments: {x-queue-type: quorum, x-dead-letter-exchange: dlx},\n"
                       "      exchange: ex, exchange_type: topic, bindings: [\"a.#\", b]}}}\n"
                       "  plain: {rabbitmq: {url: \"amqp://h/%2f\", queue: p}}\n"
                       "sinks: {fn: {http: {url: \"http://localhost:1/\"}}}\n"
                       "triggers: [{name: t, source: q, sink: fn}]\n";
    struct td_config *cfg = load(text, &errs);
    assert_non_null(cfg);
    const struct td_conf_rabbitmq_source *r = cfg->sources[0].settings;
    assert_true(r->declare);
    assert_true(r->declare_durable);
    assert_int_equal(r->declare_arguments.n, 2);
    assert_string_equal(r->declare_arguments.items[0].key, "x-queue-type");
    assert_string_equal(r->declare_arguments.items[0].value, "quorum");
    assert_string_equal(r->declare_exchange, "ex");
    assert_string_equal(r->declare_exchange_type, "topic");
    assert_int_equal(r->ndeclare_bindings, 2);
    assert_string_equal(r->declare_bindings[0], "a.#");
    assert_false(TD_SETTINGS(&cfg->sources[1], struct td_conf_rabbitmq_source)->declare);
    td_config_free(cfg);
}

static void test_declare_errors(void **state)
{
    struct td_errors errs = {0};
    const char *text = "version: 1\n"
                       "sources:\n"
                       "  q: {rabbitmq: {url: \"amqp://h/%2f\", queue: jobs, declare: {\n"
                       "      bindings: [x], exchange_type: sideways, durable: maybe}}}\n"
                       "sinks: {fn: {http: {url: \"http://localhost:1/\"}}}\n"
                       "triggers: [{name: t, source: q, sink: fn}]\n";
    struct td_config *cfg = load(text, &errs);
    assert_null(cfg);
    bool bindings = false, type = false, durable = false;
    for (size_t i = 0; i < errs.n; i++) {
        bindings |= strstr(errs.msgs[i], "'bindings' need an 'exchange'") != NULL;
        type |= strstr(errs.msgs[i], "sideways") != NULL;
        durable |= strstr(errs.msgs[i], "durable") != NULL;
    }
    assert_true(bindings);
    assert_true(type);
    assert_true(durable);
    td_errors_clear(&errs);
}

static void test_consumer_timeout_guard(void **state)
{
    struct td_errors errs = {0};
    /* 4 attempts of 10 s + 3 waits of max(ceiling, retry_after_max 60 s): 220 s: fine. */
    struct td_config *cfg = load_trigger("  - {name: t, source: q, sink: fn, delivery: {retry: 3, "
                                         "timeout: 10s, retry_after_max: 60s}}\n",
                                         &errs);
    assert_non_null(cfg);
    assert_int_equal(td_check_worst_hold_ms(&cfg->triggers[0], &cfg->sinks[0]), 220000);
    td_check_rabbitmq(cfg, &errs);
    assert_int_equal(errs.n, 0);
    td_config_free(cfg);

    /* 31 attempts of 20 s + 30 waits of 60 s = 2420 s > 1800 s: refused. */
    cfg = load_trigger("  - {name: slow, source: q, sink: fn, delivery: {retry: 30, timeout: 20s, "
                       "backoff_max: 30s, retry_after_max: 60s}}\n",
                       &errs);
    assert_non_null(cfg);
    assert_true(td_check_worst_hold_ms(&cfg->triggers[0], &cfg->sinks[0]) >
                TD_RABBITMQ_CONSUMER_TIMEOUT_MS);
    td_check_rabbitmq(cfg, &errs);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], "trigger 'slow'"));
    assert_non_null(strstr(errs.msgs[0], "consumer_timeout"));
    td_errors_clear(&errs);
    td_config_free(cfg);

    /* The same policy on a Redis source is not RabbitMQ's business. */
    cfg = load_trigger("  - {name: slow, source: r, sink: fn, delivery: {retry: 30, timeout: 20s, "
                       "backoff_max: 30s, retry_after_max: 60s}}\n",
                       &errs);
    assert_non_null(cfg);
    td_check_rabbitmq(cfg, &errs);
    assert_int_equal(errs.n, 0);
    td_config_free(cfg);
}

/* ordering: partition | key on a RabbitMQ source is refused at the ordering value's position;
 * on a Redis source it is not this check's business. */
static void test_ordering_refused(void **state)
{
    struct td_errors errs = {0};
    struct td_config *cfg =
        load_trigger("  - {name: t, source: q, sink: fn, delivery: {ordering: key}}\n", &errs);
    assert_non_null(cfg);
    td_check_rabbitmq(cfg, &errs);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], ":8:57: trigger 't': ordering: key is not supported"));
    td_errors_clear(&errs);
    td_config_free(cfg);

    cfg = load_trigger("  - {name: t, source: q, sink: fn, delivery: {ordering: unordered}}\n",
                       &errs);
    assert_non_null(cfg);
    td_check_rabbitmq(cfg, &errs);
    assert_int_equal(errs.n, 0);
    td_config_free(cfg);
}

/* max_deliveries and consumer_timeout on the source: defaults, values, and the guard using the
 * configured consumer_timeout (0: off). */
static void test_source_limits(void **state)
{
    struct td_errors errs = {0};
    struct td_config *cfg = load_trigger("  - {name: t, source: q, sink: fn}\n", &errs);
    assert_non_null(cfg);
    assert_int_equal(TD_SETTINGS(&cfg->sources[0], struct td_conf_rabbitmq_source)->max_deliveries,
                     10);
    assert_int_equal(
        TD_SETTINGS(&cfg->sources[0], struct td_conf_rabbitmq_source)->consumer_timeout_ms,
        30 * 60 * 1000);
    td_config_free(cfg);

    const char *text =
        "version: 1\n"
        "sources:\n"
        "  q: {rabbitmq: {url: \"amqp://h/%2f\", queue: jobs, max_deliveries: 0,\n"
        "                 consumer_timeout: 2m}}\n"
        "  o: {rabbitmq: {url: \"amqp://h/%2f\", queue: jobs, consumer_timeout: 0}}\n"
        "sinks: {fn: {http: {url: \"http://localhost:1/\"}}}\n"
        "triggers:\n"
        "  - {name: a, source: q, sink: fn, delivery: {retry: 3, timeout: 10s, "
        "retry_after_max: 60s}}\n"
        "  - {name: b, source: o, sink: fn, delivery: {retry: 3, timeout: 10s, "
        "retry_after_max: 60s}}\n";
    cfg = load(text, &errs);
    assert_non_null(cfg);
    assert_int_equal(errs.n, 0);
    assert_int_equal(TD_SETTINGS(&cfg->sources[0], struct td_conf_rabbitmq_source)->max_deliveries,
                     0);
    assert_int_equal(
        TD_SETTINGS(&cfg->sources[0], struct td_conf_rabbitmq_source)->consumer_timeout_ms, 120000);
    assert_int_equal(
        TD_SETTINGS(&cfg->sources[1], struct td_conf_rabbitmq_source)->consumer_timeout_ms, 0);
    td_check_rabbitmq(cfg, &errs); /* 220 s > 120 s for a; b's broker has no timeout */
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], "trigger 'a'"));
    assert_non_null(strstr(errs.msgs[0], "consumer_timeout of 120 s"));
    td_errors_clear(&errs);
    td_config_free(cfg);

    cfg = load("version: 1\n"
               "sources: {q: {rabbitmq: {url: \"amqp://h/%2f\", queue: j, max_deliveries: -1}}}\n"
               "sinks: {fn: {http: {url: \"http://localhost:1/\"}}}\n"
               "triggers: [{name: t, source: q, sink: fn}]\n",
               &errs);
    assert_null(cfg);
    assert_true(errs.n >= 1);
    assert_non_null(strstr(errs.msgs[0], "max_deliveries"));
    td_errors_clear(&errs);
}

/* id_from on a RabbitMQ source: delivery by default, body_hash on request, anything else an
 * error at the value's position. */
static void test_id_from(void **state)
{
    struct td_errors errs = {0};
    struct td_config *cfg = load_trigger("  - {name: t, source: q, sink: fn}\n", &errs);
    assert_non_null(cfg);
    assert_int_equal(TD_SETTINGS(&cfg->sources[0], struct td_conf_rabbitmq_source)->id_from,
                     TD_ID_FROM_DELIVERY);
    td_config_free(cfg);
    cfg = load("version: 1\n"
               "sources: {q: {rabbitmq: {url: \"amqp://h/%2f\", queue: j, id_from: body_hash}}}\n"
               "sinks: {fn: {http: {url: \"http://localhost:1/\"}}}\n"
               "triggers: [{name: t, source: q, sink: fn}]\n",
               &errs);
    assert_non_null(cfg);
    assert_int_equal(errs.n, 0);
    assert_int_equal(TD_SETTINGS(&cfg->sources[0], struct td_conf_rabbitmq_source)->id_from,
                     TD_ID_FROM_BODY_HASH);
    td_config_free(cfg);
    cfg = load("version: 1\n"
               "sources: {q: {rabbitmq: {url: \"amqp://h/%2f\", queue: j, id_from: random}}}\n"
               "sinks: {fn: {http: {url: \"http://localhost:1/\"}}}\n"
               "triggers: [{name: t, source: q, sink: fn}]\n",
               &errs);
    assert_null(cfg);
    assert_true(errs.n >= 1);
    assert_non_null(strstr(errs.msgs[0], ":2:"));
    assert_non_null(strstr(errs.msgs[0], "'id_from' must be one of body_hash, delivery"));
    td_errors_clear(&errs);
}

/* The prefetch window behind concurrency: a warning, not an error. */
static void test_queueing_warning(void **state)
{
    struct td_errors errs = {0}, warns = {0};
    /* 220 s per delivery; prefetch 100 (default) over concurrency 4: 25 rounds = 5500 s. */
    struct td_config *cfg =
        load_trigger("  - {name: slow, source: q, sink: fn, delivery: {retry: 3, "
                     "timeout: 10s, retry_after_max: 60s, concurrency: 4}}\n",
                     &errs);
    assert_non_null(cfg);
    assert_int_equal(td_rabbitmq_window(&cfg->sources[0]), 100);
    assert_int_equal(td_check_queued_hold_ms(&cfg->sources[0], &cfg->triggers[0], &cfg->sinks[0]),
                     25 * 220000 + TD_RABBITMQ_REQUEUE_DELAY_MAX_MS);
    td_check_rabbitmq(cfg, &errs);
    assert_int_equal(errs.n, 0);
    td_check_rabbitmq_warnings(cfg, &warns);
    assert_int_equal(warns.n, 1);
    assert_non_null(strstr(warns.msgs[0], "warning: trigger 'slow'"));
    assert_non_null(strstr(warns.msgs[0], "prefetch"));
    td_errors_clear(&warns);
    td_config_free(cfg);

    /* concurrency 64 (default): 2 rounds, 470 s: no warning. */
    cfg = load_trigger("  - {name: ok, source: q, sink: fn, delivery: {retry: 3, timeout: 10s, "
                       "retry_after_max: 60s}}\n",
                       &errs);
    assert_non_null(cfg);
    td_check_rabbitmq_warnings(cfg, &warns);
    assert_int_equal(warns.n, 0);
    td_config_free(cfg);
}

static void test_bad_amqp_url(void **state)
{
    struct td_errors errs = {0};
    const char *text = "version: 1\n"
                       "sources: {q: {rabbitmq: {url: \"http://h/\", queue: jobs}}}\n"
                       "sinks: {d: {rabbitmq: {url: \"amqp://h:99999/%2f\", exchange: x}},\n"
                       "        fn: {http: {url: \"http://localhost:1/\"}}}\n"
                       "triggers: [{name: t, source: q, sink: fn, delivery: {dead_letter: d}}]\n";
    struct td_config *cfg = load(text, &errs);
    assert_non_null(cfg);
    td_check_rabbitmq(cfg, &errs);
    assert_int_equal(errs.n, 2);
    assert_non_null(strstr(errs.msgs[0], "amqp:// or amqps://"));
    assert_non_null(strstr(errs.msgs[1], "bad port"));
    td_errors_clear(&errs);
    td_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_native_on_rabbitmq),
        cmocka_unit_test(test_native_on_redis_refused),
        cmocka_unit_test(test_unknown_dead_letter_still_refused),
        cmocka_unit_test(test_declare),
        cmocka_unit_test(test_declare_errors),
        cmocka_unit_test(test_consumer_timeout_guard),
        cmocka_unit_test(test_bad_amqp_url),
        cmocka_unit_test(test_ordering_refused),
        cmocka_unit_test(test_id_from),
        cmocka_unit_test(test_source_limits),
        cmocka_unit_test(test_queueing_warning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
