/* conn_budget.h - how many connections the HTTP client's cache should be able to keep.
 *
 * libcurl's cache keeps 4 x the most requests ever in flight at once (http_client.c). That is
 * enough for one function, but triggers to several functions that are busy at different times
 * each need their own connections: the configuration says how many at most.
 */
#ifndef TD_CONN_BUDGET_H
#define TD_CONN_BUDGET_H

#include <stddef.h>

struct td_config;

/* The sum of delivery.concurrency over every use of a sink that speaks HTTP through the shared
 * client (http, openfaas, lambda) as a trigger's sink, dead_letter or reply: the most requests
 * cfg's triggers can have in flight at once, hence the most connections they can need; plus
 * one per such sink for a token or credentials fetch. Threads: any. */
size_t td_conn_budget(const struct td_config *cfg);

#endif
