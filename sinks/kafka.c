/* kafka.c - the Kafka sink: produces the event as a binary-mode CloudEvent (ce_ headers,
 * content-type, partitionkey as the record key, the data as the value). Used as a dead-letter
 * and reply target, or as a trigger's sink.
 *
 * Durability: an idempotent producer with acks=all, and an attempt succeeds only when its
 * delivery report says the record is written; so the source message is acknowledged only
 * after that. A failed report is retryable (dispatch retries; the producer has retried
 * within message.timeout.ms already).
 *
 * Never blocking the loop: producev only enqueues; librdkafka signals a pipe when its main
 * queue gets events (rd_kafka_queue_io_event_enable), the loop watches that pipe and serves
 * the delivery reports with rd_kafka_poll(rk, 0) on the loop thread. A slow timer polls too,
 * in case a wake-up edge is missed.
 *
 * Ownership: the attempt is the record's opaque; teardown purges what is queued and ignores
 * every report after destroy started (sink.h: attempts are abandoned without a callback).
 * Threads: loop only.
 */
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ce_kafka.h"
#include "cloudevent.h"
#include "conf_table.h"
#include "kafka_log.h"
#include "kafka_props.h"
#include "kafka_security.h"
#include "kafka_sink.h"
#include "log.h"
#include "loop.h"
#include "sink.h"

#define SAFETY_POLL_MS 500

