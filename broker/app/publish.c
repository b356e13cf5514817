/* publish.c - `triggerd publish` (see publish.h). Redis streams for now; Kafka and AMQP join
 * with their sinks. */
#include "publish.h"

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#include "ce_internal.h"
#include "ce_kafka.h"
#include "ce_redis.h"
#include "cloudevent.h"
#include "config.h"
#include "kafka_log.h"
#include "kafka_security.h"
#include "kafka_sink.h"
#include "kafka_source.h"
#include "loop.h"
#include "redis_conn.h"
#include "redis_util.h"
#include "retry.h"
#include "tls_file.h"

static const char usage[] =
    "usage: triggerd publish URL [--data D] [--key K] [--header K=V]...\n"
    "                        [--ce-type T --ce-source S --ce-id I] [--content-type CT]\n"
    "  URL                   redis[s]://[[USER]:PASSWORD@]HOST:PORT/[DB/]STREAM\n"
    "                        kafka://HOST:PORT[,HOST:PORT...]/TOPIC\n"
    "                        amqp[s]://USER:PASS@HOST:PORT/VHOST/EXCHANGE?routing_key=K\n"
    "                        (VHOST %2f is \"/\"; an empty EXCHANGE is the default exchange)\n"
    "  -d, --data D          the payload (default: read stdin)\n"
    "  -k, --key K           the partition key (CloudEvent: partitionkey)\n"
    "  -H, --header K=V      an extra field (CloudEvent: an extension attribute ce_K)\n"
    "  --ce-type T, --ce-source S, --ce-id I\n"
    "                        publish a CloudEvent in binary mode (any one of them switches it\n"
    "                        on; the others default to dev.triggerd.publish, /triggerd/publish\n"
    "                        and a random id)\n"
    "  --content-type CT     the data's media type (datacontenttype; by default\n"
    "                        application/json, text/plain or application/octet-stream\n"
    "                        from what the data is)\n"
    "  -c, --config FILE --from NAME\n"
    "                        Kafka: connect as the Kafka source or sink NAME of the trigger\n"
    "                        file FILE does (its tls:, sasl: and properties:)\n"
    "  -X, --property K=V    Kafka: a librdkafka property (after --from's; may repeat)\n"
    "Prints the id of the new entry (Kafka: TOPIC/PARTITION/OFFSET). For Kafka, --header K=V\n"
    "is a record header (CloudEvent: ce_K) and --key the record key.\n"
    "rediss:// (Redis over TLS) takes, as a Redis url's tls: block does:\n"
    "  --tls-ca FILE         the CA bundle to verify the server with (default: the system's)\n"
    "  --tls-cert FILE, --tls-key FILE\n"
    "                        a client certificate and its key (tls-auth-clients)\n"
    "  --tls-server-name N   the name to send (SNI) and verify (default: HOST)\n"
    "  --tls-insecure-skip-verify\n"
    "                        do not verify the server at all (tests only)\n"
    "  -h, --help            print this help\n";

/* The URL schemes td_publish_main dispatches on, in the words of its error message: keep both
 * in step (tests/integration/test_cli.py checks every one is accepted and listed). */
static const char *const schemes[] = {"redis://", "rediss://", "kafka://", "amqp://", "amqps://"};
#define NSCHEMES (sizeof(schemes) / sizeof(schemes[0]))

static bool known_scheme(const char *url)
{
    for (size_t i = 0; i < NSCHEMES; i++) {
        if (strncmp(url, schemes[i], strlen(schemes[i])) == 0) {
            return true;
        }
    }
    return false;
}

struct pub {
    const char *url;
    char *data;
    size_t len;
    const char *key;
    const char *ce_type, *ce_source, *ce_id;
    const char *content_type;
    const char **headers; /* "K=V" */
    size_t nheaders;
    const char *config, *from; /* Kafka: the trigger file and the source or sink to connect as */
    const char **props;        /* Kafka: "K=V" librdkafka properties (-X) */
    size_t nprops;
    struct td_redis_tls tls; /* rediss:// (--tls-*); the strings are argv's */
};

static char *read_stdin(size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) {
            break;
        }
        if (n == cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                return NULL;
            }
            buf = b;
            cap *= 2;
        }
    }
    *len = n;
    return buf;
}

