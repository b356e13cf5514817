"""Kafka, SIGKILL mid-stream then restart: nothing is lost; the duplicates (events delivered by
the first run but not yet committed) are counted and reported."""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, log,  # noqa: E402
                     trigger, wait_until)
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

N = 3000


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("kill", 3)
    fn = FunctionServer(lambda req, attempt: (200, {}, b"", 0.012))
    kafka.produce("kill", [(f"k{i % 50}", json.dumps({"n": i})) for i in range(N)])
    cfg = config({"src": kafka_source(kafka, ["kill"], group="kill")}, {"fn": http_sink(fn.url)},
                 [trigger("t", "src", "fn", concurrency=16)])
    d = Triggerd(cfg).start()
    c.check(d.wait_ready(30), "daemon ready")
    wait_until(lambda: len(fn.ok_ids()) >= N // 2, 60 * SLOW, interval=0.02)
    d.signal(signal.SIGKILL)
    d.wait(10)
    first = len(fn.ok_ids())
    log(f"killed after {first} deliveries")
    c.check(first < N, "killed mid-stream", first)
    d.start()
    c.check(d.wait_ready(30), "restarted daemon ready")
    done = wait_until(lambda: len(fn.ok_ids()) >= N, 120 * SLOW, interval=0.1)
    c.check(done, "nothing lost: every event delivered after the restart", len(fn.ok_ids()))
    time.sleep(0.5)
    total = len([r for r in fn.snapshot() if r.status == 200])
    dups = total - len(fn.ok_ids())
    log(f"duplicates after SIGKILL: {dups} of {N} ({100.0 * dups / N:.1f}%)")
    c.check(dups < N // 2, "duplicates bounded by what was uncommitted", dups)
    ok = wait_until(lambda: (lambda o: o[0] == o[1])(kafka.offsets("kill", "kill")), 30 * SLOW,
                    interval=1.0)
    c.check(ok, "committed offsets reach the end", kafka.offsets("kill", "kill"))
    d.terminate()
    c.eq(d.wait(30), 0, "daemon exits 0")


run_kafka_test(body)
