/* redrive.c - `triggerd redrive` (see redrive.h).
 *
 * It reuses the daemon's core rather than a delivery path of its own: a td_core with a loop,
 * the triggers of the trigger file built by td_core_build as the daemon builds them (no sources
 * run), and the entries handed to their trigger with td_core_submit as messages of a local
 * source (td_source_new_local) whose mailbox the loop watches. So a redriven event gets exactly
 * its trigger's policy: the payload schema, concurrency, timeouts, retries with backoff,
 * Retry-After, and the dead-letter target when it fails again.
 *
 * Only the triggers it sends through are built, and with them only their sinks (sink,
 * dead_letter, reply): --trigger's, else those whose dead_letter is TARGET, up front (a trigger
 * that cannot be built stops the redrive before it takes an entry); an entry naming another
 * trigger builds that one when it comes (wanted_triggers, ensure_built). A dry run builds none.
 * Before, every sink of the file was built: a producer and a broker connection for each Kafka
 * sink, a publisher thread for each RabbitMQ one, a file created for each file sink, AWS
 * credentials for each Lambda one, so a redrive failed on a machine without the credentials of
 * sinks it never used.
 *
 * Where dead letters are read from is a small store interface (struct store_ops): Redis
 * streams and JSON-lines files are here, a Kafka topic (redrive_kafka.c) and a RabbitMQ queue
 * (redrive_amqp.c) are wrapped here; store_for() picks one by the sink's kind. Entries are read a
 * page at a time while fewer than WINDOW are in flight, so memory stays bounded however many there
 * are. This is a command-line tool: the store's short synchronous reads run on its loop between
 * deliveries, which only ever delays its own work. An entry leaves the store once it was
 * delivered or dead-lettered again, never before, so a redrive killed half-way loses nothing and
 * sends again only what was in flight: Redis entries are removed with one XDEL per batch of
 * completions; Kafka and RabbitMQ let each go as it is done (ops->done: a commit at most a second
 * later, an ack) and put back the rest at the end (ops->flush). A file is the exception: it is
 * rewritten once, at the end, after the sinks were closed (a file target that gets new dead
 * letters is rewritten only once nothing writes to it), so a killed file redrive sends every
 * entry again. On a terminal a progress line is updated every second; the summary is always
 * printed.
 */
#include "file_sink.h"
#include "rabbitmq_sink.h"
#include "redis_sink.h"
#include "redrive.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ce_json.h"
#include "ce_redis.h"
#include "cloudevent.h"
#include "conn_budget.h"
#include "core.h"
#include "curl_api.h"
#include "deadletter.h"
#include "log.h"
#include "redis_conn.h"
#include "redis_util.h"
#include "redrive_store.h"
#include "sigwatch.h"

#define WINDOW      256  /* entries in flight at most */
#define PAGE        128  /* entries per read */
#define PROGRESS_MS 1000 /* the progress line on a terminal */

static const char usage[] =
    "usage: triggerd redrive -c PATH --from TARGET [--trigger NAME] [--reason R] [--limit N]\n"
    "                        [--dry-run] [--queue Q]\n"
    "  -c, --config PATH   the trigger file (or directory) the daemon runs with\n"
    "  --from TARGET       a sink of PATH used as a dead-letter target (redis, file, kafka or\n"
    "                      rabbitmq)\n"
    "  --queue Q           rabbitmq: the queue bound to the sink's exchange and routing key\n"
    "                      (default: the routing key, when the exchange is the default one)\n"
    "  --trigger NAME      send every entry through this trigger (default: each entry's\n"
    "                      deadlettertrigger attribute)\n"
    "  --reason R          only entries whose deadletterreason is R\n"
    "  --limit N           at most N entries\n"
    "  --dry-run           list what would be redriven; change nothing\n"
    "An entry leaves TARGET once it was delivered or dead-lettered again (kafka: the group\n"
    "triggerd-redrive commits past it). Only the triggers the entries go through, and their\n"
    "sink, dead_letter and reply, are built: no other sink of PATH is connected to.\n";

/* ---- the stores ---- */

/* struct td_redrive_entry (redrive_store.h): a handle (stream id, line number, partition/offset,
 * delivery tag) and the event. */
struct store;

struct store_ops {
    const char *kind;
    int (*open)(struct store *st, char *err, size_t errlen);
    /* Up to max entries after those read so far: how many (0 at the end), or -1. */
    int (*read)(struct store *st, struct td_redrive_entry *out, int max, char *err, size_t errlen);
    /* Removes these entries. 0 or -1. NULL: done removes. */
    int (*remove)(struct store *st, char **handles, size_t n, char *err, size_t errlen);
    /* remove may run while the run goes on, on each batch of completions (Redis: XDEL); else
     * it runs once, at the end, after the sinks were closed (a file is rewritten). */
    bool remove_as_done;
    /* Optional: this entry was delivered or dead-lettered again; it may leave at once. */
    void (*done)(struct store *st, const char *handle);
    /* Optional, at the end (after remove): finishes what done began, puts back the rest. */
    int (*flush)(struct store *st, char *err, size_t errlen);
    void (*close)(struct store *st);
};

