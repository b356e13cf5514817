/* amqp_util.c - AMQP URLs and connections shared by the RabbitMQ source, sink and publish
 * (see amqp_util.h). */
#include "amqp_util.h"
#include "loop.h"
#include "secret.h"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* The first certificate verification error of this thread's last handshake: rabbitmq-c 0.11
 * keeps its SSL object to itself, so the callback is the only place that sees why. */
static __thread char verify_error[160];

/* "name: reason" of OpenSSL's last queued error, or just name; clears the queue. */
static void ssl_why(char *out, size_t len, const char *what)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0) {
        last = e;
    }
    const char *r = last ? ERR_reason_error_string(last) : NULL;
    snprintf(out, len, "%s%s%s", what, r ? ": " : "", r ? r : "");
}

/* Percent-decodes LEN bytes of S into a malloc'd string; NULL when malformed or on %00. */
static char *pct_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t n = 0;
    if (!out) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (i + 2 >= len) {
                goto fail;
            }
            if (!isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2])) {
                goto fail;
            }
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            out[n] = (char)strtol(hex, NULL, 16);
            if (out[n] == '\0') {
                goto fail;
            }
            n++;
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    return out;
fail:
    free(out);
    return NULL;
}

void td_amqp_addr_free(struct td_amqp_addr *a)
{
    if (!a) {
        return;
    }
    free(a->host);
    free(a->user);
    td_secret_free(a->password);
    free(a->vhost);
    free(a->exchange);
    free(a->routing_key);
    free(a->cacert);
    free(a->cert);
    free(a->key);
    free(a->server_name);
    memset(a, 0, sizeof(*a));
}

static int set_query(struct td_amqp_addr *a, const char *kv, size_t len, bool with_exchange,
                     char *err, size_t errlen)
{
    const char *eq = memchr(kv, '=', len);
    if (!eq) {
        snprintf(err, errlen, "URL parameter '%.*s' has no value", (int)len, kv);
        return -1;
    }
    size_t klen = (size_t)(eq - kv);
    char *value = pct_decode(eq + 1, len - klen - 1);
    char **slot = NULL;
    if (!value) {
        snprintf(err, errlen, "URL parameter '%.*s': bad percent-encoding", (int)klen, kv);
        return -1;
    }
    if (klen == 10 && strncmp(kv, "cacertfile", klen) == 0) {
        slot = &a->cacert;
    } else if (klen == 8 && strncmp(kv, "certfile", klen) == 0) {
        slot = &a->cert;
    } else if (klen == 7 && strncmp(kv, "keyfile", klen) == 0) {
        slot = &a->key;
    } else if (with_exchange && klen == 11 && strncmp(kv, "routing_key", klen) == 0) {
        slot = &a->routing_key;
    } else if (klen == 6 && strncmp(kv, "verify", klen) == 0) {
        if (strcmp(value, "verify_peer") != 0) {
            snprintf(err, errlen, "URL parameter verify=%s: peer verification cannot be turned off",
                     value);
            free(value);
            return -1;
        }
        free(value);
        return 0;
    } else if (klen == 22 && strncmp(kv, "server_name_indication", klen) == 0) {
        slot = &a->server_name;
    } else if (klen == 14 && strncmp(kv, "auth_mechanism", klen) == 0) {
        if (strcasecmp(value, "external") != 0 && strcasecmp(value, "plain") != 0) {
            snprintf(err, errlen, "URL parameter auth_mechanism=%s: plain or external", value);
            free(value);
            return -1;
        }
        a->external = strcasecmp(value, "external") == 0;
        free(value);
        return 0;
    } else {
        snprintf(err, errlen, "unknown URL parameter '%.*s'", (int)klen, kv);
        free(value);
        return -1;
    }
    free(*slot);
    *slot = value;
    return 0;
}

int td_amqp_addr_validate(const struct td_amqp_addr *a, const char *cert_key, const char *key_key,
                          char *err, size_t errlen)
{
    if (!a->tls && (a->cacert || a->cert || a->key || a->server_name || a->insecure)) {
        snprintf(err, errlen, "TLS settings given for an amqp:// URL (use amqps://)");
        return -1;
    }
    if ((a->cert == NULL) != (a->key == NULL)) {
        snprintf(err, errlen, "%s and %s go together", cert_key, key_key);
        return -1;
    }
    if (a->external && !a->cert) {
        snprintf(err, errlen,
                 "auth_mechanism external needs amqps:// and a client certificate (%s, %s): "
                 "the certificate is the identity",
                 cert_key, key_key);
        return -1;
    }
    return 0;
}

