/* lambda.c - the AWS Lambda sink: the Invoke API, signed with SigV4 by libcurl.
 *
 * POST <endpoint>/2015-03-31/functions/NAME/invocations[?Qualifier=Q] with the CloudEvent as
 * structured JSON (payload: event) or only its data (payload: data), X-Amz-Invocation-Type
 * RequestResponse (the function's result is the outcome) or Event (Lambda queues it: 202).
 * libcurl signs (CURLOPT_AWS_SIGV4 "aws:amz:REGION:lambda"); X-Amz-Security-Token is added for
 * session credentials. Credentials come from aws.c: static ones once at start, web identity
 * ones through creds.c, refreshed on the loop before they expire; an attempt that finds none
 * valid waits for the exchange running, never the loop.
 *
 * libcurl 7.88 (Debian 12) signs some requests wrongly. Checked against
 * botocore's signer (tests/integration/test_lambda.py): plain paths and one Qualifier query
 * parameter (its '$' percent-encoded) verify; a path holding ':' (a function ARN, or
 * "name:qualifier") does not, so only plain function names are accepted, the qualifier goes
 * in qualifier:, and "Expect:" is never set (7.88 signs the suppressed header).
 *
 * Classification, as Lambda's own event source mappings do: 2xx is done, except a 200 with
 * X-Amz-Function-Error (the function threw), which is a retryable failure whose body (the
 * error) becomes knativeerrordata if it is dead-lettered; 429 and 5xx retry; other 4xx
 * (bad signature, unknown function, payload refused) are final.
 *
 * Ownership: per attempt a struct lambda_attempt (one allocation, freed when it reports or by
 * the HTTP client at teardown). Secrets never reach a log line or k->dest.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "ce_http.h"
#include "ce_json.h"
#include "cloudevent.h"
#include "conf_table.h"
#include "creds.h"
#include "http_client.h"
#include "http_conf.h"
#include "http_sink.h"
#include "lambda_sink.h"
#include "log.h"
#include "secret.h"
#include "sink.h"

struct lambda_attempt;

struct lambda_sink {
    struct td_http_client *client;
    char *url;
    char sigv4[128];
    bool event;     /* X-Amz-Invocation-Type: Event */
    bool data_only; /* payload: data */
    int64_t timeout_ms;
    struct td_aws_resolved creds;     /* static credentials, or the web identity settings */
    struct td_creds *wi;              /* web identity, or NULL */
    struct td_creds_waitlist waiting; /* attempts waiting for web identity credentials */
};

struct lambda_attempt {
    struct td_creds_waiter w; /* first: the waiter callback casts back */
    struct td_sink *k;
    struct td_attempt *a;
    const struct td_event *ev; /* NULL for a batch */
    const char *batch;         /* deliver_batch: the events as a JSON array (borrowed), or NULL */
    size_t batch_len;
    struct td_http_hdrbuf hdr;
};

static void on_done(struct td_http_request *req, CURLcode code, long status, int64_t retry_after_ms,
                    const unsigned char *body, size_t len, void *arg)
{
    struct lambda_attempt *la = arg;
    struct td_attempt *a = la->a;
    char reason[160];
    if (code != CURLE_OK) {
        snprintf(reason, sizeof(reason), "%s", curl_easy_strerror(code));
        free(la);
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
        return;
    }
    struct td_http_headers h = {0};
    if (td_http_hdrbuf_parse(&la->hdr, &h) < 0) {
        free(la);
        td_attempt_done(a, TD_RESULT_RETRY, (int)status, -1, "out of memory", NULL, 0);
        return;
    }
    enum td_result r = td_classify_http((int)status, a->retry_on, a->nretry_on);
    const char *fn_error = td_http_headers_get(&h, "X-Amz-Function-Error");
    const char *err_type = td_http_headers_get(&h, "x-amzn-ErrorType");
    snprintf(reason, sizeof(reason), "HTTP %ld", status);
    if (r == TD_RESULT_OK && fn_error) {
        /* The invocation worked but the function failed: retry, as event source mappings do. */
        r = TD_RESULT_RETRY;
        snprintf(reason, sizeof(reason), "HTTP %ld, function error (%.40s)", status, fn_error);
    } else if (r != TD_RESULT_OK && err_type) {
        snprintf(reason, sizeof(reason), "HTTP %ld (%.60s)", status, err_type);
    } else if (r == TD_RESULT_OK && a->want_reply && status == 200 && len > 0 &&
               memmem(body, len, "\"specversion\"", 13)) {
        /* A synchronous function may return a CloudEvent (structured JSON): the reply. */
        char err[128] = "";
        struct td_event *reply = td_ce_from_json((const char *)body, len, err, sizeof(err));
        if (reply && td_event_validate(reply, err, sizeof(err)) < 0) {
            td_event_unref(reply);
            reply = NULL;
        }
        if (!reply) {
            r = TD_RESULT_FINAL;
            snprintf(reason, sizeof(reason), "HTTP %ld with a malformed reply event: %s", status,
                     err);
        } else {
            a->reply = reply;
        }
    }
    td_http_headers_free(&h);
    free(la);
    td_attempt_done(a, r, (int)status, retry_after_ms, reason, body, len);
}

