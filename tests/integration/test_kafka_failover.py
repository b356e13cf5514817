"""Kafka, two daemons in one consumer group, one SIGKILLed mid-stream: the other takes over its
partitions after the session timeout and nothing is lost."""

import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, log, trigger,  # noqa: E402
                     wait_until)
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

N = 4000


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("fo", 4)
    fn = FunctionServer(lambda req, attempt: (200, {}, b"", 0.003))
    daemons = {}
    for name in ("a", "b"):
        sink = {"http": {"url": fn.url, "timeout": "2s", "headers": {"X-Daemon": name}}}
        cfg = config({"src": kafka_source(kafka, ["fo"], group="fo")}, {"fn": sink},
                     [trigger("t", "src", "fn", concurrency=8)])
        daemons[name] = Triggerd(cfg, name=f"triggerd-{name}").start()
    for name, d in daemons.items():
        c.check(d.wait_ready(30), f"daemon {name} ready")

    def assigned(d):
        return [l for l in d.logs() if str(l.get("msg", "")).startswith("partitions assigned")]

    c.check(wait_until(lambda: all(assigned(d) for d in daemons.values()), 30 * SLOW),
            "both daemons joined the group")
    kafka.produce("fo", [(f"k{i % 64}", json.dumps({"n": i})) for i in range(N)])
    by = lambda name: {r.ce_id for r in fn.snapshot() if r.header("x-daemon") == name}  # noqa
    wait_until(lambda: len(by("a")) >= 300 and len(by("b")) >= 300, 60 * SLOW, interval=0.05)
    c.check(len(by("a")) > 0 and len(by("b")) > 0, "both daemons delivered",
            (len(by("a")), len(by("b"))))
    daemons["a"].signal(signal.SIGKILL)
    daemons["a"].wait(10)
    log(f"killed a after {len(by('a'))} of its deliveries, {len(fn.ok_ids())} in all")
    done = wait_until(lambda: len(fn.ok_ids()) >= N, 120 * SLOW, interval=0.2)
    c.check(done, "nothing lost: b delivered the rest", len(fn.ok_ids()))
    dups = len([r for r in fn.snapshot() if r.status == 200]) - len(fn.ok_ids())
    log(f"duplicates after the failover: {dups}")
    ok = wait_until(lambda: (lambda o: o[0] == o[1])(kafka.offsets("fo", "fo")), 30 * SLOW,
                    interval=1.0)
    c.check(ok, "committed offsets reach the end", kafka.offsets("fo", "fo"))
    daemons["b"].terminate()
    c.eq(daemons["b"].wait(30), 0, "b exits 0")


run_kafka_test(body)
