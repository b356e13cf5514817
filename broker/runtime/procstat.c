/* procstat.c - process_* figures from /proc/self (see procstat.h). Read on every scrape: a few
 * small /proc reads on the HTTP thread, never on the event loop. */
#include "procstat.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int td_procstat_parse_stat(const char *text, long ticks, long page, long long btime,
                           struct td_procstat *ps)
{
    const char *p = text ? strrchr(text, ')') : NULL;
    if (!p || ticks <= 0 || page <= 0) {
        return -1;
    }
    p++;
    /* Fields after the comm, numbered as in proc(5): 3 state, 14 utime, 15 stime, 22 starttime,
     * 23 vsize, 24 rss. */
    unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
    long long rss = 0;
    int field = 2;
    while (*p && field < 24) {
        while (*p == ' ') {
            p++;
        }
        if (!*p || *p == '\n') {
            return -1;
        }
        field++;
        char *end = NULL;
        if (field == 14 || field == 15 || field == 22 || field == 23) {
            unsigned long long v = strtoull(p, &end, 10);
            if (end == p) {
                return -1;
            }
            *(field == 14 ? &utime : field == 15 ? &stime : field == 22 ? &start : &vsize) = v;
        } else if (field == 24) {
            rss = strtoll(p, &end, 10);
            if (end == p) {
                return -1;
            }
        }
        while (*p && *p != ' ' && *p != '\n') {
            p++;
        }
    }
    if (field < 24) {
        return -1;
    }
    ps->cpu_seconds = (double)(utime + stime) / (double)ticks;
    ps->start_time_seconds = (double)btime + (double)start / (double)ticks;
    ps->virtual_bytes = (double)vsize;
    ps->resident_bytes = (double)(rss < 0 ? 0 : rss) * (double)page;
    return 0;
}

/* The "btime" line of /proc/stat: when the machine booted, UNIX seconds; -1 unknown. */
static long long boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f) {
        return -1;
    }
    char line[256];
    long long btime = -1;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "btime %lld", &btime) == 1) {
            break;
        }
    }
    fclose(f);
    return btime;
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        return -1;
    }
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n; /* counts the directory's own descriptor too, as the client libraries do */
}

int td_procstat_read(struct td_procstat *ps)
{
    memset(ps, 0, sizeof(*ps));
    ps->open_fds = count_fds();
    struct rlimit rl;
    ps->max_fds =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur : -1;
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f) {
        return -1;
    }
    char text[1024];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    long long btime = boot_time();
    if (td_procstat_parse_stat(text, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE),
                               btime < 0 ? 0 : btime, ps) < 0 ||
        btime < 0) {
        return -1;
    }
    return 0;
}
