/* test_daemon_http.c - the daemon.http limits (issue 11): the descriptor budget that bounds
 * inbound connections (broker/runtime/fdlimit.c), the daemon.http keys with their defaults and
 * checks (broker/config/conf_keys_source.c), and ${credential:NAME}, the interpolation that reads
 * systemd's LoadCredential= files from $CREDENTIALS_DIRECTORY.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "fdlimit.h"

static char g_dir[64];

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
}

/* Loads TEXT as a trigger file; returns the config (NULL on errors, the first in err). */
static struct td_config *load(const char *text, char *err, size_t errlen)
{
    char path[128];
    struct td_errors errs = {0};
    snprintf(path, sizeof(path), "%s/t.yaml", g_dir);
    write_file(path, text);
    struct td_config *cfg = td_config_load(path, &errs);
    snprintf(err, errlen, "%s", errs.n ? errs.msgs[0] : "");
    td_errors_clear(&errs);
    return cfg;
}

#define REST                                                                                       \
    "sources: {s: {redis: {url: 'redis://localhost', stream: st}}}\n"                              \
    "sinks: {k: {http: {url: 'http://k/'}}}\n"                                                     \
    "triggers: [{name: t, source: s, sink: k}]\n"

static void test_inbound_share(void **state)
{
    int clamped;
    /* The default under `ulimit -n 1024`: half, so outbound keeps the other half. */
    assert_int_equal(td_fdlimit_inbound(1024, 0, &clamped), 512);
    assert_int_equal(clamped, 0);
    /* Large limits: capped. */
    assert_int_equal(td_fdlimit_inbound(1048576, 0, &clamped), TD_FDLIMIT_INBOUND_MAX);
    /* A configured value is kept when it fits... */
    assert_int_equal(td_fdlimit_inbound(65536, 2000, &clamped), 2000);
    assert_int_equal(clamped, 0);
    /* ...and lowered when it would leave outbound nothing (the 2,000-connection outage). */
    assert_int_equal(td_fdlimit_inbound(1024, 2000, &clamped), 512);
    assert_int_equal(clamped, 1);
    assert_int_equal(td_fdlimit_inbound(1, 0, &clamped), 1);
}

static void test_raise(void **state)
{
    struct rlimit before, after;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &before), 0);
    if (before.rlim_max == RLIM_INFINITY || before.rlim_max < 64) {
        skip();
    }
    struct rlimit low = {.rlim_cur = 32, .rlim_max = before.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    long n = td_fdlimit_raise();
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &after), 0);
    assert_int_equal(after.rlim_cur, before.rlim_max);
    assert_int_equal(n, (long)before.rlim_max);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &before), 0);
}

static void test_defaults(void **state)
{
    char err[512];
    struct td_config *cfg =
        load("version: 1\ndaemon: {http: {listen: '127.0.0.1:8080'}}\n" REST, err, sizeof(err));
    assert_non_null(cfg);
    assert_int_equal(cfg->daemon.http_max_connections, 0);
    assert_int_equal(cfg->daemon.http_max_connections_per_ip, 64);
    assert_int_equal(cfg->daemon.http_request_timeout_ms, 15000);
    assert_null(cfg->daemon.http_probes_listen);
    assert_true(cfg->daemon.http_probes_on_listen);
    td_config_free(cfg);

    cfg = load("version: 1\ndaemon: {http: {listen: '127.0.0.1:8080', probes_listen: "
               "'0.0.0.0:8081', probes_on_listen: false, max_connections: 300, "
               "max_connections_per_ip: 0, request_timeout: 20s}}\n" REST,
               err, sizeof(err));
    assert_non_null(cfg);
    assert_string_equal(cfg->daemon.http_probes_listen, "0.0.0.0:8081");
    assert_false(cfg->daemon.http_probes_on_listen);
    assert_int_equal(cfg->daemon.http_max_connections, 300);
    assert_int_equal(cfg->daemon.http_max_connections_per_ip, 0);
    assert_int_equal(cfg->daemon.http_request_timeout_ms, 20000);
    td_config_free(cfg);
}

static void test_checks(void **state)
{
    static const struct {
        const char *http;
        const char *msg;
    } cases[] = {
        {"{listen: '127.0.0.1:8080', request_timeout: 500ms}", "'request_timeout' must be between"},
        {"{listen: '127.0.0.1:8080', probes_listen: nowhere}", "'probes_listen' must be host:port"},
        {"{listen: '127.0.0.1:8080', probes_listen: '127.0.0.1:8080'}", "must differ from"},
        {"{listen: '127.0.0.1:8080', probes_on_listen: false}", "needs 'probes_listen'"},
        {"{listen: '127.0.0.1:8080', max_connections_per_ip: -1}",
         "'max_connections_per_ip' must be at least 0"},
        {"{listen: '127.0.0.1:8080', max_connection: 5}", "unknown key 'max_connection'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[1024], err[512];
        snprintf(text, sizeof(text), "version: 1\ndaemon: {http: %s}\n" REST, cases[i].http);
        struct td_config *cfg = load(text, err, sizeof(err));
        if (cfg || !strstr(err, cases[i].msg)) {
            fail_msg("case %zu: want '%s', got '%s'", i, cases[i].msg, err);
        }
    }
}

static void test_credential(void **state)
{
    char err[512], path[128];
    bool secret;
    snprintf(path, sizeof(path), "%s/token", g_dir);
    write_file(path, "s3cret\n");

    setenv("CREDENTIALS_DIRECTORY", g_dir, 1);
    char *s = td_interpolate("Bearer ${credential:token}", &secret, err, sizeof(err));
    assert_non_null(s);
    assert_string_equal(s, "Bearer s3cret");
    assert_true(secret);
    free(s);

    assert_null(td_interpolate("${credential:missing}", &secret, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot read"));
    assert_null(strstr(err, "s3cret"));
    assert_null(td_interpolate("${credential:../token}", &secret, err, sizeof(err)));
    assert_string_equal(err, "${credential:NAME} needs a credential name (no '/')");
    assert_null(td_interpolate("${credential:..}", &secret, err, sizeof(err)));
    assert_null(td_interpolate("${credential:}", &secret, err, sizeof(err)));

    unsetenv("CREDENTIALS_DIRECTORY");
    assert_null(td_interpolate("${credential:token}", &secret, err, sizeof(err)));
    assert_string_equal(err, "${credential:token}: CREDENTIALS_DIRECTORY is not set (systemd "
                             "sets it for LoadCredential=)");

    /* In a trigger file, as the sample unit uses it. */
    setenv("CREDENTIALS_DIRECTORY", g_dir, 1);
    struct td_config *cfg =
        load("version: 1\n"
             "sources: {s: {redis: {url: 'redis://localhost', stream: st}}}\n"
             "sinks: {k: {http: {url: 'http://k/', auth: {bearer: '${credential:token}'}}}}\n"
             "triggers: [{name: t, source: s, sink: k}]\n",
             err, sizeof(err));
    assert_non_null(cfg);
    td_config_free(cfg);
    unsetenv("CREDENTIALS_DIRECTORY");
}

int main(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/td-daemon-http-XXXXXX");
    if (!mkdtemp(g_dir)) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inbound_share), cmocka_unit_test(test_raise),
        cmocka_unit_test(test_defaults),      cmocka_unit_test(test_checks),
        cmocka_unit_test(test_credential),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    if (system(cmd) != 0) {
        rc = rc ? rc : 1;
    }
    return rc;
}
