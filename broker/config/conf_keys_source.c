/* conf_keys_source.c - the keys of daemon: and of a source (sources: NAME: {KIND: {...}}):
 * names, types, limits and defaults. A key of a new source kind goes here, in its kind's table.
 *
 * Thread: any; the tables are read-only.
 */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_internal.h"

static const char *const start_names[] = {"earliest", "latest", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const format_names[] = {"text", "json", NULL};
static const char *const id_from_names[] = {"body_hash", "delivery", NULL}; /* td_amqp_id_from */

/* ---- daemon (base: struct td_conf_daemon) ---- */
#define DMN(f) offsetof(struct td_conf_daemon, f)

static bool is_host_port(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    return colon && colon != listen && colon[1] && !*end && port >= 1 && port <= 65535;
}

static int check_listen(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    const struct td_conf_daemon *dmn = base;
    int rc = 0;

    if (dmn->http_listen && !is_host_port(dmn->http_listen)) {
        ERR_AT(ld, td_conf_map_get(map, "listen"),
               "'listen' must be host:port, e.g. 127.0.0.1:8080");
        rc = -1;
    }
    if (dmn->http_probes_listen && !is_host_port(dmn->http_probes_listen)) {
        ERR_AT(ld, td_conf_map_get(map, "probes_listen"),
               "'probes_listen' must be host:port, e.g. 0.0.0.0:8081");
        rc = -1;
    } else if (dmn->http_probes_listen && dmn->http_listen &&
               strcmp(dmn->http_probes_listen, dmn->http_listen) == 0) {
        ERR_AT(ld, td_conf_map_get(map, "probes_listen"),
               "'probes_listen' must differ from 'listen' (it is a listener of its own)");
        rc = -1;
    }
    if (!dmn->http_probes_on_listen && !dmn->http_probes_listen) {
        ERR_AT(ld, td_conf_map_get(map, "probes_on_listen"),
               "'probes_on_listen: false' needs 'probes_listen', or nothing serves /healthz");
        rc = -1;
    }
    const struct td_ynode *rt = td_conf_map_get(map, "request_timeout");
    if (rt && (dmn->http_request_timeout_ms < 1000 || dmn->http_request_timeout_ms > 300000)) {
        ERR_AT(ld, rt, "'request_timeout' must be between 1s and 5m (10s to 30s is sensible)");
        rc = -1;
    }
    return rc;
}

/* HTTPS for listen (http_server.c, libmicrohttpd with GnuTLS). */
static const struct td_conf_key daemon_tls_keys[] = {
    {.name = "cert_file",
     .type = TD_K_STR,
     .off = DMN(http_tls_cert),
     .off2 = DMN(http_tls_cert_pos),
     .pos = true,
     .required = true},
    {.name = "key_file",
     .type = TD_K_STR,
     .off = DMN(http_tls_key),
     .off2 = DMN(http_tls_key_pos),
     .pos = true,
     .required = true},
    REF_STR("client_ca_file", DMN(http_tls_client_ca), DMN(http_tls_client_ca_pos)),
};
static const struct td_conf_table daemon_tls_table = {TABLE("daemon.http.tls", daemon_tls_keys)};

/* The limits are applied in http_server.c. */
static const struct td_conf_key daemon_http_keys[] = {
    REQ_STR("listen", DMN(http_listen)),
    STR("probes_listen", DMN(http_probes_listen)),
    BOOL_D("probes_on_listen", DMN(http_probes_on_listen), "true"),
    INT_D("max_connections", DMN(http_max_connections), 0, 1000000, "0"),
    INT_D("max_connections_per_ip", DMN(http_max_connections_per_ip), 0, 1000000, "64"),
    DUR_D("request_timeout", DMN(http_request_timeout_ms), "15s"),
    NESTED("tls", 0, &daemon_tls_table),
};
static const struct td_conf_table daemon_http_table = {TABLE("daemon.http", daemon_http_keys),
                                                       .check = check_listen};
static const struct td_conf_key daemon_log_keys[] = {
    ENUM_D("level", DMN(log_level), level_names, "info"),
    ENUM_D("format", DMN(log_format), format_names, "text")};
static const struct td_conf_table daemon_log_table = {TABLE("daemon.log", daemon_log_keys)};
static const struct td_conf_key daemon_keys[] = {
    NESTED("http", 0, &daemon_http_table), NESTED("log", 0, &daemon_log_table),
    DUR_D("shutdown_grace", DMN(shutdown_grace_ms), "30s")};
const struct td_conf_table td_conf_daemon_table = {TABLE("daemon", daemon_keys)};

/* ---- sources (base: struct td_conf_source) ---- */
#define SRC(f) offsetof(struct td_conf_source, f)

/* The default consumer name of a Redis source: the host name. */
static void host_name(char *buf, size_t len)
{
    memset(buf, 0, len);
    if (gethostname(buf, len - 1) < 0 || !buf[0]) {
        snprintf(buf, len, "triggerd");
    }
}

static const struct td_conf_key redis_source_keys[] = {
    REQ_STR("url", SRC(redis.url)),
    REQ_STR("stream", SRC(redis.stream)),
    STR_D("group", SRC(redis.group), "triggerd"),
    {.name = "consumer", .type = TD_K_STR, .off = SRC(redis.consumer), .dflt_fn = host_name},
    {.name = "start",
     .type = TD_K_STR,
     .off = SRC(redis.start),
     .names = start_names,
     .dflt = "earliest"},
    DUR_D("claim_idle", SRC(redis.claim_idle_ms), "60s"),
    INT_D("max_deliveries", SRC(redis.max_deliveries), 0, INT_MAX, "10"),
    INT_D("batch", SRC(redis.batch), 1, 100000, "100"),
    {.name = "block", .type = TD_K_DUR, .off = SRC(redis.block_ms), .min = 1, .dflt = "1s"},
};
static const struct td_conf_table redis_source_table = {TABLE("redis source", redis_source_keys)};

static const struct td_conf_key kafka_source_keys[] = {
    REQ_STR("brokers", SRC(kafka.brokers)),
    {.name = "topics",
     .type = TD_K_STRLIST,
     .off = SRC(kafka.topics),
     .off2 = SRC(kafka.ntopics),
     .min = 1,
     .required = true},
    STR_D("group", SRC(kafka.group), "triggerd"),
    {.name = "start",
     .type = TD_K_STR,
     .off = SRC(kafka.start),
     .names = start_names,
     .dflt = "earliest"},
    {.name = "properties", .type = TD_K_STRMAP, .off = SRC(kafka.properties)},
};
static const struct td_conf_table kafka_source_table = {TABLE("kafka source", kafka_source_keys)};

static const char *const exchange_type_names[] = {"direct", "fanout", "topic", "headers", NULL};

static int check_rabbitmq_declare(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    struct td_conf_source *src = base;
    src->rabbitmq.declare = true;
    if (src->rabbitmq.ndeclare_bindings > 0 && !src->rabbitmq.declare_exchange) {
        ERR_AT(ld, td_conf_map_get(map, "bindings"), "'bindings' need an 'exchange' to bind to");
        return -1;
    }
    return 0;
}

static const struct td_conf_key rabbitmq_declare_keys[] = {
    BOOL_D("durable", SRC(rabbitmq.declare_durable), "true"),
    {.name = "arguments", .type = TD_K_STRMAP, .off = SRC(rabbitmq.declare_arguments)},
    STR("exchange", SRC(rabbitmq.declare_exchange)),
    {.name = "exchange_type",
     .type = TD_K_STR,
     .off = SRC(rabbitmq.declare_exchange_type),
     .names = exchange_type_names,
     .dflt = "direct"},
    {.name = "bindings",
     .type = TD_K_STRLIST,
     .off = SRC(rabbitmq.declare_bindings),
     .off2 = SRC(rabbitmq.ndeclare_bindings)},
};
static const struct td_conf_table rabbitmq_declare_table = {TABLE("declare", rabbitmq_declare_keys),
                                                            .check = check_rabbitmq_declare};

static const struct td_conf_key rabbitmq_source_keys[] = {
    REQ_STR("url", SRC(rabbitmq.url)),
    REQ_STR("queue", SRC(rabbitmq.queue)),
    INT_D("prefetch", SRC(rabbitmq.prefetch), 0, 65535, "100"),
    {.name = "heartbeat", .type = TD_K_DUR_S, .off = SRC(rabbitmq.heartbeat), .dflt = "30s"},
    INT_D("max_deliveries", SRC(rabbitmq.max_deliveries), 0, INT_MAX, "10"),
    DUR_D("consumer_timeout", SRC(rabbitmq.consumer_timeout_ms), "30m"),
    ENUM_D("id_from", SRC(rabbitmq.id_from), id_from_names, "delivery"),
    NESTED("declare", 0, &rabbitmq_declare_table),
};
static const struct td_conf_table rabbitmq_source_table = {
    TABLE("rabbitmq source", rabbitmq_source_keys)};

static int check_ingress(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    const char *path = FIELD(base, SRC(http.path), char *)[0];
    if (path && path[0] != '/') {
        ERR_AT(ld, td_conf_map_get(map, "path"), "'path' must start with '/'");
        return -1;
    }
    return 0;
}

/* JWT bearer tokens checked against a JWKS (sources/jwks.c); all three are required: without an
 * issuer and an audience, any token the key holder ever signed for any service would pass. */
static const struct td_conf_key ingress_jwt_keys[] = {
    {.name = "jwks_file",
     .type = TD_K_STR,
     .off = SRC(http.jwt_jwks_file),
     .off2 = SRC(http.jwt_jwks_file_pos),
     .pos = true,
     .group = 1},
    ONE_STR("jwks_url", SRC(http.jwt_jwks_url)),
    REQ_STR("issuer", SRC(http.jwt_issuer)),
    REQ_STR("audience", SRC(http.jwt_audience)),
};
static int check_jwks_url(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    const char *url = ((const struct td_conf_source *)base)->http.jwt_jwks_url;
    if (url && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        ERR_AT(ld, td_conf_map_get(map, "jwks_url"),
               "'jwks_url' must be an http:// or https:// URL");
        return -1;
    }
    return 0;
}
static const struct td_conf_table ingress_jwt_table = {
    TABLE("http source auth.jwt", ingress_jwt_keys), .group_required = true,
    .check = check_jwks_url};
static const struct td_conf_key ingress_auth_keys[] = {
    {.name = "bearer", .type = TD_K_STR, .off = SRC(http.bearer), .group = 1, .cred = true},
    {.name = "jwt", .type = TD_K_NESTED, .sub = &ingress_jwt_table, .group = 1},
};
static const struct td_conf_table ingress_auth_table = {
    TABLE("http source auth", ingress_auth_keys)};
static const struct td_conf_key http_source_keys[] = {
    REQ_STR("path", SRC(http.path)),
    NESTED("auth", 0, &ingress_auth_table),
    {.name = "max_size", .type = TD_K_SIZE, .off = SRC(http.max_size), .dflt = "1MiB"},
};
static const struct td_conf_table http_source_table = {TABLE("http source", http_source_keys),
                                                       .check = check_ingress};

/* Indexed by enum td_source_kind. Issue 13 step 2 takes these from the plugins' descriptors. */
static const struct td_conf_kind source_kinds[] = {
    [TD_SOURCE_REDIS] = {"redis", &redis_source_table},
    [TD_SOURCE_KAFKA] = {"kafka", &kafka_source_table},
    [TD_SOURCE_RABBITMQ] = {"rabbitmq", &rabbitmq_source_table},
    [TD_SOURCE_HTTP] = {"http", &http_source_table},
};

const struct td_conf_kind *td_conf_source_kind(size_t i)
{
    return i < NKEYS(source_kinds) ? &source_kinds[i] : NULL;
}

static const struct td_conf_key source_keys[] = {
    INT_D("max_inflight", SRC(max_inflight), 1, INT_MAX, "1000"),
    DUR_D("stall_after", SRC(stall_after_ms), "2m"),
};
const struct td_conf_table td_conf_source_table = {
    TABLE("source", source_keys), .group_required = true, .kind = td_conf_source_kind,
    .kind_off = SRC(kind)};
