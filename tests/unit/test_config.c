/* test_config.c - unit tests of the trigger-file loader (broker/config/config.c,
 * broker/config/yaml_tree.c).
 *
 * Every message the loader can report is checked here with its exact line:column, from small
 * YAML texts written to a temporary directory; the fixtures in tests/data/config (found
 * through TD_SOURCE_DIR) are checked too: good_*.yaml load, and each bad_*.yaml fails with the
 * message its first line announces ("# expect: LINE:COL: message").
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_table.h"
#include "config.h"
#include "file_sink.h"
#include "filter.h"
#include "http_conf.h"
#include "ingress.h"
#include "kafka_sink.h"
#include "kafka_source.h"
#include "lambda_sink.h"
#include "rabbitmq_sink.h"
#include "rabbitmq_source.h"
#include "redis_sink.h"
#include "redis_source.h"

static char g_dir[64];   /* a temporary directory for the whole run */
static char g_file[128]; /* g_dir/t.yaml */

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
}

/* Replaces %F by the file name and %D by the temporary directory. */
static void expand(const char *in, char *out, size_t len)
{
    size_t used = 0;
    for (; *in && used + 1 < len; in++) {
        const char *sub = NULL;
        if (in[0] == '%' && in[1] == 'F') {
            sub = g_file;
        } else if (in[0] == '%' && in[1] == 'D') {
            sub = g_dir;
        }
        if (sub) {
            used += (size_t)snprintf(out + used, len - used, "%s", sub);
            in++;
        } else {
            out[used++] = *in;
        }
    }
    out[used < len ? used : len - 1] = '\0';
}

struct ecase {
    const char *name;
    const char *yaml;
    const char *exp[4]; /* "LINE:COL: message" relative to %F; a trailing '*' matches a prefix */
};

static bool msg_matches(const char *have, const char *want)
{
    size_t n = strlen(want);
    if (n && want[n - 1] == '*') {
        return strncmp(have, want, n - 1) == 0;
    }
    return strcmp(have, want) == 0;
}

/* Loads YAML (as %F) and checks that exactly the expected errors came out. Returns failures. */
static int check_case(const struct ecase *c)
{
    struct td_errors errs = {0};
    char want[1280];
    char rel[1024];
    int failed = 0;
    size_t nexp = 0;

    write_file(g_file, c->yaml);
    struct td_config *cfg = td_config_load(g_file, &errs);
    while (nexp < 4 && c->exp[nexp]) {
        nexp++;
    }
    if (cfg || errs.n != nexp) {
        failed = 1;
    }
    for (size_t i = 0; i < nexp && !failed; i++) {
        bool found = false;
        expand(c->exp[i], rel, sizeof(rel));
        snprintf(want, sizeof(want), "%s:%s", g_file, rel);
        for (size_t j = 0; j < errs.n; j++) {
            found = found || msg_matches(errs.msgs[j], want);
        }
        failed = !found;
    }
    if (failed) {
        fprintf(stderr, "case %s: expected %zu error(s):\n", c->name, nexp);
        for (size_t i = 0; i < nexp; i++) {
            fprintf(stderr, "    want %s\n", c->exp[i]);
        }
        for (size_t j = 0; j < errs.n; j++) {
            fprintf(stderr, "    got  %s\n", errs.msgs[j]);
        }
    }
    td_config_free(cfg);
    td_errors_clear(&errs);
    return failed;
}

static void run_cases(const struct ecase *cases, size_t n)
{
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        failed += check_case(&cases[i]);
    }
    assert_int_equal(failed, 0);
}

#define RUN(cases) run_cases((cases), sizeof(cases) / sizeof((cases)[0]))

/* Lines 1-5: a source s and a sink k; lines 6-9: a trigger t using them. */
#define BASE                                                                                       \
    "version: 1\n"                                                                                 \
    "sources:\n"                                                                                   \
    "  s: {redis: {url: \"redis://h\", stream: st}}\n"                                             \
    "sinks:\n"                                                                                     \
    "  k: {file: {path: /tmp/k}}\n"
#define TRIG                                                                                       \
    "triggers:\n"                                                                                  \
    "  - name: t\n"                                                                                \
    "    source: s\n"                                                                              \
    "    sink: k\n"
/* Attribute names at and past the event model's bound (TD_CE_NAME_MAX, 200). */
#define A10  "aaaaaaaaaa"
#define A32  A10 A10 A10 "aa"
#define A40  A10 A10 A10 A10
#define A200 A40 A40 A40 A40 A40
#define A201 A200 "a"
#define SRC  "version: 1\nsources:\n"
#define SNK  "version: 1\nsinks:\n"

/* ---- errors, durations, sizes, interpolation ---- */

static void test_errors_add(void **state)
{
    struct td_errors errs = {0};
    struct td_pos full = {"a.yaml", 3, 7};
    struct td_pos nolines = {"dir", 0, 0};

    td_errors_add(&errs, &full, "bad %s", "thing");
    td_errors_add(&errs, &nolines, "empty");
    td_errors_add(&errs, NULL, "plain %d", 5);
    assert_int_equal(errs.n, 3);
    assert_string_equal(errs.msgs[0], "a.yaml:3:7: bad thing");
    assert_string_equal(errs.msgs[1], "dir: empty");
    assert_string_equal(errs.msgs[2], "plain 5");
    td_errors_clear(&errs);
    assert_int_equal(errs.n, 0);
    assert_null(errs.msgs);
    td_errors_clear(&errs);
}

static void test_durations(void **state)
{
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {{"250ms", 250},
                {"10s", 10000},
                {"5m", 300000},
                {"1h", 3600000},
                {"1.5s", 1500},
                {"0", 0},
                {"30", 30000},
                {"0.25", 250},
                {"2.5m", 150000},
                {"0ms", 0},
                /* compound, Go style */
                {"1m30s", 90000},
                {"1h30m", 5400000},
                {"1s500ms", 1500},
                {"2h1m1s1ms", 7261001},
                /* ISO 8601, as Knative's delivery spec writes them */
                {"PT0.2S", 200},
                {"PT1M30S", 90000},
                {"PT2H", 7200000},
                {"PT1H0.5S", 3600500}};
    static const char *const bad[] = {
        "",      "-1s",  "s",    "1.s", ".5s", "1 s",    " 1s",  "1s ",
        "1d",    "ms1",  "1e3s", "inf", "nan", "0x10",   "+1s",  "99999999999999999999s",
        "30s1m", "1s1s", "1m1",  "PT",  "P1D", "PT1S1M", "pt1s", "PT1s",
        "10S"};
    int64_t ms;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ms = -1;
        assert_int_equal(td_parse_duration(good[i].s, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (td_parse_duration(bad[i], &ms) == 0) {
            fail_msg("duration '%s' was accepted", bad[i]);
        }
    }
    assert_int_equal(td_parse_duration(NULL, &ms), -1);
}

static void test_sizes(void **state)
{
    static const struct {
        const char *s;
        int64_t bytes;
    } good[] = {{"512", 512},         {"64KiB", 65536}, {"1MiB", 1048576},
                {"1GiB", 1073741824}, {"1KB", 1000},    {"1MB", 1000000},
                {"1GB", 1000000000},  {"7B", 7},        {"0", 0}};
    static const char *const bad[] = {"",
                                      "-1",
                                      "1.5MiB",
                                      "1 MiB",
                                      "1kib",
                                      "MiB",
                                      "1TiB",
                                      "99999999999999999999",
                                      "9999999999999GiB"};
    int64_t bytes;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(td_parse_size(good[i].s, &bytes), 0);
        assert_int_equal(bytes, good[i].bytes);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (td_parse_size(bad[i], &bytes) == 0) {
            fail_msg("size '%s' was accepted", bad[i]);
        }
    }
}

static void test_interpolate(void **state)
{
    char err[256];
    char path[256];
    bool secret;
    char *s;

    setenv("TD_T_VAR", "value", 1);
    setenv("TD_T_EMPTY", "", 1);
    unsetenv("TD_T_UNSET");

    s = td_interpolate("plain $text $ {x} $", &secret, err, sizeof(err));
    assert_string_equal(s, "plain $text $ {x} $");
    assert_false(secret);
    free(s);

    s = td_interpolate("a${TD_T_VAR}b${TD_T_VAR}", &secret, err, sizeof(err));
    assert_string_equal(s, "avaluebvalue");
    assert_true(secret);
    free(s);

    s = td_interpolate("${TD_T_UNSET:-dflt}/${TD_T_EMPTY:-e}/${TD_T_VAR:-no}/${TD_T_EMPTY}.",
                       &secret, err, sizeof(err));
    assert_string_equal(s, "dflt/e/value/.");
    free(s);

    s = td_interpolate("$${TD_T_VAR} and $${", &secret, err, sizeof(err));
    assert_string_equal(s, "${TD_T_VAR} and ${");
    assert_false(secret);
    free(s);

    snprintf(path, sizeof(path), "%s/secret", g_dir);
    write_file(path, "hunter2\n");
    char text[300];
    snprintf(text, sizeof(text), "pw=${file:%s}!", path);
    s = td_interpolate(text, &secret, err, sizeof(err));
    assert_string_equal(s, "pw=hunter2!");
    assert_true(secret);
    free(s);

    write_file(path, "two\n\n"); /* only one trailing newline is removed */
    s = td_interpolate(text, &secret, err, sizeof(err));
    assert_string_equal(s, "pw=two\n!");
    free(s);

    assert_null(td_interpolate("x${TD_T_UNSET}", &secret, err, sizeof(err)));
    assert_string_equal(err, "environment variable 'TD_T_UNSET' is not set");
    assert_null(td_interpolate("${TD_T_VAR", &secret, err, sizeof(err)));
    assert_string_equal(err, "unterminated '${' (write '$${' for a literal '${')");
    assert_null(td_interpolate("${A-B}", &secret, err, sizeof(err)));
    assert_string_equal(err, "invalid variable name in '${A-B}'");
    assert_null(td_interpolate("${}", &secret, err, sizeof(err)));
    assert_string_equal(err, "invalid variable name in '${}'");
    assert_null(td_interpolate("${file:/nonexistent/td}", &secret, err, sizeof(err)));
    assert_string_equal(err, "cannot read ${file:/nonexistent/td}: No such file or directory");
}

