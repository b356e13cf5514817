/* curl_api.c - libcurl loaded on first use (see curl_api.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "curl_api.h"
#include "log.h"

#define LIBCURL "libcurl.so.4"

/* Every function triggerd calls: its name in libcurl, what it returns, its parameters. */
#define TD_CURL_FUNCS(X)                                                                           \
    X(curl_global_init, CURLcode, (long))                                                          \
    X(curl_global_cleanup, void, (void))                                                           \
    X(curl_easy_init, CURL *, (void))                                                              \
    X(curl_easy_cleanup, void, (CURL *))                                                           \
    X(curl_easy_reset, void, (CURL *))                                                             \
    X(curl_easy_perform, CURLcode, (CURL *))                                                       \
    X(curl_easy_setopt, CURLcode, (CURL *, CURLoption, ...))                                       \
    X(curl_easy_getinfo, CURLcode, (CURL *, CURLINFO, ...))                                        \
    X(curl_easy_strerror, const char *, (CURLcode))                                                \
    X(curl_easy_escape, char *, (CURL *, const char *, int))                                       \
    X(curl_easy_header, CURLHcode,                                                                 \
      (CURL *, const char *, size_t, unsigned int, int, struct curl_header **))                    \
    X(curl_free, void, (void *))                                                                   \
    X(curl_slist_append, struct curl_slist *, (struct curl_slist *, const char *))                 \
    X(curl_slist_free_all, void, (struct curl_slist *))                                            \
    X(curl_multi_init, CURLM *, (void))                                                            \
    X(curl_multi_cleanup, CURLMcode, (CURLM *))                                                    \
    X(curl_multi_add_handle, CURLMcode, (CURLM *, CURL *))                                         \
    X(curl_multi_remove_handle, CURLMcode, (CURLM *, CURL *))                                      \
    X(curl_multi_setopt, CURLMcode, (CURLM *, CURLMoption, ...))                                   \
    X(curl_multi_socket_action, CURLMcode, (CURLM *, curl_socket_t, int, int *))                   \
    X(curl_multi_info_read, CURLMsg *, (CURLM *, int *))                                           \
    X(curl_multi_perform, CURLMcode, (CURLM *, int *))                                             \
    X(curl_multi_poll, CURLMcode, (CURLM *, struct curl_waitfd *, unsigned int, int, int *))

/* The macros of curl_api.h would rename the fields below. */
#undef curl_global_init
#undef curl_global_cleanup
#undef curl_easy_init
#undef curl_easy_cleanup
#undef curl_easy_reset
#undef curl_easy_perform
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_easy_strerror
#undef curl_easy_escape
#undef curl_easy_header
#undef curl_free
#undef curl_slist_append
#undef curl_slist_free_all
#undef curl_multi_init
#undef curl_multi_cleanup
#undef curl_multi_add_handle
#undef curl_multi_remove_handle
#undef curl_multi_setopt
#undef curl_multi_socket_action
#undef curl_multi_info_read
#undef curl_multi_perform
#undef curl_multi_poll

static struct {
#define FIELD(name, ret, args) ret(*name) args;
    TD_CURL_FUNCS(FIELD)
#undef FIELD
} fn;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int state; /* 0: not tried, 1: loaded, -1: cannot be loaded (why) */
static char why[512];
/* The library stays loaded until the process exits: libcurl keeps global state (OpenSSL's
 * init, its DNS and connection caches hang off handles) that outlives any one user. */
static void *lib;

