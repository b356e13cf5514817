/* http_done.h - what both HTTP clients on the loop share with their callers: how a finished
 * request is reported (libcurl's client, http_client.c; the lean client, http_lean.c) and the
 * User-Agent they send. Data only, so that neither client's header includes the other's.
 * Threads: loop only (the callbacks run there).
 */
#ifndef TD_HTTP_DONE_H
#define TD_HTTP_DONE_H

#include <stddef.h>
#include <stdint.h>

#include "curl_api.h"

/* What every outbound request says it is (sinks, token fetches, Lambda, OpenFaaS): a
 * User-Agent header in the request's own headers (a sink's headers:) replaces it. */
#define TD_USER_AGENT "triggerd/" TD_VERSION

struct td_http_request;

/* Called once per request when it finished: code is curl's result (the lean client gives the
 * code libcurl would); status is 0 without a response; retry_after_ms is -1 when there was no
 * Retry-After. The body (up to the cap) is valid only during the call. */
typedef void (*td_http_done_fn)(struct td_http_request *req, CURLcode code, long status,
                                int64_t retry_after_ms, const unsigned char *body, size_t len,
                                void *arg);

#endif
