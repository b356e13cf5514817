/* amqp_bench.c - the RabbitMQ half of bench/rabbitmq-http, in C on rabbitmq-c so neither the
 * backlog nor the ceiling is limited by a slow client:
 *
 *   amqp_bench publish HOST PORT QUEUE BODY_FILE N
 *       declares QUEUE (durable) and publishes N persistent binary-mode CloudEvents (the same
 *       body, cloudEvents:* headers, message-id bench-<i>) with publisher confirms; prints N.
 *   amqp_bench consume HOST PORT QUEUE PREFETCH N
 *       the raw ceiling: basic.qos PREFETCH, basic.consume with manual acks, one basic.ack
 *       multiple=1 per PREFETCH/2 deliveries (and at the end); prints "<messages> <seconds>".
 *
 * Exit 0, or 1 with a message on stderr.
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int ok(amqp_connection_state_t c, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "amqp_bench: %s failed (reply type %d)\n", what, r.reply_type);
        return -1;
    }
    return 0;
}

static amqp_connection_state_t open_conn(const char *host, int port)
{
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (!s || amqp_socket_open(s, host, port) != AMQP_STATUS_OK) {
        fprintf(stderr, "amqp_bench: cannot connect to %s:%d\n", host, port);
        return NULL;
    }
    amqp_rpc_reply_t r = amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "amqp_bench: login failed\n");
        return NULL;
    }
    amqp_channel_open(c, 1);
    return ok(c, "channel.open") < 0 ? NULL : c;
}

static int publish(amqp_connection_state_t c, const char *queue, const char *body_file, long n)
{
    static char body[1 << 20];
    FILE *fp = fopen(body_file, "rb");
    if (!fp) {
        fprintf(stderr, "amqp_bench: cannot read %s\n", body_file);
        return -1;
    }
    size_t len = fread(body, 1, sizeof(body), fp);
    fclose(fp);
    amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
    if (ok(c, "queue.declare") < 0) {
        return -1;
    }
    amqp_confirm_select(c, 1);
    if (ok(c, "confirm.select") < 0) {
        return -1;
    }
    amqp_table_entry_t h[4];
    const char *keys[4] = {"cloudEvents:specversion", "cloudEvents:type", "cloudEvents:source",
                           "cloudEvents:id"};
    const char *vals[3] = {"1.0", "com.example.bench", "/bench"};
    char id[32];
    for (int i = 0; i < 4; i++) {
        h[i].key = amqp_cstring_bytes(keys[i]);
        h[i].value.kind = AMQP_FIELD_KIND_UTF8;
        h[i].value.value.bytes = amqp_cstring_bytes(i < 3 ? vals[i] : "");
    }
    amqp_basic_properties_t p = {0};
    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
               AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
    p.content_type = amqp_cstring_bytes("application/json");
    p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    p.headers.num_entries = 4;
    p.headers.entries = h;
    amqp_bytes_t b = {.len = len, .bytes = body};
    uint64_t confirmed = 0;
    for (long i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "bench-%ld", i);
        h[3].value.value.bytes = amqp_cstring_bytes(id);
        p.message_id = amqp_cstring_bytes(id);
        if (amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &p, b) !=
            AMQP_STATUS_OK) {
            fprintf(stderr, "amqp_bench: publish failed\n");
            return -1;
        }
        /* Keep at most 5 000 unconfirmed: read the confirms that are there. */
        while ((long)(i + 1 - (long)confirmed) > 5000 || (i == n - 1 && (long)confirmed < n)) {
            amqp_frame_t f;
            if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK) {
                fprintf(stderr, "amqp_bench: lost the connection\n");
                return -1;
            }
            if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
                const amqp_basic_ack_t *a = f.payload.method.decoded;
                confirmed = a->delivery_tag;
            } else if (f.frame_type == AMQP_FRAME_METHOD) {
                fprintf(stderr, "amqp_bench: unexpected method 0x%x\n", f.payload.method.id);
                return -1;
            }
            amqp_maybe_release_buffers(c);
        }
    }
    printf("%ld\n", n);
    return 0;
}

static int consume(amqp_connection_state_t c, const char *queue, int prefetch, long n)
{
    amqp_basic_qos(c, 1, 0, (uint16_t)prefetch, 0);
    if (ok(c, "basic.qos") < 0) {
        return -1;
    }
    amqp_basic_consume(c, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (ok(c, "basic.consume") < 0) {
        return -1;
    }
    int every = prefetch / 2 > 0 ? prefetch / 2 : 1;
    double t0 = now_s();
    long got = 0, unacked = 0;
    uint64_t last = 0;
    while (got < n) {
        amqp_envelope_t env;
        amqp_maybe_release_buffers(c);
        amqp_rpc_reply_t r = amqp_consume_message(c, &env, NULL, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            fprintf(stderr, "amqp_bench: consume failed after %ld\n", got);
            return -1;
        }
        last = env.delivery_tag;
        amqp_destroy_envelope(&env);
        got++;
        if (++unacked >= every || got == n) {
            amqp_basic_ack(c, 1, last, 1);
            unacked = 0;
        }
    }
    printf("%ld %.6f\n", got, now_s() - t0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 7 || (strcmp(argv[1], "publish") != 0 && strcmp(argv[1], "consume") != 0)) {
        fprintf(stderr, "usage: amqp_bench publish HOST PORT QUEUE BODY_FILE N\n"
                        "       amqp_bench consume HOST PORT QUEUE PREFETCH N\n");
        return 1;
    }
    amqp_connection_state_t c = open_conn(argv[2], atoi(argv[3]));
    if (!c) {
        return 1;
    }
    int rc = strcmp(argv[1], "publish") == 0 ? publish(c, argv[4], argv[5], atol(argv[6]))
                                             : consume(c, argv[4], atoi(argv[5]), atol(argv[6]));
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    return rc < 0 ? 1 : 0;
}
