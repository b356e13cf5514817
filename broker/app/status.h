/* status.h - `triggerd status -c PATH`: what the running daemon is doing, from its /status
 * endpoint on daemon.http.listen, as a table (or the JSON itself with --json).
 * Threads: the calling thread (a blocking HTTP request; this is a command, not the daemon).
 */
#ifndef TD_STATUS_H
#define TD_STATUS_H

/* argv[0] is "status". Exit status: 0, 1 (the daemon did not answer), 2 (usage, config). */
int td_status_main(int argc, char **argv);

#endif
