"""Kafka, a record that fails for good without a dead_letter target: the completions before it
are still committed, the partition's committed offset stays exactly at it while it fails (the
broker's view, through KafkaTool), it is read again from there after a backoff (AWS Lambda's
event source mapping does the same) with a log line, other partitions are not held back, and once
the function accepts it everything is delivered and committed to the end."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, log,  # noqa: E402
                     trigger, wait_until)
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

PER_PART = 30
BAD = 5  # partition 0, offset 5


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("rel", 2)
    state = {"fail": True}

    def is_bad(req):
        return req.ce("id").endswith(f"/0/{BAD}")

    def behaviour(req, attempt):
        if state["fail"] and is_bad(req):
            return (400, {}, b'{"error": "bad record"}', 0)
        return (200, {}, b"", 0.002)

    fn = FunctionServer(behaviour)
    for part in (0, 1):
        kafka.produce("rel", [(f"k{i}", json.dumps({"p": part, "n": i})) for i in range(PER_PART)],
                      partition=part)
    cfg = config({"src": kafka_source(kafka, ["rel"], group="rel")}, {"fn": http_sink(fn.url)},
                 [trigger("t", "src", "fn", retry=0)])
    d = Triggerd(cfg).start()
    c.check(d.wait_ready(30), "daemon ready")

    def bad_attempts():
        return len([r for r in fn.snapshot() if is_bad(r)])

    ok = wait_until(lambda: (lambda o: o[0].get(0) == BAD and o[0].get(1) == o[1].get(1))(
        kafka.offsets("rel", "rel")), 60 * SLOW, interval=0.5)
    c.check(ok, f"partition 0 committed up to the failing record ({BAD}), partition 1 to its end",
            kafka.offsets("rel", "rel"))
    before = {r.ce("id") for r in fn.snapshot() if r.status == 200 and "/0/" in r.ce("id")}
    c.check(all(any(i.endswith(f"/0/{n}") for i in before) for n in range(BAD)),
            "the records before it were delivered", sorted(before))
    redelivered = wait_until(lambda: bad_attempts() >= 3, 60 * SLOW, interval=0.2)
    c.check(redelivered, "the failing record is read again after a backoff", bad_attempts())
    stays = []
    for _ in range(3):
        stays.append(kafka.offsets("rel", "rel")[0].get(0))
        time.sleep(0.5)
    c.eq(stays, [BAD] * 3, "the committed offset stays exactly at it while it fails")
    lines = [l for l in d.logs() if "is read again from offset" in str(l.get("msg", ""))]
    c.check(len(lines) >= 1, "a log line for the redelivery", len(lines))
    log(f"failing record attempted {bad_attempts()} times; {len(lines)} redelivery log lines")
    c.check(d.running(), "the daemon keeps running")
    state["fail"] = False
    done = wait_until(lambda: len(fn.ok_ids()) >= 2 * PER_PART, 90 * SLOW, interval=0.2)
    c.check(done, "once accepted, every record is delivered", len(fn.ok_ids()))
    ok = wait_until(lambda: (lambda o: o[0] == o[1])(kafka.offsets("rel", "rel")), 30 * SLOW,
                    interval=1.0)
    c.check(ok, "committed offsets reach the end", kafka.offsets("rel", "rel"))
    d.terminate()
    c.eq(d.wait(30), 0, "daemon exits 0")


run_kafka_test(body)
