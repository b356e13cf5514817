/* http.c - the HTTP sink: POSTs a CloudEvent (binary or structured mode) to a URL with
 * libcurl's multi interface (broker/runtime/http_client.c), and classifies the answer. It serves
 * Knative Services and plain Kubernetes Services (the service: shorthand, Prefer: reply,
 * reply events, a projected service-account token re-read when it changes), Google Cloud
 * Functions / Cloud Run (an ID token from the metadata server, gcp.c), Azure Functions (the
 * function key as x-functions-key or ?code=) and any HTTP function. openfaas.c reuses it
 * through http_sink.h.
 *
 * Ownership: the sink owns its URL strings and token; per attempt, a struct http_attempt is
 * malloc'd by deliver() and freed when the attempt reports (or by the HTTP client when it is
 * abandoned at teardown: it holds no other allocation for that reason).
 * Credentials never reach a log line or k->dest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ce_batch.h"
#include "ce_http.h"
#include "ce_json.h"
#include "cloudevent.h"
#include "conf_table.h"
#include "creds.h"
#include "gcp.h"
#include "http_client.h"
#include "http_conf.h"
#include "http_lean.h"
#include "http_sink.h"
#include "log.h"
#include "oauth2.h"
#include "loop.h"
#include "secret.h"
#include "sink.h"
#include "tls_file.h"

struct http_attempt;

struct http_sink {
    struct td_http_client *client;
    struct td_http_target t;
    char *url_code; /* t.url with ?code=KEY (Azure, azure_key_in: query), or NULL */
    /* bearer_file: re-read when its mtime changes, checked at most once a second */
    char *token;
    char token_err[160]; /* why the last read failed (never the content), or "" */
    struct timespec token_mtime;
    int64_t token_checked_ms;
    struct td_creds *gcp;             /* google_id_token (shared, gcp.c), or NULL */
    struct td_creds *oauth;           /* oauth2 client credentials (this sink's), or NULL */
    struct td_creds *tok;             /* whichever of the two is set, or NULL */
    struct td_creds_waitlist waiting; /* attempts waiting for the token */
    struct td_lean_target *lean;      /* delivers with the lean client (http_lean.h), or NULL */
};

struct http_attempt {
    struct td_creds_waiter w; /* first: the waiter callback casts back */
    struct td_sink *k;
    struct td_attempt *a;
    const struct td_event *ev; /* NULL for a batch */
    const char *batch;         /* deliver_batch: the encoded batch (borrowed), or NULL */
    size_t batch_len;
    bool want_headers;
    bool refused;              /* the function answered 401 to a token once already (oauth2) */
    uint64_t tok_gen;          /* td_creds_fetches() when the token sent was read */
    struct td_http_hdrbuf hdr; /* the response's headers when the trigger wants replies */
};

size_t td_http_collect_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct td_http_hdrbuf *hb = userdata;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        hb->len = 0; /* a new response (after 100 Continue or a redirect) */
        return n;
    }
    if (hb->len + n <= sizeof(hb->data)) {
        memcpy(hb->data + hb->len, buf, n);
        hb->len += n;
    }
    return n;
}

int td_http_hdrbuf_parse(const struct td_http_hdrbuf *hb, struct td_http_headers *out)
{
    out->items = NULL;
    out->n = 0;
    size_t i = 0;
    while (i < hb->len) {
        const char *line = hb->data + i;
        const char *end = memchr(line, '\n', hb->len - i);
        size_t len = end ? (size_t)(end - line) : hb->len - i;
        i += len + 1;
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ')) {
            len--;
        }
        const char *colon = memchr(line, ':', len);
        if (!colon || colon == line) {
            continue; /* the blank line, or folded garbage */
        }
        const char *v = colon + 1;
        while (v < line + len && (*v == ' ' || *v == '\t')) {
            v++;
        }
        struct td_http_header *items = realloc(out->items, (out->n + 1) * sizeof(*items));
        if (!items) {
            goto fail;
        }
        out->items = items;
        items[out->n].name = strndup(line, (size_t)(colon - line));
        items[out->n].value = strndup(v, (size_t)(line + len - v));
        out->n++;
        if (!items[out->n - 1].name || !items[out->n - 1].value) {
            goto fail;
        }
    }
    return 0;
fail:
    td_http_headers_free(out);
    return -1;
}