static struct td_event *build_event(const struct pub *p)
{
    struct td_event *ev = td_event_new();
    if (!ev) {
        return NULL;
    }
    char id[40], now[32];
    if (!p->ce_id) {
        snprintf(id, sizeof(id), "%016llx%016llx", (unsigned long long)td_random(),
                 (unsigned long long)td_random());
    }
    td_format_time_ms(td_wall_ms(), now);
    int rc = td_event_set(ev, "specversion", "1.0");
    rc |= td_event_set(ev, "id", p->ce_id ? p->ce_id : id);
    rc |= td_event_set(ev, "type", p->ce_type ? p->ce_type : "dev.triggerd.publish");
    rc |= td_event_set(ev, "source", p->ce_source ? p->ce_source : "/triggerd/publish");
    rc |= td_event_set(ev, "time", now);
    /* Without --content-type, say what the bytes are, as a function would expect. */
    const char *ct = p->content_type;
    if (!ct) {
        cJSON *json = cJSON_ParseWithLength(p->data, p->len);
        ct = json ? "application/json"
             : td_ce_utf8_valid((const unsigned char *)p->data, p->len)
                 ? "text/plain; charset=utf-8"
                 : "application/octet-stream";
        cJSON_Delete(json);
    }
    rc |= td_event_set(ev, "datacontenttype", ct);
    if (p->key) {
        rc |= td_event_set(ev, "partitionkey", p->key);
    }
    for (size_t i = 0; i < p->nheaders; i++) {
        /* The whole name: a shortened one would set another attribute than the one asked
         * for, and one past the cap must fail validation below, not be cut to fit. */
        const char *eq = strchr(p->headers[i], '=');
        char *name = strndup(p->headers[i], (size_t)(eq - p->headers[i]));
        rc |= name ? td_event_set(ev, name, eq + 1) : -1;
        free(name);
    }
    rc |= td_event_set_data(ev, p->data, p->len);
    char err[256];
    if (rc != 0 || td_event_validate(ev, err, sizeof(err)) < 0) {
        fprintf(stderr, "triggerd publish: not a valid CloudEvent: %s\n",
                rc ? "out of memory" : err);
        td_event_unref(ev);
        return NULL;
    }
    return ev;
}

static int publish_redis(const struct pub *p)
{
    struct td_redis_addr addr;
    char err[256];
    int rc = 1;
    struct td_rconn *c = NULL;
    redisReply *r = NULL;
    struct td_redis_fields f = {0};
    const char **argv = NULL;
    size_t *lens = NULL;
    if (td_redis_addr_parse(p->url, &addr, err, sizeof(err)) < 0) {
        fprintf(stderr, "triggerd publish: %s\n", err);
        return 2;
    }
    const char *files[] = {p->tls.ca_file, p->tls.cert_file, p->tls.key_file};
    static const char *const flags[] = {"--tls-ca", "--tls-cert", "--tls-key"};
    static const enum td_tls_file_kind kinds[] = {TD_TLS_CA, TD_TLS_CERT, TD_TLS_KEY};
    for (int i = 0; i < 3; i++) {
        if (files[i] && td_tls_file_check(files[i], kinds[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "triggerd publish: %s %s\n", flags[i], err);
            rc = 2;
            goto out;
        }
    }
    if (!p->tls.cert_file != !p->tls.key_file) {
        fprintf(stderr, "triggerd publish: --tls-cert and --tls-key go together\n");
        rc = 2;
        goto out;
    }
    /* The path is STREAM, or DB/STREAM when it starts with a number; a stream's name may hold
     * a '/' (orders/eu is that stream, not database "orders" and stream "eu"). */
    int db = 0;
    const char *stream = addr.path;
    const char *slash = strchr(addr.path, '/');
    if (slash && slash > addr.path &&
        strspn(addr.path, "0123456789") == (size_t)(slash - addr.path)) {
        db = atoi(addr.path);
        stream = slash + 1;
    }
    if (!*stream) {
        fprintf(stderr, "triggerd publish: the URL names no stream\n");
        rc = 2;
        goto out;
    }
    bool ce = p->ce_type || p->ce_source || p->ce_id;
    if (ce) {
        struct td_event *ev = build_event(p);
        if (!ev) {
            goto out;
        }
        int erc = td_ce_to_redis(ev, &f);
        td_event_unref(ev);
        if (erc < 0) {
            goto out;
        }
    }
    size_t n = ce ? f.n : 2 * (1 + p->nheaders + (p->key ? 1 : 0) + (p->content_type ? 1 : 0));
    argv = calloc(n + 3, sizeof(*argv));
    lens = calloc(n + 3, sizeof(*lens));
    if (!argv || !lens) {
        goto out;
    }
    size_t argc = 0;
    argv[argc] = "XADD";
    lens[argc++] = 4;
    argv[argc] = stream;
    lens[argc++] = strlen(stream);
    argv[argc] = "*";
    lens[argc++] = 1;
    if (ce) {
        for (size_t i = 0; i < f.n; i++) {
            argv[argc] = f.argv[i];
            lens[argc++] = f.lens[i];
        }
    } else {
        for (size_t i = 0; i < p->nheaders; i++) {
            const char *eq = strchr(p->headers[i], '=');
            argv[argc] = p->headers[i];
            lens[argc++] = (size_t)(eq - p->headers[i]);
            argv[argc] = eq + 1;
            lens[argc++] = strlen(eq + 1);
        }
        if (p->key) {
            argv[argc] = "key";
            lens[argc++] = 3;
            argv[argc] = p->key;
            lens[argc++] = strlen(p->key);
        }
        if (p->content_type) {
            argv[argc] = "content-type";
            lens[argc++] = 12;
            argv[argc] = p->content_type;
            lens[argc++] = strlen(p->content_type);
        }
        argv[argc] = "data";
        lens[argc++] = 4;
        argv[argc] = p->data;
        lens[argc++] = p->len;
    }
    signal(SIGPIPE, SIG_IGN); /* a server that hangs up is an error message, not a signal */
    c = td_redis_open(&addr, addr.tls ? &p->tls : NULL, db, 5000, -1, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "triggerd publish: %s\n", err);
        goto out;
    }
    r = td_rconn_command_argv(c, 5000, (int)argc, argv, lens);
    if (!r || r->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "triggerd publish: XADD failed: %s\n",
                r ? (r->str ? r->str : "unexpected reply") : td_rconn_error(c));
        goto out;
    }
    printf("%s\n", r->str);
    rc = 0;
