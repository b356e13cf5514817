"""Kafka, delivery.batch with ordering: with `ordering: key` a batch never holds two events of one key
and each key's events reach the function in offset order, one batch after the other (never two of a
key in flight); with `ordering: partition` the same per partition. A flaky event (named in
batchItemFailures twice) holds back only its own key. Every record delivered once (plus the named
retries), in = out, and the group's committed offsets reach the end of every partition."""

import base64
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, log,  # noqa: E402
                     trigger, wait_until)
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

KEYS = 12
PER_KEY = 10
N = KEYS * PER_KEY
FLAKY = (3, 4)  # (key, seq): named in batchItemFailures on its first two arrivals


def data_of(ev):
    """The record's JSON payload from a structured event (data, or data_base64)."""
    if "data_base64" in ev:
        return json.loads(base64.b64decode(ev["data_base64"]))
    d = ev.get("data")
    return json.loads(d) if isinstance(d, str) else d


def committed(kafka, group):
    try:
        return sum(kafka.offsets(group, "bord")[0].values())
    except Exception:
        return -1


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("bord", 3)
    records = []
    for s in range(PER_KEY):
        for k in range(KEYS):
            records.append((f"key{k}", json.dumps({"k": k, "s": s})))
    kafka.produce("bord", records)
    lock = threading.Lock()
    for mode in ("key", "partition"):
        state = {"busy": {}, "overlaps": [], "dup_in_batch": [], "batches": [], "seen": {}}

        def lane_of(ev, eid):
            return data_of(ev)["k"] if mode == "key" else int(eid.split("/")[1])

        def behaviour(req, attempt):
            evs = json.loads(req.body)
            lanes = [lane_of(e, e["id"]) for e in evs]
            fail = []
            with lock:
                state["batches"].append([(lane_of(e, e["id"]), int(e["id"].split("/")[2]))
                                         for e in evs])
                if len(set(lanes)) != len(lanes):
                    state["dup_in_batch"].append(lanes)
                for ln in lanes:
                    state["busy"][ln] = state["busy"].get(ln, 0) + 1
                    if state["busy"][ln] > 1:
                        state["overlaps"].append(ln)
                for e in evs:
                    state["seen"][e["id"]] = state["seen"].get(e["id"], 0) + 1
                    if (data_of(e)["k"], data_of(e)["s"]) == FLAKY and state["seen"][e["id"]] <= 2:
                        fail.append(e["id"])
            time.sleep(0.005)
            with lock:
                for ln in lanes:
                    state["busy"][ln] -= 1
            return (200, {"Content-Type": "application/json"},
                    json.dumps({"batchItemFailures": [{"itemIdentifier": i} for i in fail]}), 0)

        fn = FunctionServer(behaviour)
        cfg = config({"src": kafka_source(kafka, ["bord"], group=f"bord-{mode}")},
                     {"fn": http_sink(fn.url)},
                     [trigger("t", "src", "fn", concurrency=4, ordering=mode, retry=3,
                              backoff="linear", backoff_delay="100ms",
                              batch={"max_events": 50, "max_wait": "20ms"})])
        d = Triggerd(cfg).start()
        c.check(d.wait_ready(30), f"{mode}: daemon ready")
        wait_until(lambda: len(state["seen"]) >= N, 120 * SLOW, interval=0.05)
        wait_until(lambda: committed(kafka, f"bord-{mode}") >= N, 30 * SLOW, interval=0.3)
        with lock:
            batches, seen = list(state["batches"]), dict(state["seen"])
        c.eq(len(seen), N, f"{mode}: every record reached the function")
        flaky_ids = [i for i in seen if seen[i] != 1]
        c.eq([seen[i] for i in flaky_ids], [3], f"{mode}: only the flaky record came more than once "
             "(3 times)")
        c.eq(state["dup_in_batch"], [], f"{mode}: no batch held two events of one {mode}")
        c.eq(state["overlaps"], [], f"{mode}: never two events of one {mode} at the function at once")
        per_lane = {}
        for b in batches:
            for ln, off in b:
                per_lane.setdefault(ln, []).append(off)
        backwards = {ln: offs for ln, offs in per_lane.items()
                     if any(offs[i] < offs[i - 1] for i in range(1, len(offs)))}
        c.eq(backwards, {}, f"{mode}: each {mode}'s offsets never go backwards across batches")
        sizes = [len(b) for b in batches]
        c.check(max(sizes) > 1, f"{mode}: batches hold several events (of different {mode}s)",
                f"sizes {sizes[:20]}")
        c.eq(committed(kafka, f"bord-{mode}"), N,
             f"{mode}: committed offsets reach the end of every partition (in = out)")
        log(f"{mode}: {len(batches)} batches for {N} records, sizes {sizes[:30]}")
        d.terminate()
        c.eq(d.wait(30), 0, f"{mode}: daemon exits 0")


run_kafka_test(body)
