/* redis.c - the Redis Streams source.
 *
 * One thread, two connections (redis_conn.h: plain or TLS, the same code; a BLOCK read
 * occupies its connection until it returns):
 *  - `rd` carries XREADGROUP ... BLOCK, written and then read only when poll(2) says the
 *    socket is ready, so the thread also wakes for completions and for stop;
 *  - `ack` carries XGROUP, XACK, XPENDING and XCLAIM synchronously, each with a deadline.
 * It reads its own pending entries first (id 0, what a previous run left unacked), then new
 * ones (>). Completed messages come back through the mailbox and are XACKed together, a
 * read batch at a time or after ACK_DELAY_MS (acks_due); an XACK that fails is kept and sent
 * again after the reconnect. Reads wait for credit worth one the same way (read_worth_it). Released
 * messages are not acked: they stay in the pending list and the reaper claims them again.
 * The reaper claims entries idle longer than claim_idle (from consumers that died, or replies
 * lost with a connection), skipping what this process still has in flight, and dead-letters
 * an entry delivered more than max_deliveries times.
 */
#include <limits.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ce_redis.h"
#include "cloudevent.h"
#include "conf_table.h"
#include "dl_reasons.h"
#include "log.h"
#include "loop.h"
#include "redis_conn.h"
#include "redis_lag.h"
#include "redis_source.h"
#include "redis_util.h"
#include "source.h"

#define DEFAULT_TYPE    "dev.triggerd.redis.entry"
#define IO_TIMEOUT_MS   5000
#define REAP_BATCH      100
#define FIELDS_ON_STACK 32
/* Completed ids wait at most this long for more to share their XACK. One XACK per handful of
 * completions cost Redis and this thread a round trip each; the wait only delays the ack (the
 * function already has the event), and an entry whose ack is lost is redelivered, never lost. */
#define ACK_DELAY_MS 5
/* Credit below a read's worth is read anyway after this long (read_worth_it). */
#define TOPUP_MS 5

/* A set of entry ids: what this process has in flight. Chained hash, grows with load. */
struct id_node {
    struct id_node *next;
    size_t hash; /* id_hash(id): compared before the string, and kept for a regrow */
    char id[];
};

struct id_set {
    struct id_node **buckets;
    size_t nbuckets;
    size_t n;
};

struct redis_source {
    struct td_source *src;
    const struct td_conf_redis_source *conf;
    struct td_redis_addr addr;
    int db;
    const struct td_redis_tls *tls; /* in conf; NULL: plain */
    char *ce_source;                /* the CloudEvents source of wrapped entries */
    struct td_rconn *rd;
    struct td_rconn *ack;
    short rd_want;         /* the poll events rd waits for */
    bool outstanding;      /* an XREADGROUP is in flight on rd */
    int64_t read_deadline; /* give up on it (dead connection) after BLOCK + IO_TIMEOUT_MS */
    bool own_pending;      /* still reading our own pending entries */
    char cursor[64];       /* the last own-pending id read */
    struct id_set inflight;
    struct td_msg *parked; /* completions held while an own-pending read is out (drain_mailbox) */
    char **unacked;        /* completed ids whose XACK has not gone through */
    size_t nunacked, capunacked;
    int64_t ack_due_ms;    /* when the oldest of them must be sent at the latest (ACK_DELAY_MS) */
    int64_t short_since;   /* since when the credit has been too little for a read, 0: it is not */
    bool reading;          /* an XREADGROUP reply (in rd's arena) is being handled */
    bool disconnect_later; /* a failure while reading: disconnect once the reply is freed */
    int64_t next_reap_ms;
    int64_t next_backlog_ms;
    int64_t next_lag_ms; /* report_lag */
    char last_error[256];
};

/* ---- the id set ---- */

