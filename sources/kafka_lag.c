/* kafka_lag.c - committed-offset lag per partition, from the brokers' point of view (see
 * kafka_lag.h), asked through the consumer's own handle. The thread sleeps on a condition variable
 * between rounds so stop wakes it at once; a round in progress checks between requests and finishes
 * only the current one (each bounded by REQUEST_MS), so stopping waits at most about REQUEST_MS. */
#include "kafka_lag.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define REQUEST_MS 3000 /* metadata, committed offsets, watermarks: each waits at most this */

const struct td_lag_family td_kafka_lag_families[] = {
    {"triggerd_kafka_consumergroup_lag",
     "Records between the consumer group's committed offset and the high watermark, per "
     "partition of the source's topics, as the brokers report them."},
    {NULL, NULL},
};

struct td_kafka_lag {
    struct td_source *src;
    const struct td_conf_kafka_source *conf;
    rd_kafka_t *rk; /* the consumer's, borrowed */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop; /* under mu */
    char last_error[256];
};

/* Logs a failed round once per distinct reason (at info: the consumer warns about the broker). */
static void report(struct td_kafka_lag *kl, const char *what)
{
    if (strcmp(kl->last_error, what) != 0) {
        td_log_info(NULL, kl->src->name, NULL, "consumer group lag unknown: %s", what);
        snprintf(kl->last_error, sizeof(kl->last_error), "%s", what);
    }
}

static bool stopping(struct td_kafka_lag *kl)
{
    pthread_mutex_lock(&kl->mu);
    bool stop = kl->stop;
    pthread_mutex_unlock(&kl->mu);
    return stop;
}

/* Every partition of the source's topics, from the brokers' metadata. The request names no
 * topic handle (all_topics, filtered here): a topic handle made and dropped every round is
 * freed by librdkafka's main thread while a broker thread may still read it (ThreadSanitizer
 * reports it), and this client must not keep handles that would look like a subscription
 * either. NULL with the reason in err. */
