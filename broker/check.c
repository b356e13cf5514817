/* check.c - `triggerd check` (see check.h). Besides what the loader checks, it reports
 * settings the daemon could not start with: a bad Redis URL is an error; a source or sink
 * kind that the format defines but this build cannot run yet is a warning (the file is
 * valid; `run` refuses it with the same message). */
#include "check.h"

#include <stdio.h>

#include "config.h"
#include "redis_util.h"

static const char *const source_kinds[] = {"redis", "kafka", "rabbitmq", "http"};
static const char *const sink_kinds[] = {"http",  "openfaas", "lambda", "redis",
                                         "kafka", "rabbitmq", "file"};

static void check_redis_url(const char *url, const struct td_pos *pos, struct td_errors *errs)
{
    struct td_redis_addr addr;
    char err[256];
    if (!url) {
        return;
    }
    if (td_redis_addr_parse(url, &addr, err, sizeof(err)) < 0) {
        td_errors_add(errs, pos, "%s", err);
        return;
    }
    if (td_redis_addr_db(&addr) < 0) {
        td_errors_add(errs, pos, "the Redis URL path must be a database number");
    }
    td_redis_addr_free(&addr);
}

static void warn(const struct td_pos *pos, const char *what, const char *name, const char *kind)
{
    fprintf(stderr, "%s:%d:%d: warning: %s '%s': %s %ss are not supported by this build yet\n",
            pos->file, pos->line, pos->col, what, name, kind, what);
}

static void check_runnable(const struct td_config *cfg, struct td_errors *errs)
{
    for (size_t i = 0; i < cfg->nsources; i++) {
        const struct td_conf_source *src = &cfg->sources[i];
        if (src->kind != TD_SOURCE_REDIS) {
            warn(&src->pos, "source", src->name, source_kinds[src->kind]);
        } else {
            check_redis_url(src->redis.url, &src->pos, errs);
        }
    }
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const struct td_conf_sink *k = &cfg->sinks[i];
        if (k->kind != TD_SINK_HTTP && k->kind != TD_SINK_REDIS && k->kind != TD_SINK_FILE) {
            warn(&k->pos, "sink", k->name, sink_kinds[k->kind]);
        } else if (k->kind == TD_SINK_REDIS) {
            check_redis_url(k->redis.url, &k->pos, errs);
        }
    }
}

static void describe(const struct td_conf_trigger *t)
{
    const struct td_conf_delivery *d = &t->delivery;
    printf("trigger %s: %s -> %s%s%s, retry %d %s %lldms..%lldms, concurrency %d, %s%s\n", t->name,
           t->source, t->sink, d->dead_letter ? ", dead_letter " : "",
           d->dead_letter ? d->dead_letter : "", d->retry,
           d->backoff == TD_BACKOFF_LINEAR ? "linear" : "exponential",
           (long long)d->backoff_delay_ms, (long long)d->backoff_max_ms, d->concurrency,
           t->filter ? "filtered" : "all events",
           d->ordering == TD_ORDER_PARTITION ? ", ordered by partition"
           : d->ordering == TD_ORDER_KEY     ? ", ordered by key"
                                             : "");
}

int td_check_run(const char *path)
{
    struct td_errors errs = {0};
    struct td_config *cfg = td_config_load(path, &errs);
    if (cfg) {
        check_runnable(cfg, &errs);
    }
    if (!cfg || errs.n > 0) {
        for (size_t i = 0; i < errs.n; i++) {
            fprintf(stderr, "%s\n", errs.msgs[i]);
        }
        td_errors_clear(&errs);
        td_config_free(cfg);
        return 2;
    }
    for (size_t i = 0; i < cfg->ntriggers; i++) {
        describe(&cfg->triggers[i]);
    }
    td_config_free(cfg);
    return 0;
}