struct kafka_sink {
    struct td_sink *k;
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    int pipefd[2];
    bool destroying;
    struct td_timer timer;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rm, void *opaque)
{
    struct kafka_sink *ks = opaque;
    struct td_attempt *a = rm->_private;
    if (ks->destroying || !a) {
        return;
    }
    if (rm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        char where[64];
        snprintf(where, sizeof(where), "written at %d/%lld", (int)rm->partition,
                 (long long)rm->offset);
        td_attempt_done(a, TD_RESULT_OK, 0, -1, where, NULL, 0);
    } else {
        char reason[160];
        snprintf(reason, sizeof(reason), "kafka: %s", rd_kafka_err2str(rm->err));
        /* A record too large, or a topic that does not exist with auto-creation off, will not
         * get better by retrying. */
        bool final = rm->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
                     rm->err == RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE ||
                     rm->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
        td_attempt_done(a, final ? TD_RESULT_FINAL : TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
    }
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    struct kafka_sink *ks = rd_kafka_opaque(rk);
    char what[160];
    snprintf(what, sizeof(what), "sink '%s'", ks->k->name);
    /* A warning at most: the producer retries on its own; a record it gives up on fails its
     * delivery, which dispatch logs. */
    td_kafka_log(level, TD_LOG_WARN, NULL, what, fac, buf);
}

static void serve(struct kafka_sink *ks)
{
    char buf[256];
    while (read(ks->pipefd[0], buf, sizeof(buf)) > 0) {
    }
    rd_kafka_poll(ks->rk, 0);
}

static void on_pipe(struct td_loop *loop, int fd, uint32_t events, void *arg)
{
    serve(arg);
}

static int64_t on_timer(struct td_loop *loop, void *arg)
{
    serve(arg);
    return SAFETY_POLL_MS;
}

static int deliver(struct td_sink *k, const struct td_event *ev, struct td_attempt *a)
{
    struct kafka_sink *ks = k->impl;
    struct td_kafka_headers h = {0};
    rd_kafka_headers_t *hdrs = NULL;
    if (td_ce_to_kafka(ev, &h) < 0) {
        snprintf(a->reason, sizeof(a->reason), "cannot encode the event for kafka");
        goto fail;
    }
    hdrs = rd_kafka_headers_new(h.n);
    if (!hdrs) {
        snprintf(a->reason, sizeof(a->reason), "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < h.n; i++) {
        rd_kafka_header_add(hdrs, h.names[i], -1, h.values[i], -1);
    }
    const char *key = td_event_get(ev, "partitionkey");
    rd_kafka_resp_err_t err = rd_kafka_producev(
        ks->rk, RD_KAFKA_V_TOPIC(TD_SETTINGS(k->conf, struct td_conf_kafka_sink)->topic),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE(ev->data, ev->data ? ev->data_len : 0),
        RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(a),
        RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* The producer takes the headers only when producev succeeds. */
        snprintf(a->reason, sizeof(a->reason), "kafka: %s", rd_kafka_err2str(err));
        goto fail;
    }
    td_kafka_headers_free(&h);
    a->sink_state = ks;
    return 0;
fail:
    if (hdrs) {
        rd_kafka_headers_destroy(hdrs);
    }
    td_kafka_headers_free(&h);
    return -1;
}

static void destroy(struct td_sink *k)
{
    struct kafka_sink *ks = k->impl;
    if (!ks) {
        return;
    }
    ks->destroying = true;
    if (k->loop) {
        td_timer_stop(k->loop, &ks->timer);
        if (ks->pipefd[0] >= 0) {
            td_loop_fd_del(k->loop, ks->pipefd[0]);
        }
    }
    if (ks->rk) {
        /* Give records already sent a moment to be confirmed (not needed for correctness: their
         * messages were not acknowledged), then drop the rest. */
        rd_kafka_flush(ks->rk, 2000);
        rd_kafka_purge(ks->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(ks->rk, 0);
    }
    if (ks->mainq) {
        rd_kafka_queue_destroy(ks->mainq);
    }
    if (ks->rk) {
        rd_kafka_destroy(ks->rk);
    }
    for (int i = 0; i < 2; i++) {
        if (ks->pipefd[i] >= 0) {
            close(ks->pipefd[i]);
        }
    }
    free(ks);
    k->impl = NULL;
}

static const struct td_sink_ops kafka_ops = {
    .name = "kafka",
    .deliver = deliver,
    .destroy = destroy,
};

static int set(rd_kafka_conf_t *conf, const char *key, const char *value, const char *name,
               char *err, size_t errlen)
{
    char why[256];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "sink '%s': property '%s': %s", name, key, why);
        return -1;
    }
    return 0;
}

static int kafka_init(struct td_sink *k, char *err, size_t errlen)
{
    const struct td_conf_kafka_sink *conf = k->conf->settings;
    rd_kafka_conf_t *kc = NULL;
    struct kafka_sink *ks = calloc(1, sizeof(*ks));
    if (!ks) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ks->k = k;
    ks->pipefd[0] = ks->pipefd[1] = -1;
    k->impl = ks;
    k->ops = &kafka_ops;
    td_timer_init(&ks->timer, on_timer, ks);
    if (!conf->brokers || !conf->topic) {
        snprintf(err, errlen, "sink '%s': kafka needs brokers and topic", k->name);
        goto fail;
    }
    kc = rd_kafka_conf_new();
    if (!kc || pipe2(ks->pipefd, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "sink '%s': out of memory or descriptors", k->name);
        goto fail;
    }
    char who[300];
    snprintf(who, sizeof(who), "sink '%s'", k->name);
    /* A wrong TLS file would fail every connection, each event as a retry and then a dead
     * letter: refuse to start instead (check reports it with its position). */
    if (td_kafka_security_files_ok(&conf->sec, who, err, errlen) < 0) {
        goto fail;
    }
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%lld", (long long)k->conf->timeout_ms);
    if (set(kc, "bootstrap.servers", conf->brokers, k->name, err, errlen) < 0 ||
        set(kc, "message.timeout.ms", timeout, k->name, err, errlen) < 0 ||
        set(kc, "linger.ms", "5", k->name, err, errlen) < 0 ||
        set(kc, "client.id", "triggerd", k->name, err, errlen) < 0 ||
        td_kafka_security_apply(kc, &conf->sec, who, err, errlen) < 0) {
        goto fail;
    }
    /* the user's properties after tls: and sasl:, so that an explicit one wins */
    for (size_t i = 0; i < conf->properties.n; i++) {
        if (set(kc, conf->properties.items[i].key, conf->properties.items[i].value, k->name, err,
                errlen) < 0) {
            goto fail;
        }
    }
    /* What "the record is written" means; not overridable. */
    if (set(kc, "enable.idempotence", "true", k->name, err, errlen) < 0 ||
        set(kc, "acks", "all", k->name, err, errlen) < 0) {
        goto fail;
    }
    rd_kafka_conf_set_opaque(kc, ks);
    rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
    rd_kafka_conf_set_log_cb(kc, log_cb);
    char why[512];
    ks->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof(why));
    if (!ks->rk) {
        snprintf(err, errlen, "sink '%s': %s", k->name, why);
        goto fail;
    }
    kc = NULL;
    if (td_kafka_security_started(ks->rk, &conf->sec, who, err, errlen) < 0) {
        goto fail;
    }
    ks->mainq = rd_kafka_queue_get_main(ks->rk);
    if (!ks->mainq) {
        snprintf(err, errlen, "sink '%s': no main queue", k->name);
        goto fail;
    }
    rd_kafka_queue_io_event_enable(ks->mainq, ks->pipefd[1], "1", 1);
    if (k->loop && (td_loop_fd_add(k->loop, ks->pipefd[0], EPOLLIN, on_pipe, ks) < 0 ||
                    td_timer_start(k->loop, &ks->timer, SAFETY_POLL_MS) < 0)) {
        snprintf(err, errlen, "sink '%s': cannot watch the producer", k->name);
        goto fail;
    }
    snprintf(k->dest, sizeof(k->dest), "kafka://%s/%s", conf->brokers, conf->topic);
    return 0;
fail:
    if (kc) {
        rd_kafka_conf_destroy(kc);
    }
    destroy(k);
    k->ops = NULL;
    return -1;
}

