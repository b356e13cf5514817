"""An event no trigger wants is explained: at level info, the first one per source is logged (source,
event id, type), later ones only at debug, and every one is counted in
triggerd_events_unmatched_total{source}. The wanted events are still delivered."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import metric, metrics, with_http  # noqa: E402


def ce_entry(eid, etype):
    return {"ce_specversion": "1.0", "ce_id": eid, "ce_type": etype, "ce_source": "/t",
            "content-type": "text/plain", "data": "x"}


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer()
    wanted = lambda: {"exact": {"type": "com.example.wanted"}}  # noqa: E731 (no YAML aliases)
    cfg = config(sources={"a": redis_source(rs.url, "sa"), "b": redis_source(rs.url, "sb")},
                 sinks={"fn": http_sink(fn.url)},
                 triggers=[dict(trigger("ta", "a", "fn"), filters=[wanted()]),
                           dict(trigger("tb", "b", "fn"), filters=[wanted()])])
    cfg["daemon"]["log"]["level"] = "info"
    port = with_http(cfg)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")

    for i in range(3):
        cl.xadd("sa", ce_entry(f"a-un-{i}", "com.example.other"))
    last = {"sa": cl.xadd("sa", ce_entry("a-ok", "com.example.wanted")).decode()}
    for i in range(2):
        last["sb"] = cl.xadd("sb", ce_entry(f"b-un-{i}", "com.example.else")).decode()

    # Both streams read up to their last entry and nothing pending, not XPENDING 0 alone: that
    # is also true before the daemon has read "sb" (then nothing of it was routed yet, and the
    # check below that only the wanted event reached the function would prove nothing for it).
    c.check(wait_until(lambda: "a-ok" in fn.ok_ids() and
                       all(read_and_acked(cl, s, "g", last[s]) for s in last), 20 * SLOW,
                       desc="all read and acked"),
            "both streams read to their last entry and acked",
            {s: group_info(cl, s, "g") for s in last})
    c.eq(sorted(fn.ok_ids()), ["a-ok"], "only the wanted event reached the function")

    def counts():
        ms = metrics(port)
        got = (metric(ms, "triggerd_events_unmatched_total", source="a"),
               metric(ms, "triggerd_events_unmatched_total", source="b"))
        return got if got == (3, 2) else None

    got = wait_until(counts, 10 * SLOW, desc="unmatched counters")
    ms = metrics(port)
    c.eq((metric(ms, "triggerd_events_unmatched_total", source="a"),
          metric(ms, "triggerd_events_unmatched_total", source="b")), (3, 2),
         "triggerd_events_unmatched_total{source} counts every unmatched event")
    c.check(got is not None, "counters reached 3 and 2")

    told = [l for l in td.logs() if "matched no trigger" in l.get("msg", "")]
    c.eq(sorted((l.get("level"), l.get("source"), l.get("id")) for l in told),
         [("info", "a", "a-un-0"), ("info", "b", "b-un-0")],
         "one info line per source, for its first unmatched event (later ones at debug, not shown)")
    a = [l for l in told if l.get("source") == "a"]
    c.check(a and "com.example.other" in a[0]["msg"] and "a-un-0" in a[0]["msg"],
            "the line names the event id and type", a)
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")


run_test(body)
