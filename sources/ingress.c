/* ingress.c - the HTTP ingress source: CloudEvents POSTed to a path of the daemon's HTTP
 * server (`sources: x: {http: {path: /events, auth: {bearer: ...}, max_size: 1MiB}}`).
 *
 * Binary, structured and batched (application/cloudevents-batch+json) requests are accepted.
 * The answer is the acknowledgement: a request is answered 202 only once every event in it
 * was delivered or dead-lettered, so the caller's retry is the only buffer the system needs.
 * Until then its connection is suspended (MHD suspend/resume); the completions come back
 * through the source's mailbox, which this source's own thread drains, and the last one
 * resumes the connection. Refusals: 400 with a reason (malformed, or a Content-Type that is
 * not exactly one we know), 401 (no or wrong bearer token), 413 (over max_size, or a batch
 * larger than max_inflight: it could never fit), 429 (max_inflight reached for now), 422 (an
 * event failed for good on a trigger without dead_letter: a final status from the function,
 * an invalid event or a payload schema; retrying cannot help), 503 (shutting down, or an event
 * was left undelivered for a reason that may pass: retry later).
 *
 * Ownership: a request (struct ingress_req) is allocated on its first handler call and freed
 * in the server's completion callback; its messages point to it while they are in flight and
 * never after it was answered (the mailbox thread is the only reader, and stop() joins it
 * before answering what is left). Threads: the handler runs on the HTTP server thread, the
 * mailbox on the source thread, quiesce/stop on the loop thread.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ce_batch.h"
#include "ce_http.h"
#include "cloudevent.h"
#include "conf_table.h"
#include "http_server.h"
#include "ingress.h"
#include "jwks.h"
#include "log.h"
#include "loop.h"
#include "source.h"

enum rstate { R_READING, R_SUSPENDED, R_ANSWER };

struct ingress_req {
    struct ingress_req *prev, *next; /* outstanding requests, under ingress.mu */
    struct MHD_Connection *conn;
    enum rstate state;
    char *body;
    size_t len, cap;
    bool too_large;
    int remaining; /* messages not completed yet */
    int count;     /* messages in the request */
    bool failed;   /* at least one was released */
    unsigned int status;
    char reason[200];
    /* the first event that failed for good (msg.final_why): answered 422 */
    char *final_why;
    char *final_id;
    int final_status;
};

/* A message that knows its request; td_msg first, so td_msg_free frees the whole block. */
struct ingress_msg {
    struct td_msg msg;
    struct ingress_req *req;
};

struct ingress {
    struct td_source *src;
    const struct td_conf_http_source *conf;
    pthread_mutex_t mu;
    bool stopped;             /* under mu: no more suspensions */
    struct ingress_req *reqs; /* under mu: suspended requests */
    struct td_jwks *jwt;      /* auth: {jwt}, or NULL */
};

static void list_del(struct ingress *in, struct ingress_req *r)
{
    if (r->prev) {
        r->prev->next = r->next;
    } else if (in->reqs == r) {
        in->reqs = r->next;
    }
    if (r->next) {
        r->next->prev = r->prev;
    }
    r->prev = r->next = NULL;
}

/* Under mu: the request is over; it answers when MHD calls the handler again. */
static void resume(struct ingress *in, struct ingress_req *r, unsigned int status,
                   const char *reason)
{
    r->status = status;
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    r->state = R_ANSWER;
    list_del(in, r);
    MHD_resume_connection(r->conn);
}

/* ---- the handler (HTTP server thread) ---- */

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    struct td_http_headers *h = cls;
    struct td_http_header *items = realloc(h->items, (h->n + 1) * sizeof(*items));
    if (!items) {
        return MHD_NO;
    }
    h->items = items;
    items[h->n].name = strdup(key);
    items[h->n].value = strdup(value ? value : "");
    if (!items[h->n].name || !items[h->n].value) {
        free(items[h->n].name);
        free(items[h->n].value);
        return MHD_NO;
    }
    h->n++;
    return MHD_YES;
}

/* Constant-time comparison, so the token cannot be guessed byte by byte from timings. */
static bool same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la; i++) {
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (lb ? lb : 1)];
    }
    return diff == 0;
}

/* why: what is wrong with a JWT (never the token), for the 401 answer. */
static bool authorized(struct ingress *in, struct MHD_Connection *conn, char *why, size_t whylen)
{
    if (!in->jwt && (!in->conf->bearer || !in->conf->bearer[0])) {
        return true;
    }
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
        return false;
    }
    auth += 7;
    while (*auth == ' ') {
        auth++;
    }
    if (in->jwt) {
        char bad[128];
        if (td_jwks_verify(in->jwt, auth, bad, sizeof(bad)) < 0) {
            snprintf(why, whylen, ": %s", bad);
            td_log_debug(NULL, in->src->name, NULL, "ingress: bearer token refused: %s", bad);
            return false;
        }
        return true;
    }
    return same_secret(auth, in->conf->bearer);
}

