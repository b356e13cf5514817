/* gcp.h - Google ID tokens from the metadata server, cached per audience (see gcp.c).
 * Threads: loop only.
 */
#ifndef TD_GCP_H
#define TD_GCP_H

struct td_creds;
struct td_loop;
struct td_http_client;

/* The identity URL for metadata_url (a full URL as it is; a base URL without a path, e.g.
 * "http://metadata.google.internal", gets /computeMetadata/v1/instance/service-accounts/
 * default/identity) or, without one, for env_host (GCE_METADATA_HOST: host[:port], http; NULL
 * or empty: metadata.google.internal). malloc'd, the caller frees; NULL on out of memory.
 * Threads: any. */
char *td_gcp_identity_url(const char *metadata_url, const char *env_host);

/* The shared token for (metadata_url or the default, audience), fetched at once the first
 * time: value 0 of the returned creds is the JWT. Every get is paired with a put. NULL on out
 * of memory. */
struct td_creds *td_gcp_token_get(struct td_loop *loop, struct td_http_client *http,
                                  const char *metadata_url, const char *audience);
void td_gcp_token_put(struct td_creds *creds);

#endif
