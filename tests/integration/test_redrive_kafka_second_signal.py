"""`triggerd redrive` stops at once on a signal after an interruption also while it finishes with a
Kafka target whose broker does not answer, and loses nothing.

Redrive reads its signals through a signalfd on its loop (blocked in every thread). Once the loop
stopped (everything delivered, or a second signal) it frees the sinks and commits what it redrove
(a synchronous commit, then the consumer's close), and nothing read the signalfd any more: with a
frozen broker the commit waits for an answer (librdkafka's request timeout), and Ctrl-C did
nothing.

10 dead letters (CloudEvents published with `triggerd publish`, deadlettertrigger t) sit in a
Kafka topic. redrive sends them to a function that holds them; the broker freezes (SIGSTOP of the
JVM), the function answers them (200), and once every answer is written redrive gets SIGINT:
its loop (if still running) or its watcher says "again to stop now"; then a second SIGINT must end
it with exit 1 and "exiting now", within a liveness bound (10 s, stretched for sanitizers: a hang
check, not a speed limit). The broker resumes (and may then take the commits it held) and a
second redrive sends whatever was not committed and commits: every event reached the function with
a 2xx (by id, in = out) and the group's offset is at the end of the topic."""

import os
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, at_cleanup, config, exits_within,  # noqa: E402
                     frozen, http_sink, log, run_cli, trigger, triggerd_binary, wait_until)
from kafka_fixture import KafkaBroker, kafka_sink, kafka_source, run_kafka_test  # noqa: E402

N = 10
GROUP = "triggerd-redrive"
release = threading.Event()


def behaviour(req, attempt):
    if attempt == 1:
        release.wait(120)  # the test answers them once the broker is frozen
    return (200, {}, b"", 0)


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("dlq", 1)
    fn = FunctionServer(behaviour)
    at_cleanup(release.set)
    ids = [f"rd-{i}" for i in range(N)]
    for i, eid in enumerate(ids):
        r = run_cli(["publish", f"kafka://{kafka.bootstrap}/dlq", "--data", '{"n": %d}' % i,
                     "--ce-type", "com.example.test", "--ce-source", "/test", "--ce-id", eid,
                     "--header", "deadlettertrigger=t",
                     "--header", "deadletterreason=retries_exhausted"], timeout=60)
        if r.returncode != 0:
            c.check(False, "publish a dead letter", (r.returncode, r.stderr[-400:]))
            return
    cfg = config({"src": kafka_source(kafka, ["in"], group="g")},
                 {"fn": http_sink(fn.url, timeout="120s"), "dead": kafka_sink(kafka, "dlq")},
                 [trigger("t", "src", "fn", timeout="120s", dead_letter="dead")])
    cpath = Triggerd(cfg).config_path  # only for its trigger file: redrive reads it

    errpath = os.path.join(os.path.dirname(cpath), "redrive-1.err")
    errf = open(errpath, "wb")
    at_cleanup(errf.close)
    p = subprocess.Popen([triggerd_binary(), "redrive", "-c", cpath, "--from", "dead"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf)
    at_cleanup(lambda: p.poll() is None and p.kill())

    def err():
        with open(errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    held = wait_until(lambda: set(ids) <= {r.ce_id for r in fn.snapshot()}, 60 * SLOW,
                      interval=0.02)
    c.check(held, f"the {N} dead letters are at the function", len(fn.snapshot()))
    with frozen(kafka.proc.pid):
        release.set()
        answered = wait_until(lambda: sum(1 for r in fn.snapshot() if r.completed) >= N,
                              30 * SLOW, interval=0.01)
        c.check(answered, "the function answered them with the broker frozen")
        c.check(p.poll() is None, "redrive still finishing with the frozen broker (the path this "
                "test is about)", p.poll())
        p.send_signal(signal.SIGINT)
        asked = wait_until(lambda: "again to stop now" in err() or p.poll() is not None,
                           10 * SLOW, interval=0.01)
        c.check(asked and "again to stop now" in err(), "the first SIGINT was read (\"again to "
                "stop now\")", err()[-400:])
        p.send_signal(signal.SIGINT)
        bound = 10 * SLOW
        rc = exits_within(p, bound)
        c.check(rc is not None, f"a second SIGINT ends redrive while it finishes (liveness bound "
                f"{bound:.0f} s)")
        if rc is not None:
            c.eq(rc, 1, "exit code (entries left in the target)")
        c.check("exiting now" in err(), "said it exits now", err()[-400:])
        log(f"redrive stderr: {err().strip()[-300:]!r}")
    if "AddressSanitizer" in err() or "ThreadSanitizer" in err() or "runtime error:" in err():
        c.check(False, "no sanitizer reports (first redrive)", err()[-3000:])

    # The broker answers again: a second redrive sends what was not committed and commits.
    r = run_cli(["redrive", "-c", cpath, "--from", "dead"], timeout=120 * SLOW)
    c.check(r.returncode == 0 and "delivered" in r.stdout, "second redrive: exit 0",
            (r.returncode, r.stdout[-400:], r.stderr[-800:]))
    missing = sorted(set(ids) - fn.ok_ids())
    c.check(not missing, f"every one of the {N} dead letters reached the function with a 2xx "
            "(nothing lost)", missing)
    c.eq(len(fn.ok_ids() & set(ids)), N, "count in = count out (by id)")
    committed, end = kafka.offsets(GROUP, "dlq")
    c.eq(committed, end, "the group's committed offset is at the end of the topic")


run_kafka_test(body)
