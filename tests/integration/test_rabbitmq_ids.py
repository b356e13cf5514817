"""CloudEvent ids of wrapped RabbitMQ messages (no message-id), against a real node:
- classic queue, `id_from: delivery` (the default): two messages with the same body get different ids,
  so a receiver deduplicating on source + id keeps both; after a redelivery (the daemon killed before
  acking) the message gets a new id;
- classic queue, `id_from: body_hash`: the same body gives the same id (sha256 of queue NUL body), also
  across a redelivery;
- stream queue: the broker's x-stream-offset is the id (`amqp:QUEUE/offset/N`), whatever id_from says;
- a message-id always wins;
- `triggerd check` refuses an unknown id_from value at its position."""

import hashlib
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from rabbitmq_fixture import *  # noqa: E402,F401,F403

BODY = b'{"same": "body"}'


def body(c):
    rmq = RabbitMQServer()
    ch = rmq.channel()
    declare_queue(ch, "cdel")
    declare_queue(ch, "chash")
    declare_queue(ch, "st", arguments={"x-queue-type": "stream"})
    gate = {"open": False}

    def behaviour(req, attempt):
        return (200, {}, b"", 0) if gate["open"] else (200, {}, b"", 30)

    fn = FunctionServer(behaviour)
    cfg = config(sources={"cdel": rabbit_source(rmq.url, "cdel"),
                          "chash": rabbit_source(rmq.url, "chash", id_from="body_hash"),
                          "st": rabbit_source(rmq.url, "st", id_from="body_hash")},
                 sinks={"fdel": http_sink(fn.url + "cdel", timeout="60s"),
                        "fhash": http_sink(fn.url + "chash", timeout="60s"),
                        "fst": http_sink(fn.url + "st")},
                 triggers=[trigger("tdel", "cdel", "fdel", timeout="60s"),
                           trigger("thash", "chash", "fhash", timeout="60s"),
                           trigger("tst", "st", "fst")])
    r = run_cli(["check", "-c", Triggerd(cfg).config_path])
    c.eq(r.returncode, 0, "check accepts id_from " + r.stderr[-300:])

    # First run: the function holds each request 30 s; the daemon is killed before acking, so
    # the classic-queue messages are redelivered to the second run.
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(20), "daemon ready")
    plain = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    for q in ("cdel", "chash", "st"):
        for _ in range(2):
            ch.basic_publish(exchange="", routing_key=q, body=BODY, properties=plain)
    ch.basic_publish(exchange="", routing_key="cdel", body=BODY,
                     properties=pika.BasicProperties(message_id="mid-1", delivery_mode=2))
    wait_until(lambda: fn.count("/cdel") >= 3 and fn.count("/chash") >= 2
               and fn.count("/st") >= 2, 20 * SLOW, desc="first deliveries seen")
    first = {q: [r.ce_id for r in fn.snapshot("/" + q)] for q in ("cdel", "chash", "st")}
    td.kill()
    gate["open"] = True

    dl = [i for i in first["cdel"] if i != "mid-1"]
    c.eq(len(dl), 2, "classic, delivery: both plain messages arrived")
    c.check(len(set(dl)) == 2 and all(i.startswith("amqp:cdel/") for i in dl),
            "classic, id_from delivery: equal bodies get different ids", dl)
    c.check("mid-1" in first["cdel"], "a message-id is the id", first["cdel"])
    hid = hashlib.sha256(b"chash\0" + BODY).hexdigest()
    c.eq(first["chash"], [hid, hid], "classic, id_from body_hash: equal bodies, equal ids")
    c.eq(sorted(first["st"]), ["amqp:st/offset/0", "amqp:st/offset/1"],
         "stream: the id is the x-stream-offset (id_from does not matter)")

    # Second run: the classic messages come back redelivered.
    td2 = Triggerd(cfg, name="triggerd-2").start()
    c.check(td2.wait_ready(20), "second daemon ready")
    wait_until(lambda: fn.count("/cdel") >= 6 and fn.count("/chash") >= 4, 20 * SLOW,
               desc="redeliveries seen")
    again = {q: [r.ce_id for r in fn.snapshot("/" + q)][len(first[q]):] for q in ("cdel", "chash")}
    re_dl = [i for i in again["cdel"] if i != "mid-1"]
    c.check(len(re_dl) == 2 and not set(re_dl) & set(dl),
            "classic, delivery: a redelivery gets a new id", (dl, re_dl))
    c.eq(again["chash"], [hid, hid], "classic, body_hash: a redelivery keeps its id")
    c.check(wait_drained(rmq, "cdel", 20) and wait_drained(rmq, "chash", 20),
            "classic queues drained")
    td2.terminate()
    c.eq(td2.wait(20 * SLOW), 0, "second daemon exits 0")

    bad = config(sources={"q": rabbit_source(rmq.url, "cdel", id_from="random")},
                 sinks={"f": http_sink(fn.url)}, triggers=[trigger("t", "q", "f")])
    r = run_cli(["check", "-c", Triggerd(bad).config_path])
    c.check(r.returncode == 2 and "'id_from' must be one of body_hash, delivery" in r.stderr
            and re.search(r"\.yaml:\d+:\d+:", r.stderr), "check refuses id_from: random at its "
            "position", r.stderr)


run_rabbitmq_test(body)