/* Builds and starts the signed request. 0, or -1 with a->reason set (la freed). */
static int send_request(struct td_sink *k, struct lambda_attempt *la, const char *akid,
                        const char *secret, const char *token)
{
    struct lambda_sink *ls = k->impl;
    struct td_attempt *a = la->a;
    const struct td_event *ev = la->ev;
    struct curl_slist *headers = NULL;
    char *json = NULL;
    CURL *easy = td_http_client_easy(ls->client);
    if (!easy) {
        goto fail;
    }
    headers = curl_slist_append(NULL, "Content-Type: application/json");
    headers = curl_slist_append(headers, ls->event ? "X-Amz-Invocation-Type: Event"
                                                   : "X-Amz-Invocation-Type: RequestResponse");
    if (token && headers) {
        size_t n = strlen(token) + 32;
        char *line = malloc(n);
        if (!line) {
            goto fail;
        }
        snprintf(line, n, "X-Amz-Security-Token: %s", token);
        struct curl_slist *l = curl_slist_append(headers, line);
        td_secret_free_n(line, n);
        if (!l) {
            goto fail;
        }
        headers = l;
    }
    if (!headers) {
        goto fail;
    }
    /* libcurl hashes the payload from CURLOPT_POSTFIELDS (not a read callback). */
    if (la->batch) {
        /* a batch is always the events themselves (payload: data would lose their ids, which
         * batchItemFailures names); borrowed: the batch keeps it until the attempt reports */
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)la->batch_len);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, la->batch);
    } else if (ls->data_only) {
        if (ev->data && ev->data_len > 0) {
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)ev->data_len);
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, (const char *)ev->data);
        } else {
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)2);
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "{}");
        }
    } else {
        size_t len = 0;
        json = td_ce_to_json(ev, &len);
        if (!json) {
            goto fail;
        }
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, json);
        free(json);
        json = NULL;
    }
    curl_easy_setopt(easy, CURLOPT_URL, ls->url);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_AWS_SIGV4, ls->sigv4);
    curl_easy_setopt(easy, CURLOPT_USERNAME, akid);
    curl_easy_setopt(easy, CURLOPT_PASSWORD, secret);
    la->hdr.len = 0;
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, td_http_collect_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &la->hdr);
    int64_t timeout = a->timeout_ms > 0 ? a->timeout_ms : ls->timeout_ms;
    if (timeout <= 0) {
        timeout = 10000;
    }
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < 5000 ? timeout : 5000));
    struct td_http_request *req = td_http_client_send(ls->client, easy, headers, on_done, la);
    if (!req) {
        free(la);
        snprintf(a->reason, sizeof(a->reason), "could not start the request");
        return -1;
    }
    a->sink_state = req;
    return 0;
fail:
    free(json);
    td_secret_slist_free(headers);
    td_http_client_release(ls->client, easy);
    free(la);
    snprintf(a->reason, sizeof(a->reason), "out of memory");
    return -1;
}

static void on_creds(struct td_creds_waiter *w, const char *err)
{
    struct lambda_attempt *la = (struct lambda_attempt *)w;
    struct td_sink *k = la->k;
    struct lambda_sink *ls = k->impl;
    struct td_attempt *a = la->a;
    const char *akid = err ? NULL : td_creds_get(ls->wi, 0);
    if (!akid) {
        char reason[160];
        snprintf(reason, sizeof(reason), "%s", err ? err : "the AWS credentials expired");
        free(la);
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
        return;
    }
    if (send_request(k, la, akid, td_creds_get(ls->wi, 1), td_creds_get(ls->wi, 2)) < 0) {
        char reason[160];
        snprintf(reason, sizeof(reason), "%s", a->reason);
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
    }
}

