"""The Redis source and sink need no more rights than the README's minimal ACL: a redis-server with
requirepass off and two ACL users (`redis://user:pass@...`, AUTH user pass),

- worker: `~in -@all +xreadgroup +xack +xclaim +xpending +xgroup|create +xinfo|groups
  +xinfo|stream +xrange +xlen` (the source: reading, acking, the reaper, the lag report);
- writer: `~out ~dl -@all +xadd` (a Redis sink and a Redis dead-letter target),

and a run that uses every path (group creation, reads, acks, a slow function so that in-flight
entries are touched with XCLAIM, entries dead-lettered after max_deliveries, the lag report on
/metrics, a restart that reads the own pending list again) delivers everything counted in and
out and leaves Redis's ACL LOG empty: no command was refused. A user without +xack gets NOPERM
(logged by the source, in the ACL LOG): the check can fail.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import metric, metrics, with_http  # noqa: E402

N = 300
SOURCE_RIGHTS = ("-@all +xreadgroup +xack +xclaim +xpending +xgroup|create +xinfo|groups "
                 "+xinfo|stream +xrange +xlen").split()


def body(c):
    rs = RedisServer(extra_args=["--user", "worker", "on", ">workerpw", "~in", *SOURCE_RIGHTS,
                                 "--user", "writer", "on", ">writerpw", "~out", "~dl", "-@all",
                                 "+xadd",
                                 "--user", "noack", "on", ">noackpw", "~in",
                                 *[r for r in SOURCE_RIGHTS if r != "+xack"]])
    cl = rs.client()
    host = f"{rs.scheme}://{{}}@127.0.0.1:{rs.port}/0"
    src_url, out_url = host.format("worker:workerpw"), host.format("writer:writerpw")

    def behaviour(req, attempt):
        d = req.json() if req.body else {}
        if d.get("poison"):
            return (503, {}, b"no", 0)
        return (200, {}, b"", 1.5 if d.get("slow") else 0)

    fn = FunctionServer(behaviour)
    cfg = config(sources={"in": redis_source(src_url, "in", claim_idle="1s", max_deliveries=2)},
                 sinks={"fn": http_sink(fn.url, timeout="5s"),
                        "out": {"redis": {"url": out_url, "stream": "out"}},
                        "dl": {"redis": {"url": out_url, "stream": "dl"}}},
                 triggers=[trigger("t1", "in", "fn", dead_letter="dl", retry=0, timeout="5s"),
                           trigger("t2", "in", "out")])
    port = with_http(cfg)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready as the ACL users")

    def fields(i):
        f = {"n": str(i)}
        if i % 50 == 1:
            f["poison"] = "1"
        elif i % 50 == 2:
            f["slow"] = "1"
        return f
    ids = publish_many(cl, "in", N, fields)
    poison = sum(1 for i in range(N) if i % 50 == 1)
    ok = wait_until(lambda: cl.xlen("out") == N and cl.xlen("dl") == poison
                    and len(fn.ok_ids()) == N - poison
                    and pending_count(cl, "in", "g") == 0, 60 * SLOW, desc="all through")
    c.check(ok, "every entry delivered (function, sink) or dead-lettered",
            (cl.xlen("out"), cl.xlen("dl"), len(fn.ok_ids()), pending_count(cl, "in", "g")))
    c.eq(sorted(f["ce_id"].decode() for _, f in read_stream(cl, "out")), sorted(ids),
         "out = in: each entry once in the sink's stream")
    lag_seen = wait_until(lambda: metric(metrics(port), "triggerd_redis_stream_group_lag",
                                         source="in", stream="in", group="g") == 0, 10 * SLOW)
    c.check(lag_seen, "the lag report (XINFO GROUPS) works with these rights: lag 0 on /metrics")

    # A restart reads the own pending list first (XREADGROUP ... 0): the same rights.
    td.terminate()
    c.eq(td.wait(20 * SLOW), 0, "daemon stopped")
    more = publish_many(cl, "in", 20)
    td.start()
    c.check(td.wait_ready(10), "ready again")
    ok = wait_until(lambda: cl.xlen("out") == N + 20, 20 * SLOW)
    c.check(ok, "entries published while it was down delivered after the restart",
            cl.xlen("out"))
    del more
    time.sleep(1.5 * SLOW)  # a reaper round or two, the lag report
    td.terminate()
    c.eq(td.wait(20 * SLOW), 0, "daemon stopped again")

    log = cl.acl_log()
    c.eq(log, [], "Redis refused no command of the source or the sinks (ACL LOG empty)")
    refused = [str(l.get("msg")) for l in td.logs() if "NOPERM" in str(l.get("msg", ""))]
    c.eq(refused, [], "no NOPERM in the daemon's log")

    # Negative control: without +xack the source is refused, and says so.
    cl.acl_log_reset()
    cl.xadd("in", {"n": "x"})
    bad = config(sources={"in": redis_source(host.format("noack:noackpw"), "in", group="g2")},
                 sinks={"fn": http_sink(fn.url)}, triggers=[trigger("t", "in", "fn")])
    td2 = Triggerd(bad, name="noack").start()
    saw = wait_until(lambda: any("NOPERM" in str(l.get("msg", "")) for l in td2.logs()),
                     15 * SLOW)
    c.check(saw, "a user without +xack: the source logs NOPERM")
    c.check(any(e.get("object") == "xack" for e in cl.acl_log()), "and the ACL LOG names XACK")
    td2.terminate()
    td2.wait(20 * SLOW)
    text = "\n".join(td.raw_lines() + td2.raw_lines())
    c.check("workerpw" not in text and "writerpw" not in text and "noackpw" not in text,
            "no password in the logs")


run_test(body)