/* Decodes the body into events. Returns how many (0..), or -1 with a reason. */
static int decode(struct ingress_req *r, struct MHD_Connection *conn, struct td_event ***evs,
                  char *why, size_t whylen)
{
    struct td_http_headers h = {0};
    size_t n = 0;
    int rc = -1;
    if (MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &h) < 0) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    const char *ct = td_http_headers_get(&h, "content-type");
    /* The exact media type, parameters aside: "...batch+jsonXYZ" is not a batch. */
    if (td_ce_media_is(ct, "application/cloudevents-batch+json")) {
        if (td_ce_batch_decode(r->body, r->len, evs, &n, why, whylen) < 0) {
            goto out;
        }
        rc = (int)n;
        goto out;
    }
    bool not_ce = false;
    struct td_event *ev =
        td_ce_http_decode(&h, (const unsigned char *)r->body, r->len, &not_ce, why, whylen);
    if (!ev) {
        if (not_ce) {
            snprintf(why, whylen,
                     "not a CloudEvent: binary mode needs ce-specversion, ce-id, ce-source and "
                     "ce-type headers; structured mode Content-Type "
                     "application/cloudevents+json");
        }
        goto out;
    }
    *evs = calloc(1, sizeof(**evs));
    if (!*evs) {
        td_event_unref(ev);
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    (*evs)[0] = ev;
    rc = 1;
out:
    td_http_headers_free(&h);
    return rc;
}

/* Turns the events into messages and hands them to the core, suspending the connection. */
static enum MHD_Result submit(struct ingress *in, struct ingress_req *r,
                              struct MHD_Connection *conn, struct td_event **evs, int n)
{
    struct td_msg *head = NULL, **tail = &head;
    int64_t now = td_now_ms();
    for (int i = 0; i < n; i++) {
        struct ingress_msg *im = calloc(1, sizeof(*im));
        const char *id = td_event_get(evs[i], "id");
        char coord[300];
        snprintf(coord, sizeof(coord), "http:%s", id ? id : "");
        if (!im || !(im->msg.coord = strdup(coord))) {
            free(im);
            goto oom;
        }
        im->req = r;
        /* The message takes the decoder's reference: after td_source_emit nothing on this
         * thread points to the event any more (the loop and the sinks own it). */
        im->msg.ev = evs[i];
        evs[i] = NULL;
        im->msg.received_ms = now;
        /* The request's trace context (W3C headers) is every event's parent in tracing. */
        const char *tp = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent");
        const char *ts = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "tracestate");
        if ((tp && !(im->msg.tp_header = strdup(tp))) ||
            (tp && ts && !(im->msg.ts_header = strdup(ts)))) {
            td_msg_free(&im->msg);
            goto oom;
        }
        *tail = &im->msg;
        tail = &im->msg.next;
    }
    pthread_mutex_lock(&in->mu);
    if (in->stopped || atomic_load(&in->src->quiesce)) {
        pthread_mutex_unlock(&in->mu);
        while (head) {
            struct td_msg *next = head->next;
            td_msg_free(head);
            head = next;
        }
        return td_http_reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down", 1);
    }
    r->remaining = n;
    r->count = n;
    r->state = R_SUSPENDED;
    r->next = in->reqs;
    if (in->reqs) {
        in->reqs->prev = r;
    }
    in->reqs = r;
    /* Suspended before the messages leave, so that the last completion always finds it so. */
    MHD_suspend_connection(conn);
    td_source_emit(in->src, head);
    pthread_mutex_unlock(&in->mu);
    return MHD_YES;
oom:
    while (head) {
        struct td_msg *next = head->next;
        td_msg_free(head);
        head = next;
    }
    return td_http_reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", 1);
}

