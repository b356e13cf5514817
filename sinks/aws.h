/* aws.h - where the Lambda sink's AWS credentials come from (aws.c).
 *
 * In this order (the order of the AWS SDKs' default chain): the trigger file (lambda: {credentials:
 * {...}}); the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); the
 * shared credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials) and its profile
 * (AWS_PROFILE, else "default"); web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, as
 * EKS pods get them), exchanged with STS AssumeRoleWithWebIdentity on the loop and refreshed
 * before expiry (creds.c). The STS endpoint is AWS_ENDPOINT_URL_STS, else
 * https://sts.REGION.amazonaws.com.
 * Used by lambda.c at start and by `triggerd check` (resolution reads files and the
 * environment only, never the network).
 * Threads: resolution any; the web identity creds loop only.
 */
#ifndef TD_AWS_H
#define TD_AWS_H

#include <stddef.h>

#include "config.h"
#include "lambda_sink.h"

struct td_loop;
struct td_http_client;
struct td_creds;

enum td_aws_source { TD_AWS_CONFIG, TD_AWS_ENV, TD_AWS_FILE, TD_AWS_WEB_IDENTITY };

/* Resolved credentials; every string is malloc'd and freed by td_aws_resolved_clear. */
struct td_aws_resolved {
    enum td_aws_source source;
    char *access_key_id, *secret_access_key, *session_token; /* not web identity */
    char *role_arn, *token_file, *session_name;              /* web identity */
};

/* 0 and fills out, or -1 with what was looked at in err (never a secret). */
int td_aws_resolve(const struct td_conf_lambda_sink *conf, struct td_aws_resolved *out, char *err,
                   size_t errlen);
void td_aws_resolved_clear(struct td_aws_resolved *r);
const char *td_aws_source_name(enum td_aws_source s);
/* conf->region, else AWS_REGION, else AWS_DEFAULT_REGION, else NULL. */
const char *td_aws_region(const struct td_conf_lambda_sink *conf);

/* Web identity credentials: values 0, 1, 2 are the access key id, secret and session token.
 * Starts the first exchange at once. NULL on out of memory. Free with td_creds_free. */
struct td_creds *td_aws_web_identity_new(struct td_loop *loop, struct td_http_client *http,
                                         const struct td_aws_resolved *r, const char *region);

/* Parses an ISO 8601 UTC time ("2024-01-02T03:04:05Z", fractions allowed) to UNIX ms, or -1. */
long long td_aws_parse_time_ms(const char *s);
/* The text between <tag> and </tag> in xml (malloc'd), or NULL. */
char *td_xml_text(const char *xml, size_t len, const char *tag);

#endif
