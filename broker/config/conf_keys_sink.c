/* conf_keys_sink.c - the keys of a sink (sinks: NAME: {KIND: {...}}) and of its auth:
 * names, types, limits and defaults. A key of a new sink kind goes here, in its kind's table.
 *
 * Thread: any; the tables are read-only.
 */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

static const char *const mode_names[] = {"binary", "structured", NULL};
static const char *const invocation_names[] = {"RequestResponse", "Event", NULL};
static const char *const payload_names[] = {"event", "data", NULL};
static const char *const azure_key_in_names[] = {"header", "query", NULL};

/* ---- sinks (base: struct td_conf_sink, except auth: struct td_conf_auth) ---- */
#define SNK(f)  offsetof(struct td_conf_sink, f)
#define AUTH(f) offsetof(struct td_conf_auth, f)

static const struct td_conf_key basic_keys[] = {REQ_STR("user", AUTH(basic_user)),
                                                REQ_STR("password", AUTH(basic_password))};
static const struct td_conf_table basic_table = {TABLE("auth.basic", basic_keys)};
static const struct td_conf_key google_keys[] = {REQ_STR("audience", AUTH(google_audience)),
                                                 STR("metadata_url", AUTH(google_metadata_url))};
static const struct td_conf_table google_table = {TABLE("auth.google_id_token", google_keys)};
static int check_http_url(struct td_conf_loader *ld, const struct td_ynode *map, const char *key,
                          const char *url);
static int check_oauth2(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    const struct td_conf_auth *auth = base;
    return check_http_url(ld, map, "token_url", auth->oauth2_token_url);
}
/* OAuth2 client credentials (RFC 6749 4.4): the client authenticates with HTTP Basic. */
static const struct td_conf_key oauth2_keys[] = {
    REQ_STR("token_url", AUTH(oauth2_token_url)),
    REQ_STR("client_id", AUTH(oauth2_client_id)),
    {.name = "client_secret",
     .type = TD_K_STR,
     .off = AUTH(oauth2_client_secret),
     .required = true,
     .cred = true},
    {.name = "scopes",
     .type = TD_K_STRLIST,
     .off = AUTH(oauth2_scopes),
     .off2 = AUTH(oauth2_nscopes)},
    STR("audience", AUTH(oauth2_audience)),
};
static const struct td_conf_table oauth2_table = {TABLE("auth.oauth2", oauth2_keys),
                                                  .check = check_oauth2};
static const struct td_conf_key auth_keys[] = {
    {.name = "bearer", .type = TD_K_STR, .off = AUTH(bearer), .group = 1, .cred = true},
    ONE_STR("bearer_file", AUTH(bearer_file)),
    {.name = "basic", .type = TD_K_NESTED, .sub = &basic_table, .group = 1},
    {.name = "google_id_token", .type = TD_K_NESTED, .sub = &google_table, .group = 1},
    {.name = "oauth2", .type = TD_K_NESTED, .sub = &oauth2_table, .group = 1},
    {.name = "azure_function_key",
     .type = TD_K_STR,
     .off = AUTH(azure_function_key),
     .group = 1,
     .cred = true},
    {.name = "azure_key_in",
     .type = TD_K_STR,
     .off = AUTH(azure_key_in),
     .names = azure_key_in_names},
};
static const struct td_conf_table auth_table = {TABLE("auth", auth_keys)};

static const struct td_conf_key service_keys[] = {
    REQ_STR("name", SNK(http.service_name)),
    /* no default here: the HTTP sink reads POD_NAMESPACE */
    STR("namespace", SNK(http.service_namespace)),
    INT_D("port", SNK(http.service_port), 1, 65535, "80")};
static const struct td_conf_table service_table = {TABLE("service", service_keys)};

/* Every kind has timeout, in one field (td_conf_sink.timeout_ms). */
#define SINK_TIMEOUT DUR_D("timeout", SNK(timeout_ms), "10s")
/* The queue sinks wait for the broker's acknowledgement: 0 cannot mean "no limit" there. */
#define QUEUE_SINK_TIMEOUT                                                                         \
    {                                                                                              \
        .name = "timeout", .type = TD_K_DUR, .off = SNK(timeout_ms), .min = 1, .dflt = "10s"       \
    }

static const struct td_conf_key http_sink_keys[] = {
    ONE_STR("url", SNK(http.url)),
    {.name = "service", .type = TD_K_NESTED, .sub = &service_table, .group = 1},
    ENUM_D("mode", SNK(http.mode), mode_names, "binary"),
    SINK_TIMEOUT,
    {.name = "headers", .type = TD_K_STRMAP, .off = SNK(http.headers), .hdrs = true},
    REF_STR("ca_file", SNK(http.ca_file), SNK(http.ca_file_pos)),
    REF_STR("client_cert", SNK(http.client_cert), SNK(http.client_cert_pos)),
    REF_STR("client_key", SNK(http.client_key), SNK(http.client_key_pos)),
    NESTED("auth", SNK(http.auth), &auth_table),
};
/* An URL that can never work is a load error, not a dead letter per event at run time. */
static int check_http_url(struct td_conf_loader *ld, const struct td_ynode *map, const char *key,
                          const char *url)
{
    if (!url) {
        return 0;
    }
    const char *host = strncmp(url, "http://", 7) == 0    ? url + 7
                       : strncmp(url, "https://", 8) == 0 ? url + 8
                                                          : NULL;
    if (!host) {
        ERR_AT(ld, td_conf_map_get(map, key), "'%s' must be an http:// or https:// URL", key);
        return -1;
    }
    if (!*host || *host == '/' || strpbrk(url, " \t\r\n")) {
        ERR_AT(ld, td_conf_map_get(map, key), "'%s' is not a valid URL (no host, or white space)",
               key);
        return -1;
    }
    return 0;
}

