/* sigwatch.c - a signalfd read on a thread of its own (see sigwatch.h). The thread polls the
 * signalfd and an eventfd of its own; td_sigwatch_stop writes the eventfd, so the thread ends at
 * once without a cancellation (the callback may be in the middle of a log line) and is joined. */
#include "sigwatch.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct td_sigwatch {
    pthread_t thread;
    int sigfd;  /* the caller's */
    int stopfd; /* eventfd, owned: written once by td_sigwatch_stop */
    td_sigwatch_fn fn;
    void *arg;
};

static void *watch(void *p)
{
    struct td_sigwatch *w = p;
    struct pollfd fds[2] = {{.fd = w->sigfd, .events = POLLIN},
                            {.fd = w->stopfd, .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return NULL; /* cannot happen with valid fds; the caller's teardown goes on */
        }
        if (fds[1].revents) {
            return NULL;
        }
        struct signalfd_siginfo si;
        while (read(w->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            w->fn((int)si.ssi_signo, w->arg);
        }
    }
}

struct td_sigwatch *td_sigwatch_start(int sigfd, td_sigwatch_fn fn, void *arg)
{
    struct td_sigwatch *w = calloc(1, sizeof(*w));
    if (!w) {
        return NULL;
    }
    w->sigfd = sigfd;
    w->fn = fn;
    w->arg = arg;
    w->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->stopfd < 0) {
        goto fail;
    }
    int e = pthread_create(&w->thread, NULL, watch, w);
    if (e != 0) {
        errno = e;
        goto fail;
    }
    return w;
fail:
    if (w->stopfd >= 0) {
        int saved = errno;
        close(w->stopfd);
        errno = saved;
    }
    free(w);
    return NULL;
}

void td_sigwatch_stop(struct td_sigwatch *w)
{
    if (!w) {
        return;
    }
    uint64_t one = 1;
    ssize_t n = write(w->stopfd, &one, sizeof(one));
    (void)n; /* an eventfd write of 1 fails only on overflow, which one write cannot reach */
    pthread_join(w->thread, NULL);
    close(w->stopfd);
    free(w);
}