static size_t id_hash(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

static bool id_set_has(const struct id_set *set, const char *id)
{
    if (!set->nbuckets) {
        return false;
    }
    size_t h = id_hash(id);
    for (struct id_node *n = set->buckets[h % set->nbuckets]; n; n = n->next) {
        if (n->hash == h && strcmp(n->id, id) == 0) {
            return true;
        }
    }
    return false;
}

static int id_set_add(struct id_set *set, const char *id)
{
    if (set->n + 1 > set->nbuckets) {
        size_t nb = set->nbuckets ? set->nbuckets * 2 : 256;
        struct id_node **b = calloc(nb, sizeof(*b));
        if (!b) {
            return -1;
        }
        for (size_t i = 0; i < set->nbuckets; i++) {
            for (struct id_node *n = set->buckets[i], *next; n; n = next) {
                next = n->next;
                n->next = b[n->hash % nb];
                b[n->hash % nb] = n;
            }
        }
        free(set->buckets);
        set->buckets = b;
        set->nbuckets = nb;
    }
    size_t len = strlen(id);
    struct id_node *n = malloc(sizeof(*n) + len + 1);
    if (!n) {
        return -1;
    }
    memcpy(n->id, id, len + 1);
    n->hash = id_hash(id);
    n->next = set->buckets[n->hash % set->nbuckets];
    set->buckets[n->hash % set->nbuckets] = n;
    set->n++;
    return 0;
}

static void id_set_del(struct id_set *set, const char *id)
{
    if (!set->nbuckets) {
        return;
    }
    size_t h = id_hash(id);
    struct id_node **pp = &set->buckets[h % set->nbuckets];
    for (; *pp; pp = &(*pp)->next) {
        if ((*pp)->hash == h && strcmp((*pp)->id, id) == 0) {
            struct id_node *n = *pp;
            *pp = n->next;
            free(n);
            set->n--;
            return;
        }
    }
}

static void id_set_free(struct id_set *set)
{
    for (size_t i = 0; i < set->nbuckets; i++) {
        for (struct id_node *n = set->buckets[i], *next; n; n = next) {
            next = n->next;
            free(n);
        }
    }
    free(set->buckets);
    memset(set, 0, sizeof(*set));
}

/* ---- connections ---- */

static void disconnect(struct redis_source *rs)
{
    if (rs->reading) {
        /* The XREADGROUP reply being handled lives in rd's arena: the connections go once it
         * has been freed (take_read_reply). */
        rs->disconnect_later = true;
        return;
    }
    td_rconn_free(rs->rd);
    rs->rd = NULL;
    td_rconn_free(rs->ack);
    rs->ack = NULL;
    rs->outstanding = false;
    atomic_store(&rs->src->connected, false);
    td_source_set_lag(rs->src, NULL, 0, -1); /* unknown until connected again, never stale */
}

/* Logs a connection problem once per distinct message, so an outage is one line. */
static void report(struct redis_source *rs, const char *what)
{
    if (strcmp(rs->last_error, what) != 0) {
        td_log_warn(NULL, rs->src->name, NULL, "redis %s:%d: %s", rs->addr.host, rs->addr.port,
                    what);
        snprintf(rs->last_error, sizeof(rs->last_error), "%s", what);
    }
}

static redisReply *ack_command(struct redis_source *rs, int argc, const char **argv,
                               const size_t *lens)
{
    redisReply *r = td_rconn_command_argv(rs->ack, IO_TIMEOUT_MS, argc, argv, lens);
    if (!r) {
        report(rs, td_rconn_error(rs->ack)[0] ? td_rconn_error(rs->ack) : "connection lost");
        disconnect(rs);
    }
    return r;
}

static int connect_both(struct redis_source *rs)
{
    char err[256];
    /* Connecting gives up when the thread is told to stop: a server that does not answer
     * (a TCP connect, a handshake, AUTH) never holds up shutdown or a reload. */
    int stopfd = rs->src->stopfd;
    rs->rd = td_redis_open(&rs->addr, rs->tls, rs->db, IO_TIMEOUT_MS, stopfd, err, sizeof(err));
    if (rs->rd) {
        rs->ack =
            td_redis_open(&rs->addr, rs->tls, rs->db, IO_TIMEOUT_MS, stopfd, err, sizeof(err));
    }
    if (!rs->rd || !rs->ack) {
        if (!atomic_load(&rs->src->stop)) {
            report(rs, err); /* not "stopped while waiting": that is no problem of Redis */
        }
        disconnect(rs);
        return -1;
    }
    /* Once connected, no more: the XACKs of the last completions go out after stop is set,
     * but a command waits no later than the stop deadline (shutdown_grace), so one begun just
     * before it does not hold the stop for a whole IO_TIMEOUT_MS. */
    td_rconn_set_cancel_fd(rs->rd, -1);
    td_rconn_set_stop_by(rs->rd, stopfd, &rs->src->stop_by_ms);
    /* XREADGROUP replies are a few thousand parts each: built in an arena. Without one (out
     * of memory) they are malloc'd as before. */
    (void)td_rconn_use_arena(rs->rd);
    td_rconn_set_cancel_fd(rs->ack, -1);
    td_rconn_set_stop_by(rs->ack, stopfd, &rs->src->stop_by_ms);
    const char *start = strcmp(rs->conf->start, "latest") == 0 ? "$" : "0";
    const char *argv[] = {"XGROUP", "CREATE", rs->conf->stream, rs->conf->group, start, "MKSTREAM"};
    size_t lens[6];
    for (int i = 0; i < 6; i++) {
        lens[i] = strlen(argv[i]);
    }
    redisReply *r = ack_command(rs, 6, argv, lens);
    if (!r) {
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
        report(rs, r->str);
        freeReplyObject(r);
        disconnect(rs);
        return -1;
    }
    freeReplyObject(r);
    if (rs->last_error[0]) {
        td_log_info(NULL, rs->src->name, NULL, "redis %s:%d: connected again", rs->addr.host,
                    rs->addr.port);
    }
    rs->last_error[0] = '\0';
    /* Read our own pending list again from the start: entries whose XREADGROUP reply was
     * lost with the old connection are there (what is still in flight here is skipped). */
    rs->own_pending = true;
    snprintf(rs->cursor, sizeof(rs->cursor), "0");
    atomic_store(&rs->src->connected, true);
    return 0;
}

/* ---- acks ---- */

static void remember_ack(struct redis_source *rs, char *id)
{
    if (rs->nunacked == rs->capunacked) {
        size_t cap = rs->capunacked ? rs->capunacked * 2 : 256;
        char **a = realloc(rs->unacked, cap * sizeof(*a));
        if (!a) {
            /* Without memory the entry stays pending and is claimed again: a duplicate,
             * never a loss. */
            free(id);
            return;
        }
        rs->unacked = a;
        rs->capunacked = cap;
    }
    if (rs->nunacked == 0) {
        rs->ack_due_ms = td_now_ms() + ACK_DELAY_MS;
    }
    rs->unacked[rs->nunacked++] = id;
}

/* Whether the completed ids should go now: a read batch of them, nothing left in flight that
 * could join them, or the oldest has waited ACK_DELAY_MS. */
static bool acks_due(struct redis_source *rs)
{
    if (rs->nunacked == 0) {
        return false;
    }
    return rs->nunacked >= (size_t)rs->conf->batch || atomic_load(&rs->src->inflight) == 0 ||
           td_now_ms() >= rs->ack_due_ms;
}

static void flush_acks(struct redis_source *rs)
{
    if (!rs->ack || rs->nunacked == 0) {
        return;
    }
    size_t n = rs->nunacked;
    const char **argv = malloc((n + 3) * sizeof(*argv));
    size_t *lens = malloc((n + 3) * sizeof(*lens));
    if (!argv || !lens) {
        free(argv);
        free(lens);
        return;
    }
    argv[0] = "XACK";
    argv[1] = rs->conf->stream;
    argv[2] = rs->conf->group;
    for (size_t i = 0; i < n; i++) {
        argv[i + 3] = rs->unacked[i];
    }
    for (size_t i = 0; i < n + 3; i++) {
        lens[i] = strlen(argv[i]);
    }
    redisReply *r = ack_command(rs, (int)(n + 3), argv, lens);
    free(argv);
    free(lens);
    if (!r) {
        return; /* kept for after the reconnect */
    }
    if (r->type == REDIS_REPLY_ERROR) {
        report(rs, r->str);
        freeReplyObject(r);
        disconnect(rs);
        return;
    }
    freeReplyObject(r);
    atomic_fetch_add(&rs->src->acked, (long long)n);
    for (size_t i = 0; i < n; i++) {
        free(rs->unacked[i]);
    }
    rs->nunacked = 0;
}

/* One completed message: out of the in-flight set, its id kept for the XACK (unless released). */
static void complete(struct redis_source *rs, struct td_msg *done)
{
    id_set_del(&rs->inflight, done->coord);
    if (!done->release) {
        remember_ack(rs, done->coord);
        done->coord = NULL;
    }
    td_msg_free(done);
}

/* Takes the completions. While an own-pending read (an id, not ">") is on its way they are held
 * in `parked`, still in the in-flight set: Redis may have run that read before their XACK, and
 * its reply then lists them again; emit_entries skips what is in the set, and they complete once
 * the reply was handled (or the connection lost). `final` (stopping) completes everything. */
static void drain_mailbox(struct redis_source *rs, bool final)
{
    bool hold = !final && rs->outstanding && rs->own_pending;
    size_t held = 0;
    while (!hold && rs->parked) {
        struct td_msg *next = rs->parked->next;
        complete(rs, rs->parked);
        rs->parked = next;
        held++;
    }
    if (held > 0) {
        td_log_debug(NULL, rs->src->name, NULL, "%zu completions were held for an own-pending read",
                     held);
    }
    struct td_msg *done = td_source_take_done(rs->src);
    while (done) {
        struct td_msg *next = done->next;
        if (hold) {
            done->next = rs->parked;
            rs->parked = done;
        } else {
            complete(rs, done);
        }
        done = next;
    }
    if (acks_due(rs)) {
        flush_acks(rs);
    }
}

/* ---- reading ---- */

/* Builds a message from one [id, [field, value, ...]] entry. NULL for a deleted entry or out
 * of memory. */
static struct td_msg *entry_to_msg(struct redis_source *rs, const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING ||
        entry->element[1]->type != REDIS_REPLY_ARRAY) {
        return NULL;
    }
    const redisReply *kv = entry->element[1];
    size_t n = kv->elements / 2;
    /* The field lists on the stack for the usual entry (a CloudEvent has ~10 fields); the
     * heap only for a big one. */
    const char *fbuf[FIELDS_ON_STACK], *vbuf[FIELDS_ON_STACK];
    size_t flbuf[FIELDS_ON_STACK], vlbuf[FIELDS_ON_STACK];
    bool heap = n + 1 > FIELDS_ON_STACK;
    const char **fields = heap ? calloc(n + 1, sizeof(*fields)) : fbuf;
    const char **values = heap ? calloc(n + 1, sizeof(*values)) : vbuf;
    size_t *flens = heap ? calloc(n + 1, sizeof(*flens)) : flbuf;
    size_t *vlens = heap ? calloc(n + 1, sizeof(*vlens)) : vlbuf;
    struct td_msg *msg = calloc(1, sizeof(*msg));
    if (!fields || !values || !flens || !vlens || !msg) {
        goto fail;
    }
    size_t m = 0;
    for (size_t i = 0; i + 1 < kv->elements; i += 2) {
        const redisReply *f = kv->element[i], *v = kv->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            continue;
        }
        fields[m] = f->str;
        flens[m] = (size_t)f->len;
        values[m] = v->str;
        vlens[m] = (size_t)v->len;
        m++;
    }
    struct td_redis_entry e = {
        .id = entry->element[0]->str,
        .fields = fields,
        .field_lens = flens,
        .values = values,
        .value_lens = vlens,
        .n = m,
    };
    char err[256] = "";
    msg->ev = td_ce_from_redis(&e, DEFAULT_TYPE, rs->ce_source, &msg->wrapped, err, sizeof(err));
    if (!msg->ev) {
        msg->invalid = strdup(err[0] ? err : "not a valid CloudEvent");
        msg->ev = td_ce_salvage_redis(&e, DEFAULT_TYPE, rs->ce_source);
        msg->wrapped = false;
    }
    msg->coord = strdup(e.id);
    if (!msg->ev || !msg->coord) {
        goto fail;
    }
    msg->received_ms = td_now_ms();
    if (heap) {
        free(fields);
        free(values);
        free(flens);
        free(vlens);
    }
    return msg;
