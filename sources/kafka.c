/* kafka.c - the Kafka source: librdkafka's high-level consumer on a thread of its own.
 *
 * At-least-once (librdkafka 2.0.2, Debian 12): auto commit on, auto offset store off.
 * Records of one partition arrive in offset order; the thread keeps, per partition, the
 * offsets it emitted and not yet stored, in order. A completion marks its offset done and the
 * done prefix is popped and stored with rd_kafka_offsets_store(next offset), so an unfinished
 * record is never committed past, however the core completes them. A released record (not
 * done: shutdown, no dead-letter target) stops its partition's store where it is, while the
 * completions before it still advance it. Outside shutdown, the partition is then read again
 * from it after a backoff (1 s doubling to 60 s), as AWS Lambda's event source mapping does:
 * what the core has not started of the partition is cancelled (td_source_cancel), the partition
 * is paused, and once its running attempts finished it is sought back to the first unfinished
 * offset under a new generation. Only that partition waits; its committed offset stays at the
 * record.
 *
 * Rebalances use the eager protocol (the default range,roundrobin assignors; 2.0.2's
 * cooperative-sticky has known bugs). On revoke: records of those partitions read but not yet
 * emitted are dropped, the core is told to cancel every delivery of them that has not started
 * an attempt (waiting, queued behind its lane, waiting to retry: they complete as released),
 * the thread waits (bounded by REVOKE_WAIT_MS) only for the running ones, stores the done
 * prefix and commits, waiting for the answer at most REVOKE_WAIT_MS (commit_bounded), unless
 * the assignment was lost, then commits nothing; completions that come later belong to an old
 * generation and are discarded.
 *
 * Stopping: the thread drains its mailbox, joins its lag thread and closes the consumer
 * (close_consumer), all before the source's stop deadline (td_source_stop_by: shutdown); what
 * waits for the broker past it is given up, and destroy hands the handle to a reaper thread.
 *
 * Backpressure: when the source has no credit (max_inflight records not completed) nothing
 * is read; when none comes back for PAUSE_AFTER_MS every assigned partition is paused (a pause
 * drops librdkafka's prefetch, which costs a re-fetch on resume); the thread keeps calling
 * rd_kafka_consumer_poll (rebalances, max.poll.interval.ms) and resumes them when half the
 * credit is back.
 *
 * Wake-ups: the consumer queue signals a pipe (rd_kafka_queue_io_event_enable) and
 * completions signal the mailbox eventfd; one poll(2) waits on both and on the stop fd. The
 * mailbox is taken at most every DRAIN_EVERY_MS while credit is left (one wake-up and one
 * offsets_store per batch of completions).
 * Threads: init/destroy on the caller's, everything else on the source thread; rk never
 * leaves it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ce_kafka.h"
#include "kafka_record.h"
#include "cloudevent.h"
#include "conf_table.h"
#include "kafka_lag.h"
#include "kafka_log.h"
#include "kafka_props.h"
#include "kafka_security.h"
#include "kafka_source.h"
#include "log.h"
#include "loop.h"
#include "source.h"

#define DEFAULT_TYPE   "dev.triggerd.kafka.record"
#define POLL_BATCH     256
#define REVOKE_WAIT_MS 10000
#define MAX_TRACKED    200000 /* per partition: pause it when this many are unstored */
#define PROBE_MS       500
#define CANCEL_EVERY   250    /* revoke: ask the core again to cancel what has not started */
#define REDELIVER_MIN  1000   /* a released record is redelivered after this, doubling ... */
#define REDELIVER_MAX  60000  /* ... up to this */
#define REDELIVER_LOG  10000  /* at most one redelivery log line per partition this often */
#define LAG_EVERY_MS   1000   /* consumer lag (src->backlog) is recomputed this often */
#define COMMITTED_MS   2000   /* on assignment: how long to wait for the committed offsets */
#define DRAIN_EVERY_MS 2      /* completions are taken (and offsets stored) at most this often */
#define PAUSE_AFTER_MS 100    /* out of credit this long: the partitions are paused */
#define KICK_AFTER_MS  50     /* queue empty this long after a full prefetch: restart the fetcher */
#define KICK_FRUITLESS 6      /* wake-ups in a row that brought no record: stop until one comes */
#define PREFETCH_MIN   1000   /* queued.min.messages at least this, ... */
#define PREFETCH_MULT  4      /* ... else this many times max_inflight */
#define PREFETCH_KB    "4096" /* queued.max.messages.kbytes */

/* One emitted offset: done once its message completed, released when it was not (the
 * store stops there). */
struct slot {
    int64_t offset;
    bool done;
    bool released;
};

/* A partition this consumer holds (or held). */
struct part {
    struct part *next;
    char *topic;
    int32_t partition;
    uint64_t gen; /* bumped on every assign and revoke */
    bool assigned;
    bool paused;       /* as librdkafka knows it */
    bool stuck;        /* out of memory lost track of a record: store nothing more */
    bool revoking;     /* on_revoke is waiting for it: releases are cancellations */
    struct slot *ring; /* emitted, not yet stored, ascending offsets: [head, tail) */
    size_t head, tail, cap;
    size_t unfinished; /* slots neither done nor released */
    int64_t stored;    /* the last next-offset given to offsets_store, -1 none */
    int64_t to_store;
    int64_t committed; /* the group's committed offset when assigned, -1 none or unknown */
    /* A released record (failed for good, no dead_letter): the partition is paused, its newer
     * records are dropped, and at redeliver_at (0: none due) it is sought back to the first
     * unfinished offset and read again. */
    int64_t redeliver_at;
    int64_t redeliver_offset; /* the released offset that caused it */
    int redeliveries;         /* consecutive redeliveries of redeliver_offset */
    int64_t logged_at;        /* rate limit of the redelivery log line */
    long unlogged;
};

struct kafka_source {
    struct td_source *src;
    const struct td_conf_kafka_source *conf;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue; /* the consumer queue */
    int qpipe[2];            /* written by librdkafka when the queue gets events */
    bool stopping;           /* the thread is on its way out: revoke waits for nothing */
    bool paused;             /* backpressure: every partition paused */
    int64_t dry_since;       /* out of credit (not paused yet) since then, 0 if not */
    struct part *parts;
    uint64_t next_gen;
    int64_t next_lag_ms;    /* when report_lag runs next */
    int64_t last_record_ms; /* when the consumer queue last gave a record */
    int64_t last_kick_ms;   /* when kick_fetcher last sought */
    int64_t kick_wait_ms;   /* KICK_AFTER_MS, doubled by every wake-up that brought nothing */
    int fruitless;          /* wake-ups since the last record */
    /* The prefetch limit in records (queued.min.messages, or queued.max.messages.kbytes over
     * the mean record size if that is less), and the most records seen in the queue since the
     * last wake-up: the fetcher stops only once the queue reached the limit. */
    long prefetch_msgs;
    long prefetch_kb;
    long long rec_bytes, rec_count;
    size_t queue_high;
    long long kicks;        /* fetcher restarts, for the debug log at exit */
    char *ce_source_prefix; /* "kafka://BROKERS/" */
    char *name;             /* the source's name, ours: log_cb may run after src is freed */
    bool abandoned;         /* the close was given up: destroy hands rk to a reaper thread */
    char last_error[256];
    struct td_kafka_lag *group_lag; /* the brokers' view of the group's lag (kafka_lag.c);
                                     * the source thread's (run) */
};

