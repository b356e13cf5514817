/* lambda_sink.h - the Lambda sink's settings (td_conf_sink.settings of a lambda sink; its key
 * table is in lambda.c), read by lambda.c, aws.c (credentials, region) and `check`. */
#ifndef TD_LAMBDA_SINK_H
#define TD_LAMBDA_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct td_conf_lambda_sink {
    char *function;
    char *region;
    char *qualifier;
    char *invocation; /* RequestResponse | Event, default RequestResponse */
    char *payload;    /* event | data, default event */
    char *endpoint;
    char *access_key_id;
    char *secret_access_key; /* secret */
    char *session_token;     /* secret */
};

#endif
