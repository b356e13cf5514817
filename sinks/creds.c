/* creds.c - credentials fetched over HTTP and refreshed before they expire (see creds.h). */
#include "creds.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "log.h"
#include "loop.h"
#include "secret.h"

#define FETCH_TIMEOUT_MS      10000
#define REFRESH_MARGIN_MAX_MS 300000 /* refresh at most 5 minutes before expiry */
#define UNKNOWN_LIFETIME_MS   300000 /* a value without an expiry is fetched again after 5 min */
#define BACKOFF_MAX_MS        30000

struct fetch_arg {
    struct td_creds *c;
};

struct td_creds {
    struct td_loop *loop;
    struct td_http_client *http;
    const struct td_creds_provider *p;
    void *ctx;
    char *vals[TD_CREDS_NVALS];
    int64_t valid_until_wall_ms; /* 0: no value */
    struct td_http_request *req; /* the fetch running, or NULL */
    struct fetch_arg *req_arg;   /* its argument (ours again if we cancel it) */
    struct td_timer timer;       /* the next refresh, or the retry after a failure */
    int failures;                /* consecutive */
    char last_err[160];
    uint64_t fetches;
    struct td_creds_waiter *waiters;
};

static void fetch(struct td_creds *c);

static int64_t on_timer(struct td_loop *loop, void *arg)
{
    fetch(arg);
    return TD_LOOP_NOMORE;
}

static void list_remove(struct td_creds_waiter *w)
{
    struct td_creds_waitlist *l = w->list;
    if (!l) {
        return;
    }
    if (w->lprev) {
        w->lprev->lnext = w->lnext;
    } else {
        l->head = w->lnext;
    }
    if (w->lnext) {
        w->lnext->lprev = w->lprev;
    }
    w->lprev = w->lnext = NULL;
    w->list = NULL;
}

/* Calls every waiter once; the queue is detached and each waiter leaves its owner's list
 * before its call, so a waiter may queue again (or its owner free it) from fn. */
static void wake(struct td_creds *c, const char *err)
{
    struct td_creds_waiter *w = c->waiters;
    c->waiters = NULL;
    while (w) {
        struct td_creds_waiter *next = w->next;
        w->prev = w->next = NULL;
        list_remove(w);
        w->fn(w, err);
        w = next;
    }
}

static void failed(struct td_creds *c, const char *fmt, const char *detail)
{
    snprintf(c->last_err, sizeof(c->last_err), fmt, c->p->what, detail);
    c->failures++;
    int64_t wait = 500;
    for (int i = 1; i < c->failures && wait < BACKOFF_MAX_MS; i++) {
        wait *= 2;
    }
    wait = wait < BACKOFF_MAX_MS ? wait : BACKOFF_MAX_MS;
    td_log_warn(NULL, NULL, NULL, "%s; fetching again in %lld ms", c->last_err, (long long)wait);
    td_timer_start(c->loop, &c->timer, wait);
    wake(c, c->last_err);
}

