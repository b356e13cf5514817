/* main.c - the command line: run, check, publish, redrive, status, version. Each command lives
 * in its own module; this file only parses arguments. The help texts here and in the commands'
 * modules are also the source of the man page (scripts/gen-man.py runs `triggerd --help` and
 * `triggerd COMMAND --help` at build time) and are compared with the shell completions in
 * tests/integration/test_cli.py, so they must list every option. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "daemon.h"
#include "kafka_log.h"
#include "publish.h"
#include "redrive.h"
#include "status.h"

static const char usage[] =
    "usage: triggerd COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  run     -c PATH        run the daemon with a trigger file or a directory of them\n"
    "  check   -c PATH        validate trigger files (exit 0 valid, 2 invalid)\n"
    "  publish URL [OPTIONS]  publish one message: redis://HOST:PORT/STREAM,\n"
    "                         kafka://HOST:PORT/TOPIC, amqp[s]://HOST:PORT/VHOST/EXCHANGE\n"
    "  redrive -c PATH --from TARGET [OPTIONS]\n"
    "                         send dead letters back through their trigger\n"
    "  status  -c PATH        what the running daemon is doing (its /status)\n"
    "  version                print the version\n"
    "\n"
    "options:\n"
    "  -h, --help             print this help ('triggerd COMMAND --help': a command's)\n"
    "  -V, --version          print the version\n"
    "\n"
    "Run 'triggerd COMMAND --help' for a command's options.\n";

static const char run_usage[] =
    "usage: triggerd run -c PATH\n"
    "  -c, --config PATH   a trigger file, or a directory of *.yaml files\n"
    "  -h, --help          print this help\n"
    "Runs in the foreground; logs go to stderr. SIGTERM/SIGINT drain and exit 0.\n";

static const char check_usage[] =
    "usage: triggerd check -c PATH\n"
    "  -c, --config PATH   a trigger file, or a directory of *.yaml files\n"
    "  -h, --help          print this help\n"
    "Prints each error as FILE:LINE:COLUMN: message and exits 2, or one line per trigger and\n"
    "exits 0.\n";

static const char version_usage[] = "usage: triggerd version\n"
                                    "  -h, --help          print this help\n"
                                    "Prints the version (also: triggerd -V, triggerd --version).\n";

static bool is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* Parses "-c PATH" for run and check. Returns the path, or NULL after printing why. */
static const char *config_arg(int argc, char **argv, const char *help, int *status)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            *status = 0;
            return NULL;
        default:
            fputs(help, stderr);
            *status = 2;
            return NULL;
        }
    }
    if (!path || optind < argc) {
        fputs(help, stderr);
        *status = 2;
        return NULL;
    }
    return path;
}

/* The commands that may open a Kafka client: the counts of repeated librdkafka lines still held
 * back (kafka_log.h) are logged before the process ends, as the daemon does at its exit. */
static int with_kafka_log_flushed(int rc)
{
    td_kafka_log_flush();
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    int status = 0;
    if (strcmp(cmd, "run") == 0) {
        const char *path = config_arg(argc - 1, argv + 1, run_usage, &status);
        return path ? td_daemon_run(path) : status;
    }
    if (strcmp(cmd, "check") == 0) {
        const char *path = config_arg(argc - 1, argv + 1, check_usage, &status);
        return path ? with_kafka_log_flushed(td_check_run(path)) : status;
    }
    if (strcmp(cmd, "publish") == 0) {
        return with_kafka_log_flushed(td_publish_main(argc - 1, argv + 1));
    }
    if (strcmp(cmd, "redrive") == 0) {
        return with_kafka_log_flushed(td_redrive_main(argc - 1, argv + 1));
    }
    if (strcmp(cmd, "status") == 0) {
        return td_status_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        if (argc > 2 && is_help(argv[2])) {
            fputs(version_usage, stdout);
            return 0;
        }
        if (argc > 2) {
            fputs(version_usage, stderr);
            return 2;
        }
        printf("triggerd %s\n", TD_VERSION);
        return 0;
    }
    if (is_help(cmd) || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "triggerd: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
