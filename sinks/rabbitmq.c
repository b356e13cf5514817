/* rabbitmq.c - the RabbitMQ sink: publishes each event in CloudEvents binary mode to an
 * exchange with a routing key, persistent, mandatory, with publisher confirms. Used as a
 * trigger's sink, dead_letter or reply target.
 *
 * Why a thread: rabbitmq-c blocks and is not thread-safe, so the connection lives on a thread
 * of the sink's own (separate from any consumer's connection: a confirm on a consuming
 * connection confuses amqp_consume_message). The loop hands it jobs (properties and body
 * already encoded, so the thread never touches an event); the thread publishes, reads
 * basic.ack / basic.nack (multiple or single) and basic.return frames, and reports each job
 * back to the loop with td_loop_post. The attempt succeeds only on the broker's ack, so the
 * source message is acknowledged only after the confirm.
 *
 * Outcomes: ack -> OK; nack -> RETRY; returned as unroutable (mandatory) -> RETRY (a missing
 * binding is an operator's fix, and a dead letter must never be dropped); connection lost or
 * no confirm within the timeout -> the connection is dropped and every unconfirmed job is a
 * RETRY (a duplicate at worst, never a loss).
 *
 * Ownership: jobs belong to the sink from deliver() until on_done() ran on the loop; at
 * teardown the ones still alive (posted but never run) are freed by destroy().
 */
#include <amqp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "amqp_util.h"
#include "ce_amqp.h"
#include "cloudevent.h"
#include "conf_table.h"
#include "log.h"
#include "loop.h"
#include "rabbitmq_sink.h"
#include "sink.h"

#define HEARTBEAT_S        30
#define CONNECT_TIMEOUT_MS 5000

struct rjob {
    struct rjob *next; /* new-job queue, then the unconfirmed list */
    struct rjob *all_next, *all_prev;
    struct td_attempt *a;
    struct td_amqp_out *out;
    int64_t timeout_ms;
    int64_t deadline;
    uint64_t seq;
    bool returned;
    char return_text[96];
    enum td_result result;
    char reason[160];
};

struct rmq_sink {
    struct td_sink *k;
    struct td_amqp_addr addr;
    const char *exchange;
    const char *routing_key;
    pthread_t thread;
    pthread_mutex_t mu;
    int wakefd;
    bool stop;                /* mu */
    int64_t close_by;         /* mu: when the last close gives up (set with stop) */
    bool exited;              /* mu: run() returned; cv signalled */
    pthread_cond_t cv;        /* CLOCK_MONOTONIC */
    int sockfd;               /* mu: conn's socket while conn lives, else -1 (cut_stuck) */
    bool cut;                 /* mu: sockfd was shut down past close_by (cut_stuck) */
    struct rjob *head, *tail; /* new jobs, mu */
    struct rjob *all;         /* every live job, mu */
    /* the thread's own */
    amqp_connection_state_t conn;
    uint64_t seq;
    struct rjob *uhead, *utail; /* published, unconfirmed, ascending seq */
    int64_t next_connect_ms;
    int64_t backoff_ms;
    char conn_error[200];
};

/* ---- completion (loop thread) ---- */

static void on_done(struct td_loop *loop, void *arg)
{
    struct rjob *j = arg;
    struct rmq_sink *ks = j->a->sink_state;
    pthread_mutex_lock(&ks->mu);
    if (j->all_prev) {
        j->all_prev->all_next = j->all_next;
    } else {
        ks->all = j->all_next;
    }
    if (j->all_next) {
        j->all_next->all_prev = j->all_prev;
    }
    pthread_mutex_unlock(&ks->mu);
    struct td_attempt *a = j->a;
    enum td_result r = j->result;
    char reason[160];
    snprintf(reason, sizeof(reason), "%s", j->reason);
    td_amqp_out_free(j->out);
    free(j);
    td_attempt_done(a, r, 0, -1, reason, NULL, 0);
}

