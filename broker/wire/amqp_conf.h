/* amqp_conf.h - the trigger-file keys a RabbitMQ source and a RabbitMQ sink share for a secure
 * connection: `tls: {ca_file, cert_file, key_file, server_name, insecure_skip_verify}` and
 * `auth_mechanism: plain | external`, their key table, and how they are merged into a parsed
 * AMQP URL (amqp_util.h) for the daemon, `redrive` and `check`.
 *
 * The URL's own query keys (cacertfile, certfile, keyfile, server_name_indication,
 * auth_mechanism) still work; a setting given both in the URL and in the block is refused, so
 * that no one has to guess which wins.
 * Ownership: the strings belong to the settings block (the loader frees them through the table).
 * Threads: any.
 */
#ifndef TD_AMQP_CONF_H
#define TD_AMQP_CONF_H

#include <stdbool.h>

#include "config.h"
#include "conf_table.h"

struct td_amqp_addr;

enum td_amqp_auth_mechanism { TD_AMQP_AUTH_PLAIN, TD_AMQP_AUTH_EXTERNAL };

struct td_amqp_tls {
    char *ca_file; /* PEM CA bundle; NULL: the system's */
    struct td_pos ca_file_pos;
    char *cert_file; /* PEM client certificate (and chain) */
    struct td_pos cert_file_pos;
    char *key_file; /* its PEM private key, not encrypted (never logged) */
    struct td_pos key_file_pos;
    char *server_name;         /* the name the server's certificate must carry; NULL: the host */
    bool insecure_skip_verify; /* no chain or name verification: tests only */
};

/* The tls: block's keys (base: a struct td_amqp_tls). */
extern const struct td_conf_table td_amqp_tls_table;
/* "plain", "external": the values of auth_mechanism (enum td_amqp_auth_mechanism). */
extern const char *const td_amqp_auth_names[];

/* Parses URL into A and merges TLS and AUTH in (td_amqp_addr_validate's rules, with the trigger
 * file's key names). When CHECK_FILES, every TLS file named (in the block or the URL) must be
 * readable and of its kind (tls_file.h), so a daemon refuses to start instead of failing each
 * handshake. 0, or -1 with a message (never the password or a key's content); A is then freed. */
int td_amqp_addr_from_conf(const char *url, const struct td_amqp_tls *tls, int auth,
                           bool check_files, struct td_amqp_addr *a, char *err, size_t errlen);

/* `triggerd check` (and `run`, a reload) of one RabbitMQ source or sink (WHO: "source 'x'"),
 * written at POS. Into ERRS (NULL: not looked for): the URL and settings do not merge, a TLS file
 * is read but is not of its kind (at the key's file:line:column; a file named in the URL at POS).
 * Into WARNS (NULL: not looked for): a TLS file cannot be read here (it may exist only where the
 * daemon runs; the daemon refuses to start without it), insecure_skip_verify is on. The same
 * format as td_tls_file_report, but collected, so that `run` logs it instead of printing it. */
void td_amqp_conf_check(const char *who, const char *url, const struct td_amqp_tls *tls, int auth,
                        const struct td_pos *pos, struct td_errors *errs, struct td_errors *warns);

#endif
