"""Retry-After on 429/503 sets the wait before the next attempt (seconds or HTTP-date), never jittered
below it, capped by retry_after_max."""

import email.utils
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

SLACK = 0.6 * SLOW
EPS = 0.005  # timer rounding


def behaviour(req, attempt):
    if attempt > 1:
        return (200, {}, b"ok", 0)
    if req.path == "/date":
        # HTTP-date 3 s ahead (whole seconds): the wait is in (2, 3] s. The answer leaves just
        # after a second begins, when time(NULL) (a coarse clock) may still say the last second:
        # a daemon measuring the date against it waits 4 s (libcurl's CURLINFO_RETRY_AFTER did).
        now = time.time()
        time.sleep(1.0005 - (now - int(now)))
        when = email.utils.formatdate(time.time() + 3, usegmt=True)
        return (503, {"Retry-After": when}, b"later", 0)
    return (429, {"Retry-After": "2"}, b"slow down", 0)


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer(behaviour)
    # backoff alone would wait at most 50 ms: any wait of seconds comes from Retry-After.
    d = dict(retry=3, backoff_delay="50ms", backoff_max="50ms")
    cfg = config(sources={"a": redis_source(rs.url, "sa"), "b": redis_source(rs.url, "sb"),
                          "c": redis_source(rs.url, "sc")},
                 sinks={"f10": http_sink(fn.url + "s10"), "f1": http_sink(fn.url + "s1"),
                        "fdate": http_sink(fn.url + "date")},
                 triggers=[trigger("ra10", "a", "f10", retry_after_max="10s", **d),
                           trigger("ra1", "b", "f1", retry_after_max="1s", **d),
                           trigger("radate", "c", "fdate", retry_after_max="10s", **d)])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")
    ia = publish_many(cl, "sa", 3)
    ib = publish_many(cl, "sb", 3)
    ic = publish_many(cl, "sc", 2)
    wait_until(lambda: set(ia) <= fn.ok_ids("/s10") and set(ib) <= fn.ok_ids("/s1")
               and set(ic) <= fn.ok_ids("/date"), 20 * SLOW, desc="all delivered")

    # Lower bounds are measured from t_reply (taken just before the answer is written: the daemon
    # cannot have seen the 429 earlier), upper bounds from t_done (after the write). t_done alone
    # may be taken milliseconds late on a loaded machine, which made the lower bound flaky.
    def gaps(path, ids, since="t_done"):
        byid = fn.by_id(path)
        out = []
        for e in ids:
            rl = byid.get(e, [])
            if len(rl) >= 2:
                out.append(rl[1].t_arrival - getattr(rl[0], since))
        return out, [len(byid.get(e, [])) for e in ids]

    g10, n10 = gaps("/s10", ia)
    g10_low, _ = gaps("/s10", ia, "t_reply")
    g1, n1 = gaps("/s1", ib)
    g1_low, _ = gaps("/s1", ib, "t_reply")
    gd, nd = gaps("/date", ic)
    gd_low, _ = gaps("/date", ic, "t_reply")
    log(f"Retry-After: 2 (max 10s) waits: {[round(x, 3) for x in g10]}")
    log(f"Retry-After: 2 (max 1s)  waits: {[round(x, 3) for x in g1]}")
    log(f"Retry-After: HTTP-date +3s waits: {[round(x, 3) for x in gd]}")
    c.eq(n10, [2] * len(ia), "429 then 200: exactly 2 attempts (Retry-After: 2, max 10s)")
    c.eq(n1, [2] * len(ib), "429 then 200: exactly 2 attempts (Retry-After: 2, max 1s)")
    c.eq(nd, [2] * len(ic), "503 then 200: exactly 2 attempts (Retry-After: HTTP-date)")
    c.check(g10_low and min(g10_low) >= 2.0 - EPS,
            "second attempt >= 2 s after the 429 (never jittered below)",
            f"min {min(g10_low or [0]):.3f}s")
    c.check(g10 and max(g10) < 2.0 + SLACK, "second attempt < 2 s + slack after the 429",
            f"max {max(g10 or [0]):.3f}s")
    c.check(g1_low and min(g1_low) >= 1.0 - EPS and max(g1) < 1.0 + SLACK,
            "retry_after_max 1s caps Retry-After: 2 to about 1 s", f"{[round(x, 3) for x in g1]}")
    c.check(gd_low and min(gd_low) >= 1.9 and max(gd) < 3.0 + SLACK,
            "Retry-After as HTTP-date (+3 s, whole seconds): wait in [2, 3] s", f"{[round(x, 3) for x in gd]}")
    wait_until(lambda: sum(pending_count(cl, s, "g") for s in ("sa", "sb", "sc")) == 0, 10 * SLOW)
    c.eq(sum(pending_count(cl, s, "g") for s in ("sa", "sb", "sc")), 0, "XPENDING at the end")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")
    out = len(fn.ok_ids("/s10") & set(ia)) + len(fn.ok_ids("/s1") & set(ib)) + len(fn.ok_ids("/date") & set(ic))
    log(f"in={len(ia) + len(ib) + len(ic)} out={out} requests={fn.count()}")


run_test(body)