/* ---- partitions ---- */

static struct part *part_find(struct kafka_source *ks, const char *topic, int32_t partition)
{
    for (struct part *p = ks->parts; p; p = p->next) {
        if (p->partition == partition && strcmp(p->topic, topic) == 0) {
            return p;
        }
    }
    return NULL;
}

static struct part *part_get(struct kafka_source *ks, const char *topic, int32_t partition)
{
    struct part *p = part_find(ks, topic, partition);
    if (p) {
        return p;
    }
    p = calloc(1, sizeof(*p));
    if (!p || !(p->topic = strdup(topic))) {
        free(p);
        return NULL;
    }
    p->partition = partition;
    p->stored = -1;
    p->to_store = -1;
    p->committed = -1;
    p->next = ks->parts;
    ks->parts = p;
    return p;
}

static size_t part_pending(const struct part *p)
{
    return p->tail - p->head;
}

static int part_push(struct part *p, int64_t offset)
{
    if (p->tail == p->cap) {
        if (p->head > 0) { /* compact first */
            memmove(p->ring, p->ring + p->head, part_pending(p) * sizeof(*p->ring));
            p->tail -= p->head;
            p->head = 0;
        }
        if (p->tail == p->cap) {
            size_t cap = p->cap ? p->cap * 2 : 256;
            struct slot *r = realloc(p->ring, cap * sizeof(*r));
            if (!r) {
                return -1;
            }
            p->ring = r;
            p->cap = cap;
        }
    }
    p->ring[p->tail].offset = offset;
    p->ring[p->tail].done = false;
    p->ring[p->tail].released = false;
    p->tail++;
    p->unfinished++;
    return 0;
}

/* Marks offset done (or released) and pops the done prefix; p->to_store becomes the next
 * offset to store. A released slot is never popped: the store stays at it. */
static void part_done(struct part *p, int64_t offset, bool released)
{
    size_t lo = p->head, hi = p->tail;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->ring[mid].offset < offset) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == p->tail || p->ring[lo].offset != offset || p->ring[lo].done || p->ring[lo].released) {
        return;
    }
    p->unfinished--;
    if (released) {
        p->ring[lo].released = true;
        return;
    }
    p->ring[lo].done = true;
    while (p->head < p->tail && p->ring[p->head].done) {
        p->to_store = p->ring[p->head].offset + 1;
        p->head++;
    }
    if (p->head == p->tail) {
        p->head = p->tail = 0;
    }
}

static void part_reset(struct kafka_source *ks, struct part *p, bool assigned)
{
    p->gen = ++ks->next_gen;
    p->assigned = assigned;
    p->paused = false;
    p->stuck = false;
    p->revoking = false;
    p->head = p->tail = 0;
    p->unfinished = 0;
    p->stored = -1;
    p->to_store = -1;
    p->committed = -1;
    p->redeliver_at = 0;
    p->redeliveries = 0;
}

/* ---- logging ---- */

static void report(struct kafka_source *ks, const char *what)
{
    if (strcmp(ks->last_error, what) != 0) {
        td_log_warn(NULL, ks->src->name, NULL, "kafka %s: %s", ks->conf->brokers, what);
        snprintf(ks->last_error, sizeof(ks->last_error), "%s", what);
    }
}

/* ---- offsets ---- */

