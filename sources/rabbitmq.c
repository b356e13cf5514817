/* rabbitmq.c - the RabbitMQ source (AMQP 0-9-1, rabbitmq-c).
 *
 * One thread owns one connection and its channel 1 (rabbitmq-c is not thread-safe). It
 * declares what `declare` asks for, sets basic.qos to the prefetch window (capped by the
 * source's max_inflight: the window is the backpressure, the broker sends no more than that
 * many unacknowledged messages) and consumes with manual acks.
 *
 * The thread polls the socket, the mailbox eventfd and a stop eventfd, and calls
 * amqp_consume_message with a zero timeout only when there is something to read or the poll
 * timed out (at most a quarter of the heartbeat): rabbitmq-c sends and checks heartbeats only
 * inside its calls, and this thread never blocks on anything but poll. Completions from the
 * mailbox are settled on this thread: acks in one basic.ack multiple=1 for the contiguous
 * completed prefix of the outstanding delivery tags and single acks past a gap; natively
 * dead-lettered ones basic.nack requeue=0 (the queue's dead-letter exchange takes them). Acks
 * wait until a quarter of the prefetch window completed (with the oldest delivery), nothing else
 * is in flight, the oldest waited ACK_DELAY_MS, or the source stops (acks_due); one past a gap
 * waits for a multiple ack to cover it, ACK_DELAY_MS at most. An ack per wake-up, and one of its
 * own for each completion that overtook an earlier one, made the broker handle a frame for every
 * few messages, and its CPU is what bounds this path. A crash in those few ms redelivers the
 * messages, as a lost ack always did.
 *
 * Released messages (a trigger without dead_letter that failed, a dead letter that could not
 * be built) go back with basic.nack requeue=1, but not at once: the broker would hand a poison
 * message straight back, thousands of times a second. The delivery is held (it stays in the
 * prefetch window, unacknowledged) for a delay that grows with its delivery count, 1 s doubling
 * up to 30 s (TD_RABBITMQ_REQUEUE_DELAY_MAX_MS, well inside consumer_timeout), on this thread's
 * poll timer; while stopping, releases are requeued at once. A lost channel drops the held tags
 * with the rest (the broker requeues them).
 *
 * max_deliveries: past it a message gets dl_reason max_deliveries and the router dead-letters
 * it (or keeps it, for a trigger without dead_letter) instead of delivering it again. The count
 * comes from the x-delivery-count header where the broker keeps one (quorum queues: exact,
 * across consumers, channels and restarts of this daemon), else from a bounded local table
 * (classic queues) keyed by the queue and the event id (the message-id, or the hash of queue
 * and body for a plain message without one): a delivery with redelivered=0 is the first, a
 * redelivered one counts on from what this process saw, or from 2 when it saw none (another
 * consumer or an earlier run of the daemon had it). The local count only sees deliveries to this
 * process, and messages without a message-id and with the same body share a count.
 *
 * Connection or channel loss: the broker requeues everything unacknowledged. The thread
 * reconnects with capped exponential backoff and rebuilds channel, declarations, qos and
 * consumer under a new generation; completions carrying an older generation are dropped (an
 * ack for a tag of an old channel would close the new one with 406), and those messages come
 * back redelivered.
 */
#include <limits.h>
#include <amqp.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "amqp_util.h"
#include "ce_amqp.h"
#include "cloudevent.h"
#include "conf_table.h"
#include "dl_reasons.h"
#include "log.h"
#include "loop.h"
#include "rabbitmq_lag.h"
#include "rabbitmq_source.h"
#include "source.h"

#define DEFAULT_TYPE       "dev.triggerd.rabbitmq.message"
#define CONNECT_TIMEOUT_MS 5000
#define READ_BATCH         256
#define REQUEUE_DELAY_MS   1000 /* the first requeue delay of a released message */
#define SEEN_SLOTS         4096 /* the local delivery counter (a power of two) */
#define SEEN_WAYS          8    /* probed slots per key; the oldest is evicted */
#define ACK_DELAY_MS       5    /* the longest a completed delivery waits for its ack */

enum slot_state { S_INFLIGHT, S_ACK, S_HELD, S_SETTLED };

struct slot {
    uint64_t tag;
    uint64_t key;       /* the local counter's key (0: none) */
    int64_t due_ms;     /* S_HELD: when to requeue it; S_ACK: when it completed */
    uint32_t delivered; /* deliveries of the message, this one included */
    enum slot_state state;
};

/* A delivery's message: td_msg first (td_msg_free frees the block), then the delivery tag,
 * valid on the channel of generation msg.gen, which only this source reads back. */
struct rmq_msg {
    struct td_msg msg;
    uint64_t tag;
};

static uint64_t msg_tag(const struct td_msg *msg)
{
    return ((const struct rmq_msg *)msg)->tag;
}

/* One message of the local delivery counter. */
struct seen {
    uint64_t key; /* 0: free */
    uint32_t count;
    int64_t used_ms;
};

