"""503 on the first two attempts of every event: each of 50 events arrives after exactly 3 attempts,
with waits between attempts inside the full-jitter exponential bounds."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 50
DELAY = 0.100  # backoff_delay
CAP = 0.150    # backoff_max: retry 1 waits in [0, 0.1], retry 2 in [0, min(0.15, 0.2)] = [0, 0.15]
SLACK = 0.1 * SLOW


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer(lambda req, a: (503, {}, b"busy", 0) if a <= 2 else (200, {}, b"ok", 0))
    # retry: 5 allows up to 6 attempts: exactly 3 proves it stops at the first success. Concurrency 64
    # (> N) so that no attempt waits for a free slot: the measured gaps are the backoff alone.
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"fn": http_sink(fn.url),
                        "dead": {"redis": {"url": rs.url, "stream": "dead"}}},
                 triggers=[trigger("t1", "in", "fn", retry=5, concurrency=64, backoff="exponential",
                                   backoff_delay="100ms", backoff_max="150ms", dead_letter="dead")])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")
    ids = publish_many(cl, "s", N, lambda i: {"n": str(i)})
    wait_until(lambda: len(fn.ok_ids() & set(ids)) >= N, 30 * SLOW, desc="all delivered")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="pending 0")

    byid = fn.by_id()
    c.eq(len(fn.ok_ids() & set(ids)), N, "events that finally got a 2xx")
    counts = {eid: len(byid.get(eid, [])) for eid in ids}
    wrong = {k: v for k, v in counts.items() if v != 3}
    c.check(not wrong, "exactly 3 attempts per event", f"{len(wrong)} wrong: {list(wrong.items())[:5]}")
    statuses = {tuple(r.status for r in byid.get(eid, [])) for eid in ids}
    c.eq(statuses, {(503, 503, 200)}, "status sequence per event")

    gaps1, gaps2 = [], []
    for eid in ids:
        rl = byid.get(eid, [])
        if len(rl) >= 3:
            gaps1.append(rl[1].t_arrival - rl[0].t_done)
            gaps2.append(rl[2].t_arrival - rl[1].t_done)
    if gaps1:
        log(f"retry-1 waits: min {min(gaps1)*1000:.1f} ms, max {max(gaps1)*1000:.1f} ms, "
            f"mean {sum(gaps1)/len(gaps1)*1000:.1f} ms (bound {DELAY*1000:.0f} ms + slack)")
        log(f"retry-2 waits: min {min(gaps2)*1000:.1f} ms, max {max(gaps2)*1000:.1f} ms, "
            f"mean {sum(gaps2)/len(gaps2)*1000:.1f} ms (bound {CAP*1000:.0f} ms + slack)")
    c.check(gaps1 and max(gaps1) <= DELAY + SLACK, "retry-1 wait <= backoff_delay + slack",
            f"max {max(gaps1 or [0]):.3f}s")
    c.check(gaps2 and max(gaps2) <= CAP + SLACK, "retry-2 wait <= min(backoff_max, 2*delay) + slack",
            f"max {max(gaps2 or [0]):.3f}s")
    # Full jitter: waits are spread over [0, bound], not all at the bound. With 50 uniform draws the
    # chance that none lands in the lower 60 % is 0.4^50.
    c.check(gaps1 and min(gaps1) < 0.6 * DELAY, "retry-1 waits are jittered (some below 60 % of the bound)",
            f"min {min(gaps1 or [0]):.3f}s")
    c.eq(cl.xlen("dead") if cl.exists("dead") else 0, 0, "dead letters")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING count at the end")
    c.eq(len(fn.ok_ids() & set(ids)), cl.xlen("s"), "in (stream length) = out (distinct 2xx)")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")
    log(f"in={cl.xlen('s')} out={len(fn.ok_ids())} requests={fn.count()}")


run_test(body)
