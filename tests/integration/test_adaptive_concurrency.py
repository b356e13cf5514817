"""Adaptive concurrency (issue 17): delivery.concurrency {max: 64, adaptive: true} against a function
that serves at most N = 4 requests at once (each takes 50 ms) and answers 429 to any request beyond.

From a Redis backlog of 600 entries:
- the limit comes down from 64 and stays near N: the gauge triggerd_trigger_concurrency_limit, sampled
  from /metrics through the run, is within [N/2, 2N] in its second half (and /status says the same);
- after the first 2 s the function's own count of 429s is below 5 % of its requests (AIMD probes the
  ceiling gently: one 429 now and then, not a steady stream);
- nothing is lost: every entry gets a 2xx, all acknowledged, no dead letter (429 is retryable and the
  trigger has retries enough for the first seconds' 429s).
- `concurrency: 3` (the integer spelling) stays a fixed limit: the gauge says 3 and never moves.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import get_json, metric, metrics, with_http  # noqa: E402

N = 4
WORK = 0.050
ENTRIES = 600


class Limited:
    """At most N requests at once; the one beyond is answered 429 at once. The count is given back
    before the answer is written, so the daemon never sees a slot free that the function still
    counts."""

    def __init__(self, n):
        self.n = n
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0

    def __call__(self, req, attempt):
        with self.lock:
            if self.active >= self.n:
                return (429, {}, b"too many", 0)
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(WORK)
        finally:
            with self.lock:
                self.active -= 1
        return (200, {}, b"ok", 0)


def body(c):
    rs = RedisServer()
    cl = rs.client()
    lim = Limited(N)
    fn = FunctionServer(lim)
    ids = publish_many(cl, "s", ENTRIES)
    fixed = FunctionServer(lambda req, a: (200, {}, b"ok", 0))
    fixed_ids = publish_many(cl, "f", 50)
    cfg = config(sources={"in": redis_source(rs.url, "s"), "fin": redis_source(rs.url, "f")},
                 sinks={"fn": http_sink(fn.url), "fixed": http_sink(fixed.url),
                        "dead": {"redis": {"url": rs.url, "stream": "dead"}}},
                 triggers=[trigger("t1", "in", "fn", retry=100, backoff="exponential",
                                   backoff_delay="50ms", backoff_max="500ms", dead_letter="dead",
                                   concurrency={"max": 64, "adaptive": True}),
                           trigger("tf", "fin", "fixed", concurrency=3)])
    port = with_http(cfg)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")

    samples = []  # (monotonic time, limit of t1, limit of tf)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                ms = metrics(port)
                samples.append((time.monotonic(), metric(ms, "triggerd_trigger_concurrency_limit",
                                                        trigger="t1"),
                                metric(ms, "triggerd_trigger_concurrency_limit", trigger="tf")))
            except Exception as e:  # the daemon may be busy; the next sample will do
                log(f"metrics: {e}")
            stop.wait(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        wait_until(lambda: set(ids) <= fn.ok_ids(), 90 * SLOW, desc="all delivered")
        wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="pending 0")
        st, status = get_json(port, "/status")
    finally:
        stop.set()
        th.join(5)

    reqs = sorted(fn.snapshot(), key=lambda r: r.t_arrival)
    t_first, t_last = reqs[0].t_arrival, reqs[-1].t_arrival
    log(f"run: {t_last - t_first:.1f} s, {len(reqs)} requests, peak at the function {lim.peak}")

    # the gauge: near N in the second half of the run
    mid = (t_first + t_last) / 2
    late = [s[1] for s in samples if mid <= s[0] <= t_last and s[1] is not None]
    log(f"limit samples, second half: {late}")
    c.check(len(late) >= 5, "the gauge was sampled in the second half", f"{len(late)} samples")
    c.check(late and all(N / 2 <= v <= 2 * N for v in late),
            f"the concurrency limit stays within [{N // 2}, {2 * N}] in the second half",
            f"min {min(late or [0])}, max {max(late or [0])}")
    early = [s[1] for s in samples if s[0] < t_first + 0.2 and s[1] is not None]
    log(f"limit samples, first 0.2 s: {early}")
    c.check(samples and samples[0][2] == 3 and all(s[2] == 3 for s in samples if s[2] is not None),
            "concurrency: 3 (integer) is a fixed limit of 3", f"{sorted({s[2] for s in samples})}")
    t1 = [t for t in status.get("triggers", []) if t.get("name") == "t1"]
    c.check(st == 200 and t1 and N / 2 <= t1[0].get("concurrency_limit", 0) <= 2 * N,
            "/status reports the limit", f"{t1[0].get('concurrency_limit') if t1 else None}")

    # the 429 share after the first seconds, from the function's own counts, per 2 s window
    after = [r for r in reqs if r.t_arrival >= t_first + 2.0]
    n429 = sum(1 for r in after if r.status == 429)
    share = n429 / len(after) if after else 1.0
    first = [r for r in reqs if r.t_arrival < t_first + 2.0]
    log(f"first 2 s: {sum(1 for r in first if r.status == 429)} of {len(first)} requests were 429; "
        f"after: {n429} of {len(after)} ({share * 100:.2f} %)")
    w = t_first + 2.0
    while w < t_last:
        win = [r for r in after if w <= r.t_arrival < w + 2.0]
        if win:
            log(f"  [{w - t_first:4.1f} s, +2 s): {len(win)} requests, "
                f"{sum(1 for r in win if r.status == 429)} x 429")
        w += 2.0
    c.check(after and share < 0.05, "429 share after the first 2 s below 5 %", f"{share * 100:.2f} %")
    c.check(lim.peak <= N, "the function never ran more than N at once", f"peak {lim.peak}")

    # nothing lost
    c.eq(len(fn.ok_ids() & set(ids)), len(ids), "every entry got a 2xx")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING count at the end")
    c.eq(cl.xlen("dead") if cl.exists("dead") else 0, 0, "dead letters")
    wait_until(lambda: set(fixed_ids) <= fixed.ok_ids(), 10 * SLOW, desc="fixed trigger delivered")
    c.eq(len(fixed.ok_ids() & set(fixed_ids)), len(fixed_ids), "fixed trigger: every entry delivered")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")


run_test(body)
