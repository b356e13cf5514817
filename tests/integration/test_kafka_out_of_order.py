"""Kafka, out-of-order completion: the function holds event 10 of a one-partition topic for a long
time while every later event completes. The group's committed offset (the broker's view, read
with Kafka's Java admin client) must stay at 10 - never past the unfinished event - and reach the
end once it completes."""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, log,  # noqa: E402
                     trigger, wait_until)
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

N = 200
HELD = 10


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("ooo", 1)
    release = threading.Event()

    def behaviour(req, attempt):
        n = json.loads(req.body)["n"]
        if n == HELD:
            release.wait(60)
            return (200, {}, b"", 0)
        return (200, {}, b"", 0.001 * (n % 7))

    fn = FunctionServer(behaviour)
    kafka.produce("ooo", [(None, json.dumps({"n": i})) for i in range(N)])
    cfg = config({"src": kafka_source(kafka, ["ooo"], group="ooo")}, {"fn": http_sink(fn.url, timeout="90s")},
                 [trigger("t", "src", "fn", concurrency=32, timeout="90s")])
    d = Triggerd(cfg).start()
    c.check(d.wait_ready(30), "daemon ready")
    others = wait_until(lambda: len(fn.ok_ids()) >= N - 1, 60 * SLOW, interval=0.1)
    c.check(others, "every event but the held one delivered", len(fn.ok_ids()))
    time.sleep(3)  # several auto-commit intervals (1 s)
    committed, end = kafka.offsets("ooo", "ooo")
    log(f"while event {HELD} is unfinished: committed {committed}, end {end}")
    c.check(committed.get(0, 0) <= HELD, "committed offset never passes the unfinished event",
            committed)
    c.eq(committed.get(0), HELD, "the completed prefix before it is committed")
    release.set()
    ok = wait_until(lambda: kafka.offsets("ooo", "ooo")[0].get(0) == N, 30 * SLOW, interval=1.0)
    c.check(ok, "committed offset reaches the end once it completes", kafka.offsets("ooo", "ooo"))
    d.terminate()
    c.eq(d.wait(30), 0, "daemon exits 0")


run_kafka_test(body)