struct store {
    const struct store_ops *ops;
    const struct td_conf_sink *conf;
    /* redis */
    struct td_rconn *rc;
    char cursor[64]; /* last id read */
    char last[64];   /* the stream's last id when we started: later entries are new ones */
    /* file */
    char *text; /* the file as it was when we started */
    size_t text_len;
    size_t pos;  /* next line starts here */
    long lineno; /* of the next line, from 1 */
    /* kafka, rabbitmq */
    struct td_redrive_kafka *kafka;
    struct td_redrive_amqp *amqp;
    const char *queue; /* --queue */
};

static int redis_open(struct store *st, char *err, size_t errlen)
{
    struct td_redis_addr addr;
    char why[256];
    if (td_redis_addr_parse(TD_SETTINGS(st->conf, struct td_conf_redis_sink)->url, &addr, why,
                            sizeof(why)) < 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    const struct td_conf_redis_sink *rconf = TD_SETTINGS(st->conf, struct td_conf_redis_sink);
    const struct td_redis_tls *tls = NULL;
    if (td_redis_conf_tls(addr.tls, &rconf->tls, &tls, why, sizeof(why)) < 0) {
        td_redis_addr_free(&addr);
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    st->rc = td_redis_open(&addr, tls, td_redis_addr_db(&addr), 5000, -1, why, sizeof(why));
    td_redis_addr_free(&addr);
    if (!st->rc) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    redisReply *r = td_rconn_command(st->rc, 5000, "XREVRANGE %s + - COUNT 1", rconf->stream);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "XREVRANGE: %s", r && r->str ? r->str : td_rconn_error(st->rc));
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }
    if (r->elements > 0 && r->element[0]->elements > 0) {
        snprintf(st->last, sizeof(st->last), "%s", r->element[0]->element[0]->str);
    }
    freeReplyObject(r);
    snprintf(st->cursor, sizeof(st->cursor), "-");
    return 0;
}

static struct td_event *redis_entry_event(const redisReply *e)
{
    const redisReply *kv = e->element[1];
    size_t n = kv->elements / 2;
    const char **f = calloc(n + 1, sizeof(*f)), **v = calloc(n + 1, sizeof(*v));
    size_t *fl = calloc(n + 1, sizeof(*fl)), *vl = calloc(n + 1, sizeof(*vl));
    struct td_event *ev = NULL;
    if (f && v && fl && vl) {
        for (size_t i = 0; i < n; i++) {
            f[i] = kv->element[2 * i]->str;
            fl[i] = (size_t)kv->element[2 * i]->len;
            v[i] = kv->element[2 * i + 1]->str;
            vl[i] = (size_t)kv->element[2 * i + 1]->len;
        }
        struct td_redis_entry entry = {.id = e->element[0]->str,
                                       .fields = f,
                                       .field_lens = fl,
                                       .values = v,
                                       .value_lens = vl,
                                       .n = n};
        bool wrapped = false;
        char why[200];
        ev = td_ce_from_redis(&entry, "dev.triggerd.redis.entry", "triggerd-redrive", &wrapped, why,
                              sizeof(why));
    }
    free(f);
    free(v);
    free(fl);
    free(vl);
    return ev;
}

static int redis_read(struct store *st, struct td_redrive_entry *out, int max, char *err,
                      size_t errlen)
{
    if (!st->last[0]) {
        return 0; /* the stream was empty */
    }
    char from[70];
    snprintf(from, sizeof(from), "%s%s", strcmp(st->cursor, "-") == 0 ? "" : "(", st->cursor);
    redisReply *r = td_rconn_command(st->rc, 5000, "XRANGE %s %s %s COUNT %d",
                                     TD_SETTINGS(st->conf, struct td_conf_redis_sink)->stream, from,
                                     st->last, max);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "XRANGE: %s", r && r->str ? r->str : td_rconn_error(st->rc));
        if (r) {
            freeReplyObject(r);
        }
        return -1;
    }
    int n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[1]->type != REDIS_REPLY_ARRAY) {
            continue;
        }
        snprintf(st->cursor, sizeof(st->cursor), "%s", e->element[0]->str);
        out[n].handle = strdup(e->element[0]->str);
        out[n].ev = redis_entry_event(e);
        n++;
    }
    freeReplyObject(r);
    if (n == 0 && r) {
        st->last[0] = '\0'; /* read up to where we started */
    }
    return n;
}

