"""Shutdown is bounded by shutdown_grace even when Redis does not answer, and loses nothing.

On its way out a Redis source XACKs what completed (one round trip on its command connection)
and leaves the rest pending. With Redis frozen (SIGSTOP: its sockets stay open and nothing
answers) that wait must end: every command of the source has a deadline (5 s, IO_TIMEOUT_MS in
redis.c) and, once the stop began, waits no later than the source's stop deadline (the end of
shutdown_grace, at least 2 s after the drain: td_source_stop_by), its connects give up when the
thread is told to stop, and its XREADGROUP is only ever waited for in poll(2) beside the stop
eventfd.

The daemon (shutdown_grace 2s) delivered 10 entries before the shutdown; 10 more are at the
function when it gets SIGTERM, and Redis freezes at the same moment: 5 complete 1.5 s later,
during the drain (their XACK goes to the frozen server), 5 answer only after 10 s with a 500
(still in flight when shutdown_grace ends: never acked). The daemon must exit (the bound is a
generous liveness check, grace + 15 s, stretched for sanitizers: a hang check, not a speed limit)
with the exit code README gives for a shutdown (0), saying that completed entries could not be
acknowledged, and the command that Redis left unanswered must have been given up at the stop
deadline, not at its own 5 s: the source asks for the group's pending count every second, so a
command is on its way when Redis freezes, and the 5 complete later; before the stop deadline
capped the commands, that one held the stop for up to 5 s past the deadline. Then Redis resumes, more entries are added, and a new daemon with the same consumer
name must deliver every entry with a 2xx at least once, counted by entry id: what the first
daemon left pending (the 10 of the drain, acked or not) it reads again from its own pending list
before new entries, so nothing is lost, and the group ends with nothing pending."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, RedisServer, Triggerd, config,  # noqa: E402
                     exits_within, frozen, http_sink, log, pending_count, publish_many,
                     redis_source, run_test, trigger, wait_until)

STREAM = "sd"
GRACE_S = 2
DRAIN_DONE = range(10, 15)  # complete during the drain, with Redis frozen
IN_FLIGHT = range(15, 20)  # still in flight when shutdown_grace ends


def n_of(req):
    try:
        return int(json.loads(req.body)["n"])
    except (ValueError, KeyError, TypeError):
        return -1


def behaviour(req, attempt):
    n = n_of(req)
    if attempt == 1 and n in DRAIN_DONE:
        return (200, {}, b"", 1.5)
    if attempt == 1 and n in IN_FLIGHT:
        return (500, {}, b"", 10)
    return (200, {}, b"", 0)


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer(behaviour)

    # claim_idle off: the second daemon gets the entries back from its own pending list (the
    # same consumer name), not from the reaper. Timeouts longer than the grace: the in-flight
    # deliveries are neither retried nor timed out before the shutdown gives them up.
    src = redis_source(rs.url, STREAM, group="g", consumer="c1", claim_idle="0s")
    cfg = config({"r": src}, {"fn": http_sink(fn.url, timeout="30s")},
                 [trigger("t", "r", "fn", timeout="30s")], shutdown_grace=f"{GRACE_S}s")
    cfg["daemon"]["log"]["level"] = "info"

    ids = []
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(30 * SLOW), "daemon ready")
    ids += publish_many(cl, STREAM, 10)
    c.check(wait_until(lambda: set(ids) <= fn.ok_ids(), 60 * SLOW, interval=0.05),
            "the first 10 delivered before the shutdown", len(fn.ok_ids() & set(ids)))
    more = publish_many(cl, STREAM, 10, lambda i: {"n": str(10 + i)})
    ids += more
    c.check(wait_until(lambda: set(more) <= {r.ce_id for r in fn.snapshot()}, 30 * SLOW,
                       interval=0.01), "10 more at the function when the shutdown begins")

    with frozen(rs.proc.pid) as fz:
        td.terminate()
        bound = (GRACE_S + 15) * SLOW
        rc = exits_within(td, bound)
        c.check(rc is not None, f"SIGTERM'd with Redis frozen, the daemon exits (liveness bound "
                f"{bound:.0f} s: shutdown_grace {GRACE_S} s + 15 s)")
        if rc is not None:
            log(f"exit {time.monotonic() - fz.at:.1f} s after the freeze")
            c.eq(rc, 0, "exit code of a shutdown (README: exit 0)")
            msgs = [str(l.get("msg", "")) for l in td.logs() if l.get("source") == "r"]
            c.check(any("could not be acknowledged" in m for m in msgs),
                    "the entries completed in the drain could not be acknowledged (the path this "
                    "test is about was taken)", msgs[-10:])
            c.check(any("by the stop deadline" in m for m in msgs),
                    "the command Redis did not answer was given up at the source's stop deadline "
                    "(not after its own 5 s)", msgs[-10:])
    c.eq(td.sanitizer_reports(), [], "no sanitizer reports (first daemon)")
    if c.failed:
        td.dump_tail(60)

    # Redis answers again: more entries, and a new daemon with the same consumer name.
    ids += publish_many(cl, STREAM, 10, lambda i: {"n": str(20 + i)})
    td2 = Triggerd(cfg, name="second").start()
    c.check(td2.wait_ready(30 * SLOW), "second daemon ready")
    got = wait_until(lambda: set(ids) <= fn.ok_ids(), 120 * SLOW, interval=0.1)
    missing = sorted(set(ids) - fn.ok_ids())
    c.check(got, f"every one of the {len(ids)} entries added reached the function with a 2xx at "
            "least once (nothing lost)", missing[:20])
    again = {r.ce_id for r in fn.snapshot() if r.attempt >= 2 and n_of(r) in IN_FLIGHT}
    c.eq(len(again), len(IN_FLIGHT), "the deliveries in flight at the shutdown came back (never "
         "acked)")
    c.check(wait_until(lambda: pending_count(cl, STREAM, "g") == 0, 30 * SLOW, interval=0.1),
            "nothing pending in the group", pending_count(cl, STREAM, "g"))
    log(f"{len(fn.snapshot())} requests for {len(ids)} entries")
    td2.terminate()
    c.eq(td2.wait(60 * SLOW), 0, "second daemon: clean shutdown")
    c.eq(td2.sanitizer_reports(), [], "no sanitizer reports (second daemon)")
    if c.failed:
        td2.dump_tail(60)


if __name__ == "__main__":
    run_test(body)
