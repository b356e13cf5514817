"""Kafka, a graceful rebalance: a second daemon joins the group mid-stream (nobody is killed)
with `ordering: partition` and a slowish function. The first daemon stops dispatching the records
of the partitions it gives up that are queued in the core (waiting for a slot, behind their lane,
or waiting to retry), waits only for the attempts running on them, commits, and lets go: every
event arrives, nothing is lost, and the records delivered by both daemons are at most those
running at a revoke.

The bound: with `ordering: partition` at most one attempt per partition runs at any time, so a
revoke of P partitions finds at most P running. Those finish inside the revoke wait (the function
takes 30 ms, the bound is 10 s) and are committed before the partitions change hands, so in
practice none is delivered twice; a duplicate would need a running attempt outliving the wait.
Hence: ids delivered by both daemons <= P x (revokes of the first daemon). And no two deliveries
of one partition overlap in time across the daemons: the new owner reads a partition only after
the old one's running attempt on it finished."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, log, trigger,  # noqa: E402
                     wait_until)
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

N = 800
PARTS = 2


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("rb", PARTS)
    fn = FunctionServer(lambda req, attempt: (200, {}, b"", 0.03))
    kafka.produce("rb", [(f"k{i % 40}", json.dumps({"n": i})) for i in range(N)])
    daemons = {}

    def start(name):
        sink = {"http": {"url": fn.url, "timeout": "5s", "headers": {"X-Daemon": name}}}
        cfg = config({"src": kafka_source(kafka, ["rb"], group="rb")}, {"fn": sink},
                     [trigger("t", "src", "fn", concurrency=8, ordering="partition")])
        daemons[name] = Triggerd(cfg, name=f"triggerd-{name}").start()
        c.check(daemons[name].wait_ready(30), f"daemon {name} ready")

    start("a")
    wait_until(lambda: len(fn.ok_ids()) >= 60, 60 * SLOW, interval=0.05)
    log(f"a delivered {len(fn.ok_ids())}; b joins")
    start("b")
    done = wait_until(lambda: len(fn.ok_ids()) >= N, 180 * SLOW, interval=0.2)
    c.check(done, "every event arrives", len(fn.ok_ids()))
    time.sleep(1)
    reqs = [r for r in fn.snapshot() if r.status == 200]
    c.eq(len({r.ce_id for r in reqs}), N, "nothing lost")
    by_id = {}
    for r in reqs:
        by_id.setdefault(r.ce_id, set()).add(r.header("x-daemon"))
    both = [i for i, who in by_id.items() if len(who) > 1]
    b_got = {r.ce_id.split("/")[1] for r in reqs if r.header("x-daemon") == "b"}
    c.check(len(b_got) > 0, "b took over partitions", sorted(b_got))

    def msgs(name, prefix):
        return [str(l.get("msg", "")) for l in daemons[name].logs()
                if str(l.get("msg", "")).startswith(prefix)]

    revokes = msgs("a", "partitions revoked")
    log(f"a: {revokes}")
    bound = PARTS * max(1, len(revokes))
    log(f"ids delivered by both daemons: {len(both)} (bound {bound}); "
        f"{len(reqs) - N} duplicate deliveries in all")
    c.check(len(both) <= bound, f"ids delivered by both daemons <= {bound}", both[:20])
    overlaps = []
    for p in range(PARTS):
        span = {name: [(r.t_arrival, r.t_done) for r in reqs
                       if r.header("x-daemon") == name and r.ce_id.split("/")[1] == str(p)]
                for name in daemons}
        for a0, a1 in span["a"]:
            for b0, b1 in span["b"]:
                if a0 < b1 and b0 < a1:
                    overlaps.append((p, a0, a1, b0, b1))
    c.eq(overlaps[:5], [], "no two deliveries of one partition overlap across the daemons")
    ok = wait_until(lambda: (lambda o: o[0] == o[1])(kafka.offsets("rb", "rb")), 30 * SLOW,
                    interval=1.0)
    c.check(ok, "committed offsets reach the end", kafka.offsets("rb", "rb"))
    for name, d in daemons.items():
        d.terminate()
        c.eq(d.wait(30), 0, f"{name} exits 0")


run_kafka_test(body)
