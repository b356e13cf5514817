"""SIGTERM with slow deliveries in flight: the daemon stops reading, lets in-flight deliveries finish
within shutdown_grace, acks exactly what completed, leaves the rest unacked, exits 0; a restart delivers
the rest. A second signal exits at once."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 20
GRACE = 5.0


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer(lambda req, a: (200, {}, b"done", 1.0))
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"fn": http_sink(fn.url, timeout="10s")},
                 triggers=[trigger("t1", "in", "fn", concurrency=4, timeout="10s")],
                 shutdown_grace="5s")
    ids = publish_many(cl, "s", N)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")
    c.check(wait_until(lambda: fn.count() >= 4, 10 * SLOW), "4 slow requests started", fn.count())
    time.sleep(0.2)  # let the first requests get well into their 1 s (scenario timing, not a wait)
    started_before = fn.count()
    in_flight = fn.in_flight
    td.terminate()
    t_term = time.monotonic()
    rc = td.wait(GRACE + 3 * SLOW)
    elapsed = time.monotonic() - t_term
    log(f"SIGTERM with {in_flight} in flight, {started_before} started; exit {rc} after {elapsed:.2f}s")
    c.eq(rc, 0, "exit status after SIGTERM")
    c.check(rc is not None and elapsed <= GRACE + 2 * SLOW, "exited within shutdown_grace + slack",
            f"{elapsed:.2f}s")
    c.check(in_flight >= 1 and in_flight <= 4, "concurrency 4 respected at SIGTERM", in_flight)
    late = [r for r in fn.snapshot() if r.t_arrival > t_term + 0.05]
    c.eq(len(late), 0, "no new delivery started after SIGTERM (stop reading)")
    wait_until(lambda: fn.in_flight == 0, 5)

    completed = fn.ok_ids() & set(ids)
    pend = set(pending_ids(cl, "s", "g"))
    gi = group_info(cl, "s", "g")
    last = gi["last-delivered-id"] if gi else "0-0"
    unread = {e for e in ids if id_key(e) > id_key(last)}
    unacked = pend | unread
    log(f"completed {len(completed)}, pending {len(pend)}, unread {len(unread)}")
    c.check(len(completed) >= 1, "the in-flight requests completed during the grace", len(completed))
    c.eq(sorted(completed & unacked, key=id_key), [], "every 2xx-completed entry is acked")
    c.eq(sorted(set(ids) - completed - unacked, key=id_key), [],
         "every entry that did not complete is still pending or unread (none lost)")
    c.check(len(unacked) > 0, "some entries are left for the restart", len(unacked))

    before = fn.count()
    fn.behaviour = lambda req, a: (200, {}, b"done", 0.05)
    td.start()
    c.check(td.wait_ready(10), "daemon ready again")
    wait_until(lambda: set(ids) <= fn.ok_ids(), 20 * SLOW, desc="all delivered after restart")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="pending 0")
    byid = fn.by_id()
    c.eq(len(set(ids) & fn.ok_ids()), N, "total in = out after the restart")
    redelivered = [e for e in completed if len(byid.get(e, [])) > 1]
    c.eq(len(redelivered), 0, "no completed+acked entry delivered again")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING count at the end")
    log(f"run 2 delivered {fn.count() - before}")

    # A second signal exits at once, even with a slow delivery in flight and a long grace.
    fn.behaviour = lambda req, a: (200, {}, b"done", 8.0)
    ids2 = publish_many(cl, "s", 2)
    c.check(wait_until(lambda: any(r.ce_id in ids2 for r in fn.snapshot()), 10 * SLOW),
            "slow (8 s) delivery in flight")
    td.terminate()
    time.sleep(0.3)  # the first signal has been taken (scenario timing)
    c.check(td.running(), "still draining after the first SIGTERM")
    t2 = time.monotonic()
    td.signal(signal.SIGINT)
    rc2 = td.wait(3 * SLOW)
    c.check(rc2 is not None, "second signal: exit at once", f"after {time.monotonic() - t2:.2f}s, rc {rc2}")
    gi = group_info(cl, "s", "g")
    unacked2 = set(pending_ids(cl, "s", "g")) | {e for e in ids2 if id_key(e) > id_key(gi["last-delivered-id"])}
    c.eq(sorted(set(ids2) - unacked2), [], "the interrupted deliveries are left unacked")
    log(f"in={N + 2} out(distinct 2xx)={len(fn.ok_ids())} requests={fn.count()}")


run_test(body)
