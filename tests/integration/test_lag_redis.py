"""Redis stream group lag on /metrics agrees with `redis-cli XINFO GROUPS`.

A function that holds every request (slow) and max_inflight 10: of 50 entries the group has read
10 (pending) and 40 wait (lag). triggerd_redis_stream_group_lag{source,stream,group} and
triggerd_redis_stream_group_messages_pending equal redis-cli's `lag` and `pending`, and
triggerd_source_lag_messages their sum, stable over several lag intervals. An XDEL past the
group's position makes Redis 7 report `lag` nil: the metric is then XINFO STREAM's
entries-added minus the group's entries-read, both as redis-cli prints them. Released and
drained, pending is 0 on both sides; Redis still says lag nil (the tombstone), and the metric is 0
because no entry follows the group's last-delivered-id, as redis-cli XRANGE shows."""

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, RedisServer, Triggerd, config, http_sink,  # noqa: E402
                     redis_source, run_test, trigger, wait_until)
from http_util import metric, metrics, with_http  # noqa: E402

N, INFLIGHT = 50, 10
LAG, PENDING = "triggerd_redis_stream_group_lag", "triggerd_redis_stream_group_messages_pending"
TOTAL = "triggerd_source_lag_messages"


def redis_cli(rs, *args):
    """redis-cli's raw output as a flat {key: value} (one reply of key/value lines); nil is ''."""
    out = subprocess.run(["redis-cli", *rs.cli_args(), *args], capture_output=True, text=True,
                         timeout=10, check=True).stdout.split("\n")
    return out


def xinfo_group(rs, stream, group):
    lines = redis_cli(rs, "XINFO", "GROUPS", stream)
    # Non-tty redis-cli prints each group's fields as alternating key and value lines.
    groups, cur = [], {}
    keys = ("name", "consumers", "pending", "last-delivered-id", "entries-read", "lag")
    i = 0
    while i + 1 < len(lines):
        if lines[i] in keys:
            if lines[i] == "name" and cur:
                groups.append(cur)
                cur = {}
            cur[lines[i]] = lines[i + 1]
            i += 2
        else:
            i += 1
    if cur:
        groups.append(cur)
    return next((g for g in groups if g.get("name") == group), None)


def entries_added(rs, stream):
    lines = redis_cli(rs, "XINFO", "STREAM", stream)
    return int(lines[lines.index("entries-added") + 1])


def body(c):
    rs = RedisServer()
    gate = threading.Event()

    def behaviour(req, attempt):
        gate.wait(120)
        return (200, {}, b"ok", 0)

    fn = FunctionServer(behaviour)
    src = redis_source(rs.url, "st", group="g", claim_idle="0s")
    src["max_inflight"] = INFLIGHT
    cfg = config({"in": src},
                 {"fn": http_sink(fn.url, timeout="120s")},
                 [trigger("t", "in", "fn", concurrency=4, timeout="120s")])
    port = with_http(cfg)
    d = Triggerd(cfg).start()
    c.check(d.wait_ready(30), "daemon ready")
    labels = {"source": "in", "stream": "st", "group": "g"}
    client = rs.client()
    for i in range(N):
        client.xadd("st", {"i": str(i)})
    c.check(wait_until(lambda: fn.in_flight >= 4, 20 * SLOW), "the function holds requests")

    def agree(what, want_lag, want_pending, tool_lag):
        seen = []

        def ok():
            ms = metrics(port)
            seen[:] = [metric(ms, LAG, **labels), metric(ms, PENDING, **labels),
                       metric(ms, TOTAL, source="in")]
            return seen == [want_lag, want_pending, want_lag]

        wait_until(ok, 20 * SLOW, interval=0.25)
        g = xinfo_group(rs, "st", "g")
        c.eq(g and (g.get("lag"), g.get("pending")), (tool_lag, str(want_pending)),
             f"{what}: redis-cli XINFO GROUPS lag and pending")
        c.eq(seen, [want_lag, want_pending, want_lag],
             f"{what}: /metrics lag, pending and the lag total agree with it")

    agree("held", N - INFLIGHT, INFLIGHT, str(N - INFLIGHT))
    time.sleep(6)  # more than one lag interval: stable while held
    agree("still held", N - INFLIGHT, INFLIGHT, str(N - INFLIGHT))

    # Delete an entry the group has not read: Redis 7 cannot say the lag any more (nil).
    last = client.xrevrange("st", count=1)[0][0]
    client.xdel("st", last)
    g = xinfo_group(rs, "st", "g")
    added = entries_added(rs, "st")
    c.eq(g.get("lag"), "", "after XDEL past the group's position redis-cli shows lag nil")
    arithmetic = added - int(g["entries-read"])
    c.eq(arithmetic, N - INFLIGHT, "entries-added minus entries-read (the deleted one included)")
    agree("lag nil", arithmetic, INFLIGHT, "")

    gate.set()
    c.check(wait_until(lambda: fn.count() >= N - 1, 60 * SLOW), "all delivered once released")
    # Redis still cannot count past the deleted entry (lag nil), but no entry follows the
    # group's last-delivered-id: nothing is left.
    agree("drained", 0, 0, "")
    after = redis_cli(rs, "XRANGE", "st",
                      "(" + xinfo_group(rs, "st", "g")["last-delivered-id"], "+")
    c.eq([x for x in after if x], [], "drained: redis-cli XRANGE shows no entry after the group's "
         "last-delivered-id (lag 0)")
    d.terminate()
    d.wait(10 * SLOW)


run_test(body)