int td_amqp_addr_parse(const char *url, bool with_exchange, struct td_amqp_addr *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *p;
    if (strncmp(url, "amqp://", 7) == 0) {
        p = url + 7;
        out->port = 5672;
    } else if (strncmp(url, "amqps://", 8) == 0) {
        p = url + 8;
        out->tls = true;
        out->port = 5671;
    } else {
        snprintf(err, errlen, "an AMQP URL starts with amqp:// or amqps://");
        return -1;
    }
    const char *end = p + strcspn(p, "/?");
    const char *at = NULL;
    for (const char *q = p; q < end; q++) {
        if (*q == '@') {
            at = q;
        }
    }
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        out->user = pct_decode(p, (size_t)((colon ? colon : at) - p));
        out->password = colon ? pct_decode(colon + 1, (size_t)(at - colon - 1)) : strdup("guest");
        if (!out->user || !out->password) {
            snprintf(err, errlen, "bad user or password in the AMQP URL");
            goto fail;
        }
        p = at + 1;
        out->user_given = true;
    } else {
        out->user = strdup("guest");
        out->password = strdup("guest");
    }
    const char *hend = end;
    if (*p == '[') { /* [v6 address] */
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close) {
            snprintf(err, errlen, "bad host in the AMQP URL");
            goto fail;
        }
        out->host = strndup(p + 1, (size_t)(close - p - 1));
        p = close + 1;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        hend = colon ? colon : end;
        out->host = strndup(p, (size_t)(hend - p));
        p = hend;
    }
    if (!out->host || !out->host[0]) {
        snprintf(err, errlen, "the AMQP URL names no host");
        goto fail;
    }
    if (p < end && *p == ':') {
        char *e;
        long port = strtol(p + 1, &e, 10);
        if (e != end || port < 1 || port > 65535) {
            snprintf(err, errlen, "bad port in the AMQP URL");
            goto fail;
        }
        out->port = (int)port;
    }
    p = end;
    /* path: [/VHOST][/EXCHANGE] */
    const char *qs = strchr(p, '?');
    const char *pend = qs ? qs : p + strlen(p);
    const char *seg[3] = {NULL, NULL, NULL};
    size_t seglen[3] = {0, 0, 0};
    int nseg = 0;
    while (p < pend && *p == '/') {
        const char *s = p + 1;
        const char *e = memchr(s, '/', (size_t)(pend - s));
        e = e ? e : pend;
        if (nseg == 3) {
            nseg++;
            break;
        }
        seg[nseg] = s;
        seglen[nseg] = (size_t)(e - s);
        nseg++;
        p = e;
    }
    if (nseg > (with_exchange ? 2 : 1)) {
        snprintf(err, errlen, "the AMQP URL path is /VHOST%s", with_exchange ? "/EXCHANGE" : "");
        goto fail;
    }
    if (with_exchange && nseg == 1) { /* /EXCHANGE on the default vhost */
        seg[1] = seg[0];
        seglen[1] = seglen[0];
        seg[0] = NULL;
    }
    out->vhost = seg[0] && seglen[0] > 0 ? pct_decode(seg[0], seglen[0]) : strdup("/");
    if (with_exchange) {
        out->exchange = seg[1] ? pct_decode(seg[1], seglen[1]) : strdup("");
    }
    if (!out->vhost || (with_exchange && !out->exchange)) {
        snprintf(err, errlen, "bad percent-encoding in the AMQP URL path");
        goto fail;
    }
    if (qs) {
        const char *q = qs + 1;
        while (*q) {
            size_t len = strcspn(q, "&");
            if (len > 0 && set_query(out, q, len, with_exchange, err, errlen) < 0) {
                goto fail;
            }
            q += len + (q[len] == '&');
        }
    }
    if (td_amqp_addr_validate(out, "certfile", "keyfile", err, errlen) < 0) {
        goto fail;
    }
    return 0;
fail:
    td_amqp_addr_free(out);
    return -1;
}

void td_amqp_addr_describe(const struct td_amqp_addr *a, char *out, size_t len)
{
    const char *v = a->vhost && strcmp(a->vhost, "/") != 0 ? a->vhost : "%2f";
    snprintf(out, len, "%s://%s:%d/%s", a->tls ? "amqps" : "amqp", a->host, a->port, v);
}