/* ---- parsing and the top level ---- */

static void test_errors_parse(void **state)
{
    char deep[400];
    strcpy(deep, "a: ");
    for (int i = 0; i < 100; i++) {
        strcat(deep, "[");
    }
    strcat(deep, "\n");

    const struct ecase cases[] = {
        {"syntax",
         "version: 1\nsources: [\n",
         {"3:1: invalid YAML: did not find expected node content while parsing a flow node"}},
        {"bad indentation",
         "version: 1\n  sinks: {}\n",
         {"2:8: invalid YAML: mapping values are not allowed in this context"}},
        {"non-utf8",
         "version: 1\nsinks:\n  a: \x80\x81\n",
         {"3:6: invalid YAML: invalid leading UTF-8 octet"}},
        {"alias", "version: 1\nx: &a 1\ny: *a\n", {"3:4: YAML aliases (*name) are not supported"}},
        {"two documents",
         "version: 1\n---\nversion: 1\n",
         {"2:1: only one YAML document per file is allowed"}},
        {"too deep", deep, {"1:67: nesting is too deep"}},
        {"empty", "", {"1:1: the file is empty (it needs at least 'version: 1')"}},
        {"only comments",
         "# nothing\n",
         {"1:1: the file is empty (it needs at least 'version: 1')"}},
        {"top scalar", "hello\n", {"1:1: the top level must be a mapping (got a scalar)"}},
        {"top list", "- 1\n", {"1:1: the top level must be a mapping (got a list)"}},
        {"missing version",
         "sources: {}\n",
         {"1:1: missing required key 'version' in the top level"}},
        {"version 2", "version: 2\n", {"1:10: unsupported version '2' (only 1 is supported)"}},
        {"version text",
         "version: one\n",
         {"1:10: unsupported version 'one' (only 1 is supported)"}},
        {"version null", "version:\n", {"1:9: 'version' must be a string (got null)"}},
        {"version 1.5",
         "version: 1.5\n",
         {"1:10: unsupported version '1.5' (only 1 is supported)"}},
        {"version 1.01",
         "version: 1.01\n",
         {"1:10: unsupported version '1.01' (only 1 is supported)"}},
        {"version 10.0",
         "version: 10.0\n",
         {"1:10: unsupported version '10.0' (only 1 is supported)"}},
        {"version 2.0",
         "version: 2.0\n",
         {"1:10: unsupported version '2.0' (only 1 is supported)"}},
        {"version -1", "version: -1\n", {"1:10: unsupported version '-1' (only 1 is supported)"}},
        {"version quoted",
         "version: \"1\"\n",
         {"1:10: unsupported version '1' (only 1 is supported: the number, not a quoted string)"}},
        {"version quoted 1.0",
         "version: '1.0'\n",
         {"1:10: unsupported version '1.0' (only 1 is supported: the number, not a quoted "
          "string)"}},
        {"unknown top key",
         "version: 1\ntrigger: []\n",
         {"2:1: unknown key 'trigger' in the top level (did you mean 'triggers'?)"}},
        {"unknown top key, no hint",
         "version: 1\nplugins: []\n",
         {"2:1: unknown key 'plugins' in the top level"}},
        {"duplicate key",
         "version: 1\nversion: 1\n",
         {"2:1: duplicate key 'version' (first at line 1)"}},
        {"complex key", "version: 1\n[a]: 1\n", {"2:1: keys must be plain strings"}},
        {"sources not mapping",
         "version: 1\nsources: [a]\n",
         {"2:10: sources must be a mapping of name to source (got a list)"}},
        {"sinks not mapping",
         "version: 1\nsinks: x\n",
         {"2:8: sinks must be a mapping of name to sink (got a scalar)"}},
        {"triggers not list",
         "version: 1\ntriggers: {}\n",
         {"2:11: triggers must be a list (got a mapping)"}},
        {"trigger not mapping",
         "version: 1\ntriggers: [7]\n",
         {"2:12: trigger #1 must be a mapping (got a scalar)"}},
        {"NUL byte", BASE TRIG "    schema: \"a\\0b\"\n", {"10:13: 'schema' contains a NUL byte"}},
    };
    RUN(cases);
}

static void test_errors_daemon(void **state)
{
    const struct ecase cases[] = {
        {"daemon not mapping",
         "version: 1\ndaemon: 5\n",
         {"2:9: daemon must be a mapping (got a scalar)"}},
        {"listen",
         "version: 1\ndaemon: {http: {listen: nope}}\n",
         {"2:25: 'listen' must be host:port, e.g. 127.0.0.1:8080"}},
        {"listen port",
         "version: 1\ndaemon: {http: {listen: \"h:0\"}}\n",
         {"2:25: 'listen' must be host:port, e.g. 127.0.0.1:8080"}},
        {"listen missing",
         "version: 1\ndaemon: {http: {}}\n",
         {"2:16: missing required key 'listen' in daemon.http"}},
        {"log level",
         "version: 1\ndaemon: {log: {level: loud}}\n",
         {"2:23: 'level' must be one of debug, info, warn, error (got 'loud')"}},
        {"log format",
         "version: 1\ndaemon: {log: {format: xml}}\n",
         {"2:24: 'format' must be one of text, json (got 'xml')"}},
        {"log unknown",
         "version: 1\ndaemon: {log: {levels: info}}\n",
         {"2:16: unknown key 'levels' in daemon.log (did you mean 'level'?)"}},
        {"shutdown_grace",
         "version: 1\ndaemon: {shutdown_grace: -1s}\n",
         {"2:26: 'shutdown_grace' must be a duration such as 250ms, 10s, 5m, 1h (got '-1s')"}},
        {"shutdown_grace past 1h",
         "version: 1\ndaemon: {shutdown_grace: 1h0m0.001s}\n",
         {"2:26: 'shutdown_grace' must be at most 1h (how long SIGTERM waits for deliveries in "
          "flight)"}},
        {"shutdown_grace seconds past 1h",
         "version: 1\ndaemon: {shutdown_grace: 3601}\n",
         {"2:26: 'shutdown_grace' must be at most 1h (how long SIGTERM waits for deliveries in "
          "flight)"}},
        {"shutdown_grace years",
         "version: 1\ndaemon: {shutdown_grace: 100000h}\n",
         {"2:26: 'shutdown_grace' must be at most 1h (how long SIGTERM waits for deliveries in "
          "flight)"}},
    };
    RUN(cases);
}

/* "expected exactly one of" names every kind of the registry, in its order: the kinds come
 * from the plugins' descriptors (sources/registry.c, sinks/registry.c), not from the loader. */
static void expect_kind_list(const char *yaml, const char *prefix,
                             const struct td_conf_kind *(*kind)(size_t))
{
    char want[512];
    size_t used = (size_t)snprintf(want, sizeof(want), "%s", prefix);
    assert_non_null(kind(0));
    for (size_t i = 0; kind(i); i++) {
        used += (size_t)snprintf(want + used, sizeof(want) - used, "%s%s", i ? ", " : "",
                                 kind(i)->name);
    }
    assert_true(used < sizeof(want));
    const struct ecase c = {"no kind", yaml, {want}};
    assert_int_equal(check_case(&c), 0);
}

static void test_errors_no_kind(void **state)
{
    expect_kind_list(SRC "  s: {max_inflight: 5}\n", "3:6: source 's': expected exactly one of ",
                     td_conf_source_kind);
    expect_kind_list(SNK "  k: {}\n", "3:6: sink 'k': expected exactly one of ", td_conf_sink_kind);
}

