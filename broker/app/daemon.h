/* daemon.h - the lifecycle of `triggerd run`: load the trigger file, build the plugins, start
 * the sources and the loop, and on SIGTERM/SIGINT stop reading, let in-flight deliveries
 * finish within shutdown_grace, acknowledge what completed and leave the rest for
 * redelivery. A second signal exits at once.
 * Threads: the calling thread becomes the loop thread.
 */
#ifndef TD_DAEMON_H
#define TD_DAEMON_H

/* Returns the process exit code: 0 after a clean stop, 2 for a bad trigger file or settings
 * that cannot run, 1 for a runtime failure. */
int td_daemon_run(const char *config_path);

#endif
