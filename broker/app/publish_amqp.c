/* publish_amqp.c - `triggerd publish amqp://...`: one message to a RabbitMQ exchange, waiting
 * for the publisher confirm, so a zero exit status means the broker has the message (see
 * publish.h). Binary-mode CloudEvents go out as the RabbitMQ sink writes them (ce_amqp.c);
 * plain messages carry --header K=V as AMQP headers and a content type: --content-type, or
 * one picked from the data as for CloudEvents (application/json, text/plain, else
 * application/octet-stream). */
#include <amqp.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_util.h"
#include "ce_amqp.h"
#include "ce_internal.h"
#include "cloudevent.h"
#include "loop.h"
#include "publish.h"
#include "retry.h"

#define TIMEOUT_MS 10000

/* Waits for the confirm of delivery tag 1; a basic.return before it is an unroutable message.
 * 0 confirmed, -1 with a message. */
static int wait_confirm(amqp_connection_state_t conn, char *err, size_t errlen)
{
    bool returned = false;
    int64_t deadline = td_now_ms() + TIMEOUT_MS;
    for (;;) {
        int64_t left = deadline - td_now_ms();
        if (left <= 0) {
            snprintf(err, errlen, "no publisher confirm within %d ms", TIMEOUT_MS);
            return -1;
        }
        struct timeval tv = {left / 1000, (left % 1000) * 1000};
        amqp_frame_t f;
        amqp_maybe_release_buffers(conn);
        int rc = amqp_simple_wait_frame_noblock(conn, &f, &tv);
        if (rc != AMQP_STATUS_OK) {
            snprintf(err, errlen, "waiting for the confirm: %s", amqp_error_string2(rc));
            return -1;
        }
        if (f.frame_type != AMQP_FRAME_METHOD) {
            continue;
        }
        switch (f.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD:
            if (returned) {
                snprintf(err, errlen,
                         "unroutable: the broker returned the message (no queue is "
                         "bound for this routing key)");
                return -1;
            }
            return 0;
        case AMQP_BASIC_NACK_METHOD:
            snprintf(err, errlen, "the broker refused the message (basic.nack)");
            return -1;
        case AMQP_BASIC_RETURN_METHOD: {
            amqp_message_t msg;
            amqp_rpc_reply_t r = amqp_read_message(conn, 1, &msg, 0);
            if (r.reply_type == AMQP_RESPONSE_NORMAL) {
                amqp_destroy_message(&msg);
            }
            returned = true;
            break;
        }
        case AMQP_CHANNEL_CLOSE_METHOD: {
            const amqp_channel_close_t *m = f.payload.method.decoded;
            snprintf(err, errlen, "channel closed by the broker: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            return -1;
        }
        case AMQP_CONNECTION_CLOSE_METHOD: {
            const amqp_connection_close_t *m = f.payload.method.decoded;
            snprintf(err, errlen, "connection closed by the broker: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            return -1;
        }
        default:
            break;
        }
    }
}

int td_publish_amqp(const char *url, const struct td_event *ev, const void *data, size_t len,
                    const char *key, const char *content_type, const char *const *headers,
                    size_t nheaders)
{
    struct td_amqp_addr addr;
    char err[300], why[256], id[40];
    int rc = 1;
    amqp_connection_state_t conn = NULL;
    struct td_amqp_out *out = NULL;
    amqp_table_entry_t *entries = NULL;
    if (td_amqp_addr_parse(url, true, &addr, err, sizeof(err)) < 0) {
        fprintf(stderr, "triggerd publish: %s\n", err);
        return 2;
    }
    const char *rk = addr.routing_key ? addr.routing_key : (key ? key : "");
    amqp_basic_properties_t plain = {0};
    const amqp_basic_properties_t *props = &plain;
    amqp_bytes_t body = {.len = len, .bytes = (void *)data};
    if (ev) {
        out = td_ce_to_amqp(ev);
        if (!out) {
            fprintf(stderr, "triggerd publish: out of memory\n");
            goto fail;
        }
        props = (const amqp_basic_properties_t *)td_amqp_out_props(out);
        body.bytes = (void *)td_amqp_out_body(out, &body.len);
        snprintf(id, sizeof(id), "%.39s", td_event_get(ev, "id"));
    } else {
        entries = calloc(nheaders + 1, sizeof(*entries));
        if (!entries) {
            fprintf(stderr, "triggerd publish: out of memory\n");
            goto fail;
        }
        for (size_t i = 0; i < nheaders; i++) {
            const char *eq = strchr(headers[i], '=');
            entries[i].key.bytes = (void *)headers[i];
            entries[i].key.len = (size_t)(eq - headers[i]);
            entries[i].value.kind = AMQP_FIELD_KIND_UTF8;
            entries[i].value.value.bytes = amqp_cstring_bytes(eq + 1);
        }
        snprintf(id, sizeof(id), "%016llx%016llx", (unsigned long long)td_random(),
                 (unsigned long long)td_random());
        plain._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                       AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_HEADERS_FLAG;
        plain.delivery_mode = AMQP_DELIVERY_PERSISTENT;
        plain.message_id = amqp_cstring_bytes(id);
        plain.timestamp = (uint64_t)(td_wall_ms() / 1000);
        plain.headers.num_entries = (int)nheaders;
        plain.headers.entries = entries;
        if (!content_type) {
            cJSON *json = cJSON_ParseWithLength(data, len);
            content_type = json                          ? "application/json"
                           : td_ce_utf8_valid(data, len) ? "text/plain; charset=utf-8"
                                                         : "application/octet-stream";
            cJSON_Delete(json);
        }
        plain._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        plain.content_type = amqp_cstring_bytes(content_type);
    }
    conn = td_amqp_connect(&addr, 0, TIMEOUT_MS, err, sizeof(err));
    if (!conn) {
        fprintf(stderr, "triggerd publish: %s\n", err);
        goto fail;
    }
    amqp_confirm_select(conn, 1);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "triggerd publish: confirm.select: %s\n",
                td_amqp_reply_str(r, why, sizeof(why)));
        goto fail;
    }
    int prc = amqp_basic_publish(conn, 1, amqp_cstring_bytes(addr.exchange), amqp_cstring_bytes(rk),
                                 1, 0, props, body);
    if (prc != AMQP_STATUS_OK) {
        fprintf(stderr, "triggerd publish: basic.publish: %s\n", amqp_error_string2(prc));
        goto fail;
    }
    if (wait_confirm(conn, err, sizeof(err)) < 0) {
        fprintf(stderr, "triggerd publish: %s\n", err);
        goto fail;
    }
    printf("%s\n", id);
    rc = 0;
fail:
    td_amqp_close(conn, rc == 0);
    td_amqp_out_free(out);
    free(entries);
    td_amqp_addr_free(&addr);
    return rc;
}