out:
    if (r) {
        freeReplyObject(r);
    }
    td_rconn_free(c);
    free(argv);
    free(lens);
    td_redis_fields_free(&f);
    td_redis_addr_free(&addr);
    return rc;
}

/* The delivery report of the one record publish_kafka produces. */
struct kafka_result {
    bool done;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
};

static void publish_dr(rd_kafka_t *rk, const rd_kafka_message_t *rm, void *opaque)
{
    struct kafka_result *res = rm->_private;
    res->done = true;
    res->err = rm->err;
    res->partition = rm->partition;
    res->offset = rm->offset;
}

/* kafka://BROKERS/TOPIC: one record, idempotent and acks=all, waited for. */
/* librdkafka's threads: its lines in our format, not raw "%3|..." on the terminal. */
static void publish_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    td_kafka_log(level, TD_LOG_ERROR, NULL, "triggerd publish", fac, buf);
}

/* The Kafka settings (security, properties) of source or sink NAME in the trigger file PATH,
 * applied to KC as that source or sink applies them. Returns the loaded file (the caller frees
 * it after rd_kafka_new) with *SECP in it, or NULL after saying why. */
static struct td_config *kafka_settings_from(rd_kafka_conf_t *kc, const char *path,
                                             const char *name,
                                             const struct td_kafka_security **secp)
{
    struct td_errors errs = {0};
    char err[512];
    struct td_config *cfg = td_config_load(path, &errs);
    if (!cfg) {
        for (size_t i = 0; i < errs.n; i++) {
            fprintf(stderr, "%s\n", errs.msgs[i]);
        }
        td_errors_clear(&errs);
        return NULL;
    }
    const struct td_conf_source *src = td_config_source(cfg, name);
    const struct td_conf_sink *snk = td_config_sink(cfg, name);
    const struct td_kafka_security *sec = NULL;
    const struct td_kv_list *props = NULL;
    if (snk && snk->kind == TD_SINK_KAFKA) {
        sec = &TD_SETTINGS(snk, struct td_conf_kafka_sink)->sec;
        props = &TD_SETTINGS(snk, struct td_conf_kafka_sink)->properties;
    } else if (src && src->kind == TD_SOURCE_KAFKA) {
        sec = &TD_SETTINGS(src, struct td_conf_kafka_source)->sec;
        props = &TD_SETTINGS(src, struct td_conf_kafka_source)->properties;
    } else {
        fprintf(stderr, "triggerd publish: no Kafka source or sink named '%s' in %s\n", name, path);
        goto out;
    }
    if (td_kafka_security_files_ok(sec, name, err, sizeof(err)) < 0 ||
        td_kafka_security_apply(kc, sec, name, err, sizeof(err)) < 0) {
        fprintf(stderr, "triggerd publish: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < props->n; i++) {
        if (rd_kafka_conf_set(kc, props->items[i].key, props->items[i].value, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK) {
            /* the value may be a secret: name the property only */
            fprintf(stderr, "triggerd publish: %s: property '%s' refused\n", name,
                    props->items[i].key);
            goto out;
        }
    }
    *secp = sec;
    return cfg;
out:
    td_config_free(cfg);
    return NULL;
}

static int publish_kafka(const struct pub *p)
{
    char err[512];
    int rc = 1;
    char *brokers = strdup(p->url + 8);
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_t *kc = NULL;
    rd_kafka_headers_t *hdrs = NULL;
    struct td_kafka_headers h = {0};
    struct td_event *ev = NULL;
    struct kafka_result res = {0};
    struct td_config *cfg = NULL;               /* --config, while the producer is made */
    const struct td_kafka_security *sec = NULL; /* in cfg */
    char *slash = brokers ? strchr(brokers, '/') : NULL;
    if (!slash || slash == brokers || !slash[1]) {
        fprintf(stderr, "triggerd publish: want kafka://HOST:PORT/TOPIC, got '%s'\n", p->url);
        rc = 2;
        goto out;
    }
    *slash = '\0';
    const char *topic = slash + 1;
    kc = rd_kafka_conf_new();
    if (!kc || rd_kafka_conf_set(kc, "bootstrap.servers", brokers, err, sizeof(err)) ||
        rd_kafka_conf_set(kc, "enable.idempotence", "true", err, sizeof(err)) ||
        rd_kafka_conf_set(kc, "acks", "all", err, sizeof(err)) ||
        rd_kafka_conf_set(kc, "message.timeout.ms", "15000", err, sizeof(err))) {
        fprintf(stderr, "triggerd publish: %s\n", kc ? err : "out of memory");
        goto out;
    }
    if (p->from && !(cfg = kafka_settings_from(kc, p->config, p->from, &sec))) {
        goto out;
    }
    for (size_t i = 0; i < p->nprops; i++) {
        const char *eq = strchr(p->props[i], '=');
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - p->props[i]), p->props[i]);
        if (rd_kafka_conf_set(kc, name, eq + 1, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "triggerd publish: property '%s' refused\n", name);
            goto out;
        }
    }
    /* What "written" means here; not overridable. */
    if (rd_kafka_conf_set(kc, "enable.idempotence", "true", err, sizeof(err)) ||
        rd_kafka_conf_set(kc, "acks", "all", err, sizeof(err))) {
        fprintf(stderr, "triggerd publish: %s\n", err);
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(kc, publish_dr);
    rd_kafka_conf_set_log_cb(kc, publish_log);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "triggerd publish: %s\n", err);
        goto out;
    }
    kc = NULL;
    if (sec && td_kafka_security_started(rk, sec, p->from, err, sizeof(err)) < 0) {
        fprintf(stderr, "triggerd publish: %s\n", err);
        goto out;
    }
    bool ce = p->ce_type || p->ce_source || p->ce_id;
    const char *key = p->key;
    const void *value = p->data;
    size_t len = p->len;
    if (ce) {
        ev = build_event(p);
        if (!ev || td_ce_to_kafka(ev, &h) < 0) {
            goto out;
        }
        value = ev->data;
        len = ev->data ? ev->data_len : 0;
    }
    hdrs = rd_kafka_headers_new(ce ? h.n : p->nheaders);
    if (!hdrs) {
        goto out;
    }
    if (ce) {
        for (size_t i = 0; i < h.n; i++) {
            rd_kafka_header_add(hdrs, h.names[i], -1, h.values[i], -1);
        }
    } else {
        for (size_t i = 0; i < p->nheaders; i++) {
            const char *eq = strchr(p->headers[i], '=');
            rd_kafka_header_add(hdrs, p->headers[i], eq - p->headers[i], eq + 1, -1);
        }
        if (p->content_type) {
            rd_kafka_header_add(hdrs, "content-type", -1, p->content_type, -1);
        }
    }
    rd_kafka_resp_err_t perr = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(&res), RD_KAFKA_V_END);
    if (perr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "triggerd publish: %s\n", rd_kafka_err2str(perr));
        goto out;
    }
    hdrs = NULL; /* the producer took them */
    rd_kafka_flush(rk, 20000);
    if (!res.done || res.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "triggerd publish: not written: %s\n",
                res.done ? rd_kafka_err2str(res.err) : "no delivery report");
        goto out;
    }
    printf("%s/%d/%lld\n", topic, (int)res.partition, (long long)res.offset);
    rc = 0;
