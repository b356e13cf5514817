"""Shutdown is bounded by shutdown_grace even when the Kafka broker does not answer, and loses
nothing.

Stopping a Kafka source closes its consumer: librdkafka revokes the partitions (our on_revoke
commits what was delivered) and leaves the group. With the broker frozen (SIGSTOP: its sockets
stay open and nothing answers) a synchronous commit or close waits for as long as the broker
does, so before the fix a SIGTERM'd daemon did not exit until the broker came back (a systemd
unit then waits for TimeoutStopSec and SIGKILLs, a pod for terminationGracePeriodSeconds).

The daemon here has two Kafka sources (two topics, two groups) and delivered every record
produced so far, whose offsets are stored but not committed yet (auto commit every 10 min), when
the broker freezes and the daemon gets SIGTERM with shutdown_grace 2s. It must exit (the bound is
a generous liveness check, grace + 15 s, stretched for sanitizers: a hang check, not a speed
limit) with the exit code README gives for a shutdown (0). Then the broker resumes, more records
are produced, and a new daemon on the same groups must deliver every record produced, counted
by its content: what the first daemon could not commit is delivered again (at least once),
nothing is lost."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, exits_within, frozen,  # noqa: E402
                     http_sink, log, trigger, wait_until)
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

TOPICS = ("sd1", "sd2")
GRACE_S = 2


def body(c):
    kafka = KafkaBroker()
    for t in TOPICS:
        kafka.create_topic(t, 2)
    fn = FunctionServer()

    sources = {f"k{i}": kafka_source(kafka, [t], group=f"sg{i}", auto_commit_interval_ms=600000)
               for i, t in enumerate(TOPICS)}
    triggers = [trigger(f"t{i}", f"k{i}", "fn") for i in range(len(TOPICS))]
    cfg = config(sources, {"fn": http_sink(fn.url)}, triggers, shutdown_grace=f"{GRACE_S}s")
    cfg["daemon"]["log"]["level"] = "info"

    produced = set()

    def produce(first, n):
        for t in TOPICS:
            kafka.produce(t, [(f"k{i}", f'{{"t": "{t}", "n": {i}}}') for i in range(first, first + n)])
            produced.update((t, i) for i in range(first, first + n))

    def seen():
        out = set()
        for r in fn.snapshot():
            if r.completed and r.status and 200 <= r.status < 300:
                try:
                    d = r.json()
                    out.add((d["t"], d["n"]))
                except Exception:  # noqa: BLE001 (not one of ours: ignored)
                    pass
        return out

    td = Triggerd(cfg).start()
    c.check(td.wait_ready(60 * SLOW), "daemon ready")
    produce(0, 10)
    c.check(wait_until(lambda: produced <= seen(), 60 * SLOW, interval=0.1),
            "every record delivered before the broker freezes", len(seen()))

    with frozen(kafka.proc.pid):
        td.terminate()
        bound = (GRACE_S + 15) * SLOW
        rc = exits_within(td, bound)
        c.check(rc is not None, f"SIGTERM'd with the broker frozen, the daemon exits (liveness "
                f"bound {bound:.0f} s: shutdown_grace {GRACE_S} s + 15 s)")
        if rc is not None:
            c.eq(rc, 0, "exit code of a shutdown (README: exit 0)")
            given_up = {l.get("source") for l in td.logs()
                        if str(l.get("msg", "")).startswith("consumer close given up")}
            c.eq(given_up, {"k0", "k1"}, "both sources gave their close up at the deadline "
                 "(the path this test is about was taken)")
    c.eq(td.sanitizer_reports(), [], "no sanitizer reports (first daemon)")
    if c.failed:
        td.dump_tail(60)

    # The broker answers again: more records, and a new daemon on the same groups.
    produce(10, 10)
    td2 = Triggerd(cfg, name="second").start()
    c.check(td2.wait_ready(60 * SLOW), "second daemon ready")
    got = wait_until(lambda: produced <= seen(), 120 * SLOW, interval=0.1)
    missing = sorted(produced - seen())
    c.check(got, f"every one of the {len(produced)} records produced reached the function at "
            "least once (nothing lost)", missing[:20])
    log(f"{len(fn.snapshot())} requests for {len(produced)} records")
    td2.terminate()
    c.eq(td2.wait(60 * SLOW), 0, "second daemon: clean shutdown")
    c.eq(td2.sanitizer_reports(), [], "no sanitizer reports (second daemon)")
    if c.failed:
        td2.dump_tail(60)


if __name__ == "__main__":
    run_kafka_test(body)
