"""delivery.batch on an HTTP sink: batches of at most max_events arrive as
application/cloudevents-batch+json arrays and every event is delivered and acked once (count in =
out); a lone event leaves after about max_wait; a 200 with batchItemFailures re-sends exactly the
events it names (the others never again), and an event that always fails is dead-lettered alone
with its reason while the rest are acked; a 503 re-sends every event of the batch; `triggerd
check` refuses batch on a sink that cannot take one."""

import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

BATCH_CT = "application/cloudevents-batch+json"


class Recorder:
    """The function's view: every request's events (ids in order), per event how often it came."""

    def __init__(self, answer=None):
        self.lock = threading.Lock()
        self.batches = []  # (content-type, [ids], t_arrival)
        self.seen = {}     # id -> times it arrived
        self.answer = answer or (lambda ids, seen: (200, {}, b"", 0))

    def __call__(self, req, attempt):
        try:
            evs = req.json()
        except ValueError:
            evs = None
        ids = [e.get("id") for e in evs] if isinstance(evs, list) else [req.ce_id]
        with self.lock:
            self.batches.append((req.header("content-type", ""), ids, time.monotonic(), evs))
            for i in ids:
                self.seen[i] = self.seen.get(i, 0) + 1
            seen = dict(self.seen)
        return self.answer(ids, seen)

    def snapshot(self):
        with self.lock:
            return list(self.batches), dict(self.seen)


def dead_letters(cl, stream="dead"):
    return [f for _, f in read_dead_letters(cl, stream)] if cl.exists(stream) else []


def batch_trigger(name, src, sink, **kw):
    d = dict(batch={"max_events": 10, "max_wait": "50ms"})
    d.update(kw)
    return trigger(name, src, sink, **d)


def scenario_all_delivered(c):
    """(a) N events, max_events 10: every request is a batch array of <= 10 structured events,
    all delivered exactly once, all acked; (b) one lone event afterwards leaves after ~max_wait."""
    N = 300
    rs = RedisServer()
    cl = rs.client()
    rec = Recorder()
    fn = FunctionServer(rec)
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"fn": http_sink(fn.url), "dead": {"redis": {"url": rs.url, "stream": "dead"}}},
                 triggers=[batch_trigger("t", "in", "fn", dead_letter="dead", concurrency=4,
                                         batch={"max_events": 10, "max_wait": "200ms"})])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "(a) daemon ready")
    ids = publish_many(cl, "s", N, lambda i: {"n": str(i)})
    wait_until(lambda: set(ids) <= set(rec.snapshot()[1]), 30 * SLOW, desc="(a) all delivered")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="(a) pending 0")
    batches, seen = rec.snapshot()
    cts = {b[0] for b in batches}
    c.eq(cts, {BATCH_CT}, "(a) every request is application/cloudevents-batch+json")
    sizes = [len(b[1]) for b in batches]
    c.check(sizes and max(sizes) <= 10, "(a) no batch holds more than max_events (10)",
            f"sizes {sizes[:20]}")
    c.check(len(batches) < N / 2, "(a) events travel several per request",
            f"{len(batches)} requests for {N} events; sizes {sizes[:20]}")
    structured = all(isinstance(e, dict) and e.get("specversion") == "1.0" and "data" in e
                     for b in batches for e in (b[3] or []))
    c.check(structured, "(a) each element is a structured-mode CloudEvent with its data")
    c.eq(sorted(seen), sorted(ids), "(a) the events delivered are exactly the events published")
    c.eq({v for v in seen.values()}, {1}, "(a) each event delivered exactly once")
    c.eq(pending_count(cl, "s", "g"), 0, "(a) every entry acked (XPENDING 0)")
    c.eq(len(dead_letters(cl)), 0, "(a) no dead letters")
    c.eq(len(seen), cl.xlen("s"), "(a) in (stream length) = out (distinct events delivered)")

    # (b) max_wait: one event alone is not stuck waiting for company.
    n_before = len(batches)
    t0 = time.monotonic()
    (lone,) = publish_many(cl, "s", 1, lambda i: {"lone": "1"})
    wait_until(lambda: lone in rec.snapshot()[1], 10 * SLOW, desc="(b) lone event delivered")
    batches, _ = rec.snapshot()
    late = [b for b in batches[n_before:] if lone in b[1]]
    took = late[0][2] - t0 if late else None
    log(f"(b) lone event arrived {took * 1000:.0f} ms after XADD (max_wait 200 ms, block 200ms)")
    c.check(late and len(late[0][1]) == 1, "(b) the lone event went out in a batch of one")
    c.check(took is not None and took >= 0.15, "(b) it waited for max_wait (>= 150 ms)",
            f"{took}")
    c.check(took is not None and took < 2.0 * SLOW, "(b) and then left (< 2 s)", f"{took}")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="(b) pending 0")
    c.eq(pending_count(cl, "s", "g"), 0, "(b) acked")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "(a) exit status after SIGTERM")
    m = [l for l in td.logs() if "batch" in l.get("msg", "")]
    log(f"(a) {len(batches)} requests, sizes {sizes[:30]}; batch log lines {len(m)}")