struct rmq_source {
    struct td_source *src;
    const struct td_conf_rabbitmq_source *conf;
    struct td_amqp_addr addr;
    char *ce_source;
    char where[300]; /* amqp://host:port/vhost queue, for logs */
    amqp_connection_state_t conn;
    uint64_t gen;
    bool cancelled;   /* basic.cancel sent while quiescing */
    char *consumer;   /* the consumer tag of this channel */
    struct slot *out; /* outstanding delivery tags of this channel, ascending */
    size_t nout, capout;
    uint64_t stale; /* completions dropped because their channel was gone */
    size_t nheld;   /* slots in S_HELD */
    int64_t next_due;
    size_t nacks;       /* slots in S_ACK: completed, their ack not sent yet */
    int64_t ack_due_ms; /* when the oldest of them must be acked at the latest */
    struct seen *seen;  /* SEEN_SLOTS entries */
    char last_error[300];
    char token[33]; /* this connection's random token: delivery ids (id_from: delivery) */
    /* report_lag: whether TD_RABBITMQ_LAG_CHANNEL is open on conn, and when it runs next */
    bool lag_chan;
    int64_t next_lag_ms;
};

/* ---- connection ---- */

static void report(struct rmq_source *rs, const char *what)
{
    if (strcmp(rs->last_error, what) != 0) {
        td_log_warn(NULL, rs->src->name, NULL, "%s: %s", rs->where, what);
        snprintf(rs->last_error, sizeof(rs->last_error), "%s", what);
    }
}

static void disconnect(struct rmq_source *rs, bool polite)
{
    if (rs->conn) {
        td_amqp_close(rs->conn, polite);
        rs->conn = NULL;
    }
    free(rs->consumer);
    rs->consumer = NULL;
    rs->nout = 0; /* the broker requeues whatever was unacknowledged on that channel */
    rs->nheld = 0;
    rs->nacks = 0;
    rs->cancelled = false;
    atomic_store(&rs->src->connected, false);
    td_source_set_lag(rs->src, NULL, 0, -1); /* unknown until connected again, never stale */
}

/* Checks the last RPC; on failure reports `what` and disconnects. */
static int rpc_ok(struct rmq_source *rs, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(rs->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        return 0;
    }
    char why[256], msg[300];
    snprintf(msg, sizeof(msg), "%s: %s", what, td_amqp_reply_str(r, why, sizeof(why)));
    report(rs, msg);
    disconnect(rs, false);
    return -1;
}

/* A value from the trigger file as a typed AMQP field: integers and booleans typed. */
static void argument_value(const char *s, amqp_field_value_t *v)
{
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (*s && *end == '\0' && errno == 0) {
        v->kind = AMQP_FIELD_KIND_I64;
        v->value.i64 = n;
    } else if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        v->kind = AMQP_FIELD_KIND_BOOLEAN;
        v->value.boolean = s[0] == 't';
    } else {
        v->kind = AMQP_FIELD_KIND_UTF8;
        v->value.bytes = amqp_cstring_bytes(s);
    }
}

static int declare(struct rmq_source *rs)
{
    const struct td_conf_rabbitmq_source *c = rs->conf;
    amqp_boolean_t durable = c->declare_durable;
    if (c->declare_exchange) {
        amqp_exchange_declare(rs->conn, 1, amqp_cstring_bytes(c->declare_exchange),
                              amqp_cstring_bytes(c->declare_exchange_type), 0, durable, 0, 0,
                              amqp_empty_table);
        if (rpc_ok(rs, "exchange.declare") < 0) {
            return -1;
        }
    }
    size_t n = c->declare_arguments.n;
    amqp_table_entry_t *entries = calloc(n + 1, sizeof(*entries));
    if (!entries) {
        report(rs, "out of memory");
        disconnect(rs, false);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        entries[i].key = amqp_cstring_bytes(c->declare_arguments.items[i].key);
        argument_value(c->declare_arguments.items[i].value, &entries[i].value);
    }
    amqp_table_t args = {.num_entries = (int)n, .entries = entries};
    amqp_queue_declare(rs->conn, 1, amqp_cstring_bytes(c->queue), 0, durable, 0, 0, args);
    free(entries);
    if (rpc_ok(rs, "queue.declare") < 0) {
        return -1;
    }
    for (size_t i = 0; i < c->ndeclare_bindings; i++) {
        amqp_queue_bind(rs->conn, 1, amqp_cstring_bytes(c->queue),
                        amqp_cstring_bytes(c->declare_exchange),
                        amqp_cstring_bytes(c->declare_bindings[i]), amqp_empty_table);
        if (rpc_ok(rs, "queue.bind") < 0) {
            return -1;
        }
    }
    return 0;
}

/* A token no other connection, of this process or another, ever had: delivery tags restart at 1
 * on every channel, so an id built from a tag needs it to be unique. */
static void new_token(struct rmq_source *rs)
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        /* no entropy source: time, pid and generation still differ between connections */
        uint64_t t = (uint64_t)td_wall_ms(), g = rs->gen ^ ((uint64_t)getpid() << 32);
        memcpy(b, &t, 8);
        memcpy(b + 8, &g, 8);
    }
    for (size_t i = 0; i < sizeof(b); i++) {
        snprintf(rs->token + 2 * i, 3, "%02x", b[i]);
    }
}

