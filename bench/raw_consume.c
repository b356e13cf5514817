/* raw_consume.c - the raw Redis ceiling for bench/redis-http: how fast a plain consumer drains
 * a stream with XREADGROUP ... COUNT B followed by one XACK of the B ids it got, one round trip
 * after the other, on one hiredis connection (the least any Redis Streams consumer with
 * at-least-once acks has to do; no HTTP, no parsing beyond hiredis').
 *
 *   raw_consume HOST PORT STREAM GROUP BATCH N
 *
 * Creates GROUP at id 0 (an existing group is reset to 0), reads until N entries are acked and
 * prints "<entries> <seconds>" on stdout. Exit 0, or 1 with a message on stderr.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static redisReply *cmd(redisContext *c, int argc, const char **argv, const size_t *lens)
{
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    if (!r) {
        fprintf(stderr, "raw_consume: redis: %s\n", c->errstr);
        exit(1);
    }
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
        fprintf(stderr, "raw_consume: %s: %s\n", argv[0], r->str);
        exit(1);
    }
    return r;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: raw_consume HOST PORT STREAM GROUP BATCH N\n");
        return 1;
    }
    const char *stream = argv[3], *group = argv[4], *batch = argv[5];
    long want = atol(argv[6]);
    int nbatch = atoi(batch);
    redisContext *c = redisConnect(argv[1], atoi(argv[2]));
    if (!c || c->err) {
        fprintf(stderr, "raw_consume: connect: %s\n", c ? c->errstr : "out of memory");
        return 1;
    }
    const char *create[] = {"XGROUP", "CREATE", stream, group, "0", "MKSTREAM"};
    freeReplyObject(cmd(c, 6, create, NULL));
    const char *setid[] = {"XGROUP", "SETID", stream, group, "0"};
    freeReplyObject(cmd(c, 5, setid, NULL));

    const char *read[] = {"XREADGROUP", "GROUP",   group,  "raw", "COUNT",
                          batch,        "STREAMS", stream, ">"};
    const char **ack = calloc((size_t)nbatch + 3, sizeof(*ack));
    size_t *acklens = calloc((size_t)nbatch + 3, sizeof(*acklens));
    if (!ack || !acklens) {
        return 1;
    }
    ack[0] = "XACK";
    ack[1] = stream;
    ack[2] = group;
    for (int i = 0; i < 3; i++) {
        acklens[i] = strlen(ack[i]);
    }
    long done = 0;
    double t0 = now_s();
    while (done < want) {
        redisReply *r = cmd(c, 9, read, NULL);
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
            fprintf(stderr, "raw_consume: the stream ran dry after %ld of %ld entries\n", done,
                    want);
            return 1;
        }
        redisReply *entries = r->element[0]->element[1];
        size_t n = entries->elements;
        for (size_t i = 0; i < n; i++) {
            ack[3 + i] = entries->element[i]->element[0]->str;
            acklens[3 + i] = entries->element[i]->element[0]->len;
        }
        redisReply *a = cmd(c, (int)(3 + n), ack, acklens);
        if (a->type != REDIS_REPLY_INTEGER || (size_t)a->integer != n) {
            fprintf(stderr, "raw_consume: XACK acked %lld of %zu\n", a->integer, n);
            return 1;
        }
        freeReplyObject(a);
        freeReplyObject(r);
        done += (long)n;
    }
    printf("%ld %.6f\n", done, now_s() - t0);
    redisFree(c);
    return 0;
}