static void load(void)
{
    dlerror();
    lib = dlopen(LIBCURL, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        snprintf(why, sizeof(why), "cannot load " LIBCURL ": %s", e ? e : "unknown error");
        goto fail;
    }
#define LOOKUP(name, ret, args)                                                                    \
    sym = dlsym(lib, #name);                                                                       \
    memcpy(&fn.name, &sym, sizeof(sym)); /* a function pointer from dlsym's void * (POSIX) */      \
    if (!sym) {                                                                                    \
        snprintf(why, sizeof(why), LIBCURL " has no %s (libcurl 7.84 or later is needed)", #name); \
        goto fail;                                                                                 \
    }
    void *sym;
    TD_CURL_FUNCS(LOOKUP)
#undef LOOKUP
    atomic_store(&state, 1);
    return;
fail:
    td_log_error(NULL, NULL, NULL,
                 "%s: every sink, token fetch and request that needs libcurl "
                 "fails",
                 why);
    atomic_store(&state, -1);
}

static bool ready(void)
{
    pthread_once(&once, load);
    return atomic_load(&state) == 1;
}

bool td_curl_available(char *err, size_t errlen)
{
    if (ready()) {
        return true;
    }
    if (err && errlen) {
        snprintf(err, errlen, "%s", why);
    }
    return false;
}

bool td_curl_loaded(void)
{
    return atomic_load(&state) == 1;
}

CURLcode td_curl_global_init(long flags)
{
    return ready() ? fn.curl_global_init(flags) : CURLE_FAILED_INIT;
}

void td_curl_global_cleanup(void)
{
    if (td_curl_loaded()) {
        fn.curl_global_cleanup();
    }
}

CURL *td_curl_easy_init(void)
{
    return ready() ? fn.curl_easy_init() : NULL;
}

void td_curl_easy_cleanup(CURL *easy)
{
    if (easy && td_curl_loaded()) {
        fn.curl_easy_cleanup(easy);
    }
}

void td_curl_easy_reset(CURL *easy)
{
    if (easy && td_curl_loaded()) {
        fn.curl_easy_reset(easy);
    }
}

CURLcode td_curl_easy_perform(CURL *easy)
{
    return ready() ? fn.curl_easy_perform(easy) : CURLE_FAILED_INIT;
}

/* The one argument of a setopt, read as the type its option number says. */
union opt_arg {
    long l;
    void *p;
    void (*f)(void);
    curl_off_t o;
};

static int opt_arg_read(int option, va_list ap, union opt_arg *a)
{
    if (option < CURLOPTTYPE_OBJECTPOINT) {
        a->l = va_arg(ap, long);
        return 0;
    }
    if (option < CURLOPTTYPE_FUNCTIONPOINT) {
        a->p = va_arg(ap, void *);
        return 1;
    }
    if (option < CURLOPTTYPE_OFF_T) {
        a->f = va_arg(ap, void (*)(void));
        return 2;
    }
    if (option < CURLOPTTYPE_BLOB) {
        a->o = va_arg(ap, curl_off_t);
        return 3;
    }
    a->p = va_arg(ap, void *); /* struct curl_blob * */
    return 1;
}

CURLcode td_curl_easy_setopt(CURL *easy, CURLoption option, ...)
{
    if (!ready()) {
        return CURLE_FAILED_INIT;
    }
    va_list ap;
    va_start(ap, option);
    union opt_arg a;
    int kind = opt_arg_read((int)option, ap, &a);
    va_end(ap);
    switch (kind) {
    case 0:
        return fn.curl_easy_setopt(easy, option, a.l);
    case 1:
        return fn.curl_easy_setopt(easy, option, a.p);
    case 2:
        return fn.curl_easy_setopt(easy, option, a.f);
    default:
        return fn.curl_easy_setopt(easy, option, a.o);
    }
}

CURLcode td_curl_easy_getinfo(CURL *easy, CURLINFO info, ...)
{
    if (!ready()) {
        return CURLE_FAILED_INIT;
    }
    va_list ap;
    va_start(ap, info);
    void *p = va_arg(ap, void *);
    va_end(ap);
    return fn.curl_easy_getinfo(easy, info, p);
}

const char *td_curl_easy_strerror(CURLcode code)
{
    return ready() ? fn.curl_easy_strerror(code) : why;
}

char *td_curl_easy_escape(CURL *easy, const char *s, int len)
{
    return ready() ? fn.curl_easy_escape(easy, s, len) : NULL;
}

CURLHcode td_curl_easy_header(CURL *easy, const char *name, size_t index, unsigned int origin,
                              int request, struct curl_header **hout)
{
    return ready() ? fn.curl_easy_header(easy, name, index, origin, request, hout)
                   : CURLHE_NOT_BUILT_IN;
}

void td_curl_free(void *p)
{
    if (p && td_curl_loaded()) {
        fn.curl_free(p);
    }
}

struct curl_slist *td_curl_slist_append(struct curl_slist *list, const char *s)
{
    return ready() ? fn.curl_slist_append(list, s) : NULL;
}

void td_curl_slist_free_all(struct curl_slist *list)
{
    if (list && td_curl_loaded()) {
        fn.curl_slist_free_all(list);
    }
}

CURLM *td_curl_multi_init(void)
{
    return ready() ? fn.curl_multi_init() : NULL;
}

CURLMcode td_curl_multi_cleanup(CURLM *multi)
{
    if (!multi || !td_curl_loaded()) {
        return CURLM_BAD_HANDLE; /* what libcurl says of NULL */
    }
    return fn.curl_multi_cleanup(multi);
}

CURLMcode td_curl_multi_add_handle(CURLM *multi, CURL *easy)
{
    return ready() ? fn.curl_multi_add_handle(multi, easy) : CURLM_INTERNAL_ERROR;
}

CURLMcode td_curl_multi_remove_handle(CURLM *multi, CURL *easy)
{
    return ready() ? fn.curl_multi_remove_handle(multi, easy) : CURLM_INTERNAL_ERROR;
}

CURLMcode td_curl_multi_setopt(CURLM *multi, CURLMoption option, ...)
{
    if (!ready()) {
        return CURLM_INTERNAL_ERROR;
    }
    va_list ap;
    va_start(ap, option);
    union opt_arg a;
    int kind = opt_arg_read((int)option, ap, &a);
    va_end(ap);
    switch (kind) {
    case 0:
        return fn.curl_multi_setopt(multi, option, a.l);
    case 1:
        return fn.curl_multi_setopt(multi, option, a.p);
    case 2:
        return fn.curl_multi_setopt(multi, option, a.f);
    default:
        return fn.curl_multi_setopt(multi, option, a.o);
    }
}

CURLMcode td_curl_multi_socket_action(CURLM *multi, curl_socket_t fd, int ev_bitmask, int *running)
{
    return ready() ? fn.curl_multi_socket_action(multi, fd, ev_bitmask, running)
                   : CURLM_INTERNAL_ERROR;
}

CURLMsg *td_curl_multi_info_read(CURLM *multi, int *msgs_in_queue)
{
    return ready() ? fn.curl_multi_info_read(multi, msgs_in_queue) : NULL;
}

CURLMcode td_curl_multi_perform(CURLM *multi, int *running)
{
    return ready() ? fn.curl_multi_perform(multi, running) : CURLM_INTERNAL_ERROR;
}

CURLMcode td_curl_multi_poll(CURLM *multi, struct curl_waitfd extra_fds[], unsigned int extra_nfds,
                             int timeout_ms, int *numfds)
{
    return ready() ? fn.curl_multi_poll(multi, extra_fds, extra_nfds, timeout_ms, numfds)
                   : CURLM_INTERNAL_ERROR;
}
