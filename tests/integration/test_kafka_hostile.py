"""Kafka, hostile records (produced by Kafka's Java client): a header value that is not UTF-8, a
binary key, header names with nothing valid in them, a null header, 10 000 headers, a 1 MiB header
value, a binary-mode CloudEvent whose ce_type is not UTF-8. Each is delivered or dead-lettered
with a reason; the daemon keeps running and the well-formed record after them is delivered."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, log,  # noqa: E402
                     trigger, wait_until)
from kafka_fixture import (KafkaBroker, header_map, kafka_sink, kafka_source,  # noqa: E402
                           run_kafka_test)


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("hostile", 1)
    kafka.create_topic("dlq", 1)
    fn = FunctionServer()
    cfg = config({"src": kafka_source(kafka, ["hostile"], group="h")},
                 {"fn": http_sink(fn.url), "dead": kafka_sink(kafka, "dlq")},
                 [trigger("t", "src", "fn", retry=1, backoff_delay="50ms", dead_letter="dead")])
    d = Triggerd(cfg).start()
    c.check(d.wait_ready(30), "daemon ready")
    kafka.tool("hostile", kafka.bootstrap, "hostile")
    settled = wait_until(lambda: len(fn.ok_ids()) + len(kafka.consume("dlq")) >= 5, 60 * SLOW,
                         interval=0.5)
    c.check(settled, "all five records settled")
    delivered = {r.ce_id: r for r in fn.snapshot() if r.status == 200}
    dead = {header_map(r).get("ce_id"): r for r in kafka.consume("dlq")}
    log(f"delivered {sorted(delivered)}, dead-lettered {sorted(dead)}")
    c.check("kafka:hostile/0/0" in delivered, "invalid UTF-8 header and binary key: delivered")
    if "kafka:hostile/0/0" in delivered:
        r = delivered["kafka:hostile/0/0"]
        c.check(r.header("ce-kafkaheaderxbadbytes") is not None,
                "its bad header became an extension (U+FFFD)", r.header("ce-kafkaheaderxbadbytes"))
        c.check(r.header("ce-partitionkeybase64") is not None, "its binary key kept as base64")
    for off, what in ((1, "10 000 headers"), (2, "a 1 MiB header"), (3, "a bad binary CloudEvent")):
        rid = f"kafka:hostile/0/{off}"
        rec = dead.get(rid)
        h = header_map(rec) if rec else {}
        c.check(rec is not None and h.get("ce_deadletterreason") == "invalid_event" and
                h.get("ce_knativeerrordata"), f"{what}: dead-lettered with a reason",
                h.get("ce_knativeerrordata"))
    c.check("kafka:hostile/0/4" in delivered, "the well-formed record after them: delivered")
    c.check(d.running(), "daemon still running")
    ok = wait_until(lambda: kafka.offsets("h", "hostile")[0].get(0) == 5, 30 * SLOW, interval=1.0)
    c.check(ok, "committed offset reaches the end", kafka.offsets("h", "hostile"))
    d.terminate()
    c.eq(d.wait(30), 0, "daemon exits 0")


run_kafka_test(body)
