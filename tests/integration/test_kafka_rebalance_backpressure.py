"""Kafka, a rebalance under backpressure: two daemons of one group, `max_inflight: 20`, a slow
function (50 ms), a backlog of 2000 records on 4 partitions. The second daemon joins while the
first is out of credit (its partitions paused). After the rebalance both must keep reading every
partition they hold: the backlog drains completely (every record delivered, the group's committed
offsets at the end, the lag gauge of each daemon back to 0), and neither daemon is reported
stalled on the way. A partition assigned while out of credit is paused and resumed when credit
returns; a revoked partition's pause state is forgotten."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, log, trigger,  # noqa: E402
                     wait_until)
from http_util import metric, metrics, with_http  # noqa: E402
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

N = 2000
PARTS = 4


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("bp", PARTS)
    fn = FunctionServer(lambda req, attempt: (200, {}, b"", 0.05))
    kafka.produce("bp", [(f"k{i % 40}", json.dumps({"n": i})) for i in range(N)])
    daemons, ports = {}, {}

    def start(name):
        sink = {"http": {"url": fn.url, "timeout": "5s", "headers": {"X-Daemon": name}}}
        src = kafka_source(kafka, ["bp"], group="bp")
        src["max_inflight"] = 20
        src["stall_after"] = "20s"
        cfg = config({"src": src}, {"fn": sink}, [trigger("t", "src", "fn", concurrency=64)])
        ports[name] = with_http(cfg)
        daemons[name] = Triggerd(cfg, name=f"triggerd-{name}").start()
        c.check(daemons[name].wait_ready(30), f"daemon {name} ready")

    def in_flight(name):
        return metric(metrics(ports[name]), "triggerd_source_in_flight", source="src") or 0

    start("a")
    c.check(wait_until(lambda: in_flight("a") >= 20, 60 * SLOW, interval=0.05),
            "a is out of credit (20 in flight)")
    time.sleep(0.5)  # past the pause delay: a's partitions are paused now
    log(f"a delivered {len(fn.ok_ids())}; b joins while a is out of credit")
    start("b")
    done = wait_until(lambda: len(fn.ok_ids()) >= N, 120 * SLOW, interval=0.2)
    c.check(done, "the backlog drains: every record delivered", len(fn.ok_ids()))
    ok = wait_until(lambda: (lambda o: o[0] == o[1])(kafka.offsets("bp", "bp")), 30 * SLOW,
                    interval=0.5)
    c.check(ok, "the group's committed offsets reach the end", kafka.offsets("bp", "bp"))
    for name in ("a", "b"):
        lag_ok = wait_until(lambda: metric(metrics(ports[name]), "triggerd_kafka_consumer_lag",
                                           source="src") in (0, None), 20 * SLOW, interval=0.5)
        c.check(lag_ok, f"daemon {name}: lag back to 0",
                metric(metrics(ports[name]), "triggerd_kafka_consumer_lag", source="src"))
        stalls = [l for l in daemons[name].logs() if "stalled" in str(l.get("msg", ""))]
        c.eq(stalls, [], f"daemon {name}: never reported stalled")
    reqs = [r for r in fn.snapshot() if r.status == 200]
    b_parts = {r.ce_id.split("/")[1] for r in reqs if r.header("x-daemon") == "b"}
    c.check(b_parts, "b took over partitions", sorted(b_parts))
    c.eq(len({r.ce_id for r in reqs}), N, "nothing lost")
    log(f"delivered {len(reqs)} for {N} records ({len(reqs) - N} again after the rebalance)")
    for name in ("a", "b"):
        daemons[name].terminate()
        c.eq(daemons[name].wait(30), 0, f"daemon {name} exits 0")


run_kafka_test(body)