static void refresh_token(struct td_sink *k, struct http_sink *hs)
{
    const char *path = hs->t.auth->bearer_file;
    int64_t now = td_now_ms();
    if (hs->token && now - hs->token_checked_ms < 1000) {
        return;
    }
    hs->token_checked_ms = now;
    struct stat st;
    if (stat(path, &st) < 0) {
        td_log_warn(NULL, NULL, NULL, "sink '%s': cannot stat bearer_file", k->name);
        return;
    }
    if (hs->token && st.st_mtim.tv_sec == hs->token_mtime.tv_sec &&
        st.st_mtim.tv_nsec == hs->token_mtime.tv_nsec) {
        return;
    }
    char err[160];
    char *token = td_read_secret_file(path, err, sizeof(err));
    if (!token) {
        td_log_warn(NULL, NULL, NULL, "sink '%s': bearer_file: %s", k->name, err);
        /* A changed file that cannot be used (e.g. it now holds a CR/LF) is not papered over
         * with the old token: attempts fail, retryable, until the file is fixed. */
        if (hs->token && strstr(err, "control character")) {
            td_secret_free(hs->token);
            hs->token = NULL;
        }
        snprintf(hs->token_err, sizeof(hs->token_err), "%s", err);
        return;
    }
    td_secret_free(hs->token);
    hs->token = token;
    hs->token_err[0] = '\0';
    hs->token_mtime = st.st_mtim;
    td_log_debug(NULL, NULL, NULL, "sink '%s': bearer_file (re)read", k->name);
}

/* The bearer token an attempt sends, or NULL for none: auth.bearer, else the token read from
 * auth.bearer_file (refreshed when the file changed), else google_token. -1 with a->reason set
 * when bearer_file is written but cannot be used: the attempt fails, retryable. Both clients. */
static int pick_bearer(struct td_sink *k, struct http_sink *hs, const char *google_token,
                       struct td_attempt *a, const char **bearer)
{
    const struct td_conf_auth *auth = hs->t.auth;
    *bearer = google_token;
    if (auth && auth->bearer) {
        *bearer = auth->bearer;
    }
    if (auth && auth->bearer_file) {
        refresh_token(k, hs);
        *bearer = hs->token;
        if (!*bearer) {
            snprintf(a->reason, sizeof(a->reason), "sink '%s': bearer_file cannot be used: %s",
                     k->name, hs->token_err[0] ? hs->token_err : "cannot be read");
            return -1;
        }
    }
    return 0;
}

/* Appends "Name: value" to list; returns the new list or NULL (list freed) on failure. */
static struct curl_slist *add_header(struct curl_slist *list, const char *name, const char *value)
{
    if (!list) {
        return NULL;
    }
    char stack[256];
    size_t nlen = strlen(name), vlen = strlen(value);
    size_t n = nlen + vlen + 3;
    char *line = n <= sizeof(stack) ? stack : malloc(n);
    if (!line) {
        td_secret_slist_free(list);
        return NULL;
    }
    memcpy(line, name, nlen);
    memcpy(line + nlen, ": ", 2);
    memcpy(line + nlen + 2, value, vlen + 1);
    struct curl_slist *l = curl_slist_append(list, line);
    td_secret_wipe(line, n); /* the value may be a key (x-functions-key) */
    if (line != stack) {
        free(line);
    }
    if (!l) {
        td_secret_slist_free(list);
    }
    return l;
}

struct ce_lines {
    struct curl_slist *list;
    bool has_type;
};

/* td_ce_http_encode_binary_lines' callback: one binary-mode header into the list. */
static int add_ce_line(void *arg, const char *line, size_t len, bool content_type)
{
    (void)len;
    struct ce_lines *cl = arg;
    struct curl_slist *l = curl_slist_append(cl->list, line);
    if (!l) {
        return -1;
    }
    cl->list = l;
    cl->has_type |= content_type;
    return 0;
}

/* A 2xx answer may carry a reply event. Returns the classification to report. */
static enum td_result take_reply(struct http_attempt *ha, long status, const unsigned char *body,
                                 size_t len, char *reason, size_t reasonlen)
{
    struct td_attempt *a = ha->a;
    struct td_http_headers h = {0};
    char err[128] = "";
    bool not_ce = false;
    if (status == 204 || (len == 0 && ha->hdr.len == 0)) {
        return TD_RESULT_OK;
    }
    if (td_http_hdrbuf_parse(&ha->hdr, &h) < 0) {
        snprintf(reason, reasonlen, "HTTP %ld, out of memory reading the reply", status);
        return TD_RESULT_RETRY;
    }
    struct td_event *reply = td_ce_http_decode(&h, body, len, &not_ce, err, sizeof(err));
    td_http_headers_free(&h);
    if (reply && td_event_validate(reply, err, sizeof(err)) < 0) {
        td_event_unref(reply);
        reply = NULL;
    }
    if (!reply) {
        if (not_ce) {
            return TD_RESULT_OK; /* an answer that is not an event is no reply (as Knative) */
        }
        snprintf(reason, reasonlen, "HTTP %ld with a malformed reply event: %s", status, err);
        return TD_RESULT_FINAL;
    }
    a->reply = reply;
    snprintf(reason, reasonlen, "HTTP %ld with a reply event", status);
    return TD_RESULT_OK;
}

