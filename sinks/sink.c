/* sink.c - what every sink shares: attempt bookkeeping, HTTP classification, creating a
 * sink through its kind's descriptor (registry.c). */
#include "sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevent.h"
#include "loop.h"

void td_attempt_done(struct td_attempt *a, enum td_result r, int http_status,
                     int64_t retry_after_ms, const char *reason, const void *body, size_t len)
{
    a->result = r;
    a->http_status = http_status;
    a->retry_after_ms = retry_after_ms;
    /* A bounded copy, not snprintf: this runs for every attempt. */
    size_t rlen = reason ? strnlen(reason, sizeof(a->reason) - 1) : 0;
    memcpy(a->reason, reason ? reason : "", rlen);
    a->reason[rlen] = '\0';
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
    a->traceparent[0] = '\0';
    a->tracestate = NULL;
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

struct td_sink *td_sink_new(const struct td_conf_sink *conf, struct td_loop *loop,
                            struct td_http_client *http, char *err, size_t errlen)
{
    const struct td_sink_desc *desc = td_sink_desc_of(conf);
    if (!desc) {
        snprintf(err, errlen, "sink '%s': this kind of sink is not supported by this build yet",
                 conf->name);
        return NULL;
    }
    struct td_sink *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->desc = desc;
    k->conf = conf;
    k->name = conf->name;
    k->loop = loop;
    k->http = http;
    td_bucket_init(&k->rate, conf->rate.events, conf->rate.per_ms, conf->rate.burst, td_now_ms());
    if (desc->init(k, err, errlen) < 0) {
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

void td_sink_stop(struct td_sink *k)
{
    if (k && k->ops && k->ops->stop) {
        k->ops->stop(k);
    }
}

void td_sinks_stop(struct td_sink **sinks, size_t n)
{
    for (size_t i = 0; sinks && i < n; i++) {
        td_sink_stop(sinks[i]);
    }
}

bool td_sinks_stopped(struct td_sink **sinks, size_t n)
{
    bool all = true;
    for (size_t i = 0; sinks && i < n; i++) {
        struct td_sink *k = sinks[i];
        /* every one asked, not only up to the first still busy: each acts on its deadline */
        if (k && k->ops && k->ops->stopped && !k->ops->stopped(k)) {
            all = false;
        }
    }
    return all;
}

void td_sinks_free(struct td_sink **sinks, size_t n)
{
    td_sinks_stop(sinks, n);
    for (size_t i = 0; sinks && i < n; i++) {
        td_sink_free(sinks[i]);
    }
}