/* Thread: hands a finished job to the loop. */
static void complete(struct rmq_sink *ks, struct rjob *j, enum td_result r, const char *reason)
{
    j->result = r;
    snprintf(j->reason, sizeof(j->reason), "%s", reason);
    if (td_loop_post(ks->k->loop, on_done, j) < 0) {
        /* Out of memory: the job stays in ks->all and is freed at teardown; its message
         * stays unacknowledged and is redelivered then. */
        td_log_error(NULL, NULL, NULL, "sink '%s': out of memory reporting a publish", ks->k->name);
    }
}

/* ---- the connection (thread) ---- */

static void fail_unconfirmed(struct rmq_sink *ks, const char *why)
{
    char reason[160];
    snprintf(reason, sizeof(reason), "no confirm: %s", why);
    while (ks->uhead) {
        struct rjob *j = ks->uhead;
        ks->uhead = j->next;
        complete(ks, j, TD_RESULT_RETRY, reason);
    }
    ks->utail = NULL;
}

/* The connection's socket, for wait_exit: a duplicate of it, published while the connection
 * lives and closed when withdrawn (under mu). A duplicate, because rabbitmq-c closes its own
 * descriptor by itself when a request or a heartbeat times out, before we withdraw it: the
 * number could then be reused by any other socket of the process, which wait_exit would shut
 * down. The duplicate keeps the socket (not just the number) ours until it is withdrawn, and a
 * shutdown through it still cuts the connection's writes. Without one (no descriptor left) the
 * connection cannot be cut: wait_exit then waits for the thread as it did before. */
static void publish_fd(struct rmq_sink *ks, int fd)
{
    int dup = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    pthread_mutex_lock(&ks->mu);
    int old = ks->sockfd;
    ks->sockfd = dup;
    pthread_mutex_unlock(&ks->mu);
    if (old >= 0) {
        close(old);
    }
}

static bool stopping(struct rmq_sink *ks)
{
    pthread_mutex_lock(&ks->mu);
    bool stop = ks->stop;
    pthread_mutex_unlock(&ks->mu);
    return stop;
}

static void drop_connection(struct rmq_sink *ks, const char *why, bool polite)
{
    if (ks->conn) {
        td_log_warn(NULL, NULL, NULL, "sink '%s': %s: %s", ks->k->name, ks->k->dest, why);
        publish_fd(ks, -1);
        td_amqp_close(ks->conn, polite);
        ks->conn = NULL;
    }
    fail_unconfirmed(ks, why);
}

static int open_connection(struct rmq_sink *ks)
{
    char err[200], why[200];
    int64_t now = td_now_ms();
    if (now < ks->next_connect_ms) {
        return -1;
    }
    ks->conn = td_amqp_connect(&ks->addr, HEARTBEAT_S, CONNECT_TIMEOUT_MS, err, sizeof(err));
    if (ks->conn) {
        amqp_confirm_select(ks->conn, 1);
        amqp_rpc_reply_t r = amqp_get_rpc_reply(ks->conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            snprintf(err, sizeof(err), "confirm.select: %s",
                     td_amqp_reply_str(r, why, sizeof(why)));
            td_amqp_close(ks->conn, false);
            ks->conn = NULL;
        }
    }
    if (!ks->conn) {
        if (strcmp(err, ks->conn_error) != 0) {
            td_log_warn(NULL, NULL, NULL, "sink '%s': %s", ks->k->name, err);
            snprintf(ks->conn_error, sizeof(ks->conn_error), "%s", err);
        }
        ks->backoff_ms =
            ks->backoff_ms ? (ks->backoff_ms * 2 > 5000 ? 5000 : ks->backoff_ms * 2) : 100;
        ks->next_connect_ms = now + ks->backoff_ms;
        return -1;
    }
    publish_fd(ks, amqp_get_sockfd(ks->conn));
    if (ks->conn_error[0]) {
        td_log_info(NULL, NULL, NULL, "sink '%s': connected again", ks->k->name);
    }
    ks->conn_error[0] = '\0';
    ks->backoff_ms = 0;
    ks->seq = 0;
    return 0;
}

