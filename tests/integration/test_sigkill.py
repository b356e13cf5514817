"""kill -9 mid-stream, then restart with the same config: at-least-once holds (every entry arrives,
nothing is left pending); duplicates are counted and printed."""

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 5000


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer(lambda req, a: (200, {}, b"", random.uniform(0, 0.004)))
    cfg = config(sources={"in": redis_source(rs.url, "s", claim_idle="2s")},
                 sinks={"fn": http_sink(fn.url)},
                 triggers=[trigger("t1", "in", "fn", concurrency=16)])
    ids = publish_many(cl, "s", N, lambda i: {"n": str(i), "pad": "x" * 64})
    td = Triggerd(cfg, name="triggerd").start()
    c.check(td.wait_ready(10), "daemon ready (run 1)")
    reached = wait_until(lambda: fn.count() >= 1500, 60 * SLOW, interval=0.005)
    c.check(reached, "about 1 500 requests received before the kill", fn.count())
    td.kill()
    at_kill = fn.count()
    pend = pending_count(cl, "s", "g")
    log(f"SIGKILL after {at_kill} requests; {pend} entries pending at that moment")
    c.eq(td.returncode(), -9, "daemon died of SIGKILL")
    c.check(at_kill < N, "killed mid-stream (not everything delivered yet)", at_kill)

    td.start()
    c.check(td.wait_ready(10), "daemon ready (run 2, same config)")
    wait_until(lambda: set(ids) <= fn.ok_ids(), 90 * SLOW, desc="all entries delivered")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 20 * SLOW, desc="pending 0")
    byid = fn.by_id()
    missing = [e for e in ids if e not in fn.ok_ids()]
    c.eq(len(missing), 0, "entry ids never delivered with 2xx", )
    if missing:
        log(f"  first missing: {missing[:10]}")
    dups = sum(len(byid.get(e, [])) - 1 for e in ids if byid.get(e))
    log(f"duplicates (deliveries beyond the first): {dups}")
    c.check(dups <= pend, "duplicates <= entries pending (read, unacked) at the kill",
            f"{dups} duplicates, {pend} pending at kill")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING count at the end")
    unknown = set(byid) - set(ids)
    c.eq(sorted(unknown)[:5], [], "no request with an unknown ce-id")
    td.terminate()
    c.eq(td.wait(15 * SLOW), 0, "exit status after SIGTERM (run 2)")
    log(f"in={N} out(distinct)={len(set(ids) & fn.ok_ids())} requests={fn.count()} duplicates={dups}")


run_test(body)