static void test_errors_sources(void **state)
{
    const struct ecase cases[] = {
        {"name",
         SRC "  a b: {redis: {url: u, stream: s}}\n",
         {"3:3: invalid source name 'a b' (use letters, digits, '_', '.' and '-')"}},
        {"not mapping", SRC "  s: redis\n", {"3:6: source must be a mapping (got a scalar)"}},
        {"two kinds",
         SRC "  s: {redis: {url: u, stream: x}, http: {path: /e}}\n",
         {"3:35: 'redis' and 'http' cannot both be given in source"}},
        {"unknown",
         SRC "  s: {redis: {url: u, stream: x}, retry: 1}\n",
         {"3:35: unknown key 'retry' in source"}},
        {"duplicate name",
         SRC "  s: {redis: {url: u, stream: x}}\n  s: {redis: {url: u, stream: x}}\n",
         {"4:3: duplicate key 's' (first at line 3)"}},
        {"missing",
         SRC "  s: {redis: {url: u}}\n",
         {"3:14: source 's': missing required key 'stream' in redis source"}},
        {"null",
         SRC "  s: {redis: {url: ~, stream: x}}\n",
         {"3:20: 'url' must be a string (got null)"}},
        {"start",
         SRC "  s: {redis: {url: u, stream: x, start: now}}\n",
         {"3:41: 'start' must be one of earliest, latest (got 'now')"}},
        {"max_inflight",
         SRC "  s: {redis: {url: u, stream: x}, max_inflight: 0}\n",
         {"3:49: 'max_inflight' must be at least 1"}},
        {"batch",
         SRC "  s: {redis: {url: u, stream: x, batch: 100001}}\n",
         {"3:41: 'batch' must be at most 100000"}},
        /* BLOCK 0 is "forever" to Redis: the old 1 s fallback for 0 is gone with the plugin's
         * own defaults, so 0 is refused where it is written. */
        {"block zero",
         SRC "  s: {redis: {url: u, stream: x, block: 0}}\n",
         {"3:41: 'block' must be at least 1ms"}},
        {"claim_idle",
         SRC "  s: {redis: {url: u, stream: x, claim_idle: 1d}}\n",
         {"3:46: 'claim_idle' must be a duration such as 250ms, 10s, 5m, 1h (got '1d')"}},
        {"topics empty",
         SRC "  s: {kafka: {brokers: b, topics: []}}\n",
         {"3:35: 'topics' must not be empty"}},
        {"topics scalar",
         SRC "  s: {kafka: {brokers: b, topics: t}}\n",
         {"3:35: 'topics' must be a list of strings (got a scalar)"}},
        {"topics item",
         SRC "  s: {kafka: {brokers: b, topics: [[x]]}}\n",
         {"3:36: 'topics' must be a string (got a list)"}},
        {"properties",
         SRC "  s: {kafka: {brokers: b, topics: [t], properties: [1]}}\n",
         {"3:52: 'properties' must be a mapping of strings (got a list)"}},
        {"heartbeat",
         SRC "  s: {rabbitmq: {url: u, queue: q, heartbeat: 3000000000}}\n",
         {"3:47: 'heartbeat' is too long"}},
        {"prefetch quoted",
         SRC "  s: {rabbitmq: {url: u, queue: q, prefetch: \"10\"}}\n",
         {"3:46: 'prefetch' must be an integer (got '10')"}},
        {"path", SRC "  s: {http: {path: events}}\n", {"3:20: 'path' must start with '/'"}},
        {"max_size",
         SRC "  s: {http: {path: /e, max_size: 1XB}}\n",
         {"3:34: 'max_size' must be a size such as 512, 64KiB, 1MiB (got '1XB')"}},
        {"ingress auth",
         SRC "  s: {http: {path: /e, auth: {token: x}}}\n",
         {"3:31: unknown key 'token' in http source auth"}},
    };
    RUN(cases);
}

static void test_errors_sinks(void **state)
{
    const struct ecase cases[] = {
        {"name",
         SNK "  'k/1': {file: {path: p}}\n",
         {"3:3: invalid sink name 'k/1' (use letters, digits, '_', '.' and '-')"}},
        /* The queue sinks wait for an acknowledgement: no "0 = no limit" there. */
        {"redis timeout zero",
         SNK "  k: {redis: {url: u, stream: s, timeout: 0s}}\n",
         {"3:43: 'timeout' must be at least 1ms"}},
        {"kafka timeout zero",
         SNK "  k: {kafka: {brokers: b, topic: t, timeout: 0}}\n",
         {"3:46: 'timeout' must be at least 1ms"}},
        {"http no target",
         SNK "  k: {http: {mode: binary}}\n",
         {"3:13: sink 'k': expected exactly one of url, service in http sink"}},
        {"url and service",
         SNK "  k: {http: {url: http://u, service: {name: n}}}\n",
         {"3:29: 'url' and 'service' cannot both be given in http sink"}},
        {"mode",
         SNK "  k: {http: {url: http://u, mode: bin}}\n",
         {"3:35: 'mode' must be one of binary, structured (got 'bin')"}},
        {"port",
         SNK "  k: {http: {service: {name: n, port: 70000}}}\n",
         {"3:39: 'port' must be at most 65535"}},
        {"service name",
         SNK "  k: {http: {service: {port: 80}}}\n",
         {"3:23: sink 'k': missing required key 'name' in service"}},
        {"headers",
         SNK "  k: {http: {url: http://u, headers: [a]}}\n",
         {"3:38: 'headers' must be a mapping of strings (got a list)"}},
        {"header value",
         SNK "  k: {http: {url: http://u, headers: {a: [1]}}}\n",
         {"3:42: 'a' must be a string (got a list)"}},
        {"two auth forms",
         SNK "  k: {http: {url: http://u, auth: {bearer: a, bearer_file: b}}}\n",
         {"3:47: 'bearer' and 'bearer_file' cannot both be given in auth"}},
        {"basic",
         SNK "  k: {openfaas: {gateway: g, function: f, auth: {basic: {user: u}}}}\n",
         {"3:57: sink 'k': missing required key 'password' in auth.basic"}},
        {"google",
         SNK "  k: {http: {url: http://u, auth: {google_id_token: {}}}}\n",
         {"3:53: sink 'k': missing required key 'audience' in auth.google_id_token"}},
        {"async",
         SNK "  k: {openfaas: {gateway: g, function: f, async: yes}}\n",
         {"3:50: 'async' must be true or false (got 'yes')"}},
        {"openfaas function",
         SNK "  k: {openfaas: {gateway: g}}\n",
         {"3:17: sink 'k': missing required key 'function' in openfaas sink"}},
        {"invocation",
         SNK "  k: {lambda: {function: f, invocation: Sync}}\n",
         {"3:41: 'invocation' must be one of RequestResponse, Event (got 'Sync')"}},
        {"credentials",
         SNK "  k: {lambda: {function: f, credentials: {access_key_id: a}}}\n",
         {"3:42: sink 'k': missing required key 'secret_access_key' in lambda credentials"}},
        {"maxlen",
         SNK "  k: {redis: {url: u, stream: s, maxlen: -1}}\n",
         {"3:42: 'maxlen' must be at least 0"}},
        {"kafka topic",
         SNK "  k: {kafka: {brokers: b}}\n",
         {"3:14: sink 'k': missing required key 'topic' in kafka sink"}},
        {"rabbitmq exchange",
         SNK "  k: {rabbitmq: {url: u}}\n",
         {"3:17: sink 'k': missing required key 'exchange' in rabbitmq sink"}},
        {"file unknown",
         SNK "  k: {file: {path: p, fsync: true}}\n",
         {"3:23: unknown key 'fsync' in file sink"}},
        {"timeout",
         SNK "  k: {file: {path: p, timeout: soon}}\n",
         {"3:32: 'timeout' must be a duration such as 250ms, 10s, 5m, 1h (got 'soon')"}},
    };
    RUN(cases);
}

/* A 200-character attribute name is the longest the event model takes, and it loads. */
static void test_attr_name_bound(void **state)
{
    (void)state;
    struct td_errors errs = {0};
    write_file(g_file, BASE TRIG "    filter: {" A200 ": x}\n"
                                 "    event: {set: {" A200 ": y}}\n");
    struct td_config *cfg = td_config_load(g_file, &errs);
    for (size_t i = 0; i < errs.n; i++) {
        fprintf(stderr, "unexpected: %s\n", errs.msgs[i]);
    }
    assert_non_null(cfg);
    td_config_free(cfg);
    td_errors_clear(&errs);
}

static void test_errors_triggers(void **state)
{
    setenv("TD_T_SINK", "nowhere", 1);
    setenv("TD_T_R", "abc", 1);
    const struct ecase cases[] = {
        {"missing",
         BASE "triggers:\n  - {sink: k}\n",
         {"7:5: trigger #1: missing required key 'name'",
          "7:5: trigger #1: missing required key 'source'"}},
        {"missing sink",
         BASE "triggers:\n  - name: t\n    source: s\n",
         {"7:5: trigger 't': missing required key 'sink'"}},
        {"name",
         BASE "triggers:\n  - {name: 'a b', source: s, sink: k}\n",
         {"7:12: invalid trigger name 'a b' (use letters, digits, '_', '.' and '-')"}},
        {"duplicate name",
         BASE "triggers:\n  - {name: t, source: s, sink: k}\n  - {name: t, source: s, sink: k}\n",
         {"8:12: duplicate trigger name 't' (first defined at %F:7:5)"}},
        {"unknown source",
         BASE "triggers:\n  - {name: t, source: x, sink: k}\n",
         {"7:23: unknown source 'x'"}},
        {"unknown sink",
         BASE "triggers:\n  - {name: t, source: s, sink: x}\n",
         {"7:32: unknown sink 'x'"}},
        {"unknown reply", BASE TRIG "    reply: r\n", {"10:12: unknown sink 'r'"}},
        {"unknown dead_letter",
         BASE TRIG "    delivery: {dead_letter: d}\n",
         {"10:29: unknown sink 'd'"}},
        {"secret reference",
         BASE TRIG "    reply: ${TD_T_SINK}\n",
         {"10:12: unknown sink (value from ${TD_T_SINK})"}},
        {"duplicate key",
         BASE TRIG "    sink: k\n",
         {"10:5: duplicate key 'sink' (first at line 9)"}},
        {"unknown key",
         BASE TRIG "    retry: 3\n",
         {"10:5: unknown key 'retry' in trigger (did you mean 'reply'?)"}},
        {"event scalar",
         BASE TRIG "    event: x\n",
         {"10:12: event must be a mapping (got a scalar)"}},
        {"event unknown",
         BASE TRIG "    event: {kind: x}\n",
         {"10:13: unknown key 'kind' in event"}},
        {"event set name",
         BASE TRIG "    event: {set: {Team: x}}\n",
         {"10:19: invalid attribute name 'Team' (lowercase letters and digits only)"}},
        {"event set name too long", /* the event model's bound (TD_CE_NAME_MAX) */
         BASE TRIG "    event: {set: {" A201 ": x}}\n",
         {"10:19: attribute name '" A32 "...' is too long (201 characters, at most 200)"}},
        {"event set id",
         BASE TRIG "    event: {set: {id: x}}\n",
         {"10:23: 'id' cannot be set: it is the event's own"}},
        {"event set data",
         BASE TRIG "    event: {set: {data: x}}\n",
         {"10:25: 'data' cannot be set: it is the event's own"}},
        {"event set empty type",
         BASE TRIG "    event: {set: {type: ''}}\n",
         {"10:25: 'type' cannot be set to an empty string"}},
        {"event set bad time",
         BASE TRIG "    event: {set: {time: yesterday}}\n",
         {"10:25: 'time' must be an RFC 3339 timestamp"}},
    };
    RUN(cases);
}

