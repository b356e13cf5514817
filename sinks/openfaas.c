/* openfaas.c - the OpenFaaS sink: the CloudEvent in binary mode to the gateway, at
 * POST /function/NAME (synchronous: the function's answer is the outcome, and may be a reply
 * event) or POST /async-function/NAME (the gateway queues it and answers 202 Accepted; its
 * queue worker POSTs the function's result to callback_url, sent as X-Callback-Url). Basic
 * auth for the gateway comes from auth: {basic: {user, password}}. Delivery, classification
 * and replies are http.c's (http_sink.h); this file only builds the target.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_table.h"
#include "http_conf.h"
#include "http_sink.h"
#include "sink.h"

static int openfaas_init(struct td_sink *k, char *err, size_t errlen)
{
    struct td_http_client *http = k->http;
    const struct td_conf_openfaas_sink *conf = k->conf->settings;
    if (!conf->gateway || !conf->function) {
        snprintf(err, errlen, "sink '%s': openfaas needs gateway and function", k->name);
        return -1;
    }
    size_t glen = strlen(conf->gateway);
    while (glen > 0 && conf->gateway[glen - 1] == '/') {
        glen--;
    }
    size_t n = glen + strlen(conf->function) + 32;
    struct td_http_target t = {
        .url = malloc(n),
        .mode = TD_MODE_BINARY, /* what OpenFaaS functions (of-watchdog templates) expect */
        .timeout_ms = k->conf->timeout_ms,
        .auth = &conf->auth,
        .callback_url = conf->async ? conf->callback_url : NULL,
        .prefer_reply = !conf->async,
    };
    if (!t.url) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(t.url, n, "%.*s/%s/%s", (int)glen, conf->gateway,
             conf->async ? "async-function" : "function", conf->function);
    return td_http_sink_setup(k, http, &t, err, errlen);
}

/* ---- settings: openfaas: {gateway, function, async, callback_url, auth, timeout} ---- */
#define OFF(f) offsetof(struct td_conf_openfaas_sink, f)

static const struct td_conf_key openfaas_sink_keys[] = {
    REQ_STR("gateway", OFF(gateway)),
    REQ_STR("function", OFF(function)),
    BOOL_D("async", OFF(async), "false"),
    STR("callback_url", OFF(callback_url)),
    NESTED("auth", OFF(auth), &td_sink_auth_table),
    TD_SINK_TIMEOUT,
};
/* At load, so that `check` refuses what `run` cannot start with: the function's name goes into
 * the URL's path as it is, and the callback URL is a header the gateway's queue worker POSTs
 * to. The gateway is not checked here: libcurl takes one without a scheme as http://. */
static int check_openfaas_sink(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    const struct td_conf_openfaas_sink *c = base;
    if (c->function && c->function[strcspn(c->function, "/?# \t\r\n")]) {
        /* not shown: it may have come from ${VAR} */
        ERR_AT(ld, td_conf_map_get(map, "function"),
               "'function' must be a plain name (no '/', '?', '#' or blanks)");
        return -1;
    }
    return td_sink_check_http_url(ld, map, "callback_url", c->callback_url);
}
static const struct td_conf_table openfaas_sink_table = {TABLE("openfaas sink", openfaas_sink_keys),
                                                         .check = check_openfaas_sink};
#undef OFF

/* `check`: the auth: block. */
static void openfaas_check(const struct td_conf_sink *k, struct td_errors *errs)
{
    const struct td_conf_openfaas_sink *c = TD_SETTINGS(k, struct td_conf_openfaas_sink);
    td_sink_auth_check(k, &c->auth, errs);
    char buf[160];
    td_sink_curl_check(
        k, td_sink_needs_curl(TD_CLIENT_AUTO, &c->auth, false, c->gateway, buf, sizeof(buf)), errs);
}

const struct td_sink_desc td_sink_openfaas = {
    TD_SINK_KIND("openfaas", TD_SINK_OPENFAAS, &openfaas_sink_table, struct td_conf_openfaas_sink),
    .uses_http = true, .init = openfaas_init, .check = openfaas_check};