static enum MHD_Result answer(struct ingress_req *r, struct MHD_Connection *conn)
{
    if (r->status == MHD_HTTP_ACCEPTED) {
        char body[64];
        snprintf(body, sizeof(body), "{\"accepted\":%d}", r->count);
        return td_http_reply(conn, r->status, "application/json", body, strlen(body), 0);
    }
    if (r->status == MHD_HTTP_UNPROCESSABLE_CONTENT && r->final_why) {
        /* {"error": ..., "id": the event, "status": the function's answer (0: none)} */
        cJSON *o = cJSON_CreateObject();
        char *text = NULL;
        if (o && cJSON_AddStringToObject(o, "error", r->final_why) &&
            cJSON_AddStringToObject(o, "id", r->final_id ? r->final_id : "") &&
            cJSON_AddNumberToObject(o, "status", r->final_status)) {
            text = cJSON_PrintUnformatted(o);
        }
        cJSON_Delete(o);
        if (text) {
            enum MHD_Result rc =
                td_http_reply(conn, r->status, "application/json", text, strlen(text), 0);
            free(text);
            return rc;
        }
    }
    return td_http_reply_error(conn, r->status, r->reason, 1);
}

static enum MHD_Result finish_upload(struct ingress *in, struct ingress_req *r,
                                     struct MHD_Connection *conn)
{
    char why[300] = "";
    struct td_event **evs = NULL;
    if (r->too_large) {
        snprintf(why, sizeof(why), "the request is larger than max_size (%lld bytes)",
                 (long long)in->conf->max_size);
        return td_http_reply_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, why, 0);
    }
    int n = decode(r, conn, &evs, why, sizeof(why));
    if (n < 0) {
        td_log_info(NULL, in->src->name, NULL, "refused a request: %s", why);
        return td_http_reply_error(conn, MHD_HTTP_BAD_REQUEST, why, 0);
    }
    enum MHD_Result rc;
    if (n == 0) {
        rc = td_http_reply(conn, MHD_HTTP_ACCEPTED, "application/json", "{\"accepted\":0}", 14, 0);
    } else if (n > in->src->conf->max_inflight) {
        /* It would never fit, however long the caller waits: not a 429. */
        snprintf(why, sizeof(why),
                 "the batch has %d events, more than this source's max_inflight (%d); send at "
                 "most %d per request",
                 n, in->src->conf->max_inflight, in->src->conf->max_inflight);
        td_log_info(NULL, in->src->name, NULL, "refused a request: %s", why);
        rc = td_http_reply_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, why, 0);
    } else if (td_source_credit(in->src) < n) {
        rc = td_http_reply_error(conn, MHD_HTTP_TOO_MANY_REQUESTS,
                                 "too many events in flight; retry later", 1);
    } else {
        rc = submit(in, r, conn, evs, n);
    }
    td_ce_batch_free(evs, n > 0 ? (size_t)n : 0);
    return rc;
}

static enum MHD_Result handle(void *arg, struct MHD_Connection *conn, const char *method,
                              const char *upload, size_t *upload_size, void **reqp)
{
    struct ingress *in = arg;
    struct ingress_req *r = *reqp;
    if (!r) {
        if (strcmp(method, "POST") != 0) {
            return td_http_reply_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "POST CloudEvents here",
                                       0);
        }
        if (atomic_load(&in->src->quiesce)) {
            return td_http_reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down", 1);
        }
        char denied[160] = "";
        if (!authorized(in, conn, denied, sizeof(denied))) {
            char reason[200];
            snprintf(reason, sizeof(reason), "a valid bearer token is required%s", denied);
            return td_http_reply_error(conn, MHD_HTTP_UNAUTHORIZED, reason, 0);
        }
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoll(cl, NULL, 10) > in->conf->max_size) {
            char why[128];
            snprintf(why, sizeof(why), "the request is larger than max_size (%lld bytes)",
                     (long long)in->conf->max_size);
            return td_http_reply_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, why, 0);
        }
        r = calloc(1, sizeof(*r));
        if (!r) {
            return MHD_NO;
        }
        r->conn = conn;
        *reqp = r;
        return MHD_YES;
    }
    if (r->state == R_ANSWER) {
        return answer(r, conn);
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_large || (int64_t)(r->len + n) > in->conf->max_size) {
            r->too_large = true; /* the rest is read and dropped, then 413 */
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1) {
                cap *= 2;
            }
            char *b = realloc(r->body, cap);
            if (!b) {
                return MHD_NO;
            }
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    if (r->state == R_SUSPENDED) {
        return MHD_YES; /* a spurious call while waiting */
    }
    return finish_upload(in, r, conn);
}

static void request_done(void *arg, void *reqp)
{
    struct ingress *in = arg;
    struct ingress_req *r = reqp;
    if (!r) {
        return;
    }
    pthread_mutex_lock(&in->mu);
    if (r->state == R_SUSPENDED) {
        list_del(in, r); /* cannot happen while suspended; kept for safety */
    }
    pthread_mutex_unlock(&in->mu);
    free(r->body);
    free(r->final_why);
    free(r->final_id);
    free(r);
}

/* ---- the mailbox (source thread) ---- */

