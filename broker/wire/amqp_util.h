/* amqp_util.h - what the RabbitMQ source, the RabbitMQ sink and `triggerd publish amqp://`
 * share: the URL, opening a connection (plain or TLS with peer verification, TLS 1.2 at
 * least) and turning rabbitmq-c's replies into messages.
 *
 * URL: amqp[s]://[USER[:PASSWORD]@]HOST[:PORT][/VHOST][/EXCHANGE][?K=V&...] with USER, PASSWORD,
 * VHOST and EXCHANGE percent-encoded (the default vhost "/" is written %2f; no vhost means "/").
 * The EXCHANGE segment exists only in publish URLs (with_exchange). Query keys, as in RabbitMQ's
 * own URI spec: cacertfile, certfile, keyfile (TLS files), server_name_indication (the name the
 * server's certificate must carry, when it is not HOST), auth_mechanism=plain|external (external:
 * the client certificate is the identity, no password), verify=verify_none (refused in a URL:
 * only a trigger file's tls.insecure_skip_verify turns verification off), routing_key (publish
 * URLs). A source's or sink's tls: block and auth_mechanism key are merged in with
 * td_amqp_addr_apply (amqp_conf.h).
 *
 * Ownership: td_amqp_addr_parse fills a struct the caller frees with td_amqp_addr_free.
 * A connection belongs to the thread that opened it (rabbitmq-c is not thread-safe).
 * Threads: any.
 */
#ifndef TD_AMQP_UTIL_H
#define TD_AMQP_UTIL_H

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct td_amqp_addr {
    bool tls;
    char *host;
    int port;
    char *user;
    char *password; /* secret: never logged */
    char *vhost;
    char *exchange;    /* publish URLs only ("" = the default exchange) */
    char *routing_key; /* publish URLs only, NULL when absent */
    char *cacert;
    char *cert;
    char *key;
    char *server_name; /* the name verified in the server's certificate; NULL: host */
    bool insecure;     /* no peer or name verification (tls.insecure_skip_verify) */
    bool external;     /* SASL EXTERNAL: the client certificate is the identity */
    bool user_given;   /* USER was in the URL (else "guest") */
};

/* 0, or -1 with a message (that never contains the password). */
int td_amqp_addr_parse(const char *url, bool with_exchange, struct td_amqp_addr *out, char *err,
                       size_t errlen);
void td_amqp_addr_free(struct td_amqp_addr *a);
/* The rules a parsed and merged address keeps: TLS settings only with amqps://, a client
 * certificate with its key, EXTERNAL only with a client certificate. CERT_KEY / KEY_KEY name the
 * keys in messages. 0, or -1 with a message. */
int td_amqp_addr_validate(const struct td_amqp_addr *a, const char *cert_key, const char *key_key,
                          char *err, size_t errlen);
/* "amqp://host:port/vhost" without credentials, for logs and knativeerrordest. */
void td_amqp_addr_describe(const struct td_amqp_addr *a, char *out, size_t len);

/* Opens a socket (timeout_ms to connect), logs in with heartbeat_s (0: none) and opens channel
 * 1. Returns the connection, or NULL with a message that names HOST:PORT and what failed
 * (connection refused or another system error, TLS handshake, authentication refused with the
 * broker's reply text, vhost access), never the password. Free with td_amqp_close(). */
amqp_connection_state_t td_amqp_connect(const struct td_amqp_addr *a, int heartbeat_s,
                                        int timeout_ms, char *err, size_t errlen);
/* How long td_amqp_close waits for the broker to answer a polite close: a broker that answers
 * does in milliseconds; one that does not (frozen, a half-open connection) is then dropped. */
#define TD_AMQP_CLOSE_MS 2000
/* Closes the channel and connection politely when `polite` (waiting at most TD_AMQP_CLOSE_MS
 * for the broker), then frees it. NULL is a no-op. */
void td_amqp_close(amqp_connection_state_t conn, bool polite);
/* Closes channel 1 and the connection politely, waiting for the broker's answers until
 * deadline_ms (td_now_ms clock; none at all when it has passed), then frees conn: a broker that
 * does not answer costs no more than that, and the dropped connection ends it as the close
 * would (the broker requeues what was not acknowledged). 0 when the broker answered both
 * closes, -1 when a close was given up or failed. NULL is a no-op (0). */
int td_amqp_close_by(amqp_connection_state_t conn, int64_t deadline_ms);
/* td_amqp_close_by without the free: the caller destroys conn (amqp_destroy_connection), e.g.
 * once it no longer lets another thread shut its socket down. Note that rabbitmq-c sends the
 * close requests with no time limit: a socket whose buffers are full (a broker that reads
 * nothing) holds this until the socket is shut down. */
int td_amqp_say_close_by(amqp_connection_state_t conn, int64_t deadline_ms);

/* A message for an RPC reply that is not AMQP_RESPONSE_NORMAL. Returns out. */
const char *td_amqp_reply_str(amqp_rpc_reply_t r, char *out, size_t len);
/* An amqp_bytes_t as a NUL-terminated malloc'd copy (NULL on out of memory). */
char *td_amqp_bytes_dup(amqp_bytes_t b);

#endif
