/* check.c - `triggerd check` (see check.h). Besides what the loader checks, it reports
 * settings the daemon could not start with: a bad Redis URL is an error; a source or sink
 * kind that the format defines but this build cannot run yet is a warning (the file is
 * valid; `run` refuses it with the same message). */
#include "check.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aws.h"
#include "config.h"
#include "jsonschema.h"
#include "jwks.h"
#include "kafka_log.h"
#include "redis_util.h"
#include "sink.h"
#include "source.h"
#include "tls_file.h"

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

static void warn(const struct td_pos *pos, const char *what, const char *name)
{
    fprintf(stderr,
            "%s:%d:%d: warning: %s '%s': this kind of %s is not supported by this build yet\n",
            pos->file, pos->line, pos->col, what, name, what);
}

/* A TLS file of a sink, reported where its key was written: one that cannot be read here is a
 * warning (it may exist only where the daemon runs; `run` refuses to start without it), one
 * that is read but is not a PEM certificate or key is an error. */
static void check_tls_path(const char *who, const char *path, const char *key,
                           enum td_tls_file_kind kind, const struct td_pos *at,
                           const struct td_pos *fallback, struct td_errors *errs)
{
    char err[512];
    if (!path) {
        return;
    }
    const struct td_pos *pos = at->line > 0 ? at : fallback;
    switch (td_tls_file_check(path, kind, err, sizeof(err))) {
    case TD_TLS_FILE_OK:
        return;
    case TD_TLS_FILE_UNREADABLE:
        fprintf(stderr, "%s:%d:%d: warning: %s: %s %s\n", pos->file, pos->line, pos->col, who, key,
                err);
        return;
    case TD_TLS_FILE_INVALID:
        td_errors_add(errs, pos, "%s: %s %s", who, key, err);
        return;
    }
}

static void check_tls_file(const char *owner, const char *path, const char *key,
                           enum td_tls_file_kind kind, const struct td_pos *at,
                           const struct td_pos *fallback, struct td_errors *errs)
{
    char who[300];
    snprintf(who, sizeof(who), "sink '%s'", owner);
    check_tls_path(who, path, key, kind, at, fallback, errs);
}

/* Credentials the daemon would look for at start (files, the environment; never the network):
 * a warning when they cannot be found here, since check often runs where the daemon does not
 * (CI); an error for what no environment can fix. Secrets are never printed. */
static void check_credentials(const struct td_conf_sink *k, struct td_errors *errs)
{
    const struct td_pos *pos = &k->pos;
    const struct td_conf_auth *auth = k->kind == TD_SINK_HTTP       ? &k->http.auth
                                      : k->kind == TD_SINK_OPENFAAS ? &k->openfaas.auth
                                                                    : NULL;
    if (auth && auth->bearer_file && access(auth->bearer_file, R_OK) != 0) {
        fprintf(stderr, "%s:%d:%d: warning: sink '%s': bearer_file %s cannot be read\n", pos->file,
                pos->line, pos->col, k->name, auth->bearer_file);
    }
    if (k->kind == TD_SINK_HTTP) {
        check_tls_file(k->name, k->http.ca_file, "ca_file", TD_TLS_CA, &k->http.ca_file_pos, pos,
                       errs);
        check_tls_file(k->name, k->http.client_cert, "client_cert", TD_TLS_CERT,
                       &k->http.client_cert_pos, pos, errs);
        check_tls_file(k->name, k->http.client_key, "client_key", TD_TLS_KEY,
                       &k->http.client_key_pos, pos, errs);
    }
    if (auth && auth->azure_key_in && !auth->azure_function_key) {
        td_errors_add(errs, pos, "sink '%s': azure_key_in needs azure_function_key", k->name);
    }
    if (k->kind != TD_SINK_LAMBDA) {
        return;
    }
    const char *fn = k->lambda.function;
    if (fn && strchr(fn, ':')) {
        td_errors_add(errs, pos,
                      "sink '%s': lambda function must be a plain name; write the version or "
                      "alias in qualifier: (and not an ARN)",
                      k->name);
    }
    if (!td_aws_region(&k->lambda)) {
        fprintf(stderr, "%s:%d:%d: warning: sink '%s': no region (lambda region:, AWS_REGION)\n",
                pos->file, pos->line, pos->col, k->name);
    }
    struct td_aws_resolved r;
    char err[400];
    if (td_aws_resolve(&k->lambda, &r, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s:%d:%d: warning: sink '%s': %s\n", pos->file, pos->line, pos->col,
                k->name, err);
        return;
    }
    td_aws_resolved_clear(&r);
}

/* librdkafka's threads (none start here, but a conf may log while properties are set). */
static void check_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    td_kafka_log(level, TD_LOG_ERROR, NULL, "triggerd check", fac, buf);
}

/* Kafka properties go to librdkafka as they are, and `run` refuses the file when librdkafka
 * refuses one: apply them to a throwaway configuration the same way. The value may be a secret:
 * the message names the property, and librdkafka's reason only when it does not quote it. */
