/* deadletter.c - building and stripping dead-letter attributes (see deadletter.h). */
#include "deadletter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudevent.h"

static const char *const dl_attrs[] = {"knativeerrordest",   "knativeerrorcode",
                                       "knativeerrordata",   "deadletterreason",
                                       "deadletterattempts", "deadlettertrigger"};

bool td_deadletter_permanent(const char *reason)
{
    return reason &&
           (strcmp(reason, TD_DL_FINAL_STATUS) == 0 || strcmp(reason, TD_DL_INVALID_EVENT) == 0 ||
            strcmp(reason, TD_DL_SCHEMA) == 0);
}

struct td_event *td_deadletter_event(const struct td_event *ev, const char *trigger,
                                     const char *dest, int code, const unsigned char *body,
                                     size_t len, const char *reason, int attempts)
{
    struct td_event *dl = td_event_clone(ev);
    if (!dl) {
        return NULL;
    }
    char num[32];
    int rc = 0;
    rc |= td_event_set(dl, "knativeerrordest", dest ? dest : "");
    snprintf(num, sizeof(num), "%d", code);
    rc |= td_event_set_typed(dl, "knativeerrorcode", num, TD_CE_INTEGER);
    td_event_unset(dl, "knativeerrordata"); /* never a stale one from an earlier hop */
    if (body && len > 0) {
        char *b64 = td_base64_encode(body, len < TD_DL_DATA_MAX ? len : TD_DL_DATA_MAX);
        rc |= b64 ? td_event_set(dl, "knativeerrordata", b64) : -1;
        free(b64);
    }
    rc |= td_event_set(dl, "deadletterreason", reason);
    snprintf(num, sizeof(num), "%d", attempts);
    rc |= td_event_set_typed(dl, "deadletterattempts", num, TD_CE_INTEGER);
    rc |= td_event_set(dl, "deadlettertrigger", trigger ? trigger : "");
    if (rc != 0) {
        td_event_unref(dl);
        return NULL;
    }
    return dl;
}

void td_deadletter_strip(struct td_event *ev)
{
    for (size_t i = 0; i < sizeof(dl_attrs) / sizeof(dl_attrs[0]); i++) {
        td_event_unset(ev, dl_attrs[i]);
    }
}