static int connect_setup(struct rmq_source *rs)
{
    char err[300];
    int prefetch = td_rabbitmq_window(rs->src->conf);
    rs->conn =
        td_amqp_connect(&rs->addr, rs->conf->heartbeat, CONNECT_TIMEOUT_MS, err, sizeof(err));
    if (!rs->conn) {
        report(rs, err);
        return -1;
    }
    rs->gen++;
    rs->lag_chan = false;
    new_token(rs);
    rs->nout = 0;
    rs->cancelled = false;
    if (rs->conf->declare && declare(rs) < 0) {
        return -1;
    }
    amqp_basic_qos(rs->conn, 1, 0, (uint16_t)prefetch, 0);
    if (rpc_ok(rs, "basic.qos") < 0) {
        return -1;
    }
    amqp_basic_consume_ok_t *ok =
        amqp_basic_consume(rs->conn, 1, amqp_cstring_bytes(rs->conf->queue), amqp_empty_bytes, 0, 0,
                           0, amqp_empty_table);
    if (rpc_ok(rs, "basic.consume") < 0) {
        return -1;
    }
    rs->consumer = ok ? td_amqp_bytes_dup(ok->consumer_tag) : NULL;
    if (rs->last_error[0]) {
        td_log_info(NULL, rs->src->name, NULL, "%s: connected again", rs->where);
    } else {
        td_log_info(NULL, rs->src->name, NULL, "%s: consuming (prefetch %d)", rs->where, prefetch);
    }
    rs->last_error[0] = '\0';
    atomic_store(&rs->src->connected, true);
    return 0;
}

/* ---- delivery counts (max_deliveries) ---- */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 0x100000001b3ULL;
    }
    return h;
}

/* The integer value of header `name`, when the message has one. */
static bool header_int(const amqp_basic_properties_t *p, const char *name, int64_t *out)
{
    size_t len = strlen(name);
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG)) {
        return false;
    }
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        if (e->key.len != len || memcmp(e->key.bytes, name, len) != 0) {
            continue;
        }
        const amqp_field_value_t *v = &e->value;
        switch (v->kind) {
        case AMQP_FIELD_KIND_I8:
            *out = v->value.i8;
            return true;
        case AMQP_FIELD_KIND_U8:
            *out = v->value.u8;
            return true;
        case AMQP_FIELD_KIND_I16:
            *out = v->value.i16;
            return true;
        case AMQP_FIELD_KIND_U16:
            *out = v->value.u16;
            return true;
        case AMQP_FIELD_KIND_I32:
            *out = v->value.i32;
            return true;
        case AMQP_FIELD_KIND_U32:
            *out = v->value.u32;
            return true;
        case AMQP_FIELD_KIND_I64:
            *out = v->value.i64;
            return true;
        case AMQP_FIELD_KIND_U64:
            *out = v->value.u64 > INT64_MAX ? INT64_MAX : (int64_t)v->value.u64;
            return true;
        default:
            return false;
        }
    }
    return false;
}

static struct seen *seen_find(struct rmq_source *rs, uint64_t key, bool add)
{
    struct seen *oldest = NULL;
    for (size_t i = 0; i < SEEN_WAYS; i++) {
        struct seen *e = &rs->seen[(key + i) & (SEEN_SLOTS - 1)];
        if (e->key == key) {
            return e;
        }
        if (!oldest || (e->key == 0 && oldest->key != 0) ||
            (e->key != 0 && oldest->key != 0 && e->used_ms < oldest->used_ms)) {
            oldest = e;
        }
    }
    if (!add) {
        return NULL;
    }
    *oldest = (struct seen){.key = key};
    return oldest;
}

static void seen_forget(struct rmq_source *rs, uint64_t key)
{
    struct seen *e = key ? seen_find(rs, key, false) : NULL;
    if (e) {
        e->key = 0;
    }
}

