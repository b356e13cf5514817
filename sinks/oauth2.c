/* oauth2.c - OAuth 2.0 client credentials (RFC 6749 section 4.4) for HTTP sinks.
 *
 * POST token_url with grant_type=client_credentials (and scope=..., audience=... when given),
 * the client authenticated with HTTP Basic (client_id:client_secret, each form-urlencoded first,
 * as section 2.3.1 asks: every authorization server must accept it, and the secret stays out of
 * the request body). The JSON answer's access_token is sent as "Authorization: Bearer" and
 * expires_in drives creds.c's refresh: used until shortly before it expires, fetched again in
 * the background before that, without ever blocking the loop. http.c drops a token its function
 * answered 401 to and retries once with a new one.
 * The secret and the tokens are never logged; an error answer's body is never shown (it may
 * echo the request).
 */
#include "oauth2.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "creds.h"
#include "http_conf.h"
#include "loop.h"
#include "secret.h"

struct oauth2_ctx {
    char *token_url;
    char *user;   /* client_id, form-urlencoded */
    char *secret; /* client_secret, form-urlencoded (secret) */
    char *body;   /* grant_type=client_credentials[&scope=...][&audience=...] */
};

static int prepare(void *ctxp, CURL *easy, struct curl_slist **headers, char *err, size_t errlen)
{
    struct oauth2_ctx *ctx = ctxp;
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    struct curl_slist *h2 =
        h ? curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded") : NULL;
    if (!h2) {
        curl_slist_free_all(h);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *headers = h2;
    curl_easy_setopt(easy, CURLOPT_URL, ctx->token_url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, ctx->body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(ctx->body));
    curl_easy_setopt(easy, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(easy, CURLOPT_USERNAME, ctx->user);
    curl_easy_setopt(easy, CURLOPT_PASSWORD, ctx->secret);
    return 0;
}

static int parse(void *ctxp, const unsigned char *body, size_t len, char **vals,
                 int64_t *expires_wall_ms, char *err, size_t errlen)
{
    (void)ctxp;
    cJSON *root = cJSON_ParseWithLength((const char *)body, len);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(root, "access_token");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "token_type");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
    int rc = -1;
    if (!cJSON_IsString(tok) || !tok->valuestring[0]) {
        snprintf(err, errlen, "the answer has no access_token");
        goto out;
    }
    /* RFC 6750: only Bearer tokens can be sent as they are (a "mac" or "DPoP" token cannot). */
    if (type && (!cJSON_IsString(type) || strcasecmp(type->valuestring, "bearer") != 0)) {
        snprintf(err, errlen, "the token_type is not Bearer");
        goto out;
    }
    vals[0] = strdup(tok->valuestring);
    if (!vals[0]) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* expires_in is RECOMMENDED, not required: without it creds.c assumes 5 minutes */
    int64_t s = cJSON_IsNumber(exp) ? td_creds_seconds(exp->valuedouble) : -1;
    *expires_wall_ms = s > 0 ? td_wall_ms() + s * 1000 : 0;
    rc = 0;
out:
    if (cJSON_IsString(tok)) {
        td_secret_wipe(tok->valuestring, strlen(tok->valuestring));
    }
    cJSON_Delete(root);
    return rc;
}

static void free_ctx(void *ctxp)
{
    struct oauth2_ctx *ctx = ctxp;
    if (ctx) {
        free(ctx->token_url);
        free(ctx->user);
        td_secret_free(ctx->secret);
        free(ctx->body);
        free(ctx);
    }
}

static const struct td_creds_provider provider = {
    .what = "OAuth2 access token",
    .prepare = prepare,
    .parse = parse,
    .free_ctx = free_ctx,
};

/* s form-urlencoded (RFC 6749 appendix B: space is '+'; curl_easy_escape writes %20, which
 * every form decoder reads as well): malloc'd, or NULL. The copy curl made is wiped. */
static char *form_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = e ? strdup(e) : NULL;
    if (e) {
        td_secret_wipe(e, strlen(e));
        curl_free(e);
    }
    return out;
}

/* Appends "&name=escaped(value)" to *body. 0 or -1. */
static int add_param(char **body, const char *name, const char *value)
{
    char *v = form_escape(value);
    char *out = NULL;
    if (!v || asprintf(&out, "%s&%s=%s", *body, name, v) < 0) {
        free(v);
        return -1;
    }
    free(v);
    free(*body);
    *body = out;
    return 0;
}

struct td_creds *td_oauth2_token_new(struct td_loop *loop, struct td_http_client *http,
                                     const struct td_conf_auth *auth)
{
    struct oauth2_ctx *ctx = calloc(1, sizeof(*ctx));
    char *scope = NULL;
    if (!ctx) {
        return NULL;
    }
    ctx->token_url = strdup(auth->oauth2_token_url);
    ctx->user = form_escape(auth->oauth2_client_id);
    ctx->secret = form_escape(auth->oauth2_client_secret);
    ctx->body = strdup("grant_type=client_credentials");
    if (!ctx->token_url || !ctx->user || !ctx->secret || !ctx->body) {
        goto fail;
    }
    /* scope is one space-separated string (RFC 6749 3.3) */
    size_t n = 1;
    for (size_t i = 0; i < auth->oauth2_nscopes; i++) {
        n += strlen(auth->oauth2_scopes[i]) + 1;
    }
    if (auth->oauth2_nscopes > 0) {
        scope = calloc(1, n);
        if (!scope) {
            goto fail;
        }
        for (size_t i = 0; i < auth->oauth2_nscopes; i++) {
            if (i > 0) {
                strcat(scope, " ");
            }
            strcat(scope, auth->oauth2_scopes[i]);
        }
        if (add_param(&ctx->body, "scope", scope) < 0) {
            goto fail;
        }
    }
    /* audience: not in RFC 6749, but what Auth0, Okta and others take to pick the API */
    if (auth->oauth2_audience && add_param(&ctx->body, "audience", auth->oauth2_audience) < 0) {
        goto fail;
    }
    free(scope);
    struct td_creds *c = td_creds_new(loop, http, &provider, ctx); /* takes ctx */
    if (c) {
        td_creds_start(c);
    }
    return c;
fail:
    free(scope);
    free_ctx(ctx);
    return NULL;
}
