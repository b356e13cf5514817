/* http.c - the HTTP sink: POSTs a CloudEvent (binary or structured mode) to a URL with
 * libcurl's multi interface (broker/http_client.c), and classifies the answer. It serves
 * Knative Services, plain Kubernetes Services and any HTTP function. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cloudevent.h"
#include "http_client.h"
#include "log.h"
#include "loop.h"
#include "sink.h"

struct http_sink {
    struct td_http_client *client;
    char *url; /* resolved (service: shorthand expanded) */
    /* bearer_file: re-read when its mtime changes, checked at most once a second */
    char *token;
    struct timespec token_mtime;
    int64_t token_checked_ms;
};

struct http_attempt {
    struct td_sink *k;
    struct td_attempt *a;
};

static void refresh_token(struct td_sink *k, struct http_sink *hs)
{
    const char *path = k->conf->http.auth.bearer_file;
    int64_t now = td_now_ms();
    if (!path || (hs->token && now - hs->token_checked_ms < 1000)) {
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
    FILE *f = fopen(path, "r");
    if (!f) {
        return;
    }
    char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) {
        n--;
    }
    buf[n] = '\0';
    char *token = strdup(buf);
    if (token) {
        free(hs->token);
        hs->token = token;
        hs->token_mtime = st.st_mtim;
    }
}

/* Appends "Name: value" to list; returns the new list or NULL (list freed) on failure. */
static struct curl_slist *add_header(struct curl_slist *list, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (!line) {
        curl_slist_free_all(list);
        return NULL;
    }
    snprintf(line, n, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(list, line);
    free(line);
    if (!l) {
        curl_slist_free_all(list);
    }
    return l;
}

static void on_done(struct td_http_request *req, CURLcode code, long status, int64_t retry_after_ms,
                    const unsigned char *body, size_t len, void *arg)
{
    struct http_attempt *ha = arg;
    struct td_attempt *a = ha->a;
    free(ha);
    if (code != CURLE_OK) {
        char reason[160];
        snprintf(reason, sizeof(reason), "%s", curl_easy_strerror(code));
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
        return;
    }
    enum td_result r = td_classify_http((int)status, a->retry_on, a->nretry_on);
    char reason[64];
    snprintf(reason, sizeof(reason), "HTTP %ld", status);
    td_attempt_done(a, r, (int)status, retry_after_ms, reason, body, len);
}

static int deliver(struct td_sink *k, const struct td_event *ev, struct td_attempt *a)
{
    struct http_sink *hs = k->impl;
    const struct td_conf_http_sink *conf = &k->conf->http;
    struct curl_slist *headers = NULL;
    struct http_attempt *ha = NULL;
    CURL *easy = td_http_client_easy(hs->client);
    if (!easy) {
        snprintf(a->reason, sizeof(a->reason), "out of memory");
        return -1;
    }
    headers = curl_slist_append(NULL, "Expect:");
    if (conf->mode == TD_MODE_STRUCTURED) {
        size_t len = 0;
        char *json = td_ce_to_json(ev, &len);
        if (!json) {
            goto oom;
        }
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, json);
        free(json);
        headers = add_header(headers, "Content-Type", "application/cloudevents+json");
    } else {
        struct td_http_headers ce = {0};
        const unsigned char *body = NULL;
        size_t len = 0;
        if (td_ce_http_encode_binary(ev, &ce, &body, &len) < 0) {
            goto oom;
        }
        bool has_type = false;
        for (size_t i = 0; i < ce.n && headers; i++) {
            has_type |= strcasecmp(ce.items[i].name, "Content-Type") == 0;
            headers = add_header(headers, ce.items[i].name, ce.items[i].value);
        }
        td_http_headers_free(&ce);
        if (headers && !has_type) {
            headers = curl_slist_append(headers, "Content-Type:"); /* no curl default */
        }
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
    }
    for (size_t i = 0; i < conf->headers.n && headers; i++) {
        headers = add_header(headers, conf->headers.items[i].key, conf->headers.items[i].value);
    }
    const char *bearer = conf->auth.bearer;
    if (conf->auth.bearer_file) {
        refresh_token(k, hs);
        bearer = hs->token;
    }
    if (bearer && headers) {
        char line[8300];
        snprintf(line, sizeof(line), "Authorization: Bearer %s", bearer);
        headers = curl_slist_append(headers, line);
    }
    if (conf->auth.azure_function_key && headers) {
        headers = add_header(headers, "x-functions-key", conf->auth.azure_function_key);
    }
    if (!headers) {
        goto oom;
    }
    if (conf->auth.basic_user) {
        curl_easy_setopt(easy, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(easy, CURLOPT_USERNAME, conf->auth.basic_user);
        curl_easy_setopt(easy, CURLOPT_PASSWORD,
                         conf->auth.basic_password ? conf->auth.basic_password : "");
    }
    curl_easy_setopt(easy, CURLOPT_URL, hs->url);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    int64_t timeout = a->timeout_ms > 0 ? a->timeout_ms : conf->timeout_ms;
    if (timeout <= 0) {
        timeout = 10000;
    }
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < 5000 ? timeout : 5000));
    if (conf->ca_file) {
        curl_easy_setopt(easy, CURLOPT_CAINFO, conf->ca_file);
    }
    if (conf->client_cert) {
        curl_easy_setopt(easy, CURLOPT_SSLCERT, conf->client_cert);
    }
    if (conf->client_key) {
        curl_easy_setopt(easy, CURLOPT_SSLKEY, conf->client_key);
    }
    ha = malloc(sizeof(*ha));
    if (!ha) {
        goto oom;
    }
    ha->k = k;
    ha->a = a;
    struct td_http_request *req = td_http_client_send(hs->client, easy, headers, on_done, ha);
    if (!req) {
        free(ha);
        snprintf(a->reason, sizeof(a->reason), "could not start the request");
        return -1;
    }
    a->sink_state = req;
    return 0;
oom:
    curl_slist_free_all(headers);
    td_http_client_release(hs->client, easy);
    snprintf(a->reason, sizeof(a->reason), "out of memory");
    return -1;
}

static void destroy(struct td_sink *k)
{
    struct http_sink *hs = k->impl;
    if (!hs) {
        return;
    }
    free(hs->url);
    free(hs->token);
    free(hs);
    k->impl = NULL;
}

static const struct td_sink_ops http_ops = {
    .name = "http",
    .deliver = deliver,
    .destroy = destroy,
};

int td_sink_http_init(struct td_sink *k, struct td_http_client *http, char *err, size_t errlen)
{
    const struct td_conf_http_sink *conf = &k->conf->http;
    struct http_sink *hs = calloc(1, sizeof(*hs));
    if (!hs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    hs->client = http;
    if (conf->url) {
        hs->url = strdup(conf->url);
    } else if (conf->service_name) {
        /* Knative Services and plain Services answer on their cluster DNS name. */
        char buf[512];
        const char *ns = conf->service_namespace ? conf->service_namespace : "default";
        if (conf->service_port > 0 && conf->service_port != 80) {
            snprintf(buf, sizeof(buf), "http://%s.%s.svc.cluster.local:%d/", conf->service_name, ns,
                     conf->service_port);
        } else {
            snprintf(buf, sizeof(buf), "http://%s.%s.svc.cluster.local/", conf->service_name, ns);
        }
        hs->url = strdup(buf);
    }
    if (!hs->url) {
        snprintf(err, errlen, "sink '%s': no url", k->name);
        free(hs);
        return -1;
    }
    k->ops = &http_ops;
    k->impl = hs;
    td_log_redact_url(hs->url, k->dest, sizeof(k->dest));
    return 0;
}