def scenario_partial(c):
    """(c) the function answers 200 naming some events in batchItemFailures the first time it sees
    them: exactly those come again, the others never; one event always fails and ends in the
    dead-letter stream alone, retries_exhausted, while every other entry is acked."""
    N = 60
    rs = RedisServer()
    cl = rs.client()
    ids_box = {}

    def answer(ids, seen):
        flaky, doomed = ids_box["flaky"], ids_box["doomed"]
        fail = [i for i in ids if i == doomed or (i in flaky and seen[i] == 1)]
        if not fail:
            return (200, {"Content-Type": "application/json"}, b'{"batchItemFailures": []}', 0)
        return (200, {"Content-Type": "application/json"},
                json.dumps({"batchItemFailures": [{"itemIdentifier": i} for i in fail]}).encode(), 0)

    rec = Recorder(answer)
    fn = FunctionServer(rec)
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"fn": http_sink(fn.url), "dead": {"redis": {"url": rs.url, "stream": "dead"}}},
                 triggers=[batch_trigger("t", "in", "fn", dead_letter="dead", retry=2,
                                         backoff_delay="50ms", backoff_max="100ms",
                                         batch={"max_events": 25, "max_wait": "50ms"})])
    td = Triggerd(cfg)
    # ids are known only after XADD: publish first, then start the daemon (it reads from 0).
    cl.xgroup_create("s", "g", id="0", mkstream=True)
    ids = publish_many(cl, "s", N, lambda i: {"n": str(i)})
    ids_box["flaky"] = set(ids[3::7])
    ids_box["doomed"] = ids[12]  # not one of the flaky ones
    td.start()
    c.check(td.wait_ready(10), "(c) daemon ready")
    wait_until(lambda: len(dead_letters(cl)) >= 1 and pending_count(cl, "s", "g") == 0,
               30 * SLOW, desc="(c) dead letter written and all acked")
    time.sleep(0.3 * SLOW)  # anything re-sent late would show now
    batches, seen = rec.snapshot()
    flaky, doomed = ids_box["flaky"], ids_box["doomed"]
    others = set(ids) - flaky - {doomed}
    c.eq(sorted(i for i in ids if seen.get(i) == 2), sorted(flaky),
         "(c) exactly the events named once in batchItemFailures came twice")
    c.eq({seen.get(i) for i in others}, {1}, "(c) every other event came exactly once")
    c.eq(seen.get(doomed), 3, "(c) the event that always fails: 1 + retry 2 attempts")
    dl = dead_letters(cl)
    c.eq([f.get("ce_id") for f in dl], [doomed], "(c) exactly that event was dead-lettered, alone")
    if dl:
        f = dl[0]
        c.eq(f.get("ce_deadletterreason"), "retries_exhausted", "(c) its deadletterreason")
        c.eq(f.get("ce_knativeerrorcode"), "200", "(c) its knativeerrorcode (the batch's status)")
        c.eq(f.get("ce_deadletterattempts"), "3", "(c) its deadletterattempts")
        c.eq(f.get("ce_deadlettertrigger"), "t", "(c) its deadlettertrigger")
    c.eq(pending_count(cl, "s", "g"), 0, "(c) every entry acked, the dead-lettered one too")
    c.eq(len(set(seen) & set(ids)), cl.xlen("s"), "(c) in = out (every event reached the function)")
    c.eq(len([i for i in ids if seen.get(i, 0) >= 1 and i != doomed]) + len(dl), N,
         "(c) delivered + dead-lettered = published")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "(c) exit status after SIGTERM")


