"""Kafka, ordering: with concurrency 32 and random function latency, `ordering: key` delivers each
key's events strictly one after the other in offset order, `ordering: partition` each partition's;
key ordering should be faster (both times printed, not asserted). The times run from the first
delivery to the last, so the first mode does not pay for the cold start (group join, creation of
the offsets topic) alone. A key whose event is retried holds back only that key: other keys keep
flowing during its backoff."""

import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, log,  # noqa: E402
                     trigger, wait_until)
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

KEYS = 24
PER_KEY = 25
N = KEYS * PER_KEY
FLAKY = (3, 5)  # (key, seq): answered 503 twice, then 200


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("ord", 3)
    rnd = random.Random(7)

    lock = threading.Lock()
    state = {"mode": None, "busy": {}, "overlaps": []}

    def behaviour(req, attempt):
        ev = json.loads(req.body)
        lane = ev["k"] if state["mode"] == "key" else int(req.ce("id").split("/")[1])
        with lock:
            state["busy"][lane] = state["busy"].get(lane, 0) + 1
            if state["busy"][lane] > 1:
                state["overlaps"].append((lane, req.ce("id")))
            delay = rnd.uniform(0.0, 0.012)
        try:
            if (ev["k"], ev["s"]) == FLAKY and attempt <= 2:
                return (503, {}, b"", 0)
            time.sleep(delay)
            return (200, {}, b"", 0)
        finally:
            with lock:
                state["busy"][lane] -= 1

    records = []
    for s in range(PER_KEY):
        for k in range(KEYS):
            records.append((f"key{k}", json.dumps({"k": k, "s": s})))
    kafka.produce("ord", records)
    times = {}
    walls = {}
    for mode in ("key", "partition"):
        state["mode"] = mode
        state["overlaps"] = []
        fn = FunctionServer(behaviour)
        cfg = config({"src": kafka_source(kafka, ["ord"], group=f"ord-{mode}")},
                     {"fn": http_sink(fn.url)},
                     [trigger("t", "src", "fn", concurrency=32, ordering=mode, retry=3,
                              backoff="linear", backoff_delay="300ms")])
        d = Triggerd(cfg).start()
        c.check(d.wait_ready(30), f"{mode}: daemon ready")
        t0 = time.monotonic()
        done = wait_until(lambda: len(fn.ok_ids()) >= N, 120 * SLOW, interval=0.05)
        walls[mode] = time.monotonic() - t0
        c.check(done, f"{mode}: every event delivered", len(fn.ok_ids()))
        reqs = fn.snapshot()
        times[mode] = max(r.t_done or r.t_arrival for r in reqs) - min(r.t_arrival for r in reqs)
        lanes = {}
        for r in reqs:
            ev = json.loads(r.body)
            lane = ev["k"] if mode == "key" else int(r.ce("id").split("/")[1])
            lanes.setdefault(lane, []).append((r, ev))
        in_order = True
        detail = None
        for lane, seq in lanes.items():
            offsets = [int(r.ce("id").split("/")[2]) for r, _ in seq]
            # a retried event repeats its offset; the order must never go backwards
            for i in range(1, len(seq)):
                prev, cur = seq[i - 1][0], seq[i][0]
                if offsets[i] < offsets[i - 1] or cur.t_arrival < prev.t_arrival:
                    in_order = False
                    detail = (lane, offsets[i - 1], offsets[i])
                    break
        c.check(in_order, f"{mode}: each {mode}'s events strictly one at a time in offset order",
                detail)
        c.eq(state["overlaps"], [], f"{mode}: never two events of one {mode} at the function at once")
        if mode == "key":
            flaky = [r for r, ev in lanes[FLAKY[0]] if ev["s"] == FLAKY[1]]
            c.eq([r.status for r in flaky], [503, 503, 200], "the flaky event was retried")
            t_fail, t_ok = flaky[0].t_done, flaky[-1].t_arrival
            others = [r for r in reqs if t_fail < r.t_arrival < t_ok and
                      json.loads(r.body)["k"] != FLAKY[0]]
            mine = [r for r, ev in lanes[FLAKY[0]]
                    if t_fail < r.t_arrival < t_ok and ev["s"] != FLAKY[1]]
            c.check(len(others) > 0, "other keys flowed while it waited to retry", len(others))
            c.eq(len(mine), 0, "its own key waited behind it")
        d.terminate()
        c.eq(d.wait(30), 0, f"{mode}: daemon exits 0")
    log(f"ordering: key {times['key']:.2f}s, partition {times['partition']:.2f}s for {N} events "
        f"from the first delivery to the last (concurrency 32, 0-12 ms latency); from ready: "
        f"key {walls['key']:.2f}s, partition {walls['partition']:.2f}s")


run_kafka_test(body)
