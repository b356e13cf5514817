/* redis_util.c - Redis URL parsing and connecting (see redis_util.h). */
#include "redis_util.h"
#include "secret.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decodes %XX in [s, s+n) into a new string. */
static char *pct_dup(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out) {
        return NULL;
    }
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            out[j++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

int td_redis_addr_parse(const char *url, struct td_redis_addr *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    const char *p;
    if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        p = url + 9;
        out->tls = true;
    } else {
        snprintf(err, errlen, "a Redis URL starts with redis:// or rediss:// (TLS)");
        return -1;
    }
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < end; q++) {
        if (*q == '@') {
            at = q;
        }
    }
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (colon > p) {
                out->user = pct_dup(p, (size_t)(colon - p));
            }
            out->password = pct_dup(colon + 1, (size_t)(at - colon - 1));
        } else {
            out->password = pct_dup(p, (size_t)(at - p));
        }
        p = at + 1;
    }
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *hend = colon ? colon : end;
    if (hend == p || (size_t)(hend - p) >= sizeof(out->host)) {
        snprintf(err, errlen, "no host in the Redis URL");
        goto fail;
    }
    memcpy(out->host, p, (size_t)(hend - p));
    out->host[hend - p] = '\0';
    if (colon) {
        char *e;
        long port = strtol(colon + 1, &e, 10);
        if (e != end || port <= 0 || port > 65535) {
            snprintf(err, errlen, "bad port in the Redis URL");
            goto fail;
        }
        out->port = (int)port;
    }
    out->path = pct_dup(*end == '/' ? end + 1 : end, strcspn(*end == '/' ? end + 1 : end, "?#"));
    if (!out->path) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return 0;
fail:
    td_redis_addr_free(out);
    return -1;
}

void td_redis_addr_free(struct td_redis_addr *a)
{
    free(a->user);
    td_secret_free(a->password);
    free(a->path);
    a->user = a->password = a->path = NULL;
}

int td_redis_addr_db(const struct td_redis_addr *a)
{
    if (!a->path || !*a->path) {
        return 0;
    }
    char *e;
    long db = strtol(a->path, &e, 10);
    return (*e || db < 0) ? -1 : (int)db;
}

int td_redis_url_check(const char *url, char *err, size_t errlen)
{
    struct td_redis_addr addr;
    if (td_redis_addr_parse(url, &addr, err, errlen) < 0) {
        return -1;
    }
    int db = td_redis_addr_db(&addr);
    td_redis_addr_free(&addr);
    if (db < 0) {
        snprintf(err, errlen, "the Redis URL path must be a database number");
        return -1;
    }
    return 0;
}
