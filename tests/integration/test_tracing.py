"""Tracing: the span tree of an event's journey, exported with OTLP/HTTP JSON and decoded on this side
with the official OpenTelemetry protocol definitions (otlp_receiver.py, otlp_decode.py).

Redis sources feed an HTTP function; the receiver gets the spans. For each flow the test finds the
event's trace and checks parents, kinds, statuses and attributes:
- delivered: "process ok" (CONSUMER, a new root: the event had no traceparent) -> one "deliver t-ok"
  (CLIENT, 200); the function saw the header traceparent naming that attempt span, and the event's
  ce-traceparent naming the process span (the broker stamped the event);
- retried: the event carries ce_traceparent + ce_tracestate (binary mode in the stream), which become
  the process span's parent and trace state; two attempts (503: ERROR, then 200 after a backoff), each
  seen by the function with its own span in the traceparent header; the event's own attribute reaches
  the function unchanged;
- dead-lettered: the function answers 400: the attempt is ERROR (final), a "dead_letter t-dead" span
  (PRODUCER, reason final_status) under the process span, which is ERROR; the dead letter in Redis
  carries the trace in ce_traceparent;
- replied: the function answers with a CloudEvent: a "reply t-reply" span (PRODUCER) under the process
  span; the reply in Redis carries ce_traceparent naming the reply span;
- ingress: a request's traceparent header is the parent of its event's process span, and the event's
  own ce-traceparent (where it was made) is a link of that span;
- the log lines about these events carry trace_id (and span_id) of their trace; /metrics counts the
  exported spans.
"""

import json
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import metric, metrics, request, with_http  # noqa: E402
from otlp_receiver import OtlpReceiver, decoder_available  # noqa: E402

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
INGRESS_TRACE = "0af7651916cd43dd8448eb211c80319c"
INGRESS_SPAN = "b7ad6b7169203331"
MADE_TRACE = "11111111111111111111111111111111"
MADE_SPAN = "2222222222222222"


def behaviour(req, attempt):
    path = req.path.split("?")[0]
    if path == "/retry" and attempt == 1:
        return (503, {}, b"busy", 0)
    if path == "/dead":
        return (400, {}, b"no such thing", 0)
    if path == "/reply":
        return (200, {"ce-specversion": "1.0", "ce-id": "reply-" + (req.ce_id or ""),
                      "ce-type": "com.example.reply", "ce-source": "/fn",
                      "Content-Type": "application/json"}, b'{"r":1}', 0)
    return (200, {}, b"", 0)


def tp_parts(tp):
    v, trace, span, flags = tp.split("-")
    return trace, span, flags