fail:
    if (heap) {
        free(fields);
        free(values);
        free(flens);
        free(vlens);
    }
    td_msg_free(msg);
    return NULL;
}

/* Emits the entries of one entry list; returns how many there were (deleted ones included). */
static size_t emit_entries(struct redis_source *rs, const redisReply *entries, int64_t counts[],
                           char *last_id, size_t last_len)
{
    struct td_msg *head = NULL, **tail = &head;
    size_t seen = 0;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *entry = entries->element[i];
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 1 ||
            entry->element[0]->type != REDIS_REPLY_STRING) {
            continue;
        }
        seen++;
        const char *id = entry->element[0]->str;
        if (last_id) {
            snprintf(last_id, last_len, "%s", id);
        }
        if (id_set_has(&rs->inflight, id)) {
            continue; /* already being delivered here */
        }
        if (entry->elements < 2 || entry->element[1]->type != REDIS_REPLY_ARRAY) {
            /* The entry was deleted (XDEL/trimmed) while pending: nothing left to deliver. */
            td_log_warn(NULL, rs->src->name, id, "pending entry no longer exists; acknowledged");
            char *copy = strdup(id);
            if (copy) {
                remember_ack(rs, copy);
            }
            continue;
        }
        struct td_msg *msg = entry_to_msg(rs, entry);
        if (!msg) {
            td_log_error(NULL, rs->src->name, id, "out of memory; the entry stays pending");
            continue;
        }
        if (counts) {
            msg->deliveries = (int)(counts[i] < INT32_MAX ? counts[i] : INT32_MAX);
        }
        if (counts && rs->conf->max_deliveries > 0 && counts[i] > rs->conf->max_deliveries) {
            msg->dl_reason = TD_DL_MAX_DELIVERIES;
        }
        if (id_set_add(&rs->inflight, id) < 0) {
            td_msg_free(msg);
            continue;
        }
        *tail = msg;
        tail = &msg->next;
    }
    if (head) {
        td_source_emit(rs->src, head);
    }
    return seen;
}