static void publish(struct rmq_sink *ks, struct rjob *j)
{
    /* Once told to stop (teardown), no new connection: a broker that does not answer would
     * hold the thread for the connect's timeout. */
    if (!ks->conn && (stopping(ks) || open_connection(ks) < 0)) {
        char reason[160];
        snprintf(reason, sizeof(reason), "not connected: %s",
                 ks->conn_error[0] ? ks->conn_error : "stopping");
        complete(ks, j, TD_RESULT_RETRY, reason);
        return;
    }
    size_t len;
    const void *body = td_amqp_out_body(j->out, &len);
    amqp_bytes_t b = {.len = len, .bytes = (void *)body};
    int rc = amqp_basic_publish(ks->conn, 1, amqp_cstring_bytes(ks->exchange),
                                amqp_cstring_bytes(ks->routing_key), 1, 0,
                                (const amqp_basic_properties_t *)td_amqp_out_props(j->out), b);
    if (rc != AMQP_STATUS_OK) {
        char reason[160];
        snprintf(reason, sizeof(reason), "basic.publish: %s", amqp_error_string2(rc));
        complete(ks, j, TD_RESULT_RETRY, reason);
        drop_connection(ks, amqp_error_string2(rc), false);
        return;
    }
    j->seq = ++ks->seq;
    j->deadline = td_now_ms() + j->timeout_ms;
    j->next = NULL;
    if (ks->utail) {
        ks->utail->next = j;
    } else {
        ks->uhead = j;
    }
    ks->utail = j;
}