out:
    if (hdrs) {
        rd_kafka_headers_destroy(hdrs);
    }
    if (kc) {
        rd_kafka_conf_destroy(kc);
    }
    if (rk) {
        rd_kafka_destroy(rk);
    }
    td_kafka_headers_free(&h);
    td_event_unref(ev);
    td_config_free(cfg);
    free(brokers);
    return rc;
}

int td_publish_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"key", required_argument, NULL, 'k'},
        {"header", required_argument, NULL, 'H'},
        {"ce-type", required_argument, NULL, 't'},
        {"ce-source", required_argument, NULL, 's'},
        {"ce-id", required_argument, NULL, 'i'},
        {"content-type", required_argument, NULL, 'C'},
        {"config", required_argument, NULL, 'c'},
        {"from", required_argument, NULL, 'F'},
        {"property", required_argument, NULL, 'X'},
        {"help", no_argument, NULL, 'h'},
        {"tls-ca", required_argument, NULL, 256},
        {"tls-cert", required_argument, NULL, 257},
        {"tls-key", required_argument, NULL, 258},
        {"tls-server-name", required_argument, NULL, 259},
        {"tls-insecure-skip-verify", no_argument, NULL, 260},
        {NULL, 0, NULL, 0},
    };
    struct pub p = {0};
    const char *data = NULL;
    int rc = 2;
    p.headers = calloc((size_t)argc + 1, sizeof(*p.headers));
    p.props = calloc((size_t)argc + 1, sizeof(*p.props));
    if (!p.headers || !p.props) {
        free(p.headers);
        free(p.props);
        return 1;
    }
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:k:H:c:X:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            p.config = optarg;
            break;
        case 'F':
            p.from = optarg;
            break;
        case 'X':
            if (!strchr(optarg, '=') || optarg[0] == '=') {
                fprintf(stderr, "triggerd publish: --property wants K=V, got '%s'\n", optarg);
                goto out;
            }
            p.props[p.nprops++] = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'k':
            p.key = optarg;
            break;
        case 'H':
            if (!strchr(optarg, '=') || optarg[0] == '=') {
                fprintf(stderr, "triggerd publish: --header wants K=V, got '%s'\n", optarg);
                goto out;
            }
            p.headers[p.nheaders++] = optarg;
            break;
        case 't':
            p.ce_type = optarg;
            break;
        case 's':
            p.ce_source = optarg;
            break;
        case 'i':
            p.ce_id = optarg;
            break;
        case 'C':
            p.content_type = optarg;
            break;
        case 256:
            p.tls.ca_file = optarg;
            break;
        case 257:
            p.tls.cert_file = optarg;
            break;
        case 258:
            p.tls.key_file = optarg;
            break;
        case 259:
            p.tls.server_name = optarg;
            break;
        case 260:
            p.tls.insecure_skip_verify = true;
            break;
        case 'h':
            fputs(usage, stdout);
            rc = 0;
            goto out;
        default:
            fputs(usage, stderr);
            goto out;
        }
    }
    if (optind != argc - 1) {
        fputs(usage, stderr);
        goto out;
    }
    p.url = argv[optind];
    if (!p.config != !p.from) {
        fprintf(stderr, "triggerd publish: --config and --from go together\n");
        goto out;
    }
    if ((p.from || p.nprops) && strncmp(p.url, "kafka://", 8) != 0) {
        fprintf(stderr, "triggerd publish: --from and --property are for kafka:// URLs\n");
        goto out;
    }
    /* Before reading stdin: a wrong URL must not leave the user waiting for input. */
    if (!known_scheme(p.url)) {
        fprintf(stderr, "triggerd publish: unsupported URL scheme in '%s' (this build:", p.url);
        for (size_t i = 0; i < NSCHEMES; i++) {
            fprintf(stderr, "%s %s", i ? "," : "", schemes[i]);
        }
        fputs(")\n", stderr);
        goto out;
    }
    if (data) {
        p.data = strdup(data);
        p.len = strlen(data);
    } else {
        p.data = read_stdin(&p.len);
    }
    if (!p.data) {
        rc = 1;
        goto out;
    }
    if (strncmp(p.url, "redis://", 8) == 0 || strncmp(p.url, "rediss://", 9) == 0) {
        rc = publish_redis(&p);
    } else if (strncmp(p.url, "kafka://", 8) == 0) {
        rc = publish_kafka(&p);
    } else if (strncmp(p.url, "amqp://", 7) == 0 || strncmp(p.url, "amqps://", 8) == 0) {
        struct td_event *ev = NULL;
        if ((p.ce_type || p.ce_source || p.ce_id) && !(ev = build_event(&p))) {
            rc = 1;
            goto out;
        }
        rc =
            td_publish_amqp(p.url, ev, p.data, p.len, p.key, p.content_type, p.headers, p.nheaders);
        td_event_unref(ev);
    }
out:
    free(p.data);
    free(p.headers);
    free(p.props);
    return rc;
}