static void with_token(struct td_sink *k, struct http_attempt *ha);

static void on_done(struct td_http_request *req, CURLcode code, long status, int64_t retry_after_ms,
                    const unsigned char *body, size_t len, void *arg)
{
    struct http_attempt *ha = arg;
    struct td_attempt *a = ha->a;
    if (code != CURLE_OK) {
        char reason[160];
        snprintf(reason, sizeof(reason), "%s", curl_easy_strerror(code));
        free(ha);
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
        return;
    }
    if (status == 401 && ((struct http_sink *)ha->k->impl)->oauth && !ha->refused) {
        /* The token may have been revoked or rotated before its expiry: one new token and one
         * more request, within this attempt; a second 401 is the function's answer. */
        struct td_sink *k = ha->k;
        struct http_sink *hs = k->impl;
        ha->refused = true;
        td_log_info(NULL, NULL, NULL,
                    "sink '%s': HTTP 401 with the OAuth2 token; retrying once "
                    "with a new one",
                    k->name);
        td_creds_refused(hs->oauth, ha->tok_gen);
        with_token(k, ha);
        return;
    }
    enum td_result r = td_classify_http((int)status, a->retry_on, a->nretry_on);
    char reason[160];
    snprintf(reason, sizeof(reason), "HTTP %ld", status);
    if (r == TD_RESULT_OK && status >= 200 && status < 300 && a->want_reply && ha->want_headers) {
        r = take_reply(ha, status, body, len, reason, sizeof(reason));
    }
    free(ha);
    td_attempt_done(a, r, (int)status, retry_after_ms, reason, body, len);
}

static int send_lean(struct td_sink *k, struct http_attempt *ha, const char *google_token);

/* Builds and starts the request. 0, or -1 with a->reason set (ha freed). */
static int send_request(struct td_sink *k, struct http_attempt *ha, const char *google_token)
{
    struct http_sink *hs = k->impl;
    if (hs->lean) {
        return send_lean(k, ha, google_token);
    }
    const struct td_http_target *t = &hs->t;
    const struct td_conf_auth *auth = t->auth;
    const struct td_event *ev = ha->ev;
    struct td_attempt *a = ha->a;
    struct curl_slist *headers = NULL;
    CURL *easy = td_http_client_easy(hs->client);
    if (!easy) {
        goto fail;
    }
    headers = curl_slist_append(NULL, "Expect:");
    /* Binary mode sends datacontenttype as Content-Type; when that says "a structured
     * CloudEvent" the receiver would read the data as the event (its attributes, not ours):
     * such an event can only travel in structured mode. */
    const char *dct = ev ? td_event_get(ev, "datacontenttype") : NULL;
    bool structured = t->mode == TD_MODE_STRUCTURED ||
                      (dct && strncasecmp(dct, "application/cloudevents", 23) == 0);
    if (ha->batch) {
        /* borrowed: the batch keeps its body until the attempt reports */
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)ha->batch_len);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, ha->batch);
        headers = add_header(headers, "Content-Type", TD_CE_BATCH_CONTENT_TYPE);
    } else if (structured) {
        size_t len = 0;
        char *json = td_ce_to_json(ev, &len);
        if (!json) {
            goto fail;
        }
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        /* curl keeps a copy: ours is freed here, so no exit below can leak it */
        CURLcode copied = curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, json);
        free(json);
        if (copied != CURLE_OK) {
            goto fail;
        }
        headers = add_header(headers, "Content-Type", "application/cloudevents+json");
    } else {
        struct ce_lines cl = {.list = headers};
        if (!headers || td_ce_http_encode_binary_lines(ev, add_ce_line, &cl) < 0) {
            goto fail; /* appending keeps the head: headers frees what was added */
        }
        if (!cl.has_type && !curl_slist_append(headers, "Content-Type:")) {
            goto fail; /* no curl default: an empty Content-Type removes it */
        }
        size_t len = ev->data ? ev->data_len : 0;
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, ev->data ? (const char *)ev->data : "");
    }
    for (size_t i = 0; t->headers && i < t->headers->n; i++) {
        headers = add_header(headers, t->headers->items[i].key, t->headers->items[i].value);
    }
    if (a->traceparent[0]) {
        /* The attempt's span (tracing): the function's spans become its children. */
        headers = add_header(headers, "traceparent", a->traceparent);
        if (a->tracestate) {
            headers = add_header(headers, "tracestate", a->tracestate);
        }
    }
    if (t->prefer_reply) {
        headers = add_header(headers, "Prefer", "reply");
    }
    if (t->callback_url) {
        headers = add_header(headers, "X-Callback-Url", t->callback_url);
    }
    const char *bearer;
    if (pick_bearer(k, hs, google_token, a, &bearer) < 0) {
        td_secret_slist_free(headers);
        td_http_client_release(hs->client, easy);
        free(ha);
        return -1;
    }
    if (bearer && headers) {
        size_t n = strlen(bearer) + 32;
        char *line = malloc(n);
        if (!line) {
            goto fail;
        }
        snprintf(line, n, "Authorization: Bearer %s", bearer);
        struct curl_slist *l = curl_slist_append(headers, line);
        td_secret_free(line);
        if (!l) {
            goto fail;
        }
        headers = l;
    }
    if (auth && auth->azure_function_key && !hs->url_code) {
        headers = add_header(headers, "x-functions-key", auth->azure_function_key);
    }
    if (!headers) {
        goto fail;
    }
    if (auth && auth->basic_user) {
        curl_easy_setopt(easy, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(easy, CURLOPT_USERNAME, auth->basic_user);
        curl_easy_setopt(easy, CURLOPT_PASSWORD, auth->basic_password ? auth->basic_password : "");
    }
    if (a->want_reply) {
        ha->want_headers = true;
        ha->hdr.len = 0;
        curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, td_http_collect_header);
        curl_easy_setopt(easy, CURLOPT_HEADERDATA, &ha->hdr);
    }
    curl_easy_setopt(easy, CURLOPT_URL, hs->url_code ? hs->url_code : t->url);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    int64_t timeout = a->timeout_ms > 0 ? a->timeout_ms : t->timeout_ms;
    if (timeout <= 0) {
        timeout = 10000;
    }
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < 5000 ? timeout : 5000));
    if (t->ca_file) {
        curl_easy_setopt(easy, CURLOPT_CAINFO, t->ca_file);
    }
    if (t->client_cert) {
        /* libcurl (OpenSSL) reads the certificate and key files at every new connection's
         * handshake, so a certificate rotated on disk is used without a restart, but it also
         * resumes TLS sessions it cached under the same file names: a resumed session keeps
         * the identity of the certificate it was made with, and the server never sees the new
         * one. Without the session cache every new connection makes a full handshake with
         * what the files hold now (keep-alive connections are still reused). */
        curl_easy_setopt(easy, CURLOPT_SSLCERT, t->client_cert);
        curl_easy_setopt(easy, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    }
    if (t->client_key) {
        curl_easy_setopt(easy, CURLOPT_SSLKEY, t->client_key);
    }
    struct td_http_request *req = td_http_client_send(hs->client, easy, headers, on_done, ha);
    if (!req) {
        free(ha);
        snprintf(a->reason, sizeof(a->reason), "could not start the request");
        return -1;
    }
    a->sink_state = req;
    return 0;
fail:
    td_secret_slist_free(headers);
    td_http_client_release(hs->client, easy);
    free(ha);
    snprintf(a->reason, sizeof(a->reason), "out of memory");
    return -1;
}

