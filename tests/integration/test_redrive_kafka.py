"""triggerd redrive from a Kafka dead-letter topic (a real Kafka 4.1 broker).

A failing function makes the daemon dead-letter every record of a source topic into a two-partition
topic. Then `triggerd redrive --from dead`:
- --dry-run lists them all and commits nothing for the group triggerd-redrive; --reason with a reason
  nobody has selects none and commits nothing;
- while the function still fails, every event goes back to the topic (read back with kcat: the same
  ids, again with the dead-letter attributes) and the group's committed offsets reach the end the
  topic had when the redrive started, not the new end;
- once the function is healthy, --limit 5 and then the rest deliver each event exactly once, without
  the dead-letter attributes, and the committed offsets reach the end of the topic."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, run_cli,  # noqa: E402
                     trigger, wait_until)
from kafka_fixture import (KafkaBroker, header_map, kafka_sink, kafka_source,  # noqa: E402
                           run_kafka_test)

N = 20
GROUP = "triggerd-redrive"


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("in", 1)
    kafka.create_topic("dlq", 2)
    state = {"healthy": False}

    def behaviour(req, attempt):
        return (200, {}, b"", 0) if state["healthy"] else (503, {}, b"busy", 0)

    fn = FunctionServer(behaviour)
    kafka.produce("in", [(f"k{i}", json.dumps({"n": i})) for i in range(N)])
    cfg = config({"src": kafka_source(kafka, ["in"], group="g")},
                 {"fn": http_sink(fn.url), "dead": kafka_sink(kafka, "dlq")},
                 [trigger("t", "src", "fn", retry=1, backoff_delay="50ms", dead_letter="dead")])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(30), "daemon ready")
    ok = wait_until(lambda: len(kafka.consume("dlq")) >= N, 60 * SLOW, interval=0.5)
    first = kafka.consume("dlq")
    c.check(ok and len(first) == N, "every record dead-lettered into the topic", len(first))
    ids = sorted(header_map(r).get("ce_id") for r in first)
    td.terminate()
    c.eq(td.wait(30), 0, "daemon stopped")
    cpath = td.config_path
    committed, end0 = kafka.offsets(GROUP, "dlq")
    c.eq(committed, {}, "the redrive group has no offsets yet")
    c.eq(sum(end0.values()), N, "the topic holds N records")

    r = run_cli(["redrive", "-c", cpath, "--from", "dead", "--dry-run"], timeout=60)
    c.check(r.returncode == 0 and r.stdout.count("would redrive") == N and "trigger t" in r.stdout,
            "dry run lists every dead letter", (r.returncode, r.stdout[-400:], r.stderr[-400:]))
    r = run_cli(["redrive", "-c", cpath, "--from", "dead", "--reason", "no_such_reason"],
                timeout=60)
    c.check(r.returncode == 0 and f"{N} skipped" in r.stdout, "a reason nobody has selects none",
            (r.returncode, r.stdout[-400:], r.stderr[-400:]))
    c.eq(kafka.offsets(GROUP, "dlq")[0], {}, "neither committed anything")

    # Still failing: everything goes back to the topic; the group moves to the old end.
    before = fn.count()
    r = run_cli(["redrive", "-c", cpath, "--from", "dead"], timeout=90)
    c.check(r.returncode == 0 and f"{N} dead-lettered again" in r.stdout,
            "still failing: dead-lettered again", (r.returncode, r.stdout[-400:], r.stderr[-800:]))
    c.check(fn.count() - before >= 2 * N, "the function was tried again, with the retry",
            fn.count() - before)
    committed, end1 = kafka.offsets(GROUP, "dlq")
    c.eq(committed, end0, "committed offsets at the end the topic had when the redrive began")
    recs = kafka.consume("dlq")
    again = [r for r in recs if r["offset"] >= end0[r["partition"]]]
    c.eq(sorted(header_map(r).get("ce_id") for r in again), ids, "the same events are back")
    c.check(all(header_map(r).get("ce_deadlettertrigger") == "t" and
                header_map(r).get("ce_deadletterreason") == "retries_exhausted" for r in again),
            "back with fresh dead-letter attributes")

    # Healthy: --limit 5, then the rest; each event exactly once, stripped.
    state["healthy"] = True
    mark = fn.count()
    r = run_cli(["redrive", "-c", cpath, "--from", "dead", "--limit", "5"], timeout=60)
    c.check(r.returncode == 0 and "5 delivered" in r.stdout, "limit 5 delivered",
            (r.returncode, r.stdout[-400:], r.stderr[-800:]))
    mid = kafka.offsets(GROUP, "dlq")[0]
    c.eq(sum(mid.values()) - sum(end0.values()), 5, "the group moved past those 5 only")
    r = run_cli(["redrive", "-c", cpath, "--from", "dead"], timeout=60)
    c.check(r.returncode == 0 and f"{N - 5} delivered" in r.stdout, "the rest delivered",
            (r.returncode, r.stdout[-400:], r.stderr[-800:]))
    got = fn.snapshot()[mark:]
    c.eq(sorted(q.ce_id for q in got if q.status == 200), ids, "each event arrived exactly once")
    leaked = [k for q in got for k in q.headers if k.startswith("ce-deadletter")
              or k.startswith("ce-knativeerror")]
    c.check(not leaked, "dead-letter attributes stripped", leaked[:5])
    committed, end2 = kafka.offsets(GROUP, "dlq")
    c.eq(end2, end1, "nothing new in the topic")
    c.eq(committed, end2, "the target is drained: committed offsets at the end of the topic")
    r = run_cli(["redrive", "-c", cpath, "--from", "dead"], timeout=60)
    c.check(r.returncode == 0 and "redriven 0 entries" in r.stdout, "a further redrive finds none",
            (r.returncode, r.stdout[-400:], r.stderr[-400:]))


run_kafka_test(body)