static void drain_mailbox(struct ingress *in)
{
    struct td_msg *done = td_source_take_done(in->src);
    pthread_mutex_lock(&in->mu);
    while (done) {
        struct td_msg *next = done->next;
        struct ingress_req *r = ((struct ingress_msg *)done)->req;
        if (done->release) {
            r->failed = true;
            if (done->final_why && !r->final_why) {
                r->final_why = strdup(done->final_why);
                const char *id = td_event_get(done->ev, "id");
                r->final_id = id ? strdup(id) : NULL;
                r->final_status = done->final_status;
            }
        } else {
            atomic_fetch_add(&in->src->acked, 1);
        }
        if (--r->remaining == 0 && r->state == R_SUSPENDED) {
            if (r->failed && r->final_why) {
                /* one event can never succeed: a retry of the request would fail again */
                resume(in, r, MHD_HTTP_UNPROCESSABLE_CONTENT, r->final_why);
            } else if (r->failed) {
                resume(in, r, MHD_HTTP_SERVICE_UNAVAILABLE,
                       "not every event could be delivered or dead-lettered; retry later");
            } else {
                resume(in, r, MHD_HTTP_ACCEPTED, "");
            }
        }
        td_msg_free(done);
        done = next;
    }
    pthread_mutex_unlock(&in->mu);
}

static void *run(void *arg)
{
    struct ingress *in = arg;
    struct pollfd pfd[2] = {{.fd = in->src->stopfd, .events = POLLIN},
                            {.fd = in->src->mailbox_fd, .events = POLLIN}};
    for (;;) {
        if (poll(pfd, 2, -1) < 0 && errno != EINTR) {
            break;
        }
        if (pfd[1].revents & POLLIN) {
            drain_mailbox(in);
        }
        if (pfd[0].revents & POLLIN) {
            break;
        }
    }
    drain_mailbox(in);
    return NULL;
}

/* ---- the plugin ---- */

static int start(struct td_source *src)
{
    struct ingress *in = src->impl;
    if (td_source_spawn(src, run, in) < 0) {
        return -1;
    }
    atomic_store(&src->connected, true); /* the server listens before sources start */
    return 0;
}