/* td_ce_http_encode_binary_lines' callback on the lean path. */
static int add_lean_line(void *arg, const char *line, size_t len, bool content_type)
{
    (void)content_type;
    return td_lean_request_line(arg, line, len);
}

/* send_request on the lean client: the same headers in the same order, built straight into
 * the request's bytes (no header list, no copy of a binary-mode body). 0, or -1 with
 * a->reason set (ha freed). */
static int send_lean(struct td_sink *k, struct http_attempt *ha, const char *google_token)
{
    struct http_sink *hs = k->impl;
    const struct td_http_target *t = &hs->t;
    const struct td_conf_auth *auth = t->auth;
    const struct td_event *ev = ha->ev;
    struct td_attempt *a = ha->a;
    struct td_lean_request *r = td_lean_request_new(hs->lean);
    if (!r) {
        goto fail;
    }
    const char *dct = ev ? td_event_get(ev, "datacontenttype") : NULL;
    bool structured = t->mode == TD_MODE_STRUCTURED ||
                      (dct && strncasecmp(dct, "application/cloudevents", 23) == 0);
    if (ha->batch) {
        td_lean_request_body(r, ha->batch, ha->batch_len, false); /* the batch keeps it */
        if (td_lean_request_header(r, "Content-Type", TD_CE_BATCH_CONTENT_TYPE) < 0) {
            goto fail;
        }
    } else if (structured) {
        size_t len = 0;
        char *json = td_ce_to_json(ev, &len);
        if (!json) {
            goto fail;
        }
        td_lean_request_body(r, json, len, true);
        if (td_lean_request_header(r, "Content-Type", "application/cloudevents+json") < 0) {
            goto fail;
        }
    } else {
        if (td_ce_http_encode_binary_lines(ev, add_lean_line, r) < 0) {
            goto fail;
        }
        td_lean_request_body(r, ev->data ? ev->data : (const unsigned char *)"",
                             ev->data ? ev->data_len : 0, false);
    }
    for (size_t i = 0; t->headers && i < t->headers->n; i++) {
        if (td_lean_request_header(r, t->headers->items[i].key, t->headers->items[i].value) < 0) {
            goto fail;
        }
    }
    if (a->traceparent[0]) {
        /* The attempt's span (tracing): the function's spans become its children. */
        if (td_lean_request_header(r, "traceparent", a->traceparent) < 0 ||
            (a->tracestate && td_lean_request_header(r, "tracestate", a->tracestate) < 0)) {
            goto fail;
        }
    }
    if ((t->prefer_reply && td_lean_request_header(r, "Prefer", "reply") < 0) ||
        (t->callback_url && td_lean_request_header(r, "X-Callback-Url", t->callback_url) < 0)) {
        goto fail;
    }
    const char *bearer;
    if (pick_bearer(k, hs, google_token, a, &bearer) < 0) {
        td_lean_request_free(r);
        free(ha);
        return -1;
    }
    if (bearer) {
        size_t n = strlen(bearer) + 8;
        char *v = malloc(n);
        if (!v) {
            goto fail;
        }
        snprintf(v, n, "Bearer %s", bearer);
        int rc = td_lean_request_header(r, "Authorization", v);
        td_secret_free(v);
        if (rc < 0) {
            goto fail;
        }
    }
    if (auth && auth->azure_function_key && !hs->url_code &&
        td_lean_request_header(r, "x-functions-key", auth->azure_function_key) < 0) {
        goto fail;
    }
    td_lean_header_fn hfn = NULL;
    if (a->want_reply) {
        ha->want_headers = true;
        ha->hdr.len = 0;
        hfn = td_http_collect_header;
    }
    int64_t timeout = a->timeout_ms > 0 ? a->timeout_ms : t->timeout_ms;
    if (timeout <= 0) {
        timeout = 10000;
    }
    struct td_lean_client *lc = td_http_client_lean(hs->client);
    if (td_lean_request_send(lc, r, timeout, hfn, &ha->hdr, on_done, ha) < 0) {
        free(ha);
        snprintf(a->reason, sizeof(a->reason), "could not start the request");
        return -1;
    }
    a->sink_state = r;
    return 0;
fail:
    td_lean_request_free(r);
    free(ha);
    snprintf(a->reason, sizeof(a->reason), "out of memory");
    return -1;
}