static int redis_remove(struct store *st, char **handles, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i += 500) {
        size_t m = n - i < 500 ? n - i : 500;
        const char **argv = calloc(m + 2, sizeof(*argv));
        size_t *lens = calloc(m + 2, sizeof(*lens));
        if (!argv || !lens) {
            free(argv);
            free(lens);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        argv[0] = "XDEL";
        argv[1] = TD_SETTINGS(st->conf, struct td_conf_redis_sink)->stream;
        for (size_t j = 0; j < m; j++) {
            argv[j + 2] = handles[i + j];
        }
        for (size_t j = 0; j < m + 2; j++) {
            lens[j] = strlen(argv[j]);
        }
        redisReply *r = td_rconn_command_argv(st->rc, 5000, (int)(m + 2), argv, lens);
        free(argv);
        free(lens);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "XDEL: %s", r && r->str ? r->str : td_rconn_error(st->rc));
            if (r) {
                freeReplyObject(r);
            }
            return -1;
        }
        freeReplyObject(r);
    }
    return 0;
}

static void redis_close(struct store *st)
{
    td_rconn_free(st->rc);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f) {
        return NULL;
    }
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 131072;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, 65536, f);
        n += r;
        if (r == 0) {
            break;
        }
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int file_open(struct store *st, char *err, size_t errlen)
{
    st->text = slurp(TD_SETTINGS(st->conf, struct td_conf_file_sink)->path, &st->text_len);
    if (!st->text) {
        snprintf(err, errlen, "cannot read %s",
                 TD_SETTINGS(st->conf, struct td_conf_file_sink)->path);
        return -1;
    }
    st->lineno = 1;
    return 0;
}

static int file_read(struct store *st, struct td_redrive_entry *out, int max, char *err,
                     size_t errlen)
{
    int n = 0;
    while (n < max && st->pos < st->text_len) {
        char *line = st->text + st->pos;
        char *nl = memchr(line, '\n', st->text_len - st->pos);
        size_t len = nl ? (size_t)(nl - line) : st->text_len - st->pos;
        if (!nl) {
            break; /* a partial last line is being written: leave it */
        }
        st->pos += len + 1;
        long no = st->lineno++;
        if (len == 0) {
            continue;
        }
        char handle[32], why[200];
        snprintf(handle, sizeof(handle), "%ld", no);
        out[n].handle = strdup(handle);
        out[n].ev = td_ce_from_json(line, len, why, sizeof(why));
        n++;
    }
    return n;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* Rewrites the file without the removed lines; what was appended since we read it stays. */
static int file_remove(struct store *st, char **handles, size_t n, char *err, size_t errlen)
{
    long *lines = calloc(n + 1, sizeof(*lines));
    size_t now_len = 0;
    char *now = slurp(TD_SETTINGS(st->conf, struct td_conf_file_sink)->path, &now_len);
    char tmp[4096];
    FILE *f = NULL;
    int rc = -1;
    if (!lines || !now || now_len < st->text_len) {
        snprintf(err, errlen, "cannot read %s again (or it shrank)",
                 TD_SETTINGS(st->conf, struct td_conf_file_sink)->path);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        lines[i] = atol(handles[i]);
    }
    qsort(lines, n, sizeof(*lines), cmp_long);
    snprintf(tmp, sizeof(tmp), "%s.redrive.tmp",
             TD_SETTINGS(st->conf, struct td_conf_file_sink)->path);
    f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot write %s", tmp);
        goto fail;
    }
    size_t pos = 0, k = 0;
    long no = 1;
    while (pos < st->text_len) {
        char *nl = memchr(now + pos, '\n', st->text_len - pos);
        size_t len = nl ? (size_t)(nl - (now + pos)) + 1 : st->text_len - pos;
        while (k < n && lines[k] < no) {
            k++;
        }
        if (!(k < n && lines[k] == no)) {
            fwrite(now + pos, 1, len, f);
        }
        pos += len;
        no++;
    }
    fwrite(now + st->text_len, 1, now_len - st->text_len, f);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        snprintf(err, errlen, "cannot write %s", tmp);
        goto fail;
    }
    struct stat sb;
    if (stat(TD_SETTINGS(st->conf, struct td_conf_file_sink)->path, &sb) == 0) {
        fchmod(fileno(f), sb.st_mode & 07777);
    }
    if (fclose(f) != 0 || rename(tmp, TD_SETTINGS(st->conf, struct td_conf_file_sink)->path) != 0) {
        f = NULL;
        snprintf(err, errlen, "cannot replace %s",
                 TD_SETTINGS(st->conf, struct td_conf_file_sink)->path);
        goto fail;
    }
    f = NULL;
    rc = 0;