static void test_errors_delivery(void **state)
{
    const struct ecase cases[] = {
        {"not mapping",
         BASE TRIG "    delivery: fast\n",
         {"10:15: delivery must be a mapping (got a scalar)"}},
        {"unknown",
         BASE TRIG "    delivery: {retries: 1}\n",
         {"10:16: unknown key 'retries' in delivery (did you mean 'retry'?)"}},
        {"retry", BASE TRIG "    delivery: {retry: -1}\n", {"10:23: 'retry' must be at least 0"}},
        {"retry secret",
         BASE TRIG "    delivery: {retry: \"${TD_T_R}\"}\n",
         {"10:23: 'retry' must be an integer (got value from ${TD_T_R})"}},
        {"concurrency",
         BASE TRIG "    delivery: {concurrency: 0}\n",
         {"10:29: 'concurrency' must be at least 1"}},
        {"backoff",
         BASE TRIG "    delivery: {backoff: random}\n",
         {"10:25: 'backoff' must be one of exponential, linear (got 'random')"}},
        {"ordering",
         BASE TRIG "    delivery: {ordering: fifo}\n",
         {"10:26: 'ordering' must be one of unordered, partition, key (got 'fifo')"}},
        {"backoff_max",
         BASE TRIG "    delivery: {backoff_delay: 10s, backoff_max: 1s}\n",
         {"10:49: 'backoff_max' must not be less than 'backoff_delay'"}},
        {"backoff_delay",
         BASE TRIG "    delivery: {backoff_delay: 1m}\n",
         {"10:31: 'backoff_max' must not be less than 'backoff_delay'"}},
        {"retry_on range",
         BASE TRIG "    delivery: {retry_on: [42]}\n",
         {"10:27: 'retry_on' must be at least 100"}},
        {"retry_on high",
         BASE TRIG "    delivery: {retry_on: [600]}\n",
         {"10:27: 'retry_on' must be at most 599"}},
        {"retry_on item",
         BASE TRIG "    delivery: {retry_on: [x]}\n",
         {"10:27: 'retry_on' items must be integers (got 'x')"}},
        {"retry_on scalar",
         BASE TRIG "    delivery: {retry_on: 500}\n",
         {"10:26: 'retry_on' must be a list of integers (got a scalar)"}},
    };
    RUN(cases);
}

static void test_errors_filters(void **state)
{
    const struct ecase cases[] = {
        {"filter list",
         BASE TRIG "    filter: [a]\n",
         {"10:13: 'filter' must be a mapping of attribute to value (got a list)"}},
        {"filter empty",
         BASE TRIG "    filter: {}\n",
         {"10:13: 'filter' needs at least one attribute"}},
        {"filter name",
         BASE TRIG "    filter: {Type: x}\n",
         {"10:14: invalid attribute name 'Type' (lowercase letters and digits only)"}},
        {"filter name too long",
         BASE TRIG "    filter: {" A201 ": x}\n",
         {"10:14: attribute name '" A32 "...' is too long (201 characters, at most 200)"}},
        {"filter value",
         BASE TRIG "    filter: {type: [x]}\n",
         {"10:20: 'type' must be a string (got a list)"}},
        {"filter duplicate",
         BASE TRIG "    filter: {type: a, type: b}\n",
         {"10:23: duplicate key 'type' (first at line 10)"}},
        {"filters mapping",
         BASE TRIG "    filters: {exact: {type: x}}\n",
         {"10:14: 'filters' must be a list of filters (got a mapping)"}},
        {"item scalar",
         BASE TRIG "    filters: [x]\n",
         {"10:15: a filter must be a mapping (got a scalar)"}},
        {"item empty",
         BASE TRIG "    filters: [{}]\n",
         {"10:15: empty filter: expected one of exact, prefix, suffix, all, any, not, cesql"}},
        {"item unknown",
         BASE TRIG "    filters: [{exakt: {type: x}}]\n",
         {"10:16: unknown key 'exakt' in filter (did you mean 'exact'?)"}},
        {"two kinds",
         BASE TRIG "    filters: [{exact: {type: x}, prefix: {type: y}}]\n",
         {"10:34: 'exact' and 'prefix' cannot both be given in one filter (combine them with "
          "all)"}},
        {"any mapping",
         BASE TRIG "    filters: [{any: {exact: {a: b}}}]\n",
         {"10:21: 'any' must be a list of filters (got a mapping)"}},
        {"all empty",
         BASE TRIG "    filters: [{all: []}]\n",
         {"10:21: 'all' needs at least one filter"}},
        {"nested",
         BASE TRIG "    filters: [{not: {prefix: {}}}]\n",
         {"10:30: 'prefix' needs at least one attribute"}},
        {"deep nested",
         BASE TRIG "    filters: [{any: [{all: [{suffix: {subject: [1]}}]}]}]\n",
         {"10:48: 'subject' must be a string (got a list)"}},
        {"cesql", BASE TRIG "    filters: [{cesql: \"type = = =\"}]\n", {"10:23: cesql: column *"}},
        {"cesql list",
         BASE TRIG "    filters: [{cesql: [a]}]\n",
         {"10:23: 'cesql' must be a string (got a list)"}},
    };
    RUN(cases);
}

static void test_errors_interpolation(void **state)
{
    char nul[256];
    char big[256];
    char yaml_nul[512];
    char yaml_big[512];
    char want_nul[512];
    char want_big[512];

    unsetenv("TD_T_UNSET");
    snprintf(nul, sizeof(nul), "%s/nul", g_dir);
    FILE *fp = fopen(nul, "wb");
    assert_non_null(fp);
    fwrite("a\0b", 1, 3, fp);
    fclose(fp);
    snprintf(big, sizeof(big), "%s/big", g_dir);
    fp = fopen(big, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 1100; i++) {
        char kb[1024];
        memset(kb, 'x', sizeof(kb));
        fwrite(kb, 1, sizeof(kb), fp);
    }
    fclose(fp);
    snprintf(yaml_nul, sizeof(yaml_nul), BASE TRIG "    schema: ${file:%s}\n", nul);
    snprintf(yaml_big, sizeof(yaml_big), BASE TRIG "    schema: ${file:%s}\n", big);
    snprintf(want_nul, sizeof(want_nul), "10:13: ${file:%s} contains a NUL byte", nul);
    snprintf(want_big, sizeof(want_big), "10:13: ${file:%s} is larger than 1 MiB", big);

    const struct ecase cases[] = {
        {"unset",
         BASE TRIG "    schema: ${TD_T_UNSET}\n",
         {"10:13: environment variable 'TD_T_UNSET' is not set"}},
        {"unset in int",
         BASE TRIG "    delivery:\n      retry: ${TD_T_UNSET}\n",
         {"11:14: environment variable 'TD_T_UNSET' is not set"}},
        {"unterminated",
         BASE TRIG "    schema: \"${X\"\n",
         {"10:13: unterminated '${' (write '$${' for a literal '${')"}},
        {"name", BASE TRIG "    schema: \"${1X}\"\n", {"10:13: invalid variable name in '${1X}'"}},
        {"file missing",
         BASE TRIG "    schema: ${file:/nonexistent/x}\n",
         {"10:13: cannot read ${file:/nonexistent/x}: No such file or directory"}},
        {"file no path", BASE TRIG "    schema: ${file:}\n", {"10:13: ${file:PATH} needs a path"}},
        {"file NUL", yaml_nul, {want_nul}},
        {"file big", yaml_big, {want_big}},
    };
    RUN(cases);
}

/* ---- files and directories ---- */

static void make_dir(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", g_dir, name);
    assert_int_equal(mkdir(out, 0700), 0);
}

static void put(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    write_file(path, text);
}