/* The token fetch this attempt waited for ended (a loop callback). */
static void on_token(struct td_creds_waiter *w, const char *err)
{
    struct http_attempt *ha = (struct http_attempt *)w;
    struct td_sink *k = ha->k;
    struct http_sink *hs = k->impl;
    struct td_attempt *a = ha->a;
    const char *token = err ? NULL : td_creds_get(hs->tok, 0);
    if (!token) {
        char reason[200];
        snprintf(reason, sizeof(reason), "sink '%s': %s", k->name, err ? err : "the token expired");
        free(ha);
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
        return;
    }
    ha->tok_gen = td_creds_fetches(hs->tok);
    if (send_request(k, ha, token) < 0) {
        char reason[160];
        snprintf(reason, sizeof(reason), "%s", a->reason);
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
    }
}

/* Sends ha with the sink's current token, or queues it until the fetch running ends. Reports
 * the attempt itself on failure (a loop callback: on_done, after a 401). */
static void with_token(struct td_sink *k, struct http_attempt *ha)
{
    struct http_sink *hs = k->impl;
    struct td_attempt *a = ha->a;
    if (td_creds_get(hs->tok, 0)) {
        on_token(&ha->w, NULL);
        return;
    }
    char why[160], reason[200];
    ha->w.fn = on_token;
    if (td_creds_wait(hs->tok, &hs->waiting, &ha->w, why, sizeof(why)) < 0) {
        snprintf(reason, sizeof(reason), "sink '%s': %s", k->name, why);
        free(ha);
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
    }
}

/* deliver and deliver_batch: one event (ev), or a batch (body, ev NULL). */
static int deliver_any(struct td_sink *k, const struct td_event *ev, const char *body, size_t len,
                       struct td_attempt *a)
{
    struct http_sink *hs = k->impl;
    size_t size = a->want_reply ? sizeof(struct http_attempt)
                                : offsetof(struct http_attempt, hdr); /* no header buffer */
    struct http_attempt *ha = malloc(size);
    if (!ha) {
        snprintf(a->reason, sizeof(a->reason), "out of memory");
        return -1;
    }
    memset(ha, 0, size);
    ha->k = k;
    ha->a = a;
    ha->ev = ev;
    ha->batch = body;
    ha->batch_len = len;
    const char *token = NULL;
    if (hs->tok) {
        token = td_creds_get(hs->tok, 0);
        ha->tok_gen = td_creds_fetches(hs->tok);
        if (!token) {
            ha->w.fn = on_token;
            char why[160];
            if (td_creds_wait(hs->tok, &hs->waiting, &ha->w, why, sizeof(why)) < 0) {
                snprintf(a->reason, sizeof(a->reason), "sink '%s': %s", k->name, why);
                free(ha);
                return -1;
            }
            return 0;
        }
    }
    return send_request(k, ha, token);
}

