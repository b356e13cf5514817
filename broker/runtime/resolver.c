/* resolver.c - getaddrinfo on a worker thread, answers on the loop (see resolver.h).
 *
 * The loop side (struct td_resolver) and the worker share struct rs_shared: the queue of
 * lookups to run, the list of answers to hand over, and the eventfd that wakes the loop, all
 * under one mutex. Each side holds a reference; the last one out frees it, so a worker stuck
 * in a slow lookup when the resolver is freed finishes on its own and cleans up after itself.
 * The worker writes the eventfd only under the mutex and only while the resolver is open, so
 * the loop side may close it as soon as it has marked the resolver closed.
 */
#include "resolver.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

struct td_resolve {
    struct td_resolve *next; /* in the queue, or in the answers */
    td_resolve_fn fn;
    void *arg;
    bool cancelled; /* loop side; set under the mutex when the worker holds it */
    char *host;
    char *port;
    struct td_resolve_result res;
};

struct rs_shared {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct td_resolve *todo, *todo_tail; /* to look up, oldest first */
    struct td_resolve *done;             /* answered, newest first */
    struct td_resolve *current;          /* the one the worker is looking up */
    bool closed;
    int refs;
    int efd;
};

struct td_resolver {
    struct td_loop *loop;
    struct rs_shared *s;
    pthread_t thread;
    bool started;
    size_t pending;
};

static void resolve_free(struct td_resolve *q)
{
    if (q) {
        free(q->host);
        free(q->port);
        free(q);
    }
}

static void list_free(struct td_resolve *q)
{
    while (q) {
        struct td_resolve *next = q->next;
        resolve_free(q);
        q = next;
    }
}

/* Drops one reference (the mutex held); frees s when it was the last. Unlocks. */
static void shared_put(struct rs_shared *s)
{
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (last) {
        list_free(s->todo);
        list_free(s->done);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
    }
}

static _Atomic(td_resolve_lookup_fn) lookup_override; /* tests: td_resolver_set_lookup */

void td_resolver_set_lookup(td_resolve_lookup_fn fn)
{
    atomic_store(&lookup_override, fn);
}

static void lookup(struct td_resolve *q)
{
    td_resolve_lookup_fn fn = atomic_load(&lookup_override);
    if (fn) {
        memset(&q->res, 0, sizeof(q->res));
        fn(q->host, q->port, &q->res);
        return;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    /* No AI_ADDRCONFIG: glibc does not count loopback addresses for it, so on a host whose
     * only addresses are loopback ones "localhost" would resolve to nothing. */
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(q->host, q->port, &hints, &ai);
    q->res.err = rc;
    q->res.n = 0;
    for (struct addrinfo *a = rc == 0 ? ai : NULL; a && q->res.n < TD_RESOLVE_MAX_ADDRS;
         a = a->ai_next) {
        if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
            a->ai_addrlen > sizeof(q->res.addrs[0])) {
            continue;
        }
        memcpy(&q->res.addrs[q->res.n], a->ai_addr, a->ai_addrlen);
        q->res.lens[q->res.n] = a->ai_addrlen;
        q->res.n++;
    }
    if (rc == 0 && q->res.n == 0) {
        q->res.err = EAI_NODATA; /* answered, but with nothing we can connect to */
    }
    if (ai) {
        freeaddrinfo(ai);
    }
}

static void *worker(void *arg)
{
    struct rs_shared *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->closed && !s->todo) {
            pthread_cond_wait(&s->cv, &s->mu);
        }
        if (s->closed) {
            break;
        }
        struct td_resolve *q = s->todo;
        s->todo = q->next;
        if (!s->todo) {
            s->todo_tail = NULL;
        }
        q->next = NULL;
        s->current = q;
        pthread_mutex_unlock(&s->mu);
        lookup(q); /* blocks for as long as DNS takes: nothing else waits on it */
        pthread_mutex_lock(&s->mu);
        s->current = NULL;
        if (s->closed) {
            resolve_free(q);
            break;
        }
        q->next = s->done;
        s->done = q;
        uint64_t one = 1;
        if (write(s->efd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
            /* cannot happen with a valid eventfd; the answer waits for the next wake-up */
        }
    }
    shared_put(s);
    return NULL;
}

