/* fuzz_redis_url.c - td_redis_addr_parse (redis://[[user]:password@]host[:port][/path]) and
 * td_redis_addr_db on any string: a parsed address has a host, a port in 1..65535 and a path;
 * a refused one leaves nothing allocated.
 */
#include "fuzz_common.h"
#include "redis_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);
    struct td_redis_addr addr;
    char err[256] = "";

    if (td_redis_addr_parse(s, &addr, err, sizeof(err)) == 0) {
        FUZZ_CHECK(addr.host[0] != '\0', "empty host for '%s'", s);
        FUZZ_CHECK(memchr(addr.host, '\0', sizeof(addr.host)) != NULL, "host not terminated");
        FUZZ_CHECK(addr.port > 0 && addr.port <= 65535, "port %d", addr.port);
        FUZZ_CHECK(addr.path != NULL, "no path");
        (void)td_redis_addr_db(&addr);
        td_redis_addr_free(&addr);
        FUZZ_CHECK(addr.user == NULL && addr.password == NULL && addr.path == NULL,
                   "td_redis_addr_free left pointers");
    } else {
        FUZZ_CHECK(err[0] != '\0', "refused without a message");
        FUZZ_CHECK(addr.user == NULL && addr.password == NULL && addr.path == NULL,
                   "a failed parse left allocations");
    }
    free(s);
    return 0;
}
