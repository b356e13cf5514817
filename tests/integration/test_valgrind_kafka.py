"""The daemon under valgrind (memcheck) with Kafka on both sides: a Kafka source (librdkafka's
consumer in a group, its lag thread, commits per batch) delivers to a function, and what the
function refuses is dead-lettered to a Kafka sink (a producer served on the loop); then a reload
that changes the source (it drains, commits and leaves, and a new consumer rejoins the group) and
the sink (the old generation is freed once drained), more records, and SIGTERM. Exit 0 means no
invalid access and no definite leak in that lifecycle (--error-exitcode=3); every record is
delivered or dead-lettered."""

import json
import os
import shutil
import signal
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SANITIZE, SKIP, FunctionServer, Triggerd, config, http_sink,  # noqa: E402
                     log, make_tempdir, trigger, wait_until)
from kafka_fixture import KafkaBroker, kafka_sink, kafka_source, run_kafka_test  # noqa: E402

N = 20


def body(c):
    if SANITIZE:
        log("SKIP: sanitizer build (valgrind and ASan do not mix)")
        return SKIP
    vg = shutil.which("valgrind")
    if not vg:
        log("SKIP: valgrind not installed")
        return SKIP
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
    vlog = os.path.join(make_tempdir("td-vg-"), "valgrind.log")
    td = Triggerd(cfg, name="triggerd (valgrind)",
                  wrapper=[vg, "--leak-check=full", "--errors-for-leak-kinds=definite",
                           "--error-exitcode=3", "--track-fds=no", f"--log-file={vlog}"])
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

    td.terminate()
    rc = td.wait(180)
    c.eq(rc, 0, "exit status under valgrind after SIGTERM (3 = memcheck errors)")
    try:
        report = open(vlog).read()
    except OSError:
        report = ""
    c.check("Memcheck" in report and "ERROR SUMMARY" in report,
            "the daemon really ran under memcheck (its report is complete)", f"{len(report)} bytes")
    summary = [l for l in report.splitlines() if "ERROR SUMMARY" in l or "definitely lost" in l
               or "All heap blocks were freed" in l or "still reachable" in l]
    log("valgrind: " + " | ".join(s.split("== ", 1)[-1] for s in summary))
    if rc != 0:
        log(report[-6000:])


if __name__ == "__main__":
    run_kafka_test(body)
