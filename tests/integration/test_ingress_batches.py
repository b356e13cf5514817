"""Ingress hand-off under load (issue 11, High 3): four clients POST batches of 200 CloudEvents at
once, to two triggers each (so the loop takes and drops several references per event while the
ingress and HTTP threads still run). The ingress thread used to drop its own reference to each
event after handing it to the loop, racing with the loop on the (plain int) reference count: a
ThreadSanitizer build reported data races on the count and in event_free, and a lost update is a
leak or a double free. Every batch must be answered 202 with 200 accepted, every event delivered
to both functions exactly once, and (in the TSan build, where the suite runs this test) the daemon
must print no ThreadSanitizer report (harness.run_test fails on any)."""

import json
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import request, with_http  # noqa: E402

CLIENTS = 4
BATCHES = 5  # per client
PER_BATCH = 200


def body(c):
    rs = RedisServer()  # noqa: F841 (run_test needs redis-server installed; unused here)
    fn = FunctionServer(lambda req, a: (200, {}, b"", 0))
    cfg = config(sources={"in": {"http": {"path": "/events", "max_size": "4MiB"}, "max_inflight": 4000}},
                 sinks={"a": http_sink(fn.url + "a", mode="structured", timeout="10s"),
                        "b": http_sink(fn.url + "b", timeout="10s")},
                 triggers=[trigger("ta", "in", "a", concurrency=32, timeout="10s"),
                           trigger("tb", "in", "b", concurrency=32, timeout="10s")])
    cfg["daemon"]["log"]["level"] = "info"
    port = with_http(cfg)
    td = Triggerd(cfg).start()
    if not c.check(td.wait_ready(10), "daemon ready"):
        return

    answers, lock = [], threading.Lock()

    def client(k):
        for b in range(BATCHES):
            evs = [{"specversion": "1.0", "id": f"c{k}-b{b}-{i}", "source": "/load", "type": "com.example.load",
                    "datacontenttype": "application/json", "data": {"i": i}} for i in range(PER_BATCH)]
            try:
                st, _, resp = request(port, "POST", "/events", body=json.dumps(evs).encode(),
                                      headers={"Content-Type": "application/cloudevents-batch+json"},
                                      timeout=60 * SLOW)
                got = (st, json.loads(resp or b"{}").get("accepted"))
            except Exception as e:  # counted as a wrong answer below
                got = (None, repr(e))
            with lock:
                answers.append(got)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120 * SLOW)
    total = CLIENTS * BATCHES * PER_BATCH
    wrong = [a for a in answers if a != (202, PER_BATCH)]
    c.check(len(answers) == CLIENTS * BATCHES and not wrong,
            f"{CLIENTS * BATCHES} batches of {PER_BATCH} answered 202, all accepted", wrong[:3])
    want = {f"c{k}-b{b}-{i}" for k in range(CLIENTS) for b in range(BATCHES) for i in range(PER_BATCH)}
    for path in ("/a", "/b"):
        got = fn.by_id(path)
        c.check(set(got) == want and fn.ok_ids(path) == want,
                f"{path}: all {total} events delivered", f"{len(want - fn.ok_ids(path))} missing")
        dups = [k for k, v in got.items() if len(v) > 1]
        c.check(not dups, f"{path}: none delivered twice", dups[:5])
    td.signal(signal.SIGTERM)
    c.eq(td.wait(30 * SLOW), 0, "exit 0")


run_test(body)
