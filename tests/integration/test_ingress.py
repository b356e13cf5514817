"""The HTTP ingress source: binary, structured and batched CloudEvents are delivered and answered 202
only after the function got them (or they were dead-lettered); malformed events get 400 with a reason,
oversized requests 413, requests without the bearer token 401, undeliverable ones 503 (422 when the
function answered a final 4xx and there is no dead-letter target), and new requests
503 while the daemon shuts down."""

import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import metric, metrics, request, with_http  # noqa: E402

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def binary(eid, data=b'{"x":1}', etype="com.example.in", extra=None):
    h = dict(AUTH, **{"ce-specversion": "1.0", "ce-id": eid, "ce-source": "/src", "ce-type": etype,
                      "Content-Type": "application/json"})
    h.update(extra or {})
    return h, data


def structured(eid, **more):
    ev = {"specversion": "1.0", "id": eid, "source": "/src", "type": "com.example.in",
          "datacontenttype": "application/json", "data": {"id": eid}}
    ev.update(more)
    return ev


def post(port, path, headers, body, timeout=30):
    return request(port, "POST", path, body=body, headers=headers, timeout=timeout * SLOW)


def body(c):
    rs = RedisServer()  # noqa: F841 (the suite needs redis-server; the dead letters go to a file)
    slow = threading.Event()

    def behaviour(req, attempt):
        cid = req.ce_id or ""
        if cid.startswith("reject"):
            return (422, {}, b"unprocessable", 0)
        if cid.startswith("fail"):
            return (500, {}, b"boom", 0)
        if cid.startswith("slow"):
            slow.wait(30)
            return (200, {}, b"", 0)
        if cid.startswith("delay"):
            return (200, {}, b"", 0.8)
        return (200, {}, b"", 0)

    fn = FunctionServer(behaviour)
    dlpath = os.path.join(make_tempdir("td-ingress-"), "dead.jsonl")
    cfg = config(sources={"in": {"http": {"path": "/events", "auth": {"bearer": TOKEN},
                                          "max_size": "2KiB"}},
                          "open": {"http": {"path": "/open"}}},
                 sinks={"fn": http_sink(fn.url, timeout="30s"), "dl": {"file": {"path": dlpath}}},
                 triggers=[trigger("t1", "in", "fn", dead_letter="dl", retry=1, timeout="30s"),
                           trigger("t2", "open", "fn", retry=1, timeout="30s")],
                 shutdown_grace="20s")
    port = with_http(cfg)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")

    # Binary mode; the 202 comes only after the function answered.
    h, d = binary("delay-1")
    t0 = time.monotonic()
    st, _, b = post(port, "/events", h, d)
    t1 = time.monotonic()
    c.eq(st, 202, "binary mode 202")
    got = fn.by_id().get("delay-1", [])
    c.check(got and got[0].t_reply is not None and got[0].t_reply <= t1 and t1 - t0 >= 0.7,
            "202 only after the function answered", f"{t1 - t0:.2f}s")
    if got:
        r = got[0]
        c.eq((r.ce("type"), r.ce("source"), r.body), ("com.example.in", "/src", b'{"x":1}'),
             "the function got the event as sent")

    # Structured mode.
    st, _, b = post(port, "/events", dict(AUTH, **{"Content-Type": "application/cloudevents+json"}),
                    json.dumps(structured("st-1")).encode())
    c.eq(st, 202, "structured mode 202")
    # The function's thread marks a request complete just after its write; the 202 can
    # overtake that bookkeeping by microseconds, so give it a moment.
    c.check(wait_until(lambda: "st-1" in fn.ok_ids(), 2), "structured event delivered")

    # Batched mode.
    batch = [structured(f"b-{i}") for i in range(5)]
    st, _, b = post(port, "/events", dict(AUTH, **{"Content-Type": "application/cloudevents-batch+json"}),
                    json.dumps(batch).encode())
    c.eq((st, json.loads(b or b"{}").get("accepted")), (202, 5), "batch of 5: 202, accepted 5")
    c.check(wait_until(lambda: {f"b-{i}" for i in range(5)} <= fn.ok_ids(), 2),
            "every batched event delivered")

    # Malformed.
    before = fn.count()
    cases = [
        ("structured, not JSON", {"Content-Type": "application/cloudevents+json"}, b"{nope", "JSON"),
        ("structured, no id", {"Content-Type": "application/cloudevents+json"},
         json.dumps({k: v for k, v in structured("x").items() if k != "id"}).encode(), "id"),
        ("binary, no ce-type", {"ce-specversion": "1.0", "ce-id": "y", "ce-source": "/s"}, b"", "type"),
        ("not a CloudEvent", {"Content-Type": "application/json"}, b"{}", "CloudEvent"),
        ("batch with a bad element", {"Content-Type": "application/cloudevents-batch+json"},
         json.dumps([structured("ok-a"), {"specversion": "1.0"}]).encode(), "element 1"),
        ("batch not an array", {"Content-Type": "application/cloudevents-batch+json"}, b"{}", "array"),
    ]
    for what, hdrs, data, word in cases:
        st, _, b = post(port, "/events", dict(AUTH, **hdrs), data)
        try:
            reason = json.loads(b).get("error", "")
        except ValueError:
            reason = b.decode("utf-8", "replace")
        c.check(st == 400 and word.lower() in reason.lower(), f"400 for {what}", f"{st} {reason!r}")
    time.sleep(0.2)
    c.eq(fn.count(), before, "nothing of a refused request reached the function")

    # Auth and size.
    h, d = binary("noauth")
    del h["Authorization"]
    c.eq(post(port, "/events", h, d)[0], 401, "401 without the bearer token")
    h, d = binary("wrongauth", extra={"Authorization": "Bearer nope"})
    c.eq(post(port, "/events", h, d)[0], 401, "401 with a wrong token")
    h, d = binary("big", data=b'"' + b"x" * 4096 + b'"')
    c.eq(post(port, "/events", h, d)[0], 413, "413 over max_size")
    c.check("noauth" not in fn.by_id() and "big" not in fn.by_id(), "refused events not delivered")
    c.eq(request(port, "GET", "/events")[0], 405, "GET on the ingress path 405")

    # Dead-lettered counts as done: 202, and the dead letter is in the file.
    h, d = binary("reject-1")
    c.eq(post(port, "/events", h, d)[0], 202, "a dead-lettered event is answered 202")
    try:
        lines = [json.loads(l) for l in open(dlpath) if l.strip()]
    except FileNotFoundError:
        lines = []
    c.check(any(e.get("id") == "reject-1" for e in lines), "its dead letter was written first")

    # Undeliverable without a dead-letter target: 503, so the caller retries.
    h, d = binary("fail-1")
    del h["Authorization"]
    st, hd, b = post(port, "/open", h, d)
    c.eq(st, 503, "an event that could not be delivered is answered 503")
    c.check("retry-after" in hd, "with Retry-After")

    # Failed for good (a final 4xx from the function) without a dead-letter target: 422 with the
    # function's status and the reason, no Retry-After, so the caller stops retrying.
    h, d = binary("reject-open-1")
    del h["Authorization"]
    st, hd, b = post(port, "/open", h, d)
    try:
        ans = json.loads(b)
    except ValueError:
        ans = {}
    c.eq((st, ans.get("status"), ans.get("id")), (422, 422, "reject-open-1"),
         "a final failure is answered 422 with the function's status and the event id")
    c.check("final_status" in ans.get("error", "") and "t2" in ans.get("error", ""),
            "the reason names the trigger and final_status", ans.get("error"))
    c.check("retry-after" not in hd, "no Retry-After on a permanent failure")
    c.eq(len(fn.by_id().get("reject-open-1", [])), 1, "a final status is not retried")

    ms = metrics(port)
    c.eq(metric(ms, "triggerd_source_events_received_total", source="in"), 1 + 1 + 5 + 1,
         "metrics: events received by the ingress source")

    # Shutdown: the in-flight request still gets its 202; new ones get 503.
    res = {}

    def slow_post():
        hh, dd = binary("slow-1")
        res["slow"] = post(port, "/events", hh, dd)[0]

    th = threading.Thread(target=slow_post)
    th.start()
    wait_until(lambda: "slow-1" in fn.by_id(), 10 * SLOW, desc="slow at the function")
    td.signal(signal.SIGTERM)
    time.sleep(0.3)
    h, d = binary("late-1")
    try:
        st = post(port, "/events", h, d, timeout=10)[0]
    except OSError as e:
        st = f"error {e}"
    c.eq(st, 503, "503 while shutting down")
    slow.set()
    th.join(30 * SLOW)
    c.eq(res.get("slow"), 202, "the request in flight at shutdown still got 202 once delivered")
    c.eq(td.wait(30 * SLOW), 0, "exit 0")


run_test(body)
