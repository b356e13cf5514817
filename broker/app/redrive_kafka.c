/* redrive_kafka.c - `triggerd redrive` reading a Kafka dead-letter topic (see redrive_store.h).
 *
 * A topic cannot delete a record, so "the record left the target" is the consumer group
 * TD_REDRIVE_KAFKA_GROUP's committed offset moving past it. At open the consumer takes every
 * partition of the topic by assign() (no group membership, no rebalance to wait for), starting
 * at the group's committed offset, or at the beginning when the group has none, and notes each
 * partition's high watermark: reading stops there, so records dead-lettered again during the
 * run are read by the next redrive.
 *
 * Each partition keeps the offsets it handed out, in order; td_redrive_kafka_done marks one
 * done and the done prefix becomes committable. A record that is skipped (--reason, a dry run,
 * unreadable, no trigger) or not finished is never done, so the commit never passes it: a later
 * redrive reads it again (and the records after it in that partition, which may then arrive a
 * second time: at least once, never lost). Commits are asynchronous at most once a second
 * while the run goes on, and synchronous at the end; a dry run marks nothing done and so
 * commits nothing.
 *
 * Ownership: the struct and everything in it belong to the caller of open until close.
 * Threads: the caller's only.
 */
#include "ce_kafka.h"
#include "kafka_record.h"
#include "kafka_sink.h"
#include "redrive_store.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_log.h"
#include "loop.h"

#define DEFAULT_TYPE    "dev.triggerd.kafka.record"
#define META_TIMEOUT_MS 10000
#define IDLE_TIMEOUT_MS 30000 /* no record and no end of partition for this long: an error */
#define COMMIT_EVERY_MS 1000

struct slot {
    int64_t offset;
    bool done;
};

struct kpart {
    int32_t id;
    int64_t high;      /* the end when we started */
    int64_t committed; /* the group's offset as we last committed it (or found it) */
    int64_t commit_to; /* what the done prefix allows */
    bool finished;     /* read up to high */
    struct slot *ring; /* handed out, not yet committable, ascending: [head, tail) */
    size_t head, tail, cap;
};

struct td_redrive_kafka {
    rd_kafka_t *rk;
    char *topic;
    char *ce_source;
    struct kpart *parts;
    int nparts;
    int unfinished;
    bool any_done;
    int64_t last_commit_ms;
    char error[256]; /* a read error to report on the next read */
};

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    td_kafka_log(level, TD_LOG_ERROR, NULL, "redrive", fac, buf);
}

static int set(rd_kafka_conf_t *kc, const char *key, const char *value, char *err, size_t errlen)
{
    char why[256];
    if (rd_kafka_conf_set(kc, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "property '%s': %s", key, why);
        return -1;
    }
    return 0;
}

static struct kpart *part(struct td_redrive_kafka *k, int32_t id)
{
    for (int i = 0; i < k->nparts; i++) {
        if (k->parts[i].id == id) {
            return &k->parts[i];
        }
    }
    return NULL;
}

/* Moves commit_to over the done prefix (and, once the partition was read to its end with
 * everything done, over what was never handed out: transaction markers, compacted gaps). */
static void advance(struct kpart *p)
{
    while (p->head < p->tail && p->ring[p->head].done) {
        p->commit_to = p->ring[p->head].offset + 1;
        p->head++;
    }
    if (p->head == p->tail) {
        p->head = p->tail = 0;
        if (p->finished && p->commit_to < p->high) {
            p->commit_to = p->high;
        }
    }
}

static void finish(struct td_redrive_kafka *k, struct kpart *p)
{
    if (!p->finished) {
        p->finished = true;
        k->unfinished--;
    }
}

/* Commits every partition whose done prefix moved; 0 or -1 with a message. */
static int commit(struct td_redrive_kafka *k, bool async, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(k->nparts + 1);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < k->nparts; i++) {
        struct kpart *p = &k->parts[i];
        advance(p);
        if (p->commit_to > p->committed) {
            rd_kafka_topic_partition_list_add(l, k->topic, p->id)->offset = p->commit_to;
        }
    }
    int rc = 0;
    if (l->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_commit(k->rk, l, async ? 1 : 0);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "commit: %s", rd_kafka_err2str(e));
            rc = -1;
        } else if (!async) { /* an async one may fail unseen: the last commit repeats it */
            for (int i = 0; i < l->cnt; i++) {
                struct kpart *p = part(k, l->elems[i].partition);
                p->committed = l->elems[i].offset;
            }
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    k->last_commit_ms = td_now_ms();
    return rc;
}

