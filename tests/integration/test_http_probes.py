"""/healthz, /readyz, /metrics and /status of a running daemon: the probes flip as Redis goes away and
comes back; the /metrics counters equal the counts of the run exactly; /status shows what is in flight."""

import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import get, get_json, metric, metrics, request, with_http  # noqa: E402

N = 40


def body(c):
    rs = RedisServer()
    cl = rs.client()
    slow_gate = threading.Event()

    def behaviour(req, attempt):
        d = req.json() if req.body else {}
        if d.get("bad"):
            return (422, {}, b"no", 0)
        if d.get("slow"):
            slow_gate.wait(20)
        return (200, {}, b"ok", 0)

    fn = FunctionServer(behaviour)
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"fn": http_sink(fn.url, timeout="30s"),
                        "dl": {"redis": {"url": rs.url, "stream": "dl"}}},
                 triggers=[trigger("t1", "in", "fn", dead_letter="dl", timeout="30s")])
    port = with_http(cfg)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")
    st, _, b = get(port, "/healthz")
    c.eq(st, 200, "/healthz 200")
    c.check(json.loads(b).get("alive") is True, "/healthz says alive", b)
    st, rd = get_json(port, "/readyz")
    c.eq((st, rd.get("ready")), (200, True), "/readyz 200 when Redis is connected")
    c.eq(get(port, "/nope")[0], 404, "unknown path 404")
    c.eq(request(port, "POST", "/metrics", body=b"x")[0], 405, "POST /metrics 405")

    ids = publish_many(cl, "s", N, lambda i: {"n": str(i), **({"bad": "1"} if i % 4 == 0 else {})})
    nbad = len([i for i in range(N) if i % 4 == 0])
    ok = wait_until(lambda: len(fn.ok_ids()) == N - nbad and cl.xlen("dl") == nbad
                    and pending_count(cl, "s", "g") == 0, 20 * SLOW, desc="run finished")
    c.check(ok, "all delivered or dead-lettered and acked")

    def settled():
        ms = metrics(port)
        return ms if metric(ms, "triggerd_source_events_acked_total", source="in") == N else None

    ms = wait_until(settled, 10 * SLOW, desc="metrics settled") or metrics(port)
    want = {
        ("triggerd_source_events_received_total", (("source", "in"),)): N,
        ("triggerd_source_events_acked_total", (("source", "in"),)): N,
        ("triggerd_source_connected", (("source", "in"),)): 1,
        ("triggerd_source_in_flight", (("source", "in"),)): 0,
        ("triggerd_trigger_matched_total", (("trigger", "t1"),)): N,
        ("triggerd_trigger_deliveries_total", (("outcome", "delivered"), ("trigger", "t1"))): N - nbad,
        ("triggerd_trigger_deliveries_total", (("outcome", "dead_lettered"), ("trigger", "t1"))): nbad,
        ("triggerd_trigger_deliveries_total", (("outcome", "released"), ("trigger", "t1"))): 0,
        ("triggerd_trigger_attempts_total", (("trigger", "t1"),)): N,
        ("triggerd_trigger_retries_total", (("trigger", "t1"),)): 0,
        ("triggerd_trigger_dead_letters_total", (("reason", "final_status"), ("trigger", "t1"))): nbad,
        ("triggerd_trigger_dead_letters_total", (("reason", "retries_exhausted"), ("trigger", "t1"))): 0,
        ("triggerd_trigger_in_flight", (("trigger", "t1"),)): 0,
        ("triggerd_trigger_delivery_latency_seconds_count", (("trigger", "t1"),)): N - nbad,
        ("triggerd_trigger_delivery_latency_seconds_bucket", (("le", "+Inf"), ("trigger", "t1"))): N - nbad,
        ("triggerd_events_unmatched_total", (("source", "in"),)): 0,
        ("triggerd_messages_in_flight", ()): 0,
        ("triggerd_reloads_total", (("result", "success"),)): 0,
        ("triggerd_build_info", (("version", "0.1.0"),)): 1,
    }
    bad = {k: (ms.get(k), v) for k, v in want.items() if ms.get(k) != v}
    c.check(not bad, "every /metrics counter equals the run's counts", bad)
    c.check(ms.get(("triggerd_redis_pending_messages", (("source", "in"),))) is not None,
            "Redis pending count exported")
    buckets = sorted((float(dict(k[1])["le"]) if dict(k[1])["le"] != "+Inf" else float("inf"), v)
                     for k, v in ms.items() if k[0].endswith("latency_seconds_bucket"))
    c.check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), "histogram buckets cumulative")
    st, status = get_json(port, "/status")
    t1 = (status.get("triggers") or [{}])[0]
    c.eq((st, t1.get("name"), t1.get("delivered"), t1.get("dead_lettered"), t1.get("in_flight")),
         (200, "t1", N - nbad, nbad, 0), "/status per trigger")

    # A slow delivery shows up as in flight, with the age of its message.
    cl.xadd("s", {"slow": "1"})
    wait_until(lambda: fn.in_flight == 1, 10 * SLOW, desc="slow request at the function")
    time.sleep(0.3)
    st, status = get_json(port, "/status")
    t1 = (status.get("triggers") or [{}])[0]
    c.eq((t1.get("in_flight"), t1.get("running")), (1, 1), "/status shows the slow delivery running")
    ms = metrics(port)
    age = metric(ms, "triggerd_source_oldest_unacked_age_seconds", source="in") or 0
    c.check(age >= 0.2, "oldest unacked age grows while it is slow", age)
    slow_gate.set()
    wait_until(lambda: metric(metrics(port), "triggerd_trigger_in_flight", trigger="t1") == 0,
               10 * SLOW, desc="slow one done")

    # Readiness follows Redis.
    rs.stop()
    flipped = wait_until(lambda: get(port, "/readyz")[0] == 503, 15 * SLOW, desc="readyz 503")
    c.check(flipped, "/readyz 503 while Redis is down")
    st, rd = get_json(port, "/readyz")
    c.check(any("'in'" in r for r in rd.get("reasons", [])), "the reason names the source", rd)
    c.eq(get(port, "/healthz")[0], 200, "/healthz stays 200 (the loop is alive)")
    rs.start()
    back = wait_until(lambda: get(port, "/readyz")[0] == 200, 20 * SLOW, desc="readyz 200 again")
    c.check(back, "/readyz 200 once Redis is back")

    td.signal(signal.SIGTERM)
    c.eq(td.wait(20 * SLOW), 0, "exit 0 on SIGTERM")


run_test(body)