static void expect_errors(const char *path, const char *const *want, size_t n)
{
    struct td_errors errs = {0};
    struct td_config *cfg = td_config_load(path, &errs);
    char exp[1024];

    assert_null(cfg);
    if (errs.n != n) {
        for (size_t j = 0; j < errs.n; j++) {
            fprintf(stderr, "    got  %s\n", errs.msgs[j]);
        }
    }
    assert_int_equal(errs.n, n);
    for (size_t i = 0; i < n; i++) {
        expand(want[i], exp, sizeof(exp));
        assert_string_equal(errs.msgs[i], exp);
    }
    td_errors_clear(&errs);
}

static void test_directory_merge(void **state)
{
    char dir[256];
    struct td_errors errs = {0};

    make_dir("merge", dir, sizeof(dir));
    put(dir, "10-sources.yaml", "version: 1\nsources:\n  s: {redis: {url: u, stream: x}}\n");
    put(dir, "20-sinks.yml", "version: 1\nsinks:\n  k: {file: {path: /tmp/k}}\n");
    put(dir, "30-triggers.yaml",
        "version: 1\ndaemon: {log: {level: warn}}\ntriggers:\n  - {name: a, source: s, sink: k}\n");
    put(dir, "05-later.yaml", "version: 1\ntriggers:\n  - {name: b, source: s, sink: k}\n");
    put(dir, "notes.txt", "not yaml");
    put(dir, ".hidden.yaml", "garbage: [");
    struct td_config *cfg = td_config_load(dir, &errs);
    assert_int_equal(errs.n, 0);
    assert_non_null(cfg);
    assert_int_equal(cfg->nfiles, 4);
    assert_int_equal(cfg->ntriggers, 2);
    assert_string_equal(cfg->triggers[0].name, "b"); /* 05-later.yaml is read first */
    assert_string_equal(cfg->triggers[1].name, "a");
    assert_int_equal(cfg->daemon.log_level, TD_LOG_WARN);
    assert_non_null(td_config_source(cfg, "s"));
    assert_non_null(td_config_sink(cfg, "k"));
    assert_null(td_config_sink(cfg, "s"));
    assert_null(td_config_source(cfg, "nope"));
    char want[512];
    snprintf(want, sizeof(want), "%s/30-triggers.yaml", dir);
    assert_string_equal(cfg->triggers[1].pos.file, want);
    assert_int_equal(cfg->triggers[1].pos.line, 4);
    td_config_free(cfg);
}

static void test_directory_errors(void **state)
{
    char dir[256];

    make_dir("dups", dir, sizeof(dir));
    put(dir, "a.yaml",
        "version: 1\ndaemon: {}\nsources:\n  s: {redis: {url: u, stream: x}}\nsinks:\n"
        "  k: {file: {path: p}}\ntriggers:\n  - {name: t, source: s, sink: k}\n");
    put(dir, "b.yaml",
        "version: 1\ndaemon: {}\nsources:\n  s: {redis: {url: u, stream: x}}\nsinks:\n"
        "  k: {file: {path: p}}\ntriggers:\n  - {name: t, source: s, sink: k}\n");
    put(dir, "c.yaml", "sinks: {}\n");
    const char *const want[] = {
        "%D/dups/b.yaml:2:9: daemon is already configured at %D/dups/a.yaml:2:9",
        "%D/dups/b.yaml:4:3: duplicate source 's' (first defined at %D/dups/a.yaml:4:3)",
        "%D/dups/b.yaml:6:3: duplicate sink 'k' (first defined at %D/dups/a.yaml:6:3)",
        "%D/dups/b.yaml:8:12: duplicate trigger name 't' (first defined at %D/dups/a.yaml:8:5)",
        "%D/dups/c.yaml:1:1: missing required key 'version' in the top level",
    };
    expect_errors(dir, want, 5);

    make_dir("empty", dir, sizeof(dir));
    put(dir, "x.txt", "version: 1\n");
    const char *const want_empty[] = {"%D/empty: no *.yaml or *.yml files in the directory"};
    expect_errors(dir, want_empty, 1);

    const char *const want_missing[] = {"/nonexistent/td.yaml: cannot open: No such file or "
                                        "directory"};
    expect_errors("/nonexistent/td.yaml", want_missing, 1);

    char path[512];
    snprintf(path, sizeof(path), "%s/huge.yaml", g_dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(ftruncate(fileno(fp), 17 * 1024 * 1024), 0);
    fclose(fp);
    const char *const want_huge[] = {"%D/huge.yaml: file is larger than 16 MiB"};
    expect_errors(path, want_huge, 1);
    unlink(path);
}

/* ---- valid files ---- */

static struct td_config *load_ok(const char *path)
{
    struct td_errors errs = {0};
    struct td_config *cfg = td_config_load(path, &errs);
    for (size_t i = 0; i < errs.n; i++) {
        fprintf(stderr, "unexpected: %s\n", errs.msgs[i]);
    }
    assert_int_equal(errs.n, 0);
    assert_non_null(cfg);
    return cfg;
}

static void fixture(const char *name, char *out, size_t len)
{
    const char *root = getenv("TD_SOURCE_DIR");
    snprintf(out, len, "%s/tests/data/config/%s", root ? root : ".", name);
}

static const char *kv(const struct td_kv_list *list, const char *key)
{
    for (size_t i = 0; i < list->n; i++) {
        if (strcmp(list->items[i].key, key) == 0) {
            return list->items[i].value;
        }
    }
    return NULL;
}

/* The number 1 however a plain scalar writes it: the schema's "const": 1 accepts 1.0 (JSON
 * Schema compares numbers by value), so the loader must too (tests/data/config/good_version_*). */
static void test_version_forms(void **state)
{
    static const char *const forms[] = {"1", "+1", "01", "1.0", "1.", "1.000", "+01.0"};
    char text[64];
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        snprintf(text, sizeof(text), "version: %s\n", forms[i]);
        write_file(g_file, text);
        struct td_config *cfg = load_ok(g_file);
        assert_int_equal(cfg->version, 1);
        td_config_free(cfg);
    }
}

/* shutdown_grace up to its bound, 1h, however written; 0 (no wait) stays allowed. */
static void test_shutdown_grace_bound(void **state)
{
    static const struct {
        const char *text;
        int64_t ms;
    } ok[] = {{"1h", 3600000},         {"60m", 3600000}, {"3600", 3600000}, {"PT1H", 3600000},
              {"59m59.999s", 3599999}, {"30s", 30000},   {"0s", 0}};
    char text[128];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(text, sizeof(text), "version: 1\ndaemon: {shutdown_grace: %s}\n", ok[i].text);
        write_file(g_file, text);
        struct td_config *cfg = load_ok(g_file);
        assert_int_equal(cfg->daemon.shutdown_grace_ms, ok[i].ms);
        td_config_free(cfg);
    }
}

static void test_defaults(void **state)
{
    char path[512];
    char host[256] = "";
    fixture("good_minimal.yaml", path, sizeof(path));
    struct td_config *cfg = load_ok(path);

    assert_int_equal(cfg->version, 1);
    assert_null(cfg->daemon.http_listen);
    assert_int_equal(cfg->daemon.log_level, TD_LOG_INFO);
    assert_int_equal(cfg->daemon.log_format, TD_LOG_TEXT);
    assert_int_equal(cfg->daemon.shutdown_grace_ms, 30000);

    const struct td_conf_source *src = td_config_source(cfg, "s");
    assert_non_null(src);
    assert_int_equal(src->kind, TD_SOURCE_REDIS);
    assert_int_equal(src->max_inflight, 1000);
    assert_string_equal(TD_SETTINGS(src, struct td_conf_redis_source)->group, "triggerd");
    gethostname(host, sizeof(host) - 1);
    assert_string_equal(TD_SETTINGS(src, struct td_conf_redis_source)->consumer,
                        host[0] ? host : "triggerd");
    assert_string_equal(TD_SETTINGS(src, struct td_conf_redis_source)->start, "earliest");
    assert_int_equal(TD_SETTINGS(src, struct td_conf_redis_source)->claim_idle_ms, 60000);
    assert_int_equal(TD_SETTINGS(src, struct td_conf_redis_source)->max_deliveries, 10);
    assert_int_equal(TD_SETTINGS(src, struct td_conf_redis_source)->batch, 100);
    assert_int_equal(TD_SETTINGS(src, struct td_conf_redis_source)->block_ms, 1000);
    assert_int_equal(src->pos.line, 4);
    assert_int_equal(src->pos.col, 3);

    const struct td_conf_sink *snk = td_config_sink(cfg, "k");
    assert_int_equal(snk->kind, TD_SINK_HTTP);
    assert_int_equal(snk->timeout_ms, 10000);
    assert_int_equal(snk->timeout_ms, 10000);
    assert_int_equal(TD_SETTINGS(snk, struct td_conf_http_sink)->mode, TD_MODE_BINARY);

    const struct td_conf_trigger *trg = &cfg->triggers[0];
    assert_null(trg->filter);
    assert_null(trg->reply);
    assert_int_equal(trg->delivery.retry, 3);
    assert_int_equal(trg->delivery.backoff, TD_BACKOFF_EXPONENTIAL);
    assert_int_equal(trg->delivery.backoff_delay_ms, 200);
    assert_int_equal(trg->delivery.backoff_max_ms, 30000);
    assert_int_equal(trg->delivery.timeout_ms, 0);
    assert_int_equal(trg->delivery.retry_after_max_ms, 60000);
    assert_int_equal(trg->delivery.ordering, TD_ORDER_UNORDERED);
    assert_int_equal(trg->delivery.concurrency, 64);
    assert_null(trg->delivery.dead_letter);
    assert_int_equal(trg->delivery.nretry_on, 0);
    assert_int_equal(trg->source_pos.line, 8);
    assert_int_equal(trg->source_pos.col, 23);
    td_config_free(cfg);
}