/* The partitions, their ends and the group's offsets; assigns what has something to read. */
static int setup(struct td_redrive_kafka *k, char *err, size_t errlen)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->rk, k->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *l = NULL;
    int rc = -1;
    rd_kafka_resp_err_t e = rkt ? rd_kafka_metadata(k->rk, 0, rkt, &md, META_TIMEOUT_MS)
                                : RD_KAFKA_RESP_ERR__INVALID_ARG;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1) {
        snprintf(err, errlen, "metadata of topic %s: %s", k->topic, rd_kafka_err2str(e));
        goto out;
    }
    e = md->topics[0].err;
    if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        rc = 0; /* no topic, no dead letters */
        goto out;
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "topic %s: %s", k->topic, rd_kafka_err2str(e));
        goto out;
    }
    int n = md->topics[0].partition_cnt;
    k->parts = calloc((size_t)n + 1, sizeof(*k->parts));
    l = rd_kafka_topic_partition_list_new(n + 1);
    if (!k->parts || !l) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        k->parts[i].id = md->topics[0].partitions[i].id;
        rd_kafka_topic_partition_list_add(l, k->topic, k->parts[i].id);
    }
    k->nparts = n;
    e = rd_kafka_committed(k->rk, l, META_TIMEOUT_MS);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "offsets of group %s: %s", TD_REDRIVE_KAFKA_GROUP,
                 rd_kafka_err2str(e));
        goto out;
    }
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(n + 1);
    if (!assign) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        struct kpart *p = &k->parts[i];
        int64_t low = 0, high = 0, start;
        e = rd_kafka_query_watermark_offsets(k->rk, k->topic, p->id, &low, &high, META_TIMEOUT_MS);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "end of %s/%" PRId32 ": %s", k->topic, p->id,
                     rd_kafka_err2str(e));
            rd_kafka_topic_partition_list_destroy(assign);
            goto out;
        }
        int64_t c = rd_kafka_topic_partition_list_find(l, k->topic, p->id)->offset;
        start = c >= low ? c : low; /* none yet, or retention took it: from the oldest */
        start = start < high ? start : high;
        p->high = high;
        p->committed = c >= 0 ? c : -1;
        p->commit_to = start;
        if (start >= high) {
            p->finished = true;
        } else {
            k->unfinished++;
            rd_kafka_topic_partition_list_add(assign, k->topic, p->id)->offset = start;
        }
    }
    e = assign->cnt > 0 ? rd_kafka_assign(k->rk, assign) : RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_destroy(assign);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "assign: %s", rd_kafka_err2str(e));
        goto out;
    }
    rc = 0;
out:
    if (l) {
        rd_kafka_topic_partition_list_destroy(l);
    }
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    if (rkt) {
        rd_kafka_topic_destroy(rkt);
    }
    return rc;
}

struct td_redrive_kafka *td_redrive_kafka_open(const struct td_conf_sink *conf, char *err,
                                               size_t errlen)
{
    const struct td_conf_kafka_sink *c = conf->settings;
    struct td_redrive_kafka *k = calloc(1, sizeof(*k));
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char why[512];
    if (!k || !kc) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    size_t len = strlen(c->brokers) + strlen(c->topic) + 16;
    k->topic = strdup(c->topic);
    k->ce_source = malloc(len);
    if (!k->topic || !k->ce_source) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(k->ce_source, len, "kafka://%s/%s", c->brokers, c->topic);
    if (set(kc, "bootstrap.servers", c->brokers, err, errlen) < 0 ||
        set(kc, "client.id", "triggerd-redrive", err, errlen) < 0 ||
        td_kafka_security_apply(kc, &c->sec, "redrive", err, errlen) < 0) {
        goto fail;
    }
    /* The sink's properties (security, timeouts) apply to this consumer too; producer-only
     * ones are ignored by librdkafka with a notice below our log level. */
    for (size_t i = 0; i < c->properties.n; i++) {
        if (set(kc, c->properties.items[i].key, c->properties.items[i].value, err, errlen) < 0) {
            goto fail;
        }
    }
    if (set(kc, "group.id", TD_REDRIVE_KAFKA_GROUP, err, errlen) < 0 ||
        set(kc, "enable.auto.commit", "false", err, errlen) < 0 ||
        set(kc, "enable.auto.offset.store", "false", err, errlen) < 0 ||
        set(kc, "auto.offset.reset", "earliest", err, errlen) < 0 ||
        set(kc, "enable.partition.eof", "true", err, errlen) < 0) {
        goto fail;
    }
    rd_kafka_conf_set_log_cb(kc, log_cb);
    k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, why, sizeof(why));
    if (!k->rk) {
        snprintf(err, errlen, "%s", why);
        goto fail;
    }
    kc = NULL;
    if (td_kafka_security_started(k->rk, &c->sec, "redrive", err, errlen) < 0) {
        goto fail;
    }
    rd_kafka_poll_set_consumer(k->rk);
    if (setup(k, err, errlen) < 0) {
        goto fail;
    }
    k->last_commit_ms = td_now_ms();
    return k;
