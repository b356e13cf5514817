"""Batches under flow control (issue 17: "rate limit before concurrency, batches count as one request
against concurrency and as N events against the rate").

1. Rate: delivery.rate {events: 100, per: 1s, burst: 10} with batches of up to 20 events over a Redis
   backlog of 1,500 entries (a function that answers at once): every request is a batch (so a batch
   of 20 goes although the bucket holds only 10: it leaves a debt); the events the function receives
   over 10 s (from 2 s after the first request) are within 5 % of 100/s, i.e. the batch counted as
   its 20 events, not as 1 request (which would have let 20 x 100 events/s through); never more than
   the bucket's bound in any 10 s window; every entry delivered once and acknowledged.
2. Adaptive concurrency: {max: 16, adaptive: true} with batches of up to 10 events against a function
   that takes at most 2 requests at once (50 ms each) and answers 429 beyond: a 429 to a batch cuts
   the limit as it does for one event, so the gauge settles within [1, 4] (2 x N) in the second half
   of the run and the 429 share after the first 2 s falls below 5 %; every entry gets a 2xx, none is
   dead-lettered, nothing is left pending (3,000 entries: about 8 s at 2 x 10 events per 50 ms)."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import metric, metrics, with_http  # noqa: E402

BATCH_CT = "application/cloudevents-batch+json"


class Recorder:
    """Answers each batch with answer(); records (arrival time, [event ids], status)."""

    def __init__(self, answer):
        self.answer = answer
        self.lock = threading.Lock()
        self.reqs = []

    def __call__(self, req, attempt):
        try:
            ids = [e.get("id") for e in req.json()] if req.header("content-type", "").startswith(
                BATCH_CT) else [req.ce_id]
        except ValueError:
            ids = []
        status, headers, body, delay = self.answer()
        with self.lock:
            self.reqs.append((time.monotonic(), ids, status))
        return (status, headers, body, delay)

    def snapshot(self):
        with self.lock:
            return list(self.reqs)

    def ok_ids(self):
        return {i for _, ids, st in self.snapshot() if 200 <= st < 300 for i in ids}


def scenario_rate(c):
    rate, burst, window, n = 100, 10, 10.0, 1500
    rs = RedisServer()
    cl = rs.client()
    rec = Recorder(lambda: (200, {}, b"", 0))
    fn = FunctionServer(rec)
    ids = publish_many(cl, "s", n)
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"fn": http_sink(fn.url), "dead": {"redis": {"url": rs.url, "stream": "dead"}}},
                 triggers=[trigger("t", "in", "fn", dead_letter="dead", concurrency=8,
                                   rate={"events": rate, "per": "1s", "burst": burst},
                                   batch={"max_events": 20, "max_wait": "20ms"})])
    td = Triggerd(cfg, name="rate").start()
    c.check(td.wait_ready(10), "1: daemon ready")
    wait_until(lambda: set(ids) <= rec.ok_ids(), 60 * SLOW, desc="every entry delivered")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="pending 0")
    reqs = rec.snapshot()
    sizes = [len(r[1]) for r in reqs]
    c.check(len(reqs) < n / 5 and max(sizes) <= 20, "1: events travel as batches of at most 20",
            f"{len(reqs)} requests, sizes {sizes[:12]}")
    c.check(sum(1 for s in sizes if s > burst) >= len(reqs) // 2,
            "1: most batches are larger than the bucket's burst (a debt, not a stall)",
            f"{sum(1 for s in sizes if s > burst)} of {len(reqs)}")
    events = [(t, len(i)) for t, i, _ in reqs]
    t0 = events[0][0]
    got = sum(k for t, k in events if t0 + 2.0 <= t < t0 + 2.0 + window)
    want = rate * window
    log(f"1: {got} events in the {window:.0f} s from 2 s after the first request ({got / window:.1f}/s)")
    c.check(abs(got - want) <= 0.05 * want, f"1: events within 5 % of {rate}/s over {window:.0f} s",
            f"{got}, want {want:.0f} +- {0.05 * want:.0f}")
    # the bucket's own bound: burst + rate x T, plus one batch (taken on one token, its debt paid after)
    worst = max(sum(k for t2, k in events if t <= t2 < t + window) for t, _ in events)
    c.check(worst <= want + burst + 20, "1: never more events in 10 s than the bucket allows",
            f"{worst} <= {want + burst + 20:.0f}")
    c.eq(len(rec.ok_ids() & set(ids)), n, "1: every entry delivered")
    c.eq(sum(sizes), n, "1: each exactly once (no retries were needed)")
    c.eq(cl.xlen("dead") if cl.exists("dead") else 0, 0, "1: dead letters")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "1: exit status after SIGTERM")


class Limited:
    """At most n requests at once (each `work` s); the one beyond gets 429 at once."""

    def __init__(self, n, work):
        self.n, self.work = n, work
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0

    def __call__(self):
        with self.lock:
            if self.active >= self.n:
                return (429, {}, b"too many", 0)
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(self.work)
        finally:
            with self.lock:
                self.active -= 1
        return (200, {}, b"", 0)


def scenario_adaptive(c):
    n_fn, entries = 2, 3000
    rs = RedisServer()
    cl = rs.client()
    lim = Limited(n_fn, 0.050)
    rec = Recorder(lim)
    fn = FunctionServer(rec)
    ids = publish_many(cl, "s", entries)
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"fn": http_sink(fn.url), "dead": {"redis": {"url": rs.url, "stream": "dead"}}},
                 triggers=[trigger("t", "in", "fn", retry=100, backoff_delay="50ms",
                                   backoff_max="500ms", dead_letter="dead",
                                   concurrency={"max": 16, "adaptive": True},
                                   batch={"max_events": 10, "max_wait": "20ms"})])
    port = with_http(cfg)
    td = Triggerd(cfg, name="adaptive").start()
    c.check(td.wait_ready(10), "2: daemon ready")
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                samples.append((time.monotonic(),
                                metric(metrics(port), "triggerd_trigger_concurrency_limit", trigger="t")))
            except Exception as e:  # busy: the next sample will do
                log(f"metrics: {e}")
            stop.wait(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        wait_until(lambda: set(ids) <= rec.ok_ids(), 120 * SLOW, desc="every entry delivered")
        wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="pending 0")
    finally:
        stop.set()
        th.join(5)
    reqs = rec.snapshot()
    t_first, t_last = reqs[0][0], reqs[-1][0]
    mid = (t_first + t_last) / 2
    late = [v for t, v in samples if mid <= t <= t_last and v is not None]
    log(f"2: run {t_last - t_first:.1f} s, {len(reqs)} requests; limit in the second half: {late}")
    c.check(len(late) >= 3 and all(1 <= v <= 2 * n_fn for v in late),
            f"2: the limit settles within [1, {2 * n_fn}] in the second half",
            f"min {min(late or [0])}, max {max(late or [0])}, {len(late)} samples")
    after = [r for r in reqs if r[0] >= t_first + 2.0]
    share = sum(1 for r in after if r[2] == 429) / len(after) if after else 1.0
    c.check(after and share < 0.05, "2: 429 share after the first 2 s below 5 %", f"{share * 100:.2f} %")
    c.check(lim.peak <= n_fn, "2: the function never ran more than its limit at once", lim.peak)
    sizes = [len(r[1]) for r in reqs if r[2] == 200]
    c.check(sizes and sum(sizes) / len(sizes) > 2, "2: events still travel several per request",
            f"mean {sum(sizes) / max(1, len(sizes)):.1f}")
    c.eq(len(rec.ok_ids() & set(ids)), entries, "2: every entry got a 2xx")
    c.eq(pending_count(cl, "s", "g"), 0, "2: XPENDING at the end")
    c.eq(cl.xlen("dead") if cl.exists("dead") else 0, 0, "2: dead letters")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "2: exit status after SIGTERM")


def body(c):
    scenario_rate(c)
    scenario_adaptive(c)


run_test(body)
