"""Kafka consumer lag on /metrics (triggerd_kafka_consumer_lag{source=...}): high watermark minus
the offset the group's commit is heading to, summed over the assigned partitions, so a record read
but still being delivered counts as lag.

While the function holds every request, N records on a 2-partition topic show a lag of exactly N
(they are all read, none finished); released and drained, the lag reaches exactly 0. Then M more
records while held: exactly M, then 0 again. A second daemon of the same group, started when the
group is caught up and reading nothing, shows 0 (the committed offsets read at assignment), and
K records produced while its function holds show K, then 0. SIGKILLed and restarted at once, the
new member holds no partition until the dead one's session times out: its lag is absent from
/metrics then (never 0), and exactly the K2 records produced meanwhile once it is assigned."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, log,  # noqa: E402
                     trigger, wait_until)
from http_util import metric, metrics, with_http  # noqa: E402
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

N, M, K, K2 = 60, 25, 17, 11
LAG = "triggerd_kafka_consumer_lag"


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("lagged", 2)
    gate = threading.Event()

    def behaviour(req, attempt):
        gate.wait(120)
        return (200, {}, b"ok", 0)

    fn = FunctionServer(behaviour)

    def start_daemon():
        cfg = config({"in": kafka_source(kafka, ["lagged"], group="lag")},
                     {"fn": http_sink(fn.url, timeout="120s")},
                     [trigger("t", "in", "fn", concurrency=4, timeout="120s")])
        port = with_http(cfg)
        d = Triggerd(cfg).start()
        c.check(d.wait_ready(30), "daemon ready")
        return d, port

    def lag(port):
        return metric(metrics(port), LAG, source="in")

    def lag_is(port, want, what, timeout=30):
        seen = []

        def ok():
            v = lag(port)
            seen.append(v)
            return v == want

        wait_until(ok, timeout * SLOW, interval=0.2)
        c.eq(seen[-1] if seen else None, want, what)

    def produce(n, tag):
        kafka.produce("lagged", [(f"k{i % 7}", f'{{"{tag}": {i}}}') for i in range(n)])

    gate.clear()
    produce(N, "a")
    d, port = start_daemon()
    c.check(wait_until(lambda: fn.in_flight >= 4, 30 * SLOW, interval=0.1),
            "the function holds the first requests")
    lag_is(port, N, f"held: lag is exactly the {N} unfinished records")
    time.sleep(1.5)  # a few more ticks: held records do not become "done"
    c.eq(lag(port), N, "held: lag stays at N (read but not finished is still lag)")
    gate.set()
    c.check(wait_until(lambda: len(fn.ok_ids()) >= N, 60 * SLOW, interval=0.2), "N delivered")
    lag_is(port, 0, "released and drained: lag reaches exactly 0")

    gate.clear()
    produce(M, "b")
    lag_is(port, M, f"held again: lag is exactly the {M} new records")
    gate.set()
    c.check(wait_until(lambda: len(fn.ok_ids()) >= N + M, 60 * SLOW, interval=0.2),
            "M delivered")
    lag_is(port, 0, "drained again: lag is 0")

    def caught_up():
        committed, end = kafka.offsets("lag", "lagged")
        return committed == end and sum(end.values()) == N + M

    c.check(wait_until(caught_up, 30 * SLOW, interval=1.0), "committed offsets at the end")
    d.terminate()
    c.eq(d.wait(30), 0, "daemon exits 0")

    # A caught-up group reading nothing: the commit point is the committed offset.
    gate.clear()
    d2, port2 = start_daemon()
    lag_is(port2, 0, "restarted, caught up, nothing read: lag 0 (committed offsets)")
    produce(K, "c")
    lag_is(port2, K, f"restarted and held: lag is exactly the {K} new records")
    gate.set()
    c.check(wait_until(lambda: len(fn.ok_ids()) >= N + M + K, 60 * SLOW, interval=0.2),
            "K delivered")
    lag_is(port2, 0, "restarted and drained: lag 0")

    # SIGKILL and restart at once: the group keeps the dead member's partitions until its
    # session times out (6 s), so the new member holds nothing for a while. A lag it does not
    # know is absent from /metrics, never 0 (an autoscaler would read "caught up").
    # Killed only once its commits reached the broker (auto-commit runs every second): records
    # read but not yet committed are redelivered to the next member (at-least-once), and would
    # count in its lag besides the K2 new ones.
    def committed_all():
        committed, end = kafka.offsets("lag", "lagged")
        return committed == end and sum(end.values()) == N + M + K

    c.check(wait_until(committed_all, 30 * SLOW, interval=0.5), "second daemon's commits are in")
    gate.clear()
    d2.kill()
    d2.wait(10)
    produce(K2, "d")
    d3, port3 = start_daemon()
    seen = []
    while not fn.in_flight:
        seen.append(lag(port3))
        if len(seen) > 600 * SLOW:
            break
        time.sleep(0.05)
    c.check(seen and seen[0] is None, "unassigned after a restart: no lag sample", seen[:3])
    c.check(0 not in seen, "never 0 while nothing is assigned", sorted(set(seen), key=str))
    lag_is(port3, K2, f"assigned and held: lag is exactly the {K2} new records")
    gate.set()
    c.check(wait_until(lambda: len(fn.ok_ids()) >= N + M + K + K2, 60 * SLOW, interval=0.2),
            "K2 delivered")
    lag_is(port3, 0, "third daemon drained: lag 0")
    log(f"deliveries {len(fn.snapshot())} for {N + M + K + K2} records")
    d3.terminate()
    c.eq(d3.wait(30), 0, "third daemon exits 0")


run_kafka_test(body)
