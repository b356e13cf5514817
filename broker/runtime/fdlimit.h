/* fdlimit.h - the process's file-descriptor budget: raise the soft RLIMIT_NOFILE to the hard
 * limit at start (as most daemons do), and share what there is between inbound HTTP connections
 * and everything else (outbound deliveries, broker sockets, files), so that a flood of inbound
 * connections can never starve the outbound ones.
 *
 * Threads: any (td_fdlimit_raise once at start, before other threads open files).
 */
#ifndef TD_FDLIMIT_H
#define TD_FDLIMIT_H

/* Inbound connections never get more than this share of the descriptor limit: the other half
 * is the reserve for outbound connections, broker sockets, the probes listener and files. */
#define TD_FDLIMIT_INBOUND_DIVISOR 2
/* The derived default is capped here: libmicrohttpd gives each connection a 32 KiB memory pool,
 * so 4096 connections may take up to 128 MiB, within the unit's MemoryMax=512M. Configure more
 * explicitly if you need them. */
#define TD_FDLIMIT_INBOUND_MAX 4096

/* Raises the soft RLIMIT_NOFILE to the hard limit when it is lower (a failure, e.g. under a
 * seccomp filter that denies setrlimit, only leaves the limit as it was). Returns the soft limit
 * now in force (a large value when it is unlimited). */
long td_fdlimit_raise(void);

/* The total inbound connection limit for an fd limit of nofile: configured (0 = derive) clamped
 * to nofile / TD_FDLIMIT_INBOUND_DIVISOR; the derived value is that share capped at
 * TD_FDLIMIT_INBOUND_MAX. Never below 1. *clamped is set when a configured value was lowered. */
int td_fdlimit_inbound(long nofile, int configured, int *clamped);

#endif