static void check_kafka_properties(const struct td_kv_list *props, const char *what,
                                   const char *name, const struct td_pos *pos,
                                   struct td_errors *errs)
{
    rd_kafka_conf_t *kc = props->n > 0 ? rd_kafka_conf_new() : NULL;
    if (kc) {
        rd_kafka_conf_set_log_cb(kc, check_log);
    }
    for (size_t i = 0; kc && i < props->n; i++) {
        const struct td_kv *kv = &props->items[i];
        char why[256];
        if (rd_kafka_conf_set(kc, kv->key, kv->value ? kv->value : "", why, sizeof(why)) ==
            RD_KAFKA_CONF_OK) {
            continue;
        }
        if (kv->value && kv->value[0] && strstr(why, kv->value)) {
            snprintf(why, sizeof(why), "invalid value (not shown)");
        }
        td_errors_add(errs, pos, "%s '%s': property '%s': %s", what, name, kv->key, why);
    }
    if (kc) {
        rd_kafka_conf_destroy(kc);
    }
}

/* An HTTP ingress source is served by daemon.http.listen on a path of its own. */
static void check_ingress(const struct td_config *cfg, size_t idx, struct td_errors *errs)
{
    static const char *const builtin[] = {"/healthz", "/readyz", "/metrics", "/status"};
    const struct td_conf_source *src = &cfg->sources[idx];
    const char *path = src->http.path;
    if (!cfg->daemon.http_listen) {
        td_errors_add(errs, &src->pos, "source '%s': an http source needs daemon.http.listen",
                      src->name);
    }
    const char *jwks = src->http.jwt_jwks_file;
    if (jwks) {
        /* as the TLS files: unreadable here is a warning, not a JWKS an error */
        const struct td_pos *at = &src->http.jwt_jwks_file_pos;
        char err[400];
        if (access(jwks, R_OK) != 0) {
            fprintf(stderr,
                    "%s:%d:%d: warning: source '%s': auth.jwt.jwks_file %s cannot be read\n",
                    at->file, at->line, at->col, src->name, jwks);
        } else if (td_jwks_check_file(jwks, err, sizeof(err)) < 0) {
            td_errors_add(errs, at, "source '%s': auth.jwt.jwks_file %s", src->name, err);
        }
    }
    if (!path || path[0] != '/') {
        td_errors_add(errs, &src->pos, "source '%s': path must start with '/'", src->name);
        return;
    }
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        if (strcmp(path, builtin[i]) == 0) {
            td_errors_add(errs, &src->pos, "source '%s': path %s is a built-in endpoint", src->name,
                          path);
        }
    }
    for (size_t i = 0; i < idx; i++) {
        const struct td_conf_source *other = &cfg->sources[i];
        if (other->kind == TD_SOURCE_HTTP && other->http.path &&
            strcmp(other->http.path, path) == 0) {
            td_errors_add(errs, &src->pos, "source '%s': path %s is already used by source '%s'",
                          src->name, path, other->name);
        }
    }
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
    for (size_t i = 0; i < cfg->nsources; i++) {
        const struct td_conf_source *src = &cfg->sources[i];
        if (!td_source_ops_for(src->kind)) {
            warn(&src->pos, "source", src->name);
        } else if (src->kind == TD_SOURCE_REDIS) {
            check_redis_url(src->redis.url, &src->pos, errs);
        } else if (src->kind == TD_SOURCE_HTTP) {
            check_ingress(cfg, i, errs);
        } else if (src->kind == TD_SOURCE_KAFKA) {
            check_kafka_properties(&src->kafka.properties, "source", src->name, &src->pos, errs);
        }
    }
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const struct td_conf_sink *k = &cfg->sinks[i];
        if (!td_sink_desc_for(k->kind)) {
            warn(&k->pos, "sink", k->name);
        } else if (k->kind == TD_SINK_REDIS) {
            check_redis_url(k->redis.url, &k->pos, errs);
        } else if (k->kind == TD_SINK_KAFKA) {
            check_kafka_properties(&k->kafka.properties, "sink", k->name, &k->pos, errs);
        }
        check_credentials(k, errs);
    }
    const struct td_conf_daemon *dc = &cfg->daemon;
    check_tls_path("daemon.http.tls", dc->http_tls_cert, "cert_file", TD_TLS_CERT,
                   &dc->http_tls_cert_pos, &dc->http_tls_cert_pos, errs);
    check_tls_path("daemon.http.tls", dc->http_tls_key, "key_file", TD_TLS_KEY,
                   &dc->http_tls_key_pos, &dc->http_tls_key_pos, errs);
    check_tls_path("daemon.http.tls", dc->http_tls_client_ca, "client_ca_file", TD_TLS_CA,
                   &dc->http_tls_client_ca_pos, &dc->http_tls_client_ca_pos, errs);
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