/* True when the message carries a message-id property the wrapped event takes as its id. */
static bool has_message_id(const amqp_basic_properties_t *p)
{
    return (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && p->message_id.len > 0 &&
           p->message_id.len <= 1024;
}

/* How many times this message has been delivered, this delivery included; *key is the local
 * counter's key (0 when the broker counts). See the comment at the top for what each gives. */
static uint32_t count_delivery(struct rmq_source *rs, const amqp_envelope_t *env,
                               const struct td_msg *msg, uint64_t *key)
{
    int64_t n;
    *key = 0;
    if (header_int(&env->message.properties, "x-delivery-count", &n)) {
        /* quorum queues: the deliveries before this one that came back */
        return n < 0 ? 1 : n >= UINT32_MAX - 1 ? UINT32_MAX : (uint32_t)n + 1;
    }
    /* The event id, unless it is made per delivery (a wrapped message without a message-id):
     * then the body, so that a redelivery counts on. */
    const char *id = msg->ev && !(msg->wrapped && !has_message_id(&env->message.properties))
                         ? td_event_get(msg->ev, "id")
                         : NULL;
    uint64_t h = fnv1a(0xcbf29ce484222325ULL, rs->conf->queue, strlen(rs->conf->queue) + 1);
    h = id ? fnv1a(h, id, strlen(id)) : fnv1a(h, env->message.body.bytes, env->message.body.len);
    *key = h ? h : 1;
    if (!rs->seen) {
        return env->redelivered ? 2 : 1;
    }
    struct seen *e = seen_find(rs, *key, true);
    if (!env->redelivered) {
        e->count = 1; /* the broker says no consumer had it before */
    } else {
        e->count = e->count == 0 ? 2 : e->count < UINT32_MAX ? e->count + 1 : e->count;
    }
    e->used_ms = td_now_ms();
    return e->count;
}

int td_rabbitmq_window(const struct td_conf_source *src)
{
    int max = src->max_inflight; /* the loader's table: at least 1, default 1000 */
    int prefetch = TD_SETTINGS(src, struct td_conf_rabbitmq_source)->prefetch;
    int window = prefetch > 0 && prefetch < max ? prefetch : max;
    return window > 65535 ? 65535 : window;
}

/* The wait before a released message goes back to the queue. */
static int64_t requeue_delay(const struct rmq_source *rs, uint32_t delivered)
{
    int64_t cap = TD_RABBITMQ_REQUEUE_DELAY_MAX_MS;
    if (rs->conf->consumer_timeout_ms > 0 && cap > rs->conf->consumer_timeout_ms / 4) {
        cap = rs->conf->consumer_timeout_ms / 4;
    }
    int shift = delivered > 1 ? (int)(delivered - 1) : 0;
    int64_t d = shift >= 16 ? cap : (int64_t)REQUEUE_DELAY_MS << shift;
    return d > cap ? cap : d;
}

/* ---- settling ---- */

static struct slot *find_slot(struct rmq_source *rs, uint64_t tag)
{
    size_t lo = 0, hi = rs->nout;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rs->out[mid].tag < tag) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < rs->nout && rs->out[lo].tag == tag ? &rs->out[lo] : NULL;
}

static int add_slot(struct rmq_source *rs, uint64_t tag, uint64_t key, uint32_t delivered)
{
    if (rs->nout == rs->capout) {
        size_t cap = rs->capout ? rs->capout * 2 : 256;
        struct slot *s = realloc(rs->out, cap * sizeof(*s));
        if (!s) {
            return -1;
        }
        rs->out = s;
        rs->capout = cap;
    }
    rs->out[rs->nout] = (struct slot){.tag = tag, .key = key, .delivered = delivered};
    rs->out[rs->nout].state = S_INFLIGHT;
    rs->nout++;
    return 0;
}

static void nack(struct rmq_source *rs, uint64_t tag, bool requeue)
{
    if (rs->conn && amqp_basic_nack(rs->conn, 1, tag, 0, requeue) != AMQP_STATUS_OK) {
        report(rs, "basic.nack failed: connection lost");
        disconnect(rs, false);
    }
}

/* Acks the contiguous completed prefix with one multiple ack and drops every settled slot (in
 * flight and held ones stay). A completed delivery past a gap (an earlier one still in flight or
 * held) needs an ack of its own: sent when `all`, or once it has waited ACK_DELAY_MS; until then
 * the gap usually closes and a later multiple ack covers it. */
static void flush_acks(struct rmq_source *rs, bool all)
{
    size_t i = 0;
    uint64_t last = 0;
    long long n = 0;
    while (i < rs->nout && (rs->out[i].state == S_ACK || rs->out[i].state == S_SETTLED)) {
        if (rs->out[i].state == S_ACK) {
            last = rs->out[i].tag;
            n++;
        }
        i++;
    }
    if (last && amqp_basic_ack(rs->conn, 1, last, 1) != AMQP_STATUS_OK) {
        goto lost;
    }
    int64_t now = td_now_ms();
    int64_t oldest = INT64_MAX;
    size_t w = 0, waiting = 0;
    for (size_t j = i; j < rs->nout; j++) {
        struct slot *s = &rs->out[j];
        if (s->state == S_ACK && (all || s->due_ms + ACK_DELAY_MS <= now)) {
            if (amqp_basic_ack(rs->conn, 1, s->tag, 0) != AMQP_STATUS_OK) {
                goto lost;
            }
            n++;
        } else if (s->state != S_SETTLED) {
            if (s->state == S_ACK) {
                waiting++;
                oldest = s->due_ms < oldest ? s->due_ms : oldest;
            }
            rs->out[w++] = *s;
        }
    }
    rs->nout = w;
    rs->nacks = waiting;
    rs->ack_due_ms = waiting ? oldest + ACK_DELAY_MS : 0;
    atomic_fetch_add(&rs->src->acked, n);
    return;
lost:
    report(rs, "basic.ack failed: connection lost");
    disconnect(rs, false);
}

