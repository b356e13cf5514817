/* tls_file.h - is this file a usable PEM certificate, CA bundle or private key?
 *
 * `triggerd check` and the daemon's start both look at the TLS files a trigger file names (an
 * HTTP sink's ca_file / client_cert / client_key, the ingress's cert_file / key_file /
 * client_ca_file) before any connection needs them, so that a wrong path or a file of the wrong
 * kind is reported where it was written instead of as a failed handshake per event.
 * The private key's content never reaches a message.
 * Threads: any.
 */
#ifndef TD_TLS_FILE_H
#define TD_TLS_FILE_H

#include <stddef.h>

enum td_tls_file_kind {
    TD_TLS_CERT, /* one certificate (maybe followed by its chain) */
    TD_TLS_CA,   /* one or more CA certificates */
    TD_TLS_KEY   /* a private key, not encrypted */
};

enum td_tls_file_result {
    TD_TLS_FILE_OK = 0,
    TD_TLS_FILE_UNREADABLE = -1, /* missing, a directory, no permission */
    TD_TLS_FILE_INVALID = -2     /* read, but not what kind asks for */
};

/* Reads path and parses it as kind. On failure, err says why (never the content). */
enum td_tls_file_result td_tls_file_check(const char *path, enum td_tls_file_kind kind, char *err,
                                          size_t errlen);

struct td_pos;
struct td_errors;
/* `triggerd check` of one TLS file written at POS (by WHO, under KEY): one that cannot be read
 * here is a warning on stderr (it may exist only where the daemon runs; `run` refuses to start
 * without it), one that is read but is not KIND an error in ERRS. PATH NULL: nothing. */
void td_tls_file_report(const char *who, const char *key, const char *path,
                        enum td_tls_file_kind kind, const struct td_pos *pos,
                        struct td_errors *errs);

#endif
