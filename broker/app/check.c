/* check.c - `triggerd check` (see check.h). Besides what the loader checks, it reports
 * settings the daemon could not start with: a bad Redis URL is an error; a source or sink
 * kind that the format defines but this build cannot run yet is a warning (the file is
 * valid; `run` refuses it with the same message). */
#include "check.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "jsonschema.h"
#include "sink.h"
#include "source.h"
#include "tls_file.h"

static void warn(const struct td_pos *pos, const char *what, const char *name)
{
    fprintf(stderr,
            "%s:%d:%d: warning: %s '%s': this kind of %s is not supported by this build yet\n",
            pos->file, pos->line, pos->col, what, name, what);
}

/* Every trigger's payload schema (schema: FILE) must be valid JSON within the subset the
 * validator implements (jsonschema.h); `run` loads them the same way and refuses to start
 * without them. A file that cannot be read here is a warning, as a bearer_file is (the file
 * may exist only where the daemon runs); one that is read but invalid is an error. */
static void check_schemas(const struct td_config *cfg, struct td_errors *errs)
{
    char err[512];
    for (size_t i = 0; i < cfg->ntriggers; i++) {
        const struct td_conf_trigger *t = &cfg->triggers[i];
        struct td_jsonschema *s =
            t->schema ? td_jsonschema_load(t->schema, t->pos.file, err, sizeof(err)) : NULL;
        if (t->schema && !s && strncmp(err, "cannot read ", 12) == 0) {
            fprintf(stderr, "%s:%d:%d: warning: trigger '%s': schema: %s\n", t->pos.file,
                    t->pos.line, t->pos.col, t->name, err);
        } else if (t->schema && !s) {
            td_errors_add(errs, &t->pos, "trigger '%s': schema: %s", t->name, err);
        }
        td_jsonschema_free(s);
    }
}

static void check_runnable(const struct td_config *cfg, struct td_errors *errs)
{
    /* What each kind checks is in its plugin (the descriptor's check hook). */
    for (size_t i = 0; i < cfg->nsources; i++) {
        const struct td_conf_source *src = &cfg->sources[i];
        const struct td_source_ops *ops = td_source_ops_of(src);
        if (!ops) {
            warn(&src->pos, "source", src->name);
        } else if (ops->check) {
            ops->check(cfg, src, errs);
        }
    }
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const struct td_conf_sink *k = &cfg->sinks[i];
        const struct td_sink_desc *desc = td_sink_desc_of(k);
        if (!desc) {
            warn(&k->pos, "sink", k->name);
        } else if (desc->check) {
            desc->check(k, errs);
        }
    }
    const struct td_conf_daemon *dc = &cfg->daemon;
    td_tls_file_report("daemon.http.tls", "cert_file", dc->http_tls_cert, TD_TLS_CERT,
                       &dc->http_tls_cert_pos, errs);
    td_tls_file_report("daemon.http.tls", "key_file", dc->http_tls_key, TD_TLS_KEY,
                       &dc->http_tls_key_pos, errs);
    td_tls_file_report("daemon.http.tls", "client_ca_file", dc->http_tls_client_ca, TD_TLS_CA,
                       &dc->http_tls_client_ca_pos, errs);
    td_check_rabbitmq(cfg, errs);
    struct td_errors warns = {0};
    td_check_rabbitmq_warnings(cfg, &warns);
    for (size_t i = 0; i < warns.n; i++) {
        fprintf(stderr, "%s\n", warns.msgs[i]);
    }
    td_errors_clear(&warns);
    check_schemas(cfg, errs);
}

static void describe(const struct td_conf_trigger *t)
{
    const struct td_conf_delivery *d = &t->delivery;
    char rate[96] = "";
    if (d->rate.events > 0) {
        snprintf(rate, sizeof(rate), ", rate %d per %lldms burst %d", d->rate.events,
                 (long long)d->rate.per_ms, d->rate.burst);
    }
    printf("trigger %s: %s -> %s%s%s, retry %d %s %lldms..%lldms, concurrency %d%s%s, %s%s\n",
           t->name, t->source, t->sink, d->dead_letter ? ", dead_letter " : "",
           d->dead_letter ? d->dead_letter : "", d->retry,
           d->backoff == TD_BACKOFF_LINEAR ? "linear" : "exponential",
           (long long)d->backoff_delay_ms, (long long)d->backoff_max_ms, d->concurrency,
           d->concurrency_adaptive ? " adaptive" : "", rate, t->filter ? "filtered" : "all events",
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
