/* config.h - the typed trigger-file configuration.
 *
 * td_config_load() turns one YAML file, or a directory of *.yaml / *.yml files, into the
 * structures below. Every key the user can write is listed, with its default, in a table:
 * conf_keys_*.c for the loader's own (daemon, the keys every source and sink has, triggers),
 * the plugin's own file for a source or sink kind's settings (conf_table.h); an
 * unknown key, a wrong type or a dangling reference is an error reported as
 * "file:line:column: message" (1-based line and column). Strings are already interpolated
 * (${VAR}, ${file:/path}); values that came from interpolation are secrets and are never
 * logged by the loader.
 *
 * Ownership: everything hangs off struct td_config and is freed by td_config_free().
 * Threads: load on any thread; the result is read-only afterwards and may be shared.
 */
#ifndef TD_CONFIG_H
#define TD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv.h"
#include "log.h"

struct td_filter;

/* Where a node was written: 1-based line and column; file points into td_config.files. */
struct td_pos {
    const char *file;
    int line;
    int col;
};

/* A growing list of "file:line:column: message" strings. */
struct td_errors {
    char **msgs;
    size_t n;
};
void td_errors_add(struct td_errors *errs, const struct td_pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void td_errors_clear(struct td_errors *errs);

struct td_conf_daemon {
    char *http_listen; /* "host:port" or NULL: no HTTP server */
    /* daemon.http limits (see http_server.h for how they are applied). */
    int http_max_connections;        /* 0 (default): derived from RLIMIT_NOFILE at start */
    int http_max_connections_per_ip; /* default 64; 0 = no per-IP limit */
    int64_t http_request_timeout_ms; /* default 15s: reading one request, and idle keep-alive */
    char *http_probes_listen;        /* "host:port" of the probes-only listener, or NULL */
    bool http_probes_on_listen;      /* default true: probes on http_listen too */
    /* daemon.http.tls: HTTPS on http_listen (all NULL: plain HTTP); client certificates
     * required when client_ca is set */
    char *http_tls_cert, *http_tls_key, *http_tls_client_ca;
    struct td_pos http_tls_cert_pos, http_tls_key_pos, http_tls_client_ca_pos;
    enum td_log_level log_level;
    enum td_log_format log_format;
    int64_t shutdown_grace_ms; /* default 30s */
    /* daemon.tracing (broker/trace/tracer.h): spans exported with OTLP/HTTP; no otlp_endpoint:
     * tracing off. */
    char *tracing_endpoint;
    struct td_kv_list tracing_headers;
    char *tracing_sample_ratio_text; /* as written (default "1"); the check sets the number */
    double tracing_sample_ratio;
    int64_t tracing_timeout_ms;  /* default 10s */
    int64_t tracing_interval_ms; /* default 1s */
    int tracing_queue_size;      /* default 2048 */
    char *tracing_service_name;  /* default "triggerd" */
};

/* ---- sources ---- */
/* A kind's tag (its descriptor's id), for the decisions the core makes about a named kind
 * (dead_letter: native and check_rabbitmq.c for RabbitMQ sources; redrive's stores for sinks).
 * A kind the core has no special case for (any kind added from now on) is TD_SOURCE_OTHER;
 * everything else about a kind is in its plugin's descriptor (sources/registry.c). */
enum td_source_kind {
    TD_SOURCE_REDIS,
    TD_SOURCE_KAFKA,
    TD_SOURCE_RABBITMQ,
    TD_SOURCE_HTTP,
    TD_SOURCE_OTHER
};

struct td_conf_kind;

/* A kind's settings block: item->settings as the plugin's own struct (its header says which). */
#define TD_SETTINGS(item, type) ((const type *)(item)->settings)

struct td_conf_source {
    char *name;
    enum td_source_kind kind;
    struct td_pos pos;
    int max_inflight;       /* messages read but not yet acked, default 1000 (backpressure) */
    int64_t stall_after_ms; /* readiness: work waiting, credit free, nothing taken this long
                             * (default 2 min; 0 = never reported) */
    /* The kind's settings: a block of plugin->size bytes the kind's key table filled, e.g. a
     * struct td_conf_redis_source (sources/redis_source.h). Owned; td_config_free frees it. */
    const struct td_conf_kind *plugin;
    void *settings;
};

/* ---- sinks ---- */
/* As enum td_source_kind: the kinds the core names; TD_SINK_OTHER for the rest. */
enum td_sink_kind {
    TD_SINK_HTTP,
    TD_SINK_OPENFAAS,
    TD_SINK_LAMBDA,
    TD_SINK_REDIS,
    TD_SINK_KAFKA,
    TD_SINK_RABBITMQ,
    TD_SINK_FILE,
    TD_SINK_OTHER
};

/* delivery.rate and sinks.NAME.rate (conf_keys_flow.c): a token bucket, broker/core/flow.h.
 * events == 0: no limit (the key was not written). */
struct td_conf_rate {
    int events;     /* tokens gained every per_ms, at least 1 when written */
    int64_t per_ms; /* default 1s */
    int burst; /* tokens held at most; default one second's worth (at least 1, at most events) */
};

struct td_conf_sink {
    char *name;
    enum td_sink_kind kind;
    struct td_pos pos;
    int64_t timeout_ms;       /* every kind's "timeout" key (TD_SINK_TIMEOUT); default 10s */
    struct td_conf_rate rate; /* shared by every trigger that delivers to this sink */
    /* As td_conf_source: e.g. a struct td_conf_http_sink (sinks/http_sink.h). Owned. */
    const struct td_conf_kind *plugin;
    void *settings;
};

/* ---- triggers ---- */
enum td_backoff { TD_BACKOFF_EXPONENTIAL, TD_BACKOFF_LINEAR };
enum td_ordering { TD_ORDER_UNORDERED, TD_ORDER_PARTITION, TD_ORDER_KEY };

/* delivery.batch (broker/core/batch.c): several events in one request. */
struct td_conf_batch {
    bool enabled;        /* batch: was written (the table's check sets it) */
    struct td_pos pos;   /* where batch: was written */
    int max_events;      /* default 100 */
    int64_t max_bytes;   /* of the encoded batch, default 1MiB */
    int64_t max_wait_ms; /* after the first event joined, default 50ms */
};

struct td_conf_delivery {
    int retry;                  /* retries after the first attempt, default 3 */
    enum td_backoff backoff;    /* default exponential */
    int64_t backoff_delay_ms;   /* default 200ms */
    int64_t backoff_max_ms;     /* cap of one wait, default 30s */
    int64_t timeout_ms;         /* per attempt; 0 = the sink's timeout */
    int64_t retry_after_max_ms; /* cap on a Retry-After, default 60s */
    enum td_ordering ordering;
    struct td_pos ordering_pos; /* where ordering: was written (line 0: not written) */
    int concurrency; /* in-flight attempts at most (concurrency: N or {max: N}), default 64 */
    bool concurrency_adaptive; /* {adaptive: true}: AIMD below that (broker/core/flow.h) */
    struct td_conf_rate rate;  /* per trigger */
    char *dead_letter;         /* sink name, or NULL */
    struct td_pos dead_letter_pos;
    int *retry_on; /* if set: exactly these HTTP statuses are retryable */
    size_t nretry_on;
    struct td_conf_batch batch;
};

struct td_conf_trigger {
    char *name;
    struct td_pos pos;
    char *source;
    struct td_pos source_pos;
    char *sink;
    struct td_pos sink_pos;
    char *reply; /* sink name or NULL */
    struct td_pos reply_pos;
    char *event_type;            /* event: {type} used when the message is not a CloudEvent */
    char *event_source;          /* event: {source} */
    struct td_kv_list event_set; /* event: {set: {attr: value}} applied to every event */
    struct td_filter *filter;    /* all of filters: + filter:, or NULL (match all); owned */
    char *schema;
    struct td_conf_delivery delivery;
};

struct td_config {
    char **files; /* every file read, owns the strings td_pos.file points to */
    size_t nfiles;
    int version;
    struct td_conf_daemon daemon;
    struct td_conf_source *sources;
    size_t nsources;
    struct td_conf_sink *sinks;
    size_t nsinks;
    struct td_conf_trigger *triggers;
    size_t ntriggers;
};

/* Loads PATH (a file, or a directory whose *.yaml and *.yml files are read in name order and
 * merged). Returns a config the caller frees with td_config_free(), or NULL with every error
 * appended to errs (the caller clears errs). */
struct td_config *td_config_load(const char *path, struct td_errors *errs);
void td_config_free(struct td_config *cfg);

/* Parses "250ms", "10s", "5m", "1h", "1.5s"; a bare number is seconds. Returns 0 and fills
 * *ms, or -1. */
int td_parse_duration(const char *s, int64_t *ms);
/* Parses "512", "64KiB", "1MiB", "1GiB", "1KB", "1MB". Returns 0 and fills *bytes, or -1. */
int td_parse_size(const char *s, int64_t *bytes);
/* Expands ${VAR}, ${file:/path} and ${credential:NAME} ($CREDENTIALS_DIRECTORY/NAME, from
 * systemd LoadCredential=) in s (file contents with one trailing newline removed).
 * "$${" is a literal "${". Returns a malloc'd string the caller frees, or NULL with a
 * message in err. *secret is set when anything was substituted. */
char *td_interpolate(const char *s, bool *secret, char *err, size_t errlen);

/* Whether two sources' (or two sinks') kind settings are the same: the same kind, and every
 * key of its table (nested tables, lists, maps) equal, through the kind's table, so a key a
 * plugin adds is compared without more code. The keys every kind has are the caller's. */
bool td_config_same_settings(const struct td_conf_kind *ka, const void *a,
                             const struct td_conf_kind *kb, const void *b);

const struct td_conf_source *td_config_source(const struct td_config *cfg, const char *name);
const struct td_conf_sink *td_config_sink(const struct td_config *cfg, const char *name);

#endif
