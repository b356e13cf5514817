/* sigwatch.h - reads a signalfd on a thread of its own while the thread that owns it is busy
 * with something long that does not return to its loop: the daemon's teardown (sources told to
 * stop with a deadline and joined, up to shutdown_grace and a few seconds with a broker that does
 * not answer) and redrive's. Signals stay blocked in every thread (they are read, never
 * delivered), so the watcher is the only thing that notices one then, and what it does is the
 * caller's: exit at once on a second SIGTERM, say. Threads: start and stop on one thread (the
 * caller's); the callback runs on the watcher thread.
 */
#ifndef TD_SIGWATCH_H
#define TD_SIGWATCH_H

/* Called on the watcher thread with each signal read, in order. It may _exit; it must not touch
 * what the calling thread is using without its own locking. */
typedef void (*td_sigwatch_fn)(int signo, void *arg);

struct td_sigwatch;

/* Starts a thread that reads sigfd (a non-blocking signalfd, not owned: the caller closes it
 * after td_sigwatch_stop) and calls fn for each signal. The caller must have the signals blocked
 * before calling (the thread inherits its mask, so it is never interrupted by them either).
 * Returns the watcher (freed by td_sigwatch_stop) or NULL when no thread could be started
 * (errno set; the caller logs it and goes on without). */
struct td_sigwatch *td_sigwatch_start(int sigfd, td_sigwatch_fn fn, void *arg);

/* Ends the watcher thread, joins it and frees w. Signals not read by then stay pending in the
 * signalfd. NULL is a no-op. */
void td_sigwatch_stop(struct td_sigwatch *w);

#endif
