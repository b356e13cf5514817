/* ingress.h - the HTTP ingress source's settings (td_conf_source.settings of an http source;
 * its key table is in ingress.c), read by ingress.c and `check` (paths must differ). */
#ifndef TD_INGRESS_H
#define TD_INGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct td_conf_http_source {
    char *path;
    char *bearer;     /* secret */
    int64_t max_size; /* default 1MiB */
    /* auth: {jwt: {jwks_file | jwks_url, issuer, audience}}: bearer tokens verified against a
     * JWKS (jwks.c) */
    char *jwt_jwks_file, *jwt_jwks_url, *jwt_issuer, *jwt_audience;
    struct td_pos jwt_jwks_file_pos;
};

#endif