static void check_full_sources(const struct td_config *cfg)
{
    const struct td_conf_source *src = td_config_source(cfg, "clicks");
    assert_int_equal(src->kind, TD_SOURCE_REDIS);
    assert_string_equal(TD_SETTINGS(src, struct td_conf_redis_source)->url,
                        "redis://localhost:6379/0");
    assert_string_equal(TD_SETTINGS(src, struct td_conf_redis_source)->consumer, "c1");
    assert_string_equal(TD_SETTINGS(src, struct td_conf_redis_source)->start, "latest");
    assert_int_equal(TD_SETTINGS(src, struct td_conf_redis_source)->claim_idle_ms, 0);
    assert_int_equal(TD_SETTINGS(src, struct td_conf_redis_source)->max_deliveries, 0);
    assert_int_equal(TD_SETTINGS(src, struct td_conf_redis_source)->batch, 10);
    assert_int_equal(TD_SETTINGS(src, struct td_conf_redis_source)->block_ms, 250);
    assert_int_equal(src->max_inflight, 50);

    src = td_config_source(cfg, "orders");
    assert_int_equal(src->kind, TD_SOURCE_KAFKA);
    assert_int_equal(TD_SETTINGS(src, struct td_conf_kafka_source)->ntopics, 2);
    assert_string_equal(TD_SETTINGS(src, struct td_conf_kafka_source)->topics[1], "refunds");
    assert_string_equal(TD_SETTINGS(src, struct td_conf_kafka_source)->group, "triggerd");
    assert_string_equal(
        kv(&TD_SETTINGS(src, struct td_conf_kafka_source)->properties, "fetch.min.bytes"), "1");

    src = td_config_source(cfg, "jobs");
    assert_int_equal(src->kind, TD_SOURCE_RABBITMQ);
    assert_int_equal(TD_SETTINGS(src, struct td_conf_rabbitmq_source)->prefetch, 10);
    assert_int_equal(TD_SETTINGS(src, struct td_conf_rabbitmq_source)->heartbeat, 60);

    src = td_config_source(cfg, "inbound");
    assert_int_equal(src->kind, TD_SOURCE_HTTP);
    assert_string_equal(TD_SETTINGS(src, struct td_conf_http_source)->path, "/events");
    assert_string_equal(TD_SETTINGS(src, struct td_conf_http_source)->bearer, "s3cret");
    assert_int_equal(TD_SETTINGS(src, struct td_conf_http_source)->max_size, 65536);
}

static void check_full_sinks(const struct td_config *cfg)
{
    const struct td_conf_sink *snk = td_config_sink(cfg, "web");
    assert_int_equal(snk->kind, TD_SINK_HTTP);
    assert_int_equal(TD_SETTINGS(snk, struct td_conf_http_sink)->mode, TD_MODE_STRUCTURED);
    assert_int_equal(snk->timeout_ms, 2000);
    assert_int_equal(snk->timeout_ms, 2000);
    assert_string_equal(kv(&TD_SETTINGS(snk, struct td_conf_http_sink)->headers, "X-N"), "5");
    assert_string_equal(TD_SETTINGS(snk, struct td_conf_http_sink)->client_key, "/key");
    assert_string_equal(TD_SETTINGS(snk, struct td_conf_http_sink)->auth.bearer_file, "/tok");

    snk = td_config_sink(cfg, "svc");
    assert_null(TD_SETTINGS(snk, struct td_conf_http_sink)->url);
    assert_string_equal(TD_SETTINGS(snk, struct td_conf_http_sink)->service_name, "resize");
    assert_null(TD_SETTINGS(snk, struct td_conf_http_sink)
                    ->service_namespace); /* the sink fills in the pod's own */
    assert_int_equal(TD_SETTINGS(snk, struct td_conf_http_sink)->service_port, 80);

    assert_string_equal(
        TD_SETTINGS(td_config_sink(cfg, "gcf"), struct td_conf_http_sink)->auth.google_audience,
        "aud");
    assert_null(TD_SETTINGS(td_config_sink(cfg, "gcf"), struct td_conf_http_sink)
                    ->auth.google_metadata_url);
    assert_string_equal(
        TD_SETTINGS(td_config_sink(cfg, "az"), struct td_conf_http_sink)->auth.azure_function_key,
        "key");
    const struct td_conf_auth *oa =
        &TD_SETTINGS(td_config_sink(cfg, "oa"), struct td_conf_http_sink)->auth;
    assert_string_equal(oa->oauth2_token_url, "https://idp/token");
    assert_string_equal(oa->oauth2_client_id, "td");
    assert_string_equal(oa->oauth2_client_secret, "s3");
    assert_int_equal(oa->oauth2_nscopes, 2);
    assert_string_equal(oa->oauth2_scopes[1], "b:c");
    assert_null(oa->oauth2_audience);

    snk = td_config_sink(cfg, "faas");
    assert_int_equal(snk->kind, TD_SINK_OPENFAAS);
    assert_true(TD_SETTINGS(snk, struct td_conf_openfaas_sink)->async);
    assert_string_equal(TD_SETTINGS(snk, struct td_conf_openfaas_sink)->auth.basic_user, "admin");
    assert_string_equal(TD_SETTINGS(snk, struct td_conf_openfaas_sink)->auth.basic_password, "pw");

    snk = td_config_sink(cfg, "lam");
    assert_int_equal(snk->kind, TD_SINK_LAMBDA);
    assert_string_equal(TD_SETTINGS(snk, struct td_conf_lambda_sink)->invocation, "Event");
    assert_string_equal(TD_SETTINGS(snk, struct td_conf_lambda_sink)->payload, "data");
    assert_string_equal(TD_SETTINGS(snk, struct td_conf_lambda_sink)->session_token, "ST");
    assert_int_equal(snk->timeout_ms, 60000);

    snk = td_config_sink(cfg, "dead");
    assert_int_equal(snk->kind, TD_SINK_REDIS);
    assert_int_equal(TD_SETTINGS(snk, struct td_conf_redis_sink)->maxlen, 1000);
    snk = td_config_sink(cfg, "dead2");
    assert_int_equal(snk->kind, TD_SINK_KAFKA);
    assert_string_equal(kv(&TD_SETTINGS(snk, struct td_conf_kafka_sink)->properties, "acks"),
                        "all");
    snk = td_config_sink(cfg, "dead3");
    assert_int_equal(snk->kind, TD_SINK_RABBITMQ);
    assert_string_equal(TD_SETTINGS(snk, struct td_conf_rabbitmq_sink)->routing_key, "letters");
    snk = td_config_sink(cfg, "dead4");
    assert_int_equal(snk->kind, TD_SINK_FILE);
    assert_string_equal(TD_SETTINGS(snk, struct td_conf_file_sink)->path, "/tmp/dead.jsonl");
}

/* Each default comes from its key's table entry (the plugins have no fallbacks any more): also
 * for kinds and blocks the file leaves out, and for a source's kind-specific keys. */