const char *td_amqp_reply_str(amqp_rpc_reply_t r, char *out, size_t len)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(out, len, "ok");
        break;
    case AMQP_RESPONSE_NONE:
        snprintf(out, len, "no reply (missing RPC reply type)");
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(out, len, "%s", amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            snprintf(out, len, "connection closed by the broker: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            snprintf(out, len, "channel closed by the broker: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            snprintf(out, len, "unexpected broker method 0x%08x", r.reply.id);
        }
        break;
    }
    return out;
}

char *td_amqp_bytes_dup(amqp_bytes_t b)
{
    char *s = malloc(b.len + 1);
    if (s) {
        if (b.len) {
            memcpy(s, b.bytes, b.len);
        }
        s[b.len] = '\0';
    }
    return s;
}

/* rabbitmq-c 0.11 says only "a socket error occurred" when the TCP connect fails: it keeps
 * neither errno nor SO_ERROR. Ask once more, ourselves, and say what the system said
 * (connection refused, no route to host, ...). Only on the failure path, so it costs nothing
 * when the broker is up. */
static void why_no_socket(const char *host, int port, int timeout_ms, char *out, size_t len)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0) {
        snprintf(out, len, "cannot resolve the host: %s", gai_strerror(gai));
        return;
    }
    int last = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc < 0 && errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            rc = poll(&pfd, 1, timeout_ms);
            if (rc == 0) {
                errno = ETIMEDOUT;
                rc = -1;
            } else if (rc > 0) {
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                errno = soerr;
                rc = soerr ? -1 : 0;
            }
        }
        last = rc < 0 ? errno : 0;
        close(fd);
        if (last != 0) {
            continue;
        }
        break;
    }
    freeaddrinfo(res);
    if (last == ECONNREFUSED) {
        snprintf(out, len, "connection refused (nothing listens there?)");
    } else if (last != 0) {
        snprintf(out, len, "%s", strerror(last));
    } else {
        snprintf(out, len, "the connection failed (it works now: the broker may be restarting)");
    }
}

/* What failed when amqp_socket_open_noblock returned rc. */
static void why_no_open(const struct td_amqp_addr *a, int rc, int timeout_ms, char *err,
                        size_t errlen)
{
    char why[200];
    switch (rc) {
    case AMQP_STATUS_SSL_ERROR:
    case AMQP_STATUS_SSL_CONNECTION_FAILED:
    case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
    case AMQP_STATUS_SSL_PEER_VERIFY_FAILED: {
        unsigned long e, last = 0;
        while ((e = ERR_get_error()) != 0) {
            last = e;
        }
        const char *ssl = last ? ERR_reason_error_string(last) : NULL;
        snprintf(err, errlen, "TLS handshake with %s:%d failed: %s%s%s%s%s%s", a->host, a->port,
                 amqp_error_string2(rc), ssl ? ": " : "", ssl ? ssl : "",
                 verify_error[0] ? " (" : "", verify_error, verify_error[0] ? ")" : "");
        return;
    }
    case AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED:
        snprintf(err, errlen, "cannot connect to %s:%d: cannot resolve the host", a->host, a->port);
        return;
    case AMQP_STATUS_TIMEOUT:
        snprintf(err, errlen, "cannot connect to %s:%d: no answer within %d ms", a->host, a->port,
                 timeout_ms);
        return;
    case AMQP_STATUS_SOCKET_ERROR:
        why_no_socket(a->host, a->port, timeout_ms, why, sizeof(why));
        snprintf(err, errlen, "cannot connect to %s:%d: %s", a->host, a->port, why);
        return;
    default:
        snprintf(err, errlen, "cannot connect to %s:%d: %s", a->host, a->port,
                 amqp_error_string2(rc));
    }
}

/* What failed when amqp_login did not succeed: authentication (403), the vhost (530, or 403
 * naming the vhost), or the connection closing under it. Never the password. */
