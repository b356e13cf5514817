/* redis_util.h - what the Redis source, sink and publisher share: URL parsing and what
 * `check` says of a URL (connecting is redis_conn.h's).
 * Threads: any.
 */
#ifndef TD_REDIS_UTIL_H
#define TD_REDIS_UTIL_H

#include <stdbool.h>
#include <stddef.h>

struct td_redis_addr {
    char host[256];
    int port;
    char *user;     /* malloc'd or NULL */
    char *password; /* malloc'd or NULL; a secret */
    char *path;     /* malloc'd path after the first '/', without it; "" when none */
    bool tls;       /* rediss:// */
};

/* Parses redis[s]://[[user]:password@]host[:port][/path] (rediss: TLS). 0, or -1 with a message
 * (which never contains the password). Free with td_redis_addr_free. */
int td_redis_addr_parse(const char *url, struct td_redis_addr *out, char *err, size_t errlen);
void td_redis_addr_free(struct td_redis_addr *a);
/* The database number in the path ("" -> 0), or -1 when the path is not a number. */
int td_redis_addr_db(const struct td_redis_addr *a);

/* What `triggerd check` says of a Redis URL of the trigger file: 0, or -1 with the message
 * (a URL that does not parse, or a path that is not a database number). */
int td_redis_url_check(const char *url, char *err, size_t errlen);

#endif
