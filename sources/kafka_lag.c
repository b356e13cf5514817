/* kafka_lag.c - committed-offset lag per partition, from the brokers' point of view (see
 * kafka_lag.h), asked through the consumer's own handle. The thread sleeps on a condition variable
 * between rounds so stop wakes it at once; a round in progress checks between requests and finishes
 * only the current one, so stopping waits at most about REQUEST_MS.
 *
 * Which librdkafka 2.0.2 calls, and why (they share the consumer's handle):
 * - metadata with all_topics=0, for the topics this thread holds handles of (taken once at start,
 *   dropped after the join). An all-topics request on a consumer updates the group's view of its
 *   subscription: a topic-level error in the answer (a restarting broker's UNKNOWN_TOPIC_OR_PART)
 *   would make the consumer revoke everything and rejoin. Handles made and dropped every round are
 *   freed by librdkafka's main thread while a broker thread may still read them (ThreadSanitizer
 *   reported it), hence held for the thread's life.
 * - watermarks by rd_kafka_offsets_for_times with OFFSET_BEGINNING / OFFSET_END (ListOffsets, one
 *   request per leader): rd_kafka_query_watermark_offsets ignores its timeout in 2.0.2 (it waits
 *   out socket.timeout.ms, 60 s by default), which would hold up a stop. The stop is joined on
 *   the source thread (kafka.c run, before the consumer closes), never on the loop thread, so a
 *   request in progress delays only the source's own exit (and a reload's restart of it). */
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
    rd_kafka_t *rk;         /* the consumer's, borrowed */
    rd_kafka_topic_t **rkt; /* one per conf->topics, held from start to stop */
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

/* Every partition of the source's topics, from the brokers' metadata (the locally known topics,
 * which the held handles make sure of; see the top of the file). NULL with the reason in err. */
static rd_kafka_topic_partition_list_t *partitions(struct td_kafka_lag *kl, char *err,
                                                   size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(kl->rk, 0, NULL, &md, REQUEST_MS);
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

/* A copy of list with each partition's offset at `which` (RD_KAFKA_OFFSET_END: the high
 * watermark; RD_KAFKA_OFFSET_BEGINNING: the low), asked within REQUEST_MS; a partition's own
 * error is in its err. NULL with the reason in err when the request failed. */
static rd_kafka_topic_partition_list_t *watermarks(struct td_kafka_lag *kl,
                                                   const rd_kafka_topic_partition_list_t *list,
                                                   int64_t which, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *w = rd_kafka_topic_partition_list_copy(list);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (int i = 0; i < w->cnt; i++) {
        w->elems[i].offset = which;
        w->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(kl->rk, w, REQUEST_MS);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "%s watermarks: %s", which == RD_KAFKA_OFFSET_END ? "high" : "low",
                 rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(w);
        return NULL;
    }
    return w;
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
    bool earliest = strcmp(kl->conf->start, "earliest") == 0;
    rd_kafka_topic_partition_list_t *lows = NULL;
    rd_kafka_topic_partition_list_t *highs =
        watermarks(kl, list, RD_KAFKA_OFFSET_END, err, sizeof(err));
    if (highs && earliest) {
        lows = watermarks(kl, list, RD_KAFKA_OFFSET_BEGINNING, err, sizeof(err));
    }
    if (!highs || (earliest && !lows)) {
        report(kl, err);
        td_source_set_lag(kl->src, NULL, 0, -1);
        if (highs) {
            rd_kafka_topic_partition_list_destroy(highs);
        }
        rd_kafka_topic_partition_list_destroy(list);
        return;
    }
    struct td_lag_sample *s = calloc((size_t)list->cnt + 1, sizeof(*s));
    size_t n = 0;
    long long total = 0;
    for (int i = 0; s && i < list->cnt && !stopping(kl); i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        const rd_kafka_topic_partition_t *h = &highs->elems[i];
        const rd_kafka_topic_partition_t *l = lows ? &lows->elems[i] : NULL;
        int64_t lo = l ? l->offset : 0, hi = h->offset;
        e = tp->err ? tp->err : h->err ? h->err : l && l->err ? l->err : RD_KAFKA_RESP_ERR_NO_ERROR;
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
    rd_kafka_topic_partition_list_destroy(highs);
    if (lows) {
        rd_kafka_topic_partition_list_destroy(lows);
    }
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

/* Releases the held topic handles and their array (either may be partly made). */
static void drop_topics(struct td_kafka_lag *kl)
{
    for (size_t i = 0; kl->rkt && i < kl->conf->ntopics; i++) {
        if (kl->rkt[i]) {
            rd_kafka_topic_destroy(kl->rkt[i]);
        }
    }
    free(kl->rkt);
    kl->rkt = NULL;
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
    kl->rkt = calloc(conf->ntopics ? conf->ntopics : 1, sizeof(*kl->rkt));
    for (size_t i = 0; kl->rkt && i < conf->ntopics; i++) {
        if (!(kl->rkt[i] = rd_kafka_topic_new(rk, conf->topics[i], NULL))) {
            td_log_warn(NULL, src->name, NULL, "consumer group lag will not be reported: %s: %s",
                        conf->topics[i], rd_kafka_err2str(rd_kafka_last_error()));
            drop_topics(kl);
            free(kl);
            return NULL;
        }
    }
    if (!kl->rkt) {
        td_log_warn(NULL, src->name, NULL, "consumer group lag will not be reported: %s",
                    "out of memory");
        free(kl);
        return NULL;
    }
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
        drop_topics(kl);
        free(kl);
        return NULL;
    }
    return kl;
}

void td_kafka_lag_signal(struct td_kafka_lag *kl)
{
    if (!kl) {
        return;
    }
    pthread_mutex_lock(&kl->mu);
    kl->stop = true;
    pthread_cond_signal(&kl->cond);
    pthread_mutex_unlock(&kl->mu);
}

void td_kafka_lag_stop(struct td_kafka_lag *kl)
{
    if (!kl) {
        return;
    }
    td_kafka_lag_signal(kl);
    pthread_join(kl->thread, NULL);
    drop_topics(kl);
    pthread_cond_destroy(&kl->cond);
    pthread_mutex_destroy(&kl->mu);
    free(kl);
}
