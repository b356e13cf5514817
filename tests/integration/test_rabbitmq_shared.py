"""Two daemons on one RabbitMQ queue share the work: 4 000 messages, each daemon gets a real share,
every message reaches the function exactly once (nobody died), the queue drains.
Then hostile properties, each followed by an ordinary message: a 4 000-entry header table, nested
tables and arrays, invalid UTF-8 and NUL in a header value (message-id and content type are
repaired the same way; the unit tests cover them), a 100 KB header value,
a binary (non-UTF-8) body with a JSON content type, a binary-mode CloudEvent whose type is a table and a
structured one that is not JSON. Each is delivered (wrapped, unusable headers counted in
amqpheadersdropped) or dead-lettered with reason invalid_event; the daemon keeps running and the queue
drains."""

import http.client
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from rabbitmq_fixture import *  # noqa: E402,F401,F403

N = 4000
# The test function is Python's http.server, which refuses more than 100 request headers (431);
# a wrapped event may carry 128 header extensions plus its own attributes.
http.client._MAXHEADERS = 1000


def body(c):
    rmq = RabbitMQServer()
    ch = rmq.channel()
    declare_queue(ch, "shared")
    declare_queue(ch, "hostile")
    declare_queue(ch, "hdead")
    fn = FunctionServer(lambda req, a: (200, {}, b"", random.uniform(0.001, 0.004)))
    cfg = config(sources={"s": rabbit_source(rmq.url, "shared", prefetch=20),
                          "h": rabbit_source(rmq.url, "hostile", prefetch=5)},
                 sinks={"fn": http_sink(fn.url + "s"), "fnh": http_sink(fn.url + "h"),
                        "dead": rabbit_sink(rmq.url, "", "hdead")},
                 triggers=[trigger("t1", "s", "fn", concurrency=8),
                           trigger("th", "h", "fnh", dead_letter="dead")])
    a = Triggerd(cfg, name="daemon-a").start()
    b = Triggerd(cfg, name="daemon-b").start()
    c.check(a.wait_ready(20) and b.wait_ready(20), "both daemons ready")
    c.check(wait_until(lambda: rmq.consumers("shared") == 2, 10 * SLOW), "two consumers")
    ids = publish_many(ch, "shared", N)
    ok = wait_until(lambda: set(ids) <= fn.ok_ids("/s"), 120 * SLOW, interval=0.1,
                    desc="all delivered")
    c.check(ok, "every message delivered", len(set(ids) & fn.ok_ids("/s")))
    c.check(wait_drained(rmq, "shared", 20), "queue drained", rmq.queue_counts("shared"))
    byid = fn.by_id("/s")
    c.eq(sum(len(byid.get(i, [])) for i in ids), N, "each message delivered exactly once")
    # Which daemon delivered what: the request's connection is not visible here, so each daemon's
    # received counter comes from its debug log ("delivered" lines per daemon).
    na = sum(1 for l in a.logs() if l.get("msg", "").startswith("delivered"))
    nb = sum(1 for l in b.logs() if l.get("msg", "").startswith("delivered"))
    log(f"daemon a delivered {na}, daemon b {nb}")
    c.eq(na + nb, N, "the two daemons' deliveries add up")
    c.check(na >= N // 10 and nb >= N // 10, "both daemons took a real share", (na, nb))
    b.terminate()
    c.eq(b.wait(15 * SLOW), 0, "daemon b exits 0")

    # ---- hostile properties (daemon a) ----
    ch.confirm_delivery()
    P = pika.BasicProperties
    hostile = [
        ("huge-table", b'{"ok":1}', P(message_id="huge-table", headers={
            f"h{i}": f"v{i}" for i in range(4000)})),
        ("nested", b"{}", P(message_id="nested", headers={
            "tbl": {"a": {"b": {"c": [1, 2, {"d": "e"}]}}}, "arr": [1, "x", [2, [3]]], "ok": "yes"})),
        ("badutf8", b"plain", P(message_id="badutf8", content_type="text/plain",
                                headers={"bin": b"\xff\xfe\x00abc", "fine": "ok"})),
        ("bigvalue", b"x", P(message_id="bigvalue", headers={"big": "v" * 100000, "small": "s"})),
        ("binbody", bytes(range(256)) * 4, P(message_id="binbody",
                                              content_type="application/json")),
        ("ce-table", b"x", P(message_id="ce-table", headers={
            "cloudEvents:specversion": "1.0", "cloudEvents:id": "ce-table",
            "cloudEvents:source": "/x", "cloudEvents:type": {"nested": "table"}})),
        ("ce-notjson", b"{not json", P(message_id="ce-notjson",
                                        content_type="application/cloudevents+json")),
    ]
    for name, data, props in hostile:
        ch.basic_publish("", "hostile", data, props)
        ch.basic_publish("", "hostile", b'{"after": "%s"}' % name.encode(),
                         P(message_id=f"after-{name}"))
    expect_ok = {"huge-table", "nested", "badutf8", "bigvalue", "binbody"}
    expect_dead = {"ce-table", "ce-notjson"}
    after = {f"after-{n}" for n, _, _ in hostile}
    ok = wait_until(lambda: (expect_ok | after) <= fn.ok_ids("/h") and
                    rmq.queue_counts("hostile") == (0, 0), 30 * SLOW, interval=0.1)
    c.check(ok, "hostile messages delivered, each followed message delivered, queue drained",
            (sorted((expect_ok | after) - fn.ok_ids("/h")), rmq.queue_counts("hostile")))
    c.check(a.running(), "daemon a still running")
    byid = fn.by_id("/h")
    r = byid.get("huge-table", [None])[0]
    c.check(r is not None and int(r.ce("amqpheadersdropped") or 0) == 4000 - 128 and
            r.ce("h0") == "v0", "huge table: 128 headers kept as extensions, the rest counted",
            r and r.ce("amqpheadersdropped"))
    r = byid.get("nested", [None])[0]
    c.check(r is not None and r.ce("ok") == "yes" and r.ce("amqpheadersdropped") == "2" and
            r.ce("tbl") is None, "nested tables and arrays dropped and counted")
    r = byid.get("badutf8", [None])[0]
    c.check(r is not None and r.ce("bin") == "\ufffd\ufffd\ufffdabc" and r.ce("fine") == "ok",
            "invalid UTF-8 and NUL in a header value replaced by U+FFFD", r and r.ce("bin"))
    r = byid.get("bigvalue", [None])[0]
    c.check(r is not None and r.ce("big") is None and r.ce("small") == "s",
            "a 100 KB header value is dropped")
    r = byid.get("binbody", [None])[0]
    c.check(r is not None and r.body == bytes(range(256)) * 4 and
            r.header("content-type") == "application/json",
            "binary body with a JSON content type delivered byte for byte")
    dead = read_all(ch, "hdead")
    got = {}
    for p, d in dead:
        h = p.headers or {}
        got[p.message_id] = h.get("cloudEvents:deadletterreason")
        got[p.message_id] = got[p.message_id].decode() if isinstance(got[p.message_id], bytes) \
            else got[p.message_id]
    c.check(len(dead) == 2 and set(got.values()) == {"invalid_event"},
        "invalid CloudEvents dead-lettered with reason invalid_event", got)
    c.check(not (expect_dead & {r.ce_id for r in fn.snapshot("/h")}),
            "invalid CloudEvents never reached the function")
    a.terminate()
    c.eq(a.wait(15 * SLOW), 0, "daemon a exits 0")


run_rabbitmq_test(body)