static void test_table_defaults(void **state)
{
    write_file(g_file, "version: 1\n"
                       "sources:\n"
                       "  o: {kafka: {brokers: b, topics: [t]}}\n"
                       "  j: {rabbitmq: {url: \"amqp://h/%2f\", queue: q}}\n"
                       "  i: {http: {path: /e}}\n"
                       "sinks:\n"
                       "  l: {lambda: {function: f}}\n"
                       "  r: {redis: {url: u, stream: s}}\n"
                       "  v: {http: {service: {name: svc}}}\n"
                       "  f: {openfaas: {gateway: \"http://g\", function: f, timeout: 3s}}\n"
                       "triggers:\n"
                       "  - {name: t, source: o, sink: l}\n"
                       "  - {name: u, source: j, sink: r, delivery: {retry: 1}}\n");
    struct td_config *cfg = load_ok(g_file);

    const struct td_conf_source *o = td_config_source(cfg, "o");
    assert_string_equal(TD_SETTINGS(o, struct td_conf_kafka_source)->group, "triggerd");
    assert_string_equal(TD_SETTINGS(o, struct td_conf_kafka_source)->start, "earliest");
    assert_int_equal(o->max_inflight, 1000);
    assert_int_equal(o->stall_after_ms, 120000);
    const struct td_conf_source *j = td_config_source(cfg, "j");
    assert_int_equal(TD_SETTINGS(j, struct td_conf_rabbitmq_source)->prefetch, 100);
    assert_int_equal(TD_SETTINGS(j, struct td_conf_rabbitmq_source)->heartbeat, 30);
    assert_int_equal(TD_SETTINGS(j, struct td_conf_rabbitmq_source)->max_deliveries, 10);
    assert_int_equal(TD_SETTINGS(j, struct td_conf_rabbitmq_source)->consumer_timeout_ms,
                     30 * 60 * 1000);
    assert_int_equal(TD_SETTINGS(j, struct td_conf_rabbitmq_source)->id_from, TD_ID_FROM_DELIVERY);
    assert_false(
        TD_SETTINGS(j, struct td_conf_rabbitmq_source)->declare); /* declare: not written */
    assert_true(TD_SETTINGS(j, struct td_conf_rabbitmq_source)->declare_durable);
    assert_string_equal(TD_SETTINGS(j, struct td_conf_rabbitmq_source)->declare_exchange_type,
                        "direct");
    assert_int_equal(TD_SETTINGS(td_config_source(cfg, "i"), struct td_conf_http_source)->max_size,
                     1024 * 1024);

    const struct td_conf_sink *l = td_config_sink(cfg, "l");
    assert_string_equal(TD_SETTINGS(l, struct td_conf_lambda_sink)->invocation, "RequestResponse");
    assert_string_equal(TD_SETTINGS(l, struct td_conf_lambda_sink)->payload, "event");
    assert_int_equal(l->timeout_ms, 10000);
    assert_int_equal(TD_SETTINGS(td_config_sink(cfg, "r"), struct td_conf_redis_sink)->maxlen, 0);
    assert_int_equal(td_config_sink(cfg, "r")->timeout_ms, 10000);
    const struct td_conf_sink *v = td_config_sink(cfg, "v");
    assert_int_equal(TD_SETTINGS(v, struct td_conf_http_sink)->service_port, 80);
    assert_null(TD_SETTINGS(v, struct td_conf_http_sink)
                    ->service_namespace); /* the HTTP sink reads POD_NAMESPACE */
    assert_int_equal(TD_SETTINGS(v, struct td_conf_http_sink)->mode, TD_MODE_BINARY);
    assert_int_equal(v->timeout_ms, 10000);
    const struct td_conf_sink *f = td_config_sink(cfg, "f");
    assert_false(TD_SETTINGS(f, struct td_conf_openfaas_sink)->async);
    assert_int_equal(f->timeout_ms, 3000);

    for (size_t i = 0; i < cfg->ntriggers; i++) {
        const struct td_conf_delivery *d = &cfg->triggers[i].delivery;
        assert_int_equal(d->retry, i == 0 ? 3 : 1);
        assert_int_equal(d->backoff, TD_BACKOFF_EXPONENTIAL);
        assert_int_equal(d->backoff_delay_ms, 200);
        assert_int_equal(d->backoff_max_ms, 30000);
        assert_int_equal(d->timeout_ms, 0);
        assert_int_equal(d->retry_after_max_ms, 60000);
        assert_int_equal(d->ordering, TD_ORDER_UNORDERED);
        assert_int_equal(d->concurrency, 64);
    }
    assert_int_equal(cfg->daemon.http_max_connections_per_ip, 64);
    assert_int_equal(cfg->daemon.http_request_timeout_ms, 15000);
    assert_true(cfg->daemon.http_probes_on_listen);
    td_config_free(cfg);
}

/* Two sources (or sinks) NAME, one from each text: whether td_config_same_settings says their
 * kinds' settings are the same. */
static bool same_settings(const char *a, const char *b, const char *name, bool sink)
{
    write_file(g_file, a);
    struct td_config *ca = load_ok(g_file);
    write_file(g_file, b);
    struct td_config *cb = load_ok(g_file);
    bool same;
    if (sink) {
        const struct td_conf_sink *x = td_config_sink(ca, name), *y = td_config_sink(cb, name);
        same = td_config_same_settings(x->plugin, x->settings, y->plugin, y->settings);
    } else {
        const struct td_conf_source *x = td_config_source(ca, name);
        const struct td_conf_source *y = td_config_source(cb, name);
        same = td_config_same_settings(x->plugin, x->settings, y->plugin, y->settings);
    }
    td_config_free(ca);
    td_config_free(cb);
    return same;
}

/* Reload keeps a source only when its settings are the same, compared through the kind's key
 * table: every key, nested tables, lists and maps, and what the plugin's same hook adds. */
static void test_same_settings(void **state)
{
    static const struct {
        const char *a, *b;
        bool same;
    } cases[] = {
        {"redis: {url: u, stream: s}", "redis: {url: u, stream: s}", true},
        {"redis: {url: u, stream: s}", "redis: {url: u, stream: s, block: 1s}", true}, /* default */
        {"redis: {url: u, stream: s}", "redis: {url: u, stream: s, block: 2s}", false},
        {"redis: {url: u, stream: s}", "redis: {url: u, stream: s, consumer: other}", false},
        {"kafka: {brokers: b, topics: [t, u]}", "kafka: {brokers: b, topics: [t, u]}", true},
        {"kafka: {brokers: b, topics: [t, u]}", "kafka: {brokers: b, topics: [u, t]}", false},
        {"kafka: {brokers: b, topics: [t]}", "kafka: {brokers: b, topics: [t, u]}", false},
        {"kafka: {brokers: b, topics: [t], properties: {a: '1'}}",
         "kafka: {brokers: b, topics: [t], properties: {a: '2'}}", false},
        /* tls: {} (TLS with the system's CAs) and no tls: differ only in tls.given */
        {"kafka: {brokers: b, topics: [t]}", "kafka: {brokers: b, topics: [t], tls: {}}", false},
        {"kafka: {brokers: b, topics: [t], tls: {}}", "kafka: {brokers: b, topics: [t], tls: {}}",
         true},
        {"kafka: {brokers: b, topics: [t], sasl: {mechanism: PLAIN, username: u, password: p}}",
         "kafka: {brokers: b, topics: [t], sasl: {mechanism: PLAIN, username: u, password: q}}",
         false},
        {"rabbitmq: {url: u, queue: q}", "rabbitmq: {url: u, queue: q}", true},
        {"rabbitmq: {url: u, queue: q}", "rabbitmq: {url: u, queue: q, declare: {}}", false},
        {"rabbitmq: {url: u, queue: q, declare: {exchange: x, bindings: [a]}}",
         "rabbitmq: {url: u, queue: q, declare: {exchange: x, bindings: [b]}}", false},
        {"rabbitmq: {url: u, queue: q}", "rabbitmq: {url: u, queue: q, id_from: body_hash}", false},
        {"http: {path: /e}", "http: {path: /e, auth: {bearer: t}}", false},
        {"http: {path: /e, auth: {bearer: t}}", "http: {path: /e, auth: {bearer: t}}", true},
        {"http: {path: /e}", "redis: {url: u, stream: s}", false}, /* another kind */
    };
    char a[512], b[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(a, sizeof(a), "version: 1\nsources:\n  s: {%s}\n", cases[i].a);
        snprintf(b, sizeof(b), "version: 1\nsources:\n  s: {%s}\n", cases[i].b);
        if (same_settings(a, b, "s", false) != cases[i].same) {
            fail_msg("%s / %s: want %s", cases[i].a, cases[i].b, cases[i].same ? "same" : "differ");
        }
    }
    /* sinks through the same code: the shared auth table is compared too */
    assert_false(same_settings("version: 1\nsinks:\n  k: {http: {url: 'http://h', auth: {bearer: "
                               "a}}}\n",
                               "version: 1\nsinks:\n  k: {http: {url: 'http://h', auth: {bearer: "
                               "b}}}\n",
                               "k", true));
    assert_false(same_settings(
        "version: 1\nsinks:\n  k: {kafka: {brokers: b, topic: t}}\n",
        "version: 1\nsinks:\n  k: {kafka: {brokers: b, topic: t, tls: {}}}\n", "k", true));
    assert_true(same_settings("version: 1\nsinks:\n  k: {file: {path: p}}\n",
                              "version: 1\nsinks:\n  k: {file: {path: p, timeout: 3s}}\n", "k",
                              true)); /* timeout is every sink's, not the kind's */
}

static void test_full_file(void **state)
{
    char path[512];
    unsetenv("TD_TEST_TOKEN");
    fixture("good_full.yaml", path, sizeof(path));
    struct td_config *cfg = load_ok(path);

    assert_string_equal(cfg->daemon.http_listen, "127.0.0.1:9090");
    assert_int_equal(cfg->daemon.log_level, TD_LOG_DEBUG);
    assert_int_equal(cfg->daemon.log_format, TD_LOG_JSON);
    assert_int_equal(cfg->daemon.shutdown_grace_ms, 5000);
    assert_int_equal(cfg->nsources, 4);
    assert_int_equal(cfg->nsinks, 11);
    check_full_sources(cfg);
    check_full_sinks(cfg);

    const struct td_conf_trigger *trg = &cfg->triggers[0];
    assert_string_equal(trg->event_type, "com.example.click");
    assert_string_equal(trg->event_source, "/clicks");
    assert_string_equal(kv(&trg->event_set, "team"), "media");
    assert_string_equal(trg->reply, "dead4");
    assert_string_equal(trg->schema, "/schemas/click.json");
    assert_int_equal(trg->delivery.retry, 0);
    assert_int_equal(trg->delivery.backoff, TD_BACKOFF_LINEAR);
    assert_int_equal(trg->delivery.backoff_delay_ms, 1000);
    assert_int_equal(trg->delivery.timeout_ms, 3000);
    assert_int_equal(trg->delivery.retry_after_max_ms, 120000);
    assert_int_equal(trg->delivery.ordering, TD_ORDER_KEY);
    assert_int_equal(trg->delivery.concurrency, 1);
    assert_string_equal(trg->delivery.dead_letter, "dead");
    assert_int_equal(trg->delivery.dead_letter_pos.line, 58);
    assert_int_equal(trg->delivery.dead_letter_pos.col, 81);
    assert_int_equal(trg->delivery.nretry_on, 2);
    assert_int_equal(trg->delivery.retry_on[1], 503);

    /* ALL{ EXACT{type, n}, PREFIX{subject}, ANY{ SUFFIX{subject}, NOT{ EXACT{source} } } } */
    const struct td_filter *f = trg->filter;
    assert_non_null(f);
    assert_int_equal(f->kind, TD_FILTER_ALL);
    assert_int_equal(f->nchildren, 3);
    assert_int_equal(f->children[0]->kind, TD_FILTER_EXACT);
    assert_int_equal(f->children[0]->attrs.n, 2);
    assert_string_equal(kv(&f->children[0]->attrs, "n"), "1");
    assert_int_equal(f->children[1]->kind, TD_FILTER_PREFIX);
    assert_string_equal(kv(&f->children[1]->attrs, "subject"), "images/");
    const struct td_filter *any = f->children[2];
    assert_int_equal(any->kind, TD_FILTER_ANY);
    assert_int_equal(any->nchildren, 2);
    assert_int_equal(any->children[0]->kind, TD_FILTER_SUFFIX);
    assert_int_equal(any->children[1]->kind, TD_FILTER_NOT);
    assert_int_equal(any->children[1]->nchildren, 1);
    assert_int_equal(any->children[1]->children[0]->kind, TD_FILTER_EXACT);
    assert_string_equal(kv(&any->children[1]->children[0]->attrs, "source"), "/x");

    assert_string_equal(cfg->triggers[1].name, "defaults");
    assert_null(cfg->triggers[1].filter);
    td_config_free(cfg);
}

