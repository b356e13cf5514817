"""Kafka consumer-group lag per partition on /metrics agrees with Kafka's kafka-consumer-groups
(org.apache.kafka.tools.consumer.group.ConsumerGroupCommand from the jars the fixture fetched),
from every member, including one that holds no partition.

Three daemons in one group on a 2-partition topic: one of them holds no partition (its
triggerd_kafka_consumer_lag, the assigned-partitions view, is absent). 20 records delivered: the
tool shows LAG 0 on both partitions and every daemon shows
triggerd_kafka_consumergroup_lag{source,group,topic,partition} 0. Then the function holds every
request and 40 more are produced: nothing more is committed, and each daemon's per-partition lag
equals the tool's LAG (LOG-END-OFFSET - CURRENT-OFFSET), its triggerd_source_lag_messages their
sum (40), stable over more than one 5 s lag interval. Released: 0 everywhere again."""

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, log,  # noqa: E402
                     trigger, wait_until)
from http_util import metric, metrics, with_http  # noqa: E402
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

FIRST, HELD = 20, 40
LAG = "triggerd_kafka_consumergroup_lag"
GROUP_CMD = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


def tool_lag(kafka, group, topic):
    """{partition: (current, log_end, lag)} from kafka-consumer-groups --describe; '-' is None."""
    r = subprocess.run(["java", "-Xmx128m", "-XX:+UseSerialGC",
                        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", kafka.cp, GROUP_CMD,
                        "--bootstrap-server", kafka.bootstrap, "--describe", "--group", group],
                       capture_output=True, text=True, timeout=90 * SLOW)
    out = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 6 and f[0] == group and f[1] == topic and f[2].isdigit():
            num = [None if x == "-" else int(x) for x in f[3:6]]
            out[int(f[2])] = tuple(num)
    return out


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("lt", 2)
    gate = threading.Event()
    gate.set()

    def behaviour(req, attempt):
        gate.wait(120)
        return (200, {}, b"ok", 0)

    fn = FunctionServer(behaviour)
    daemons = []
    for i in range(3):
        cfg = config({"in": kafka_source(kafka, ["lt"], group="lg")},
                     {"fn": http_sink(fn.url, timeout="120s")},
                     [trigger("t", "in", "fn", concurrency=4, timeout="120s")])
        port = with_http(cfg)
        d = Triggerd(cfg, name=f"triggerd-{i}").start()
        daemons.append((d, port))
    for d, _ in daemons:
        c.check(d.wait_ready(60), f"{d.name} ready")

    def produce(n, tag):
        kafka.produce("lt", [(f"k{i % 5}", f'{{"{tag}": {i}}}') for i in range(n)])

    def per_partition(port):
        ms = metrics(port)
        return ({p: metric(ms, LAG, source="in", group="lg", topic="lt", partition=str(p))
                 for p in (0, 1)}, metric(ms, "triggerd_source_lag_messages", source="in"))

    def agree(what, want_total):
        tool = {}

        def tool_ok():
            tool.clear()
            tool.update(tool_lag(kafka, "lg", "lt"))
            return (sorted(tool) == [0, 1] and all(v[2] is not None for v in tool.values())
                    and sum(v[2] for v in tool.values()) == want_total)

        wait_until(tool_ok, 60 * SLOW, interval=1)
        want = {p: tool[p][2] if p in tool else None for p in (0, 1)}
        c.eq(sum(v or 0 for v in want.values()), want_total, f"{what}: the tool's LAG sums up")
        c.check(all(t[1] - t[0] == t[2] for t in tool.values()),
                f"{what}: the tool's LAG is LOG-END-OFFSET - CURRENT-OFFSET", tool)
        for d, port in daemons:
            seen = []

            def ok():
                seen[:] = [per_partition(port)]
                return seen[0] == (want, want_total)

            wait_until(ok, 20 * SLOW, interval=0.25)
            c.eq(seen[0] if seen else None, (want, want_total),
                 f"{what}: {d.name}'s per-partition lag and total equal the tool's")

    produce(FIRST, "a")
    c.check(wait_until(lambda: len(fn.ok_ids()) >= FIRST, 60 * SLOW, interval=0.2),
            "the first records delivered")
    agree("delivered", 0)

    # Who holds what: the assigned-partitions gauge is absent on a member holding none. Read
    # until the group is settled: during a rebalance (a member's session renewed late on a
    # loaded machine) every member holds nothing for a moment, and all three read None.
    assigned = []

    def settled():
        assigned[:] = [metric(metrics(p), "triggerd_kafka_consumer_lag", source="in")
                       for _, p in daemons]
        return sum(v is None for v in assigned) == 1

    wait_until(settled, 30 * SLOW, interval=0.25)
    idle = [d.name for (d, _), v in zip(daemons, assigned) if v is None]
    c.eq(len(idle), 1, f"exactly one member holds no partition ({assigned})")

    gate.clear()
    produce(HELD, "b")
    c.check(wait_until(lambda: fn.in_flight >= 4, 30 * SLOW, interval=0.1),
            "the function holds requests")
    agree("held", HELD)
    time.sleep(6)  # more than one lag interval
    agree("still held", HELD)

    gate.set()
    c.check(wait_until(lambda: len(fn.ok_ids()) >= FIRST + HELD, 90 * SLOW, interval=0.2),
            "all delivered once released")
    agree("drained", 0)
    for d, _ in daemons:
        d.terminate()
    for d, _ in daemons:
        d.wait(30 * SLOW)
    log("done")


run_kafka_test(body)