/* Stores the done prefix of every assigned partition that moved. */
static void store_offsets(struct kafka_source *ks)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    if (!list) {
        return;
    }
    for (struct part *p = ks->parts; p; p = p->next) {
        if (p->assigned && !p->stuck && p->to_store > p->stored) {
            rd_kafka_topic_partition_list_add(list, p->topic, p->partition)->offset = p->to_store;
        }
    }
    if (list->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_offsets_store(ks->rk, list);
        for (int i = 0; i < list->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &list->elems[i];
            struct part *p = part_find(ks, tp->topic, tp->partition);
            if (p && tp->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                p->stored = tp->offset;
            }
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            td_log_debug(NULL, ks->src->name, NULL, "offsets_store: %s", rd_kafka_err2str(err));
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* A record's message: td_msg first (td_msg_free frees the block), then its offset, which
 * only this source reads back from its mailbox. */
struct kafka_msg {
    struct td_msg msg;
    int64_t offset;
};

static int64_t msg_offset(const struct td_msg *msg)
{
    return ((const struct kafka_msg *)msg)->offset;
}

/* A record of p was released (failed for good without a dead_letter target, or the
 * dead-letter could not be built): like AWS Lambda's event source mapping, the partition is
 * read again from it after a backoff, and only what is behind it in the partition waits (its
 * committed offset stays at it). What the core has not started of the partition is cancelled
 * at once; the seek waits for what is running. */
static void schedule_redelivery(struct kafka_source *ks, struct part *p, int64_t offset)
{
    if (p->redeliver_at != 0 || p->revoking || ks->stopping || atomic_load(&ks->src->quiesce)) {
        return;
    }
    /* The partition is read again from its first unfinished record: with ordered lanes the
     * records queued behind a released one are released with it (and may reach this mailbox
     * first), so the record named and counted is that first one, not offset's. */
    int64_t from = p->head < p->tail ? p->ring[p->head].offset : offset;
    if (p->redeliveries > 0 && p->redeliver_offset == from) {
        p->redeliveries++;
    } else {
        p->redeliveries = 1;
        p->redeliver_offset = from;
    }
    int64_t wait = REDELIVER_MIN;
    for (int i = 1; i < p->redeliveries && wait < REDELIVER_MAX; i++) {
        wait *= 2;
    }
    wait = wait > REDELIVER_MAX ? REDELIVER_MAX : wait;
    int64_t now = td_now_ms();
    p->redeliver_at = now + wait;
    td_source_cancel(ks->src, p->gen);
    if (p->logged_at == 0 || now - p->logged_at >= REDELIVER_LOG) {
        td_log_warn(NULL, ks->src->name, NULL,
                    "released (failed for good, no dead_letter): %s/%" PRId32
                    " is read again from offset %" PRId64 " in %" PRId64
                    " ms (redelivery %d of this record%s%ld lines suppressed); the committed "
                    "offset stays at it",
                    p->topic, p->partition, from, wait, p->redeliveries, p->unlogged ? ", " : "; ",
                    p->unlogged);
        p->logged_at = now;
        p->unlogged = 0;
    } else {
        p->unlogged++;
    }
}

/* Seeks the partitions whose redelivery is due back to their first unfinished offset, once
 * nothing of them runs any more; a new generation discards what was read before. */
static void redeliver_due(struct kafka_source *ks)
{
    int64_t now = td_now_ms();
    for (struct part *p = ks->parts; p; p = p->next) {
        if (!p->assigned || p->redeliver_at == 0 || now < p->redeliver_at || p->unfinished > 0) {
            continue;
        }
        int64_t from = p->head < p->tail ? p->ring[p->head].offset : p->redeliver_offset;
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
        if (!list) {
            continue;
        }
        rd_kafka_topic_partition_list_add(list, p->topic, p->partition)->offset = from;
        rd_kafka_error_t *e = rd_kafka_seek_partitions(ks->rk, list, 2000);
        rd_kafka_resp_err_t err = e ? rd_kafka_error_code(e) : list->elems[0].err;
        if (e) {
            rd_kafka_error_destroy(e);
        }
        rd_kafka_topic_partition_list_destroy(list);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            report(ks, rd_kafka_err2str(err));
            p->redeliver_at = now + REDELIVER_MIN; /* try again */
            continue;
        }
        p->gen = ++ks->next_gen;
        p->head = p->tail = 0;
        p->unfinished = 0;
        p->redeliver_at = 0;
        td_log_debug(NULL, ks->src->name, NULL, "%s/%" PRId32 ": reading again from %" PRId64,
                     p->topic, p->partition, from);
    }
}

/* Takes the mailbox: marks completions done (current generation only) and stores. */
static void drain_mailbox(struct kafka_source *ks)
{
    struct td_msg *done = td_source_take_done(ks->src);
    long long acked = 0;
    while (done) {
        struct td_msg *next = done->next;
        struct part *p = NULL;
        for (struct part *q = ks->parts; q; q = q->next) {
            if (q->gen == done->gen) {
                p = q;
                break;
            }
        }
        if (p && p->assigned) {
            /* Completions before a released record still advance the store up to it. */
            part_done(p, msg_offset(done), done->release);
            if (done->release) {
                schedule_redelivery(ks, p, msg_offset(done));
            } else {
                acked++;
            }
        }
        td_msg_free(done);
        done = next;
    }
    if (acked) {
        atomic_fetch_add(&ks->src->acked, acked);
    }
    store_offsets(ks);
}

/* Once per assignment (never per record or per lag tick): the group's committed offsets of the
 * new partitions, the lag's commit point until something of them is read. This waits for the
 * group coordinator, bounded by COMMITTED_MS; on failure the lag stays unknown until a record
 * of the partition arrives. */
static void read_committed(struct kafka_source *ks, const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_copy(parts);
    if (!list) {
        return;
    }
    rd_kafka_resp_err_t err = rd_kafka_committed(ks->rk, list, COMMITTED_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        td_log_debug(NULL, ks->src->name, NULL, "committed offsets: %s", rd_kafka_err2str(err));
    }
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        struct part *p = part_find(ks, tp->topic, tp->partition);
        if (p && p->assigned && tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset >= 0) {
            p->committed = tp->offset;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* Consumer lag, about once a second, into src->backlog (triggerd_kafka_consumer_lag): the sum
 * over the assigned partitions of (high watermark - commit point), where the commit point is
 * the offset the group's committed offset is heading to, so every record not finished counts:
 * not read yet, or read and still being delivered or retried. Per partition it is the first
 * unfinished (or released) record this consumer read, else the next offset after what finished
 * (what offsets_store was given, or librdkafka's position if that is further, e.g. past
 * transaction markers), else the committed offset read at assignment, else (a new group) the
 * low watermark with start: earliest or the high watermark with start: latest. Nothing here
 * waits on the broker: the watermarks are librdkafka's cached ones from its fetch responses
 * (rd_kafka_get_watermark_offsets), so a paused partition's lag is as of its last fetch. -1
 * (unknown: no sample) while an assigned partition has no watermark or commit point yet, and
 * while this member holds no partition (waiting for the group, or more members than
 * partitions): a lag this member does not know is absent, never 0, so an autoscaler never reads
 * "caught up" from a member that sees nothing. */
static void report_lag(struct kafka_source *ks)
{
    int64_t now = td_now_ms();
    if (now < ks->next_lag_ms) {
        return;
    }
    ks->next_lag_ms = now + LAG_EVERY_MS;
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_new(8);
    if (!pos) {
        return;
    }
    for (struct part *p = ks->parts; p; p = p->next) {
        if (p->assigned) {
            rd_kafka_topic_partition_list_add(pos, p->topic, p->partition);
        }
    }
    if (pos->cnt == 0 || rd_kafka_position(ks->rk, pos) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(pos);
        atomic_store(&ks->src->backlog, -1);
        return;
    }
    bool earliest = strcmp(ks->conf->start, "earliest") == 0;
    long long lag = 0;
    for (int i = 0; i < pos->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &pos->elems[i];
        struct part *p = part_find(ks, tp->topic, tp->partition);
        int64_t lo = -1, hi = -1;
        if (!p ||
            rd_kafka_get_watermark_offsets(ks->rk, tp->topic, tp->partition, &lo, &hi) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            hi < 0) {
            lag = -1;
            break;
        }
        int64_t at = -1;
        if (p->head < p->tail) {
            at = p->ring[p->head].offset;
        } else {
            at = p->to_store;
            if (tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset > at) {
                at = tp->offset;
            }
            if (at < 0) {
                at = p->committed >= 0 ? p->committed : earliest ? lo : hi;
            }
        }
        if (at < 0) {
            lag = -1;
            break;
        }
        lag += hi > at ? hi - at : 0;
    }
    rd_kafka_topic_partition_list_destroy(pos);
    atomic_store(&ks->src->backlog, lag);
}

/* ---- pause / resume ---- */

static void apply_pause(struct kafka_source *ks)
{
    rd_kafka_topic_partition_list_t *pause = rd_kafka_topic_partition_list_new(4);
    rd_kafka_topic_partition_list_t *resume = rd_kafka_topic_partition_list_new(4);
    if (!pause || !resume) {
        goto out;
    }
    for (struct part *p = ks->parts; p; p = p->next) {
        if (!p->assigned) {
            continue;
        }
        bool want = ks->paused || part_pending(p) >= MAX_TRACKED || p->redeliver_at != 0 ||
                    atomic_load(&ks->src->quiesce);
        if (want && !p->paused) {
            rd_kafka_topic_partition_list_add(pause, p->topic, p->partition);
        } else if (!want && p->paused) {
            rd_kafka_topic_partition_list_add(resume, p->topic, p->partition);
        }
    }
    if (pause->cnt > 0 && rd_kafka_pause_partitions(ks->rk, pause) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < pause->cnt; i++) {
            struct part *p = part_find(ks, pause->elems[i].topic, pause->elems[i].partition);
            if (p && pause->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                p->paused = true;
            }
        }
    }
    if (resume->cnt > 0 &&
        rd_kafka_resume_partitions(ks->rk, resume) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < resume->cnt; i++) {
            struct part *p = part_find(ks, resume->elems[i].topic, resume->elems[i].partition);
            if (p && resume->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                p->paused = false;
            }
        }
    }
out:
    if (pause) {
        rd_kafka_topic_partition_list_destroy(pause);
    }
    if (resume) {
        rd_kafka_topic_partition_list_destroy(resume);
    }
}

/* Newly assigned partitions: their pause state is set explicitly, both ways, instead of
 * assuming librdkafka's. A partition assigned while the source is out of credit is paused (and
 * resumed with the others when credit returns); one assigned with credit is resumed, so an
 * application pause librdkafka might keep from before a revoke can never leave it unread
 * (a revoked partition's pause state is forgotten here: part_reset). */
static void set_pause_state(struct kafka_source *ks, const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_copy(parts);
    if (!list) {
        apply_pause(ks);
        return;
    }
    rd_kafka_resp_err_t err = ks->paused ? rd_kafka_pause_partitions(ks->rk, list)
                                         : rd_kafka_resume_partitions(ks->rk, list);
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; i++) {
        struct part *p = part_find(ks, list->elems[i].topic, list->elems[i].partition);
        if (p && list->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            p->paused = ks->paused;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
    apply_pause(ks); /* per-partition reasons (redelivery, tracking limit) */
}

static void update_backpressure(struct kafka_source *ks)
{
    int max = ks->src->conf->max_inflight;
    int credit = td_source_credit(ks->src);
    int64_t now = td_now_ms();
    if (credit > 0 || ks->paused) {
        ks->dry_since = 0;
    } else if (ks->dry_since == 0) {
        ks->dry_since = now;
    }
    /* Out of credit, the partitions are paused only when no completion gave some back for
     * PAUSE_AFTER_MS: a pause drops librdkafka's prefetched records and the resume fetches
     * them again (seconds), which a function that keeps up should never pay for. */
    if (!ks->paused && credit <= 0 && now - ks->dry_since >= PAUSE_AFTER_MS) {
        ks->paused = true;
    } else if (ks->paused && credit >= max / 2) {
        ks->paused = false;
    }
    apply_pause(ks);
}

/* ---- rebalances ---- */

/* True when the user chose cooperative-sticky in properties (not the default; see the top). */
static bool cooperative(struct kafka_source *ks)
{
    const char *proto = rd_kafka_rebalance_protocol(ks->rk);
    return proto && strcmp(proto, "COOPERATIVE") == 0;
}

static bool revoking_busy(struct kafka_source *ks, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        struct part *p = part_find(ks, parts->elems[i].topic, parts->elems[i].partition);
        if (p && p->assigned && p->unfinished > 0) {
            return true;
        }
    }
    return false;
}

/* Asks the core to finish, as released, every delivery of these partitions that has not
 * started an attempt (waiting for a slot, queued behind its lane, waiting to retry): they are
 * not ours any more. Only running attempts are waited for. */
static void cancel_revoked(struct kafka_source *ks, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        struct part *p = part_find(ks, parts->elems[i].topic, parts->elems[i].partition);
        if (p && p->assigned) {
            p->revoking = true;
            if (p->unfinished > 0) {
                td_source_cancel(ks->src, p->gen);
            }
        }
    }
}