fail:
    if (f) {
        fclose(f);
        unlink(tmp);
    }
    free(lines);
    free(now);
    return rc;
}

static void file_close(struct store *st)
{
    free(st->text);
}

static int kafka_open(struct store *st, char *err, size_t errlen)
{
    st->kafka = td_redrive_kafka_open(st->conf, err, errlen);
    return st->kafka ? 0 : -1;
}

static int kafka_read(struct store *st, struct td_redrive_entry *out, int max, char *err,
                      size_t errlen)
{
    return td_redrive_kafka_read(st->kafka, out, max, err, errlen);
}

static void kafka_done(struct store *st, const char *handle)
{
    td_redrive_kafka_done(st->kafka, handle);
}

static int kafka_flush(struct store *st, char *err, size_t errlen)
{
    return td_redrive_kafka_flush(st->kafka, err, errlen);
}

static void kafka_close(struct store *st)
{
    td_redrive_kafka_close(st->kafka);
}

static int amqp_open(struct store *st, char *err, size_t errlen)
{
    st->amqp = td_redrive_amqp_open(st->conf, st->queue, err, errlen);
    return st->amqp ? 0 : -1;
}

static int amqp_read(struct store *st, struct td_redrive_entry *out, int max, char *err,
                     size_t errlen)
{
    return td_redrive_amqp_read(st->amqp, out, max, err, errlen);
}

static void amqp_done(struct store *st, const char *handle)
{
    td_redrive_amqp_done(st->amqp, handle);
}

static int amqp_flush(struct store *st, char *err, size_t errlen)
{
    return td_redrive_amqp_flush(st->amqp, err, errlen);
}

static void amqp_close(struct store *st)
{
    td_redrive_amqp_close(st->amqp);
}

static const struct store_ops redis_store = {.kind = "redis",
                                             .open = redis_open,
                                             .read = redis_read,
                                             .remove = redis_remove,
                                             .remove_as_done = true,
                                             .close = redis_close};
static const struct store_ops file_store = {.kind = "file",
                                            .open = file_open,
                                            .read = file_read,
                                            .remove = file_remove,
                                            .close = file_close};
static const struct store_ops kafka_store = {.kind = "kafka",
                                             .open = kafka_open,
                                             .read = kafka_read,
                                             .done = kafka_done,
                                             .flush = kafka_flush,
                                             .close = kafka_close};
static const struct store_ops amqp_store = {.kind = "rabbitmq",
                                            .open = amqp_open,
                                            .read = amqp_read,
                                            .done = amqp_done,
                                            .flush = amqp_flush,
                                            .close = amqp_close};

static const struct store_ops *store_for(enum td_sink_kind kind)
{
    switch (kind) {
    case TD_SINK_REDIS:
        return &redis_store;
    case TD_SINK_FILE:
        return &file_store;
    case TD_SINK_KAFKA:
        return &kafka_store;
    case TD_SINK_RABBITMQ:
        return &amqp_store;
    default:
        return NULL;
    }
}

/* ---- the run ---- */

struct redrive {
    struct td_core core;
    struct td_source *src; /* local (no thread): its mailbox brings completions back */
    struct store store;
    const char *from;  /* --from: TARGET */
    bool *unbuildable; /* per trigger (cfg->ntriggers): building it failed, said once */
    const char *only_trigger, *reason;
    long limit;
    bool dry_run;
    bool eof, interrupted, progress;
    long selected, skipped, unreadable, outstanding;
    long acked, released;
    char **done; /* handles to remove at the end */
    size_t ndone, capdone;
    long removed;       /* removed from the store while the run went on */
    bool remove_failed; /* a removal during the run failed (said once; retried at the end) */
    int sigfd;
    int late_signals; /* after the loop stopped: on the watcher thread only (on_signal_late) */
    struct td_timer progress_timer;
    int rc;
};

static struct td_trigger_rt *find_trigger(struct redrive *r, const char *name)
{
    for (size_t i = 0; name && i < r->core.cfg->ntriggers; i++) {
        if (strcmp(r->core.triggers[i].conf->name, name) == 0) {
            return &r->core.triggers[i];
        }
    }
    return NULL;
}

/* Whether trg can take entries: built up front (wanted_triggers), or now, for an entry that
 * names a trigger whose dead_letter is not TARGET (the file changed since it was written). A
 * trigger that cannot be built is said once; its entries stay in TARGET and the exit status
 * is 1. */