static void on_fetched(struct td_http_request *req, CURLcode code, long status,
                       int64_t retry_after_ms, const unsigned char *body, size_t len, void *arg)
{
    struct fetch_arg *fa = arg;
    struct td_creds *c = fa->c;
    free(fa);
    c->req = NULL;
    c->req_arg = NULL;
    if (code != CURLE_OK) {
        failed(c, "could not fetch the %s: %s", curl_easy_strerror(code));
        return;
    }
    if (status < 200 || status > 299) {
        char detail[32];
        snprintf(detail, sizeof(detail), "HTTP %ld", status);
        failed(c, "could not fetch the %s: %s", detail); /* the body may echo secrets */
        return;
    }
    char *vals[TD_CREDS_NVALS] = {0};
    int64_t expires = 0;
    char err[128] = "";
    int rc = c->p->parse(c->ctx, body, len, vals, &expires, err, sizeof(err));
    for (int i = 0; rc == 0 && i < TD_CREDS_NVALS; i++) {
        /* Every value goes into a request header (or a signature): a CR or LF in it would add
         * headers of the sender's choosing. Refused on every fetch, never shown. */
        if (vals[i] && !td_secret_header_safe(vals[i])) {
            snprintf(err, sizeof(err), "value %d holds a blank or control character", i + 1);
            rc = -1;
        }
    }
    if (rc < 0) {
        for (int i = 0; i < TD_CREDS_NVALS; i++) {
            td_secret_free(vals[i]);
        }
        failed(c, "could not use the %s answer: %s", err);
        return;
    }
    for (int i = 0; i < TD_CREDS_NVALS; i++) {
        td_secret_free(c->vals[i]);
        c->vals[i] = vals[i];
    }
    int64_t now = td_wall_ms();
    int64_t life = expires > now ? expires - now : UNKNOWN_LIFETIME_MS;
    if (expires <= 0) {
        expires = now + life;
    }
    /* Stop using a value a little before it expires (requests take time), and fetch the next
     * one well before that. */
    int64_t skew = life / 10 < 5000 ? life / 10 : 5000;
    c->valid_until_wall_ms = expires - skew;
    int64_t margin = life / 4 < REFRESH_MARGIN_MAX_MS ? life / 4 : REFRESH_MARGIN_MAX_MS;
    int64_t refresh = life - margin;
    c->failures = 0;
    c->fetches++;
    td_log_debug(NULL, NULL, NULL, "%s fetched; valid for %lld ms, refreshed in %lld ms",
                 c->p->what, (long long)life, (long long)refresh);
    td_timer_start(c->loop, &c->timer, refresh > 100 ? refresh : 100);
    wake(c, NULL);
}

static void fetch(struct td_creds *c)
{
    struct curl_slist *headers = NULL;
    struct fetch_arg *fa = NULL;
    char err[128] = "";
    if (c->req) {
        return;
    }
    td_timer_stop(c->loop, &c->timer);
    CURL *easy = td_http_client_easy(c->http);
    if (!easy) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }
    if (c->p->prepare(c->ctx, easy, &headers, err, sizeof(err)) < 0) {
        goto fail;
    }
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)FETCH_TIMEOUT_MS);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    fa = malloc(sizeof(*fa));
    if (!fa) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }
    fa->c = c;
    c->req = td_http_client_send(c->http, easy, headers, on_fetched, fa);
    c->req_arg = c->req ? fa : NULL;
    easy = NULL;
    headers = NULL;
    if (!c->req) {
        free(fa);
        snprintf(err, sizeof(err), "could not start the request");
        goto fail;
    }
    return;
fail:
    curl_slist_free_all(headers);
    if (easy) {
        td_http_client_release(c->http, easy);
    }
    /* Report from a loop callback, never from inside a caller's deliver(). */
    snprintf(c->last_err, sizeof(c->last_err), "could not fetch the %s: %s", c->p->what, err);
    c->failures++;
    td_log_warn(NULL, NULL, NULL, "%s", c->last_err);
    td_timer_start(c->loop, &c->timer, BACKOFF_MAX_MS);
}

struct td_creds *td_creds_new(struct td_loop *loop, struct td_http_client *http,
                              const struct td_creds_provider *p, void *ctx)
{
    struct td_creds *c = calloc(1, sizeof(*c));
    if (!c) {
        p->free_ctx(ctx);
        return NULL;
    }
    c->loop = loop;
    c->http = http;
    c->p = p;
    c->ctx = ctx;
    td_timer_init(&c->timer, on_timer, c);
    return c;
}

void td_creds_free(struct td_creds *c)
{
    if (!c) {
        return;
    }
    if (c->req) {
        /* the request's arg is ours again once cancelled */
        td_http_client_cancel(c->http, c->req);
        free(c->req_arg);
    }
    td_timer_stop(c->loop, &c->timer);
    for (int i = 0; i < TD_CREDS_NVALS; i++) {
        td_secret_free(c->vals[i]);
    }
    c->p->free_ctx(c->ctx);
    free(c);
}

void td_creds_start(struct td_creds *c)
{
    if (!c->req && c->fetches == 0 && c->failures == 0) {
        fetch(c);
    }
}

const char *td_creds_get(struct td_creds *c, int i)
{
    if (c->valid_until_wall_ms == 0 || td_wall_ms() >= c->valid_until_wall_ms) {
        return NULL;
    }
    return c->vals[i];
}

