"""Kafka, delivery.batch with ordering (key, then partition): a batch carries several events of a
lane (key or partition) in offset order, and no two requests hold one lane at once. The function
acts as a Lambda function on a stream: at the first failure of a lane it names that record in
batchItemFailures and skips the rest of the lane, and triggerd sends the failed record and exactly
those behind it again, in order. Every record processed once in strictly increasing offset order
per lane, and the group's committed offsets reach the end of every partition (in = out). The first
request is answered 503 (retried: key, partition) or 400 with no dead_letter target (key-400: the
lane heads are released, and the followers sent with them go back and are released too; Kafka
reads them again in order)."""

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
    # key-400: the first batch is answered 400 and the trigger has no dead_letter target, so its
    # lane heads are released for redelivery (and what queues behind them in their lanes, the
    # followers sent with them included): Kafka reads them again, in order.
    for run in ("key", "partition", "key-400"):
        mode = run.split("-")[0]
        first_status = 400 if run == "key-400" else 503
        state = {"busy": {}, "overlaps": [], "unordered": [], "batches": [], "seen": {},
                 "processed": {}, "resent_behind": set(), "flaky_id": None,
                 "first": None}

        def lane_of(ev):
            return data_of(ev)["k"] if mode == "key" else int(ev["id"].split("/")[1])

        def offset(ev):
            return int(ev["id"].split("/")[2])

        def behaviour(req, attempt):
            # As a Lambda function on a stream source: process each lane in order, and at the
            # first failure of a lane report it and skip the rest of that lane (they come again).
            evs = json.loads(req.body)
            fail, blocked = [], set()
            with lock:
                lanes = [lane_of(e) for e in evs]
                if state["first"] is None:  # the first request: 503, every event comes again
                    state["first"] = {e["id"] for e in evs}
                    for e in evs:
                        state["seen"][e["id"]] = state["seen"].get(e["id"], 0) + 1
                    return (first_status, {}, b"no", 0)
                state["batches"].append([(ln, offset(e)) for ln, e in zip(lanes, evs)])
                last = {}
                for ln, e in zip(lanes, evs):
                    if ln in last and offset(e) <= last[ln]:
                        state["unordered"].append((ln, last[ln], offset(e)))
                    last[ln] = offset(e)
                for ln in set(lanes):
                    state["busy"][ln] = state["busy"].get(ln, 0) + 1
                    if state["busy"][ln] > 1:
                        state["overlaps"].append(ln)
                for ln, e in zip(lanes, evs):
                    state["seen"][e["id"]] = state["seen"].get(e["id"], 0) + 1
                    if ln in blocked:
                        state["resent_behind"].add(e["id"])
                        continue
                    d = data_of(e)
                    if (d["k"], d["s"]) == FLAKY:
                        state["flaky_id"] = e["id"]
                    if (d["k"], d["s"]) == FLAKY and state["seen"][e["id"]] <= 2:
                        fail.append(e["id"])
                        blocked.add(ln)
                        continue
                    state["processed"].setdefault(ln, []).append(offset(e))
            time.sleep(0.005)
            with lock:
                for ln in set(lanes):
                    state["busy"][ln] -= 1
            return (200, {"Content-Type": "application/json"},
                    json.dumps({"batchItemFailures": [{"itemIdentifier": i} for i in fail]}), 0)

        fn = FunctionServer(behaviour)
        # max_wait 100 ms: the records are all in the topic before the daemon starts, so a batch
        # fills from one fetch; 20 ms once cut the first batch at one record under ASan on a
        # loaded machine, and the checks below need the first batch to hold several.
        cfg = config({"src": kafka_source(kafka, ["bord"], group=f"bord-{run}")},
                     {"fn": http_sink(fn.url)},
                     [trigger("t", "src", "fn", concurrency=4, ordering=mode, retry=3,
                              backoff="linear", backoff_delay="100ms",
                              batch={"max_events": 50, "max_wait": "100ms"})])
        d = Triggerd(cfg).start()
        c.check(d.wait_ready(30), f"{run}: daemon ready")
        wait_until(lambda: sum(len(v) for v in state["processed"].values()) >= N, 120 * SLOW,
                   interval=0.05)
        wait_until(lambda: committed(kafka, f"bord-{run}") >= N, 30 * SLOW, interval=0.3)
        time.sleep(0.2 * SLOW)
        with lock:
            batches, seen = list(state["batches"]), dict(state["seen"])
            processed = {k: list(v) for k, v in state["processed"].items()}
            resent = set(state["resent_behind"])
        c.eq(len(seen), N, f"{run}: every record reached the function")
        c.eq(sum(len(v) for v in processed.values()), N, f"{run}: every record processed once")
        bad = {ln: offs for ln, offs in processed.items()
               if any(offs[i] <= offs[i - 1] for i in range(1, len(offs)))}
        c.eq(bad, {}, f"{run}: each {mode}'s records processed in strictly increasing offset order")
        c.eq(state["unordered"], [], f"{run}: inside a batch, each {mode}'s events in offset order")
        c.eq(state["overlaps"], [], f"{run}: never two requests holding one {mode} at once")
        flaky = state["flaky_id"]
        c.eq(seen.get(flaky), 3, f"{run}: the flaky record came 3 times (named twice)")
        first = state["first"] or set()
        c.check(len(first) > 1, f"{run}: the first answer ({first_status}) was to a batch of several", f"{first}")
        again = {i for i in seen if seen[i] > 1} - {flaky} - first
        c.eq(again, resent - first, f"{run}: the other records that came more than once are "
             "exactly those of the first batch and those sent behind the failed one in its batches")
        sizes = [len(b) for b in batches]
        per_lane = [len(b) - len({ln for ln, _ in b}) for b in batches]
        c.check(max(per_lane) > 0, f"{run}: a batch carries several events of one {mode}",
                f"sizes {sizes[:20]}")
        c.eq(committed(kafka, f"bord-{run}"), N,
             f"{run}: committed offsets reach the end of every partition (in = out)")
        log(f"{run}: {len(batches)} batches for {N} records, sizes {sizes[:30]}; "
            f"{len(resent)} sent again behind the flaky one")
        d.terminate()
        c.eq(d.wait(30), 0, f"{run}: daemon exits 0")


run_kafka_test(body)
