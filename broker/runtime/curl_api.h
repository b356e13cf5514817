/* curl_api.h - libcurl, loaded when something first needs it.
 *
 * Linking libcurl costs every process about 1.4 MB resident whether it sends through libcurl or
 * not: the dynamic loader maps and relocates libcurl and what it pulls in (krb5, ldap, rtmp,
 * ssh2, psl, nghttp2, brotli, idn2) at exec. A daemon whose sinks all use the lean client
 * (http_lean.c) never needs any of it, so triggerd does not link libcurl: it dlopens
 * "libcurl.so.4" (RTLD_NOW | RTLD_LOCAL) on the first call of any function below, once for the
 * process (pthread_once), and looks every function up in it then.
 *
 * Why a header that every user includes instead of <curl/curl.h>, rather than wrappers of our
 * own: the 16 files that speak libcurl keep writing libcurl's API, with libcurl's types (from
 * curl.h) and names; only the names of the functions are mapped, by object-like macros, onto
 * td_curl_* which call through the table. A file that includes <curl/curl.h> directly and
 * calls a function fails to link (there is no libcurl to link), so none can slip past.
 * curl.h's gcc type checks of curl_easy_setopt / getinfo are macros that would call libcurl by
 * name, so they are off (CURL_DISABLE_TYPECHECK); td_curl_easy_setopt and
 * td_curl_multi_setopt read their one argument as the type the option number says
 * (CURLOPTTYPE_LONG, OBJECTPOINT, FUNCTIONPOINT, OFF_T, BLOB ranges), as libcurl itself does,
 * and curl_easy_getinfo always takes a pointer.
 *
 * When libcurl cannot be loaded, every call fails as libcurl reports failure (NULL handles and
 * lists, CURLE_FAILED_INIT, CURLM_INTERNAL_ERROR, CURLHE_NOT_BUILT_IN), curl_easy_strerror says
 * why, and the reason (dlerror, naming libcurl.so.4) is logged once. The functions that only
 * release (curl_free, curl_slist_free_all, the cleanups) never load it: nothing they could be
 * given exists before it was loaded.
 * Threads: any (as libcurl's own functions).
 */
#ifndef TD_CURL_API_H
#define TD_CURL_API_H

#ifndef CURL_DISABLE_TYPECHECK
#define CURL_DISABLE_TYPECHECK
#endif
#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

/* Loads libcurl if that was not tried yet: true when it is there. Otherwise false, with why
 * (dlerror's message, naming libcurl.so.4) in err when err is not NULL. */
bool td_curl_available(char *err, size_t errlen);
/* Whether libcurl was loaded into this process (never loads it). */
bool td_curl_loaded(void);

CURLcode td_curl_global_init(long flags);
void td_curl_global_cleanup(void);
CURL *td_curl_easy_init(void);
void td_curl_easy_cleanup(CURL *easy);
void td_curl_easy_reset(CURL *easy);
CURLcode td_curl_easy_perform(CURL *easy);
CURLcode td_curl_easy_setopt(CURL *easy, CURLoption option, ...);
CURLcode td_curl_easy_getinfo(CURL *easy, CURLINFO info, ...);
const char *td_curl_easy_strerror(CURLcode code);
char *td_curl_easy_escape(CURL *easy, const char *s, int len);
CURLHcode td_curl_easy_header(CURL *easy, const char *name, size_t index, unsigned int origin,
                              int request, struct curl_header **hout);
void td_curl_free(void *p);
struct curl_slist *td_curl_slist_append(struct curl_slist *list, const char *s);
void td_curl_slist_free_all(struct curl_slist *list);
CURLM *td_curl_multi_init(void);
CURLMcode td_curl_multi_cleanup(CURLM *multi);
CURLMcode td_curl_multi_add_handle(CURLM *multi, CURL *easy);
CURLMcode td_curl_multi_remove_handle(CURLM *multi, CURL *easy);
CURLMcode td_curl_multi_setopt(CURLM *multi, CURLMoption option, ...);
CURLMcode td_curl_multi_socket_action(CURLM *multi, curl_socket_t fd, int ev_bitmask, int *running);
CURLMsg *td_curl_multi_info_read(CURLM *multi, int *msgs_in_queue);
CURLMcode td_curl_multi_perform(CURLM *multi, int *running);
CURLMcode td_curl_multi_poll(CURLM *multi, struct curl_waitfd extra_fds[], unsigned int extra_nfds,
                             int timeout_ms, int *numfds);

/* curl.h's type-check macros, in case curl.h came in before this header with them on */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init         td_curl_global_init
#define curl_global_cleanup      td_curl_global_cleanup
#define curl_easy_init           td_curl_easy_init
#define curl_easy_cleanup        td_curl_easy_cleanup
#define curl_easy_reset          td_curl_easy_reset
#define curl_easy_perform        td_curl_easy_perform
#define curl_easy_setopt         td_curl_easy_setopt
#define curl_easy_getinfo        td_curl_easy_getinfo
#define curl_easy_strerror       td_curl_easy_strerror
#define curl_easy_escape         td_curl_easy_escape
#define curl_easy_header         td_curl_easy_header
#define curl_free                td_curl_free
#define curl_slist_append        td_curl_slist_append
#define curl_slist_free_all      td_curl_slist_free_all
#define curl_multi_init          td_curl_multi_init
#define curl_multi_cleanup       td_curl_multi_cleanup
#define curl_multi_add_handle    td_curl_multi_add_handle
#define curl_multi_remove_handle td_curl_multi_remove_handle
#define curl_multi_setopt        td_curl_multi_setopt
#define curl_multi_socket_action td_curl_multi_socket_action
#define curl_multi_info_read     td_curl_multi_info_read
#define curl_multi_perform       td_curl_multi_perform
#define curl_multi_poll          td_curl_multi_poll

#endif
