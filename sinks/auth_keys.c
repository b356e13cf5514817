/* auth_keys.c - the auth: table of the HTTP-speaking sinks (http, openfaas): one table, which
 * every kind that has auth: nests (http_conf.h), and what `check` says of it. A new way to
 * authenticate goes here, and into the schema's auth definition.
 *
 * Thread: any; the tables are read-only.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf_table.h"
#include "http_conf.h"
#include "sink.h"

static const char *const azure_key_in_names[] = {"header", "query", NULL};

#define AUTH(f) offsetof(struct td_conf_auth, f)

static const struct td_conf_key basic_keys[] = {REQ_STR("user", AUTH(basic_user)),
                                                REQ_STR("password", AUTH(basic_password))};
static const struct td_conf_table basic_table = {TABLE("auth.basic", basic_keys)};
static const struct td_conf_key google_keys[] = {REQ_STR("audience", AUTH(google_audience)),
                                                 STR("metadata_url", AUTH(google_metadata_url))};
static const struct td_conf_table google_table = {TABLE("auth.google_id_token", google_keys)};
/* An URL that can never work is a load error, not a dead letter per event at run time. */
int td_sink_check_http_url(struct td_conf_loader *ld, const struct td_ynode *map, const char *key,
                           const char *url)
{
    if (!url) {
        return 0;
    }
    const char *host = strncmp(url, "http://", 7) == 0    ? url + 7
                       : strncmp(url, "https://", 8) == 0 ? url + 8
                                                          : NULL;
    if (!host) {
        ERR_AT(ld, td_conf_map_get(map, key), "'%s' must be an http:// or https:// URL", key);
        return -1;
    }
    if (!*host || *host == '/' || strpbrk(url, " \t\r\n")) {
        ERR_AT(ld, td_conf_map_get(map, key), "'%s' is not a valid URL (no host, or white space)",
               key);
        return -1;
    }
    return 0;
}

static int check_oauth2(struct td_conf_loader *ld, const struct td_ynode *map, void *base)
{
    const struct td_conf_auth *auth = base;
    return td_sink_check_http_url(ld, map, "token_url", auth->oauth2_token_url);
}
/* OAuth2 client credentials (RFC 6749 4.4, oauth2.c): the client authenticates with HTTP
 * Basic. */
static const struct td_conf_key oauth2_keys[] = {
    REQ_STR("token_url", AUTH(oauth2_token_url)),
    REQ_STR("client_id", AUTH(oauth2_client_id)),
    {.name = "client_secret",
     .type = TD_K_STR,
     .off = AUTH(oauth2_client_secret),
     .required = true,
     .cred = true},
    {.name = "scopes",
     .type = TD_K_STRLIST,
     .off = AUTH(oauth2_scopes),
     .off2 = AUTH(oauth2_nscopes)},
    STR("audience", AUTH(oauth2_audience)),
};
static const struct td_conf_table oauth2_table = {TABLE("auth.oauth2", oauth2_keys),
                                                  .check = check_oauth2};

static const struct td_conf_key auth_keys[] = {
    {.name = "bearer", .type = TD_K_STR, .off = AUTH(bearer), .group = 1, .cred = true},
    ONE_STR("bearer_file", AUTH(bearer_file)),
    {.name = "basic", .type = TD_K_NESTED, .sub = &basic_table, .group = 1},
    {.name = "google_id_token", .type = TD_K_NESTED, .sub = &google_table, .group = 1},
    {.name = "oauth2", .type = TD_K_NESTED, .sub = &oauth2_table, .group = 1},
    {.name = "azure_function_key",
     .type = TD_K_STR,
     .off = AUTH(azure_function_key),
     .group = 1,
     .cred = true},
    {.name = "azure_key_in",
     .type = TD_K_STR,
     .off = AUTH(azure_key_in),
     .names = azure_key_in_names},
};
const struct td_conf_table td_sink_auth_table = {TABLE("auth", auth_keys)};

void td_sink_auth_check(const struct td_conf_sink *k, const struct td_conf_auth *auth,
                        struct td_errors *errs)
{
    const struct td_pos *pos = &k->pos;
    if (auth->bearer_file && access(auth->bearer_file, R_OK) != 0) {
        fprintf(stderr, "%s:%d:%d: warning: sink '%s': bearer_file %s cannot be read\n", pos->file,
                pos->line, pos->col, k->name, auth->bearer_file);
    }
    if (auth->azure_key_in && !auth->azure_function_key) {
        td_errors_add(errs, pos, "sink '%s': azure_key_in needs azure_function_key", k->name);
    }
}