/* ---- settings: kafka: {brokers, topic, properties, tls, sasl, timeout} ---- */
#define OFF(f) offsetof(struct td_conf_kafka_sink, f)

static const struct td_conf_key kafka_sink_keys[] = {
    REQ_STR("brokers", OFF(brokers)),
    REQ_STR("topic", OFF(topic)),
    {.name = "properties", .type = TD_K_STRMAP, .off = OFF(properties)},
    NESTED("tls", OFF(sec.tls), &td_kafka_tls_table),
    NESTED("sasl", OFF(sec.sasl), &td_kafka_sasl_table),
    TD_QUEUE_SINK_TIMEOUT,
};
static int check_keys(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    return td_kafka_security_check_keys(ld, map, &((struct td_conf_kafka_sink *)base)->sec);
}

static const struct td_conf_table kafka_sink_table = {TABLE("kafka sink", kafka_sink_keys),
                                                      .check = check_keys};
#undef OFF

/* `check`: librdkafka must take every property, as at start; the TLS files must be usable. */
static void kafka_check(const struct td_conf_sink *k, struct td_errors *errs)
{
    const struct td_conf_kafka_sink *c = TD_SETTINGS(k, struct td_conf_kafka_sink);
    char who[300];
    snprintf(who, sizeof(who), "sink '%s'", k->name);
    td_kafka_check_properties(&c->properties, "sink", k->name, &k->pos, errs);
    td_kafka_security_check(&c->sec, who, &k->pos, errs);
}

static bool same_security(const void *a, const void *b)
{
    return td_kafka_security_same(&((const struct td_conf_kafka_sink *)a)->sec,
                                  &((const struct td_conf_kafka_sink *)b)->sec);
}

const struct td_sink_desc td_sink_kafka = {
    TD_SINK_KIND("kafka", TD_SINK_KAFKA, &kafka_sink_table, struct td_conf_kafka_sink),
    .conf.same = same_security, .check = kafka_check, .init = kafka_init};