/* deliver and deliver_batch: one event (ev), or a batch (body, ev NULL). */
static int deliver_any(struct td_sink *k, const struct td_event *ev, const char *body, size_t len,
                       struct td_attempt *a)
{
    struct lambda_sink *ls = k->impl;
    struct lambda_attempt *la = malloc(sizeof(*la));
    if (!la) {
        snprintf(a->reason, sizeof(a->reason), "out of memory");
        return -1;
    }
    memset(la, 0, offsetof(struct lambda_attempt, hdr));
    la->hdr.len = 0;
    la->k = k;
    la->a = a;
    la->ev = ev;
    la->batch = body;
    la->batch_len = len;
    if (!ls->wi) {
        return send_request(k, la, ls->creds.access_key_id, ls->creds.secret_access_key,
                            ls->creds.session_token);
    }
    const char *akid = td_creds_get(ls->wi, 0);
    if (akid) {
        return send_request(k, la, akid, td_creds_get(ls->wi, 1), td_creds_get(ls->wi, 2));
    }
    la->w.fn = on_creds;
    if (td_creds_wait(ls->wi, &ls->waiting, &la->w, a->reason, sizeof(a->reason)) < 0) {
        free(la);
        return -1;
    }
    return 0;
}

static int deliver(struct td_sink *k, const struct td_event *ev, struct td_attempt *a)
{
    return deliver_any(k, ev, NULL, 0, a);
}

/* The function's result is read by dispatch for batchItemFailures (batch.c). */
static int deliver_batch(struct td_sink *k, const char *body, size_t len, struct td_attempt *a)
{
    return deliver_any(k, NULL, body, len, a);
}

static void destroy(struct td_sink *k)
{
    struct lambda_sink *ls = k->impl;
    if (!ls) {
        return;
    }
    struct td_creds_waiter *w;
    while ((w = td_creds_waitlist_pop(ls->wi, &ls->waiting))) {
        free(w); /* first in struct lambda_attempt */
    }
    td_creds_free(ls->wi);
    td_aws_resolved_clear(&ls->creds);
    free(ls->url);
    free(ls);
    k->impl = NULL;
}

static const struct td_sink_ops lambda_ops = {
    .name = "lambda",
    .deliver = deliver,
    .deliver_batch = deliver_batch,
    .destroy = destroy,
};

static bool plain_name(const char *s, const char *extra)
{
    if (!s || !*s || strlen(s) > 140) {
        return false;
    }
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && !strchr(extra, *s)) {
            return false;
        }
    }
    return true;
}

