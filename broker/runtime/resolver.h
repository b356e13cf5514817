/* resolver.h - host names resolved off the loop.
 *
 * getaddrinfo blocks (a slow or unreachable DNS server holds it for seconds), so it never runs
 * on the loop: a resolver has one worker thread, started at its first lookup, that runs the
 * lookups in order and hands each answer back to the loop through an eventfd the loop watches.
 * One thread is enough: lookups are rare (a cache in the caller keeps each answer for a while)
 * and a second one would only queue behind the same DNS server. The daemon has one resolver per
 * loop, owned by its HTTP client (td_http_client_resolver) and shared by the lean HTTP client
 * and the Redis sinks.
 * Threads: the calls below are loop only; the worker is the resolver's own.
 */
#ifndef TD_RESOLVER_H
#define TD_RESOLVER_H

#include <stddef.h>
#include <sys/socket.h>

struct td_loop;
struct td_resolver;
struct td_resolve;

#define TD_RESOLVE_MAX_ADDRS 8
/* How long a caller uses a name's addresses before it looks the name up again: libcurl's
 * CURLOPT_DNS_CACHE_TIMEOUT default, so a Service or pod that moves is found as soon as with
 * libcurl. */
#define TD_RESOLVE_TTL_MS 60000

/* An answer: up to TD_RESOLVE_MAX_ADDRS stream addresses in getaddrinfo's order (RFC 6724:
 * the one to try first is first), or err (getaddrinfo's EAI_* code; gai_strerror says it). */
struct td_resolve_result {
    int err;
    size_t n;
    struct sockaddr_storage addrs[TD_RESOLVE_MAX_ADDRS];
    socklen_t lens[TD_RESOLVE_MAX_ADDRS];
};

/* Called on the loop with the answer (borrowed for the call). It may start or cancel lookups,
 * but must not free the resolver (the other answers of the same wake-up are still to come). */
typedef void (*td_resolve_fn)(const struct td_resolve_result *res, void *arg);

/* A resolver for loop; NULL on out of memory. No thread runs until the first lookup. */
struct td_resolver *td_resolver_new(struct td_loop *loop);
/* Frees r: lookups not answered yet are dropped (their callbacks never run). A lookup the
 * worker is in the middle of finishes on the worker, which then exits and frees what it
 * shares with r; an idle worker is joined. NULL is a no-op. */
void td_resolver_free(struct td_resolver *r);

/* Looks up host (a name or an address literal) for port (a number as text), TCP. fn(arg) runs
 * later on the loop, never from inside this call. Returns a handle for td_resolve_cancel
 * (valid until fn runs or it is cancelled), or NULL on out of memory or when the worker thread
 * cannot start (fn is not called). */
struct td_resolve *td_resolve_start(struct td_resolver *r, const char *host, const char *port,
                                    td_resolve_fn fn, void *arg);
/* Drops q: its callback never runs. */
void td_resolve_cancel(struct td_resolver *r, struct td_resolve *q);

/* Lookups started and not answered (for tests and status). */
size_t td_resolver_pending(const struct td_resolver *r);

/* Tests only: answers every lookup of every resolver with fn instead of getaddrinfo (NULL: back
 * to getaddrinfo), so that a test can hand a name several addresses or a failure. fn runs on the
 * worker thread and fills out (err, or n addresses). */
typedef void (*td_resolve_lookup_fn)(const char *host, const char *port,
                                     struct td_resolve_result *out);
void td_resolver_set_lookup(td_resolve_lookup_fn fn);

#endif
