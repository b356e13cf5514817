/* rabbitmq_lag.c - the queue's depth from RabbitMQ's point of view (see rabbitmq_lag.h). One
 * passive queue.declare every lag interval on a channel of its own, from the source thread
 * between two polls: a round trip of well under a millisecond that never touches the consuming
 * channel (rabbitmq-c queues the deliveries that arrive meanwhile, and the loop reads them next).
 */
#include "rabbitmq_lag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "amqp_util.h"

#define RPC_TIMEOUT_MS 2000 /* channel.open and the passive declare: each answer within this */

const struct td_lag_family td_rabbitmq_lag_families[] = {
    {"triggerd_rabbitmq_queue_messages_ready",
     "Messages ready for delivery in the queue (queue.declare-ok message-count)."},
    {"triggerd_rabbitmq_queue_consumers",
     "Consumers of the queue, every client's (queue.declare-ok consumer-count)."},
    {NULL, NULL},
};

static int sample(struct td_lag_sample *s, const char *family, const char *queue, long long value)
{
    s->family = family;
    s->key[0] = "queue";
    s->val[0] = strdup(queue);
    s->value = value;
    return s->val[0] ? 0 : -1;
}

static int ask(struct td_source *src, amqp_connection_state_t conn, bool *chan_open,
               const char *queue, char *err, size_t errlen)
{
    amqp_channel_t ch = TD_RABBITMQ_LAG_CHANNEL;
    if (!*chan_open) {
        amqp_channel_open(conn, ch);
        amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            char why[256];
            snprintf(err, errlen, "channel.open for the queue depth: %s",
                     td_amqp_reply_str(r, why, sizeof(why)));
            return -1;
        }
        *chan_open = true;
    }
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(conn, ch, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        /* No such queue (404): the broker closed this channel only; answer and reopen later. */
        amqp_channel_close_ok_t close_ok = {0};
        *chan_open = false;
        if (amqp_send_method(conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok) != AMQP_STATUS_OK) {
            snprintf(err, errlen, "channel.close-ok for the queue depth failed");
            return -1;
        }
        td_source_set_lag(src, NULL, 0, -1);
        return 0;
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL || !ok) {
        char why[256];
        snprintf(err, errlen, "passive queue.declare for the queue depth: %s",
                 td_amqp_reply_str(r, why, sizeof(why)));
        return -1;
    }
    long long ready = ok->message_count, consumers = ok->consumer_count;
    struct td_lag_sample *s = calloc(2, sizeof(*s));
    if (!s) {
        return 0; /* out of memory: the previous figures stay */
    }
    if (sample(&s[0], td_rabbitmq_lag_families[0].name, queue, ready) < 0 ||
        sample(&s[1], td_rabbitmq_lag_families[1].name, queue, consumers) < 0) {
        td_lag_samples_free(s, 2);
        return 0;
    }
    td_source_set_lag(src, s, 2, ready);
    return 0;
}

int td_rabbitmq_lag_report(struct td_source *src, amqp_connection_state_t conn, bool *chan_open,
                           const char *queue, char *err, size_t errlen)
{
    /* Bounded: a broker that does not answer costs the source thread this long, then a
     * reconnect (the caller disconnects on -1: a late reply would leave the connection out of
     * step). Consuming never uses RPCs, so the bound is lifted again at once. */
    struct timeval bound = {RPC_TIMEOUT_MS / 1000, (RPC_TIMEOUT_MS % 1000) * 1000};
    amqp_set_rpc_timeout(conn, &bound);
    int rc = ask(src, conn, chan_open, queue, err, errlen);
    amqp_set_rpc_timeout(conn, NULL);
    return rc;
}
