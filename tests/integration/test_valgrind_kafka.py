"""The daemon under valgrind (memcheck) with Kafka on both sides: a Kafka source (librdkafka's
consumer in a group, its lag thread, commits per batch) delivers to a function, and what the
function refuses is dead-lettered to a Kafka sink (a producer served on the loop); then a reload
that changes the source (it drains, commits and leaves, and a new consumer rejoins the group) and
the sink (the old generation is freed once drained), more records, and SIGTERM. Exit 0 means no
invalid access and no definite leak in that lifecycle (--error-exitcode=3); every record is
delivered or dead-lettered."""

import json
import os
import signal
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FunctionServer, Triggerd, config, http_sink, trigger, wait_until  # noqa: E402
from memcheck import memcheck_wrapper, skip, stop_and_judge  # noqa: E402
from kafka_fixture import KafkaBroker, kafka_sink, kafka_source, run_kafka_test  # noqa: E402

N = 20


def body(c):
    wrapper, vlog = memcheck_wrapper()
    if not wrapper:
        return skip(vlog)
    kafka = KafkaBroker()
    kafka.create_topic("in", 2)
    kafka.create_topic("dlq", 1)
    kafka.create_topic("dlq2", 1)
    fn = FunctionServer(lambda req, a: (400, {}, b"no", 0) if b'"bad"' in req.body
                        else (200, {}, b"ok", 0))

    def cfg_for(fetch_wait, dlq):
        return config(sources={"k": kafka_source(kafka, ["in"], group="vg",
                                                 fetch_wait_max_ms=fetch_wait)},
                      sinks={"fn": http_sink(fn.url, timeout="10s"),
                             "dead": kafka_sink(kafka, dlq)},
                      triggers=[trigger("t1", "k", "fn", timeout="10s", backoff_delay="50ms",
                                        dead_letter="dead")])

    cfg = cfg_for(100, "dlq")
    td = Triggerd(cfg, name="triggerd (valgrind)", wrapper=wrapper)
    td.start()
    c.check(td.wait_ready(180), "daemon ready under valgrind")

    def good_values():
        return {json.loads(r.body).get("n") for r in fn.snapshot() if r.body.startswith(b"{")
                and b'"bad"' not in r.body}

    kafka.produce("in", [(f"k{i}", json.dumps({"n": i})) for i in range(N)] +
                  [("bad", json.dumps({"bad": "yes", "n": -1}))])
    c.check(wait_until(lambda: set(range(N)) <= good_values() and
                       len(kafka.consume("dlq", timeout=30)) >= 1, 180, interval=0.5),
            "first batch delivered, the refused record dead-lettered to Kafka, under valgrind")

    # The reload: a changed source (a librdkafka property) drains, commits and leaves its group,
    # and its replacement joins; the sink's generation changes (another dead-letter topic).
    cfg2 = cfg_for(200, "dlq2")
    cfg2["daemon"] = cfg["daemon"]
    with open(td.config_path, "w") as f:
        f.write(yaml.safe_dump(cfg2, sort_keys=False))
    td.signal(signal.SIGHUP)
    c.check(wait_until(lambda: any(str(l.get("msg", "")).startswith("reloaded") for l in td.logs())
                       and any(l.get("source") == "k" and
                               str(l.get("msg", "")).startswith("drained; restarting")
                               for l in td.logs()), 180, interval=0.5),
            "reloaded under valgrind; the source drained and restarted")
    kafka.produce("in", [(f"k{i}", json.dumps({"n": i})) for i in range(100, 100 + N)] +
                  [("bad", json.dumps({"bad": "yes", "n": -2}))])
    c.check(wait_until(lambda: set(range(100, 100 + N)) <= good_values() and
                       len(kafka.consume("dlq2", timeout=30)) >= 1, 180, interval=0.5),
            "second batch delivered, its refused record dead-lettered through the new sink")
    c.eq(len(kafka.consume("dlq", timeout=30)), 1, "the first dead-letter topic holds one record")

    stop_and_judge(c, td, vlog, 180)


if __name__ == "__main__":
    run_kafka_test(body)
