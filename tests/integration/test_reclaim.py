"""Entries stuck in a dead consumer's pending list are claimed after claim_idle and delivered; an entry
already delivered more than max_deliveries times is dead-lettered with reason max_deliveries."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer()
    cl.xgroup_create("s", "g", id="0", mkstream=True)
    stuck = publish_many(cl, "s", 20, lambda i: {"n": str(i), "who": "stuck"})
    worn = publish_many(cl, "s", 3, lambda i: {"n": str(i), "who": "worn"})
    # Consumer "dead" reads them and never acks.
    got = cl.xreadgroup("g", "dead", {"s": ">"}, count=100)
    t_read = time.monotonic()
    c.eq(sum(len(m) for _, m in got), 23, "consumer 'dead' read the entries")
    # The 3 "worn" entries look as if delivered 10 times already (max_deliveries: 5).
    cl.xclaim("s", "g", "dead", 0, worn, retrycount=10)
    # Two entries that the daemon's own consumer (c1) left pending, also worn out: a previous
    # run died on them. The own-pending read at start must dead-letter them, not deliver them.
    own = publish_many(cl, "s", 2, lambda i: {"n": str(i), "who": "own"})
    cl.xreadgroup("g", "c1", {"s": ">"}, count=100)
    cl.xclaim("s", "g", "c1", 0, own, retrycount=10)
    det = pending_detail(cl, "s", "g")
    c.eq(sorted(det[w][1] for w in worn), [10, 10, 10], "worn entries have delivery count 10")
    c.eq(pending_count(cl, "s", "g"), 25, "pending before the daemon starts")

    cfg = config(sources={"in": redis_source(rs.url, "s", claim_idle="1s", max_deliveries=5)},
                 sinks={"fn": http_sink(fn.url), "dead": {"redis": {"url": rs.url, "stream": "dead"}}},
                 triggers=[trigger("t1", "in", "fn", dead_letter="dead")])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready (BUSYGROUP is fine)")
    fresh = publish_many(cl, "s", 10, lambda i: {"n": str(i), "who": "fresh"})

    def dead_ids():
        return {f.get("ce_id") for _, f in read_dead_letters(cl, "dead")} if cl.exists("dead") else set()

    wait_until(lambda: set(stuck + fresh) <= fn.ok_ids() and set(worn + own) <= dead_ids(), 20 * SLOW,
               desc="stuck claimed and delivered, worn dead-lettered")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="pending 0")
    byid = fn.by_id()
    c.eq(len(set(stuck) & fn.ok_ids()), 20, "stuck entries delivered after the claim")
    c.eq(len(set(fresh) & fn.ok_ids()), 10, "fresh entries delivered")
    c.eq(sum(len(byid.get(e, [])) for e in stuck + fresh), 30, "each delivered exactly once")
    first = min((r.t_arrival for e in stuck for r in byid.get(e, [])), default=None)
    c.check(first is not None and first - t_read >= 1.0 - 0.01,
            "stuck entries not claimed before claim_idle (1 s) of idleness",
            None if first is None else f"first after {first - t_read:.3f}s")
    c.check(first is not None and first - t_read < 1.0 + 4.0 * SLOW,
            "stuck entries claimed within claim_idle + a reaper period",
            None if first is None else f"first after {first - t_read:.3f}s")
    c.eq([e for e in worn + own if e in byid], [], "worn entries never sent to the function")
    dl = [f for _, f in read_dead_letters(cl, "dead")]
    c.eq(sorted(f.get("ce_id") for f in dl), sorted(worn + own),
         "dead letters = the worn entries, its own pending ones included")
    probs = [f"{f.get('ce_id')}: {k}={f.get(k)!r}" for f in dl for k, v in
             {"ce_deadletterreason": "max_deliveries", "ce_deadlettertrigger": "t1",
              "ce_knativeerrorcode": "0", "ce_type": "com.example.test",
              # delivered 10 times before, once more by the claim or the own-pending read
              "ce_deadletterattempts": "11"}.items() if f.get(k) != v]
    c.check(dl and not probs, "worn dead letters: reason max_deliveries, code 0, trigger t1", probs[:5])
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING count at the end (all acked)")
    c.eq(len(fn.ok_ids()) + len(dl), cl.xlen("s"), "in (stream length) = delivered + dead-lettered")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")
    log(f"in={cl.xlen('s')} delivered={len(fn.ok_ids())} dead={len(dl)} requests={fn.count()}")


run_test(body)
