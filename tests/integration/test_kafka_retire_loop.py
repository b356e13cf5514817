"""A reload that retires a Kafka source never holds up the loop thread while that source stops.

Stopping a Kafka source waits for its group-lag thread (kafka_lag.c), which may be inside a
bounded librdkafka request (metadata, committed offsets, watermarks: up to 3 s each), and for
its consumer to close (a last commit, leaving the group). Both used to be joined on the loop
thread (reload.c collect -> ops->stop), so while they waited no delivery, timer or reply ran
for the whole daemon.

The test freezes the Kafka broker (SIGSTOP: its sockets stay open and nothing answers, so
every request of the lag thread and of the consumer's close waits for its timeout), then a
reload removes the Kafka source while an HTTP ingress source stays. An event posted to the
ingress after the daemon logged "reloaded" must reach the function before the daemon logs
that the Kafka source finished stopping ("drained; stopped"): by order, not by a time limit.
Before the fix the loop was inside the stop when the event came, so the event could only be
delivered after that line (or, with the broker frozen long enough, not at all while it was
frozen). The retiring source's stop has a deadline, the reload's shutdown_grace (10 s here): with
the broker still frozen, its consumer close is given up and the source finishes stopping then
(before, it waited for the broker with no bound, so a replacement of a source moved off a dead
broker never started). Then the broker resumes, the daemon still serves and shuts down cleanly
(exit 0)."""

import os
import signal
import sys
import threading

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, frozen, http_sink,  # noqa: E402
                     log, trigger, wait_until)
from http_util import request, with_http  # noqa: E402
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402


def post_event(port, eid, out):
    headers = {"ce-specversion": "1.0", "ce-id": eid, "ce-source": "/test",
               "ce-type": "com.example.in", "Content-Type": "application/json"}
    try:
        out[eid] = request(port, "POST", "/events", body=b'{"x":1}', headers=headers,
                           timeout=300 * SLOW)[0]
    except Exception as e:  # noqa: BLE001 (reported by the check on out)
        out[eid] = repr(e)


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("rt", 1)
    fn = FunctionServer()

    def cfg_with(kafka_too):
        sources = {"in": {"http": {"path": "/events"}}}
        triggers = [trigger("ti", "in", "fn")]
        if kafka_too:
            sources["k"] = kafka_source(kafka, ["rt"], group="rg")
            triggers.append(trigger("tk", "k", "fn"))
        cfg = config(sources, {"fn": http_sink(fn.url)}, triggers)
        cfg["daemon"]["log"]["level"] = "info"
        return cfg

    first = cfg_with(True)
    port = with_http(first)
    td = Triggerd(first).start()
    c.check(td.wait_ready(60), "daemon ready")

    # One record through the Kafka source: the consumer holds its partition and the lag thread
    # asks through it.
    kafka.produce("rt", [("k", '{"n": 1}')])
    c.check(wait_until(lambda: len(fn.ok_ids()) >= 1, 60 * SLOW, interval=0.1),
            "the Kafka record delivered")
    answers = {}
    post_event(port, "before", answers)
    c.eq(answers.get("before"), 202, "an ingress event before the reload is delivered")

    def stopped_lines():
        return [l for l in td.logs() if l.get("source") == "k" and
                str(l.get("msg", "")).startswith("drained")]

    def delivered(eid):
        return eid in fn.ok_ids()

    # Freeze the broker for the retire; frozen() resumes it however the block ends.
    with frozen(kafka.proc.pid):
        second = cfg_with(False)
        second["daemon"]["http"] = first["daemon"]["http"]
        second["daemon"]["shutdown_grace"] = "10s"
        with open(td.config_path, "w") as f:
            f.write(yaml.safe_dump(second, sort_keys=False))
        td.signal(signal.SIGHUP)
        c.check(wait_until(lambda: any(str(l.get("msg", "")).startswith("reloaded")
                                       for l in td.logs()), 30 * SLOW, interval=0.05),
                "the reload retiring the Kafka source is done")
        # The Kafka source is idle: the reload's collect timer, due at once, starts stopping it.
        t = threading.Thread(target=post_event, args=(port, "during", answers), daemon=True)
        t.start()
        # Generous: before the fix the loop waited for the frozen broker and this never held
        # while it was frozen; that is the failure, reported below, not a speed limit.
        got = wait_until(lambda: delivered("during"), 120 * SLOW, interval=0.02)
        stopped_then = stopped_lines()
        c.check(got, "the ingress event posted during the retire reached the function while "
                "the Kafka broker was frozen")
        c.eq(stopped_then, [], "... before the Kafka source had finished stopping (the loop "
             "did not wait for the lag thread or the consumer close)")
        # A liveness bound, not a speed check: the deadline is 10 s after the drain; before the
        # fix this never held while the broker was frozen.
        c.check(wait_until(lambda: stopped_lines(), (10 + 30) * SLOW, interval=0.1),
                "the Kafka source finished stopping with its broker still frozen (its stop "
                "deadline: the reload's shutdown_grace)", stopped_lines())
        c.check(any(l.get("source") == "k" and "close given up" in str(l.get("msg", ""))
                    for l in td.logs()), "... its consumer close given up at the deadline")

    t.join(60 * SLOW)
    c.eq(answers.get("during"), 202, "the ingress answered 202 for the event")
    post_event(port, "after", answers)
    c.eq(answers.get("after"), 202, "an ingress event after the retire is delivered")
    # 202 is the ingress taking it; the delivery follows (under TSan, not always before the check)
    c.check(wait_until(lambda: delivered("after"), 30 * SLOW, interval=0.02),
            "... and reached the function")
    td.terminate()
    c.eq(td.wait(60 * SLOW), 0, "clean shutdown")
    c.eq(td.sanitizer_reports(), [], "no sanitizer reports")
    if c.failed:
        td.dump_tail(60)


if __name__ == "__main__":
    run_kafka_test(body)