def body(c):
    if not decoder_available():
        log("SKIP: opentelemetry-proto not installed (scripts/setup-debian.sh makes the venv)")
        sys.exit(77)
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer(behaviour)
    otlp = OtlpReceiver()
    flows = ["ok", "retry", "dead", "reply"]
    sources = {f: redis_source(rs.url, f) for f in flows}
    sources["in"] = {"http": {"path": "/events"}}
    sinks = {f: http_sink(fn.url + f + "?code=secret") for f in flows}
    sinks["dl"] = {"redis": {"url": rs.url, "stream": "dead-letters"}}
    sinks["replies"] = {"redis": {"url": rs.url, "stream": "replies"}}
    triggers = [trigger("t-" + f, f, f, retry=2, backoff_delay="100ms", backoff_max="200ms",
                        dead_letter="dl") for f in flows]
    triggers[3]["reply"] = "replies"
    triggers.append(trigger("t-in", "in", "ok"))
    cfg = config(sources, sinks, triggers)
    cfg["daemon"]["tracing"] = {"otlp_endpoint": otlp.url, "interval": "100ms",
                                "headers": {"X-Api-Key": "k1"}, "service_name": "td-test"}
    port = with_http(cfg)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")

    t_before = time.time_ns()
    cl.xadd("ok", {"n": "1"})
    cl.xadd("retry", {"ce_specversion": "1.0", "ce_id": "r-1", "ce_type": "com.example.test",
                      "ce_source": "/test", "ce_traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-01",
                      "ce_tracestate": "vendor=abc", "data": "{}"})
    cl.xadd("dead", {"n": "1"})
    cl.xadd("reply", {"n": "1"})
    st, _, _ = request(port, "POST", "/events", body=b"{}", headers={
        "ce-specversion": "1.0", "ce-id": "in-1", "ce-type": "com.example.test", "ce-source": "/in",
        "Content-Type": "application/json", "traceparent": f"00-{INGRESS_TRACE}-{INGRESS_SPAN}-01",
        "ce-traceparent": f"00-{MADE_TRACE}-{MADE_SPAN}-01"})
    c.eq(st, 202, "ingress accepted the event")

    def want_spans():
        try:
            return len(otlp.spans()) >= 13
        except RuntimeError:
            return False
    # 5 process + deliver (ok, 2 retry, dead, reply, in) + dead_letter + reply = 13
    ok = wait_until(want_spans, 20 * SLOW)
    posts = otlp.snapshot()
    c.check(ok, "all 13 spans exported", f"{len(posts)} posts")
    c.check(all(p == "/v1/traces" for p, _, _ in posts), "POST /v1/traces")
    c.check(all(h.get("content-type") == "application/json" for _, h, _ in posts),
            "Content-Type application/json")
    c.check(all(h.get("x-api-key") == "k1" for _, h, _ in posts), "the configured headers are sent")
    spans = otlp.spans()  # raises when a body is not valid OTLP
    t_after = time.time_ns()
    c.check(all(t_before - 10**9 <= s["start"] <= s["end"] <= t_after for s in spans),
            "every span's times are UNIX nanoseconds within the test's run",
            [(s["name"], s["start"], s["end"]) for s in spans if not t_before - 10**9 <= s["start"]][:3])
    c.check(all(s["resource"].get("service.name") == "td-test" for s in spans), "service.name")
    by_id = {s["span_id"]: s for s in spans}

    def process_span(src):
        ps = [s for s in spans if s["name"] == "process " + src]
        c.eq(len(ps), 1, f"one process span for source {src}")
        return ps[0] if ps else None

    def children(p, name=None):
        return sorted([s for s in spans if s["parent_span_id"] == p["span_id"] and
                       s["trace_id"] == p["trace_id"] and (name is None or s["name"] == name)],
                      key=lambda s: s["start"])

    reqs = fn.snapshot()

    # --- delivered
    p = process_span("ok")
    if p:
        c.eq(p["kind"], "SPAN_KIND_CONSUMER", "process span kind")
        c.eq(p["parent_span_id"], "", "a new trace: the process span is a root")
        a = p["attributes"]
        c.eq(a.get("triggerd.source.name"), "ok", "source name")
        c.eq(a.get("triggerd.source.kind"), "redis", "source kind")
        c.eq(a.get("triggerd.outcome"), "ack", "outcome ack")
        c.check(a.get("triggerd.source.coordinates", "").count("-") == 1, "entry id as coordinates",
                a.get("triggerd.source.coordinates"))
        c.eq(p["status"], "STATUS_CODE_UNSET", "delivered: process status unset")
        kids = children(p)
        c.eq([k["name"] for k in kids], ["deliver t-ok"], "one attempt span under it")
        if kids:
            k = kids[0]
            ka = k["attributes"]
            c.eq(k["kind"], "SPAN_KIND_CLIENT", "attempt kind CLIENT")
            c.eq(ka.get("http.response.status_code"), 200, "attempt status code")
            c.eq(ka.get("triggerd.attempt"), 1, "attempt number")
            c.eq(ka.get("url.full"), fn.url + "ok", "URL without its query")
            c.eq(ka.get("triggerd.sink.name"), "ok", "sink name")
            c.check(p["start"] <= k["start"] <= k["end"] <= p["end"], "attempt within the process span")
            seen = [r for r in reqs if r.path.startswith("/ok") and r.header("traceparent")
                    and tp_parts(r.header("traceparent"))[0] == p["trace_id"]]
            c.eq(len(seen), 1, "the function got the attempt's traceparent header")
            if seen:
                c.eq(tp_parts(seen[0].header("traceparent"))[1], k["span_id"],
                     "its parent-id is the attempt span")
                c.eq(tp_parts(seen[0].header("traceparent"))[2], "01", "sampled")
                c.eq(seen[0].ce("traceparent"), f"00-{p['trace_id']}-{p['span_id']}-01",
                     "the event's traceparent attribute names the process span")

    # --- retried
    p = process_span("retry")
    if p:
        c.eq(p["trace_id"], PARENT_TRACE, "the event's traceparent sets the trace")
        c.eq(p["parent_span_id"], PARENT_SPAN, "and the parent of the process span")
        c.eq(p["trace_state"], "vendor=abc", "tracestate kept")
        kids = children(p, "deliver t-retry")
        c.eq(len(kids), 2, "two attempt spans")
        if len(kids) == 2:
            c.eq(kids[0]["status"], "STATUS_CODE_ERROR", "first attempt ERROR")
            c.eq(kids[0]["attributes"].get("http.response.status_code"), 503, "first attempt 503")
            c.eq(kids[0]["attributes"].get("triggerd.result"), "retry", "first attempt retryable")
            c.eq(kids[1]["status"], "STATUS_CODE_UNSET", "second attempt succeeded")
            c.eq(kids[1]["attributes"].get("triggerd.attempt"), 2, "second attempt number")
            c.check(kids[1]["attributes"].get("triggerd.backoff_ms", 0) > 0, "backoff waited recorded",
                    kids[1]["attributes"])
            got = [tp_parts(r.header("traceparent"))[1] for r in reqs if r.path.startswith("/retry")]
            c.eq(got, [kids[0]["span_id"], kids[1]["span_id"]], "each attempt's own span in the header")
            c.check(all(r.ce("traceparent") == f"00-{PARENT_TRACE}-{PARENT_SPAN}-01" and
                        r.header("tracestate") == "vendor=abc"
                        for r in reqs if r.path.startswith("/retry")),
                    "the event's own traceparent reaches the function unchanged; tracestate header")

    # --- dead-lettered
    p = process_span("dead")
    if p:
        c.eq(p["status"], "STATUS_CODE_ERROR", "dead-lettered: process span ERROR")
        c.eq(p["attributes"].get("triggerd.dead_letters"), 1, "one dead letter")
        att = children(p, "deliver t-dead")
        dls = children(p, "dead_letter t-dead")
        c.eq(len(att), 1, "one attempt (400 is final)")
        c.eq(len(dls), 1, "one dead_letter span")
        if att:
            c.eq(att[0]["status"], "STATUS_CODE_ERROR", "the attempt is ERROR")
            c.eq(att[0]["attributes"].get("triggerd.result"), "final", "final")
            c.eq(att[0]["attributes"].get("error.type"), "400", "error.type")
        if dls:
            d = dls[0]
            c.eq(d["kind"], "SPAN_KIND_PRODUCER", "dead_letter kind PRODUCER")
            c.eq(d["attributes"].get("triggerd.dead_letter.reason"), "final_status", "reason")
            c.eq(d["attributes"].get("triggerd.dead_letter.target"), "dl", "target")
            entries = read_stream(cl, "dead-letters")
            c.eq(len(entries), 1, "one dead letter written")
            if entries:
                f = entries[0][1]
                c.eq((f.get("ce_traceparent") or b"").decode(), f"00-{p['trace_id']}-{p['span_id']}-01",
                     "the dead letter carries the trace")

    # --- replied
    p = process_span("reply")
    if p:
        reps = children(p, "reply t-reply")
        c.eq(len(reps), 1, "one reply span")
        c.eq(len(children(p, "deliver t-reply")), 1, "one attempt")
        if reps:
            c.eq(reps[0]["kind"], "SPAN_KIND_PRODUCER", "reply kind PRODUCER")
            c.eq(reps[0]["attributes"].get("triggerd.reply.target"), "replies", "reply target")
            entries = read_stream(cl, "replies")
            c.eq(len(entries), 1, "one reply written")
            if entries:
                c.eq((entries[0][1].get("ce_traceparent") or b"").decode(),
                     f"00-{p['trace_id']}-{reps[0]['span_id']}-01", "the reply carries the reply span")

    # --- ingress
    p = process_span("in")
    if p:
        c.eq(p["trace_id"], INGRESS_TRACE, "ingress: the request's traceparent header sets the trace")
        c.eq(p["parent_span_id"], INGRESS_SPAN, "and the parent")
        c.eq(p["attributes"].get("triggerd.source.kind"), "http", "ingress source kind")
        c.eq(p["links"], [{"trace_id": MADE_TRACE, "span_id": MADE_SPAN}],
             "the event's own traceparent (its creation context) is linked")
        c.eq(process_span("ok")["links"] if process_span("ok") else None, [], "no link without one")

    # --- every span's parent is in the trace (or outside the broker for a root)
    for s in spans:
        if s["parent_span_id"] and s["parent_span_id"] not in (PARENT_SPAN, INGRESS_SPAN):
            c.check(s["parent_span_id"] in by_id, f"parent of {s['name']} exported")

    # --- logs
    traces = {s["trace_id"] for s in spans}
    lines = [l for l in td.logs() if l.get("trigger") in {"t-" + f for f in flows} and l.get("id")]
    c.check(lines, "log lines about the events")
    c.check(all(l.get("trace_id") in traces and l.get("span_id") in by_id for l in lines),
            "every such line has the trace_id and a span_id of its trace",
            [l for l in lines if l.get("trace_id") not in traces][:3])

    ms = metrics(port)
    c.check((metric(ms, "triggerd_trace_spans_exported_total") or 0) >= 13, "exported spans counted")
    c.eq(metric(ms, "triggerd_trace_spans_dropped_total", reason="queue_full"), 0.0, "none dropped")
    c.eq(cl.xpending("ok", "g")["pending"], 0, "acked")
    td.terminate()
    c.eq(td.wait(15 * SLOW), 0, "clean exit")
    c.eq(td.sanitizer_reports(), [], "no sanitizer reports")


if __name__ == "__main__":
    run_test(body)
