/* gcp.h - Google ID tokens from the metadata server, cached per audience (see gcp.c).
 * Threads: loop only.
 */
#ifndef TD_GCP_H
#define TD_GCP_H

struct td_creds;
struct td_loop;
struct td_http_client;

/* The shared token for (metadata_url or the default, audience), fetched at once the first
 * time: value 0 of the returned creds is the JWT. Every get is paired with a put. NULL on out
 * of memory. */
struct td_creds *td_gcp_token_get(struct td_loop *loop, struct td_http_client *http,
                                  const char *metadata_url, const char *audience);
void td_gcp_token_put(struct td_creds *creds);

#endif