static bool ensure_built(struct redrive *r, struct td_trigger_rt *trg)
{
    size_t i = (size_t)(trg - r->core.triggers);
    char err[600];
    if (r->unbuildable[i]) {
        return false;
    }
    if (td_core_build_trigger(&r->core, trg, err, sizeof(err)) == 0) {
        return true;
    }
    fprintf(stderr, "redrive: %s; the entries for trigger '%s' are left in place\n", err,
            trg->conf->name);
    r->unbuildable[i] = true;
    r->rc = 1;
    return false;
}

/* Takes e (the handle and the event); submits it, lists it, or skips it. */
static void take_entry(struct redrive *r, struct td_redrive_entry *e)
{
    const char *reason = e->ev ? td_event_get(e->ev, "deadletterreason") : NULL;
    const char *tname = r->only_trigger;
    if (!e->ev) {
        fprintf(stderr, "redrive: entry %s is not a readable CloudEvent; left in place\n",
                e->handle ? e->handle : "?");
        r->unreadable++;
        goto skip;
    }
    if (r->reason && (!reason || strcmp(reason, r->reason) != 0)) {
        r->skipped++;
        goto skip;
    }
    if (!tname) {
        tname = td_event_get(e->ev, "deadlettertrigger");
    }
    struct td_trigger_rt *trg = find_trigger(r, tname);
    if (!trg) {
        fprintf(stderr, "redrive: entry %s: no trigger '%s' in the configuration; left in place\n",
                e->handle, tname ? tname : "(deadlettertrigger missing)");
        r->skipped++;
        goto skip;
    }
    if (!r->dry_run && !ensure_built(r, trg)) {
        r->skipped++;
        goto skip;
    }
    r->selected++;
    if (r->dry_run) {
        printf("would redrive %s (id %s, %s) through trigger %s\n", e->handle,
               td_event_get(e->ev, "id"), reason ? reason : "no reason", trg->conf->name);
        goto skip;
    }
    td_deadletter_strip(e->ev);
    struct td_msg *msg = calloc(1, sizeof(*msg));
    if (!msg) {
        r->released++;
        goto skip;
    }
    msg->src = r->src;
    msg->ev = e->ev;
    msg->coord = e->handle;
    msg->received_ms = td_now_ms();
    r->outstanding++;
    atomic_fetch_add(&r->src->inflight, 1);
    atomic_fetch_add(&r->src->received, 1);
    td_core_submit(&r->core, trg, msg);
    return;
skip:
    td_event_unref(e->ev);
    free(e->handle);
}

static void finish_if_done(struct redrive *r)
{
    if (r->outstanding == 0 && (r->eof || r->interrupted)) {
        td_loop_stop(r->core.loop);
    }
}

static void feed(struct redrive *r)
{
    struct td_redrive_entry page[PAGE];
    char err[300];
    while (!r->eof && !r->interrupted && r->outstanding < WINDOW) {
        int want = PAGE;
        if (r->limit > 0) {
            long left = r->limit - r->selected;
            if (left <= 0) {
                r->eof = true;
                break;
            }
            want = left < want ? (int)left : want;
        }
        int n = r->store.ops->read(&r->store, page, want, err, sizeof(err));
        if (n < 0) {
            fprintf(stderr, "redrive: reading '%s': %s\n", r->store.conf->name, err);
            r->rc = 1;
            r->eof = true;
            break;
        }
        if (n == 0) {
            r->eof = true;
            break;
        }
        for (int i = 0; i < n; i++) {
            take_entry(r, &page[i]);
        }
    }
    finish_if_done(r);
}

/* Keeps handle (taken) to remove at the end; on out of memory it stays in the store (a later
 * redrive sends it again). */
static void keep_for_end(struct redrive *r, char *handle)
{
    if (r->ndone == r->capdone) {
        size_t cap = r->capdone ? r->capdone * 2 : 256;
        char **d = realloc(r->done, cap * sizeof(*d));
        if (d) {
            r->done = d;
            r->capdone = cap;
        }
    }
    if (r->ndone < r->capdone) {
        r->done[r->ndone++] = handle;
    } else {
        free(handle);
    }
}

/* Removes a batch of redriven entries from the store now (Redis: one XDEL), so a redrive that is
 * killed half-way sends again only what was in flight. Takes the handles. */
static void remove_now(struct redrive *r, char **handles, size_t n)
{
    char err[300];
    if (n == 0) {
        return;
    }
    if (!r->remove_failed && r->store.ops->remove(&r->store, handles, n, err, sizeof(err)) == 0) {
        r->removed += (long)n;
        for (size_t i = 0; i < n; i++) {
            free(handles[i]);
        }
        return;
    }
    if (!r->remove_failed) {
        fprintf(stderr,
                "redrive: removing redriven entries from '%s': %s (tried again at the end)\n",
                r->store.conf->name, err);
        r->remove_failed = true;
    }
    for (size_t i = 0; i < n; i++) {
        keep_for_end(r, handles[i]);
    }
}