static void stop(struct td_source *src)
{
    struct ingress *in = src->impl;
    atomic_store(&src->quiesce, true); /* also when the thread never started */
    td_source_stop_thread(src);
    /* What is still in flight stays unanswered by the core: the caller must retry it. */
    pthread_mutex_lock(&in->mu);
    in->stopped = true;
    while (in->reqs) {
        resume(in, in->reqs, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down; retry later");
    }
    pthread_mutex_unlock(&in->mu);
    atomic_store(&src->connected, false);
}

static void destroy(struct td_source *src)
{
    struct ingress *in = src->impl;
    if (!in) {
        return;
    }
    stop(src);
    pthread_mutex_destroy(&in->mu);
    td_jwks_free(in->jwt);
    free(in);
    src->impl = NULL;
}

static int init(struct td_source *src, char *err, size_t errlen)
{
    struct ingress *in = NULL;
    if (!src->httpd) {
        snprintf(err, errlen, "source '%s': an http source needs daemon.http.listen", src->name);
        goto fail;
    }
    in = calloc(1, sizeof(*in));
    if (!in) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    in->src = src;
    in->conf = src->conf->settings;
    if (in->conf->jwt_jwks_file || in->conf->jwt_jwks_url) {
        char what[300], why[400];
        snprintf(what, sizeof(what), "source '%s'", src->name);
        in->jwt = td_jwks_new(what, in->conf->jwt_jwks_file, in->conf->jwt_jwks_url,
                              in->conf->jwt_issuer, in->conf->jwt_audience, why, sizeof(why));
        if (!in->jwt) {
            snprintf(err, errlen, "source '%s': auth.jwt.%s %s", src->name,
                     in->conf->jwt_jwks_url ? "jwks_url" : "jwks_file", why);
            goto fail;
        }
    }
    pthread_mutex_init(&in->mu, NULL);
    if (!in->conf->path || in->conf->path[0] != '/' ||
        td_http_server_route(src->httpd, in->conf->path, handle, request_done, in) < 0) {
        snprintf(err, errlen, "source '%s': path '%s' must start with '/' and be unique", src->name,
                 in->conf->path ? in->conf->path : "");
        pthread_mutex_destroy(&in->mu);
        goto fail;
    }
    src->impl = in;
    return 0;
fail:
    if (in) {
        td_jwks_free(in->jwt);
    }
    free(in);
    return -1;
}

/* ---- settings: http: {path, auth, max_size} ---- */
#define OFF(f) offsetof(struct td_conf_http_source, f)

static int check_ingress(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    const char *path = FIELD(base, OFF(path), char *)[0];
    if (path && path[0] != '/') {
        ERR_AT(ld, td_conf_map_get(map, "path"), "'path' must start with '/'");
        return -1;
    }
    return 0;
}

/* JWT bearer tokens checked against a JWKS (jwks.c); issuer and audience are required: without
 * them, any token the key holder ever signed for any service would pass. */
static const struct td_conf_key ingress_jwt_keys[] = {
    {.name = "jwks_file",
     .type = TD_K_STR,
     .off = OFF(jwt_jwks_file),
     .off2 = OFF(jwt_jwks_file_pos),
     .pos = true,
     .group = 1},
    ONE_STR("jwks_url", OFF(jwt_jwks_url)),
    REQ_STR("issuer", OFF(jwt_issuer)),
    REQ_STR("audience", OFF(jwt_audience)),
};
static int check_jwks_url(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    const char *url = FIELD(base, OFF(jwt_jwks_url), char *)[0];
    if (url && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        ERR_AT(ld, td_conf_map_get(map, "jwks_url"),
               "'jwks_url' must be an http:// or https:// URL");
        return -1;
    }
    return 0;
}
static const struct td_conf_table ingress_jwt_table = {
    TABLE("http source auth.jwt", ingress_jwt_keys), .group_required = true,
    .check = check_jwks_url};
static const struct td_conf_key ingress_auth_keys[] = {
    {.name = "bearer", .type = TD_K_STR, .off = OFF(bearer), .group = 1, .cred = true},
    {.name = "jwt", .type = TD_K_NESTED, .sub = &ingress_jwt_table, .group = 1},
};
static const struct td_conf_table ingress_auth_table = {
    TABLE("http source auth", ingress_auth_keys)};
static const struct td_conf_key http_source_keys[] = {
    REQ_STR("path", OFF(path)),
    NESTED("auth", 0, &ingress_auth_table),
    {.name = "max_size", .type = TD_K_SIZE, .off = OFF(max_size), .dflt = "1MiB"},
};
static const struct td_conf_table http_source_table = {TABLE("http source", http_source_keys),
                                                       .check = check_ingress};
#undef OFF

/* `check`: an HTTP ingress source is served by daemon.http.listen on a path of its own. */
static void check(const struct td_config *cfg, const struct td_conf_source *src,
                  struct td_errors *errs)
{
    static const char *const builtin[] = {"/healthz", "/readyz", "/metrics", "/status"};
    const struct td_conf_http_source *conf = TD_SETTINGS(src, struct td_conf_http_source);
    const char *path = conf->path;
    if (!cfg->daemon.http_listen) {
        td_errors_add(errs, &src->pos, "source '%s': an http source needs daemon.http.listen",
                      src->name);
    }
    if (conf->jwt_jwks_file) {
        /* as the TLS files: unreadable here is a warning, not a JWKS an error */
        const struct td_pos *at = &conf->jwt_jwks_file_pos;
        char err[400];
        if (access(conf->jwt_jwks_file, R_OK) != 0) {
            fprintf(stderr,
                    "%s:%d:%d: warning: source '%s': auth.jwt.jwks_file %s cannot be read\n",
                    at->file, at->line, at->col, src->name, conf->jwt_jwks_file);
        } else if (td_jwks_check_file(conf->jwt_jwks_file, err, sizeof(err)) < 0) {
            td_errors_add(errs, at, "source '%s': auth.jwt.jwks_file %s", src->name, err);
        }
    }
    if (!path || path[0] != '/') {
        td_errors_add(errs, &src->pos, "source '%s': path must start with '/'", src->name);
        return;
    }
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        if (strcmp(path, builtin[i]) == 0) {
            td_errors_add(errs, &src->pos, "source '%s': path %s is a built-in endpoint", src->name,
                          path);
        }
    }
    for (const struct td_conf_source *other = cfg->sources; other < src; other++) {
        const char *used = other->plugin == src->plugin
                               ? TD_SETTINGS(other, struct td_conf_http_source)->path
                               : NULL;
        if (used && strcmp(used, path) == 0) {
            td_errors_add(errs, &src->pos, "source '%s': path %s is already used by source '%s'",
                          src->name, path, other->name);
        }
    }
}

const struct td_source_ops td_source_http_ops = {
    TD_SOURCE_KIND("http", TD_SOURCE_HTTP, &http_source_table, struct td_conf_http_source),
    .restart_to_change = true,
    .check = check,
    .init = init,
    .start = start,
    .quiesce = td_source_quiesce,
    .stop = stop,
    .destroy = destroy,
};
