"""Kafka: the fetcher is restarted when librdkafka's prefetch limit stopped it.

librdkafka 2.0.2 stops fetching while its consumer queue holds queued.min.messages records and
looks again only when its broker thread wakes for something else (at worst after 1 s); the
source then seeks the partition to its own position, which starts the fetcher at once and
purges nothing (sources/kafka.c, kick_fetcher). With a prefetch of 25 records, max_inflight 20,
one record batch per partition and fetch, and a backlog of N 3 KiB records on 2 partitions, the daemon must report that it restarted the
fetcher (the debug line "fetcher wake-ups: K" at exit, K > 0; without the wake-up there is no
such line) and, since a seek must never skip or repeat a record, every record reaches the
function, each exactly once (no failure is injected, so a duplicate would be the seek's), and
the group's committed offsets end at the end of both partitions. Nothing is asserted on time.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, trigger,  # noqa: E402
                     wait_until)
from kafka_fixture import KafkaBroker, kafka_source, run_kafka_test  # noqa: E402

N = 2000
PAD = "p" * 3000  # 6 MB in all: several record batches per partition


def body(c):
    kafka = KafkaBroker()
    kafka.create_topic("pre", 2)
    kafka.produce("pre", [(f"k{i % 11}", json.dumps({"i": i, "pad": PAD})) for i in range(N)])
    fn = FunctionServer()
    # One record batch per partition and fetch (fetch.message.max.bytes below a batch): a
    # fetch brings a few hundred records, more than the prefetch limit, which then stops it.
    src = kafka_source(kafka, ["pre"], group="pre", queued_min_messages=25,
                       fetch_message_max_bytes=4096)
    src["max_inflight"] = 20
    cfg = config({"in": src}, {"fn": http_sink(fn.url)},
                 [trigger("t", "in", "fn", concurrency=8)])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(30), "daemon ready")

    def seen():
        out = []
        for r in fn.snapshot():
            if r.completed and r.status and 200 <= r.status < 300:
                out.append(json.loads(r.body)["i"])
        return out

    def committed_at_end():
        committed, end = kafka.offsets("pre", "pre")
        return committed == end and sum(end.values()) == N

    c.check(wait_until(lambda: len(set(seen())) >= N, 180 * SLOW, interval=0.2),
            f"all {N} records delivered")
    c.check(wait_until(committed_at_end, 60 * SLOW, interval=0.5),
            "committed offsets at the end of both partitions")
    got = seen()
    c.eq(sorted(set(got)), list(range(N)), "every record, none missing")
    c.eq(len(got), N, "none delivered twice (a seek to the position repeats nothing)")
    td.terminate()
    c.eq(td.wait(30), 0, "clean exit")
    kicks = [int(m.group(1)) for l in td.logs()
             for m in [re.search(r"fetcher wake-ups: (\d+)", l.get("msg", ""))] if m]
    c.check(len(kicks) == 1 and kicks[0] > 0,
            f"the fetcher was restarted when the prefetch limit stopped it (wake-ups: {kicks})")
    c.eq(td.sanitizer_reports(), [], "no sanitizer report")


run_kafka_test(body)