/* Whether the completed deliveries should be acked now (see the top of the file). */
static bool acks_due(const struct rmq_source *rs)
{
    if (rs->nacks == 0) {
        return false;
    }
    if (atomic_load(&rs->src->inflight) == 0 || atomic_load(&rs->src->quiesce) ||
        td_now_ms() >= rs->ack_due_ms) {
        return true;
    }
    /* a quarter of the window done, and the oldest unsettled delivery among them: a multiple
     * ack (settled slots at the head were nacked already; flush_acks drops them) */
    int quarter = td_rabbitmq_window(rs->src->conf) / 4;
    size_t h = 0;
    while (h < rs->nout && rs->out[h].state == S_SETTLED) {
        h++;
    }
    return rs->nacks >= (size_t)(quarter > 0 ? quarter : 1) && h < rs->nout &&
           rs->out[h].state == S_ACK;
}

/* All of them now, gaps or not: nothing else will complete soon, or the source stops. */
static bool acks_all(const struct rmq_source *rs)
{
    return atomic_load(&rs->src->inflight) == 0 || atomic_load(&rs->src->quiesce);
}

static void drain_mailbox(struct rmq_source *rs)
{
    struct td_msg *done = td_source_take_done(rs->src);
    bool settled = false; /* a slot became S_SETTLED: flush_acks drops it */
    while (done) {
        struct td_msg *next = done->next;
        struct slot *s = rs->conn && done->gen == rs->gen ? find_slot(rs, msg_tag(done)) : NULL;
        if (!s) {
            rs->stale++; /* its channel is gone: the broker redelivers it */
        } else if (done->release && atomic_load(&rs->src->quiesce)) {
            nack(rs, msg_tag(done), true); /* stopping: back to the queue at once */
            s->state = S_SETTLED;
            settled = true;
        } else if (done->release) {
            /* held, then requeued by requeue_due: not straight back to a failing function */
            s->state = S_HELD;
            s->due_ms = td_now_ms() + requeue_delay(rs, s->delivered);
            if (rs->nheld++ == 0 || s->due_ms < rs->next_due) {
                rs->next_due = s->due_ms;
            }
        } else if (done->reject) {
            nack(rs, msg_tag(done), false);
            s->state = S_SETTLED;
            settled = true;
            seen_forget(rs, s->key);
            atomic_fetch_add(&rs->src->acked, 1);
        } else {
            s->state = S_ACK;
            s->due_ms = td_now_ms(); /* completed: its ack is due ACK_DELAY_MS later */
            if (rs->nacks++ == 0) {
                rs->ack_due_ms = s->due_ms + ACK_DELAY_MS;
            }
            seen_forget(rs, s->key);
        }
        td_msg_free(done);
        done = next;
    }
    /* Settled slots go at once when no ack waits (flush_acks then sends nothing); else a stream
     * that is all natively dead-lettered grows `out` by a slot a message, for good. While acks
     * wait, their flush (ACK_DELAY_MS at most) drops them. */
    if (rs->conn && (acks_due(rs) || (settled && rs->nacks == 0))) {
        flush_acks(rs, acks_all(rs));
    }
}

/* Requeues (basic.nack requeue=1) the held deliveries that are due, or all of them. */
static void requeue_due(struct rmq_source *rs, bool all)
{
    if (rs->nheld == 0 || !rs->conn) {
        return;
    }
    int64_t now = td_now_ms();
    if (!all && now < rs->next_due) {
        return;
    }
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < rs->nout && rs->conn; i++) {
        struct slot *s = &rs->out[i];
        if (s->state != S_HELD) {
            continue;
        }
        if (all || s->due_ms <= now) {
            s->state = S_SETTLED;
            rs->nheld--;
            nack(rs, s->tag, true); /* on failure: disconnected, nout and nheld are 0 */
        } else if (s->due_ms < next) {
            next = s->due_ms;
        }
    }
    rs->next_due = next;
    if (rs->conn) {
        flush_acks(rs, false); /* drops the settled slots */
    }
}

/* ---- reading ---- */

/* The id of a wrapped message without a message-id: the broker's identity where it has one (a
 * stream queue's x-stream-offset: unique and the same on every read), else as id_from says:
 * body_hash keeps the sha256 of queue and body td_ce_from_amqp gave it (stable across
 * redeliveries; equal bodies collide), delivery makes it unique per delivery (queue, this
 * connection's token, delivery tag: never shared by two messages, new on a redelivery). */
static int set_wrapped_id(struct rmq_source *rs, const amqp_envelope_t *env, struct td_event *ev)
{
    const amqp_basic_properties_t *p = &env->message.properties;
    char id[400];
    int64_t offset;
    if (has_message_id(p)) {
        return 0;
    }
    if (header_int(p, "x-stream-offset", &offset)) {
        snprintf(id, sizeof(id), "amqp:%s/offset/%lld", rs->conf->queue, (long long)offset);
    } else if (rs->conf->id_from == TD_ID_FROM_DELIVERY) {
        snprintf(id, sizeof(id), "amqp:%s/%s/%llu", rs->conf->queue, rs->token,
                 (unsigned long long)env->delivery_tag);
    } else {
        return 0;
    }
    return td_event_set(ev, "id", id);
}