static void confirm(struct rmq_sink *ks, uint64_t tag, bool multiple, bool ack)
{
    struct rjob **pp = &ks->uhead;
    struct rjob *prev = NULL;
    while (*pp) {
        struct rjob *j = *pp;
        if (j->seq > tag) {
            break;
        }
        if (!multiple && j->seq != tag) {
            prev = j;
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        if (ks->utail == j) {
            ks->utail = prev;
        }
        if (!ack) {
            complete(ks, j, TD_RESULT_RETRY, "nacked by the broker");
        } else if (j->returned) {
            char reason[160];
            snprintf(reason, sizeof(reason), "unroutable: returned by the broker (%s)",
                     j->return_text);
            complete(ks, j, TD_RESULT_RETRY, reason);
        } else {
            complete(ks, j, TD_RESULT_OK, "confirmed");
        }
        if (!multiple) {
            break;
        }
    }
}

/* basic.return: the content follows; mark the oldest unconfirmed job with that message id. */
static void returned(struct rmq_sink *ks, const amqp_basic_return_t *m)
{
    char text[96];
    snprintf(text, sizeof(text), "%u %.*s", m->reply_code, (int)m->reply_text.len,
             (const char *)m->reply_text.bytes);
    amqp_message_t msg;
    amqp_rpc_reply_t r = amqp_read_message(ks->conn, 1, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        drop_connection(ks, "reading a returned message failed", false);
        return;
    }
    struct rjob *hit = NULL;
    for (struct rjob *j = ks->uhead; j; j = j->next) {
        if (j->returned) {
            continue;
        }
        const amqp_basic_properties_t *p =
            (const amqp_basic_properties_t *)td_amqp_out_props(j->out);
        bool same =
            (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) &&
            (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) &&
            p->message_id.len == msg.properties.message_id.len &&
            memcmp(p->message_id.bytes, msg.properties.message_id.bytes, p->message_id.len) == 0;
        if (same) {
            hit = j;
            break;
        }
        if (!hit) {
            hit = j; /* fallback: the oldest */
        }
    }
    if (hit) {
        hit->returned = true;
        snprintf(hit->return_text, sizeof(hit->return_text), "%s", text);
    }
    amqp_destroy_message(&msg);
}

/* Reads every frame that is there without waiting. */
static void read_frames(struct rmq_sink *ks)
{
    while (ks->conn) {
        amqp_frame_t f;
        struct timeval zero = {0, 0};
        amqp_maybe_release_buffers(ks->conn);
        int rc = amqp_simple_wait_frame_noblock(ks->conn, &f, &zero);
        if (rc == AMQP_STATUS_TIMEOUT) {
            return;
        }
        if (rc != AMQP_STATUS_OK) {
            drop_connection(ks, amqp_error_string2(rc), false);
            return;
        }
        if (f.frame_type != AMQP_FRAME_METHOD) {
            continue;
        }
        switch (f.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            const amqp_basic_ack_t *m = f.payload.method.decoded;
            confirm(ks, m->delivery_tag, m->multiple, true);
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            const amqp_basic_nack_t *m = f.payload.method.decoded;
            confirm(ks, m->delivery_tag, m->multiple, false);
            break;
        }
        case AMQP_BASIC_RETURN_METHOD:
            returned(ks, f.payload.method.decoded);
            break;
        case AMQP_CHANNEL_CLOSE_METHOD: {
            const amqp_channel_close_t *m = f.payload.method.decoded;
            char why[160];
            snprintf(why, sizeof(why), "channel closed by the broker: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            amqp_channel_close_ok_t ok = {0};
            amqp_send_method(ks->conn, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
            drop_connection(ks, why, true);
            return;
        }
        case AMQP_CONNECTION_CLOSE_METHOD: {
            const amqp_connection_close_t *m = f.payload.method.decoded;
            char why[160];
            snprintf(why, sizeof(why), "connection closed by the broker: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            amqp_connection_close_ok_t ok = {0};
            amqp_send_method(ks->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
            drop_connection(ks, why, false);
            return;
        }
        default:
            break;
        }
    }
}

/* Teardown: whatever is unconfirmed is abandoned with its attempt (see sink.h). The polite
 * close waits for the broker until close_by, which every sink stopped together shares
 * (stop_sink), so a broker that does not answer costs TD_AMQP_CLOSE_MS once, not once per sink;
 * the dropped connection ends it as the close would. */
static void close_last(struct rmq_sink *ks, int64_t close_by)
{
    if (!ks->conn) {
        return;
    }
    td_log_debug(NULL, NULL, NULL, "sink '%s': closing the connection to %s", ks->k->name,
                 ks->k->dest);
    /* The socket stays published while the close writes: its requests can be stuck behind
     * publishes the broker never read (wait_exit cuts it). */
    if (td_amqp_say_close_by(ks->conn, close_by) < 0) {
        td_log_warn(NULL, NULL, NULL,
                    "sink '%s': close given up: no answer from %s by the deadline; the connection "
                    "is dropped",
                    ks->k->name, ks->k->dest);
    }
    publish_fd(ks, -1);
    amqp_destroy_connection(ks->conn);
    ks->conn = NULL;
}

static void *run(void *arg)
{
    struct rmq_sink *ks = arg;
    for (;;) {
        pthread_mutex_lock(&ks->mu);
        bool stop = ks->stop;
        int64_t close_by = ks->close_by;
        struct rjob *jobs = ks->head;
        ks->head = ks->tail = NULL;
        pthread_mutex_unlock(&ks->mu);
        if (stop) {
            close_last(ks, close_by);
            break;
        }
        while (jobs) {
            struct rjob *j = jobs;
            jobs = j->next;
            publish(ks, j);
        }
        if (ks->conn) {
            read_frames(ks);
        }
        int64_t now = td_now_ms();
        if (ks->uhead && now >= ks->uhead->deadline) {
            drop_connection(ks, "no publisher confirm within the timeout", false);
        }
        int timeout = 1000;
        if (ks->uhead) {
            int64_t left = ks->uhead->deadline - now;
            timeout = left < timeout ? (left > 0 ? (int)left : 0) : timeout;
        }
        bool buffered =
            ks->conn && (amqp_frames_enqueued(ks->conn) || amqp_data_in_buffer(ks->conn));
        struct pollfd pfd[2] = {
            {.fd = ks->wakefd, .events = POLLIN},
            {.fd = ks->conn ? amqp_get_sockfd(ks->conn) : -1, .events = POLLIN}};
        if (poll(pfd, 2, buffered ? 0 : timeout) < 0 && errno != EINTR) {
            break;
        }
        if (pfd[0].revents & POLLIN) {
            uint64_t n;
            ssize_t r = read(ks->wakefd, &n, sizeof(n));
            (void)r;
        }
    }
    /* Left without close_last (poll failed): the connection goes, what it did not confirm is
     * retried by its trigger. */
    if (ks->conn) {
        drop_connection(ks, "the publisher thread stops", false);
    }
    pthread_mutex_lock(&ks->mu);
    ks->exited = true;
    pthread_cond_broadcast(&ks->cv);
    pthread_mutex_unlock(&ks->mu);
    return NULL;
}

/* ---- the plugin (loop thread) ---- */

static int deliver(struct td_sink *k, const struct td_event *ev, struct td_attempt *a)
{
    struct rmq_sink *ks = k->impl;
    struct rjob *j = calloc(1, sizeof(*j));
    struct td_amqp_out *out = j ? td_ce_to_amqp(ev) : NULL;
    if (!j || !out) {
        free(j);
        snprintf(a->reason, sizeof(a->reason), "out of memory");
        return -1;
    }
    j->a = a;
    j->out = out;
    j->timeout_ms = a->timeout_ms > 0 ? a->timeout_ms : k->conf->timeout_ms;
    a->sink_state = ks;
    pthread_mutex_lock(&ks->mu);
    j->all_next = ks->all;
    if (ks->all) {
        ks->all->all_prev = j;
    }
    ks->all = j;
    if (ks->tail) {
        ks->tail->next = j;
    } else {
        ks->head = j;
    }
    ks->tail = j;
    pthread_mutex_unlock(&ks->mu);
    uint64_t one = 1;
    ssize_t w = write(ks->wakefd, &one, sizeof(one));
    (void)w;
    return 0;
}

/* Tells the thread to close and leave; its close waits until TD_AMQP_CLOSE_MS from the first
 * call. Loop thread. */
static void stop_sink(struct td_sink *k)
{
    struct rmq_sink *ks = k->impl;
    if (!ks) {
        return;
    }
    pthread_mutex_lock(&ks->mu);
    if (!ks->stop) {
        ks->stop = true;
        ks->close_by = td_now_ms() + TD_AMQP_CLOSE_MS;
    }
    pthread_mutex_unlock(&ks->mu);
    uint64_t one = 1;
    ssize_t w = write(ks->wakefd, &one, sizeof(one));
    (void)w;
}

/* How long after close_by a thread still inside rabbitmq-c gets before its socket is cut: its
 * own close gives up at close_by (rpc timeout), so only a thread stuck in a write passes it. */
#define CUT_AFTER_MS 100

/* rabbitmq-c writes with no time limit (amqp_basic_publish polls for a writable socket
 * forever): a broker that reads nothing (frozen) lets the socket's buffers fill with a few MB of
 * publishes, and the thread then never comes back to see the stop. Past close_by the socket is
 * shut down (the thread's write fails, it drops the connection and leaves); what was not
 * confirmed was never acknowledged at its source, so it is redelivered. Called with mu held,
 * once close_by + CUT_AFTER_MS has passed; the cut is made (and logged) once. */
static void cut_stuck(struct rmq_sink *ks)
{
    if (ks->exited || ks->cut || ks->sockfd < 0) {
        return;
    }
    td_log_warn(NULL, NULL, NULL,
                "sink '%s': %s does not read (a write still waits at the close "
                "deadline): the connection is cut",
                ks->k->name, ks->k->dest);
    shutdown(ks->sockfd, SHUT_RDWR);
    ks->cut = true;
}

/* Waits for run() to return, cutting a thread stuck in a write loose (cut_stuck). */
static void wait_exit(struct rmq_sink *ks)
{
    pthread_mutex_lock(&ks->mu);
    int64_t left = ks->close_by + CUT_AFTER_MS - td_now_ms();
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (left > 0) {
        until.tv_sec += left / 1000;
        until.tv_nsec += (left % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
    }
    int rc = 0;
    while (!ks->exited && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&ks->cv, &ks->mu, &until);
    }
    cut_stuck(ks);
    pthread_mutex_unlock(&ks->mu);
}

/* After stop_sink: whether run() has returned, so that destroy will not wait. Asked again
 * until it has (a reload's retired sinks: reload.c), which lets the loop go on meanwhile; past
 * the close deadline a thread stuck in a write is cut loose here as wait_exit would. Loop
 * thread. */
static bool sink_stopped(struct td_sink *k)
{
    struct rmq_sink *ks = k->impl;
    if (!ks) {
        return true;
    }
    pthread_mutex_lock(&ks->mu);
    if (!ks->exited && td_now_ms() >= ks->close_by + CUT_AFTER_MS) {
        cut_stuck(ks);
    }
    bool done = ks->exited;
    pthread_mutex_unlock(&ks->mu);
    return done;
}

static void destroy(struct td_sink *k)
{
    struct rmq_sink *ks = k->impl;
    if (!ks) {
        return;
    }
    stop_sink(k);
    wait_exit(ks);
    pthread_join(ks->thread, NULL);
    while (ks->all) {
        struct rjob *j = ks->all;
        ks->all = j->all_next;
        td_amqp_out_free(j->out);
        free(j);
    }
    if (ks->sockfd >= 0) {
        close(ks->sockfd); /* withdrawn by the thread when it dropped its connection */
    }
    close(ks->wakefd);
    pthread_cond_destroy(&ks->cv);
    pthread_mutex_destroy(&ks->mu);
    td_amqp_addr_free(&ks->addr);
    free(ks);
    k->impl = NULL;
}

static const struct td_sink_ops rabbitmq_ops = {
    .name = "rabbitmq",
    .deliver = deliver,
    .stop = stop_sink,
    .stopped = sink_stopped,
    .destroy = destroy,
};

static int rabbitmq_init(struct td_sink *k, char *err, size_t errlen)
{
    const struct td_conf_rabbitmq_sink *conf = k->conf->settings;
    struct rmq_sink *ks = calloc(1, sizeof(*ks));
    char why[200], base[200];
    if (!ks) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ks->k = k;
    ks->sockfd = -1;
    ks->exchange = conf->exchange ? conf->exchange : "";
    ks->routing_key = conf->routing_key ? conf->routing_key : "";
    ks->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (td_amqp_addr_from_conf(conf->url, &conf->tls, conf->auth_mechanism, true, &ks->addr, why,
                               sizeof(why)) < 0) {
        snprintf(err, errlen, "sink '%s': %s", k->name, why);
        goto fail;
    }
    if (ks->wakefd < 0) {
        snprintf(err, errlen, "sink '%s': eventfd failed", k->name);
        goto fail;
    }
    td_amqp_addr_describe(&ks->addr, base, sizeof(base));
    snprintf(k->dest, sizeof(k->dest), "%s/%s?routing_key=%s", base,
             ks->exchange[0] ? ks->exchange : "amq.default", ks->routing_key);
    pthread_mutex_init(&ks->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* wait_exit's deadline */
    pthread_cond_init(&ks->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&ks->thread, NULL, run, ks) != 0) {
        snprintf(err, errlen, "sink '%s': cannot start the publisher thread", k->name);
        pthread_cond_destroy(&ks->cv);
        pthread_mutex_destroy(&ks->mu);
        goto fail;
    }
    k->ops = &rabbitmq_ops;
    k->impl = ks;
    return 0;
fail:
    td_amqp_addr_free(&ks->addr);
    if (ks->wakefd >= 0) {
        close(ks->wakefd);
    }
    free(ks);
    return -1;
}

/* ---- settings: rabbitmq: {url, exchange, routing_key, tls, auth_mechanism, timeout} ---- */
#define OFF(f) offsetof(struct td_conf_rabbitmq_sink, f)

static const struct td_conf_key rabbitmq_sink_keys[] = {
    REQ_STR("url", OFF(url)),
    REQ_STR("exchange", OFF(exchange)),
    STR("routing_key", OFF(routing_key)),
    NESTED("tls", OFF(tls), &td_amqp_tls_table),
    ENUM_D("auth_mechanism", OFF(auth_mechanism), td_amqp_auth_names, "plain"),
    TD_QUEUE_SINK_TIMEOUT,
};
static const struct td_conf_table rabbitmq_sink_table = {
    TABLE("rabbitmq sink", rabbitmq_sink_keys)};
#undef OFF

const struct td_sink_desc td_sink_rabbitmq = {
    TD_SINK_KIND("rabbitmq", TD_SINK_RABBITMQ, &rabbitmq_sink_table, struct td_conf_rabbitmq_sink),
    .init = rabbitmq_init};