static int send_read(struct redis_source *rs, int count)
{
    char countbuf[16], blockbuf[24];
    snprintf(countbuf, sizeof(countbuf), "%d", count);
    snprintf(blockbuf, sizeof(blockbuf), "%lld", (long long)rs->conf->block_ms);
    const char *argv[] = {"XREADGROUP",
                          "GROUP",
                          rs->conf->group,
                          rs->conf->consumer,
                          "COUNT",
                          countbuf,
                          "BLOCK",
                          blockbuf,
                          "STREAMS",
                          rs->conf->stream,
                          rs->own_pending ? rs->cursor : ">"};
    size_t argc = sizeof(argv) / sizeof(argv[0]);
    size_t lens[sizeof(argv) / sizeof(argv[0])];
    for (size_t i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    /* A few hundred bytes: written at once unless the connection is broken (the deadline). */
    if (td_rconn_append(rs->rd, (int)argc, argv, lens) < 0 ||
        td_rconn_wait(rs->rd, td_now_ms() + IO_TIMEOUT_MS, NULL) < 0) {
        return -1;
    }
    rs->rd_want = POLLIN;
    rs->outstanding = true;
    /* A read of our own pending entries (an id, not ">") never blocks: Redis ignores BLOCK. */
    rs->read_deadline = td_now_ms() + (rs->own_pending ? 0 : rs->conf->block_ms) + IO_TIMEOUT_MS;
    return 0;
}

/* Delivery counts of the entries of an own-pending read, lined up with entries->element, from
 * XPENDING over their id range for this consumer; malloc'd (the caller frees), or NULL when
 * max_deliveries is off or the counts could not be had (then they go unchecked this time). A
 * poison entry that kills the daemon would otherwise come back at every restart forever. */
static int64_t *own_counts(struct redis_source *rs, const redisReply *entries)
{
    size_t n = entries->elements;
    if (rs->conf->max_deliveries <= 0 || n == 0 || !rs->ack) {
        return NULL;
    }
    const redisReply *first = entries->element[0], *last = entries->element[n - 1];
    if (first->type != REDIS_REPLY_ARRAY || first->elements < 1 ||
        first->element[0]->type != REDIS_REPLY_STRING || last->type != REDIS_REPLY_ARRAY ||
        last->elements < 1 || last->element[0]->type != REDIS_REPLY_STRING) {
        return NULL;
    }
    char count[24];
    snprintf(count, sizeof(count), "%zu", n);
    const char *argv[] = {"XPENDING",
                          rs->conf->stream,
                          rs->conf->group,
                          first->element[0]->str,
                          last->element[0]->str,
                          count,
                          rs->conf->consumer};
    size_t lens[7];
    for (int i = 0; i < 7; i++) {
        lens[i] = strlen(argv[i]);
    }
    redisReply *rows = ack_command(rs, 7, argv, lens);
    int64_t *counts = NULL;
    if (rows && rows->type == REDIS_REPLY_ARRAY && (counts = calloc(n, sizeof(*counts)))) {
        for (size_t i = 0; i < n; i++) {
            const redisReply *e = entries->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 1) {
                continue;
            }
            for (size_t j = 0; j < rows->elements; j++) { /* at most 100 x 100 */
                const redisReply *row = rows->element[j];
                if (row->type == REDIS_REPLY_ARRAY && row->elements >= 4 &&
                    row->element[0]->type == REDIS_REPLY_STRING &&
                    strcmp(row->element[0]->str, e->element[0]->str) == 0) {
                    counts[i] = row->element[3]->integer;
                    break;
                }
            }
        }
    }
    if (rows) {
        freeReplyObject(rows);
    }
    return counts;
}

