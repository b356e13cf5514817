"""Kafka, failures and dead letters: events the function refuses for good (400) or keeps failing
(503 past the retries) are written to a Kafka dead-letter topic as binary-mode CloudEvents with
the dead-letter extension attributes in ce_ headers, read back by an independent consumer (kcat);
everything else is delivered and the committed offsets reach the end."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, log,  # noqa: E402
                     trigger, wait_until)
from kafka_fixture import (KafkaBroker, header_map, kafka_sink, kafka_source,  # noqa: E402
                           run_kafka_test)

N = 100


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("in", 2)
    kafka.create_topic("dlq", 1)

    def behaviour(req, attempt):
        n = json.loads(req.body)["n"]
        if n % 10 == 0:
            return (400, {}, b'{"error": "bad order"}', 0)
        if n == 5:
            return (503, {}, b"busy", 0)
        return (200, {}, b"", 0)

    fn = FunctionServer(behaviour)
    kafka.produce("in", [(f"k{i}", json.dumps({"n": i})) for i in range(N)])
    cfg = config({"src": kafka_source(kafka, ["in"], group="dl")},
                 {"fn": http_sink(fn.url), "dead": kafka_sink(kafka, "dlq")},
                 [trigger("t", "src", "fn", retry=2, backoff_delay="50ms", dead_letter="dead")])
    d = Triggerd(cfg).start()
    c.check(d.wait_ready(30), "daemon ready")
    want_dead = {i for i in range(N) if i % 10 == 0 or i == 5}
    dead = wait_until(lambda: len(kafka.consume("dlq")) >= len(want_dead), 60 * SLOW,
                      interval=0.5)
    recs = kafka.consume("dlq")
    c.eq(len(recs), len(want_dead), "one dead letter per failed event")
    got = set()
    ok_headers = True
    for r in recs:
        h = header_map(r)
        n = json.loads(r["payload"])["n"]
        got.add(n)
        want_code = "400" if n % 10 == 0 else "503"
        want_reason = "final_status" if n % 10 == 0 else "retries_exhausted"
        if (h.get("ce_specversion") != "1.0" or h.get("ce_knativeerrorcode") != want_code or
                h.get("ce_deadletterreason") != want_reason or
                not h.get("ce_id", "").startswith("kafka:in/") or
                h.get("ce_deadlettertrigger", "t") != "t" or
                r.get("key") != f"k{n}"):
            ok_headers = False
            log(f"unexpected dead letter: {r}")
    c.eq(got, want_dead, "the dead letters are the failed events")
    c.check(ok_headers, "dead letters carry ce_ headers: id, knativeerrorcode, deadletterreason; "
            "key = partitionkey")
    sample = header_map(recs[0])
    log("a dead letter's headers: " + json.dumps(sample)[:600])
    c.check(dead and wait_until(lambda: len(fn.ok_ids()) >= N - len(want_dead), 30 * SLOW),
            "every other event delivered", len(fn.ok_ids()))
    ok = wait_until(lambda: (lambda o: o[0] == o[1])(kafka.offsets("dl", "in")), 30 * SLOW,
                    interval=1.0)
    c.check(ok, "committed offsets reach the end", kafka.offsets("dl", "in"))
    d.terminate()
    c.eq(d.wait(30), 0, "daemon exits 0")


run_kafka_test(body)