/* How long the thread may still wait for the broker on its way out: ms left until the source's
 * stop deadline (td_source_stop_by: shutdown_grace), capped at cap; cap when there is none. */
static int64_t stop_wait_left(struct kafka_source *ks, int64_t cap)
{
    int64_t by = atomic_load(&ks->src->stop_by_ms);
    if (by == 0) {
        return cap;
    }
    int64_t left = by - td_now_ms();
    return left < 0 ? 0 : left < cap ? left : cap;
}

/* Commits the stored offsets (the done prefix) and waits for the answer, at most REVOKE_WAIT_MS
 * and never past the stop deadline. rd_kafka_commit(rk, NULL, 0) waits for the broker with no
 * bound: with a broker that does not answer (frozen, a network partition that drops nothing)
 * a revoke, and a shutdown through the consumer's close, waited as long. Given up, the commit
 * may still land later (it carries only offsets of records done) or not: then the group's next
 * consumer reads those records again (at least once). */
static void commit_bounded(struct kafka_source *ks)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(ks->rk);
    if (!q) {
        td_log_warn(NULL, ks->src->name, NULL, "commit on revoke: out of memory");
        return;
    }
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(ks->rk, NULL, q, NULL, NULL);
    bool answered = err != RD_KAFKA_RESP_ERR_NO_ERROR;
    int64_t until = td_now_ms() + REVOKE_WAIT_MS;
    while (!answered) {
        int64_t left = stop_wait_left(ks, until - td_now_ms());
        if (left <= 0) {
            break;
        }
        /* The stop deadline may come (shutdown) while this waits: poll in short slices. */
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (int)(left > 100 ? 100 : left));
        if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
            err = rd_kafka_event_error(ev);
            answered = true;
        }
        if (ev) {
            rd_kafka_event_destroy(ev);
        }
    }
    rd_kafka_queue_destroy(q); /* an answer after this is dropped */
    if (!answered) {
        td_log_warn(NULL, ks->src->name, NULL,
                    "commit on revoke: no answer from the broker in time; what it did not "
                    "commit is read again by the group's next consumer");
    } else if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        td_log_warn(NULL, ks->src->name, NULL, "commit on revoke failed: %s",
                    rd_kafka_err2str(err));
    }
}

static void on_revoke(struct kafka_source *ks, rd_kafka_topic_partition_list_t *parts)
{
    bool lost = rd_kafka_assignment_lost(ks->rk);
    /* Stop dispatching them and wait for the attempts running on them, bounded, unless
     * stopping (then the core is done and nothing more will complete). The cancellation is
     * repeated: an attempt that fails meanwhile goes to a retry timer, which is cancelled too. */
    int64_t deadline = td_now_ms() + REVOKE_WAIT_MS;
    int64_t next_cancel = 0;
    while (!ks->stopping && revoking_busy(ks, parts) && td_now_ms() < deadline) {
        if (td_now_ms() >= next_cancel) {
            cancel_revoked(ks, parts);
            next_cancel = td_now_ms() + CANCEL_EVERY;
        }
        if (lost) {
            break; /* nothing will be committed: no reason to wait */
        }
        struct pollfd pfd = {.fd = ks->src->mailbox_fd, .events = POLLIN};
        int64_t left = deadline - td_now_ms();
        if (poll(&pfd, 1, (int)(left > 50 ? 50 : left)) > 0) {
            drain_mailbox(ks);
        }
    }
    drain_mailbox(ks);
    if (!lost) {
        commit_bounded(ks);
    }
    size_t unfinished = 0;
    for (int i = 0; i < parts->cnt; i++) {
        struct part *p = part_find(ks, parts->elems[i].topic, parts->elems[i].partition);
        if (p) {
            unfinished += p->unfinished;
            part_reset(ks, p, false);
        }
    }
    td_log_info(NULL, ks->src->name, NULL,
                "partitions %s: %d%s; %zu records unfinished (their completions are discarded)",
                lost ? "lost" : "revoked", parts->cnt, lost ? ", nothing committed" : "",
                unfinished);
    if (cooperative(ks)) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(ks->rk, parts);
        if (e) {
            report(ks, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_assign(ks->rk, NULL);
    }
}

static void on_assign(struct kafka_source *ks, rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        struct part *p = part_get(ks, parts->elems[i].topic, parts->elems[i].partition);
        if (p) {
            part_reset(ks, p, true);
        }
    }
    if (cooperative(ks)) {
        rd_kafka_error_t *e = rd_kafka_incremental_assign(ks->rk, parts);
        if (e) {
            report(ks, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_resp_err_t err = rd_kafka_assign(ks->rk, parts);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            report(ks, rd_kafka_err2str(err));
        }
    }
    td_log_info(NULL, ks->src->name, NULL, "partitions assigned: %d", parts->cnt);
    set_pause_state(ks, parts);
    read_committed(ks, parts);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kafka_source *ks = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(ks, parts);
    } else {
        on_revoke(ks, parts);
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_source *ks = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT) {
        atomic_store(&ks->src->connected, false);
    }
    report(ks, reason);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    struct kafka_source *ks = rd_kafka_opaque(rk);
    /* A warning at most: the consumer reconnects on its own (error_cb reports the state). */
    td_kafka_log(level, TD_LOG_WARN, ks->name, NULL, fac, buf);
}

