/* procstat.h - the process_* figures Prometheus client libraries export, read from /proc/self.
 *
 * The names and meanings follow the client libraries (client_golang's process collector,
 * prometheus_client's ProcessCollector), so dashboards and alerts written for any exporter work on
 * triggerd unchanged: CPU seconds (user + system), resident and virtual memory in bytes, open and
 * maximum file descriptors, and the start time in UNIX seconds.
 */
#ifndef TD_PROCSTAT_H
#define TD_PROCSTAT_H

struct td_procstat {
    double cpu_seconds;        /* utime + stime */
    double resident_bytes;     /* rss pages x page size */
    double virtual_bytes;      /* vsize */
    double start_time_seconds; /* boot time + starttime ticks, UNIX seconds */
    long open_fds;             /* entries of /proc/self/fd; -1 unknown */
    long max_fds;              /* RLIMIT_NOFILE soft limit; -1 unknown (unlimited is -1 too) */
};

/* Any thread: fills ps from /proc/self/stat, /proc/stat (btime), /proc/self/fd and getrlimit.
 * 0, or -1 when /proc/self/stat is unreadable or malformed (ps is then all -1 / 0). */
int td_procstat_read(struct td_procstat *ps);

/* Any thread, pure: parses the text of /proc/<pid>/stat (the comm field may hold spaces and
 * parentheses: fields are counted after the last ')'). ticks is sysconf(_SC_CLK_TCK), page the
 * page size, btime the boot time in UNIX seconds. 0, or -1 when the text is malformed. */
int td_procstat_parse_stat(const char *text, long ticks, long page, long long btime,
                           struct td_procstat *ps);

#endif
