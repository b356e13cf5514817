"""delivery.batch and shutdown: SIGTERM while one batch is at a slow function (beyond shutdown_grace)
and more events wait for a slot: exit 0, nothing acknowledged that the function did not answer,
nothing answered left unacknowledged; a restart delivers the rest and in = out. Under ASan this
also proves that batches in flight and the open batch are freed at teardown."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 40


def body(c):
    rs = RedisServer()
    cl = rs.client()
    slow = {"on": True}

    def behaviour(req, attempt):
        if slow["on"]:
            time.sleep(3.0)  # beyond shutdown_grace: this batch is abandoned at exit
        return (200, {}, b"", 0)

    fn = FunctionServer(behaviour)
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"fn": http_sink(fn.url, timeout="10s")},
                 triggers=[trigger("t", "in", "fn", concurrency=1, timeout="10s",
                                   batch={"max_events": 10, "max_wait": "30ms"})],
                 shutdown_grace="500ms")
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")
    ids = publish_many(cl, "s", N, lambda i: {"n": str(i)})
    wait_until(lambda: fn.count() >= 1, 10 * SLOW, desc="a batch at the function")
    time.sleep(0.2)
    td.terminate()
    rc = td.wait(10 * SLOW)
    c.eq(rc, 0, "exit 0 after SIGTERM with a batch in flight and events waiting")
    completed = [r for r in fn.snapshot() if r.completed and r.status == 200]
    delivered = {e["id"] for r in completed for e in json.loads(r.body)}
    pend = set(pending_ids(cl, "s", "g"))
    c.eq(len(delivered & pend), 0, "nothing the function answered is left pending")
    c.eq(len(set(ids) - delivered - pend), 0, "nothing unanswered was acknowledged")
    log(f"at exit: {len(delivered)} answered, {len(pend)} pending, {fn.count()} requests")

    slow["on"] = False
    td2 = Triggerd(cfg).start()
    c.check(td2.wait_ready(10), "restarted")

    def all_done():
        reqs = [r for r in fn.snapshot() if r.completed and r.status == 200]
        got = {e["id"] for r in reqs for e in json.loads(r.body)}
        return set(ids) <= got and pending_count(cl, "s", "g") == 0

    # the abandoned entries come back through the reaper (claim_idle 2s)
    c.check(wait_until(all_done, 30 * SLOW), "after the restart every event delivered and acked")
    reqs = [r for r in fn.snapshot() if r.completed and r.status == 200]
    got = {e["id"] for r in reqs for e in json.loads(r.body)}
    c.eq(len(got & set(ids)), cl.xlen("s"), "in = out")
    td2.terminate()
    c.eq(td2.wait(10 * SLOW), 0, "exit 0")


run_test(body)
