/* aws.c - AWS credentials for the Lambda sink: the resolution chain and the web identity
 * exchange with STS (see aws.h). Secrets never reach a log line or an error message. */
#include "aws.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "creds.h"
#include "secret.h"

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

const char *td_aws_source_name(enum td_aws_source s)
{
    switch (s) {
    case TD_AWS_CONFIG:
        return "the trigger file";
    case TD_AWS_ENV:
        return "the environment";
    case TD_AWS_FILE:
        return "the shared credentials file";
    case TD_AWS_WEB_IDENTITY:
        return "web identity (STS)";
    }
    return "?";
}

const char *td_aws_region(const struct td_conf_lambda_sink *conf)
{
    if (conf->region && *conf->region) {
        return conf->region;
    }
    const char *r = getenv("AWS_REGION");
    if (r && *r) {
        return r;
    }
    r = getenv("AWS_DEFAULT_REGION");
    return r && *r ? r : NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        s[--n] = '\0';
    }
    return s;
}

/* Reads [profile] of an INI credentials file. 0 found, -1 not (file or profile missing). */
static int read_shared_file(const char *path, const char *profile, struct td_aws_resolved *out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    char line[4096];
    int in = 0;
    while (fgets(line, sizeof(line), f)) {
        char *s = trim(line);
        if (*s == '#' || *s == ';' || *s == '\0') {
            continue;
        }
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (end) {
                *end = '\0';
            }
            in = strcmp(trim(s + 1), profile) == 0;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in || !eq) {
            continue;
        }
        *eq = '\0';
        char *key = trim(s);
        char *val = trim(eq + 1);
        char **slot = strcmp(key, "aws_access_key_id") == 0       ? &out->access_key_id
                      : strcmp(key, "aws_secret_access_key") == 0 ? &out->secret_access_key
                      : strcmp(key, "aws_session_token") == 0     ? &out->session_token
                                                                  : NULL;
        if (slot) {
            td_secret_free(*slot);
            *slot = dup_or_null(val);
        }
    }
    fclose(f);
    td_secret_wipe(line, sizeof(line));
    if (out->access_key_id && out->secret_access_key) {
        return 0;
    }
    td_aws_resolved_clear(out);
    return -1;
}

int td_aws_resolve(const struct td_conf_lambda_sink *conf, struct td_aws_resolved *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (conf->access_key_id && conf->secret_access_key) {
        out->source = TD_AWS_CONFIG;
        out->access_key_id = dup_or_null(conf->access_key_id);
        out->secret_access_key = dup_or_null(conf->secret_access_key);
        out->session_token = dup_or_null(conf->session_token);
        goto check;
    }
    const char *akid = getenv("AWS_ACCESS_KEY_ID");
    const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (akid && *akid && secret && *secret) {
        out->source = TD_AWS_ENV;
        out->access_key_id = dup_or_null(akid);
        out->secret_access_key = dup_or_null(secret);
        out->session_token = dup_or_null(getenv("AWS_SESSION_TOKEN"));
        goto check;
    }
    char path[1024];
    const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE");
    const char *home = getenv("HOME");
    if (file && *file) {
        snprintf(path, sizeof(path), "%s", file);
    } else {
        snprintf(path, sizeof(path), "%s/.aws/credentials", home && *home ? home : "");
    }
    const char *profile = getenv("AWS_PROFILE");
    profile = profile && *profile ? profile : "default";
    if (read_shared_file(path, profile, out) == 0) {
        out->source = TD_AWS_FILE;
        goto check;
    }
    const char *role = getenv("AWS_ROLE_ARN");
    const char *token_file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    if (role && *role && token_file && *token_file) {
        out->source = TD_AWS_WEB_IDENTITY;
        out->role_arn = dup_or_null(role);
        out->token_file = dup_or_null(token_file);
        const char *name = getenv("AWS_ROLE_SESSION_NAME");
        char buf[64];
        snprintf(buf, sizeof(buf), "triggerd-%ld", (long)getpid());
        out->session_name = dup_or_null(name && *name ? name : buf);
        if (!out->role_arn || !out->token_file || !out->session_name) {
            goto oom;
        }
        if (access(out->token_file, R_OK) != 0) {
            snprintf(err, errlen, "AWS_WEB_IDENTITY_TOKEN_FILE %s cannot be read", out->token_file);
            td_aws_resolved_clear(out);
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen,
             "no AWS credentials: none in the trigger file, AWS_ACCESS_KEY_ID / "
             "AWS_SECRET_ACCESS_KEY unset, no profile '%s' in %s, AWS_ROLE_ARN / "
             "AWS_WEB_IDENTITY_TOKEN_FILE unset",
             profile, path);
    return -1;
check:
    if (!out->access_key_id || !out->secret_access_key) {
        goto oom;
    }
    /* The key id goes into the Authorization header, the session token into its own: a CR or
     * LF in either would add headers. Named by where it came from, never shown. */
    if (!td_secret_header_safe(out->access_key_id) ||
        !td_secret_header_safe(out->secret_access_key) ||
        (out->session_token && !td_secret_header_safe(out->session_token))) {
        snprintf(err, errlen, "the AWS credentials from %s hold a blank or control character",
                 out->source == TD_AWS_CONFIG ? "the trigger file"
                 : out->source == TD_AWS_ENV  ? "the environment (AWS_*)"
                                              : "the shared credentials file");
        td_aws_resolved_clear(out);
        return -1;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    td_aws_resolved_clear(out);
    return -1;
}

void td_aws_resolved_clear(struct td_aws_resolved *r)
{
    char **all[] = {&r->access_key_id, &r->secret_access_key, &r->session_token,
                    &r->role_arn,      &r->token_file,        &r->session_name};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (*all[i]) {
            /* wipe secrets before giving the memory back */
            td_secret_free(*all[i]);
            *all[i] = NULL;
        }
    }
}

long long td_aws_parse_time_ms(const char *s)
{
    int y, mo, d, h, mi, sec;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6) {
        return -1;
    }
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1) {
        return -1;
    }
    return (long long)t * 1000;
}

