"""JSON data reaches the function as the producer wrote it. A structured event (and a batch of
them) posted to the ingress carries pretty-printed data with numbers a double cannot hold exactly:
a 64-bit id (12345678901234567890), a long decimal and 7e777. The binary-mode function must get
the data member's text byte for byte; the structured-mode function must find the same numbers and
strings in its "data" member, without the blanks between tokens; a file dead-letter target must
hold each event on one line (JSON lines), and redriving that file must deliver the same text. A
structured entry of a Redis stream must reach its function with the same bytes as the ingress's.
Re-printing the data through a cJSON tree gave 1.2345678901234567e+19, 0.1 and null instead
(json_text.h), and embedding it with its newlines split the file's lines. The same data from Kafka
and RabbitMQ: test_json_data_fidelity_kafka.py and test_json_data_fidelity_rabbitmq.py."""

import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import request, with_http  # noqa: E402
from json_fidelity import COMPACT, DATA, event, file_lines  # noqa: E402

IDS = {"one", "two", "three"}


def body(c):
    rs = RedisServer()
    cl = rs.client()
    state = {"refuse": True}
    fn = FunctionServer(lambda req, a: (400 if req.path == "/f" and state["refuse"] else 200,
                                        {}, b"", 0))
    dlfile = os.path.join(make_tempdir("td-fidelity-"), "dead.jsonl")
    cfg = config(sources={"in": {"http": {"path": "/events"}}, "rin": redis_source(rs.url, "fid")},
                 sinks={"s": http_sink(fn.url + "s", mode="structured", timeout="10s"),
                        "b": http_sink(fn.url + "b", timeout="10s"),
                        "f": http_sink(fn.url + "f", timeout="10s"),
                        "r": http_sink(fn.url + "r", timeout="10s"),
                        "dlfile": {"file": {"path": dlfile}}},
                 triggers=[trigger("ts", "in", "s", timeout="10s"),
                           trigger("tb", "in", "b", timeout="10s"),
                           trigger("tf", "in", "f", timeout="10s", retry=0, dead_letter="dlfile"),
                           trigger("tr", "rin", "r", timeout="10s")])
    port = with_http(cfg)
    td = Triggerd(cfg).start()
    if not c.check(td.wait_ready(10), "daemon ready"):
        return

    st, _, _ = request(port, "POST", "/events", body=event("one").encode(),
                       headers={"Content-Type": "application/cloudevents+json"}, timeout=30 * SLOW)
    c.check(st in (200, 202), "structured event accepted", st)
    batch = "[%s,\n %s]" % (event("two"), event("three"))
    st, _, _ = request(port, "POST", "/events", body=batch.encode(),
                       headers={"Content-Type": "application/cloudevents-batch+json"},
                       timeout=30 * SLOW)
    c.check(st in (200, 202), "batch accepted", st)
    cl.xadd("fid", {"content-type": "application/cloudevents+json", "data": event("four")})

    c.check(wait_until(lambda: fn.ok_ids("/b") == IDS and fn.ok_ids("/s") == IDS
                       and len(file_lines(dlfile)) >= 3, 20 * SLOW),
            "three events at both functions and in the dead-letter file",
            (fn.ok_ids("/b"), fn.ok_ids("/s"), len(file_lines(dlfile))))
    c.check(wait_until(lambda: fn.ok_ids("/r") == {"four"}, 20 * SLOW), "the Redis entry delivered",
            fn.ok_ids("/r"))
    for r in fn.snapshot("/r"):
        c.eq(r.body.decode(), DATA, "Redis structured entry: the data as written")
    for r in fn.snapshot("/b"):
        c.eq(r.body.decode(), DATA, f"binary mode: {r.ce_id}'s body is the data as written")
    for r in fn.snapshot("/s"):
        text = r.body.decode()
        c.check(('"data":' + COMPACT) in text, f"structured mode: {r.ce_id}'s data member", text)
        c.eq(json.loads(text).get("id"), r.ce_id, f"structured mode: {r.ce_id} is valid JSON")
    lines = file_lines(dlfile)
    c.eq(len(lines), 3, "the dead-letter file holds one line per event")
    for line in lines:
        c.check(('"data":' + COMPACT) in line, "a dead letter's data member", line)
        c.check(json.loads(line).get("id") in IDS, "each line is one JSON event", line)
    td.signal(signal.SIGTERM)
    c.eq(td.wait(30 * SLOW), 0, "exit 0")

    # Redriven from the file, each event reaches the function with the same data text.
    state["refuse"] = False
    mark = fn.count("/f")
    r = run_cli(["redrive", "-c", td.config_path, "--from", "dlfile"], timeout=60)
    c.check(r.returncode == 0 and "3 delivered" in r.stdout, "file redrive delivered 3",
            (r.returncode, r.stdout, r.stderr[-500:]))
    got = [q for q in fn.snapshot("/f")[mark:] if q.status == 200]
    c.eq(sorted(q.ce_id for q in got), sorted(IDS), "each redriven event arrived once")
    for q in got:
        c.eq(q.body.decode(), COMPACT, f"redriven {q.ce_id}: the data text kept")
    c.eq(file_lines(dlfile), [], "the file target is empty afterwards")


run_test(body)