static struct td_msg *to_msg(struct rmq_source *rs, const amqp_envelope_t *env)
{
    struct rmq_msg *rm = calloc(1, sizeof(*rm));
    struct td_msg *msg = rm ? &rm->msg : NULL;
    char err[256] = "";
    char coord[96];
    if (!msg) {
        return NULL;
    }
    const amqp_message_t *m = &env->message;
    msg->ev = td_ce_from_amqp(&m->properties, m->body.bytes, m->body.len, rs->conf->queue,
                              DEFAULT_TYPE, rs->ce_source, &msg->wrapped, err, sizeof(err));
    if (!msg->ev) {
        msg->invalid = strdup(err[0] ? err : "not a valid CloudEvent");
        msg->ev = td_ce_wrap_amqp(&m->properties, m->body.bytes, m->body.len, rs->conf->queue,
                                  DEFAULT_TYPE, rs->ce_source);
        msg->wrapped = true;
    }
    snprintf(coord, sizeof(coord), "%s#%llu", rs->conf->queue,
             (unsigned long long)env->delivery_tag);
    msg->coord = strdup(coord);
    if (!msg->ev || !msg->coord || (msg->wrapped && set_wrapped_id(rs, env, msg->ev) < 0)) {
        td_msg_free(msg);
        return NULL;
    }
    rm->tag = env->delivery_tag;
    msg->gen = rs->gen;
    msg->received_ms = td_now_ms();
    return msg;
}

/* A frame that is not a delivery: closes, cancels, stray confirms. */
static void other_frame(struct rmq_source *rs)
{
    amqp_frame_t frame;
    struct timeval zero = {0, 0};
    int rc = amqp_simple_wait_frame_noblock(rs->conn, &frame, &zero);
    if (rc == AMQP_STATUS_TIMEOUT) {
        return;
    }
    if (rc != AMQP_STATUS_OK) {
        report(rs, amqp_error_string2(rc));
        disconnect(rs, false);
        return;
    }
    if (frame.frame_type != AMQP_FRAME_METHOD) {
        return; /* a stray header or body: nothing to do with it */
    }
    char msg[300];
    switch (frame.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *m = frame.payload.method.decoded;
        snprintf(msg, sizeof(msg), "channel closed by the broker: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(rs->conn, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        report(rs, msg);
        disconnect(rs, true);
        return;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *m = frame.payload.method.decoded;
        snprintf(msg, sizeof(msg), "connection closed by the broker: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(rs->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        report(rs, msg);
        disconnect(rs, false);
        return;
    }
    case AMQP_BASIC_CANCEL_METHOD:
        if (!atomic_load(&rs->src->quiesce)) {
            report(rs, "the broker cancelled the consumer (queue deleted?)");
            disconnect(rs, true);
        }
        return;
    default:
        return; /* cancel-ok, stray acks: ignored */
    }
}

/* Reads what is there (never waits) and emits it as one batch. */
static void read_ready(struct rmq_source *rs)
{
    struct td_msg *head = NULL, **tail = &head;
    int n = 0;
    bool quiescing = atomic_load(&rs->src->quiesce);
    while (rs->conn && n < READ_BATCH) {
        amqp_envelope_t env;
        struct timeval zero = {0, 0};
        amqp_maybe_release_buffers(rs->conn);
        amqp_rpc_reply_t r = amqp_consume_message(rs->conn, &env, &zero, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
            break;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            other_frame(rs);
            continue;
        }
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            char why[256];
            report(rs, td_amqp_reply_str(r, why, sizeof(why)));
            disconnect(rs, false);
            break;
        }
        struct td_msg *msg = quiescing ? NULL : to_msg(rs, &env);
        uint64_t key = 0;
        uint32_t delivered = msg ? count_delivery(rs, &env, msg, &key) : 1;
        if (msg && rs->conf->max_deliveries > 0 && delivered > (uint32_t)rs->conf->max_deliveries) {
            msg->dl_reason = TD_DL_MAX_DELIVERIES; /* the router dead-letters it */
        }
        if (!msg || add_slot(rs, env.delivery_tag, key, delivered) < 0) {
            if (!quiescing) {
                td_log_error(NULL, rs->src->name, NULL, "out of memory; message requeued");
            }
            td_msg_free(msg);
            nack(rs, env.delivery_tag, true); /* stopping or no memory: back to the queue */
        } else {
            *tail = msg;
            tail = &msg->next;
            n++;
        }
        amqp_destroy_envelope(&env);
    }
    if (head) {
        td_source_emit(rs->src, head);
    }
}

/* ---- the thread ---- */

static void wait_backoff(struct rmq_source *rs, int64_t ms)
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
            drain_mailbox(rs); /* their channel is gone: dropped, redelivered later */
        }
    }
}

static void cancel_consumer(struct rmq_source *rs)
{
    if (!rs->conn || rs->cancelled || !rs->consumer) {
        return;
    }
    amqp_basic_cancel_t req = {.consumer_tag = amqp_cstring_bytes(rs->consumer), .nowait = 0};
    if (amqp_send_method(rs->conn, 1, AMQP_BASIC_CANCEL_METHOD, &req) != AMQP_STATUS_OK) {
        disconnect(rs, false);
        return;
    }
    rs->cancelled = true;
}

