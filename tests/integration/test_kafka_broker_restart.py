"""Kafka, the broker stopped and started again mid-stream: the daemon keeps running, recovers by
itself and nothing is lost (records produced before and after the outage)."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, log,  # noqa: E402
                     trigger, wait_until)
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

N1, N2 = 2000, 1000


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("br", 2)
    fn = FunctionServer(lambda req, attempt: (200, {}, b"", 0.01))
    kafka.produce("br", [(f"k{i % 20}", json.dumps({"n": i})) for i in range(N1)])
    cfg = config({"src": kafka_source(kafka, ["br"], group="br")}, {"fn": http_sink(fn.url)},
                 [trigger("t", "src", "fn", concurrency=8)])
    d = Triggerd(cfg).start()
    c.check(d.wait_ready(30), "daemon ready")
    wait_until(lambda: len(fn.ok_ids()) >= N1 // 2, 60 * SLOW, interval=0.02)
    kafka.stop()
    log(f"broker stopped after {len(fn.ok_ids())} deliveries")
    time.sleep(3)
    c.check(d.running(), "daemon still running while the broker is down")
    kafka.start()
    log("broker started again")
    kafka.produce("br", [(f"k{i % 20}", json.dumps({"n": i})) for i in range(N1, N1 + N2)])
    done = wait_until(lambda: len(fn.ok_ids()) >= N1 + N2, 120 * SLOW, interval=0.2)
    c.check(done, "nothing lost", len(fn.ok_ids()))
    dups = len([r for r in fn.snapshot() if r.status == 200]) - len(fn.ok_ids())
    log(f"duplicates across the broker restart: {dups}")
    for l in d.logs():
        if "partitions" in str(l.get("msg", "")) or "commit" in str(l.get("msg", "")):
            log("  daemon: " + l["msg"])
    ok = wait_until(lambda: (lambda o: o[0] == o[1])(kafka.offsets("br", "br")), 30 * SLOW,
                    interval=1.0)
    c.check(ok, "committed offsets reach the end", kafka.offsets("br", "br"))
    d.terminate()
    c.eq(d.wait(30), 0, "daemon exits 0")


run_kafka_test(body)
