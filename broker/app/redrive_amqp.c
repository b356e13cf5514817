/* redrive_amqp.c - `triggerd redrive` reading a RabbitMQ dead-letter queue (see
 * redrive_store.h).
 *
 * A RabbitMQ sink names an exchange and a routing key; its dead letters sit in whatever queue
 * is bound there, which the caller names (redrive's --queue; for the default exchange the
 * routing key is the queue). A connection of its own (no heartbeats: nothing would answer them
 * while the loop delivers) checks the queue passively and takes its message count: reading
 * stops after that many, so dead letters published anew during the run (at the back of the
 * queue) are left for the next redrive.
 *
 * Messages are taken with basic.get and manual acks. A message is acked once it was delivered
 * or dead-lettered again (td_redrive_amqp_done); what was not (skipped by --reason or a
 * dry run, unreadable, no trigger, not finished) stays unacknowledged until flush requeues it all
 * with one basic.nack (multiple, requeue): requeued at once it would be read again by this run. If
 * the connection is lost instead, the broker requeues the unacked messages itself: at worst a
 * message is delivered twice, never lost. A run longer than the broker's consumer_timeout (30
 * minutes by default) with skipped messages held loses the channel; the held ones are requeued then
 * too.
 *
 * Ownership: the struct and everything in it belong to the caller of open until close.
 * Threads: the caller's only (rabbitmq-c is not thread-safe).
 */
#include "ce_amqp.h"
#include "rabbitmq_sink.h"
#include "redrive_store.h"

#include <amqp.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_util.h"

#define DEFAULT_TYPE       "dev.triggerd.rabbitmq.message"
#define CONNECT_TIMEOUT_MS 5000

struct td_redrive_amqp {
    struct td_amqp_addr addr;
    amqp_connection_state_t conn;
    char *queue;
    char *ce_source;
    uint32_t remaining; /* of the messages there at open, not read yet */
    long unacked;       /* read and not acked */
    long ack_failures;
    bool broken; /* the connection failed: the broker requeues what we hold */
    char error[256];
};

struct td_redrive_amqp *td_redrive_amqp_open(const struct td_conf_sink *conf, const char *queue,
                                             char *err, size_t errlen)
{
    struct td_redrive_amqp *q = calloc(1, sizeof(*q));
    char why[256], base[200];
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const struct td_conf_rabbitmq_sink *rc = TD_SETTINGS(conf, struct td_conf_rabbitmq_sink);
    if (td_amqp_addr_from_conf(rc->url, &rc->tls, rc->auth_mechanism, true, &q->addr, why,
                               sizeof(why)) < 0) {
        snprintf(err, errlen, "%s", why);
        goto fail;
    }
    td_amqp_addr_describe(&q->addr, base, sizeof(base));
    size_t len = strlen(base) + strlen(queue) + 2;
    q->queue = strdup(queue);
    q->ce_source = malloc(len);
    if (!q->queue || !q->ce_source) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(q->ce_source, len, "%s/%s", base, queue);
    q->conn = td_amqp_connect(&q->addr, 0, CONNECT_TIMEOUT_MS, why, sizeof(why));
    if (!q->conn) {
        snprintf(err, errlen, "%s", why);
        goto fail;
    }
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(q->conn, 1, amqp_cstring_bytes(q->queue), 1, 0, 0, 0, amqp_empty_table);
    if (!ok) {
        snprintf(err, errlen, "queue '%s': %s", q->queue,
                 td_amqp_reply_str(amqp_get_rpc_reply(q->conn), why, sizeof(why)));
        q->broken = true; /* the broker closed the channel */
        goto fail;
    }
    q->remaining = ok->message_count;
    return q;
fail:
    td_redrive_amqp_close(q);
    return NULL;
}

int td_redrive_amqp_read(struct td_redrive_amqp *q, struct td_redrive_entry *out, int max,
                         char *err, size_t errlen)
{
    int n = 0;
    char why[256];
    while (n < max && q->remaining > 0 && !q->error[0]) {
        amqp_rpc_reply_t r = amqp_basic_get(q->conn, 1, amqp_cstring_bytes(q->queue), 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            snprintf(q->error, sizeof(q->error), "basic.get: %s",
                     td_amqp_reply_str(r, why, sizeof(why)));
            q->broken = true;
            break;
        }
        if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) {
            q->remaining = 0; /* someone else took the rest */
            break;
        }
        if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) {
            snprintf(q->error, sizeof(q->error), "basic.get: unexpected reply 0x%08x",
                     (unsigned)r.reply.id);
            q->broken = true;
            break;
        }
        uint64_t tag = ((const amqp_basic_get_ok_t *)r.reply.decoded)->delivery_tag;
        amqp_message_t m;
        r = amqp_read_message(q->conn, 1, &m, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            snprintf(q->error, sizeof(q->error), "reading a message: %s",
                     td_amqp_reply_str(r, why, sizeof(why)));
            q->broken = true;
            break;
        }
        q->remaining--;
        q->unacked++;
        char handle[32];
        snprintf(handle, sizeof(handle), "%" PRIu64, tag);
        out[n].handle = strdup(handle);
        bool wrapped = false;
        out[n].ev = td_ce_from_amqp(&m.properties, m.body.bytes, m.body.len, q->queue, DEFAULT_TYPE,
                                    q->ce_source, &wrapped, why, sizeof(why));
        amqp_destroy_message(&m);
        amqp_maybe_release_buffers(q->conn);
        if (!out[n].handle) {
            td_event_unref(out[n].ev);
            snprintf(q->error, sizeof(q->error), "out of memory");
            break;
        }
        n++;
    }
    if (n == 0 && q->error[0]) {
        snprintf(err, errlen, "%s", q->error);
        return -1;
    }
    return n;
}

void td_redrive_amqp_done(struct td_redrive_amqp *q, const char *handle)
{
    char *end;
    uint64_t tag = strtoull(handle, &end, 10);
    if (*end || tag == 0) {
        return;
    }
    if (q->broken || amqp_basic_ack(q->conn, 1, tag, 0) != AMQP_STATUS_OK) {
        q->broken = true;
        q->ack_failures++;
        return;
    }
    q->unacked--;
}

int td_redrive_amqp_flush(struct td_redrive_amqp *q, char *err, size_t errlen)
{
    if (!q->broken && q->unacked > 0 &&
        amqp_basic_nack(q->conn, 1, 0, 1, 1) != AMQP_STATUS_OK) { /* all outstanding */
        q->broken = true;
    }
    if (q->ack_failures > 0) {
        snprintf(err, errlen,
                 "%ld redriven message(s) could not be acked: the broker requeues them (the next "
                 "redrive sends them again)",
                 q->ack_failures);
        return -1;
    }
    if (q->broken) {
        snprintf(err, errlen, "the connection failed: the broker requeues what was not acked");
        return -1;
    }
    return 0;
}

void td_redrive_amqp_close(struct td_redrive_amqp *q)
{
    if (!q) {
        return;
    }
    td_amqp_close(q->conn, !q->broken);
    td_amqp_addr_free(&q->addr);
    free(q->queue);
    free(q->ce_source);
    free(q);
}