def scenario_503(c):
    """(d) the first request answers 503: every event of that batch comes again, and all end
    delivered and acked; (d2) an unknown itemIdentifier fails the whole batch (as Lambda does)."""
    N = 20
    rs = RedisServer()
    cl = rs.client()
    state = {"first": None, "bogus": None}

    def answer(ids, seen):
        with threading.Lock():
            if state["first"] is None:
                state["first"] = list(ids)
                return (503, {}, b"busy", 0)
            if state["bogus"] is None and not set(ids) & set(state["first"]):
                state["bogus"] = list(ids)
                return (200, {"Content-Type": "application/json"},
                        b'{"batchItemFailures": [{"itemIdentifier": "no-such-event"}]}', 0)
        return (200, {}, b"ok", 0)

    rec = Recorder(answer)
    fn = FunctionServer(rec)
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"fn": http_sink(fn.url), "dead": {"redis": {"url": rs.url, "stream": "dead"}}},
                 triggers=[batch_trigger("t", "in", "fn", dead_letter="dead", retry=3,
                                         backoff_delay="50ms", backoff_max="100ms", concurrency=1,
                                         batch={"max_events": 10, "max_wait": "100ms"})])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "(d) daemon ready")
    ids = publish_many(cl, "s", N, lambda i: {"n": str(i)})
    wait_until(lambda: set(ids) <= set(rec.snapshot()[1]) and pending_count(cl, "s", "g") == 0,
               30 * SLOW, desc="(d) all delivered and acked")
    time.sleep(0.3 * SLOW)
    batches, seen = rec.snapshot()
    first, bogus = state["first"] or [], state["bogus"] or []
    c.check(len(first) > 1, "(d) the 503 answered a batch of several events", f"{first}")
    c.eq({seen.get(i) for i in first}, {2}, "(d) every event of the 503 batch came again, once")
    c.check(len(bogus) >= 1, "(d2) a batch was answered with an unknown itemIdentifier", f"{bogus}")
    c.eq({seen.get(i) for i in bogus}, {2}, "(d2) every event of that batch came again")
    rest = set(ids) - set(first) - set(bogus)
    c.eq({seen.get(i) for i in rest}, {1} if rest else set(), "(d) the others came once")
    c.eq(len(dead_letters(cl)), 0, "(d) no dead letters")
    c.eq(pending_count(cl, "s", "g"), 0, "(d) every entry acked")
    c.eq(len(set(seen) & set(ids)), cl.xlen("s"), "(d) in = out")
    whole = [l for l in td.logs() if "whole batch failed" in l.get("msg", "")]
    c.check(whole, "(d2) the daemon said why the whole batch failed")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "(d) exit status after SIGTERM")


def run_check(c, text):
    d = make_tempdir()
    path = os.path.join(d, "bad.yaml")
    with open(path, "w") as f:
        f.write("""version: 1
sources:
  in: {redis: {url: "redis://127.0.0.1:1/0", stream: s, group: g}}
sinks:
  fn: {http: {url: "http://127.0.0.1:1/"}}
  q: {redis: {url: "redis://127.0.0.1:1/0", stream: out}}
triggers:
""" + text)
    p = subprocess.run([triggerd_binary(), "check", "-c", path], capture_output=True, text=True,
                       timeout=30)
    log("check said:\n" + p.stderr)
    return path, p.returncode, p.stderr


def scenario_check(c):
    """(f) check: batch on a redis sink, with reply:, and bad values are errors with positions."""
    path, rc, err = run_check(c, """  - name: a
    source: in
    sink: q
    delivery: {batch: {max_events: 10}}
  - name: b
    source: in
    sink: fn
    reply: q
    delivery: {batch: {}}
  - name: ok
    source: in
    sink: fn
    delivery: {batch: {max_events: 100, max_bytes: 1MiB, max_wait: 50ms}}
""")
    c.eq(rc, 2, "(f) check exits 2")
    c.check(f"{path}:11:23: delivery.batch needs an http, openfaas or lambda sink ('q' is a redis"
            in err, "(f) batch on a redis sink: file:line:column and why")
    c.check(f"{path}:16:23: delivery.batch cannot be used with reply:" in err,
            "(f) batch with reply: refused at its position")
    c.check(":17:" not in err and ":20:" not in err, "(f) the good trigger draws no error")
    for value, want in (("max_events: 0", "'max_events' must be at least 1"),
                        ("max_wait: 0ms", "'max_wait' must be at least 1ms"),
                        ("max_bytes: 10", "'max_bytes' must be between 1KiB and 64MiB"),
                        ("max_size: 3", "max_size")):
        path, rc, err = run_check(c, """  - name: c
    source: in
    sink: fn
    delivery: {batch: {%s}}
""" % value)
        c.check(rc == 2 and f"{path}:11:" in err and want in err,
                f"(f) batch {{{value}}} refused at line 11: {want}", err)


def body(c):
    scenario_check(c)
    scenario_all_delivered(c)
    scenario_partial(c)
    scenario_503(c)


run_test(body)