static void why_no_login(const struct td_amqp_addr *a, const char *identity, amqp_rpc_reply_t r,
                         char *err, size_t errlen)
{
    char why[256], who[300];
    td_amqp_reply_str(r, why, sizeof(why));
    const char *vhost = a->vhost ? a->vhost : "/";
    if (a->external) {
        snprintf(who, sizeof(who), "%s (EXTERNAL: the client certificate)",
                 identity[0] ? identity : "?");
    } else {
        snprintf(who, sizeof(who), "%s", a->user ? a->user : "guest");
    }
    const char *user = who;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        r.library_error == AMQP_STATUS_BROKER_UNSUPPORTED_SASL_METHOD) {
        snprintf(err, errlen, "%s:%d does not offer the %s auth mechanism%s", a->host, a->port,
                 a->external ? "EXTERNAL" : "PLAIN",
                 a->external ? " (the broker needs the rabbitmq_auth_mechanism_ssl plugin, "
                               "EXTERNAL in auth_mechanisms and a verified client certificate)"
                             : "");
        return;
    }
    if (a->tls && r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        r.library_error == AMQP_STATUS_SSL_ERROR) {
        /* TLS 1.3: the server checks the client certificate after the client has finished its
         * handshake, so a missing or untrusted one shows as an alert on the first read, here. */
        char ssl[200];
        ssl_why(ssl, sizeof(ssl), ""); /* often empty: the server reset the connection */
        snprintf(err, errlen,
                 "%s:%d ended the TLS session at login%s (a server that requires a client "
                 "certificate does this when none, or an untrusted one, was presented)",
                 a->host, a->port, ssl);
        return;
    }
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *m = r.reply.decoded;
        bool about_vhost = m->reply_code == AMQP_NOT_ALLOWED ||
                           (m->reply_text.len > 0 &&
                            memmem(m->reply_text.bytes, m->reply_text.len, "vhost", 5) != NULL);
        if (about_vhost) {
            snprintf(err, errlen, "%s:%d refused access to vhost '%s' for user %s: %s", a->host,
                     a->port, vhost, user, why);
        } else if (m->reply_code == AMQP_ACCESS_REFUSED) {
            snprintf(err, errlen, "%s:%d refused authentication of user %s: %s", a->host, a->port,
                     user, why);
        } else {
            snprintf(err, errlen, "login to %s:%d vhost '%s' refused: %s", a->host, a->port, vhost,
                     why);
        }
        return;
    }
    snprintf(err, errlen,
             "login to %s:%d vhost '%s' as user %s failed: %s (a broker that closes the "
             "connection during login refused the user, the password or the vhost)",
             a->host, a->port, vhost, user, why);
}

static int remember_verify_error(int ok, X509_STORE_CTX *x)
{
    if (!ok && !verify_error[0]) {
        snprintf(verify_error, sizeof(verify_error), "%s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)));
    }
    return ok;
}

/* The TLS settings of A on SOCK's context; the client certificate's CN into IDENTITY (for
 * EXTERNAL and messages). rabbitmq-c 0.11 checks the server's name itself, against HOST and only
 * its DNS names (an IP address in subjectAltName never matches), after a handshake that does not
 * fail on a bad chain: both are left to OpenSSL here instead (SSL_VERIFY_PEER with the name,
 * server_name or HOST, IP or DNS, in the context's verify parameters), so the handshake itself
 * fails and says why. 0, or -1 with a message. */
static int setup_tls(amqp_socket_t *sock, const struct td_amqp_addr *a, char *identity,
                     size_t idlen, char *err, size_t errlen)
{
    SSL_CTX *ctx = amqp_ssl_socket_get_context(sock);
    char why[200];
    if (!ctx) {
        snprintf(err, errlen, "no TLS context");
        return -1;
    }
    if (amqp_ssl_socket_set_ssl_versions(sock, AMQP_TLSv1_2, AMQP_TLSvLATEST) != AMQP_STATUS_OK) {
        snprintf(err, errlen, "cannot require TLS 1.2");
        return -1;
    }
    amqp_ssl_socket_set_verify_hostname(sock, 0);
    if (a->insecure) {
        amqp_ssl_socket_set_verify_peer(sock, 0);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        amqp_ssl_socket_set_verify_peer(sock, 1);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, remember_verify_error);
        X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
        const char *name = a->server_name ? a->server_name : a->host;
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1) { /* not an IP address: a DNS name */
            ERR_clear_error();
            X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (X509_VERIFY_PARAM_set1_host(vp, name, 0) != 1) {
                snprintf(err, errlen, "cannot verify the server name '%s'", name);
                return -1;
            }
        }
        if (a->cacert && amqp_ssl_socket_set_cacert(sock, a->cacert) != AMQP_STATUS_OK) {
            ssl_why(why, sizeof(why), "cannot load the CA certificates");
            snprintf(err, errlen, "%s from %s", why, a->cacert);
            return -1;
        }
        /* rabbitmq-c 0.11 loads no CA by itself: without cacertfile, the system's. */
        if (!a->cacert && SSL_CTX_set_default_verify_paths(ctx) != 1) {
            snprintf(err, errlen, "cannot load the system CA certificates");
            return -1;
        }
    }
    if (a->cert) {
        if (amqp_ssl_socket_set_key(sock, a->cert, a->key) != AMQP_STATUS_OK) {
            ssl_why(why, sizeof(why), "cannot load the client certificate");
            snprintf(err, errlen, "%s %s with its key %s", why, a->cert, a->key);
            return -1;
        }
        X509 *mine = SSL_CTX_get0_certificate(ctx);
        X509_NAME *subj = mine ? X509_get_subject_name(mine) : NULL;
        if (!subj || X509_NAME_get_text_by_NID(subj, NID_commonName, identity, (int)idlen) < 0) {
            identity[0] = '\0';
        }
    }
    return 0;
}

