/* config.h - the typed trigger-file configuration.
 *
 * td_config_load() turns one YAML file, or a directory of *.yaml / *.yml files, into the
 * structures below. Every key the user can write is listed, with its default, in a table in
 * conf_keys_*.c (config_internal.h has the map of the loader); an
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
};

/* ---- sources ---- */
enum td_source_kind { TD_SOURCE_REDIS, TD_SOURCE_KAFKA, TD_SOURCE_RABBITMQ, TD_SOURCE_HTTP };

struct td_conf_redis_source {
    char *url; /* redis://[user:password@]host[:port][/db] */
    char *stream;
    char *group;           /* default "triggerd" */
    char *consumer;        /* default: the host name */
    char *start;           /* "earliest" (0) | "latest" ($), used when the group is created */
    int64_t claim_idle_ms; /* default 60s; 0 disables the reaper */
    int max_deliveries;    /* default 10; 0 = unlimited */
    int batch;             /* entries per XREADGROUP, default 100 */
    int64_t block_ms;      /* XREADGROUP BLOCK, default 1000 */
};

struct td_conf_kafka_source {
    char *brokers;
    char **topics;
    size_t ntopics;
    char *group; /* default "triggerd" */
    char *start; /* earliest | latest, default earliest */
    struct td_kv_list properties;
};

/* Where the id of a wrapped RabbitMQ message without a message-id comes from (a stream queue's
 * x-stream-offset wins over both: unique and stable). */
enum td_amqp_id_from {
    TD_ID_FROM_BODY_HASH, /* sha256(queue, body): stable across redeliveries, equal bodies collide
                           */
    TD_ID_FROM_DELIVERY,  /* queue, connection token, delivery tag: unique, new on redelivery */
};

struct td_conf_rabbitmq_source {
    char *url;
    char *queue;
    int prefetch;                 /* default 100 */
    int heartbeat;                /* seconds (written as a duration, e.g. 30s), default 30 */
    int max_deliveries;           /* default 10; 0 = unlimited */
    int64_t consumer_timeout_ms;  /* the broker's consumer_timeout, default 30m; 0 = off */
    enum td_amqp_id_from id_from; /* default delivery */
    /* declare: {durable, arguments, exchange, exchange_type, bindings}, declared on connect */
    bool declare;
    bool declare_durable;                /* default true (queue and exchange) */
    struct td_kv_list declare_arguments; /* x-arguments; integers and true/false go typed */
    char *declare_exchange;              /* NULL: no exchange */
    char *declare_exchange_type;         /* direct | fanout | topic | headers, default direct */
    char **declare_bindings;             /* routing keys binding the queue to the exchange */
    size_t ndeclare_bindings;
};

struct td_conf_http_source {
    char *path;
    char *bearer;     /* secret */
    int64_t max_size; /* default 1MiB */
    /* auth: {jwt: {jwks_file, issuer, audience}}: bearer tokens verified against a JWKS */
    char *jwt_jwks_file, *jwt_jwks_url, *jwt_issuer, *jwt_audience;
    struct td_pos jwt_jwks_file_pos;
};

struct td_conf_source {
    char *name;
    enum td_source_kind kind;
    struct td_pos pos;
    int max_inflight;       /* messages read but not yet acked, default 1000 (backpressure) */
    int64_t stall_after_ms; /* readiness: work waiting, credit free, nothing taken this long
                             * (default 2 min; 0 = never reported) */
    struct td_conf_redis_source redis;
    struct td_conf_kafka_source kafka;
    struct td_conf_rabbitmq_source rabbitmq;
    struct td_conf_http_source http;
};

/* ---- sinks ---- */
enum td_sink_kind {
    TD_SINK_HTTP,
    TD_SINK_OPENFAAS,
    TD_SINK_LAMBDA,
    TD_SINK_REDIS,
    TD_SINK_KAFKA,
    TD_SINK_RABBITMQ,
    TD_SINK_FILE
};
enum td_http_mode { TD_MODE_BINARY, TD_MODE_STRUCTURED };