/* The queue's depth as the broker reports it (rabbitmq_lag.c), every TD_LAG_EVERY_MS; /metrics
 * serves the last figures. */
static void report_lag(struct rmq_source *rs)
{
    int64_t now = td_now_ms();
    if (!rs->conn || now < rs->next_lag_ms) {
        return;
    }
    rs->next_lag_ms = now + TD_LAG_EVERY_MS;
    char err[300];
    if (td_rabbitmq_lag_report(rs->src, rs->conn, &rs->lag_chan, rs->conf->queue, err,
                               sizeof(err)) < 0) {
        report(rs, err);
        disconnect(rs, false);
    }
}

/* The last close, on the way out: polite, but the broker's answers are waited for only until
 * the source's deadline (td_source_stop_by: the end of shutdown_grace), or TD_AMQP_CLOSE_MS
 * when there is none. A broker that does not answer (frozen: the socket stays open) held the
 * thread, and so the daemon's exit, until a heartbeat timeout (two intervals: a minute by
 * default; never with heartbeats off). Given up, the connection is dropped: the broker requeues
 * whatever it holds unacknowledged, so nothing that was not acked above is lost. */
static void close_by_deadline(struct rmq_source *rs)
{
    if (!rs->conn) {
        return;
    }
    int64_t by = atomic_load(&rs->src->stop_by_ms);
    amqp_connection_state_t conn = rs->conn;
    rs->conn = NULL; /* disconnect() clears the rest */
    if (td_amqp_close_by(conn, by ? by : td_now_ms() + TD_AMQP_CLOSE_MS) < 0) {
        td_log_warn(NULL, rs->src->name, NULL,
                    "close given up: no answer from %s by the deadline; the connection is "
                    "dropped and the broker requeues its unacknowledged deliveries",
                    rs->where);
    }
}