static void handle_read_reply(struct redis_source *rs, redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR) {
        report(rs, r->str); /* NOGROUP after the stream was deleted: reconnect recreates it */
        disconnect(rs);
        return;
    }
    size_t seen = 0;
    if (r->type == REDIS_REPLY_ARRAY && !atomic_load(&rs->src->quiesce)) {
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *stream = r->element[i];
            if (stream->type == REDIS_REPLY_ARRAY && stream->elements == 2 &&
                stream->element[1]->type == REDIS_REPLY_ARRAY) {
                int64_t *counts = rs->own_pending ? own_counts(rs, stream->element[1]) : NULL;
                seen += emit_entries(rs, stream->element[1], counts,
                                     rs->own_pending ? rs->cursor : NULL, sizeof(rs->cursor));
                free(counts);
            }
        }
    }
    if (rs->own_pending && seen == 0 && !atomic_load(&rs->src->quiesce)) {
        rs->own_pending = false; /* caught up with what a previous run left: now new entries */
    }
}

/* Handles the XREADGROUP reply when it is complete (it may have arrived with the write). */
static void take_read_reply(struct redis_source *rs)
{
    redisReply *reply = NULL;
    int r = td_rconn_reply(rs->rd, &reply);
    if (r < 0) {
        report(rs, td_rconn_error(rs->rd));
        disconnect(rs);
        return;
    }
    if (r > 0) {
        rs->outstanding = false;
        rs->reading = true;
        handle_read_reply(rs, reply);
        rs->reading = false;
        td_rconn_reply_free(rs->rd, reply);
        if (rs->disconnect_later) {
            rs->disconnect_later = false;
            disconnect(rs);
        }
    }
}

static void read_ready(struct redis_source *rs)
{
    if (td_rconn_io(rs->rd, &rs->rd_want) < 0) {
        report(rs, td_rconn_error(rs->rd)[0] ? td_rconn_error(rs->rd) : "connection lost");
        disconnect(rs);
        return;
    }
    take_read_reply(rs);
}

/* ---- the reaper ---- */

