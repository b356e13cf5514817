"""Kafka, healthy function: 10 000 events on a 3-partition topic all arrive, each one wrapped with
its deterministic id (kafka:<topic>/<partition>/<offset>), and the group's committed offsets (the
broker's view, read with Kafka's Java admin client) reach the end of every partition."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, log,  # noqa: E402
                     trigger, wait_until)
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

N = 10000


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("orders", 3)
    fn = FunctionServer()
    t0 = time.monotonic()
    kafka.produce("orders", [(f"key-{i % 97}", f'{{"n": {i}}}') for i in range(N)])
    log(f"produced {N} records in {time.monotonic() - t0:.1f}s")
    cfg = config({"orders": kafka_source(kafka, ["orders"], group="healthy")},
                 {"fn": http_sink(fn.url)},
                 [trigger("t", "orders", "fn", concurrency=32)])
    d = Triggerd(cfg).start()
    c.check(d.wait_ready(30), "daemon ready")
    t0 = time.monotonic()
    got = wait_until(lambda: len(fn.ok_ids()) >= N, 120 * SLOW, interval=0.2)
    took = time.monotonic() - t0
    ids = fn.ok_ids()
    c.eq(len(ids), N, "every event delivered")
    log(f"delivered {len(ids)} in {took:.1f}s ({len(ids) / max(took, 0.001):.0f}/s)")
    parts = {}
    for i in ids:
        if i and i.startswith("kafka:orders/"):
            _, p, o = i.split("/")
            parts.setdefault(int(p), set()).add(int(o))
    c.eq(sorted(parts), [0, 1, 2], "all three partitions delivered")
    c.check(all(s == set(range(len(s))) for s in parts.values()), "ids are kafka:<topic>/<p>/<o>")
    sample = fn.snapshot()[0]
    c.check(sample.ce("partitionkey") and sample.ce("partitionkey").startswith("key-"),
            "partitionkey from the record key", sample.ce("partitionkey"))
    c.check(sample.ce("time") is not None, "time from the record timestamp", sample.ce("time"))
    c.eq(sample.ce("type"), "com.example.test", "type from the trigger's event defaults")

    def caught_up():
        committed, end = kafka.offsets("healthy", "orders")
        return committed if committed == end and sum(end.values()) == N else None

    committed = wait_until(caught_up, 30 * SLOW, interval=1.0)
    _, end = kafka.offsets("healthy", "orders")
    c.check(committed, "committed offsets reach the end of every partition",
            f"committed {committed}, end {end}")
    dup = len(fn.snapshot()) - len(ids)
    c.eq(dup, 0, "no duplicate deliveries in a healthy run")
    d.terminate()
    c.eq(d.wait(30), 0, "daemon exits 0 on SIGTERM")
    c.check(got, "run completed")


run_kafka_test(body)
