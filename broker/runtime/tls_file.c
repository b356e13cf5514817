/* tls_file.c - parses a PEM file with OpenSSL to tell whether it is the kind asked for (see
 * tls_file.h). */
#include "tls_file.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"

static const char *kind_name(enum td_tls_file_kind kind)
{
    return kind == TD_TLS_KEY  ? "a PEM private key"
           : kind == TD_TLS_CA ? "PEM CA certificates"
                               : "a PEM certificate";
}

enum td_tls_file_result td_tls_file_check(const char *path, enum td_tls_file_kind kind, char *err,
                                          size_t errlen)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(err, errlen, "%s cannot be read: %s", path, strerror(errno));
        return TD_TLS_FILE_UNREADABLE;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s cannot be read: not a regular file", path);
        return TD_TLS_FILE_UNREADABLE;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s cannot be read: %s", path, strerror(errno));
        return TD_TLS_FILE_UNREADABLE;
    }
    int n = 0;
    if (kind == TD_TLS_KEY) {
        /* no passphrase callback: an encrypted key is reported instead of prompting */
        EVP_PKEY *pk = PEM_read_PrivateKey(f, NULL, NULL, (void *)"");
        n = pk != NULL;
        EVP_PKEY_free(pk);
    } else {
        X509 *x;
        while ((x = PEM_read_X509(f, NULL, NULL, NULL))) {
            n++;
            X509_free(x);
            if (kind == TD_TLS_CERT) {
                break;
            }
        }
    }
    fclose(f);
    ERR_clear_error(); /* the end of the file, or the reason it failed: not kept */
    if (n == 0) {
        snprintf(err, errlen, "%s does not hold %s%s", path, kind_name(kind),
                 kind == TD_TLS_KEY ? " (or it is encrypted)" : "");
        return TD_TLS_FILE_INVALID;
    }
    return TD_TLS_FILE_OK;
}

void td_tls_file_report(const char *who, const char *key, const char *path,
                        enum td_tls_file_kind kind, const struct td_pos *pos,
                        struct td_errors *errs)
{
    char err[512];
    if (!path) {
        return;
    }
    switch (td_tls_file_check(path, kind, err, sizeof(err))) {
    case TD_TLS_FILE_OK:
        return;
    case TD_TLS_FILE_UNREADABLE:
        fprintf(stderr, "%s:%d:%d: warning: %s: %s %s\n", pos->file, pos->line, pos->col, who, key,
                err);
        return;
    case TD_TLS_FILE_INVALID:
        td_errors_add(errs, pos, "%s: %s %s", who, key, err);
        return;
    }
}
