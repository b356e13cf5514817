/* conf_interpolate.c - ${VAR}, ${VAR:-default}, ${file:/path} and ${credential:NAME} in
 * trigger-file scalars (td_interpolate in config.h). Every buffer that held a substituted value
 * is wiped before it is freed: the value is a secret.
 *
 * Thread: any (reads the environment and files).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "secret.h"

#define MAX_SECRET_SIZE (1024 * 1024)

int td_conf_buf_add(struct td_conf_buf *b, const char *s, size_t len)
{
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + len + 1) {
            cap *= 2;
        }
        /* Not realloc: the old buffer may hold a secret, wiped before it is freed. */
        char *p = malloc(cap);
        if (!p) {
            return -1;
        }
        if (b->p) {
            memcpy(p, b->p, b->n + 1);
            td_secret_free_n(b->p, b->cap);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
    return 0;
}

/* Reads a secret file into b, one trailing newline removed. 0, or -1 with a message in err. */
static int read_secret_file(const char *path, struct td_conf_buf *b, char *err, size_t errlen)
{
    char chunk[4096];
    size_t start = b->n;
    size_t got;
    FILE *fp = fopen(path, "rb");

    if (!fp) {
        snprintf(err, errlen, "cannot read ${file:%s}: %s", path, strerror(errno));
        goto fail;
    }
    while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (memchr(chunk, '\0', got)) {
            snprintf(err, errlen, "${file:%s} contains a NUL byte", path);
            goto fail;
        }
        if (b->n - start + got > MAX_SECRET_SIZE) {
            snprintf(err, errlen, "${file:%s} is larger than 1 MiB", path);
            goto fail;
        }
        if (td_conf_buf_add(b, chunk, got) < 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (ferror(fp)) {
        snprintf(err, errlen, "cannot read ${file:%s}: %s", path, strerror(errno));
        goto fail;
    }
    fclose(fp);
    td_secret_wipe(chunk, sizeof(chunk));
    if (b->n > start && b->p[b->n - 1] == '\n') {
        b->p[--b->n] = '\0';
    }
    return 0;
fail:
    if (fp) {
        fclose(fp);
    }
    td_secret_wipe(chunk, sizeof(chunk));
    return -1;
}

static bool valid_var_name(const char *s, size_t len)
{
    if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_')) {
        return false;
    }
    for (size_t i = 1; i < len; i++) {
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) {
            return false;
        }
    }
    return true;
}

char *td_conf_interpolate(const char *s, bool *secret, char *from, size_t fromlen, char *err,
                          size_t errlen)
{
    struct td_conf_buf b = {0};
    char name[256];

    *secret = false;
    if (from && fromlen) {
        from[0] = '\0';
    }
    if (td_conf_buf_add(&b, "", 0) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (const char *p = s; *p;) {
        if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
            if (td_conf_buf_add(&b, "${", 2) < 0) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            p += 3;
            continue;
        }
        if (!(p[0] == '$' && p[1] == '{')) {
            if (td_conf_buf_add(&b, p, 1) < 0) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            p++;
            continue;
        }
        const char *open = p + 2;
        const char *close = strchr(open, '}');
        if (!close) {
            snprintf(err, errlen, "unterminated '${' (write '$${' for a literal '${')");
            goto fail;
        }
        size_t inner = (size_t)(close - open);
        if (from && fromlen && !from[0]) {
            snprintf(from, fromlen, "%.*s", (int)(inner + 3 < fromlen ? inner + 3 : fromlen - 1),
                     p);
        }
        if (inner >= 11 && strncmp(open, "credential:", 11) == 0) {
            /* systemd's LoadCredential=NAME:PATH puts the secret in $CREDENTIALS_DIRECTORY/NAME,
             * readable by the service alone, even under DynamicUser=. */
            const char *dir = getenv("CREDENTIALS_DIRECTORY");
            int nlen = (int)(inner - 11);
            const char *cname = open + 11;
            if (nlen == 0 || memchr(cname, '/', (size_t)nlen) || (nlen == 1 && cname[0] == '.') ||
                (nlen == 2 && strncmp(cname, "..", 2) == 0)) {
                snprintf(err, errlen, "${credential:NAME} needs a credential name (no '/')");
                goto fail;
            }
            if (!dir || !*dir) {
                snprintf(err, errlen,
                         "${credential:%.*s}: CREDENTIALS_DIRECTORY is not set (systemd sets it "
                         "for LoadCredential=)",
                         nlen, cname);
                goto fail;
            }
            if (snprintf(name, sizeof(name), "%s/%.*s", dir, nlen, cname) >= (int)sizeof(name)) {
                snprintf(err, errlen, "${credential:%.*s}: the path is too long", nlen, cname);
                goto fail;
            }
            if (read_secret_file(name, &b, err, errlen) < 0) {
                goto fail;
            }
        } else if (inner >= 5 && strncmp(open, "file:", 5) == 0) {
            if (inner == 5 || inner - 5 >= sizeof(name)) {
                snprintf(err, errlen, "${file:PATH} needs a path");
                goto fail;
            }
            snprintf(name, sizeof(name), "%.*s", (int)(inner - 5), open + 5);
            if (read_secret_file(name, &b, err, errlen) < 0) {
                goto fail;
            }
        } else {
            const char *dflt = NULL;
            size_t namelen = inner;
            for (size_t i = 0; i + 1 < inner; i++) {
                if (open[i] == ':' && open[i + 1] == '-') {
                    dflt = open + i + 2;
                    namelen = i;
                    break;
                }
            }
            if (!valid_var_name(open, namelen) || namelen >= sizeof(name)) {
                snprintf(err, errlen, "invalid variable name in '${%.*s}'", (int)namelen, open);
                goto fail;
            }
            snprintf(name, sizeof(name), "%.*s", (int)namelen, open);
            const char *val = getenv(name);
            if (dflt && (!val || !*val)) {
                if (td_conf_buf_add(&b, dflt, (size_t)(close - dflt)) < 0) {
                    snprintf(err, errlen, "out of memory");
                    goto fail;
                }
            } else if (!val) {
                snprintf(err, errlen, "environment variable '%s' is not set", name);
                goto fail;
            } else if (td_conf_buf_add(&b, val, strlen(val)) < 0) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
        }
        *secret = true;
        p = close + 1;
    }
    return b.p;
fail:
    td_secret_free_n(b.p, b.cap);
    return NULL;
}

char *td_interpolate(const char *s, bool *secret, char *err, size_t errlen)
{
    return td_conf_interpolate(s, secret, NULL, 0, err, errlen);
}
