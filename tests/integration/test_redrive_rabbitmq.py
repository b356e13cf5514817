"""triggerd redrive from a RabbitMQ dead-letter queue (a real RabbitMQ node).

A failing function makes the daemon dead-letter every message of a source queue to a RabbitMQ sink
(exchange dl-ex, routing key dead) whose dead letters sit in the queue `dead`. Then `triggerd redrive
--from deadq --queue dead`:
- without --queue it is a usage error (the sink names an exchange, not a queue);
- --dry-run lists them all and --reason with a reason nobody has selects none: both requeue
  everything (the queue holds them all, nothing unacknowledged);
- while the function still fails, every event goes back to the queue (the same ids, seen by a
  further dry run) and nothing is left unacknowledged;
- once the function is healthy, --limit 5 and then the rest deliver each event exactly once, without
  the dead-letter attributes, and the queue ends empty."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from rabbitmq_fixture import *  # noqa: E402,F401,F403

N = 20


def listed_ids(stdout):
    return sorted(re.findall(r"would redrive \S+ \(id (\S+), ", stdout))


def body(c):
    rmq = RabbitMQServer()
    ch = rmq.channel()
    declare_queue(ch, "in")
    declare_queue(ch, "dead")
    ch.exchange_declare("dl-ex", "direct", durable=True)
    ch.queue_bind("dead", "dl-ex", routing_key="dead")
    state = {"healthy": False}

    def behaviour(req, attempt):
        return (200, {}, b"", 0) if state["healthy"] else (503, {}, b"busy", 0)

    fn = FunctionServer(behaviour)
    cfg = config(sources={"src": rabbit_source(rmq.url, "in")},
                 sinks={"fn": http_sink(fn.url), "deadq": rabbit_sink(rmq.url, "dl-ex", "dead")},
                 triggers=[trigger("t", "src", "fn", retry=1, backoff_delay="50ms",
                                   dead_letter="deadq")])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(20), "daemon ready")
    ids = sorted(publish_many(ch, "in", N))
    ok = wait_drained(rmq, "in", 30) and wait_until(lambda: rmq.queue_counts("dead") == (N, 0),
                                                    30 * SLOW, interval=0.2)
    c.check(ok, "every message dead-lettered into the queue", rmq.queue_counts("dead"))
    td.terminate()
    c.eq(td.wait(20 * SLOW), 0, "daemon stopped")
    cpath = td.config_path

    r = run_cli(["redrive", "-c", cpath, "--from", "deadq"])
    c.check(r.returncode == 2 and "--queue" in r.stderr, "without --queue: usage error",
            (r.returncode, r.stderr[-300:]))
    r = run_cli(["redrive", "-c", cpath, "--from", "deadq", "--queue", "dead", "--dry-run"])
    c.check(r.returncode == 0 and "trigger t" in r.stdout, "dry run exit 0",
            (r.returncode, r.stdout[-300:], r.stderr[-300:]))
    c.eq(listed_ids(r.stdout), ids, "dry run lists every dead letter")
    c.eq(rmq.queue_counts("dead"), (N, 0), "dry run: all requeued")
    r = run_cli(["redrive", "-c", cpath, "--from", "deadq", "--queue", "dead", "--reason",
                 "no_such_reason"])
    c.check(r.returncode == 0 and f"{N} skipped" in r.stdout, "a reason nobody has selects none",
            (r.returncode, r.stdout[-300:], r.stderr[-300:]))
    c.eq(rmq.queue_counts("dead"), (N, 0), "skipped ones requeued")

    # Still failing: everything goes back to the queue.
    before = fn.count()
    r = run_cli(["redrive", "-c", cpath, "--from", "deadq", "--queue", "dead"], timeout=60)
    c.check(r.returncode == 0 and f"{N} dead-lettered again" in r.stdout,
            "still failing: dead-lettered again", (r.returncode, r.stdout[-400:], r.stderr[-800:]))
    c.check(fn.count() - before >= 2 * N, "the function was tried again, with the retry",
            fn.count() - before)
    c.eq(rmq.queue_counts("dead"), (N, 0), "the queue holds them all again, none unacknowledged")
    r = run_cli(["redrive", "-c", cpath, "--from", "deadq", "--queue", "dead", "--dry-run"])
    c.eq(listed_ids(r.stdout), ids, "the same events are back")
    c.check(r.stdout.count("retries_exhausted") == N, "back with fresh dead-letter attributes")

    # Healthy: --limit 5, then the rest; each event exactly once, stripped; the queue ends empty.
    state["healthy"] = True
    mark = fn.count()
    r = run_cli(["redrive", "-c", cpath, "--from", "deadq", "--queue", "dead", "--limit", "5"],
                timeout=60)
    c.check(r.returncode == 0 and "5 delivered" in r.stdout, "limit 5 delivered",
            (r.returncode, r.stdout[-400:], r.stderr[-800:]))
    c.eq(rmq.queue_counts("dead"), (N - 5, 0), "those 5 acked, the rest requeued")
    r = run_cli(["redrive", "-c", cpath, "--from", "deadq", "--queue", "dead"], timeout=60)
    c.check(r.returncode == 0 and f"{N - 5} delivered" in r.stdout, "the rest delivered",
            (r.returncode, r.stdout[-400:], r.stderr[-800:]))
    got = fn.snapshot()[mark:]
    c.eq(sorted(q.ce_id for q in got if q.status == 200), ids, "each event arrived exactly once")
    leaked = [k for q in got for k in q.headers if k.startswith("ce-deadletter")
              or k.startswith("ce-knativeerror")]
    c.check(not leaked, "dead-letter attributes stripped", leaked[:5])
    orig = {q.ce_id: (q.ce("type"), q.ce("source")) for q in fn.snapshot()[:before]}
    c.check(all(orig.get(q.ce_id) == (q.ce("type"), q.ce("source")) for q in got),
            "the events keep their type and source")
    c.check(rmq.drained("dead"), "the target is drained: the queue is empty",
            rmq.queue_counts("dead"))


run_rabbitmq_test(body)