/* The eventfd: hands the answers over, oldest first. */
static void on_answers(struct td_loop *loop, int fd, uint32_t events, void *arg)
{
    (void)loop;
    (void)events;
    struct td_resolver *r = arg;
    uint64_t n;
    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN) {
        td_log_warn(NULL, NULL, NULL, "resolver: reading its eventfd: %s", strerror(errno));
    }
    pthread_mutex_lock(&r->s->mu);
    struct td_resolve *list = r->s->done;
    r->s->done = NULL;
    pthread_mutex_unlock(&r->s->mu);
    struct td_resolve *fifo = NULL;
    while (list) {
        struct td_resolve *next = list->next;
        list->next = fifo;
        fifo = list;
        list = next;
    }
    while (fifo) {
        struct td_resolve *q = fifo;
        fifo = q->next;
        r->pending--;
        if (!q->cancelled) {
            q->fn(&q->res, q->arg);
        }
        resolve_free(q);
    }
}

struct td_resolver *td_resolver_new(struct td_loop *loop)
{
    struct td_resolver *r = calloc(1, sizeof(*r));
    struct rs_shared *s = calloc(1, sizeof(*s));
    if (!r || !s) {
        free(r);
        free(s);
        return NULL;
    }
    s->efd = -1;
    s->refs = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    r->loop = loop;
    r->s = s;
    return r;
}

/* The eventfd and the worker, at the first lookup. 0 or -1. */
static int start_worker(struct td_resolver *r)
{
    struct rs_shared *s = r->s;
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->efd < 0) {
        return -1;
    }
    if (td_loop_fd_add(r->loop, s->efd, EPOLLIN, on_answers, r) < 0) {
        close(s->efd);
        s->efd = -1;
        return -1;
    }
    s->refs++; /* the worker's */
    /* The worker inherits the loop thread's signal mask (the daemon blocks its signals before
     * it starts any thread), so no signal lands on it. */
    int rc = pthread_create(&r->thread, NULL, worker, s);
    if (rc != 0) {
        errno = rc; /* for the caller's message */
        s->refs--;
        td_loop_fd_del(r->loop, s->efd);
        close(s->efd);
        s->efd = -1;
        return -1;
    }
    r->started = true;
    return 0;
}

struct td_resolve *td_resolve_start(struct td_resolver *r, const char *host, const char *port,
                                    td_resolve_fn fn, void *arg)
{
    if (!r->started && start_worker(r) < 0) {
        td_log_warn(NULL, NULL, NULL, "resolver: cannot start its thread: %s", strerror(errno));
        return NULL;
    }
    struct td_resolve *q = calloc(1, sizeof(*q));
    if (!q || !(q->host = strdup(host)) || !(q->port = strdup(port))) {
        resolve_free(q);
        return NULL;
    }
    q->fn = fn;
    q->arg = arg;
    struct rs_shared *s = r->s;
    pthread_mutex_lock(&s->mu);
    if (s->todo_tail) {
        s->todo_tail->next = q;
    } else {
        s->todo = q;
    }
    s->todo_tail = q;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    r->pending++;
    return q;
}

void td_resolve_cancel(struct td_resolver *r, struct td_resolve *q)
{
    struct rs_shared *s = r->s;
    pthread_mutex_lock(&s->mu);
    /* Still queued: gone at once. Being looked up or answered: dropped when it comes back. */
    struct td_resolve **pp = &s->todo, *prev = NULL;
    while (*pp && *pp != q) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = q->next;
        if (s->todo_tail == q) {
            s->todo_tail = prev;
        }
        r->pending--;
        resolve_free(q);
    } else {
        q->cancelled = true;
    }
    pthread_mutex_unlock(&s->mu);
}

size_t td_resolver_pending(const struct td_resolver *r)
{
    return r->pending;
}

void td_resolver_free(struct td_resolver *r)
{
    if (!r) {
        return;
    }
    struct rs_shared *s = r->s;
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    bool busy = s->current != NULL;
    list_free(s->todo);
    list_free(s->done);
    s->todo = s->todo_tail = s->done = NULL;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->efd >= 0) {
        td_loop_fd_del(r->loop, s->efd);
        close(s->efd); /* the worker writes it only while the resolver is open */
        s->efd = -1;
    }
    if (r->started) {
        if (busy) {
            pthread_detach(r->thread); /* in getaddrinfo: it frees what is shared when done */
        } else {
            pthread_join(r->thread, NULL); /* idle: it sees closed and returns at once */
        }
    }
    pthread_mutex_lock(&s->mu);
    shared_put(s);
    free(r);
}