static void on_mailbox(struct td_loop *loop, int fd, uint32_t events, void *arg)
{
    struct redrive *r = arg;
    struct td_msg *msg = td_source_take_done(r->src);
    char *batch[PAGE];
    size_t nbatch = 0;
    while (msg) {
        struct td_msg *next = msg->next;
        r->outstanding--;
        if (msg->release) {
            r->released++;
        } else if (r->store.ops->done) {
            r->acked++;
            r->store.ops->done(&r->store, msg->coord);
        } else if (r->store.ops->remove_as_done) {
            r->acked++;
            batch[nbatch++] = msg->coord;
            msg->coord = NULL;
            if (nbatch == PAGE) {
                remove_now(r, batch, nbatch);
                nbatch = 0;
            }
        } else {
            r->acked++;
            keep_for_end(r, msg->coord); /* removed from the store at the end */
            msg->coord = NULL;
        }
        td_msg_free(msg);
        msg = next;
    }
    remove_now(r, batch, nbatch);
    feed(r);
}

static void on_signal(struct td_loop *loop, int fd, uint32_t events, void *arg)
{
    struct redrive *r = arg;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (r->interrupted) {
            fprintf(stderr, "\nredrive: second signal; what is still in flight stays in the "
                            "target\n");
            td_loop_stop(loop);
            return;
        }
        r->interrupted = true;
        fprintf(stderr, "\nredrive: interrupted; finishing the %ld in flight (again to stop now)\n",
                r->outstanding);
        finish_if_done(r);
    }
}

/* Signals once the loop stopped, on the watcher thread (sigwatch.h): on_signal no longer reads
 * them, and teardown, the removal of what was redriven from the target and its close may wait
 * for a broker that does not answer (a Kafka target's last commit and consumer close have no
 * bound of their own). As in the loop, a first signal asks to finish, the next one stops:
 * here at once, as what was delivered and is not yet removed from the target stays there
 * (Kafka: not committed; RabbitMQ: not acked) and the next redrive sends it again. Standard
 * output is flushed first: a dry run's lines may still be buffered, and the main thread does
 * not write to it until the watcher is stopped. */
static void on_signal_late(int signo, void *arg)
{
    struct redrive *r = arg;
    if (r->late_signals++ == 0) {
        fprintf(stderr, "\nredrive: interrupted; finishing with '%s' (again to stop now)\n",
                r->from);
        return;
    }
    fflush(stdout);
    fprintf(stderr, "\nredrive: second signal; exiting now: what was delivered and not yet "
                    "removed from the target is sent again by the next redrive\n");
    _exit(1);
}

static void totals(struct redrive *r, uint64_t *delivered, uint64_t *dead)
{
    *delivered = *dead = 0;
    for (size_t i = 0; i < r->core.cfg->ntriggers; i++) {
        *delivered += r->core.triggers[i].stats.delivered;
        *dead += r->core.triggers[i].stats.dead_lettered;
    }
}

static int64_t on_progress(struct td_loop *loop, void *arg)
{
    struct redrive *r = arg;
    uint64_t delivered, dead;
    totals(r, &delivered, &dead);
    fprintf(stderr,
            "\rredrive: %ld sent, %ld in flight, %llu delivered, %llu dead-lettered again, %ld "
            "removed from the target ",
            r->selected, r->outstanding, (unsigned long long)delivered, (unsigned long long)dead,
            r->removed + (r->store.ops->done ? r->acked : 0));
    return PROGRESS_MS;
}

/* The triggers to build before reading (a cfg->ntriggers array, the caller frees it; NULL when
 * out of memory): --trigger's, as every entry goes through it; else those whose dead_letter is
 * TARGET, the ones its entries name (dispatch writes the trigger that dead-lettered an event,
 * router.c picks one of those for an invalid event). A dry run delivers nothing: none. */
static bool *wanted_triggers(const struct redrive *r)
{
    const struct td_config *cfg = r->core.cfg;
    bool *want = calloc(cfg->ntriggers + 1, sizeof(*want));
    for (size_t i = 0; want && !r->dry_run && i < cfg->ntriggers; i++) {
        const struct td_conf_trigger *tc = &cfg->triggers[i];
        want[i] = r->only_trigger
                      ? strcmp(tc->name, r->only_trigger) == 0
                      : tc->delivery.dead_letter && strcmp(tc->delivery.dead_letter, r->from) == 0;
    }
    return want;
}