amqp_connection_state_t td_amqp_connect(const struct td_amqp_addr *a, int heartbeat_s,
                                        int timeout_ms, char *err, size_t errlen)
{
    char why[256], identity[256] = "";
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = NULL;
    if (!conn) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (a->tls) {
        sock = amqp_ssl_socket_new(conn);
        if (sock && setup_tls(sock, a, identity, sizeof(identity), err, errlen) < 0) {
            goto fail;
        }
    } else {
        sock = amqp_tcp_socket_new(conn);
    }
    if (!sock) {
        snprintf(err, errlen, "cannot create the socket");
        goto fail;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    verify_error[0] = '\0';
    int rc = amqp_socket_open_noblock(sock, a->host, a->port, &tv);
    if (rc != AMQP_STATUS_OK) {
        why_no_open(a, rc, timeout_ms, err, errlen);
        goto fail;
    }
    /* rabbitmq-c 0.11 has no handshake timeout: bound the login with socket timeouts. */
    int fd = amqp_get_sockfd(conn);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    amqp_rpc_reply_t r;
    if (a->external) {
        /* RabbitMQ takes the identity from the certificate and ignores this response, but
         * rabbitmq-c 0.11 fails an empty one as "out of memory": send the URL's user or the
         * certificate's CN. */
        if (a->user_given) {
            snprintf(identity, sizeof(identity), "%s", a->user);
        }
        r = amqp_login(conn, a->vhost, 0, 131072, heartbeat_s, AMQP_SASL_METHOD_EXTERNAL,
                       identity[0] ? identity : "client");
    } else {
        r = amqp_login(conn, a->vhost, 0, 131072, heartbeat_s, AMQP_SASL_METHOD_PLAIN, a->user,
                       a->password);
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        why_no_login(a, identity, r, err, errlen);
        goto fail;
    }
    amqp_channel_open(conn, 1);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(err, errlen, "channel.open: %s", td_amqp_reply_str(r, why, sizeof(why)));
        goto fail;
    }
    struct timeval none = {0, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
    return conn;
fail:
    amqp_destroy_connection(conn);
    return NULL;
}

/* Bounds conn's next RPC by deadline_ms; false when it has passed already. */
static bool rpc_until(amqp_connection_state_t conn, int64_t deadline_ms)
{
    int64_t left = deadline_ms - td_now_ms();
    if (left <= 0) {
        return false;
    }
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    amqp_set_rpc_timeout(conn, &tv);
    return true;
}

int td_amqp_say_close_by(amqp_connection_state_t conn, int64_t deadline_ms)
{
    if (!conn) {
        return 0;
    }
    /* rabbitmq-c's closes are RPCs that wait for the broker's close-ok without a bound (a
     * frozen broker keeps the socket open and answers nothing; only a heartbeat timeout, two
     * intervals, would end the wait, and with heartbeats off nothing would). Each waits at most
     * until the deadline; a timed-out RPC closes the socket, and so does the destroy, which is
     * what a broker takes as the end of the connection either way (it requeues what was not
     * acknowledged; the acks written before are read first, in order). */
    int rc = -1;
    if (rpc_until(conn, deadline_ms)) {
        amqp_rpc_reply_t r = amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
        /* A channel the broker closed already answers with an exception: the connection close
         * still goes. A library error (a timeout, a broken socket) leaves nothing to talk to. */
        if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION && rpc_until(conn, deadline_ms)) {
            r = amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
            rc = r.reply_type == AMQP_RESPONSE_NORMAL ? 0 : -1;
        }
    }
    return rc;
}

int td_amqp_close_by(amqp_connection_state_t conn, int64_t deadline_ms)
{
    int rc = td_amqp_say_close_by(conn, deadline_ms);
    if (conn) {
        amqp_destroy_connection(conn);
    }
    return rc;
}

void td_amqp_close(amqp_connection_state_t conn, bool polite)
{
    if (polite) {
        (void)td_amqp_close_by(conn, td_now_ms() + TD_AMQP_CLOSE_MS);
    } else if (conn) {
        amqp_destroy_connection(conn);
    }
}