/* ---- records ---- */

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ p[i]) * 1099511628211ull;
    }
    return h;
}

/* Builds the message for one record; NULL on out of memory. */
static struct td_msg *record_to_msg(struct kafka_source *ks, const rd_kafka_message_t *rm,
                                    struct part *p)
{
    const char *topic = rd_kafka_topic_name(rm->rkt);
    struct td_kafka_record rec = {0};
    char *ce_source = NULL;
    struct kafka_msg *km = calloc(1, sizeof(*km));
    struct td_msg *msg = km ? &km->msg : NULL;
    if (!msg) {
        goto fail;
    }
    size_t ce_len = strlen(ks->ce_source_prefix) + strlen(topic) + 1;
    ce_source = malloc(ce_len);
    if (!ce_source || td_kafka_record_of(rm, topic, &rec) < 0) {
        goto fail;
    }
    snprintf(ce_source, ce_len, "%s%s", ks->ce_source_prefix, topic);
    char err[256] = "";
    msg->ev = td_ce_from_kafka(&rec, DEFAULT_TYPE, ce_source, &msg->wrapped, err, sizeof(err));
    if (!msg->ev) {
        msg->invalid = strdup(err[0] ? err : "not a valid CloudEvent");
        msg->ev = td_ce_wrap_kafka(&rec, DEFAULT_TYPE, ce_source);
        msg->wrapped = true;
        if (!msg->invalid) {
            goto fail;
        }
    }
    char coord[512];
    snprintf(coord, sizeof(coord), "%s/%" PRId32 "/%" PRId64, topic, rm->partition, rm->offset);
    msg->coord = strdup(coord);
    if (!msg->ev || !msg->coord) {
        goto fail;
    }
    msg->received_ms = td_now_ms();
    msg->ordered = true;
    km->offset = rm->offset;
    msg->gen = p->gen;
    uint64_t h = fnv(1469598103934665603ull, topic, strlen(topic) + 1);
    h = fnv(h, &rm->partition, sizeof(rm->partition));
    msg->lane_partition = h;
    if (rm->key) {
        msg->lane_key = fnv(fnv(h, "k", 1), rm->key, rm->key_len);
    } else {
        msg->lane_key = fnv(h, "n", 1); /* records without a key: in partition order */
    }
    td_kafka_record_release(&rec);
    free(ce_source);
    return msg;
fail:
    td_kafka_record_release(&rec);
    free(ce_source);
    td_msg_free(msg);
    return NULL;
}

/* Polls the consumer without blocking, up to the credit; emits one batch. */
static void poll_records(struct kafka_source *ks)
{
    struct td_msg *head = NULL, **tail = &head;
    int credit = td_source_credit(ks->src);
    int budget = credit > POLL_BATCH ? POLL_BATCH : credit;
    /* Out of credit the consumer is still polled (rebalances, max.poll.interval.ms); records
     * that were already fetched before the pause are emitted anyway: a bounded overshoot. */
    if (budget <= 0) {
        budget = 1;
    }
    size_t queued = rd_kafka_queue_length(ks->queue);
    if (queued > ks->queue_high) {
        ks->queue_high = queued;
    }
    for (int n = 0; n < budget; n++) {
        rd_kafka_message_t *rm = rd_kafka_consumer_poll(ks->rk, 0);
        if (!rm) {
            break;
        }
        if (rm->err) {
            if (rm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                report(ks, rd_kafka_message_errstr(rm));
            }
            rd_kafka_message_destroy(rm);
            continue;
        }
        atomic_store(&ks->src->connected, true);
        ks->last_error[0] = '\0';
        ks->last_record_ms = td_now_ms();
        ks->kick_wait_ms = KICK_AFTER_MS;
        ks->fruitless = 0;
        ks->rec_bytes += (long long)(rm->len + rm->key_len);
        ks->rec_count++;
        const char *topic = rd_kafka_topic_name(rm->rkt);
        struct part *p = part_find(ks, topic, rm->partition);
        if (!p || !p->assigned || p->redeliver_at != 0 || atomic_load(&ks->src->quiesce)) {
            /* revoked meanwhile, stopping, or to be read again from an earlier record */
            rd_kafka_message_destroy(rm);
            continue;
        }
        bool tracked = part_push(p, rm->offset) == 0;
        struct td_msg *msg = tracked ? record_to_msg(ks, rm, p) : NULL;
        if (!msg) {
            td_log_error(NULL, ks->src->name, NULL,
                         "out of memory at %s/%" PRId32 "/%" PRId64 "; it will be redelivered",
                         topic, rm->partition, rm->offset);
            if (tracked) {
                part_done(p, rm->offset, true);
                schedule_redelivery(ks, p, rm->offset);
            } else {
                p->stuck = true; /* not tracked: nothing may be stored past it any more */
            }
            rd_kafka_message_destroy(rm);
            continue;
        }
        rd_kafka_message_destroy(rm);
        *tail = msg;
        tail = &msg->next;
    }
    /* A rebalance inside rd_kafka_consumer_poll may have revoked the partition of records
     * read before it in this batch: those are not ours any more. */
    for (struct td_msg **pp = &head; *pp;) {
        struct td_msg *m = *pp;
        bool current = false;
        for (struct part *p = ks->parts; p && !current; p = p->next) {
            current = p->assigned && p->gen == m->gen;
        }
        if (current) {
            pp = &m->next;
        } else {
            *pp = m->next;
            td_msg_free(m);
        }
    }
    if (head) {
        td_source_emit(ks->src, head);
    }
}

/* ---- the fetcher's wake-up ---- */

