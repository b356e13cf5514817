/* conf_keys_source.c - the keys of daemon: and those every source has (sources: NAME: {KIND:
 * {...}}): names, types, limits and defaults. A kind's own keys are in its plugin's file
 * (conf_table.h); the kinds come from sources/registry.c.
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

static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const format_names[] = {"text", "json", NULL};

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

/* daemon.tracing: the OTLP/HTTP exporter of broker/trace/. */
static int check_tracing(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    struct td_conf_daemon *dmn = base;
    int rc = 0;
    const char *ep = dmn->tracing_endpoint;
    if (ep && strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0) {
        ERR_AT(ld, td_conf_map_get(map, "otlp_endpoint"),
               "'otlp_endpoint' must be an http:// or https:// URL (the collector's OTLP/HTTP "
               "port, e.g. http://localhost:4318)");
        rc = -1;
    }
    const char *text = dmn->tracing_sample_ratio_text ? dmn->tracing_sample_ratio_text : "1";
    char *end;
    double ratio = strtod(text, &end);
    if (end == text || *end || !(ratio >= 0.0 && ratio <= 1.0)) {
        ERR_AT(ld, td_conf_map_get(map, "sample_ratio"),
               "'sample_ratio' must be a number from 0 to 1 (the share of new traces recorded)");
        rc = -1;
    }
    dmn->tracing_sample_ratio = ratio;
    return rc;
}

static const struct td_conf_key daemon_tracing_keys[] = {
    STR("otlp_endpoint", DMN(tracing_endpoint)),
    {.name = "headers", .type = TD_K_STRMAP, .off = DMN(tracing_headers), .hdrs = true},
    STR_D("sample_ratio", DMN(tracing_sample_ratio_text), "1"),
    DUR_D("timeout", DMN(tracing_timeout_ms), "10s"),
    DUR_D("interval", DMN(tracing_interval_ms), "1s"),
    INT_D("queue_size", DMN(tracing_queue_size), 1, 1000000, "2048"),
    STR_D("service_name", DMN(tracing_service_name), "triggerd"),
};
static const struct td_conf_table daemon_tracing_table = {
    TABLE("daemon.tracing", daemon_tracing_keys), .check = check_tracing};
/* SIGTERM (and a reload retiring a source) waits up to shutdown_grace for deliveries in flight:
 * a value of days would make the daemon look hung to whoever stops it. An hour outlasts any
 * attempt timeout worth waiting for (a Lambda runs at most 15 minutes). The schema's "maximum"
 * for a bare number of seconds says the same. */
#define SHUTDOWN_GRACE_MAX_MS (3600LL * 1000)
static int check_daemon(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    const struct td_conf_daemon *dmn = base;
    const struct td_ynode *grace = td_conf_map_get(map, "shutdown_grace");
    if (grace && dmn->shutdown_grace_ms > SHUTDOWN_GRACE_MAX_MS) {
        ERR_AT(ld, grace,
               "'shutdown_grace' must be at most 1h (how long SIGTERM waits for deliveries in "
               "flight)");
        return -1;
    }
    return 0;
}

static const struct td_conf_key daemon_keys[] = {
    NESTED("http", 0, &daemon_http_table), NESTED("log", 0, &daemon_log_table),
    DUR_D("shutdown_grace", DMN(shutdown_grace_ms), "30s"),
    NESTED("tracing", 0, &daemon_tracing_table)};
const struct td_conf_table td_conf_daemon_table = {TABLE("daemon", daemon_keys),
                                                   .check = check_daemon};

/* ---- sources (base: struct td_conf_source; a kind's own keys are in its plugin's file) ---- */
#define SRC(f) offsetof(struct td_conf_source, f)

static const struct td_conf_key source_keys[] = {
    INT_D("max_inflight", SRC(max_inflight), 1, INT_MAX, "1000"),
    DUR_D("stall_after", SRC(stall_after_ms), "2m"),
};
const struct td_conf_table td_conf_source_table = {
    TABLE("source", source_keys), .group_required = true,    .kind = td_conf_source_kind,
    .kind_off = SRC(kind),        .plugin_off = SRC(plugin), .settings_off = SRC(settings)};
