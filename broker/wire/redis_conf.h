/* redis_conf.h - the `tls:` block beside a Redis `url` (the Redis source, the Redis sink and so
 * the Redis dead-letter target): its key table, what `check` says of it, and what the daemon
 * checks before it starts. Threads: any.
 */
#ifndef TD_REDIS_CONF_H
#define TD_REDIS_CONF_H

#include <stddef.h>

#include "config.h"
#include "redis_conn.h"

/* The block as the loader fills it (td_redis_tls_table): the settings and where the file
 * names were written (for check's file:line:column). */
struct td_conf_redis_tls {
    struct td_redis_tls tls;
    struct td_pos ca_file_pos, cert_file_pos, key_file_pos;
};

/* tls: {ca_file, cert_file, key_file, server_name, insecure_skip_verify} */
extern const struct td_conf_table td_redis_tls_table;

/* `check` of a Redis url and its tls block (written at POS, by WHO): the URL as the plugins parse
 * it, a tls block beside a redis:// URL (TLS is rediss://), cert_file without key_file, and the
 * files (td_tls_file_report: unreadable here is a warning, not a PEM of the right kind an
 * error, each at the position of its key). */
void td_redis_conf_check(const char *who, const char *url, const struct td_conf_redis_tls *t,
                         const struct td_pos *pos, struct td_errors *errs);

/* What the source and sink ask before they start: the TLS settings to connect with (NULL for a
 * redis:// URL), after checking that the files can be read and are what they should be.
 * 0, or -1 with a message (never a file's content). */
int td_redis_conf_tls(bool url_tls, const struct td_conf_redis_tls *t,
                      const struct td_redis_tls **out, char *err, size_t errlen);

#endif