/* librdkafka 2.0.2 stops fetching a partition while the consumer queue holds
 * queued.min.messages records or queued.max.messages.kbytes, without a backoff or a wake-up:
 * its broker thread looks again only when something else wakes it (a fetch response, an op)
 * or after its fixed 1 s block (rd_kafka_max_block_ms). A backlog drained slower than it is
 * fetched fills the queue, so every time the queue ran dry the source waited up to a second
 * for the next fetch (measured: 2 MB of queue, 12.8 s of a 16 s drain waiting; 2.2 added
 * fetch.queue.backoff.ms for this). When the queue has been empty for KICK_AFTER_MS, credit is
 * left and a readable partition has records beyond this consumer's position (the watermark
 * from its last fetch response), the partition is sought to that very position: nothing is
 * skipped or read twice (the position is the next record the application has not polled, and
 * the queue is empty, so the seek purges nothing), and the seek is an op that starts the
 * fetcher at once. Only when the queue did reach 90 % of the limit since the last wake-up: a
 * queue that ran dry below it means a fetch is on its way (a slow broker, a busy machine), and a
 * seek would discard it and send it again, over and over.
 * The watermark can be beyond what will ever be delivered (a transaction marker or compacted
 * records at the end of a partition): a wake-up that brought no record doubles the wait, and
 * after KICK_FRUITLESS of them in a row (50 ms .. 1.6 s) there are none until a record comes,
 * so an idle partition is never sought in a loop. Source thread. */
static bool prefetch_was_full(const struct kafka_source *ks)
{
    long limit = ks->prefetch_msgs;
    if (ks->rec_count > 0 && ks->prefetch_kb > 0) {
        long long mean = ks->rec_bytes / ks->rec_count + 1;
        long long by_size = ks->prefetch_kb * 1024 / mean;
        limit = by_size < limit ? (long)by_size : limit;
    }
    return limit > 0 && (long long)ks->queue_high * 10 >= (long long)limit * 9;
}

static void kick_fetcher(struct kafka_source *ks)
{
    int64_t now = td_now_ms();
    if (ks->paused || td_source_credit(ks->src) <= 0 || atomic_load(&ks->src->quiesce) ||
        ks->fruitless >= KICK_FRUITLESS || !prefetch_was_full(ks) ||
        now - ks->last_record_ms < ks->kick_wait_ms || now - ks->last_kick_ms < ks->kick_wait_ms ||
        rd_kafka_queue_length(ks->queue) > 0) {
        return;
    }
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_new(4);
    if (!pos) {
        return;
    }
    for (struct part *p = ks->parts; p; p = p->next) {
        if (p->assigned && !p->paused && !p->revoking && !p->stuck && p->redeliver_at == 0) {
            rd_kafka_topic_partition_list_add(pos, p->topic, p->partition);
        }
    }
    rd_kafka_topic_partition_list_t *seek = rd_kafka_topic_partition_list_new(4);
    if (seek && pos->cnt > 0 && rd_kafka_position(ks->rk, pos) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < pos->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &pos->elems[i];
            int64_t lo = -1, hi = -1;
            if (tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset >= 0 &&
                rd_kafka_get_watermark_offsets(ks->rk, tp->topic, tp->partition, &lo, &hi) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR &&
                hi > tp->offset) {
                rd_kafka_topic_partition_list_add(seek, tp->topic, tp->partition)->offset =
                    tp->offset;
            }
        }
    }
    if (seek && seek->cnt > 0) {
        rd_kafka_error_t *e = rd_kafka_seek_partitions(ks->rk, seek, 0); /* async */
        if (e) {
            td_log_debug(NULL, ks->src->name, NULL, "fetcher wake-up: %s",
                         rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        ks->kicks++;
        ks->fruitless++;
        ks->queue_high = 0;
        ks->kick_wait_ms *= 2;
    }
    ks->last_kick_ms = now;
    if (seek) {
        rd_kafka_topic_partition_list_destroy(seek);
    }
    rd_kafka_topic_partition_list_destroy(pos);
}

/* ---- the thread ---- */

/* Readiness: the source is connected once a broker answered a metadata request (a topic can
 * be empty, or this member hold no partition). Blocks for at most PROBE_MS. */
static void probe(struct kafka_source *ks)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(ks->rk, 0, NULL, &md, PROBE_MS);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(md);
        atomic_store(&ks->src->connected, true);
        if (ks->last_error[0]) {
            td_log_info(NULL, ks->src->name, NULL, "kafka %s: connected again", ks->conf->brokers);
        }
        ks->last_error[0] = '\0';
    } else {
        report(ks, rd_kafka_err2str(err));
    }
}

/* Closes the consumer: the revoke (on_revoke: store, commit), then leaving the group. Like
 * rd_kafka_consumer_close, but that waits for the broker with no bound (its commit, the
 * LeaveGroup), so a shutdown waited as long as a broker did not answer. Here the close runs
 * through a queue of ours, served until it is done or the source's stop deadline (shutdown_grace,
 * td_source_stop_by) passes; given up, destroy() skips the close (NO_CONSUMER_CLOSE) and what
 * was not committed is read again by the group's next consumer, once the broker sees this member
 * gone (session.timeout.ms). A reload retiring the source gives it the same deadline. */
static bool close_consumer(struct kafka_source *ks)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(ks->rk);
    rd_kafka_error_t *e = q ? rd_kafka_consumer_close_queue(ks->rk, q) : NULL;
    if (!q || e) {
        td_log_warn(NULL, ks->src->name, NULL, "consumer close: %s",
                    e ? rd_kafka_error_string(e) : "out of memory");
        if (e) {
            rd_kafka_error_destroy(e);
        }
        if (q) {
            rd_kafka_queue_destroy(q);
        }
        return true; /* nothing to wait for: destroy() may close no further */
    }
    while (!rd_kafka_consumer_closed(ks->rk)) {
        int64_t left = stop_wait_left(ks, 100);
        if (left <= 0) {
            break;
        }
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (int)left);
        if (!ev) {
            continue;
        }
        switch (rd_kafka_event_type(ev)) {
        case RD_KAFKA_EVENT_REBALANCE: /* the revoke: we unassign (on_revoke) */
            rebalance_cb(ks->rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev),
                         ks);
            break;
        case RD_KAFKA_EVENT_ERROR:
            report(ks, rd_kafka_event_error_string(ev));
            break;
        default: /* records fetched before the close, commit results: nothing to do */
            break;
        }
        rd_kafka_event_destroy(ev);
    }
    bool closed = rd_kafka_consumer_closed(ks->rk);
    if (!closed) {
        td_log_warn(NULL, ks->src->name, NULL,
                    "consumer close given up at the end of shutdown_grace (the broker did not "
                    "answer); offsets not committed are read again by the group's next consumer");
    }
    rd_kafka_queue_destroy(q);
    return closed;
}

