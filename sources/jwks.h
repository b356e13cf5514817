/* jwks.h - verifies JWT bearer tokens against the public keys of a JWKS file (the ingress's
 * auth: {jwt: {jwks_file, issuer, audience}}, as Knative's OIDC feature does for broker
 * ingress).
 *
 * Accepted: compact JWS tokens signed with RS256 (RSA keys, "kty": "RSA") or ES256 (P-256 keys,
 * "kty": "EC"), checked with OpenSSL; any other "alg" ("none", HS256, ...) is refused, so a
 * public key can never be used as an HMAC secret. Claims: "exp" is required and must be in the
 * future, "nbf" (when present) in the past, both with TD_JWKS_LEEWAY_S of clock skew; "iss" must
 * equal issuer; "aud" (a string or an array) must contain audience.
 * The JWKS file is read again when it changes (its mtime, size or inode; looked at at most once
 * a second), so keys rotate without a restart; a changed file that cannot be used leaves the
 * old keys in place (and is logged once).
 * Ownership: td_jwks_new copies its strings; td_jwks_free frees everything.
 * Threads: any; td_jwks_verify may run on several threads at once (a mutex guards the keys).
 */
#ifndef TD_JWKS_H
#define TD_JWKS_H

#include <stddef.h>

#define TD_JWKS_LEEWAY_S 30

struct td_jwks;

/* One of jwks_file and jwks_url (NULL the other). A file is read now: NULL with a message when
 * it cannot be read or holds no usable key. A URL is fetched by a thread of the verifier's own
 * (blocking libcurl, 10 s timeout), at once, then every 5 minutes (5 s after a failure), and
 * sooner when a token names a kid it does not know (at most every 5 s); until the first answer
 * every token is refused. what names the owner in log lines ("source 'in'"). */
struct td_jwks *td_jwks_new(const char *what, const char *jwks_file, const char *jwks_url,
                            const char *issuer, const char *audience, char *err, size_t errlen);
/* Stops the fetch thread (waiting for a fetch running to end). NULL is a no-op. */
void td_jwks_free(struct td_jwks *j);

/* 0 when token (the part after "Bearer ") is valid now, else -1 and why (never the token). */
int td_jwks_verify(struct td_jwks *j, const char *token, char *why, size_t whylen);

/* Parses a JWKS document: the number of usable keys (0 when none), or -1 with a message when
 * it is not a JWKS. For `triggerd check`. */
int td_jwks_check_file(const char *jwks_file, char *err, size_t errlen);

#endif