static int deliver(struct td_sink *k, const struct td_event *ev, struct td_attempt *a)
{
    return deliver_any(k, ev, NULL, 0, a);
}

static int deliver_batch(struct td_sink *k, const char *body, size_t len, struct td_attempt *a)
{
    return deliver_any(k, NULL, body, len, a);
}

static void destroy(struct td_sink *k)
{
    struct http_sink *hs = k->impl;
    if (!hs) {
        return;
    }
    struct td_creds_waiter *w;
    while ((w = td_creds_waitlist_pop(hs->tok, &hs->waiting))) {
        free(w); /* first in struct http_attempt */
    }
    if (hs->gcp) {
        td_gcp_token_put(hs->gcp);
    }
    td_creds_free(hs->oauth);
    td_lean_target_free(hs->lean);
    free(hs->t.url);
    td_secret_free(hs->url_code); /* holds the Azure key */
    td_secret_free(hs->token);
    free(hs);
    k->impl = NULL;
}

static const struct td_sink_ops http_ops = {
    .name = "http",
    .deliver = deliver,
    .deliver_batch = deliver_batch,
    .destroy = destroy,
};

/* Why the lean client cannot serve this sink (it speaks plain HTTP/1.1 to an address, with
 * headers only), or NULL when it can. */
static const char *lean_misfit(const struct td_http_target *t)
{
    const struct td_conf_auth *auth = t->auth;
    if (auth && auth->basic_user) {
        return "basic auth is libcurl's";
    }
    if (t->ca_file || t->client_cert || t->client_key) {
        return "TLS files are set";
    }
    /* libcurl reads these (the upper-case HTTP_PROXY not, by design: CGI) */
    static const char *const proxies[] = {"http_proxy", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++) {
        const char *v = getenv(proxies[i]);
        if (v && *v) {
            return "a proxy is set in the environment";
        }
    }
    return NULL;
}

/* Why libcurl must serve a sink with this client: and target, or NULL when the lean client may
 * (if it takes the URL). The environment variable TD_HTTP_CLIENT=curl turns auto into curl for
 * every sink (a switch for operators, and the test matrix's libcurl run). choose_client and
 * `check` (td_sink_needs_curl) decide with it alike. */
static const char *curl_needed(enum td_http_client_kind kind, const struct td_http_target *t)
{
    const char *env = getenv("TD_HTTP_CLIENT");
    if (kind == TD_CLIENT_CURL) {
        return "client: curl";
    }
    if (kind == TD_CLIENT_AUTO && env && strcmp(env, "curl") == 0) {
        return "TD_HTTP_CLIENT=curl";
    }
    return lean_misfit(t);
}

/* Picks the client: the lean one where it fits and the sink did not ask for libcurl. 0, or -1
 * with a message (client: lean where it cannot serve). */
static int choose_client(struct td_sink *k, struct http_sink *hs, char *err, size_t errlen)
{
    char why[160] = "";
    const char *need = curl_needed(hs->t.client, &hs->t);
    struct td_lean_client *lc = need ? NULL : td_http_client_lean(hs->client);
    if (need) {
        snprintf(why, sizeof(why), "%s", need);
    } else if (!lc) {
        snprintf(why, sizeof(why), "out of memory");
    } else {
        hs->lean =
            td_lean_target_new(lc, hs->url_code ? hs->url_code : hs->t.url, why, sizeof(why));
    }
    if (!hs->lean && hs->t.client == TD_CLIENT_LEAN) {
        snprintf(err, errlen, "sink '%s': client: lean cannot serve it: %s", k->name, why);
        return -1;
    }
    td_log_info(NULL, NULL, NULL, "sink '%s': %s%s%s", k->name,
                hs->lean ? "the lean HTTP client" : "libcurl", hs->lean ? "" : ": ", why);
    return 0;
}

/* s percent-encoded as curl_easy_escape does (RFC 3986 unreserved characters kept, every other
 * byte %XX), without libcurl: a lean sink must not load it for its key (curl_api.h). */
