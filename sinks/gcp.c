/* gcp.c - Google ID tokens for Cloud Functions and Cloud Run (auth: {google_id_token}).
 *
 * A token comes from the metadata server of the VM, GKE node or Cloud Run instance the daemon
 * runs on (metadata_url: the full identity URL or only the server's base URL; without it
 * GCE_METADATA_HOST, as Google's client libraries, else metadata.google.internal): GET
 * <identity URL>?audience=AUD with "Metadata-Flavor: Google" answers a signed JWT
 * for that audience, valid about an hour. One token per (metadata URL, audience) is shared by
 * every sink that asks for it (a registry below, loop thread only), cached, and refreshed
 * before it expires (its "exp" claim) by creds.c, without blocking the loop.
 * A token file instead of the metadata server is auth: {bearer_file: PATH} (re-read when it
 * changes), which http.c handles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "gcp.h"
#include "secret.h"

#define IDENTITY_PATH         "/computeMetadata/v1/instance/service-accounts/default/identity"
#define DEFAULT_METADATA_HOST "metadata.google.internal"

struct gcp_ctx {
    char *url; /* metadata URL with ?audience= */
};

struct gcp_token {
    struct gcp_token *next;
    char *metadata_url;
    char *audience;
    struct td_creds *creds;
    int refs;
};

static struct gcp_token *registry; /* loop thread only */

static int prepare(void *ctxp, CURL *easy, struct curl_slist **headers, char *err, size_t errlen)
{
    struct gcp_ctx *ctx = ctxp;
    struct curl_slist *h = curl_slist_append(NULL, "Metadata-Flavor: Google");
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *headers = h;
    curl_easy_setopt(easy, CURLOPT_URL, ctx->url);
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    return 0;
}

static int parse(void *ctxp, const unsigned char *body, size_t len, char **vals,
                 int64_t *expires_wall_ms, char *err, size_t errlen)
{
    while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r' || body[len - 1] == ' ')) {
        len--;
    }
    char *token = malloc(len + 1);
    if (!token) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(token, body, len);
    token[len] = '\0';
    int64_t exp = len > 0 && strlen(token) == len ? td_jwt_exp(token) : -1;
    if (exp < 0) {
        td_secret_free(token);
        snprintf(err, errlen, "the answer is not a JWT with an exp claim");
        return -1;
    }
    vals[0] = token;
    *expires_wall_ms = exp * 1000;
    return 0;
}

static void free_ctx(void *ctxp)
{
    struct gcp_ctx *ctx = ctxp;
    if (ctx) {
        free(ctx->url);
        free(ctx);
    }
}

static const struct td_creds_provider provider = {
    .what = "Google ID token",
    .prepare = prepare,
    .parse = parse,
    .free_ctx = free_ctx,
};

static bool same(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

char *td_gcp_identity_url(const char *metadata_url, const char *env_host)
{
    char *out = NULL;
    if (metadata_url && *metadata_url) {
        /* Only a base URL (no path, or "/") gets the identity path: a full URL is kept as it
         * is, so proxies and test servers with paths of their own keep working. */
        const char *host = strstr(metadata_url, "://");
        host = host ? host + 3 : metadata_url;
        const char *path = host + strcspn(host, "/?#");
        if (*path != '\0' && strcmp(path, "/") != 0) {
            return strdup(metadata_url);
        }
        int base = (int)(path - metadata_url);
        return asprintf(&out, "%.*s%s", base, metadata_url, IDENTITY_PATH) < 0 ? NULL : out;
    }
    /* As Google's client libraries: GCE_METADATA_HOST is host[:port], spoken over http. */
    const char *host = env_host && *env_host ? env_host : DEFAULT_METADATA_HOST;
    return asprintf(&out, "http://%s%s", host, IDENTITY_PATH) < 0 ? NULL : out;
}

struct td_creds *td_gcp_token_get(struct td_loop *loop, struct td_http_client *http,
                                  const char *metadata_url, const char *audience)
{
    char *base = td_gcp_identity_url(metadata_url, getenv("GCE_METADATA_HOST"));
    if (!base) {
        return NULL;
    }
    for (struct gcp_token *t = registry; t; t = t->next) {
        if (same(t->metadata_url, base) && same(t->audience, audience)) {
            t->refs++;
            free(base);
            return t->creds;
        }
    }
    struct gcp_token *t = calloc(1, sizeof(*t));
    struct gcp_ctx *ctx = calloc(1, sizeof(*ctx));
    char *aud = curl_easy_escape(NULL, audience, 0);
    if (!t || !ctx || !aud) {
        goto fail;
    }
    size_t n = strlen(base) + strlen(aud) + 16; /* before base moves into t */
    ctx->url = malloc(n);
    t->metadata_url = base;
    base = NULL;
    t->audience = strdup(audience);
    if (!ctx->url || !t->metadata_url || !t->audience) {
        goto fail;
    }
    snprintf(ctx->url, n, "%s%saudience=%s", t->metadata_url,
             strchr(t->metadata_url, '?') ? "&" : "?", aud);
    curl_free(aud);
    aud = NULL;
    t->creds = td_creds_new(loop, http, &provider, ctx);
    ctx = NULL; /* taken, even on failure */
    if (!t->creds) {
        goto fail;
    }
    t->refs = 1;
    t->next = registry;
    registry = t;
    td_creds_start(t->creds);
    return t->creds;
fail:
    free(base);
    curl_free(aud);
    free_ctx(ctx);
    if (t) {
        free(t->metadata_url);
        free(t->audience);
        free(t);
    }
    return NULL;
}

void td_gcp_token_put(struct td_creds *creds)
{
    for (struct gcp_token **pp = &registry; *pp; pp = &(*pp)->next) {
        struct gcp_token *t = *pp;
        if (t->creds != creds) {
            continue;
        }
        if (--t->refs > 0) {
            return;
        }
        *pp = t->next;
        td_creds_free(t->creds);
        free(t->metadata_url);
        free(t->audience);
        free(t);
        return;
    }
}