char *td_xml_text(const char *xml, size_t len, const char *tag)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *a = memmem(xml, len, open, strlen(open));
    if (!a) {
        return NULL;
    }
    a += strlen(open);
    const char *b = memmem(a, len - (size_t)(a - xml), close, strlen(close));
    if (!b) {
        return NULL;
    }
    return strndup(a, (size_t)(b - a));
}

/* ---- STS AssumeRoleWithWebIdentity ---- */

struct sts_ctx {
    char *endpoint;
    char *role_arn, *token_file, *session_name;
};

static int sts_prepare(void *ctxp, CURL *easy, struct curl_slist **headers, char *err,
                       size_t errlen)
{
    struct sts_ctx *ctx = ctxp;
    char *body = NULL, *role = NULL, *name = NULL, *tok = NULL;
    int rc = -1;
    /* The projected token rotates: read it again for every exchange. */
    char *token = td_read_secret_file(ctx->token_file, err, errlen);
    if (!token) {
        return -1;
    }
    role = curl_easy_escape(easy, ctx->role_arn, 0);
    name = curl_easy_escape(easy, ctx->session_name, 0);
    tok = curl_easy_escape(easy, token, 0);
    if (!role || !name || !tok) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    size_t n = strlen(role) + strlen(name) + strlen(tok) + 160;
    body = malloc(n);
    *headers = curl_slist_append(NULL, "Accept: text/xml");
    if (!body || !*headers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(body, n,
             "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=%s&RoleSessionName=%s"
             "&WebIdentityToken=%s",
             role, name, tok);
    curl_easy_setopt(easy, CURLOPT_URL, ctx->endpoint);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, body);
    rc = 0;
fail:
    td_secret_free(token);
    td_secret_free(body);
    curl_free(role);
    curl_free(name);
    if (tok) {
        td_secret_wipe(tok, strlen(tok)); /* the escaped token */
    }
    curl_free(tok);
    return rc;
}

static int sts_parse(void *ctxp, const unsigned char *body, size_t len, char **vals,
                     int64_t *expires_wall_ms, char *err, size_t errlen)
{
    const char *xml = (const char *)body;
    vals[0] = td_xml_text(xml, len, "AccessKeyId");
    vals[1] = td_xml_text(xml, len, "SecretAccessKey");
    vals[2] = td_xml_text(xml, len, "SessionToken");
    char *exp = td_xml_text(xml, len, "Expiration");
    long long ms = td_aws_parse_time_ms(exp);
    free(exp);
    if (!vals[0] || !vals[1] || !vals[2] || ms < 0) {
        snprintf(err, errlen, "no Credentials with an Expiration in the STS answer");
        return -1;
    }
    *expires_wall_ms = ms;
    return 0;
}

static void sts_free(void *ctxp)
{
    struct sts_ctx *ctx = ctxp;
    if (!ctx) {
        return;
    }
    free(ctx->endpoint);
    free(ctx->role_arn);
    free(ctx->token_file);
    free(ctx->session_name);
    free(ctx);
}

static const struct td_creds_provider sts_provider = {
    .what = "AWS web identity credentials",
    .prepare = sts_prepare,
    .parse = sts_parse,
    .free_ctx = sts_free,
};

struct td_creds *td_aws_web_identity_new(struct td_loop *loop, struct td_http_client *http,
                                         const struct td_aws_resolved *r, const char *region)
{
    struct sts_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        return NULL;
    }
    char buf[256];
    const char *ep = getenv("AWS_ENDPOINT_URL_STS");
    if (!ep || !*ep) {
        if (region) {
            snprintf(buf, sizeof(buf), "https://sts.%s.amazonaws.com/", region);
        } else {
            snprintf(buf, sizeof(buf), "https://sts.amazonaws.com/");
        }
        ep = buf;
    }
    ctx->endpoint = strdup(ep);
    ctx->role_arn = dup_or_null(r->role_arn);
    ctx->token_file = dup_or_null(r->token_file);
    ctx->session_name = dup_or_null(r->session_name);
    if (!ctx->endpoint || !ctx->role_arn || !ctx->token_file || !ctx->session_name) {
        sts_free(ctx);
        return NULL;
    }
    struct td_creds *c = td_creds_new(loop, http, &sts_provider, ctx);
    if (c) {
        td_creds_start(c);
    }
    return c;
}
