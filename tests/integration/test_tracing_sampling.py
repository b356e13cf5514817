"""Tracing with daemon.tracing.sample_ratio 0: a trace that starts here is not recorded but still
propagated; an incoming sampled traceparent is recorded whatever the ratio (parent-based sampling).

- an entry without a trace context: no span is exported, yet the function gets a traceparent header
  with the sampled flag 00, the event gets a ce-traceparent (flag 00) naming another span of the same
  trace, and the log lines about it still carry that trace_id;
- an entry with ce_traceparent flag 01: its process and deliver spans are exported under that parent;
- an entry with flag 00: nothing exported, and the function's header keeps the trace with flag 00;
- a malformed ce_traceparent (uppercase hex) is ignored: a new (unsampled) trace;
- "nothing else exported" is judged once a later sampled entry's spans arrived (the export queue goes
  out in order) with no span dropped, never after a fixed pause;
- a reload that changes daemon.tracing is refused (tracing is set up at start) and says so.
"""

import os
import signal
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import metric, metrics, with_http  # noqa: E402
from otlp_receiver import OtlpReceiver, decoder_available  # noqa: E402

T1 = "4bf92f3577b34da6a3ce929d0e0e4736"
T0 = "0af7651916cd43dd8448eb211c80319c"
TB = "5b8efff798038103d269b633813fc60c"  # the barrier entry's trace
P = "00f067aa0ba902b7"
BAD = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"


def ce(eid, tp):
    return {"ce_specversion": "1.0", "ce_id": eid, "ce_type": "com.example.test", "ce_source": "/t",
            "ce_traceparent": tp, "data": "{}"}


def body(c):
    if not decoder_available():
        log("SKIP: opentelemetry-proto not installed (scripts/setup-debian.sh makes the venv)")
        sys.exit(77)
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer()
    otlp = OtlpReceiver()
    cfg = config({"s": redis_source(rs.url, "s")}, {"fn": http_sink(fn.url)}, [trigger("t", "s", "fn")])
    cfg["daemon"]["tracing"] = {"otlp_endpoint": otlp.url + "/v1/traces", "sample_ratio": 0,
                                "interval": "50ms"}
    port = with_http(cfg)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")
    cl.xadd("s", {"n": "plain"})
    cl.xadd("s", ce("sampled", f"00-{T1}-{P}-01"))
    cl.xadd("s", ce("unsampled", f"00-{T0}-{P}-00"))
    cl.xadd("s", ce("bad", BAD))
    c.check(wait_until(lambda: len(fn.ok_ids()) == 4 and cl.xpending("s", "g")["pending"] == 0,
                       10 * SLOW), "all four delivered and acknowledged")
    c.check(wait_until(lambda: len(otlp.spans()) >= 2, 10 * SLOW), "spans of the sampled trace exported")
    # A barrier instead of a fixed pause after which nothing more is expected: a sampled entry in a
    # trace of its own, added now that the four are acknowledged (so every span of theirs is
    # already in the export queue). The queue goes out in order, one batch at a time, so once the
    # barrier's spans arrived, whatever the four recorded has arrived too (or was dropped, which
    # the counters below would show).
    cl.xadd("s", ce("barrier", f"00-{TB}-{P}-01"))
    c.check(wait_until(lambda: len([s for s in otlp.spans() if s["trace_id"] == TB]) >= 2,
                       10 * SLOW, interval=0.1, desc="the barrier's spans"),
            "the barrier entry's spans exported after the four's",
            sorted((s["name"], s["trace_id"]) for s in otlp.spans()))
    ms = metrics(port)
    c.eq((metric(ms, "triggerd_trace_spans_dropped_total", reason="queue_full"),
          metric(ms, "triggerd_trace_spans_dropped_total", reason="export_failed")), (0.0, 0.0),
         "no span dropped (a dropped one could hide an unsampled one)")
    spans = [s for s in otlp.spans() if s["trace_id"] != TB]
    c.eq(sorted(s["name"] for s in spans), ["deliver t", "process s"], "only the sampled event's spans")
    c.check(all(s["trace_id"] == T1 for s in spans), "in the incoming trace")
    c.eq(otlp.snapshot()[0][0], "/v1/traces", "an endpoint ending in /v1/traces is used as it is")
    proc = [s for s in spans if s["name"] == "process s"]
    if proc:
        c.eq(proc[0]["parent_span_id"], P, "under the incoming parent")

    reqs = {r.ce_id: r for r in fn.snapshot()}
    plain = [r for cid, r in reqs.items() if cid not in ("sampled", "unsampled", "bad", "barrier")]
    c.eq(len(plain), 1, "the plain entry reached the function")
    if plain:
        h = plain[0].header("traceparent") or ""
        a = plain[0].ce("traceparent") or ""
        c.check(h.endswith("-00") and len(h) == 55, "unsampled: the header is still sent, flag 00", h)
        c.check(a.endswith("-00") and a.split("-")[1] == h.split("-")[1] and a != h,
                "the event got the trace too (another span of it, flag 00)", a)
        tid = h.split("-")[1] if h else None
        lines = [l for l in td.logs() if l.get("trigger") == "t" and l.get("id") == plain[0].ce_id]
        c.check(lines and all(l.get("trace_id") == tid for l in lines),
                "its log lines carry the trace_id though nothing was recorded")
    r = reqs.get("unsampled")
    if r:
        h = r.header("traceparent") or ""
        c.check(h.startswith(f"00-{T0}-") and h.endswith("-00"), "an unsampled parent stays unsampled", h)
        c.eq(r.ce("traceparent"), f"00-{T0}-{P}-00", "its attribute unchanged")
    r = reqs.get("bad")
    if r:
        h = r.header("traceparent") or ""
        c.check(h and T1 not in h.lower() and h.endswith("-00"),
                "a malformed traceparent is ignored: a new trace", h)
        c.eq(r.ce("traceparent"), BAD, "the event's own (malformed) attribute is not ours to change")

    cfg["daemon"]["tracing"]["sample_ratio"] = 0.5
    with open(td.config_path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    td.signal(signal.SIGHUP)
    c.check(wait_until(lambda: any("daemon.tracing changed" in (l.get("msg") or "") for l in td.logs()),
                       10 * SLOW), "a reload changing daemon.tracing is refused")
    td.terminate()
    c.eq(td.wait(15 * SLOW), 0, "clean exit")
    c.eq(td.sanitizer_reports(), [], "no sanitizer reports")


if __name__ == "__main__":
    run_test(body)
