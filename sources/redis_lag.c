/* redis_lag.c - the consumer group's lag from Redis's point of view (see redis_lag.h). One
 * XINFO GROUPS (and, on Redis 7 when `lag` is nil, one XINFO STREAM) every lag interval on the
 * source's command connection: microseconds of Redis time, never on the read connection that
 * waits in XREADGROUP BLOCK, so delivery is not held up. */
#include "redis_lag.h"

#include <stdlib.h>
#include <string.h>

#define LAG_TIMEOUT_MS 5000 /* each command's; as the source's other commands */

const struct td_lag_family td_redis_lag_families[] = {
    {"triggerd_redis_stream_group_lag",
     "Entries of the stream not yet delivered to the consumer group (XINFO GROUPS lag; "
     "entries-added minus entries-read where Redis reports none)."},
    {"triggerd_redis_stream_group_messages_pending",
     "Entries delivered to the consumer group and not yet acknowledged (XINFO GROUPS pending)."},
    {NULL, NULL},
};

/* The value of key in a flat [key, value, ...] reply, or NULL. */
static const redisReply *field(const redisReply *r, const char *key)
{
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i];
        if ((k->type == REDIS_REPLY_STRING || k->type == REDIS_REPLY_STATUS) &&
            strcmp(k->str, key) == 0) {
            return r->element[i + 1];
        }
    }
    return NULL;
}

static bool is_int(const redisReply *v)
{
    return v && v->type == REDIS_REPLY_INTEGER;
}

/* Where Redis says lag nil: 0 when no entry follows last_id (XRANGE (last_id + COUNT 1), else
 * XINFO STREAM's entries-added minus entries_read when that is known (an upper bound: deleted
 * entries count); -1 when unknown, -2 when the connection failed. */
static long long stream_lag(struct td_rconn *c, const char *stream, long long entries_read,
                            const char *last_id)
{
    if (last_id) {
        redisReply *r =
            td_rconn_command(c, LAG_TIMEOUT_MS, "XRANGE %s (%s + COUNT 1", stream, last_id);
        if (!r) {
            return -2;
        }
        bool none = r->type == REDIS_REPLY_ARRAY && r->elements == 0;
        freeReplyObject(r);
        if (none) {
            return 0;
        }
    }
    if (entries_read < 0) {
        return -1;
    }
    redisReply *r = td_rconn_command(c, LAG_TIMEOUT_MS, "XINFO STREAM %s", stream);
    if (!r) {
        return -2;
    }
    const redisReply *added = field(r, "entries-added");
    long long n = -1;
    if (is_int(added) && added->integer >= entries_read) {
        n = added->integer - entries_read;
    }
    freeReplyObject(r);
    return n;
}

/* XLEN; -2 when the connection failed. */
static long long stream_len(struct td_rconn *c, const char *stream)
{
    redisReply *r = td_rconn_command(c, LAG_TIMEOUT_MS, "XLEN %s", stream);
    if (!r) {
        return -2;
    }
    long long n = is_int(r) ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

static int sample(struct td_lag_sample *s, const char *family, const char *stream,
                  const char *group, long long value)
{
    s->family = family;
    s->key[0] = "stream";
    s->key[1] = "group";
    s->val[0] = strdup(stream);
    s->val[1] = strdup(group);
    s->value = value;
    return s->val[0] && s->val[1] ? 0 : -1;
}

int td_redis_lag_report(struct td_source *src, struct td_rconn *c, const char *stream,
                        const char *group)
{
    redisReply *r = td_rconn_command(c, LAG_TIMEOUT_MS, "XINFO GROUPS %s", stream);
    if (!r) {
        return -1;
    }
    const redisReply *g = NULL;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && !g; i++) {
        const redisReply *name = field(r->element[i], "name");
        if (name && name->type == REDIS_REPLY_STRING && strcmp(name->str, group) == 0) {
            g = r->element[i];
        }
    }
    if (!g) { /* no stream or no group yet (an error reply): nothing waits for this group */
        freeReplyObject(r);
        td_source_set_lag(src, NULL, 0, -1);
        return 0;
    }
    const redisReply *pending = field(g, "pending"), *lagv = field(g, "lag");
    const redisReply *read = field(g, "entries-read"), *last = field(g, "last-delivered-id");
    long long lag = is_int(lagv) ? lagv->integer : -1;
    long long entries_read = is_int(read) ? read->integer : -1;
    bool read_nothing = last && last->type == REDIS_REPLY_STRING && strcmp(last->str, "0-0") == 0;
    long long npending = is_int(pending) ? pending->integer : -1;
    char last_id[64] = "";
    if (last && last->type == REDIS_REPLY_STRING && strlen(last->str) < sizeof(last_id)) {
        strcpy(last_id, last->str);
    }
    freeReplyObject(r);
    if (lag < 0 && read_nothing) {
        lag = stream_len(c, stream);
    } else if (lag < 0) {
        /* Redis 7 says nil when entries were deleted past the group's position: nothing after
         * it is lag 0; else the counters still say how many were added and how many the group
         * read (the deleted ones included). */
        lag = stream_lag(c, stream, entries_read, last_id[0] ? last_id : NULL);
    }
    if (lag == -2) {
        return -1;
    }
    struct td_lag_sample *s = calloc(2, sizeof(*s));
    size_t n = 0;
    if (!s) {
        return 0; /* out of memory: the previous figures stay */
    }
    if (lag >= 0 && sample(&s[n++], td_redis_lag_families[0].name, stream, group, lag) < 0) {
        goto oom;
    }
    if (npending >= 0 &&
        sample(&s[n++], td_redis_lag_families[1].name, stream, group, npending) < 0) {
        goto oom;
    }
    td_source_set_lag(src, s, n, lag); /* what KEDA's lagCount reads: not yet delivered */
    return 0;
oom:
    td_lag_samples_free(s, n);
    return 0;
}