static void reap(struct redis_source *rs)
{
    int credit = td_source_credit(rs->src);
    if (!rs->ack || credit <= 0 || atomic_load(&rs->src->quiesce)) {
        return;
    }
    char idle[24], count[16];
    snprintf(idle, sizeof(idle), "%lld", (long long)rs->conf->claim_idle_ms);
    snprintf(count, sizeof(count), "%d", credit < REAP_BATCH ? credit : REAP_BATCH);
    const char *pargv[] = {"XPENDING", rs->conf->stream, rs->conf->group, "IDLE", idle, "-", "+",
                           count};
    size_t plens[8];
    for (int i = 0; i < 8; i++) {
        plens[i] = strlen(pargv[i]);
    }
    redisReply *pending = ack_command(rs, 8, pargv, plens);
    if (!pending) {
        return;
    }
    if (pending->type != REDIS_REPLY_ARRAY || pending->elements == 0) {
        freeReplyObject(pending);
        return;
    }
    size_t n = pending->elements;
    const char **argv = calloc(n + 6, sizeof(*argv));
    size_t *lens = calloc(n + 6, sizeof(*lens));
    int64_t *counts = calloc(n, sizeof(*counts));
    char **ids = calloc(n, sizeof(*ids));
    redisReply *claimed = NULL;
    if (!argv || !lens || !counts || !ids) {
        goto done;
    }
    size_t argc = 0;
    argv[argc++] = "XCLAIM";
    argv[argc++] = rs->conf->stream;
    argv[argc++] = rs->conf->group;
    argv[argc++] = rs->conf->consumer;
    argv[argc++] = idle;
    size_t nids = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *row = pending->element[i];
        if (row->type != REDIS_REPLY_ARRAY || row->elements < 4 ||
            row->element[0]->type != REDIS_REPLY_STRING ||
            id_set_has(&rs->inflight, row->element[0]->str)) {
            continue;
        }
        ids[nids] = row->element[0]->str;
        counts[nids] = row->element[3]->integer + 1; /* XCLAIM counts one more delivery */
        argv[argc++] = ids[nids];
        nids++;
    }
    if (nids == 0) {
        goto done;
    }
    for (size_t i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    claimed = ack_command(rs, (int)argc, argv, lens);
    if (!claimed) {
        goto done;
    }
    if (claimed->type == REDIS_REPLY_ARRAY && claimed->elements > 0) {
        /* XCLAIM returns the entries it claimed in the order asked, skipping deleted ones:
         * line the counts up by id. */
        int64_t *ordered = calloc(claimed->elements, sizeof(*ordered));
        if (ordered) {
            size_t j = 0;
            for (size_t i = 0; i < claimed->elements; i++) {
                const redisReply *e = claimed->element[i];
                if (e->type != REDIS_REPLY_ARRAY || e->elements < 1) {
                    continue;
                }
                while (j < nids && strcmp(ids[j], e->element[0]->str) != 0) {
                    j++;
                }
                ordered[i] = j < nids ? counts[j] : 0;
            }
            size_t got = emit_entries(rs, claimed, ordered, NULL, 0);
            td_log_info(NULL, rs->src->name, NULL, "claimed %zu entries idle for more than %lld ms",
                        got, (long long)rs->conf->claim_idle_ms);
            free(ordered);
        }
    }
done:
    if (claimed) {
        freeReplyObject(claimed);
    }
    freeReplyObject(pending);
    free(argv);
    free(lens);
    free(counts);
    free(ids);
}

/* Resets the idle time of every entry this process has in flight (XCLAIM to itself with
 * JUSTID, which does not count a delivery), so that another daemon's reaper does not take
 * over an entry that is only slow here: a long function or a long retry sequence. */