fail:
    if (kc) {
        rd_kafka_conf_destroy(kc);
    }
    td_redrive_kafka_close(k);
    return NULL;
}

/* One record as an entry; false when out of memory (nothing filled). */
static bool take(struct td_redrive_kafka *k, struct kpart *p, const rd_kafka_message_t *rm,
                 struct td_redrive_entry *out)
{
    char handle[48];
    snprintf(handle, sizeof(handle), "%" PRId32 "/%" PRId64, rm->partition, rm->offset);
    out->handle = strdup(handle);
    if (p->tail == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        struct slot *ring = realloc(p->ring, cap * sizeof(*ring));
        if (ring) {
            p->ring = ring;
            p->cap = cap;
        }
    }
    struct td_kafka_record rec;
    if (!out->handle || p->tail == p->cap || td_kafka_record_of(rm, k->topic, &rec) < 0) {
        free(out->handle);
        out->handle = NULL;
        return false;
    }
    bool wrapped = false;
    char why[256];
    out->ev = td_ce_from_kafka(&rec, DEFAULT_TYPE, k->ce_source, &wrapped, why, sizeof(why));
    td_kafka_record_release(&rec);
    p->ring[p->tail].offset = rm->offset;
    p->ring[p->tail].done = false;
    p->tail++;
    return true;
}

int td_redrive_kafka_read(struct td_redrive_kafka *k, struct td_redrive_entry *out, int max,
                          char *err, size_t errlen)
{
    int n = 0;
    int64_t idle_until = td_now_ms() + IDLE_TIMEOUT_MS;
    if (k->error[0]) {
        snprintf(err, errlen, "%s", k->error);
        return -1;
    }
    while (n < max && k->unfinished > 0) {
        rd_kafka_message_t *rm = rd_kafka_consumer_poll(k->rk, n > 0 ? 0 : 200);
        if (!rm) {
            if (n > 0) {
                break;
            }
            if (td_now_ms() > idle_until) {
                snprintf(k->error, sizeof(k->error),
                         "nothing more to read, yet %d partition(s) short of their end",
                         k->unfinished);
                break;
            }
            continue;
        }
        struct kpart *p = part(k, rm->partition);
        if (rm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (p && rm->offset >= p->high) {
                finish(k, p);
            }
        } else if (rm->err) {
            /* Mostly transient (the consumer reconnects by itself); fatal ones end the read. */
            char fatal[256];
            if (rd_kafka_fatal_error(k->rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                snprintf(k->error, sizeof(k->error), "%s", fatal);
            } else if (rm->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                       rm->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                snprintf(k->error, sizeof(k->error), "%s", rd_kafka_message_errstr(rm));
            }
        } else if (p && !p->finished && rm->offset < p->high) {
            if (!take(k, p, rm, &out[n])) {
                snprintf(k->error, sizeof(k->error), "out of memory");
            } else {
                n++;
                idle_until = td_now_ms() + IDLE_TIMEOUT_MS;
            }
            if (rm->offset + 1 >= p->high) {
                finish(k, p);
            }
        } else if (p && rm->offset >= p->high) {
            finish(k, p); /* written since we started: the next redrive's */
        }
        rd_kafka_message_destroy(rm);
        if (k->error[0]) {
            break;
        }
    }
    if (n == 0 && k->error[0]) {
        snprintf(err, errlen, "%s", k->error);
        return -1;
    }
    return n;
}

void td_redrive_kafka_done(struct td_redrive_kafka *k, const char *handle)
{
    int32_t id;
    int64_t offset;
    if (sscanf(handle, "%" SCNd32 "/%" SCNd64, &id, &offset) != 2) {
        return;
    }
    struct kpart *p = part(k, id);
    if (!p) {
        return;
    }
    size_t lo = p->head, hi = p->tail; /* the ring is sorted: binary search */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->ring[mid].offset < offset) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < p->tail && p->ring[lo].offset == offset) {
        p->ring[lo].done = true;
        k->any_done = true;
        if (lo == p->head) {
            advance(p);
        }
    }
    if (td_now_ms() - k->last_commit_ms >= COMMIT_EVERY_MS) {
        char err[256];
        commit(k, true, err, sizeof(err));
    }
}

int td_redrive_kafka_flush(struct td_redrive_kafka *k, char *err, size_t errlen)
{
    if (!k->any_done) {
        return 0; /* a dry run, or nothing delivered: the group's offsets stay */
    }
    return commit(k, false, err, errlen);
}

void td_redrive_kafka_close(struct td_redrive_kafka *k)
{
    if (!k) {
        return;
    }
    if (k->rk) {
        rd_kafka_consumer_close(k->rk);
        rd_kafka_destroy(k->rk);
    }
    for (int i = 0; i < k->nparts; i++) {
        free(k->parts[i].ring);
    }
    free(k->parts);
    free(k->topic);
    free(k->ce_source);
    free(k);
}