static int check_http_sink(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    const struct td_conf_sink *k = base;
    return check_http_url(ld, map, "url", k->http.url);
}

static const struct td_conf_table http_sink_table = {
    TABLE("http sink", http_sink_keys), .group_required = true, .check = check_http_sink};

static const struct td_conf_key openfaas_sink_keys[] = {
    REQ_STR("gateway", SNK(openfaas.gateway)),
    REQ_STR("function", SNK(openfaas.function)),
    BOOL_D("async", SNK(openfaas.async), "false"),
    STR("callback_url", SNK(openfaas.callback_url)),
    NESTED("auth", SNK(openfaas.auth), &auth_table),
    SINK_TIMEOUT,
};
static const struct td_conf_table openfaas_sink_table = {
    TABLE("openfaas sink", openfaas_sink_keys)};

static const struct td_conf_key credentials_keys[] = {
    {.name = "access_key_id",
     .type = TD_K_STR,
     .off = SNK(lambda.access_key_id),
     .required = true,
     .cred = true},
    {.name = "secret_access_key",
     .type = TD_K_STR,
     .off = SNK(lambda.secret_access_key),
     .required = true,
     .cred = true},
    CRED_STR("session_token", SNK(lambda.session_token)),
};
static const struct td_conf_table credentials_table = {
    TABLE("lambda credentials", credentials_keys)};
static const struct td_conf_key lambda_sink_keys[] = {
    REQ_STR("function", SNK(lambda.function)),
    STR("region", SNK(lambda.region)),
    STR("qualifier", SNK(lambda.qualifier)),
    {.name = "invocation",
     .type = TD_K_STR,
     .off = SNK(lambda.invocation),
     .names = invocation_names,
     .dflt = "RequestResponse"},
    {.name = "payload",
     .type = TD_K_STR,
     .off = SNK(lambda.payload),
     .names = payload_names,
     .dflt = "event"},
    STR("endpoint", SNK(lambda.endpoint)),
    NESTED("credentials", 0, &credentials_table),
    SINK_TIMEOUT,
};
static const struct td_conf_table lambda_sink_table = {TABLE("lambda sink", lambda_sink_keys)};

static const struct td_conf_key redis_sink_keys[] = {
    REQ_STR("url", SNK(redis.url)),
    REQ_STR("stream", SNK(redis.stream)),
    {.name = "maxlen",
     .type = TD_K_I64,
     .off = SNK(redis.maxlen),
     .min = 0,
     .max = LLONG_MAX,
     .dflt = "0"},
    QUEUE_SINK_TIMEOUT,
};
static const struct td_conf_table redis_sink_table = {TABLE("redis sink", redis_sink_keys)};

static const struct td_conf_key kafka_sink_keys[] = {
    REQ_STR("brokers", SNK(kafka.brokers)),
    REQ_STR("topic", SNK(kafka.topic)),
    {.name = "properties", .type = TD_K_STRMAP, .off = SNK(kafka.properties)},
    QUEUE_SINK_TIMEOUT,
};
static const struct td_conf_table kafka_sink_table = {TABLE("kafka sink", kafka_sink_keys)};

static const struct td_conf_key rabbitmq_sink_keys[] = {
    REQ_STR("url", SNK(rabbitmq.url)),
    REQ_STR("exchange", SNK(rabbitmq.exchange)),
    STR("routing_key", SNK(rabbitmq.routing_key)),
    QUEUE_SINK_TIMEOUT,
};
static const struct td_conf_table rabbitmq_sink_table = {
    TABLE("rabbitmq sink", rabbitmq_sink_keys)};

static const struct td_conf_key file_sink_keys[] = {REQ_STR("path", SNK(file.path)), SINK_TIMEOUT};
static const struct td_conf_table file_sink_table = {TABLE("file sink", file_sink_keys)};

/* Indexed by enum td_sink_kind. Issue 13 step 2 takes these from the plugins' descriptors. */
static const struct td_conf_kind sink_kinds[] = {
    [TD_SINK_HTTP] = {"http", &http_sink_table},
    [TD_SINK_OPENFAAS] = {"openfaas", &openfaas_sink_table},
    [TD_SINK_LAMBDA] = {"lambda", &lambda_sink_table},
    [TD_SINK_REDIS] = {"redis", &redis_sink_table},
    [TD_SINK_KAFKA] = {"kafka", &kafka_sink_table},
    [TD_SINK_RABBITMQ] = {"rabbitmq", &rabbitmq_sink_table},
    [TD_SINK_FILE] = {"file", &file_sink_table},
};

const struct td_conf_kind *td_conf_sink_kind(size_t i)
{
    return i < NKEYS(sink_kinds) ? &sink_kinds[i] : NULL;
}

const struct td_conf_table td_conf_sink_table = {
    .what = "sink", .group_required = true, .kind = td_conf_sink_kind, .kind_off = SNK(kind)};
