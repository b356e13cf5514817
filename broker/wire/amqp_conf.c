/* amqp_conf.c - the tls: block and auth_mechanism of RabbitMQ sources and sinks (see
 * amqp_conf.h). */
#include "amqp_conf.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_util.h"
#include "tls_file.h"

#define OFF(f) offsetof(struct td_amqp_tls, f)
static const struct td_conf_key amqp_tls_keys[] = {
    REF_STR("ca_file", OFF(ca_file), OFF(ca_file_pos)),
    REF_STR("cert_file", OFF(cert_file), OFF(cert_file_pos)),
    REF_STR("key_file", OFF(key_file), OFF(key_file_pos)),
    STR("server_name", OFF(server_name)),
    BOOL_D("insecure_skip_verify", OFF(insecure_skip_verify), "false"),
};
#undef OFF

static int check_amqp_tls(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    const struct td_amqp_tls *t = base;
    if ((t->cert_file == NULL) != (t->key_file == NULL)) {
        ERR_AT(ld, map, "tls: cert_file and key_file go together");
        return -1;
    }
    if (t->insecure_skip_verify && (t->ca_file || t->server_name)) {
        ERR_AT(ld, td_conf_map_get(map, "insecure_skip_verify"),
               "tls: insecure_skip_verify: true verifies nothing, so ca_file and server_name "
               "would be ignored; remove one or the other");
        return -1;
    }
    return 0;
}

const struct td_conf_table td_amqp_tls_table = {TABLE("tls", amqp_tls_keys),
                                                .check = check_amqp_tls};

const char *const td_amqp_auth_names[] = {"plain", "external", NULL};

/* Copies VALUE into *SLOT unless the URL set it already (then an error naming both). */
static int merge(char **slot, const char *value, const char *url_key, const char *key, char *err,
                 size_t errlen)
{
    if (!value) {
        return 0;
    }
    if (*slot) {
        snprintf(err, errlen, "%s is given twice: in the URL (%s) and as tls.%s; keep one", key,
                 url_key, key);
        return -1;
    }
    *slot = strdup(value);
    if (!*slot) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int td_amqp_addr_from_conf(const char *url, const struct td_amqp_tls *tls, int auth,
                           bool check_files, struct td_amqp_addr *a, char *err, size_t errlen)
{
    if (td_amqp_addr_parse(url, false, a, err, errlen) < 0) {
        return -1;
    }
    if (merge(&a->cacert, tls->ca_file, "cacertfile", "ca_file", err, errlen) < 0 ||
        merge(&a->cert, tls->cert_file, "certfile", "cert_file", err, errlen) < 0 ||
        merge(&a->key, tls->key_file, "keyfile", "key_file", err, errlen) < 0 ||
        merge(&a->server_name, tls->server_name, "server_name_indication", "server_name", err,
              errlen) < 0) {
        goto fail;
    }
    a->insecure = tls->insecure_skip_verify;
    if (auth == TD_AMQP_AUTH_EXTERNAL) {
        a->external = true;
    }
    if (td_amqp_addr_validate(a, "tls.cert_file", "tls.key_file", err, errlen) < 0) {
        goto fail;
    }
    if (check_files) {
        const char *files[] = {a->insecure ? NULL : a->cacert, a->cert, a->key};
        static const enum td_tls_file_kind kinds[] = {TD_TLS_CA, TD_TLS_CERT, TD_TLS_KEY};
        static const char *const keys[] = {"tls.ca_file", "tls.cert_file", "tls.key_file"};
        for (int i = 0; i < 3; i++) {
            char why[400];
            if (files[i] && td_tls_file_check(files[i], kinds[i], why, sizeof(why)) != 0) {
                snprintf(err, errlen, "%s: %s", keys[i], why);
                goto fail;
            }
        }
    }
    return 0;
fail:
    td_amqp_addr_free(a);
    return -1;
}

void td_amqp_conf_check(const char *who, const char *url, const struct td_amqp_tls *tls, int auth,
                        const struct td_pos *pos, struct td_errors *errs, struct td_errors *warns)
{
    struct td_amqp_addr a;
    char err[512];
    if (!url) {
        return;
    }
    if (td_amqp_addr_from_conf(url, tls, auth, false, &a, err, sizeof(err)) < 0) {
        if (errs) {
            td_errors_add(errs, pos, "%s: %s", who, err);
        }
        return;
    }
    if (a.insecure && warns) {
        td_errors_add(warns, pos,
                      "warning: %s: tls.insecure_skip_verify: true accepts any server certificate "
                      "(anyone on the path can read and change the messages)",
                      who);
    }
    /* the merged paths: from the block (reported at its key) or from the URL (at POS) */
    const char *files[] = {a.insecure ? NULL : a.cacert, a.cert, a.key};
    const char *inblock[] = {tls->ca_file, tls->cert_file, tls->key_file};
    const struct td_pos *at[] = {&tls->ca_file_pos, &tls->cert_file_pos, &tls->key_file_pos};
    static const enum td_tls_file_kind kinds[] = {TD_TLS_CA, TD_TLS_CERT, TD_TLS_KEY};
    static const char *const keys[] = {"tls.ca_file", "tls.cert_file", "tls.key_file"};
    static const char *const url_keys[] = {"url cacertfile", "url certfile", "url keyfile"};
    for (int i = 0; i < 3; i++) {
        bool block = inblock[i] != NULL;
        const struct td_pos *where = block && at[i]->line > 0 ? at[i] : pos;
        const char *key = block ? keys[i] : url_keys[i];
        if (!files[i]) {
            continue;
        }
        switch (td_tls_file_check(files[i], kinds[i], err, sizeof(err))) {
        case TD_TLS_FILE_OK:
            break;
        case TD_TLS_FILE_UNREADABLE: /* it may exist only where the daemon runs */
            if (warns) {
                td_errors_add(warns, where, "warning: %s: %s %s", who, key, err);
            }
            break;
        case TD_TLS_FILE_INVALID:
            if (errs) {
                td_errors_add(errs, where, "%s: %s %s", who, key, err);
            }
            break;
        }
    }
    td_amqp_addr_free(&a);
}
