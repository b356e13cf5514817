/* sink.c - what every sink shares: attempt bookkeeping, HTTP classification, the plugin
 * table. */
#include "sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevent.h"

void td_attempt_done(struct td_attempt *a, enum td_result r, int http_status,
                     int64_t retry_after_ms, const char *reason, const void *body, size_t len)
{
    a->result = r;
    a->http_status = http_status;
    a->retry_after_ms = retry_after_ms;
    snprintf(a->reason, sizeof(a->reason), "%s", reason ? reason : "");
    free(a->body);
    a->body = NULL;
    a->body_len = 0;
    if (body && len > 0) {
        size_t n = len < TD_ATTEMPT_BODY_MAX ? len : TD_ATTEMPT_BODY_MAX;
        a->body = malloc(n);
        if (a->body) {
            memcpy(a->body, body, n);
            a->body_len = n;
        }
    }
    a->sink_state = NULL;
    a->done(a);
}

void td_attempt_reset(struct td_attempt *a)
{
    td_event_unref(a->reply);
    a->reply = NULL;
    free(a->body);
    a->body = NULL;
    a->body_len = 0;
    a->reason[0] = '\0';
    a->http_status = 0;
    a->retry_after_ms = -1;
}

enum td_result td_classify_http(int status, const int *retry_on, size_t nretry_on)
{
    if (status >= 200 && status < 300) {
        return TD_RESULT_OK;
    }
    if (retry_on && nretry_on > 0) {
        for (size_t i = 0; i < nretry_on; i++) {
            if (retry_on[i] == status) {
                return TD_RESULT_RETRY;
            }
        }
        return TD_RESULT_FINAL;
    }
    if (status == 408 || status == 429 || status >= 500 || status < 200) {
        return TD_RESULT_RETRY;
    }
    return TD_RESULT_FINAL;
}

static const char *const kind_names[] = {"http",  "openfaas", "lambda", "redis",
                                         "kafka", "rabbitmq", "file"};

struct td_sink *td_sink_new(const struct td_conf_sink *conf, struct td_loop *loop,
                            struct td_http_client *http, char *err, size_t errlen)
{
    struct td_sink *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->conf = conf;
    k->name = conf->name;
    k->loop = loop;
    int rc;
    switch (conf->kind) {
    case TD_SINK_HTTP:
        rc = td_sink_http_init(k, http, err, errlen);
        break;
    case TD_SINK_REDIS:
        rc = td_sink_redis_init(k, err, errlen);
        break;
    case TD_SINK_FILE:
        rc = td_sink_file_init(k, err, errlen);
        break;
    case TD_SINK_RABBITMQ:
        rc = td_sink_rabbitmq_init(k, err, errlen);
        break;
    case TD_SINK_KAFKA:
        rc = td_sink_kafka_init(k, err, errlen);
        break;
    case TD_SINK_OPENFAAS:
        rc = td_sink_openfaas_init(k, http, err, errlen);
        break;
    case TD_SINK_LAMBDA:
        rc = td_sink_lambda_init(k, http, err, errlen);
        break;
    default:
        snprintf(err, errlen, "sink '%s': %s sinks are not supported by this build yet", conf->name,
                 (size_t)conf->kind < sizeof(kind_names) / sizeof(kind_names[0])
                     ? kind_names[conf->kind]
                     : "these");
        rc = -1;
        break;
    }
    if (rc < 0) {
        free(k);
        return NULL;
    }
    return k;
}

void td_sink_free(struct td_sink *k)
{
    if (!k) {
        return;
    }
    if (k->ops && k->ops->destroy) {
        k->ops->destroy(k);
    }
    free(k);
}
