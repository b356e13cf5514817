"""Readiness reflects progress (stall_after): entries stuck in a dead consumer's pending list that
nobody claims (claim_idle: 0 disables the reaper) are work waiting at the broker that the daemon
does not take although it has credit. After stall_after (2 s here) /readyz answers 503 naming the
source and "stalled", /metrics has triggerd_source_stalled 1, /status says stalled, and one error
line is logged. Once the entries are acknowledged elsewhere (nothing waits any more) the daemon is
ready again by itself, and says so once. A daemon whose pending list is being worked on (claimed
and delivered) never reports a stall, and neither does an idle one."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import get, get_json, metric, metrics, with_http  # noqa: E402


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer()
    cl.xgroup_create("s", "g", id="0", mkstream=True)
    stuck = publish_many(cl, "s", 7, lambda i: {"n": str(i)})
    cl.xreadgroup("g", "dead", {"s": ">"}, count=100)  # a consumer that died holding them
    c.eq(pending_count(cl, "s", "g"), 7, "7 entries pending at a dead consumer")

    src = redis_source(rs.url, "s", claim_idle="0s")
    src["stall_after"] = "2s"  # a key of the source, beside max_inflight
    cfg = config(sources={"in": src},
                 sinks={"fn": http_sink(fn.url)},
                 triggers=[trigger("t1", "in", "fn")])
    port = with_http(cfg)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")
    c.eq(get(port, "/readyz")[0], 200, "ready at first: the stall clock has just started")

    def readyz():
        st, _, b = get(port, "/readyz")
        return st, b.decode("utf-8", "replace")

    c.check(wait_until(lambda: readyz()[0] == 503, 10 * SLOW, interval=0.2),
            "/readyz turns 503 once nothing was taken for stall_after")
    st, text = readyz()
    c.check(st == 503 and "'in'" in text and "stalled" in text and "7 waiting" in text,
            "the reason names the source, the stall and what waits", text)
    c.eq(metric(metrics(port), "triggerd_source_stalled", source="in"), 1, "stalled gauge 1")
    srcs = {s["name"]: s for s in get_json(port, "/status")[1].get("sources", [])}
    c.eq(srcs.get("in", {}).get("stalled"), True, "/status says stalled")
    time.sleep(2.5)
    stall_logs = [l for l in td.logs() if "stalled" in l.get("msg", "")]
    c.eq(len(stall_logs), 1, "the stall is logged once, not every second")
    c.eq(fn.count(), 0, "nothing was delivered (nothing was taken)")

    # Someone else finishes the entries: nothing waits any more, so the stall is over.
    cl.xack("s", "g", *stuck)
    c.check(wait_until(lambda: readyz()[0] == 200, 10 * SLOW, interval=0.2),
            "ready again by itself once nothing waits")
    c.eq(metric(metrics(port), "triggerd_source_stalled", source="in"), 0, "stalled gauge 0")
    c.check(any("progressing again" in l.get("msg", "") for l in td.logs()), "recovery logged once")

    # New entries are taken and delivered: progress, never a stall.
    fresh = publish_many(cl, "s", 20, lambda i: {"n": str(i), "fresh": "1"})
    c.check(wait_until(lambda: set(fresh) <= fn.ok_ids(), 10 * SLOW), "new entries delivered")
    time.sleep(3)
    c.eq(readyz()[0], 200, "idle after delivering: still ready (nothing waits)")
    c.eq(pending_count(cl, "s", "g"), 0, "nothing pending at the end")
    c.eq(len(fn.ok_ids()), 20, "in = out: the 20 new entries delivered, the 7 acked elsewhere")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit 0")


run_test(body)