static rd_kafka_topic_partition_list_t *partitions(struct td_kafka_lag *kl, char *err,
                                                   size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(kl->rk, 1, NULL, &md, REQUEST_MS);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "metadata: %s", rd_kafka_err2str(e));
        return NULL;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    for (size_t i = 0; list && i < kl->conf->ntopics; i++) {
        const struct rd_kafka_metadata_topic *t = NULL;
        for (int k = 0; k < md->topic_cnt && !t; k++) {
            if (strcmp(md->topics[k].topic, kl->conf->topics[i]) == 0) {
                t = &md->topics[k];
            }
        }
        if (!t || t->err) {
            snprintf(err, errlen, "metadata of '%s': %s", kl->conf->topics[i],
                     rd_kafka_err2str(t ? t->err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
            rd_kafka_topic_partition_list_destroy(list);
            rd_kafka_metadata_destroy(md);
            return NULL;
        }
        for (int k = 0; k < t->partition_cnt; k++) {
            rd_kafka_topic_partition_list_add(list, t->topic, t->partitions[k].id);
        }
    }
    rd_kafka_metadata_destroy(md);
    if (!list) {
        snprintf(err, errlen, "out of memory");
    }
    return list;
}

static int sample(struct td_lag_sample *s, const char *group, const char *topic, int32_t partition,
                  long long value)
{
    char num[16];
    snprintf(num, sizeof(num), "%d", (int)partition);
    s->family = td_kafka_lag_families[0].name;
    s->key[0] = "group";
    s->key[1] = "topic";
    s->key[2] = "partition";
    s->val[0] = strdup(group);
    s->val[1] = strdup(topic);
    s->val[2] = strdup(num);
    s->value = value;
    return s->val[0] && s->val[1] && s->val[2] ? 0 : -1;
}

/* One round: partitions, the group's committed offsets, each partition's watermarks. */
static void round_once(struct td_kafka_lag *kl)
{
    char err[300];
    rd_kafka_topic_partition_list_t *list = partitions(kl, err, sizeof(err));
    if (!list) {
        report(kl, err);
        td_source_set_lag(kl->src, NULL, 0, -1);
        return;
    }
    if (stopping(kl)) {
        rd_kafka_topic_partition_list_destroy(list);
        return;
    }
    rd_kafka_resp_err_t e = rd_kafka_committed(kl->rk, list, REQUEST_MS);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, sizeof(err), "committed offsets: %s", rd_kafka_err2str(e));
        report(kl, err);
        td_source_set_lag(kl->src, NULL, 0, -1);
        rd_kafka_topic_partition_list_destroy(list);
        return;
    }
    struct td_lag_sample *s = calloc((size_t)list->cnt + 1, sizeof(*s));
    size_t n = 0;
    long long total = 0;
    bool earliest = strcmp(kl->conf->start, "earliest") == 0;
    for (int i = 0; s && i < list->cnt && !stopping(kl); i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        int64_t lo = 0, hi = 0;
        e = tp->err ? tp->err
                    : rd_kafka_query_watermark_offsets(kl->rk, tp->topic, tp->partition, &lo, &hi,
                                                       REQUEST_MS);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, sizeof(err), "%s [%d]: %s", tp->topic, (int)tp->partition,
                     rd_kafka_err2str(e));
            report(kl, err);
            total = -1; /* a partition unknown: the sum is too */
            continue;
        }
        long long lag;
        if (tp->offset >= 0) {
            lag = hi > tp->offset ? hi - tp->offset : 0;
        } else {
            lag = earliest && hi > lo ? hi - lo : 0; /* never committed: where start puts it */
        }
        if (sample(&s[n++], kl->conf->group, tp->topic, tp->partition, lag) < 0) {
            td_lag_samples_free(s, n);
            s = NULL;
            break;
        }
        if (total >= 0) {
            total += lag;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (!s || stopping(kl)) {
        td_lag_samples_free(s, n); /* out of memory or stopping: the previous figures stay */
        return;
    }
    if (total >= 0) {
        kl->last_error[0] = '\0';
    }
    td_source_set_lag(kl->src, s, n, total);
}

static void *run(void *arg)
{
    struct td_kafka_lag *kl = arg;
    for (;;) {
        round_once(kl);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += TD_LAG_EVERY_MS / 1000;
        until.tv_nsec += (long)(TD_LAG_EVERY_MS % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&kl->mu);
        while (!kl->stop && pthread_cond_timedwait(&kl->cond, &kl->mu, &until) == 0) {
        }
        bool stop = kl->stop;
        pthread_mutex_unlock(&kl->mu);
        if (stop) {
            return NULL;
        }
    }
}

struct td_kafka_lag *td_kafka_lag_start(struct td_source *src,
                                        const struct td_conf_kafka_source *conf, rd_kafka_t *rk)
{
    struct td_kafka_lag *kl = calloc(1, sizeof(*kl));
    if (!kl) {
        td_log_warn(NULL, src->name, NULL, "consumer group lag will not be reported: %s",
                    "out of memory");
        return NULL;
    }
    kl->src = src;
    kl->conf = conf;
    kl->rk = rk;
    pthread_mutex_init(&kl->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&kl->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&kl->thread, NULL, run, kl) != 0) {
        td_log_warn(NULL, src->name, NULL, "consumer group lag will not be reported: %s",
                    "cannot start its thread");
        pthread_cond_destroy(&kl->cond);
        pthread_mutex_destroy(&kl->mu);
        free(kl);
        return NULL;
    }
    return kl;
}

void td_kafka_lag_stop(struct td_kafka_lag *kl)
{
    if (!kl) {
        return;
    }
    pthread_mutex_lock(&kl->mu);
    kl->stop = true;
    pthread_cond_signal(&kl->cond);
    pthread_mutex_unlock(&kl->mu);
    pthread_join(kl->thread, NULL);
    pthread_cond_destroy(&kl->cond);
    pthread_mutex_destroy(&kl->mu);
    free(kl);
}
