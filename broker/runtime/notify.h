/* notify.h - the systemd notify protocol: one datagram to $NOTIFY_SOCKET ("READY=1",
 * "STOPPING=1", "WATCHDOG=1", "STATUS=..."). Does nothing when the variable is unset
 * (a terminal, Kubernetes). Threads: any.
 */
#ifndef TD_NOTIFY_H
#define TD_NOTIFY_H

#include <stdint.h>

/* 0 when sent or not under systemd, -1 when sending failed. */
int td_notify(const char *state);
/* The watchdog interval systemd asked for ($WATCHDOG_USEC, for this pid), in ms; 0 if none. */
int64_t td_notify_watchdog_ms(void);

#endif