struct td_conf_auth {
    char *bearer;      /* secret */
    char *bearer_file; /* re-read when it changes */
    char *basic_user;
    char *basic_password; /* secret */
    char *google_audience;
    char *google_metadata_url;
    char *azure_function_key; /* secret */
    char *azure_key_in;       /* header (x-functions-key, the default) | query (?code=) */
    /* oauth2: {token_url, client_id, client_secret, scopes, audience}: client credentials */
    char *oauth2_token_url;
    char *oauth2_client_id;
    char *oauth2_client_secret; /* secret */
    char **oauth2_scopes;
    size_t oauth2_nscopes;
    char *oauth2_audience;
};

struct td_conf_http_sink {
    char *url;
    char *service_name;      /* service: {name, namespace, port} -> url */
    char *service_namespace; /* default "default" when service is given */
    int service_port;        /* default 80 */
    enum td_http_mode mode;
    int64_t timeout_ms; /* default 10s */
    struct td_kv_list headers;
    char *ca_file;
    char *client_cert;
    char *client_key;
    /* where the three were written (line 0: not written), for check's messages */
    struct td_pos ca_file_pos, client_cert_pos, client_key_pos;
    struct td_conf_auth auth;
};

struct td_conf_openfaas_sink {
    char *gateway;
    char *function;
    bool async;
    char *callback_url;
    struct td_conf_auth auth;
};

struct td_conf_lambda_sink {
    char *function;
    char *region;
    char *qualifier;
    char *invocation; /* RequestResponse | Event, default RequestResponse */
    char *payload;    /* event | data, default event */
    char *endpoint;
    char *access_key_id;
    char *secret_access_key; /* secret */
    char *session_token;     /* secret */
};

struct td_conf_redis_sink {
    char *url;
    char *stream;
    int64_t maxlen; /* 0: no trimming */
};

struct td_conf_kafka_sink {
    char *brokers;
    char *topic;
    struct td_kv_list properties;
};

struct td_conf_rabbitmq_sink {
    char *url;
    char *exchange;
    char *routing_key;
};

struct td_conf_file_sink {
    char *path;
};

struct td_conf_sink {
    char *name;
    enum td_sink_kind kind;
    struct td_pos pos;
    int64_t timeout_ms; /* kind-specific "timeout" key, copied here; default 10s */
    struct td_conf_http_sink http;
    struct td_conf_openfaas_sink openfaas;
    struct td_conf_lambda_sink lambda;
    struct td_conf_redis_sink redis;
    struct td_conf_kafka_sink kafka;
    struct td_conf_rabbitmq_sink rabbitmq;
    struct td_conf_file_sink file;
};

/* ---- triggers ---- */
enum td_backoff { TD_BACKOFF_EXPONENTIAL, TD_BACKOFF_LINEAR };
enum td_ordering { TD_ORDER_UNORDERED, TD_ORDER_PARTITION, TD_ORDER_KEY };

struct td_conf_delivery {
    int retry;                  /* retries after the first attempt, default 3 */
    enum td_backoff backoff;    /* default exponential */
    int64_t backoff_delay_ms;   /* default 200ms */
    int64_t backoff_max_ms;     /* cap of one wait, default 30s */
    int64_t timeout_ms;         /* per attempt; 0 = the sink's timeout */
    int64_t retry_after_max_ms; /* cap on a Retry-After, default 60s */
    enum td_ordering ordering;
    struct td_pos ordering_pos; /* where ordering: was written (line 0: not written) */
    int concurrency;            /* in-flight attempts, default 64 */
    char *dead_letter;          /* sink name, or NULL */
    struct td_pos dead_letter_pos;
    int *retry_on; /* if set: exactly these HTTP statuses are retryable */
    size_t nretry_on;
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

const struct td_conf_source *td_config_source(const struct td_config *cfg, const char *name);
const struct td_conf_sink *td_config_sink(const struct td_config *cfg, const char *name);

#endif
