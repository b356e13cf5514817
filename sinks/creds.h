/* creds.h - a credential fetched over HTTP on the loop and refreshed before it expires.
 *
 * Google ID tokens (from the metadata server, gcp.c) and AWS session credentials (from STS
 * AssumeRoleWithWebIdentity, aws.c) work the same way: one request gives up to
 * TD_CREDS_NVALS strings and an expiry; the value is used until shortly before it expires and
 * fetched again in the background a quarter of its lifetime (at most 5 minutes) before that,
 * so deliveries never wait once the first value arrived. The fetch is a request on the loop's
 * shared libcurl client: nothing ever blocks the loop. A failed fetch is retried with a
 * capped backoff; the old value keeps being used while it is still valid.
 *
 * A delivery that finds no valid value waits (td_creds_wait) until the fetch that is running
 * ends; when none can run now (backing off after a failure) it is told so at once and fails
 * as a retryable attempt.
 *
 * Values are secrets: they are never logged, and neither are the answers they came from.
 * Ownership: td_creds_new takes ctx (freed by the provider's free_ctx); values returned by
 * td_creds_get stay valid until the next loop callback.
 * Threads: loop only.
 */
#ifndef TD_CREDS_H
#define TD_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "curl_api.h"

struct td_loop;
struct td_http_client;
struct td_creds;

#define TD_CREDS_NVALS 3

struct td_creds_provider {
    const char *what; /* "Google ID token", used in log lines and attempt reasons */
    /* Configures easy (URL, body, options) and may add headers for one fetch: 0, or -1 with a
     * message (the fetch then fails like a failed request). */
    int (*prepare)(void *ctx, CURL *easy, struct curl_slist **headers, char *err, size_t errlen);
    /* Parses a 2xx answer into vals (malloc'd, the caller frees) and *expires_wall_ms (UNIX
     * milliseconds; 0 when unknown). 0, or -1 with a message. */
    int (*parse)(void *ctx, const unsigned char *body, size_t len, char **vals,
                 int64_t *expires_wall_ms, char *err, size_t errlen);
    void (*free_ctx)(void *ctx);
};

struct td_creds_waitlist;

/* One delivery waiting for a value. Embedded (usually first) in the waiting attempt, which
 * owns it; creds.c links it into the credential's queue and into the owner's waitlist. */
struct td_creds_waiter {
    struct td_creds_waiter *prev, *next;   /* in the credential's queue */
    struct td_creds_waiter *lprev, *lnext; /* in the owner's waitlist */
    struct td_creds_waitlist *list;        /* that waitlist while queued, else NULL */
    /* Runs once, from a loop callback, after w left the queue and the waitlist: err is NULL
     * when td_creds_get() has a value now. */
    void (*fn)(struct td_creds_waiter *w, const char *err);
};

/* The waiters one owner (a sink) has queued. A credential may serve several sinks (the Google
 * token of an audience is shared), so a sink that goes away takes back exactly its own
 * waiters with td_creds_waitlist_pop. Zero-initialised is empty. */
struct td_creds_waitlist {
    struct td_creds_waiter *head;
};

/* NULL on out of memory (ctx is freed then). Nothing is fetched before td_creds_start. */
struct td_creds *td_creds_new(struct td_loop *loop, struct td_http_client *http,
                              const struct td_creds_provider *p, void *ctx);
/* Cancels a running fetch and the timers; waiters still queued are dropped without a call.
 * NULL is a no-op. */
void td_creds_free(struct td_creds *c);
/* Starts the first fetch (no-op when one ran or runs already). */
void td_creds_start(struct td_creds *c);
/* Value i of the current credential while it is valid, else NULL. */
const char *td_creds_get(struct td_creds *c, int i);
/* Queues w (w->fn set by the caller) for the fetch that is running, starting one if needed,
 * and adds it to list (the owner's, never NULL): 0. When none can run now (backoff after a
 * failure), -1 with the last failure in err, and w is queued nowhere. */
int td_creds_wait(struct td_creds *c, struct td_creds_waitlist *list, struct td_creds_waiter *w,
                  char *err, size_t errlen);
/* Takes w out of the queue and its waitlist without calling it (no-op when not queued). */
void td_creds_cancel(struct td_creds *c, struct td_creds_waiter *w);
/* Cancels the first waiter of list and returns it (the caller frees what embeds it), or NULL
 * when the list is empty: `while ((w = td_creds_waitlist_pop(c, l))) free(w);` at teardown. */
struct td_creds_waiter *td_creds_waitlist_pop(struct td_creds *c, struct td_creds_waitlist *list);
/* The server a value was sent to refused it (HTTP 401): gen is td_creds_fetches() as it was when
 * the value was read. Unless a newer value arrived since, the current one is no longer used and
 * a new one is fetched now, so that many deliveries refused at once cause one fetch. */
void td_creds_refused(struct td_creds *c, uint64_t gen);
/* Fetches that succeeded / failed so far (for tests and status). */
uint64_t td_creds_fetches(const struct td_creds *c);

/* Helpers for providers. Decodes base64url (no padding needed); malloc'd, NUL-terminated, or
 * NULL. */
unsigned char *td_base64url_decode(const char *in, size_t len, size_t *outlen);
/* The "exp" claim of a JWT in UNIX seconds, or -1. */
int64_t td_jwt_exp(const char *jwt);
/* A JSON number of seconds (exp, expires_in, ...) as an int64: -1 when it is not a finite
 * number above 0, and clamped to TD_CREDS_MAX_EPOCH_S, so that converting it and multiplying by
 * 1000 can neither overflow nor be an out-of-range cast ("exp": 1e17, 1e300). */
#define TD_CREDS_MAX_EPOCH_S 253402300799LL /* 9999-12-31T23:59:59Z */
int64_t td_creds_seconds(double d);
/* Reads a small secret file (at most 64 KiB) without its trailing whitespace: malloc'd, or
 * NULL with a message (which never includes the content). */
char *td_read_secret_file(const char *path, char *err, size_t errlen);

#endif
