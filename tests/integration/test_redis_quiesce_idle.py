"""Stopping while the Redis source waits for a read's worth of credit: no busy loop.

The Redis source reads once a quarter of max_inflight is free, or after 5 ms with whatever is free
(read_worth_it in sources/redis.c). Its poll timeout counts down to that top-up. Once stopping has
begun it reads nothing more, so that countdown must stop counting: when it did not, the timeout
stayed 0 and the source thread spun on a CPU until the last delivery came back (38bac80).

A function that answers one request in four at once and holds the others 3 s keeps the credit
small and the top-up wait almost always running (max_inflight 40, so a read's worth is 10). The
daemon gets SIGTERM in that state and drains for up to 3 s: over the 2 s that follow the signal it
may use a fraction of a CPU, not one whole. It exits 0, and a second daemon with a prompt function
delivers what was left: every entry reaches the function at least once and nothing stays pending."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from harness import *  # noqa: E402,F401,F403
from benchlib import proc_cpu_s as cpu_s  # noqa: E402  (the benches' reader of /proc/PID/stat)

N = 3000
HOLD = 3.0
WINDOW = 2.0


def body(c):
    rs = RedisServer()
    cl = rs.client()
    lock = threading.Lock()
    seen = [0]

    def behaviour(req, attempt):
        with lock:
            seen[0] += 1
            k = seen[0]
        return (204, {}, b"", 0 if k % 4 == 0 else HOLD)

    fn = FunctionServer(behaviour)
    src = redis_source(rs.url, "s", claim_idle="60s")
    src["max_inflight"] = 40
    cfg = config(sources={"in": src}, sinks={"fn": http_sink(fn.url, timeout="10s")},
                 triggers=[trigger("t", "in", "fn", concurrency=64, timeout="10s")],
                 shutdown_grace="10s")
    ids = publish_many(cl, "s", N)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")
    # The source refills one small read after another while the held requests come back.
    c.check(wait_until(lambda: fn.count() >= 60, 20 * SLOW), "deliveries under way", fn.count())
    pid = td.proc.pid
    td.terminate()
    t0, c0 = time.monotonic(), cpu_s(pid)
    time.sleep(WINDOW)
    t1, c1 = time.monotonic(), cpu_s(pid)
    alive = td.running()
    log(f"after SIGTERM: {c1 - c0 if c1 is not None else '?'} CPU s in {t1 - t0:.2f} s, "
        f"still draining: {alive}")
    c.check(alive and c1 is not None, "still draining the held requests when measured")
    if c1 is not None:
        c.check(c1 - c0 < 0.35 * (t1 - t0),
                "no busy loop while draining: well under one CPU over the window",
                f"{c1 - c0:.2f} CPU s in {t1 - t0:.2f} s")
    c.eq(td.wait(20 * SLOW), 0, "exit status after SIGTERM")

    fn.behaviour = lambda req, attempt: (204, {}, b"", 0)
    td2 = Triggerd(cfg, name="second").start()
    c.check(td2.wait_ready(10), "second daemon ready")
    wait_until(lambda: set(ids) <= fn.ok_ids() and pending_count(cl, "s", "g") == 0, 60 * SLOW,
               desc="everything delivered")
    c.eq(len(set(ids) - fn.ok_ids()), 0, "every entry reached the function")
    c.eq(pending_count(cl, "s", "g"), 0, "nothing left pending")
    td2.terminate()
    c.eq(td2.wait(15 * SLOW), 0, "second daemon exits 0 after SIGTERM")


run_test(body)
