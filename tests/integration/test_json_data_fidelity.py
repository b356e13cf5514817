"""JSON data reaches the function as the producer wrote it. A structured event (and a batch of
them) posted to the ingress carries data with numbers a double cannot hold exactly: a 64-bit id
(12345678901234567890), a long decimal and 7e777. The binary-mode function must get the data
member's text byte for byte, and the structured-mode function must find the same text in its
"data" member; re-printing the data through a cJSON tree gave 1.2345678901234567e+19, 0.1 and
null instead (json_text.h)."""

import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import request, with_http  # noqa: E402

DATA = ('{"id": 12345678901234567890, "x": 0.1000000000000000055511151231257827,'
        ' "big": 7e777, "list": [1.10, -0, "\\u00e9"]}')


def event(eid):
    return ('{"specversion":"1.0","id":"%s","source":"/fidelity","type":"com.example.fidelity",'
            '"datacontenttype":"application/json","data": %s }' % (eid, DATA))


def body(c):
    rs = RedisServer()  # noqa: F841 (run_test needs redis-server installed; unused here)
    fn = FunctionServer(lambda req, a: (200, {}, b"", 0))
    cfg = config(sources={"in": {"http": {"path": "/events"}}},
                 sinks={"s": http_sink(fn.url + "s", mode="structured", timeout="10s"),
                        "b": http_sink(fn.url + "b", timeout="10s")},
                 triggers=[trigger("ts", "in", "s", timeout="10s"),
                           trigger("tb", "in", "b", timeout="10s")])
    port = with_http(cfg)
    td = Triggerd(cfg).start()
    if not c.check(td.wait_ready(10), "daemon ready"):
        return

    st, _, _ = request(port, "POST", "/events", body=event("one").encode(),
                       headers={"Content-Type": "application/cloudevents+json"}, timeout=30 * SLOW)
    c.check(st in (200, 202), "structured event accepted", st)
    batch = "[%s,\n %s]" % (event("two"), event("three"))
    st, _, _ = request(port, "POST", "/events", body=batch.encode(),
                       headers={"Content-Type": "application/cloudevents-batch+json"},
                       timeout=30 * SLOW)
    c.check(st in (200, 202), "batch accepted", st)

    ids = {"one", "two", "three"}
    c.check(wait_until(lambda: fn.ok_ids("/b") == ids and fn.ok_ids("/s") == ids, 20 * SLOW),
            "three events at both functions", (fn.ok_ids("/b"), fn.ok_ids("/s")))
    for r in fn.snapshot("/b"):
        c.eq(r.body.decode(), DATA, f"binary mode: {r.ce_id}'s body is the data as written")
    for r in fn.snapshot("/s"):
        text = r.body.decode()
        c.check(('"data":' + DATA) in text, f"structured mode: {r.ce_id}'s data member as written",
                text)
        c.eq(json.loads(text).get("id"), r.ce_id, f"structured mode: {r.ce_id} is valid JSON")
    td.signal(signal.SIGTERM)
    c.eq(td.wait(30 * SLOW), 0, "exit 0")


run_test(body)