static void *run(void *arg)
{
    struct kafka_source *ks = arg;
    int64_t next_probe = 0;
    int64_t next_drain = 0;
    /* The lag thread is this thread's: started here and stopped below, before the consumer
     * closes, so no other thread waits for it or touches group_lag. */
    ks->group_lag = td_kafka_lag_start(ks->src, ks->conf, ks->rk); /* NULL: logged, runs on */
    while (!atomic_load(&ks->src->stop)) {
        if (!atomic_load(&ks->src->connected) && td_now_ms() >= next_probe) {
            probe(ks);
            next_probe = td_now_ms() + 1000;
        }
        /* Completions are taken at most every DRAIN_EVERY_MS while credit is left: one
         * wake-up and one offsets_store per batch of them, not per completion (the loop
         * signals the mailbox only when it finds it empty). Out of credit, at once. */
        int64_t now = td_now_ms();
        if (now >= next_drain || ks->paused || td_source_credit(ks->src) <= 0) {
            drain_mailbox(ks);
            next_drain = now + DRAIN_EVERY_MS;
        }
        redeliver_due(ks);
        update_backpressure(ks);
        /* Out of credit but not paused yet: nothing is read, the mailbox is watched. */
        bool dry = ks->dry_since != 0;
        if (!dry) {
            poll_records(ks);
            kick_fetcher(ks);
        }
        report_lag(ks);
        now = td_now_ms();
        bool drain_due = now >= next_drain || ks->paused || dry;
        int timeout = drain_due ? 100 : (int)(next_drain - now);
        if (timeout > KICK_AFTER_MS && now - ks->last_record_ms < 1000) {
            timeout = KICK_AFTER_MS; /* records were flowing: kick_fetcher may be due */
        }
        struct pollfd pfd[3] = {{.fd = ks->src->stopfd, .events = POLLIN},
                                {.fd = ks->qpipe[0], .events = POLLIN},
                                {.fd = ks->src->mailbox_fd, .events = POLLIN}};
        /* The timeout is a safety net: librdkafka signals the pipe when its queue gets
         * events, but only on the empty-to-non-empty edge. Before the next drain is due the
         * mailbox is not watched; the timeout ends at it. */
        int rc = poll(pfd, drain_due ? 3 : 2, timeout);
        if (rc < 0 && errno != EINTR) {
            break;
        }
        if (pfd[1].revents & POLLIN) {
            char buf[256];
            while (read(ks->qpipe[0], buf, sizeof(buf)) > 0) {
            }
        }
    }
    ks->stopping = true;
    /* The lag thread asks through the consumer, so it must be gone before the consumer closes.
     * It is joined here, not by ops->stop: it may be inside a request (up to 3 s), and ops->stop
     * is called on the loop thread (reload.c joins only a thread that has left, teardown any),
     * which must not wait for that; the wait (and the close after it, which waits for the
     * broker) costs only this thread's exit. Told first, so its request overlaps the mailbox
     * drain. */
    td_kafka_lag_signal(ks->group_lag);
    td_log_debug(NULL, ks->src->name, NULL, "fetcher wake-ups: %lld", ks->kicks);
    drain_mailbox(ks);
    td_kafka_lag_stop(ks->group_lag);
    ks->group_lag = NULL;
    /* Read by destroy() after the join. */
    ks->abandoned = !close_consumer(ks);
    return NULL;
}

/* ---- the plugin ---- */

/* The source thread starts and stops its lag thread itself (run). */
static int start(struct td_source *src)
{
    return td_source_spawn(src, run, src->impl);
}

static void stop(struct td_source *src)
{
    td_source_stop_thread(src);
}

/* Frees ks and its handle. Touches neither ks->src nor ks->conf: on a reaper thread they may be
 * freed already. */
