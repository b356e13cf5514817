"""event: {set: ...} overrides: filters see the event as it arrived (with the trigger's event:
{type, source} defaults for a wrapped entry), the function gets it with the overrides; and
Knative's legacy filter map treats "" as "present with any value"."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 20


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer()
    renamed = trigger("renamed", "in", "a", etype="com.orig")
    renamed["filters"] = [{"exact": {"type": "com.orig"}}]
    renamed["event"]["set"] = {"type": "com.renamed", "team": "media"}
    anyval = trigger("anyval", "in", "b", etype="com.orig")
    anyval["filter"] = {"type": "com.orig", "kind": ""}  # kind present, any value
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"a": http_sink(fn.url + "a"), "b": http_sink(fn.url + "b")},
                 triggers=[renamed, anyval])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")
    # Half the entries carry a field "kind"; wrapped entries have no such attribute, so only
    # binary-mode CloudEvents with a ce_kind extension can match the "" filter.
    with_kind = publish_many(cl, "s", N // 2, lambda i: {
        "ce_specversion": "1.0", "ce_id": f"k{i}", "ce_type": "com.orig", "ce_source": "/x",
        "ce_kind": f"v{i}", "data": "{}", "content-type": "application/json"})
    plain = publish_many(cl, "s", N // 2, lambda i: {"n": str(i)})
    # A binary-mode event whose data is itself a structured CloudEvent: sent in binary mode its
    # Content-Type would make the function read the data as the event. It must arrive as
    # itself (the sink switches to structured mode for it).
    cl.xadd("s", {"ce_specversion": "1.0", "ce_id": "outer", "ce_type": "com.orig",
                  "ce_source": "/x", "content-type": "application/cloudevents+json",
                  "data": json.dumps({"specversion": "1.0", "id": "inner", "type": "evil",
                                      "source": "/evil"})})
    wait_until(lambda: pending_count(cl, "s", "g") == 0 and len(fn.ok_ids("/a")) >= N + 1,
               20 * SLOW, desc="all acked")

    got_a = fn.snapshot("/a")
    outer = [r for r in got_a if r.ce_id == "outer"]
    c.check(outer and outer[0].ce("type") == "com.renamed" and not [r for r in got_a
                                                                    if r.ce_id == "inner"],
            "an event carrying a structured CloudEvent as data arrives as itself")
    got_a = [r for r in got_a if r.ce_id != "outer"]
    c.eq(len({r.ce_id for r in got_a}), N, "every event passed the filter on the original type")
    c.check(all(r.ce("type") == "com.renamed" for r in got_a), "the function got the overridden type")
    c.check(all(r.ce("team") == "media" for r in got_a), "the function got the added extension")
    want_b = {f"k{i}" for i in range(N // 2)}
    c.eq({r.ce_id for r in fn.snapshot("/b")}, want_b,
         "legacy filter '': exactly the events that have the attribute")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING count at the end")
    log(f"in={len(with_kind) + len(plain)} a={len(got_a)} b={len(fn.snapshot('/b'))}")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")


run_test(body)