static char *query_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    if (!out) {
        return NULL;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

int td_http_sink_setup(struct td_sink *k, struct td_http_client *http, struct td_http_target *t,
                       char *err, size_t errlen)
{
    struct http_sink *hs = calloc(1, sizeof(*hs));
    if (!hs || !t->url) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    hs->client = http;
    hs->t = *t;
    t->url = NULL;
    const struct td_conf_auth *auth = hs->t.auth;
    if (auth && auth->azure_function_key && auth->azure_key_in &&
        strcmp(auth->azure_key_in, "query") == 0) {
        /* Azure Functions also take the key as ?code= (function URLs copied from the portal). */
        char *code = query_escape(auth->azure_function_key);
        size_t n = strlen(hs->t.url) + (code ? strlen(code) : 0) + 8;
        hs->url_code = code ? malloc(n) : NULL;
        if (!hs->url_code) {
            if (code) {
                td_secret_wipe(code, strlen(code));
            }
            free(code);
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        snprintf(hs->url_code, n, "%s%scode=%s", hs->t.url, strchr(hs->t.url, '?') ? "&" : "?",
                 code);
        td_secret_wipe(code, strlen(code)); /* the escaped key */
        free(code);
    }
    if (auth && auth->google_audience) {
        hs->gcp = td_gcp_token_get(k->loop, http, auth->google_metadata_url, auth->google_audience);
        if (!hs->gcp) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        hs->tok = hs->gcp;
    }
    if (auth && auth->oauth2_token_url) {
        hs->oauth = td_oauth2_token_new(k->loop, http, auth);
        if (!hs->oauth) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        hs->tok = hs->oauth;
    }
    if (choose_client(k, hs, err, errlen) < 0) {
        goto fail;
    }
    k->ops = &http_ops;
    k->impl = hs;
    td_log_redact_url(hs->t.url, k->dest, sizeof(k->dest));
    return 0;
fail:
    if (hs) {
        if (hs->gcp) {
            td_gcp_token_put(hs->gcp);
        }
        td_creds_free(hs->oauth);
        td_lean_target_free(hs->lean);
        free(hs->t.url);
        td_secret_free(hs->url_code);
        free(hs);
    }
    free(t->url);
    t->url = NULL;
    return -1;
}

static int http_init(struct td_sink *k, char *err, size_t errlen)
{
    struct td_http_client *http = k->http;
    const struct td_conf_http_sink *conf = k->conf->settings;
    /* A wrong path or a file of the wrong kind would fail every handshake, each event as a
     * retry and then a dead letter: refuse to start instead (check warns about it). */
    const char *files[] = {conf->ca_file, conf->client_cert, conf->client_key};
    static const char *const keys[] = {"ca_file", "client_cert", "client_key"};
    static const enum td_tls_file_kind kinds[] = {TD_TLS_CA, TD_TLS_CERT, TD_TLS_KEY};
    for (int i = 0; i < 3; i++) {
        char why[400];
        if (files[i] && td_tls_file_check(files[i], kinds[i], why, sizeof(why)) != 0) {
            snprintf(err, errlen, "sink '%s': %s %s", k->name, keys[i], why);
            return -1;
        }
    }
    struct td_http_target t = {
        .mode = conf->mode,
        .timeout_ms = k->conf->timeout_ms,
        .headers = &conf->headers,
        .auth = &conf->auth,
        .ca_file = conf->ca_file,
        .client_cert = conf->client_cert,
        .client_key = conf->client_key,
        .prefer_reply = true, /* Knative's dispatcher says so on every request */
        .client = conf->client,
    };
    if (conf->url) {
        t.url = strdup(conf->url);
    } else if (conf->service_name) {
        /* Knative Services and plain Services answer on their cluster DNS name. Without a
         * namespace the pod's own is meant (as kubectl does); the cluster domain can differ
         * from cluster.local (TD_CLUSTER_DOMAIN). */
        char buf[512], own_ns[256] = "";
        const char *ns = conf->service_namespace;
        if (!ns) {
            ns = getenv("POD_NAMESPACE");
        }
        if (!ns || !*ns) {
            FILE *f = fopen("/var/run/secrets/kubernetes.io/serviceaccount/namespace", "r");
            if (f) {
                if (fgets(own_ns, sizeof(own_ns), f)) {
                    own_ns[strcspn(own_ns, "\r\n")] = '\0';
                }
                fclose(f);
            }
            ns = own_ns[0] ? own_ns : "default";
        }
        const char *domain = getenv("TD_CLUSTER_DOMAIN");
        if (!domain || !*domain) {
            domain = "cluster.local";
        }
        if (conf->service_port != 80) {
            snprintf(buf, sizeof(buf), "http://%s.%s.svc.%s:%d/", conf->service_name, ns, domain,
                     conf->service_port);
        } else {
            snprintf(buf, sizeof(buf), "http://%s.%s.svc.%s/", conf->service_name, ns, domain);
        }
        t.url = strdup(buf);
    } else {
        snprintf(err, errlen, "sink '%s': no url", k->name);
        return -1;
    }
    return td_http_sink_setup(k, http, &t, err, errlen);
}

/* ---- settings: http: {url | service, mode, timeout, headers, TLS files, auth} ---- */
#define OFF(f) offsetof(struct td_conf_http_sink, f)

static const char *const mode_names[] = {"binary", "structured", NULL};
static const char *const client_names[] = {"auto", "curl", "lean", NULL};

static const struct td_conf_key service_keys[] = {
    REQ_STR("name", OFF(service_name)),
    /* no default here: the HTTP sink reads POD_NAMESPACE */
    STR("namespace", OFF(service_namespace)), INT_D("port", OFF(service_port), 1, 65535, "80")};
static const struct td_conf_table service_table = {TABLE("service", service_keys)};

static const struct td_conf_key http_sink_keys[] = {
    ONE_STR("url", OFF(url)),
    {.name = "service", .type = TD_K_NESTED, .sub = &service_table, .group = 1},
    ENUM_D("mode", OFF(mode), mode_names, "binary"),
    ENUM_D("client", OFF(client), client_names, "auto"),
    TD_SINK_TIMEOUT,
    {.name = "headers", .type = TD_K_STRMAP, .off = OFF(headers), .hdrs = true},
    REF_STR("ca_file", OFF(ca_file), OFF(ca_file_pos)),
    REF_STR("client_cert", OFF(client_cert), OFF(client_cert_pos)),
    REF_STR("client_key", OFF(client_key), OFF(client_key_pos)),
    NESTED("auth", OFF(auth), &td_sink_auth_table),
};
static int check_http_sink(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    const struct td_conf_http_sink *c = base;
    if (td_sink_check_http_url(ld, map, "url", c->url) < 0) {
        return -1;
    }
    if (c->client != TD_CLIENT_LEAN) {
        return 0;
    }
    /* client: lean where only libcurl can serve: an error at the key, not a failing sink */
    char why[160] = "";
    if (c->auth.basic_user) {
        snprintf(why, sizeof(why), "basic auth is libcurl's");
    } else if (c->ca_file || c->client_cert || c->client_key) {
        snprintf(why, sizeof(why), "TLS files are set");
    } else if (!c->url || td_lean_url_check(c->url, why, sizeof(why)) == 0) {
        return 0; /* service: builds a plain http:// URL with a host name, which the lean client
                   * resolves */
    }
    ERR_AT(ld, td_conf_map_get(map, "client"), "client: lean cannot serve this sink: %s", why);
    return -1;
}

static const struct td_conf_table http_sink_table = {
    TABLE("http sink", http_sink_keys), .group_required = true, .check = check_http_sink};
#undef OFF

const char *td_sink_needs_curl(enum td_http_client_kind client, const struct td_conf_auth *auth,
                               bool tls_files, const char *url, char *buf, size_t buflen)
{
    struct td_http_target t = {.client = client, .auth = auth};
    const char *need = curl_needed(client, &t);
    if (need) {
        return need;
    }
    if (tls_files) {
        return "TLS files are set";
    }
    if (auth && auth->google_audience) {
        return "google_id_token's token is fetched with libcurl";
    }
    if (auth && auth->oauth2_token_url) {
        return "oauth2's token is fetched with libcurl";
    }
    if (url && td_lean_url_check(url, buf, buflen) < 0) {
        return buf;
    }
    return NULL;
}

void td_sink_curl_check(const struct td_conf_sink *k, const char *why, struct td_errors *errs)
{
    char err[600];
    if (why && !td_curl_available(err, sizeof(err))) {
        td_errors_add(errs, &k->pos, "sink '%s' needs libcurl (%s), which cannot be loaded: %s",
                      k->name, why, err);
    }
}

/* `check`: the auth: block, libcurl where the sink needs it, and the TLS files (tls_file.h:
 * unreadable here is a warning, the daemon may run elsewhere; read but of the wrong kind is an
 * error). */
static void http_check(const struct td_conf_sink *k, struct td_errors *errs)
{
    const struct td_conf_http_sink *c = k->settings;
    char who[300];
    snprintf(who, sizeof(who), "sink '%s'", k->name);
    td_sink_auth_check(k, &c->auth, errs);
    char buf[160];
    td_sink_curl_check(k,
                       td_sink_needs_curl(c->client, &c->auth,
                                          c->ca_file || c->client_cert || c->client_key, c->url,
                                          buf, sizeof(buf)),
                       errs);
    const char *files[] = {c->ca_file, c->client_cert, c->client_key};
    const char *keys[] = {"ca_file", "client_cert", "client_key"};
    static const enum td_tls_file_kind kinds[] = {TD_TLS_CA, TD_TLS_CERT, TD_TLS_KEY};
    const struct td_pos *at[] = {&c->ca_file_pos, &c->client_cert_pos, &c->client_key_pos};
    for (int i = 0; i < 3; i++) {
        td_tls_file_report(who, keys[i], files[i], kinds[i], at[i]->line > 0 ? at[i] : &k->pos,
                           errs);
    }
}

const struct td_sink_desc td_sink_http = {
    TD_SINK_KIND("http", TD_SINK_HTTP, &http_sink_table, struct td_conf_http_sink),
    .uses_http = true, .init = http_init, .check = http_check};
