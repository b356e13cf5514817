/* secret.c - wiping secrets before free, and the header-safety check (see secret.h). */
#include "secret.h"

#include <stdlib.h>
#include <string.h>

#include "curl_api.h"

void td_secret_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0) {
        explicit_bzero(p, n);
    }
}

void td_secret_free(char *s)
{
    if (s != NULL) {
        td_secret_wipe(s, strlen(s) + 1);
        free(s);
    }
}

void td_secret_free_n(void *p, size_t n)
{
    if (p != NULL) {
        td_secret_wipe(p, n);
        free(p);
    }
}

void td_secret_slist_free(struct curl_slist *list)
{
    for (struct curl_slist *l = list; l != NULL; l = l->next) {
        if (l->data != NULL) {
            td_secret_wipe(l->data, strlen(l->data));
        }
    }
    curl_slist_free_all(list);
}

bool td_secret_header_safe(const char *s)
{
    if (s == NULL || *s == '\0') {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x21 || *p == 0x7f) {
            return false;
        }
    }
    return true;
}
