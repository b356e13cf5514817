/* oauth2.h - OAuth 2.0 client-credentials tokens for HTTP sinks (auth: {oauth2}, see oauth2.c).
 * Threads: loop only.
 */
#ifndef TD_OAUTH2_H
#define TD_OAUTH2_H

struct td_conf_auth;
struct td_creds;
struct td_loop;
struct td_http_client;

/* A credential (creds.h) whose value 0 is the access token, fetched at once. The caller frees
 * it with td_creds_free. auth's strings are copied. NULL on out of memory. */
struct td_creds *td_oauth2_token_new(struct td_loop *loop, struct td_http_client *http,
                                     const struct td_conf_auth *auth);

#endif
