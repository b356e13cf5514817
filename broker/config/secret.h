/* secret.h - handling secrets in memory: wipe before free, and refuse values that would break
 * out of the request header they are written into.
 *
 * Every copy of a credential (a ${VAR} or ${file:} value, a bearer token, a cached token from a
 * metadata server or STS, an escaped or formatted copy such as "Authorization: Bearer ...",
 * SigV4 keys, "user:password" strings) is released with td_secret_free or td_secret_wipe, so a
 * later heap bug or a core dump cannot show it. Any thread; no state.
 */
#ifndef TD_SECRET_H
#define TD_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/* Overwrites N bytes at P with zeros in a way the compiler may not drop (explicit_bzero).
 * P NULL is a no-op. */
void td_secret_wipe(void *p, size_t n);
/* Wipes the C string S (strlen bytes and its terminator) and frees it. NULL is a no-op. */
void td_secret_free(char *s);
/* Wipes N bytes at P and frees it (for buffers that are not C strings). NULL is a no-op. */
void td_secret_free_n(void *p, size_t n);
struct curl_slist;
/* curl_slist_free_all after wiping every line: request header lists hold credentials
 * ("Authorization: Bearer ..."). NULL is a no-op. */
void td_secret_slist_free(struct curl_slist *list);
/* True when S may be written into a request header as a credential: not empty, and no byte
 * below 0x21 (controls, CR, LF, blank) nor 0x7F. A value failing this would let whoever
 * controls it add headers ("tok\r\nX-Injected: yes"); callers refuse it and name the key or
 * sink, never the value. */
bool td_secret_header_safe(const char *s);

#endif