static void touch_inflight(struct redis_source *rs)
{
    if (!rs->ack || rs->inflight.n == 0) {
        return;
    }
    size_t n = rs->inflight.n;
    const char **argv = malloc((n + 6) * sizeof(*argv));
    size_t *lens = malloc((n + 6) * sizeof(*lens));
    if (!argv || !lens) {
        goto out;
    }
    size_t argc = 0;
    argv[argc++] = "XCLAIM";
    argv[argc++] = rs->conf->stream;
    argv[argc++] = rs->conf->group;
    argv[argc++] = rs->conf->consumer;
    argv[argc++] = "0";
    for (size_t i = 0; i < rs->inflight.nbuckets; i++) {
        for (struct id_node *node = rs->inflight.buckets[i]; node; node = node->next) {
            argv[argc++] = node->id;
        }
    }
    argv[argc++] = "JUSTID";
    for (size_t i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    redisReply *r = ack_command(rs, (int)argc, argv, lens);
    if (r) {
        freeReplyObject(r);
    }
out:
    free(argv);
    free(lens);
}

/* Publishes the group's pending count (XPENDING summary) for /metrics, once a second. */
static void report_backlog(struct redis_source *rs)
{
    int64_t now = td_now_ms();
    if (!rs->ack || now < rs->next_backlog_ms) {
        return;
    }
    rs->next_backlog_ms = now + 1000;
    const char *argv[] = {"XPENDING", rs->conf->stream, rs->conf->group};
    size_t lens[3] = {8, strlen(argv[1]), strlen(argv[2])};
    redisReply *r = ack_command(rs, 3, argv, lens);
    if (!r) {
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        atomic_store(&rs->src->backlog, r->element[0]->integer);
    }
    freeReplyObject(r);
}

/* The group's lag and pending as Redis reports them (redis_lag.c), every TD_LAG_EVERY_MS on
 * the command connection; /metrics serves the last figures. */
static void report_lag(struct redis_source *rs)
{
    int64_t now = td_now_ms();
    if (!rs->ack || now < rs->next_lag_ms) {
        return;
    }
    rs->next_lag_ms = now + TD_LAG_EVERY_MS;
    if (td_redis_lag_report(rs->src, rs->ack, rs->conf->stream, rs->conf->group) < 0) {
        report(rs, td_rconn_error(rs->ack)[0] ? td_rconn_error(rs->ack) : "connection lost");
        disconnect(rs);
    }
}

static int64_t reap_interval(const struct redis_source *rs)
{
    int64_t iv = rs->conf->claim_idle_ms / 2;
    return iv < 100 ? 100 : (iv > 30000 ? 30000 : iv);
}

/* ---- the thread ---- */

static void wait_backoff(struct redis_source *rs, int64_t ms)
{
    struct pollfd pfd[2] = {{.fd = rs->src->stopfd, .events = POLLIN},
                            {.fd = rs->src->mailbox_fd, .events = POLLIN}};
    int64_t until = td_now_ms() + ms;
    while (!atomic_load(&rs->src->stop)) {
        int64_t left = until - td_now_ms();
        if (left <= 0) {
            return;
        }
        if (poll(pfd, 2, (int)left) > 0 && (pfd[1].revents & POLLIN)) {
            /* Completions while disconnected: remember them for after the reconnect. */
            drain_mailbox(rs, false);
        }
    }
}

/* Whether the credit there is is worth an XREADGROUP now: a quarter of max_inflight (at most a
 * batch), or any once it has waited TOPUP_MS for more. Reading as soon as one completion freed
 * one slot made XREADGROUPs of a few entries each under load, a round trip (and Redis's work
 * per command) per handful of events; under load the credit for a full read comes back within
 * a few ms, and a slow function still gets max_inflight in flight after TOPUP_MS. At low rates
 * credit is full and reads are as prompt as before. */
static bool read_worth_it(struct redis_source *rs, int credit, int64_t now)
{
    int low = rs->src->conf->max_inflight / 4;
    if (low > rs->conf->batch) {
        low = rs->conf->batch;
    }
    if (credit <= 0) {
        rs->short_since = 0;
        return false;
    }
    if (credit >= low) {
        rs->short_since = 0;
        return true;
    }
    if (rs->short_since == 0) {
        rs->short_since = now;
    }
    if (now - rs->short_since < TOPUP_MS) {
        return false;
    }
    rs->short_since = 0;
    return true;
}

static void *run(void *arg)
{
    struct redis_source *rs = arg;
    int64_t backoff = 100;
    rs->next_reap_ms = td_now_ms();
    while (!atomic_load(&rs->src->stop)) {
        if (!rs->rd) {
            if (connect_both(rs) < 0) {
                wait_backoff(rs, backoff);
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
            backoff = 100;
        }
        drain_mailbox(rs, false);
        if (rs->own_pending) {
            /* Reading our own pending list (after a start or a reconnect) would hand out again
             * what completed and waits for its XACK (it is in no in-flight set): ack it first. */
            flush_acks(rs);
        }
        report_backlog(rs);
        report_lag(rs);
        if (!rs->rd) {
            continue;
        }
        int64_t now = td_now_ms();
        if (rs->conf->claim_idle_ms > 0 && now >= rs->next_reap_ms) {
            /* Completed entries waiting for their XACK are in no in-flight set: acknowledged
             * first, the reaper cannot take them for entries nobody holds. */
            flush_acks(rs);
            if (!rs->rd) {
                continue;
            }
            touch_inflight(rs);
            if (rs->ack) {
                reap(rs);
            }
            rs->next_reap_ms = now + reap_interval(rs);
            if (!rs->rd) {
                continue;
            }
        }
        int credit = td_source_credit(rs->src);
        if (!rs->outstanding && !atomic_load(&rs->src->quiesce) && read_worth_it(rs, credit, now)) {
            int batch = rs->conf->batch;
            if (send_read(rs, credit < batch ? credit : batch) < 0) {
                report(rs, td_rconn_error(rs->rd)[0] ? td_rconn_error(rs->rd) : "write failed");
                disconnect(rs);
                continue;
            }
            take_read_reply(rs);
            if (!rs->rd || !rs->outstanding) {
                continue;
            }
        }
        struct pollfd pfd[3] = {
            {.fd = rs->src->stopfd, .events = POLLIN},
            {.fd = rs->src->mailbox_fd, .events = POLLIN},
            {.fd = rs->outstanding ? td_rconn_fd(rs->rd) : -1, .events = rs->rd_want}};
        int64_t timeout = 1000;
        if (rs->conf->claim_idle_ms > 0) {
            int64_t until_reap = rs->next_reap_ms - td_now_ms();
            timeout = until_reap < timeout ? (until_reap > 0 ? until_reap : 0) : timeout;
        }
        if (rs->nunacked > 0) {
            int64_t until_ack = rs->ack_due_ms - td_now_ms();
            timeout = until_ack < timeout ? (until_ack > 0 ? until_ack : 0) : timeout;
        }
        if (!rs->outstanding && rs->short_since != 0 && !atomic_load(&rs->src->quiesce)) {
            int64_t until_topup = rs->short_since + TOPUP_MS - td_now_ms();
            timeout = until_topup < timeout ? (until_topup > 0 ? until_topup : 0) : timeout;
        }
        if (poll(pfd, 3, (int)timeout) < 0 && errno != EINTR) {
            break;
        }
        if (pfd[2].revents & (POLLIN | POLLERR | POLLHUP)) {
            read_ready(rs);
        } else if (rs->outstanding && td_now_ms() > rs->read_deadline) {
            /* A BLOCK read that never comes back: the connection is dead without an error. */
            report(rs, "no answer to XREADGROUP; reconnecting");
            disconnect(rs);
        }
    }
    /* Stopping: acknowledge what completed, leave the rest pending. */
    drain_mailbox(rs, true);
    flush_acks(rs);
    if (rs->nunacked > 0) {
        td_log_warn(NULL, rs->src->name, NULL,
                    "%zu completed entries could not be acknowledged; they will be redelivered",
                    rs->nunacked);
    }
    disconnect(rs);
    return NULL;
}

/* ---- the plugin ---- */

static int start(struct td_source *src)
{
    struct redis_source *rs = src->impl;
    return td_source_spawn(src, run, rs);
}

static void destroy(struct td_source *src)
{
    struct redis_source *rs = src->impl;
    if (!rs) {
        return;
    }
    td_source_stop_thread(src);
    while (rs->parked) { /* run() completes them when it stops; this only guards */
        struct td_msg *next = rs->parked->next;
        td_msg_free(rs->parked);
        rs->parked = next;
    }
    for (size_t i = 0; i < rs->nunacked; i++) {
        free(rs->unacked[i]);
    }
    free(rs->unacked);
    id_set_free(&rs->inflight);
    td_redis_addr_free(&rs->addr);
    free(rs->ce_source);
    free(rs);
    src->impl = NULL;
}

static int init(struct td_source *src, char *err, size_t errlen);

/* ---- settings: redis: {url, stream, group, consumer, start, claim_idle, max_deliveries, batch,
 * block, tls} ---- */
#define OFF(f) offsetof(struct td_conf_redis_source, f)

/* The default consumer name of a Redis source: the host name. */
static void host_name(char *buf, size_t len)
{
    memset(buf, 0, len);
    if (gethostname(buf, len - 1) < 0 || !buf[0]) {
        snprintf(buf, len, "triggerd");
    }
}

static const struct td_conf_key redis_source_keys[] = {
    REQ_STR("url", OFF(url)),
    REQ_STR("stream", OFF(stream)),
    STR_D("group", OFF(group), "triggerd"),
    {.name = "consumer", .type = TD_K_STR, .off = OFF(consumer), .dflt_fn = host_name},
    {.name = "start",
     .type = TD_K_STR,
     .off = OFF(start),
     .names = td_source_start_names,
     .dflt = "earliest"},
    DUR_D("claim_idle", OFF(claim_idle_ms), "60s"),
    INT_D("max_deliveries", OFF(max_deliveries), 0, INT_MAX, "10"),
    INT_D("batch", OFF(batch), 1, 100000, "100"),
    {.name = "block", .type = TD_K_DUR, .off = OFF(block_ms), .min = 1, .dflt = "1s"},
    NESTED("tls", OFF(tls), &td_redis_tls_table),
};
static const struct td_conf_table redis_source_table = {TABLE("redis source", redis_source_keys)};
#undef OFF

/* `check`: the URL as the source will parse it, and its tls block. */
static void check(const struct td_config *cfg, const struct td_conf_source *src,
                  struct td_errors *errs)
{
    const struct td_conf_redis_source *c = TD_SETTINGS(src, struct td_conf_redis_source);
    char who[300];
    snprintf(who, sizeof(who), "source '%s'", src->name);
    td_redis_conf_check(who, c->url, &c->tls, &src->pos, errs);
}

const struct td_source_ops td_source_redis_ops = {
    TD_SOURCE_KIND("redis", TD_SOURCE_REDIS, &redis_source_table, struct td_conf_redis_source),
    .check = check,
    .backlog_metric = "triggerd_redis_pending_messages",
    .backlog_help = "Entries pending in the consumer group (XPENDING), as the source last saw it.",
    .lag_families = td_redis_lag_families,
    .init = init,
    .start = start,
    .quiesce = td_source_quiesce,
    .stop = td_source_stop_thread,
    .destroy = destroy,
};

static int init(struct td_source *src, char *err, size_t errlen)
{
    const struct td_conf_redis_source *conf = src->conf->settings;
    struct redis_source *rs = calloc(1, sizeof(*rs));
    if (!rs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rs->src = src;
    rs->conf = conf;
    char why[400];
    if (td_redis_addr_parse(conf->url, &rs->addr, why, sizeof(why)) < 0 ||
        td_redis_conf_tls(rs->addr.tls, &conf->tls, &rs->tls, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "source '%s': %s", src->name, why);
        goto fail;
    }
    rs->db = td_redis_addr_db(&rs->addr);
    if (rs->db < 0) {
        snprintf(err, errlen, "source '%s': the Redis URL path must be a database number",
                 src->name);
        goto fail;
    }
    char ce_source[512];
    snprintf(ce_source, sizeof(ce_source), "%s://%s:%d/%d/%s", rs->addr.tls ? "rediss" : "redis",
             rs->addr.host, rs->addr.port, rs->db, conf->stream);
    rs->ce_source = strdup(ce_source);
    if (!rs->ce_source) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    src->impl = rs;
    return 0;
fail:
    td_redis_addr_free(&rs->addr);
    free(rs->ce_source);
    free(rs);
    return -1;
}
