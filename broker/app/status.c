/* status.c - `triggerd status` (see status.h): GET /status from the daemon the trigger file
 * describes and print it for people: one line per trigger (in flight, running, retrying,
 * dead-lettering, totals) and one per source. */
#include "status.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "curl_api.h"
#include "http_client.h"

static const char usage[] = "usage: triggerd status -c PATH [--json]\n"
                            "  -c, --config PATH   the trigger file the daemon runs with\n"
                            "  --json              print the daemon's /status JSON as it is\n"
                            "Asks the daemon at daemon.http.listen what it is doing now.\n";

struct body {
    char *data;
    size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t add = size * n;
    if (b->len + add > 16 * 1024 * 1024) {
        return 0;
    }
    char *d = realloc(b->data, b->len + add + 1);
    if (!d) {
        return 0;
    }
    memcpy(d + b->len, ptr, add);
    b->data = d;
    b->len += add;
    d[b->len] = '\0';
    return add;
}

/* "0.0.0.0:8080" -> "http://127.0.0.1:8080/status" (and [::] -> [::1]). */
static void status_url(const char *listen, char *out, size_t outlen)
{
    const char *colon = strrchr(listen, ':');
    const char *port = colon ? colon + 1 : "80";
    size_t hlen = colon ? (size_t)(colon - listen) : strlen(listen);
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)hlen, listen);
    if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0') {
        snprintf(host, sizeof(host), "127.0.0.1");
    } else if (strcmp(host, "[::]") == 0) {
        snprintf(host, sizeof(host), "[::1]");
    }
    snprintf(out, outlen, "http://%s:%s/status", host, port);
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void print_table(const cJSON *root)
{
    const cJSON *ready = cJSON_GetObjectItemCaseSensitive(root, "ready");
    printf("triggerd %s: %s%s, %.0f messages in flight, %.0f reloads (%.0f failed)\n",
           str(root, "version"), cJSON_IsTrue(ready) ? "ready" : "not ready",
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "draining")) ? ", draining" : "",
           num(root, "messages_in_flight"), num(root, "reloads"), num(root, "reload_failures"));
    const cJSON *why;
    cJSON_ArrayForEach(why, cJSON_GetObjectItemCaseSensitive(root, "not_ready"))
    {
        if (cJSON_IsString(why)) {
            printf("  not ready: %s\n", why->valuestring);
        }
    }
    printf("\n%-24s %9s %8s %6s %9s %8s %10s %10s %8s\n", "TRIGGER", "IN-FLIGHT", "RUNNING",
           "LIMIT", "RETRYING", "DL-NOW", "DELIVERED", "DEAD-LTRD", "RETRIES");
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(root, "triggers"))
    {
        /* LIMIT: the concurrency limit now (below delivery.concurrency while adaptive backs off) */
        printf("%-24s %9.0f %8.0f %6.0f %9.0f %8.0f %10.0f %10.0f %8.0f\n", str(t, "name"),
               num(t, "in_flight"), num(t, "running"), num(t, "concurrency_limit"),
               num(t, "retrying"), num(t, "dead_lettering"), num(t, "delivered"),
               num(t, "dead_lettered"), num(t, "retries"));
    }
    printf("\n%-24s %-9s %-9s %10s %10s %9s %10s\n", "SOURCE", "KIND", "CONNECTED", "RECEIVED",
           "ACKED", "IN-FLIGHT", "OLDEST-MS");
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(root, "sources"))
    {
        printf("%-24s %-9s %-9s %10.0f %10.0f %9.0f %10.0f\n", str(s, "name"), str(s, "kind"),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "connected")) ? "yes" : "no",
               num(s, "received"), num(s, "acked"), num(s, "in_flight"),
               num(s, "oldest_unacked_ms"));
    }
}

int td_status_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c') {
            path = optarg;
        } else if (c == 'j') {
            json = true;
        } else if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!path || optind < argc) {
        fputs(usage, stderr);
        return 2;
    }
    struct td_errors errs = {0};
    struct td_config *cfg = td_config_load(path, &errs);
    struct body b = {0};
    cJSON *root = NULL;
    CURL *curl = NULL;
    int rc = 2;
    if (!cfg) {
        for (size_t i = 0; i < errs.n; i++) {
            fprintf(stderr, "%s\n", errs.msgs[i]);
        }
        goto fail;
    }
    if (!cfg->daemon.http_listen) {
        fprintf(stderr, "status: %s has no daemon.http.listen to ask\n", path);
        goto fail;
    }
    if (cfg->daemon.http_tls_cert && !cfg->daemon.http_probes_listen) {
        /* It would have to trust the server certificate for an address it made up, and present
         * a client certificate when client_ca_file asks for one: the plain listener is for us. */
        fprintf(stderr,
                "status: daemon.http.listen serves HTTPS (daemon.http.tls); set "
                "daemon.http.probes_listen (plain HTTP, e.g. 127.0.0.1:8081) to ask the daemon\n");
        goto fail;
    }
    char url[512];
    /* The probes listener always serves /status; the main one only with probes_on_listen. */
    status_url(cfg->daemon.http_probes_listen ? cfg->daemon.http_probes_listen
                                              : cfg->daemon.http_listen,
               url, sizeof(url));
    rc = 1;
    curl = curl_easy_init();
    if (!curl) {
        goto fail;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, TD_USER_AGENT);
    CURLcode cc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    if (cc != CURLE_OK || code != 200 || !b.data) {
        fprintf(stderr, "status: %s: %s\n", url,
                cc != CURLE_OK ? curl_easy_strerror(cc) : "unexpected answer");
        goto fail;
    }
    if (json) {
        printf("%s\n", b.data);
        rc = 0;
        goto fail;
    }
    root = cJSON_ParseWithLength(b.data, b.len);
    if (!root) {
        fprintf(stderr, "status: %s did not answer JSON\n", url);
        goto fail;
    }
    print_table(root);
    rc = 0;
fail:
    cJSON_Delete(root);
    if (curl) {
        curl_easy_cleanup(curl);
    }
    free(b.data);
    td_errors_clear(&errs);
    td_config_free(cfg);
    return rc;
}
