"""Kafka, ordering after a failure: a record that fails for good on a trigger without dead_letter
holds everything behind it in its lane. Ten records on one partition; record 3 answers 500 until
it is "fixed" (retry: 1, so its retries run out quickly and the partition is read again from it
after a backoff, several times). With `ordering: partition` no attempt of records 4-9 may reach
the function before record 3's first 2xx; likewise with `ordering: key` for the records of record
3's key (the other keys of the partition are read again with it: the committed offset is per
partition, so a released record holds its partition's reading, as Lambda's ESM does). Every
record is delivered in the end, committed to the end, and the first successful deliveries of each
lane are in offset order. (With `ordering: unordered`, later records may be delivered, and
redelivered after the partition is read again: at-least-once, documented.)"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, log,  # noqa: E402
                     trigger, wait_until)
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

N = 10
BAD = 3


def body(c):
    kafka = KafkaBroker()
    state = {"fixed": False}
    lock = threading.Lock()

    def behaviour(req, attempt):
        ev = json.loads(req.body)
        with lock:
            if ev["n"] == BAD and not state["fixed"]:
                return (500, {}, b"not yet", 0)
        return (200, {}, b"", 0.005)

    fn = FunctionServer(behaviour)

    def run(mode, topic, keys):
        kafka.create_topic(topic, 1)
        state["fixed"] = False
        kafka.produce(topic, [(keys[i], json.dumps({"n": i, "mode": mode})) for i in range(N)],
                      partition=0)
        cfg = config({"src": kafka_source(kafka, [topic], group=f"g-{topic}")},
                     {"fn": http_sink(fn.url)},
                     [trigger("t", "src", "fn", retry=1, backoff_delay="20ms", backoff_max="50ms",
                              ordering=mode, concurrency=8)])
        d = Triggerd(cfg).start()
        c.check(d.wait_ready(30), f"{mode}: daemon ready")

        def mine():
            return [r for r in fn.snapshot() if json.loads(r.body).get("mode") == mode]

        def bad_attempts():
            return len([r for r in mine() if json.loads(r.body)["n"] == BAD])

        # Let the failing record run out of retries and be read again twice.
        c.check(wait_until(lambda: bad_attempts() >= 6, 60 * SLOW, interval=0.1),
                f"{mode}: record {BAD} failed, was released and read again", bad_attempts())
        with lock:
            state["fixed"] = True
        c.check(wait_until(lambda: {json.loads(r.body)["n"] for r in mine()
                                    if getattr(r, "status", None) == 200} >= set(range(N)),
                           60 * SLOW, interval=0.1),
                f"{mode}: every record delivered once {BAD} is fixed")
        reqs = mine()
        first_ok = min(r.t_arrival for r in reqs if json.loads(r.body)["n"] == BAD and r.status == 200)
        held = [i for i in range(BAD + 1, N) if keys[i] == keys[BAD] or mode == "partition"]
        early = sorted({json.loads(r.body)["n"] for r in reqs
                        if json.loads(r.body)["n"] in held and r.t_arrival < first_ok})
        c.eq(early, [], f"{mode}: nothing behind record {BAD} in its lane reached the function "
                        f"before its first 2xx")
        # First successful delivery per lane in offset order.
        firsts = {}
        for r in sorted(reqs, key=lambda r: r.t_arrival):
            n = json.loads(r.body)["n"]
            if r.status == 200 and n not in firsts:
                firsts[n] = r.t_arrival
        for lane in sorted(set(keys)) if mode == "key" else ["p0"]:
            ns = [i for i in range(N) if mode == "partition" or keys[i] == lane]
            seq = sorted(ns, key=lambda i: firsts[i])
            c.eq(seq, ns, f"{mode}: first deliveries of lane {lane} in offset order")
        ok = wait_until(lambda: kafka.offsets(f"g-{topic}", topic)[0].get(0) == N, 30 * SLOW,
                        interval=0.5)
        c.check(ok, f"{mode}: committed to the end", kafka.offsets(f"g-{topic}", topic))
        log(f"{mode}: {len(reqs)} requests for {N} records; record {BAD} attempted "
            f"{bad_attempts()} times")
        d.terminate()
        c.eq(d.wait(30), 0, f"{mode}: daemon exits 0")

    run("partition", "ordp", ["k"] * N)
    # Two keys on one partition: record 3's key ("a") is held, key "b" flows.
    run("key", "ordk", ["a" if i % 2 else "b" for i in range(N)])


run_kafka_test(body)
