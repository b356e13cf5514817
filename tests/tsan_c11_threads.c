/* tsan_c11_threads.c - C11 threads through pthreads, for the ThreadSanitizer build only.
 *
 * Debian's librdkafka uses glibc's C11 threads (thrd_create, mtx_lock, cnd_wait, call_once).
 * glibc implements them by calling its internal pthread functions directly, past the
 * interceptors of GCC 12's (and clang 14's) libtsan: a thread librdkafka starts is unknown to
 * TSan, whose allocator then crashes in it (SIGSEGV at the first malloc), and its locks would be
 * invisible (every access they guard reported as a race). Defined in the executable, these
 * take precedence over glibc's for librdkafka and go through the public pthread calls, which
 * TSan intercepts. The types are glibc's own layout for both (mtx_t is a pthread_mutex_t,
 * cnd_t a pthread_cond_t, thrd_t a pthread_t, once_flag a pthread_once_t), which is how glibc
 * itself converts them. CMakeLists.txt links this file into triggerd only with TD_TSAN.
 *
 * One suppression remains, and it is here (__tsan_default_suppressions) so that it travels with
 * the binary rather than with an environment variable: librdkafka counts references to a fetch
 * buffer with atomics compiled without TSan, so when its broker thread drops the last reference
 * and frees the buffer after our source thread has read a record from it and destroyed the
 * message, TSan sees the free but not the atomic that ordered it after our read, and reports a
 * race that cannot happen (seen once in CI, test_lag_kafka: free in rdk:broker racing a read in
 * record_to_msg). called_from_lib makes TSan treat librdkafka as the uninstrumented library it
 * is (memory calls it makes itself, such as that free, go unchecked); its locks and threads stay
 * visible, since they go through the functions below, which live in the executable.
 * Threads: any.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "glibc's mtx_t is a pthread_mutex_t");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "glibc's cnd_t is a pthread_cond_t");
_Static_assert(sizeof(thrd_t) == sizeof(pthread_t), "glibc's thrd_t is a pthread_t");
_Static_assert(sizeof(once_flag) == sizeof(pthread_once_t),
               "glibc's once_flag is a pthread_once_t");

static int result(int err)
{
    switch (err) {
    case 0:
        return thrd_success;
    case ENOMEM:
        return thrd_nomem;
    case ETIMEDOUT:
        return thrd_timedout;
    case EBUSY:
        return thrd_busy;
    default:
        return thrd_error;
    }
}

struct start {
    thrd_start_t fn;
    void *arg;
};

static void *trampoline(void *p)
{
    struct start st = *(struct start *)p;
    free(p);
    return (void *)(intptr_t)st.fn(st.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
    struct start *st = malloc(sizeof(*st));
    if (!st) {
        return thrd_nomem;
    }
    st->fn = func;
    st->arg = arg;
    int err = pthread_create((pthread_t *)thr, NULL, trampoline, st);
    if (err) {
        free(st);
    }
    return result(err);
}

int thrd_join(thrd_t thr, int *res)
{
    void *ret = NULL;
    int err = pthread_join((pthread_t)thr, &ret);
    if (!err && res) {
        *res = (int)(intptr_t)ret;
    }
    return result(err);
}

int mtx_init(mtx_t *mtx, int type)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    if (type & mtx_recursive) {
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    }
    int err = pthread_mutex_init((pthread_mutex_t *)mtx, &attr);
    pthread_mutexattr_destroy(&attr);
    return result(err);
}

int mtx_lock(mtx_t *mtx)
{
    return result(pthread_mutex_lock((pthread_mutex_t *)mtx));
}

int mtx_trylock(mtx_t *mtx)
{
    return result(pthread_mutex_trylock((pthread_mutex_t *)mtx));
}

int mtx_timedlock(mtx_t *restrict mtx, const struct timespec *restrict ts)
{
    return result(pthread_mutex_timedlock((pthread_mutex_t *)mtx, ts));
}

int mtx_unlock(mtx_t *mtx)
{
    return result(pthread_mutex_unlock((pthread_mutex_t *)mtx));
}

void mtx_destroy(mtx_t *mtx)
{
    pthread_mutex_destroy((pthread_mutex_t *)mtx);
}

int cnd_init(cnd_t *cond)
{
    return result(pthread_cond_init((pthread_cond_t *)cond, NULL));
}

int cnd_signal(cnd_t *cond)
{
    return result(pthread_cond_signal((pthread_cond_t *)cond));
}

int cnd_broadcast(cnd_t *cond)
{
    return result(pthread_cond_broadcast((pthread_cond_t *)cond));
}

int cnd_wait(cnd_t *cond, mtx_t *mtx)
{
    return result(pthread_cond_wait((pthread_cond_t *)cond, (pthread_mutex_t *)mtx));
}

int cnd_timedwait(cnd_t *restrict cond, mtx_t *restrict mtx, const struct timespec *restrict ts)
{
    return result(pthread_cond_timedwait((pthread_cond_t *)cond, (pthread_mutex_t *)mtx, ts));
}

void cnd_destroy(cnd_t *cond)
{
    pthread_cond_destroy((pthread_cond_t *)cond);
}

void call_once(once_flag *flag, void (*func)(void))
{
    pthread_once((pthread_once_t *)flag, func);
}

/* Read by the TSan runtime at start-up, before any suppressions file. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "called_from_lib:librdkafka.so.1\n";
}