static int lambda_init(struct td_sink *k, char *err, size_t errlen)
{
    struct td_http_client *http = k->http;
    const struct td_conf_lambda_sink *conf = k->conf->settings;
    struct lambda_sink *ls = NULL;
    const char *region = td_aws_region(conf);
    if (!plain_name(conf->function, "")) {
        snprintf(err, errlen,
                 "sink '%s': lambda function must be a plain function name (letters, digits, "
                 "'-', '_'): an ARN or NAME:QUALIFIER puts ':' in the path, which libcurl 7.88 "
                 "signs wrongly; write the qualifier in qualifier:",
                 k->name);
        return -1;
    }
    if (conf->qualifier && !plain_name(conf->qualifier, "$")) {
        snprintf(err, errlen, "sink '%s': lambda qualifier must be a version or alias name",
                 k->name);
        return -1;
    }
    if (!region) {
        snprintf(err, errlen, "sink '%s': lambda needs region: (or AWS_REGION)", k->name);
        return -1;
    }
    if (!plain_name(region, "")) {
        snprintf(err, errlen, "sink '%s': bad lambda region", k->name);
        return -1;
    }
    ls = calloc(1, sizeof(*ls));
    if (!ls) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (td_aws_resolve(conf, &ls->creds, err, errlen) < 0) {
        char why[400];
        snprintf(why, sizeof(why), "%s", err);
        snprintf(err, errlen, "sink '%s': %s", k->name, why);
        goto fail;
    }
    ls->client = http;
    ls->event = strcmp(conf->invocation, "Event") == 0;
    ls->data_only = strcmp(conf->payload, "data") == 0;
    ls->timeout_ms = k->conf->timeout_ms;
    snprintf(ls->sigv4, sizeof(ls->sigv4), "aws:amz:%s:lambda", region);
    char base[512];
    if (conf->endpoint) {
        size_t n = strlen(conf->endpoint);
        while (n > 0 && conf->endpoint[n - 1] == '/') {
            n--;
        }
        snprintf(base, sizeof(base), "%.*s", (int)n, conf->endpoint);
    } else {
        snprintf(base, sizeof(base), "https://lambda.%s.amazonaws.com", region);
    }
    char qual[200] = "";
    if (conf->qualifier) {
        /* '$' (as in $LATEST) percent-encoded: that form verifies with 7.88's signer */
        size_t j = 0;
        j += (size_t)snprintf(qual, sizeof(qual), "?Qualifier=");
        for (const char *p = conf->qualifier; *p && j + 4 < sizeof(qual); p++) {
            if (*p == '$') {
                memcpy(qual + j, "%24", 3);
                j += 3;
            } else {
                qual[j++] = *p;
            }
        }
        qual[j] = '\0';
    }
    size_t n = strlen(base) + strlen(conf->function) + strlen(qual) + 48;
    ls->url = malloc(n);
    if (!ls->url) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(ls->url, n, "%s/2015-03-31/functions/%s/invocations%s", base, conf->function, qual);
    if (ls->creds.source == TD_AWS_WEB_IDENTITY) {
        ls->wi = td_aws_web_identity_new(k->loop, http, &ls->creds, region);
        if (!ls->wi) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    td_log_info(NULL, NULL, NULL, "sink '%s': lambda %s in %s, credentials from %s", k->name,
                conf->function, region, td_aws_source_name(ls->creds.source));
    k->ops = &lambda_ops;
    k->impl = ls;
    td_log_redact_url(ls->url, k->dest, sizeof(k->dest));
    return 0;
fail:
    if (ls) {
        td_aws_resolved_clear(&ls->creds);
        free(ls->url);
        free(ls);
    }
    return -1;
}

/* ---- settings: lambda: {function, region, qualifier, invocation, payload, endpoint, credentials,
 * timeout} ---- */
#define OFF(f) offsetof(struct td_conf_lambda_sink, f)

static const char *const invocation_names[] = {"RequestResponse", "Event", NULL};
static const char *const payload_names[] = {"event", "data", NULL};

static const struct td_conf_key credentials_keys[] = {
    {.name = "access_key_id",
     .type = TD_K_STR,
     .off = OFF(access_key_id),
     .required = true,
     .cred = true},
    {.name = "secret_access_key",
     .type = TD_K_STR,
     .off = OFF(secret_access_key),
     .required = true,
     .cred = true},
    CRED_STR("session_token", OFF(session_token)),
};
static const struct td_conf_table credentials_table = {
    TABLE("lambda credentials", credentials_keys)};
static const struct td_conf_key lambda_sink_keys[] = {
    REQ_STR("function", OFF(function)),
    STR("region", OFF(region)),
    STR("qualifier", OFF(qualifier)),
    {.name = "invocation",
     .type = TD_K_STR,
     .off = OFF(invocation),
     .names = invocation_names,
     .dflt = "RequestResponse"},
    {.name = "payload",
     .type = TD_K_STR,
     .off = OFF(payload),
     .names = payload_names,
     .dflt = "event"},
    STR("endpoint", OFF(endpoint)),
    NESTED("credentials", 0, &credentials_table),
    TD_SINK_TIMEOUT,
};
static const struct td_conf_table lambda_sink_table = {TABLE("lambda sink", lambda_sink_keys)};
#undef OFF

/* `check`: the function's name, and the region and credentials as the sink would find them
 * at start (files and the environment only; a warning when missing here: the daemon may run
 * where they are). */
static void lambda_check(const struct td_conf_sink *k, struct td_errors *errs)
{
    const struct td_conf_lambda_sink *c = k->settings;
    const struct td_pos *pos = &k->pos;
    /* What lambda_init refuses, so that check does not pass a file run cannot start with. */
    if (c->function && !plain_name(c->function, "")) {
        td_errors_add(errs, pos,
                      "sink '%s': lambda function must be a plain name (letters, digits, '-', "
                      "'_'); write the version or alias in qualifier: (and not an ARN)",
                      k->name);
    }
    if (c->qualifier && !plain_name(c->qualifier, "$")) {
        td_errors_add(errs, pos, "sink '%s': lambda qualifier must be a version or alias name",
                      k->name);
    }
    if (c->region && !plain_name(c->region, "")) {
        td_errors_add(errs, pos, "sink '%s': bad lambda region", k->name);
    }
    if (!td_aws_region(c)) {
        fprintf(stderr, "%s:%d:%d: warning: sink '%s': no region (lambda region:, AWS_REGION)\n",
                pos->file, pos->line, pos->col, k->name);
    }
    td_sink_curl_check(k, "Lambda is invoked with libcurl (SigV4)", errs);
    struct td_aws_resolved r;
    char err[400];
    if (td_aws_resolve(c, &r, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s:%d:%d: warning: sink '%s': %s\n", pos->file, pos->line, pos->col,
                k->name, err);
        return;
    }
    td_aws_resolved_clear(&r);
}

const struct td_sink_desc td_sink_lambda = {
    TD_SINK_KIND("lambda", TD_SINK_LAMBDA, &lambda_sink_table, struct td_conf_lambda_sink),
    .uses_http = true, .init = lambda_init, .check = lambda_check};
