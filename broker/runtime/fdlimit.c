/* fdlimit.c - the descriptor budget (see fdlimit.h). The issue it answers: with the default
 * `ulimit -n 1024` and no connection limit, 2,000 idle TCP connections used every descriptor,
 * so probes, ingress and even outbound deliveries failed with EMFILE until they timed out. */
#include "fdlimit.h"

#include <limits.h>
#include <sys/resource.h>

long td_fdlimit_raise(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        return 1024; /* cannot happen on Linux; assume the usual default */
    }
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
            rl.rlim_cur = rl.rlim_max;
        }
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)INT_MAX) {
        return INT_MAX;
    }
    return (long)rl.rlim_cur;
}

int td_fdlimit_inbound(long nofile, int configured, int *clamped)
{
    long share = nofile / TD_FDLIMIT_INBOUND_DIVISOR;
    long n;
    *clamped = 0;
    if (share < 1) {
        share = 1;
    }
    if (configured > 0) {
        n = configured;
        if (n > share) {
            n = share;
            *clamped = 1;
        }
    } else {
        n = share < TD_FDLIMIT_INBOUND_MAX ? share : TD_FDLIMIT_INBOUND_MAX;
    }
    return (int)n;
}
