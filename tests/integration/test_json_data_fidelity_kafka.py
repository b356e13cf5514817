"""JSON data as written, from Kafka: structured-mode records (header content-type
application/cloudevents+json, the event JSON as the value, decoded by broker/wire/ce_kafka.c
through td_ce_from_json) carry pretty-printed data with numbers a double cannot hold exactly
(json_fidelity.py). The binary-mode function must get the data member's text byte for byte, the
structured-mode function and a file dead-letter target the same numbers and strings without the
blanks between tokens; and the group's committed offsets must reach the end of the topic (each
record read once, delivered once to each trigger). One broker for every case."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOW, FunctionServer, Triggerd, config, make_tempdir, wait_until  # noqa: E402
from json_fidelity import (DATA, PRETTY_DATA, check_fidelity, dead_letter_file,  # noqa: E402
                           event, fidelity_sinks, fidelity_triggers, pretty_event, refuse_f)
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

TOPIC = "fidelity"
# (id, value, content-type header): the event on one line but for its data, the whole event
# pretty-printed with a trailing newline, and a content type with a parameter.
RECORDS = [("kafka-1", event("kafka-1"), "application/cloudevents+json"),
           ("kafka-2", pretty_event("kafka-2"), "application/cloudevents+json"),
           ("kafka-3", event("kafka-3"), "application/cloudevents+json; charset=utf-8")]
WANT = {"kafka-1": DATA, "kafka-2": PRETTY_DATA, "kafka-3": DATA}


def produce_file(kafka, key, value, content_type):
    """One record whose value is a whole file (kcat sends a file named on its command line as one
    message, newlines and all; its stdin mode would split the value at each newline)."""
    path = os.path.join(make_tempdir("td-fidelity-kafka-"), key + ".json")
    with open(path, "w") as f:
        f.write(value)
    subprocess.run(["kcat", "-b", kafka.bootstrap, "-P", "-t", TOPIC, "-k", key,
                    "-H", "content-type=" + content_type, "-X", "enable.idempotence=true",
                    "-X", "acks=all", path], check=True, capture_output=True, timeout=60 * SLOW)


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic(TOPIC, 1)
    for key, value, ct in RECORDS:
        produce_file(kafka, key, value, ct)
    # The records hold exactly what was written (read back by an independent client), so what
    # follows tests the daemon, not the producer.
    stored = {r.get("key"): r.get("payload") for r in kafka.consume(TOPIC)}
    c.eq(stored, {k: v for k, v, _ in RECORDS}, "the topic holds each event as written")

    fn = FunctionServer(refuse_f)
    dlfile = dead_letter_file()
    cfg = config(sources={"k": kafka_source(kafka, [TOPIC], group="fidelity")},
                 sinks=fidelity_sinks(fn.url, dlfile), triggers=fidelity_triggers("k"))
    td = Triggerd(cfg).start()
    if not c.check(td.wait_ready(30), "daemon ready"):
        return
    check_fidelity(c, fn, dlfile, WANT, 60 * SLOW, "Kafka")

    def caught_up():
        committed, end = kafka.offsets("fidelity", TOPIC)
        return committed == end and sum(end.values()) == len(RECORDS)

    c.check(wait_until(caught_up, 30 * SLOW, interval=1.0),
            "committed offsets reach the end of the topic", kafka.offsets("fidelity", TOPIC))
    td.terminate()
    c.eq(td.wait(30 * SLOW), 0, "exit 0")


run_kafka_test(body)
