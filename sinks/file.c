/* file.c - the file sink: appends each event as one JSON line (structured mode) and fsyncs
 * before reporting success, so a dead letter written here survives a crash before the source
 * message is acknowledged. Writes happen on a thread of the sink's own, since write+fsync
 * blocks; results come back to the loop with td_loop_post. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ce_json.h"
#include "cloudevent.h"
#include "conf_table.h"
#include "file_sink.h"
#include "log.h"
#include "loop.h"
#include "sink.h"

struct file_job {
    struct file_job *next;
    struct file_job *all_next; /* every job alive, for teardown */
    struct file_job *all_prev;
    struct td_attempt *a;
    char *line;
    size_t len;
    int err; /* errno of the write, 0 on success */
};

struct file_sink {
    struct td_sink *k;
    int fd;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop;
    struct file_job *head, *tail; /* queued for the writer */
    struct file_job *all;         /* loop thread only... and teardown */
};

static void job_unlink(struct file_sink *fs, struct file_job *j)
{
    if (j->all_prev) {
        j->all_prev->all_next = j->all_next;
    } else {
        fs->all = j->all_next;
    }
    if (j->all_next) {
        j->all_next->all_prev = j->all_prev;
    }
}

/* Loop thread: the writer finished a job. */
static void on_written(struct td_loop *loop, void *arg)
{
    struct file_job *j = arg;
    struct td_attempt *a = j->a;
    struct file_sink *fs = a->sink_state;
    pthread_mutex_lock(&fs->mu);
    job_unlink(fs, j);
    pthread_mutex_unlock(&fs->mu);
    int err = j->err;
    free(j->line);
    free(j);
    if (err) {
        char reason[160];
        snprintf(reason, sizeof(reason), "write %s: %s",
                 TD_SETTINGS(fs->k->conf, struct td_conf_file_sink)->path, strerror(err));
        td_attempt_done(a, TD_RESULT_RETRY, 0, -1, reason, NULL, 0);
    } else {
        td_attempt_done(a, TD_RESULT_OK, 0, -1, "written", NULL, 0);
    }
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static void *writer(void *arg)
{
    struct file_sink *fs = arg;
    pthread_mutex_lock(&fs->mu);
    for (;;) {
        while (!fs->head && !fs->stop) {
            pthread_cond_wait(&fs->cond, &fs->mu);
        }
        if (!fs->head) {
            break;
        }
        struct file_job *batch = fs->head;
        fs->head = fs->tail = NULL;
        pthread_mutex_unlock(&fs->mu);
        /* One fsync covers the whole batch: group commit. A batch that fails is cut off
         * again, so a retry never appends a whole line after a fragment of itself. */
        off_t start = lseek(fs->fd, 0, SEEK_END);
        int err = start < 0 ? errno : 0;
        for (struct file_job *j = batch; j; j = j->next) {
            j->err = err ? err : write_all(fs->fd, j->line, j->len);
            err = j->err;
        }
        if (!err && fdatasync(fs->fd) < 0) {
            err = errno;
        }
        if (err && start >= 0 && ftruncate(fs->fd, start) < 0) {
            td_log_error(NULL, NULL, NULL, "sink '%s': cannot cut a failed write off %s",
                         fs->k->name, TD_SETTINGS(fs->k->conf, struct td_conf_file_sink)->path);
        }
        for (struct file_job *j = batch, *next; j; j = next) {
            next = j->next;
            if (err && !j->err) {
                j->err = err;
            }
            if (td_loop_post(fs->k->loop, on_written, j) < 0) {
                j->err = ENOMEM; /* stays in fs->all; freed at teardown */
            }
        }
        pthread_mutex_lock(&fs->mu);
    }
    pthread_mutex_unlock(&fs->mu);
    return NULL;
}

static int deliver(struct td_sink *k, const struct td_event *ev, struct td_attempt *a)
{
    struct file_sink *fs = k->impl;
    struct file_job *j = calloc(1, sizeof(*j));
    size_t len = 0;
    char *json = td_ce_to_json(ev, &len);
    char *line = json ? realloc(json, len + 2) : NULL;
    if (!j || !line) {
        free(j);
        free(line ? line : json);
        snprintf(a->reason, sizeof(a->reason), "out of memory");
        return -1;
    }
    line[len] = '\n';
    line[len + 1] = '\0';
    j->line = line;
    j->len = len + 1;
    j->a = a;
    a->sink_state = fs;
    pthread_mutex_lock(&fs->mu);
    j->all_next = fs->all;
    if (fs->all) {
        fs->all->all_prev = j;
    }
    fs->all = j;
    if (fs->tail) {
        fs->tail->next = j;
    } else {
        fs->head = j;
    }
    fs->tail = j;
    pthread_cond_signal(&fs->cond);
    pthread_mutex_unlock(&fs->mu);
    return 0;
}

static void destroy(struct td_sink *k)
{
    struct file_sink *fs = k->impl;
    if (!fs) {
        return;
    }
    pthread_mutex_lock(&fs->mu);
    fs->stop = true;
    pthread_cond_signal(&fs->cond);
    pthread_mutex_unlock(&fs->mu);
    pthread_join(fs->thread, NULL);
    /* Teardown: jobs whose completion never ran are abandoned (see sink.h). Their posted
     * tasks are dropped unrun by td_loop_free. */
    while (fs->all) {
        struct file_job *j = fs->all;
        job_unlink(fs, j);
        free(j->line);
        free(j);
    }
    close(fs->fd);
    pthread_mutex_destroy(&fs->mu);
    pthread_cond_destroy(&fs->cond);
    free(fs);
    k->impl = NULL;
}

static const struct td_sink_ops file_ops = {
    .name = "file",
    .deliver = deliver,
    .destroy = destroy,
};

static int file_init(struct td_sink *k, char *err, size_t errlen)
{
    const char *path = TD_SETTINGS(k->conf, struct td_conf_file_sink)->path;
    struct file_sink *fs = calloc(1, sizeof(*fs));
    if (!fs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    fs->k = k;
    fs->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fs->fd < 0) {
        snprintf(err, errlen, "sink '%s': open %s: %s", k->name, path, strerror(errno));
        free(fs);
        return -1;
    }
    pthread_mutex_init(&fs->mu, NULL);
    pthread_cond_init(&fs->cond, NULL);
    if (pthread_create(&fs->thread, NULL, writer, fs) != 0) {
        snprintf(err, errlen, "sink '%s': cannot start the writer thread", k->name);
        close(fs->fd);
        pthread_mutex_destroy(&fs->mu);
        pthread_cond_destroy(&fs->cond);
        free(fs);
        return -1;
    }
    k->ops = &file_ops;
    k->impl = fs;
    snprintf(k->dest, sizeof(k->dest), "file://%s", path);
    return 0;
}

/* ---- settings: file: {path, timeout} ---- */
#define OFF(f) offsetof(struct td_conf_file_sink, f)

static const struct td_conf_key file_sink_keys[] = {REQ_STR("path", OFF(path)), TD_SINK_TIMEOUT};
static const struct td_conf_table file_sink_table = {TABLE("file sink", file_sink_keys)};
#undef OFF

const struct td_sink_desc td_sink_file = {
    TD_SINK_KIND("file", TD_SINK_FILE, &file_sink_table, struct td_conf_file_sink),
    .init = file_init};
