/* http_conf.h - the settings of the HTTP-speaking sinks (http.c, openfaas.c): the blocks their
 * key tables fill (td_conf_sink.settings), and the auth: table both share (auth_keys.c).
 * Read by those plugins and by `check` (credential files). The timeout is every sink's
 * (td_conf_sink.timeout_ms). Thread: any; read-only once loaded. */
#ifndef TD_HTTP_CONF_H
#define TD_HTTP_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum td_http_mode { TD_MODE_BINARY, TD_MODE_STRUCTURED };
/* client: which HTTP client delivers: auto (the lean one where the sink needs nothing only
 * libcurl has), curl, lean (an error where it does not fit). */
enum td_http_client_kind { TD_CLIENT_AUTO, TD_CLIENT_CURL, TD_CLIENT_LEAN };

struct td_conf_auth {
    char *bearer;      /* secret */
    char *bearer_file; /* re-read when it changes */
    char *basic_user;
    char *basic_password; /* secret */
    char *google_audience;
    char *google_metadata_url;
    char *azure_function_key; /* secret */
    char *azure_key_in;       /* header (x-functions-key, the default) | query (?code=) */
    /* oauth2: {token_url, client_id, client_secret, scopes, audience}: client credentials */
    char *oauth2_token_url;
    char *oauth2_client_id;
    char *oauth2_client_secret; /* secret */
    char **oauth2_scopes;
    size_t oauth2_nscopes;
    char *oauth2_audience;
};

struct td_conf_http_sink {
    char *url;
    char *service_name;      /* service: {name, namespace, port} -> url */
    char *service_namespace; /* default "default" when service is given */
    int service_port;        /* default 80 */
    enum td_http_mode mode;
    enum td_http_client_kind client;
    struct td_kv_list headers;
    char *ca_file;
    char *client_cert;
    char *client_key;
    /* where the three were written (line 0: not written), for check's messages */
    struct td_pos ca_file_pos, client_cert_pos, client_key_pos;
    struct td_conf_auth auth;
};

struct td_conf_openfaas_sink {
    char *gateway;
    char *function;
    bool async;
    char *callback_url;
    struct td_conf_auth auth;
};

struct td_conf_table;
/* auth: {bearer | bearer_file | basic | google_id_token | oauth2 | azure_function_key,
 * azure_key_in},
 * base: a struct td_conf_auth. One table for every kind that has auth: (auth_keys.c). */
extern const struct td_conf_table td_sink_auth_table;
/* `check` of an auth: block of sink k: a bearer_file that cannot be read here is a warning
 * (stderr; the daemon may run elsewhere), azure_key_in without azure_function_key an error. */
void td_sink_auth_check(const struct td_conf_sink *k, const struct td_conf_auth *auth,
                        struct td_errors *errs);

/* What makes a sink need libcurl (the lean client cannot serve it, or a token is fetched
 * with libcurl), or NULL: the sink's client: (TD_HTTP_CLIENT=curl for auto), its auth: block,
 * TLS files, a proxy in the environment, a URL the lean client does not take. */
const char *td_sink_needs_curl(enum td_http_client_kind client, const struct td_conf_auth *auth,
                               bool tls_files, const char *url, char *buf, size_t buflen);
/* `check` of sink k that needs libcurl for WHY: an error when libcurl.so.4 cannot be loaded
 * here (triggerd does not link it: curl_api.h), naming the loader's reason. */
void td_sink_curl_check(const struct td_conf_sink *k, const char *why, struct td_errors *errs);

struct td_conf_loader;
struct td_ynode;
/* A table's check of the URL under KEY of MAP: NULL passes; anything but an http:// or https://
 * URL with a host and no white space is a load error at the key. 0 or -1. */
int td_sink_check_http_url(struct td_conf_loader *ld, const struct td_ynode *map, const char *key,
                           const char *url);

#endif