static int build(struct redrive *r, char *err, size_t errlen)
{
    struct td_core *core = &r->core;
    struct td_config *cfg = core->cfg;
    core->loop = td_loop_new();
    core->http = core->loop ? td_http_client_new(core->loop) : NULL;
    core->sources = calloc(cfg->nsources + 1, sizeof(*core->sources));
    if (!core->loop || !core->http || !core->sources) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* No sources of the file run: the entries come from the store, as messages of a local
     * source whose mailbox brings their completions back to this loop. */
    r->src = td_source_new_local("redrive", err, errlen);
    if (!r->src) {
        return -1;
    }
    if (td_loop_fd_add(core->loop, r->src->mailbox_fd, EPOLLIN, on_mailbox, r) < 0) {
        snprintf(err, errlen, "cannot watch the completions");
        return -1;
    }
    /* The triggers exactly as the daemon builds them (payload schema included), but only
     * those the entries go through, with their sinks alone. */
    bool *want = wanted_triggers(r);
    r->unbuildable = calloc(cfg->ntriggers + 1, sizeof(*r->unbuildable));
    if (!want || !r->unbuildable) {
        free(want);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct td_core_parts parts = {0};
    int rc = td_core_build(core, cfg, want, &parts, err, errlen);
    free(want);
    if (rc < 0) {
        td_core_parts_free(&parts, cfg);
        return -1;
    }
    td_core_install(core, cfg, &parts);
    td_http_client_reserve(core->http, td_conn_budget(cfg)); /* as the daemon: reuse connections */
    return 0;
}

static void teardown(struct redrive *r)
{
    struct td_core *core = &r->core;
    if (core->loop) {
        td_loop_run_pending(core->loop);
    }
    td_sinks_free(core->sinks, core->sinks ? core->cfg->nsinks : 0);
    if (core->loop) {
        td_dispatch_abandon_all(core);
    }
    if (r->src) {
        /* Completions that arrived after the loop stopped: delivered, but not counted as
         * removable (they stay in the target; a later redrive sends them again). */
        td_source_free(r->src);
    }
    td_http_client_free(core->http);
    td_loop_free(core->loop);
    free(core->sinks);
    free(core->sources);
    for (size_t i = 0; core->triggers && i < core->cfg->ntriggers; i++) {
        td_core_trigger_fini(&core->triggers[i]);
    }
    free(core->triggers);
}

static int parse_args(struct redrive *r, int argc, char **argv, const char **path,
                      const char **from)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"from", required_argument, NULL, 'f'},
        {"trigger", required_argument, NULL, 't'},
        {"reason", required_argument, NULL, 'r'},
        {"limit", required_argument, NULL, 'l'},
        {"dry-run", no_argument, NULL, 'n'},
        {"queue", required_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            *path = optarg;
            break;
        case 'f':
            *from = optarg;
            break;
        case 't':
            r->only_trigger = optarg;
            break;
        case 'r':
            r->reason = optarg;
            break;
        case 'l':
            r->limit = strtol(optarg, &end, 10);
            if (*end || r->limit <= 0) {
                fprintf(stderr, "redrive: --limit needs a positive number\n");
                return 2;
            }
            break;
        case 'n':
            r->dry_run = true;
            break;
        case 'q':
            r->store.queue = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!*path || !*from || optind < argc) {
        fputs(usage, stderr);
        return 2;
    }
    return -1;
}