static void test_filter_only_legacy(void **state)
{
    write_file(g_file, BASE TRIG "    filter: {type: a, flag: true}\n");
    struct td_config *cfg = load_ok(g_file);
    const struct td_filter *f = cfg->triggers[0].filter;
    assert_int_equal(f->kind, TD_FILTER_ALL);
    assert_int_equal(f->nchildren, 1);
    assert_int_equal(f->children[0]->kind, TD_FILTER_EXACT);
    assert_string_equal(kv(&f->children[0]->attrs, "flag"), "true");
    td_config_free(cfg);
}

/* Knative's legacy map: "" means the attribute is present with any value. */
static void test_filter_legacy_any(void **state)
{
    write_file(g_file, BASE TRIG "    filter: {type: a, subject: ''}\n");
    struct td_config *cfg = load_ok(g_file);
    const struct td_filter *f = cfg->triggers[0].filter;
    assert_int_equal(f->kind, TD_FILTER_ALL);
    assert_int_equal(f->nchildren, 2);
    assert_int_equal(f->children[0]->kind, TD_FILTER_PREFIX);
    assert_string_equal(kv(&f->children[0]->attrs, "subject"), "");
    assert_int_equal(f->children[1]->kind, TD_FILTER_EXACT);
    assert_int_equal(f->children[1]->attrs.n, 1);
    assert_string_equal(kv(&f->children[1]->attrs, "type"), "a");
    td_config_free(cfg);
}

static void test_interpolation_in_file(void **state)
{
    setenv("TD_T_URL", "redis://secret@h", 1);
    setenv("TD_T_PREFETCH", "7", 1);
    unsetenv("TD_T_UNSET");
    write_file(g_file, "version: 1\n"
                       "sources:\n"
                       "  s: {redis: {url: \"${TD_T_URL}\", stream: \"$${literal}\", "
                       "batch: \"${TD_T_PREFETCH}\"}}\n"
                       "  r: {rabbitmq: {url: \"${TD_T_UNSET:-amqp://d}\", queue: q}}\n");
    struct td_config *cfg = load_ok(g_file);
    const struct td_conf_source *src = td_config_source(cfg, "s");
    assert_string_equal(TD_SETTINGS(src, struct td_conf_redis_source)->url, "redis://secret@h");
    assert_string_equal(TD_SETTINGS(src, struct td_conf_redis_source)->stream, "${literal}");
    assert_int_equal(TD_SETTINGS(src, struct td_conf_redis_source)->batch, 7);
    assert_string_equal(
        TD_SETTINGS(td_config_source(cfg, "r"), struct td_conf_rabbitmq_source)->url, "amqp://d");
    td_config_free(cfg);

    /* A secret value never appears in a message. */
    setenv("TD_T_LEVEL", "topsecret", 1);
    struct td_errors errs = {0};
    write_file(g_file, "version: 1\ndaemon: {log: {level: \"${TD_T_LEVEL}\"}}\n");
    assert_null(td_config_load(g_file, &errs));
    assert_int_equal(errs.n, 1);
    assert_null(strstr(errs.msgs[0], "topsecret"));
    char want[512];
    snprintf(want, sizeof(want),
             "%s:2:23: 'level' must be one of debug, info, warn, error (got value from "
             "${TD_T_LEVEL})",
             g_file);
    assert_string_equal(errs.msgs[0], want);
    td_errors_clear(&errs);
}

static void test_conf_examples(void **state)
{
    static const char *const files[] = {"conf/triggerd.yaml", "conf/demo.yaml",
                                        "conf/examples/redis-to-http.yaml"};
    const char *root = getenv("TD_SOURCE_DIR");
    char path[512];

    setenv("INGRESS_TOKEN", "t", 1);
    setenv("OPENFAAS_PASSWORD", "p", 1);
    setenv("AZ_KEY", "k", 1);
    setenv("AWS_SECRET", "s", 1);
    setenv("API_TOKEN", "a", 1);
    setenv("AWS_TOKEN", "w", 1);
    setenv("PARTNER_CLIENT_SECRET", "c", 1);
    setenv("KAFKA_PASSWORD", "k", 1);
    setenv("KAFKA_CLIENT_SECRET", "o", 1);
    setenv("TD_DEMO_REDIS_PORT", "6379", 1);
    setenv("TD_DEMO_FUNCTION_PORT", "8080", 1);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", root ? root : ".", files[i]);
        td_config_free(load_ok(path));
    }
}

/* Each bad_*.yaml fixture fails with exactly the message on its first line. */
static void test_bad_fixtures(void **state)
{
    char dirpath[512];
    char path[1024];
    char first[512];
    char want[1536];
    int count = 0;

    fixture("", dirpath, sizeof(dirpath));
    DIR *dir = opendir(dirpath);
    assert_non_null(dir);
    for (struct dirent *de; (de = readdir(dir)) != NULL;) {
        if (strncmp(de->d_name, "bad_", 4) != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s%s", dirpath, de->d_name);
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        assert_non_null(fgets(first, sizeof(first), fp));
        fclose(fp);
        first[strcspn(first, "\n")] = '\0';
        assert_true(strncmp(first, "# expect: ", 10) == 0);
        snprintf(want, sizeof(want), "%s:%s", path, first + 10);

        struct td_errors errs = {0};
        assert_null(td_config_load(path, &errs));
        if (errs.n != 1 || strcmp(errs.msgs[0], want) != 0) {
            for (size_t i = 0; i < errs.n; i++) {
                fprintf(stderr, "  got  %s\n", errs.msgs[i]);
            }
            fail_msg("%s: want %s", de->d_name, want);
        }
        td_errors_clear(&errs);
        count++;
    }
    closedir(dir);
    assert_true(count >= 3);
}

/* Random-ish garbage must never crash the loader (ASan watches). */
static void test_garbage(void **state)
{
    static const char *const inputs[] = {
        "\xef\xbb\xbf",
        "\xff\xfe\x00\x00",
        "version: 1\n\t- x\n",
        "{{{{",
        "]]]",
        "? ? ?",
        "version: !!binary aGVsbG8=\n",
        "&a [*a]",
        "version: 1\nsources: {s: {redis: [1, {]}}",
        "version: 1\ntriggers: [{filters: [{not: {not: {not: {any: [[]]}}}}]}]\n",
        "version: 1\nsinks: {k: {http: {url: ${}}}}\n",
        "%YAML 1.1\n---\nversion: 1\n",
        "version: 1\n...\n",
        "version: 1\n: x\n",
        "!<tag:x> a: 1\n",
        "version: 1\nsources: {\"\": {}}\n",
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct td_errors errs = {0};
        write_file(g_file, inputs[i]);
        struct td_config *cfg = td_config_load(g_file, &errs);
        td_config_free(cfg);
        td_errors_clear(&errs);
    }
}

static int setup(void **state)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/td_config_XXXXXX");
    if (!mkdtemp(g_dir)) {
        return -1;
    }
    snprintf(g_file, sizeof(g_file), "%s/t.yaml", g_dir);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_add),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_interpolate),
        cmocka_unit_test(test_errors_parse),
        cmocka_unit_test(test_errors_daemon),
        cmocka_unit_test(test_errors_no_kind),
        cmocka_unit_test(test_errors_sources),
        cmocka_unit_test(test_errors_sinks),
        cmocka_unit_test(test_errors_triggers),
        cmocka_unit_test(test_attr_name_bound),
        cmocka_unit_test(test_errors_delivery),
        cmocka_unit_test(test_errors_filters),
        cmocka_unit_test(test_errors_interpolation),
        cmocka_unit_test(test_directory_merge),
        cmocka_unit_test(test_directory_errors),
        cmocka_unit_test(test_version_forms),
        cmocka_unit_test(test_shutdown_grace_bound),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_table_defaults),
        cmocka_unit_test(test_same_settings),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_filter_only_legacy),
        cmocka_unit_test(test_filter_legacy_any),
        cmocka_unit_test(test_interpolation_in_file),
        cmocka_unit_test(test_conf_examples),
        cmocka_unit_test(test_bad_fixtures),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