static void free_impl(struct kafka_source *ks)
{
    if (ks->queue) {
        rd_kafka_queue_destroy(ks->queue);
    }
    if (ks->rk) {
        /* run closed the consumer, or gave up at its deadline (close_consumer); a plain
         * rd_kafka_destroy would close it here again, waiting for the broker with no bound. */
        rd_kafka_destroy_flags(ks->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    while (ks->parts) {
        struct part *p = ks->parts;
        ks->parts = p->next;
        free(p->topic);
        free(p->ring);
        free(p);
    }
    for (int i = 0; i < 2; i++) {
        if (ks->qpipe[i] >= 0) {
            close(ks->qpipe[i]);
        }
    }
    free(ks->ce_source_prefix);
    free(ks->name);
    free(ks);
}

/* A consumer whose close was given up (abandoned): rd_kafka_destroy still waits for the group
 * handler to finish, i.e. for the broker to answer (or its requests to time out, up to
 * socket.timeout.ms), even with NO_CONSUMER_CLOSE. Shutdown must not wait for that, so the
 * handle and ks go to a detached thread of their own that destroys them whenever librdkafka
 * lets it; the process normally exits first, which closes the sockets. Nothing waits there to be
 * committed: the stored offsets that were not committed are read again (at least once). */
static void *reap(void *arg)
{
    free_impl(arg);
    return NULL;
}

static void destroy(struct td_source *src)
{
    struct kafka_source *ks = src->impl;
    if (!ks) {
        return;
    }
    stop(src);
    src->impl = NULL;
    if (ks->abandoned) {
        pthread_t t;
        pthread_attr_t attr;
        bool spawned = false;
        if (pthread_attr_init(&attr) == 0) {
            spawned = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
                      pthread_create(&t, &attr, reap, ks) == 0;
            pthread_attr_destroy(&attr);
        }
        if (spawned) {
            td_source_leave_behind(); /* the daemon leaves with _exit (source.h) */
            return;                   /* reap owns ks */
        }
        td_log_warn(NULL, src->name, NULL,
                    "no thread for the abandoned consumer: waiting for its broker here");
    }
    free_impl(ks);
}

static int set(rd_kafka_conf_t *conf, const char *key, const char *value, const char *srcname,
               char *err, size_t errlen)
{
    char why[256];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        /* The value may be a secret: name the key, never the value. */
        snprintf(err, errlen, "source '%s': property '%s': %s", srcname, key, why);
        return -1;
    }
    return 0;
}

static int init(struct td_source *src, char *err, size_t errlen);

/* ---- settings: kafka: {brokers, topics, group, start, properties, tls, sasl} ---- */
#define OFF(f) offsetof(struct td_conf_kafka_source, f)

static const struct td_conf_key kafka_source_keys[] = {
    REQ_STR("brokers", OFF(brokers)),
    {.name = "topics",
     .type = TD_K_STRLIST,
     .off = OFF(topics),
     .off2 = OFF(ntopics),
     .min = 1,
     .required = true},
    STR_D("group", OFF(group), "triggerd"),
    {.name = "start",
     .type = TD_K_STR,
     .off = OFF(start),
     .names = td_source_start_names,
     .dflt = "earliest"},
    {.name = "properties", .type = TD_K_STRMAP, .off = OFF(properties)},
    NESTED("tls", OFF(sec.tls), &td_kafka_tls_table),
    NESTED("sasl", OFF(sec.sasl), &td_kafka_sasl_table),
};
static int check_keys(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    return td_kafka_security_check_keys(ld, map, &((struct td_conf_kafka_source *)base)->sec);
}

static const struct td_conf_table kafka_source_table = {TABLE("kafka source", kafka_source_keys),
                                                        .check = check_keys};
#undef OFF

/* `check`: librdkafka must take every property, as at start; the TLS files must be usable. */
static void check(const struct td_config *cfg, const struct td_conf_source *src,
                  struct td_errors *errs)
{
    const struct td_conf_kafka_source *c = TD_SETTINGS(src, struct td_conf_kafka_source);
    char who[300];
    snprintf(who, sizeof(who), "source '%s'", src->name);
    td_kafka_check_properties(&c->properties, "source", src->name, &src->pos, errs);
    td_kafka_security_check(&c->sec, who, &src->pos, errs);
}

static bool same_security(const void *a, const void *b)
{
    return td_kafka_security_same(&((const struct td_conf_kafka_source *)a)->sec,
                                  &((const struct td_conf_kafka_source *)b)->sec);
}

const struct td_source_ops td_source_kafka_ops = {
    TD_SOURCE_KIND("kafka", TD_SOURCE_KAFKA, &kafka_source_table, struct td_conf_kafka_source),
    .conf.same = same_security,
    .check = check,
    .backlog_metric = "triggerd_kafka_consumer_lag",
    .backlog_help =
        "Messages between the committed offsets and the end of the assigned partitions.",
    .lag_families = td_kafka_lag_families,
    .init = init,
    .start = start,
    .quiesce = td_source_quiesce,
    .stop = stop,
    .destroy = destroy,
};

static int init(struct td_source *src, char *err, size_t errlen)
{
    const struct td_conf_kafka_source *conf = src->conf->settings;
    rd_kafka_conf_t *kc = NULL;
    rd_kafka_topic_partition_list_t *topics = NULL;
    struct kafka_source *ks = calloc(1, sizeof(*ks));
    if (!ks) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ks->src = src;
    ks->conf = conf;
    ks->name = strdup(src->name);
    ks->qpipe[0] = ks->qpipe[1] = -1;
    ks->kick_wait_ms = KICK_AFTER_MS;
    if (!conf->brokers || conf->ntopics == 0) {
        snprintf(err, errlen, "source '%s': kafka needs brokers and topics", src->name);
        goto fail;
    }
    const char *start_at = conf->start;
    if (strcmp(start_at, "earliest") != 0 && strcmp(start_at, "latest") != 0) {
        snprintf(err, errlen, "source '%s': start must be earliest or latest", src->name);
        goto fail;
    }
    char who[300];
    snprintf(who, sizeof(who), "source '%s'", src->name);
    /* A wrong TLS file would fail every connection: refuse to start instead (check reports it
     * with its position). */
    if (td_kafka_security_files_ok(&conf->sec, who, err, errlen) < 0) {
        goto fail;
    }
    size_t plen = strlen(conf->brokers) + 16;
    ks->ce_source_prefix = malloc(plen);
    kc = rd_kafka_conf_new();
    if (!ks->name || !ks->ce_source_prefix || !kc || pipe2(ks->qpipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "source '%s': out of memory or descriptors", src->name);
        goto fail;
    }
    snprintf(ks->ce_source_prefix, plen, "kafka://%s/", conf->brokers);
    /* The prefetch (records fetched, not yet read) is bounded relative to what the source may
     * hold anyway (max_inflight) and in bytes: it is most of the source's memory (peak RSS),
     * and beyond a few batches of credit it buys nothing but a longer refill; kick_fetcher
     * keeps the refill from waiting once it is used up. */
    char prefetch[24];
    long pmin = (long)src->conf->max_inflight * PREFETCH_MULT;
    snprintf(prefetch, sizeof(prefetch), "%ld", pmin > PREFETCH_MIN ? pmin : PREFETCH_MIN);
    /* Our defaults first, then the user's properties, then what at-least-once needs. */
    if (set(kc, "group.id", conf->group, src->name, err, errlen) < 0 ||
        set(kc, "bootstrap.servers", conf->brokers, src->name, err, errlen) < 0 ||
        set(kc, "auto.offset.reset", start_at, src->name, err, errlen) < 0 ||
        set(kc, "auto.commit.interval.ms", "1000", src->name, err, errlen) < 0 ||
        set(kc, "queued.max.messages.kbytes", PREFETCH_KB, src->name, err, errlen) < 0 ||
        set(kc, "queued.min.messages", prefetch, src->name, err, errlen) < 0 ||
        set(kc, "client.id", "triggerd", src->name, err, errlen) < 0 ||
        td_kafka_security_apply(kc, &conf->sec, who, err, errlen) < 0) {
        goto fail;
    }
    /* the user's properties after tls: and sasl:, so that an explicit one wins */
    for (size_t i = 0; i < conf->properties.n; i++) {
        if (set(kc, conf->properties.items[i].key, conf->properties.items[i].value, src->name, err,
                errlen) < 0) {
            goto fail;
        }
    }
    if (set(kc, "enable.auto.offset.store", "false", src->name, err, errlen) < 0 ||
        set(kc, "enable.auto.commit", "true", src->name, err, errlen) < 0 ||
        set(kc, "enable.partition.eof", "false", src->name, err, errlen) < 0) {
        goto fail;
    }
    rd_kafka_conf_set_opaque(kc, ks);
    rd_kafka_conf_set_rebalance_cb(kc, rebalance_cb);
    rd_kafka_conf_set_error_cb(kc, error_cb);
    rd_kafka_conf_set_log_cb(kc, log_cb);
    char why[512];
    ks->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, why, sizeof(why));
    if (!ks->rk) {
        snprintf(err, errlen, "source '%s': %s", src->name, why);
        goto fail;
    }
    kc = NULL; /* rd_kafka_new took it */
    if (td_kafka_security_started(ks->rk, &conf->sec, who, err, errlen) < 0) {
        goto fail;
    }
    char val[32];
    size_t vlen = sizeof(val);
    if (rd_kafka_conf_get(rd_kafka_conf(ks->rk), "queued.min.messages", val, &vlen) ==
        RD_KAFKA_CONF_OK) {
        ks->prefetch_msgs = strtol(val, NULL, 10);
    }
    vlen = sizeof(val);
    if (rd_kafka_conf_get(rd_kafka_conf(ks->rk), "queued.max.messages.kbytes", val, &vlen) ==
        RD_KAFKA_CONF_OK) {
        ks->prefetch_kb = strtol(val, NULL, 10);
    }
    rd_kafka_poll_set_consumer(ks->rk);
    ks->queue = rd_kafka_queue_get_consumer(ks->rk);
    if (!ks->queue) {
        snprintf(err, errlen, "source '%s': no consumer queue", src->name);
        goto fail;
    }
    rd_kafka_queue_io_event_enable(ks->queue, ks->qpipe[1], "1", 1);
    topics = rd_kafka_topic_partition_list_new((int)conf->ntopics);
    if (!topics) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < conf->ntopics; i++) {
        rd_kafka_topic_partition_list_add(topics, conf->topics[i], RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(ks->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "source '%s': subscribe: %s", src->name, rd_kafka_err2str(rerr));
        goto fail;
    }
    src->impl = ks;
    return 0;
fail:
    if (kc) {
        rd_kafka_conf_destroy(kc);
    }
    src->impl = ks;
    destroy(src);
    return -1;
}