/* Reads, delivers and removes; prints the summary. Returns the exit status. */
static int run(struct redrive *r, const char *from)
{
    char err[512];
    uint64_t delivered = 0, dead = 0;
    bool built = false;
    struct td_sigwatch *watch = NULL;
    if (r->store.ops->open(&r->store, err, sizeof(err)) < 0) {
        fprintf(stderr, "redrive: cannot read '%s': %s\n", from, err);
        r->store.ops->close(&r->store);
        return 1;
    }
    /* Blocked before build: the sinks' threads (a RabbitMQ sink publishes on one) inherit the
     * mask, and a thread that has them unblocked takes a SIGINT with its default action, killing
     * the process instead of letting the signalfd report it. One that comes while building stays
     * pending and is read once the signalfd exists. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    if (build(r, err, sizeof(err)) < 0) {
        fprintf(stderr, "redrive: %s\n", err);
        r->rc = 1;
        goto fail;
    }
    built = true;
    r->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (r->sigfd >= 0) {
        td_loop_fd_add(r->core.loop, r->sigfd, EPOLLIN, on_signal, r);
    }
    r->progress = !r->dry_run && isatty(STDERR_FILENO);
    td_timer_init(&r->progress_timer, on_progress, r);
    if (r->progress) {
        td_timer_start(r->core.loop, &r->progress_timer, PROGRESS_MS);
    }
    feed(r);
    if (r->outstanding > 0 || !(r->eof || r->interrupted)) {
        td_loop_run(r->core.loop);
    }
    /* From here until the target is closed, signals are read on a thread of their own
     * (on_signal_late): the loop does not run any more. */
    if (r->sigfd >= 0) {
        td_loop_fd_del(r->core.loop, r->sigfd);
        r->late_signals = r->interrupted ? 1 : 0;
        watch = td_sigwatch_start(r->sigfd, on_signal_late, r);
        if (!watch) {
            fprintf(stderr, "redrive: cannot watch signals while finishing (%s)\n",
                    strerror(errno));
        }
    }
    if (r->progress) {
        td_timer_stop(r->core.loop, &r->progress_timer);
        on_progress(r->core.loop, r);
        fputc('\n', stderr);
    }
    totals(r, &delivered, &dead);
fail:
    teardown(r);
    if (r->ndone > 0 && r->store.ops->remove(&r->store, r->done, r->ndone, err, sizeof(err)) < 0) {
        fprintf(stderr,
                "redrive: could not remove the redriven entries from '%s': %s (the next redrive "
                "sends them again)\n",
                from, err);
        r->rc = 1;
    }
    if (r->store.ops->flush && r->store.ops->flush(&r->store, err, sizeof(err)) < 0) {
        fprintf(stderr, "redrive: finishing with '%s': %s\n", from, err);
        r->rc = 1;
    }
    r->store.ops->close(&r->store);
    td_sigwatch_stop(watch); /* joined before its signalfd closes */
    if (r->sigfd >= 0) {
        close(r->sigfd);
    }
    if (!built) {
        return 1;
    }
    long left = r->outstanding;
    if (r->dry_run) {
        printf("dry run: %ld entries would be redriven, %ld skipped, %ld unreadable\n", r->selected,
               r->skipped, r->unreadable);
    } else {
        printf("redriven %ld entries from '%s': %llu delivered, %llu dead-lettered again, %ld "
               "left in place (%ld not finished, %ld released); %ld skipped, %ld unreadable\n",
               r->selected, from, (unsigned long long)delivered, (unsigned long long)dead,
               r->released + left, left, r->released, r->skipped, r->unreadable);
    }
    return r->rc ? r->rc : (r->released + left > 0 ? 1 : 0);
}

int td_redrive_main(int argc, char **argv)
{
    struct redrive *r = calloc(1, sizeof(*r));
    struct td_errors errs = {0};
    struct td_config *cfg = NULL;
    const char *path = NULL, *from = NULL;
    int rc = 2;
    if (!r) {
        return 1;
    }
    r->sigfd = -1;
    int st = parse_args(r, argc, argv, &path, &from);
    if (st >= 0) {
        free(r);
        return st;
    }
    cfg = td_config_load(path, &errs);
    if (!cfg) {
        for (size_t i = 0; i < errs.n; i++) {
            fprintf(stderr, "%s\n", errs.msgs[i]);
        }
        goto fail;
    }
    td_log_init(TD_LOG_WARN, cfg->daemon.log_format);
    const struct td_conf_sink *target = td_config_sink(cfg, from);
    if (!target) {
        fprintf(stderr, "redrive: no sink named '%s' in %s\n", from, path);
        goto fail;
    }
    r->store.conf = target;
    r->store.ops = store_for(target->kind);
    if (!r->store.ops) {
        fprintf(stderr,
                "redrive: sink '%s' is not a target redrive can read (redis, file, kafka, "
                "rabbitmq)\n",
                from);
        goto fail;
    }
    if (target->kind == TD_SINK_RABBITMQ && !r->store.queue) {
        const char *ex = TD_SETTINGS(target, struct td_conf_rabbitmq_sink)->exchange,
                   *key = TD_SETTINGS(target, struct td_conf_rabbitmq_sink)->routing_key;
        if ((ex && ex[0]) || !key || !key[0]) {
            fprintf(stderr,
                    "redrive: sink '%s' publishes to exchange '%s': name the queue its dead "
                    "letters are in with --queue\n",
                    from, ex ? ex : "");
            goto fail;
        }
        r->store.queue = key; /* the default exchange routes to the queue of that name */
    }
    bool found = !r->only_trigger;
    for (size_t i = 0; i < cfg->ntriggers && !found; i++) {
        found = strcmp(cfg->triggers[i].name, r->only_trigger) == 0;
    }
    if (!found) {
        fprintf(stderr, "redrive: no trigger named '%s' in %s\n", r->only_trigger, path);
        goto fail;
    }
    r->core.cfg = cfg;
    r->from = from;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = run(r, from);
    curl_global_cleanup();
fail:
    for (size_t i = 0; i < r->ndone; i++) {
        free(r->done[i]);
    }
    free(r->done);
    free(r->unbuildable);
    td_errors_clear(&errs);
    td_config_free(cfg);
    free(r);
    return rc;
}