static void *run(void *arg)
{
    struct rmq_source *rs = arg;
    int64_t backoff = 100;
    int tick = rs->conf->heartbeat > 0 ? rs->conf->heartbeat * 1000 / 4 : 1000;
    tick = tick > 1000 ? 1000 : (tick < 50 ? 50 : tick);
    while (!atomic_load(&rs->src->stop)) {
        if (!rs->conn) {
            if (atomic_load(&rs->src->quiesce)) {
                wait_backoff(rs, 100); /* stopping: nothing to reconnect for */
                continue;
            }
            if (connect_setup(rs) < 0) {
                wait_backoff(rs, backoff);
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
            backoff = 100;
        }
        drain_mailbox(rs);
        bool quiescing = atomic_load(&rs->src->quiesce);
        if (!quiescing) {
            /* Not on the way out: a depth request to a broker that does not answer would hold
             * this thread for its bound and then drop the connection, and the acks of what the
             * drain completes with it (redelivered). */
            report_lag(rs);
        }
        requeue_due(rs, quiescing);
        if (!rs->conn) {
            continue;
        }
        if (quiescing) {
            cancel_consumer(rs);
            if (!rs->conn) {
                continue;
            }
        }
        bool buffered = amqp_frames_enqueued(rs->conn) || amqp_data_in_buffer(rs->conn);
        int wait = buffered ? 0 : tick;
        if (rs->nheld > 0) {
            int64_t left = rs->next_due - td_now_ms();
            wait = left <= 0 ? 0 : left < wait ? (int)left : wait;
        }
        if (rs->nacks > 0) {
            int64_t left = rs->ack_due_ms - td_now_ms();
            wait = left <= 0 ? 0 : left < wait ? (int)left : wait;
        }
        struct pollfd pfd[3] = {{.fd = rs->src->stopfd, .events = POLLIN},
                                {.fd = rs->src->mailbox_fd, .events = POLLIN},
                                {.fd = amqp_get_sockfd(rs->conn), .events = POLLIN}};
        if (poll(pfd, 3, wait) < 0 && errno != EINTR) {
            break;
        }
        if (atomic_load(&rs->src->stop)) {
            break;
        }
        /* Even after a timeout: the library call is what sends and checks heartbeats. */
        read_ready(rs);
    }
    drain_mailbox(rs);
    if (rs->conn) {
        flush_acks(rs, true); /* what completed is acked before the rest goes back to the queue */
    }
    if (rs->stale > 0) {
        td_log_info(NULL, rs->src->name, NULL,
                    "%llu completions belonged to a lost channel; the broker redelivered them",
                    (unsigned long long)rs->stale);
    }
    close_by_deadline(rs);
    disconnect(rs, false); /* unacknowledged deliveries go back to the queue */
    return NULL;
}

/* ---- the plugin ---- */

static int start(struct td_source *src)
{
    struct rmq_source *rs = src->impl;
    return td_source_spawn(src, run, rs);
}

static void quiesce(struct td_source *src)
{
    td_source_quiesce(src);
    uint64_t one = 1;
    ssize_t w = write(src->mailbox_fd, &one, sizeof(one)); /* wake the thread to cancel */
    (void)w;
}

static void destroy(struct td_source *src)
{
    struct rmq_source *rs = src->impl;
    if (!rs) {
        return;
    }
    td_source_stop_thread(src);
    disconnect(rs, false);
    td_amqp_addr_free(&rs->addr);
    free(rs->ce_source);
    free(rs->out);
    free(rs->seen);
    free(rs);
    src->impl = NULL;
}

static int init(struct td_source *src, char *err, size_t errlen);

/* ---- settings: rabbitmq: {url, queue, prefetch, heartbeat, max_deliveries, consumer_timeout,
 * id_from, declare} ---- */
#define OFF(f) offsetof(struct td_conf_rabbitmq_source, f)

static const char *const id_from_names[] = {"body_hash", "delivery", NULL}; /* td_amqp_id_from */
static const char *const exchange_type_names[] = {"direct", "fanout", "topic", "headers", NULL};

static int check_rabbitmq_declare(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    struct td_conf_rabbitmq_source *c = base;
    c->declare = true;
    if (c->ndeclare_bindings > 0 && !c->declare_exchange) {
        ERR_AT(ld, td_conf_map_get(map, "bindings"), "'bindings' need an 'exchange' to bind to");
        return -1;
    }
    return 0;
}

static const struct td_conf_key rabbitmq_declare_keys[] = {
    BOOL_D("durable", OFF(declare_durable), "true"),
    {.name = "arguments", .type = TD_K_STRMAP, .off = OFF(declare_arguments)},
    STR("exchange", OFF(declare_exchange)),
    {.name = "exchange_type",
     .type = TD_K_STR,
     .off = OFF(declare_exchange_type),
     .names = exchange_type_names,
     .dflt = "direct"},
    {.name = "bindings",
     .type = TD_K_STRLIST,
     .off = OFF(declare_bindings),
     .off2 = OFF(ndeclare_bindings)},
};
static const struct td_conf_table rabbitmq_declare_table = {TABLE("declare", rabbitmq_declare_keys),
                                                            .check = check_rabbitmq_declare};

static const struct td_conf_key rabbitmq_source_keys[] = {
    REQ_STR("url", OFF(url)),
    REQ_STR("queue", OFF(queue)),
    NESTED("tls", OFF(tls), &td_amqp_tls_table),
    ENUM_D("auth_mechanism", OFF(auth_mechanism), td_amqp_auth_names, "plain"),
    INT_D("prefetch", OFF(prefetch), 0, 65535, "100"),
    {.name = "heartbeat", .type = TD_K_DUR_S, .off = OFF(heartbeat), .dflt = "30s"},
    INT_D("max_deliveries", OFF(max_deliveries), 0, INT_MAX, "10"),
    DUR_D("consumer_timeout", OFF(consumer_timeout_ms), "30m"),
    ENUM_D("id_from", OFF(id_from), id_from_names, "delivery"),
    NESTED("declare", 0, &rabbitmq_declare_table),
};
static const struct td_conf_table rabbitmq_source_table = {
    TABLE("rabbitmq source", rabbitmq_source_keys)};
#undef OFF

/* declare: {} and no declare: differ only in td_conf_rabbitmq_source.declare, which the table
 * does not describe (check_rabbitmq_declare sets it). */
static bool same_declared(const void *a, const void *b)
{
    return ((const struct td_conf_rabbitmq_source *)a)->declare ==
           ((const struct td_conf_rabbitmq_source *)b)->declare;
}

const struct td_source_ops td_source_rabbitmq_ops = {
    TD_SOURCE_KIND("rabbitmq", TD_SOURCE_RABBITMQ, &rabbitmq_source_table,
                   struct td_conf_rabbitmq_source),
    .conf.same = same_declared,
    .lag_families = td_rabbitmq_lag_families,
    .init = init,
    .start = start,
    .quiesce = quiesce,
    .stop = td_source_stop_thread,
    .destroy = destroy,
};

static int init(struct td_source *src, char *err, size_t errlen)
{
    const struct td_conf_rabbitmq_source *conf = src->conf->settings;
    struct rmq_source *rs = calloc(1, sizeof(*rs));
    char why[256], base[256];
    if (!rs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rs->src = src;
    rs->conf = conf;
    rs->seen = calloc(SEEN_SLOTS, sizeof(*rs->seen)); /* NULL: counts start at 1 or 2 */
    if (td_amqp_addr_from_conf(conf->url, &conf->tls, conf->auth_mechanism, true, &rs->addr, why,
                               sizeof(why)) < 0) {
        snprintf(err, errlen, "source '%s': %s", src->name, why);
        goto fail;
    }
    td_amqp_addr_describe(&rs->addr, base, sizeof(base));
    snprintf(rs->where, sizeof(rs->where), "%s queue %s", base, conf->queue);
    size_t len = strlen(base) + strlen(conf->queue) + 2;
    rs->ce_source = malloc(len);
    if (!rs->ce_source) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(rs->ce_source, len, "%s/%s", base, conf->queue);
    src->impl = rs;
    return 0;
fail:
    td_amqp_addr_free(&rs->addr);
    free(rs->ce_source);
    free(rs->seen);
    free(rs);
    return -1;
}
