"""A reload during a reload (issue 11, High 1): SIGHUPs that change the same Redis source again
while the source retired by the first one still waits for a slow delivery. The replacement made by
the first reload was never started; the second reload must drop it (or chain past it), never free
it while the draining source still means to start it. Before the fix the draining source started
the freed replacement: heap-use-after-free under ASan, SIGSEGV in Release.

Four scenarios, each on a daemon of its own, each with one slow entry in flight at the source the
first reload retires: two reloads (batch 10 -> 20 -> 30), three reloads in a row (-> 40 too), a
reload that reverts the change (10 -> 20 -> 10), and the source removed and added back while its
first self still drains (the new one must wait for it, as a replacement does). Entries keep arriving throughout; every one is
delivered exactly once, nothing stays pending, and the daemon keeps serving and exits 0."""

import os
import signal
import sys
import threading
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

# How long the function holds the slow entry (the retiring source's last message); every reload
# must happen within it, and a sanitizer build reloads several times slower.
SLOW_S = 2.5 * SLOW


def scenario(c, rs, fn, label, batches):
    stream = "s-" + label
    cl = rs.client()

    def variant(batch):
        # batch None: the source "in" and its trigger are gone (another source keeps the file valid).
        sources = {"other": redis_source(rs.url, stream + "-other", block="100ms")}
        triggers = [trigger("t2", "other", "a", timeout="10s")]
        if batch is not None:
            sources["in"] = redis_source(rs.url, stream, claim_idle="30s", block="100ms", batch=batch)
            triggers.append(trigger("t1", "in", "a", timeout="10s"))
        cfg = config(sources=sources, sinks={"a": http_sink(fn.url + "a", timeout="10s")}, triggers=triggers)
        cfg["daemon"]["log"]["level"] = "info"
        return yaml.safe_dump(cfg, sort_keys=False)

    td = Triggerd(variant(batches[0]), name=f"triggerd-{label}").start()
    if not c.check(td.wait_ready(10), f"{label}: daemon ready"):
        return
    ids = [cl.xadd(stream, {"slow": "1"}).decode()]
    slow_id = ids[0]
    # The slow entry is at the function: the source it came from cannot finish draining before
    # the function answers, so every reload below happens while the first one is still retiring.
    c.check(wait_until(lambda: slow_id in fn.by_id("/a"), 10 * SLOW), f"{label}: slow entry in flight")

    def outcomes():
        return [l.get("msg", "") for l in td.logs() if str(l.get("msg", "")).startswith(("reloaded", "reload failed"))]

    t0 = time.monotonic()
    for i, batch in enumerate(batches[1:]):
        with open(td.config_path, "w") as f:
            f.write(variant(batch))
        n = len(outcomes())
        td.signal(signal.SIGHUP)
        ok = wait_until(lambda: len(outcomes()) > n, 10 * SLOW, desc=f"{label}: reload {i + 1}")
        c.check(ok and outcomes()[n].startswith("reloaded"), f"{label}: reload {i + 1} (batch {batch}) applied",
                outcomes()[n:n + 1])
        if batch is not None:  # (with the source removed its entries would wait for the next daemon)
            ids.append(cl.xadd(stream, {"n": str(i)}).decode())
    c.check(time.monotonic() - t0 < SLOW_S, f"{label}: every reload happened while the slow entry was in flight",
            f"{time.monotonic() - t0:.2f}s")
    # After the slow entry is answered the retiring source drains and the surviving replacement starts.
    for i in range(20):
        ids.append(cl.xadd(stream, {"after": str(i)}).decode())
    ok = wait_until(lambda: set(ids) <= fn.ok_ids("/a"), 20 * SLOW, desc=f"{label}: every entry delivered")
    # The retiring source saw its last completion: it drains (within one 50 ms check) and hands
    # over to the replacement, which must be alive and reading afterwards.
    time.sleep(0.5 * SLOW)
    for i in range(20):
        ids.append(cl.xadd(stream, {"late": str(i)}).decode())
    ok = ok and wait_until(lambda: set(ids) <= fn.ok_ids("/a"), 20 * SLOW, desc=f"{label}: late entries")
    c.check(ok and td.running(), f"{label}: every entry delivered, the daemon still running",
            f"{len(set(ids) - fn.ok_ids('/a'))} missing of {len(ids)}, running={td.running()}")
    by_id = fn.by_id("/a")
    dups = {k: len(v) for k, v in by_id.items() if k in ids and len([r for r in v if getattr(r, "status", None) == 200]) > 1}
    c.check(not dups, f"{label}: no entry delivered twice", list(dups.items())[:5])
    c.check(wait_until(lambda: pending_count(cl, stream, "g") == 0, 10 * SLOW), f"{label}: nothing left pending")
    msgs = [str(l.get("msg", "")) for l in td.logs() if l.get("source") == "in"]
    restarts = [m for m in msgs if m.startswith("drained; restarting")]
    c.eq(len(restarts), 1, f"{label}: one drained source, one replacement started (the latest)")
    c.check(not [m for m in msgs if "could not start" in m], f"{label}: no start failure", msgs[-5:])
    td.signal(signal.SIGTERM)
    c.eq(td.wait(20 * SLOW), 0, f"{label}: exit 0")


def body(c):
    rs = RedisServer()
    fn = FunctionServer(lambda req, a: (200, {}, b"", SLOW_S if b"slow" in req.body else 0))
    scenario(c, rs, fn, "two", [10, 20, 30])
    scenario(c, rs, fn, "three", [10, 20, 30, 40])
    scenario(c, rs, fn, "revert", [10, 20, 10])
    # Removed, then added back while its earlier self still drains: the new one waits for it.
    scenario(c, rs, fn, "readd", [10, None, 10])


run_test(body)