int td_creds_wait(struct td_creds *c, struct td_creds_waitlist *list, struct td_creds_waiter *w,
                  char *err, size_t errlen)
{
    if (!c->req && c->failures == 0) {
        fetch(c); /* expired, and the refresh timer has not fired yet (e.g. a suspended host) */
    }
    if (!c->req) {
        snprintf(err, errlen, "%s", c->last_err[0] ? c->last_err : "no credentials");
        return -1;
    }
    w->prev = NULL;
    w->next = c->waiters;
    if (c->waiters) {
        c->waiters->prev = w;
    }
    c->waiters = w;
    w->list = list;
    w->lprev = NULL;
    w->lnext = list->head;
    if (list->head) {
        list->head->lprev = w;
    }
    list->head = w;
    return 0;
}

void td_creds_cancel(struct td_creds *c, struct td_creds_waiter *w)
{
    if (w->prev) {
        w->prev->next = w->next;
    } else if (c->waiters == w) {
        c->waiters = w->next;
    }
    if (w->next) {
        w->next->prev = w->prev;
    }
    w->prev = w->next = NULL;
    list_remove(w);
}

struct td_creds_waiter *td_creds_waitlist_pop(struct td_creds *c, struct td_creds_waitlist *list)
{
    struct td_creds_waiter *w = list->head;
    if (w) {
        td_creds_cancel(c, w);
    }
    return w;
}

void td_creds_refused(struct td_creds *c, uint64_t gen)
{
    if (gen != c->fetches || c->valid_until_wall_ms == 0) {
        return; /* a newer value came since, or this one is already dropped */
    }
    c->valid_until_wall_ms = 0;
    td_log_info(NULL, NULL, NULL, "%s refused by the server; fetching a new one", c->p->what);
    if (!c->req) {
        c->failures = 0; /* a backoff after an old failure does not delay this one */
        fetch(c);
    }
}

uint64_t td_creds_fetches(const struct td_creds *c)
{
    return c->fetches;
}

int64_t td_creds_seconds(double d)
{
    if (!(d >= 1)) { /* NaN too; and 0 < d < 1 would truncate to 0, "unknown" */
        return -1;
    }
    if (d >= (double)TD_CREDS_MAX_EPOCH_S) {
        return TD_CREDS_MAX_EPOCH_S;
    }
    return (int64_t)d;
}

unsigned char *td_base64url_decode(const char *in, size_t len, size_t *outlen)
{
    unsigned char *out = malloc(len * 3 / 4 + 4);
    if (!out) {
        return NULL;
    }
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char)in[i];
        int v;
        if (ch >= 'A' && ch <= 'Z') {
            v = ch - 'A';
        } else if (ch >= 'a' && ch <= 'z') {
            v = ch - 'a' + 26;
        } else if (ch >= '0' && ch <= '9') {
            v = ch - '0' + 52;
        } else if (ch == '-' || ch == '+') {
            v = 62;
        } else if (ch == '_' || ch == '/') {
            v = 63;
        } else if (ch == '=') {
            break;
        } else {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    out[n] = '\0';
    *outlen = n;
    return out;
}

int64_t td_jwt_exp(const char *jwt)
{
    const char *dot1 = strchr(jwt, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2) {
        return -1;
    }
    size_t n = 0;
    unsigned char *payload = td_base64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &n);
    if (!payload) {
        return -1;
    }
    cJSON *claims = cJSON_ParseWithLength((const char *)payload, n);
    td_secret_free_n(payload, n + 1);
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    int64_t out = cJSON_IsNumber(exp) ? td_creds_seconds(exp->valuedouble) : -1;
    cJSON_Delete(claims);
    return out;
}

char *td_read_secret_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read %s", path);
        return NULL;
    }
    size_t cap = 65536;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    while (n > 0 && isspace((unsigned char)buf[n - 1])) {
        buf[--n] = '\0'; /* wiped as it goes: the trailing part is never freed with data */
    }
    buf[n] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "%s is empty", path);
        free(buf);
        return NULL;
    }
    if (!td_secret_header_safe(buf)) {
        /* A token goes into a header: CR/LF would add headers of the file writer's choice. */
        snprintf(err, errlen, "%s holds a blank or control character (a token cannot)", path);
        td_secret_free(buf);
        return NULL;
    }
    return buf;
}
