/* redis_conf.c - the Redis `tls:` block (see redis_conf.h). */
#include "redis_conf.h"

#include <stdio.h>

#include "conf_table.h"
#include "redis_util.h"
#include "tls_file.h"

#define OFF(f) offsetof(struct td_conf_redis_tls, f)
static const struct td_conf_key tls_keys[] = {
    REF_STR("ca_file", OFF(tls.ca_file), OFF(ca_file_pos)),
    REF_STR("cert_file", OFF(tls.cert_file), OFF(cert_file_pos)),
    REF_STR("key_file", OFF(tls.key_file), OFF(key_file_pos)),
    STR("server_name", OFF(tls.server_name)),
    BOOL_D("insecure_skip_verify", OFF(tls.insecure_skip_verify), "false"),
};
#undef OFF
const struct td_conf_table td_redis_tls_table = {TABLE("redis tls", tls_keys)};

static bool given(const struct td_conf_redis_tls *t)
{
    return t->tls.ca_file || t->tls.cert_file || t->tls.key_file || t->tls.server_name ||
           t->tls.insecure_skip_verify;
}

void td_redis_conf_check(const char *who, const char *url, const struct td_conf_redis_tls *t,
                         const struct td_pos *pos, struct td_errors *errs)
{
    char err[256];
    struct td_redis_addr addr;
    if (td_redis_url_check(url, err, sizeof(err)) < 0) {
        td_errors_add(errs, pos, "%s", err);
        return;
    }
    if (td_redis_addr_parse(url, &addr, err, sizeof(err)) < 0) {
        td_errors_add(errs, pos, "%s", err);
        return;
    }
    bool tls = addr.tls;
    td_redis_addr_free(&addr);
    if (!tls) {
        if (given(t)) {
            td_errors_add(errs, pos, "%s: tls: is used with a rediss:// URL only", who);
        }
        return;
    }
    if (!t->tls.cert_file != !t->tls.key_file) {
        td_errors_add(errs, pos, "%s: tls: cert_file and key_file go together", who);
    }
    const char *files[] = {t->tls.ca_file, t->tls.cert_file, t->tls.key_file};
    const char *keys[] = {"tls.ca_file", "tls.cert_file", "tls.key_file"};
    static const enum td_tls_file_kind kinds[] = {TD_TLS_CA, TD_TLS_CERT, TD_TLS_KEY};
    const struct td_pos *at[] = {&t->ca_file_pos, &t->cert_file_pos, &t->key_file_pos};
    for (int i = 0; i < 3; i++) {
        td_tls_file_report(who, keys[i], files[i], kinds[i], at[i]->line > 0 ? at[i] : pos, errs);
    }
}

int td_redis_conf_tls(bool url_tls, const struct td_conf_redis_tls *t,
                      const struct td_redis_tls **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!url_tls) {
        if (given(t)) {
            snprintf(err, errlen, "tls: is used with a rediss:// URL only");
            return -1;
        }
        return 0;
    }
    if (!t->tls.cert_file != !t->tls.key_file) {
        snprintf(err, errlen, "tls: cert_file and key_file go together");
        return -1;
    }
    /* A wrong path or a file of the wrong kind would fail every connection: refuse to start
     * instead (check warns about it where the files are not readable). */
    const char *files[] = {t->tls.ca_file, t->tls.cert_file, t->tls.key_file};
    static const char *const keys[] = {"ca_file", "cert_file", "key_file"};
    static const enum td_tls_file_kind kinds[] = {TD_TLS_CA, TD_TLS_CERT, TD_TLS_KEY};
    for (int i = 0; i < 3; i++) {
        char why[400];
        if (files[i] && td_tls_file_check(files[i], kinds[i], why, sizeof(why)) != 0) {
            snprintf(err, errlen, "tls.%s %s", keys[i], why);
            return -1;
        }
    }
    *out = &t->tls;
    return 0;
}
