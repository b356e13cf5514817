"""The daemon under valgrind (memcheck): 20 events delivered and 2 dead-lettered; then a reload
(SIGHUP) that changes the source (it drains and restarts: the retiring-source path) and the
triggers and sinks (the old generation is freed once drained, with the configuration it was built
from), and 20 more events delivered by the new configuration; then SIGTERM. Exit 0 means no
invalid access and no definite leak in that whole lifecycle (--error-exitcode=3)."""

import os
import signal
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from memcheck import memcheck_wrapper, skip, stop_and_judge  # noqa: E402

N = 20


def body(c):
    wrapper, vlog = memcheck_wrapper()
    if not wrapper:
        return skip(vlog)
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer(lambda req, a: (400, {}, b"no", 0) if b'"bad"' in req.body
                        else (503, {}, b"", 0) if a == 1 and req.body.endswith(b'"3"}')
                        else (200, {}, b"ok", 0))
    def cfg_for(claim_idle, backoff):
        return config(sources={"in": redis_source(rs.url, "s", claim_idle=claim_idle)},
                      sinks={"fn": http_sink(fn.url, timeout="10s"),
                             "dead": {"redis": {"url": rs.url, "stream": "dead"}}},
                      triggers=[trigger("t1", "in", "fn", timeout="10s", backoff_delay=backoff,
                                        dead_letter="dead")])
    cfg = cfg_for("2s", "50ms")
    td = Triggerd(cfg, name="triggerd (valgrind)", wrapper=wrapper)
    td.start()
    c.check(td.wait_ready(60), "daemon ready under valgrind")
    ids = publish_many(cl, "s", N, lambda i: {"n": str(i)})
    publish_many(cl, "s", 2, lambda i: {"bad": "yes", "n": str(i)})
    wait_until(lambda: set(ids) <= fn.ok_ids() and cl.exists("dead") and cl.xlen("dead") >= 2, 60,
               desc="delivered and dead-lettered")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 30, desc="pending 0")
    c.eq(len(set(ids) & fn.ok_ids()), N, "events delivered under valgrind")
    c.eq(cl.xlen("dead") if cl.exists("dead") else 0, 2, "events dead-lettered under valgrind")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING count")

    # The reload: a changed source (claim_idle) drains and restarts, the changed trigger's old
    # generation and its sinks are freed once drained, and the old configuration with them.
    cfg2 = cfg_for("3s", "60ms")
    cfg2["daemon"] = cfg["daemon"]
    with open(td.config_path, "w") as f:
        f.write(yaml.safe_dump(cfg2, sort_keys=False))
    td.signal(signal.SIGHUP)
    c.check(wait_until(lambda: any(str(l.get("msg", "")).startswith("reloaded") for l in td.logs())
                       and any(l.get("source") == "in" and
                               str(l.get("msg", "")).startswith("drained; restarting")
                               for l in td.logs()), 60, interval=0.1),
            "reloaded under valgrind; the source drained and restarted")
    ids2 = publish_many(cl, "s", N, lambda i: {"n": str(100 + i)})
    wait_until(lambda: set(ids2) <= fn.ok_ids(), 60, desc="delivered after the reload")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 30, desc="pending 0 after the reload")
    c.eq(len(set(ids2) & fn.ok_ids()), N, "events delivered under valgrind after the reload")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING count after the reload")
    stop_and_judge(c, td, vlog, 60)
    log(f"in={2 * N + 2} delivered={len((set(ids) | set(ids2)) & fn.ok_ids())} "
        f"dead={cl.xlen('dead') if cl.exists('dead') else 0}")


run_test(body)
