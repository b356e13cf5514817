"""RabbitMQ source, healthy path, against a real node: 5 000 messages all reach the function once,
the queue ends empty with nothing unacknowledged; the source declares its queue, exchange and binding
(durable, x-queue-type quorum) itself; the CloudEvents AMQP binding (binary with cloudEvents: and
cloudEvents_ headers, structured, wrapped with message-id / per-delivery ids, time, datacontenttype and header
extensions); `triggerd publish amqp://` (plain and CloudEvent) arrives; `triggerd check` accepts the
file and refuses a retry policy longer than consumer_timeout; amqps:// with peer verification (the test
CA via cacertfile works, the system CAs do not), TLS 1.2 or newer."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from rabbitmq_fixture import *  # noqa: E402,F401,F403

N = 5000


def body(c):
    rmq = RabbitMQServer(tls=True)
    ch = rmq.channel()
    declare_queue(ch, "jobs")
    declare_queue(ch, "tlsq")
    fn = FunctionServer()
    cfg = config(
        sources={"jobs": rabbit_source(rmq.url, "jobs", prefetch=200),
                 "tls": rabbit_source(f"amqps://guest:guest@localhost:{rmq.tls_port}/%2f"
                                      f"?cacertfile={rmq.ca}", "tlsq"),
                 "decl": rabbit_source(rmq.url, "decl", declare={
                     "durable": True, "arguments": {"x-queue-type": "quorum"},
                     "exchange": "decl-ex", "exchange_type": "topic",
                     "bindings": ["orders.#"]})},
        sinks={"fn": http_sink(fn.url), "fn2": http_sink(fn.url + "decl"),
               "fn3": http_sink(fn.url + "tls")},
        triggers=[trigger("t1", "jobs", "fn", etype="com.example.job", esource="/jobs",
                          concurrency=64),
                  trigger("t2", "decl", "fn2"), trigger("t3", "tls", "fn3")])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(20), "daemon ready (connected, consuming)")

    r = run_cli(["check", "-c", td.config_path])
    c.eq(r.returncode, 0, "triggerd check accepts the file " + r.stderr[-300:])

    t0 = time.monotonic()
    ids = publish_many(ch, "jobs", N)
    log(f"published {N} in {time.monotonic() - t0:.1f}s")
    ok = wait_until(lambda: set(ids) <= fn.ok_ids("/"), 120 * SLOW, interval=0.1,
                    desc="all 5000 delivered")
    log(f"delivered after {time.monotonic() - t0:.1f}s")
    c.check(ok, "every message reached the function with 2xx", len(set(ids) & fn.ok_ids("/")))
    c.check(wait_drained(rmq, "jobs", 20), "queue empty with no unacked messages",
            rmq.queue_counts("jobs"))
    byid = fn.by_id("/")
    dups = sum(len(byid.get(i, [])) - 1 for i in ids if byid.get(i))
    c.eq(dups, 0, "no duplicates on the healthy path")
    sample = byid[ids[7]][0]
    c.eq((sample.ce("id"), sample.ce("type"), sample.ce("source"), sample.header("content-type"),
          sample.body), (ids[7], "com.example.job", "/jobs", "application/json", b'{"n": 7}'),
         "wrapped: id = message-id, type/source from the trigger, content type and body kept")

    # The declared quorum queue, bound to a topic exchange.
    ch2 = rmq.channel()
    ch2.confirm_delivery()
    for i in range(20):
        ch2.basic_publish("decl-ex", f"orders.eu.{i}", b"x%d" % i,
                          pika.BasicProperties(message_id=f"d{i}", delivery_mode=2))
    ok = wait_until(lambda: {f"d{i}" for i in range(20)} <= fn.ok_ids("/decl"), 30 * SLOW,
                    desc="declared queue delivered")
    c.check(ok, "declare: exchange + binding + quorum queue created and consumed")
    r = rmq.ctl("list_queues", "name", "type", "durable", check=False)
    c.check(any(l.split("\t")[:3] == ["decl", "quorum", "true"] for l in r.stdout.splitlines()),
            "declared queue is a durable quorum queue", r.stdout.strip())
    c.check(wait_drained(rmq, "decl", 10), "declared queue drained")

    # The binding: binary (both prefixes), structured, wrapped without message-id.
    ch.basic_publish("", "jobs", b'{"a":1}', pika.BasicProperties(
        content_type="application/json", timestamp=1700000000, delivery_mode=2,
        headers={"cloudEvents:specversion": "1.0", "cloudEvents:id": "bin-1",
                 "cloudEvents:type": "com.example.bin", "cloudEvents:source": "/bin",
                 "cloudEvents:myext": "v1", "cloudEvents:count": 42}))
    ch.basic_publish("", "jobs", b"hello", pika.BasicProperties(
        content_type="text/plain", headers={"cloudEvents_specversion": "1.0",
                                            "cloudEvents_id": "bin-2", "cloudEvents_type": "t2",
                                            "cloudEvents_source": "/s2"}))
    ch.basic_publish("", "jobs", json.dumps({"specversion": "1.0", "id": "st-1", "type": "st",
                                             "source": "/st", "data": {"k": "v"}}).encode(),
                     pika.BasicProperties(content_type="application/cloudevents+json"))
    ch.basic_publish("", "jobs", b"no-id-body", pika.BasicProperties(
        timestamp=1700000000, content_type="text/plain",
        headers={"X-Tenant": "acme", "retries": 3, "flag": True}))
    want = {"bin-1", "bin-2", "st-1"}
    wait_until(lambda: want <= fn.ok_ids("/") and fn.count("/") >= N + 4, 20 * SLOW)
    byid = fn.by_id("/")
    b1 = byid.get("bin-1", [None])[0]
    c.check(b1 is not None and b1.ce("type") == "com.example.bin" and b1.ce("myext") == "v1"
            and b1.ce("count") == "42" and b1.body == b'{"a":1}',
            "binary mode (cloudEvents: prefix) keeps attributes, typed extension and data",
            b1 and b1.headers)
    b2 = byid.get("bin-2", [None])[0]
    c.check(b2 is not None and b2.ce("source") == "/s2" and b2.body == b"hello",
            "binary mode (cloudEvents_ prefix)")
    s1 = byid.get("st-1", [None])[0]
    c.check(s1 is not None and s1.ce("type") == "st" and json.loads(s1.body) == {"k": "v"},
            "structured mode (application/cloudevents+json)")
    # Without message-id, id_from: delivery (the default): amqp:QUEUE/TOKEN/TAG, unique per
    # delivery (test_rabbitmq_ids.py covers body_hash and streams).
    w = next((r for r in fn.snapshot("/") if r.body == b"no-id-body"), None)
    c.check(w is not None and w.ce_id.startswith("amqp:jobs/") and
            w.ce("time") == "2023-11-14T22:13:20.000Z" and
            w.ce("xtenant") == "acme" and w.ce("retries") == "3" and w.ce("flag") == "true" and
            w.header("content-type") == "text/plain",
            "wrapped without message-id: id = amqp:jobs/..., time from timestamp, "
            "headers as extensions", w and w.headers)

    # triggerd publish amqp://
    base = f"amqp://guest:guest@127.0.0.1:{rmq.port}/%2f/"
    r = run_cli(["publish", base + "?routing_key=jobs", "--data", "plain-pub",
                 "--header", "team=media", "--content-type", "text/plain"])
    c.eq(r.returncode, 0, "publish plain exits 0 " + r.stderr)
    plain_id = r.stdout.strip()
    r = run_cli(["publish", base + "?routing_key=jobs", "--data", '{"x":1}', "--ce-type", "pub.t",
                 "--ce-source", "/pub", "--ce-id", "pub-1", "--header", "tenant=acme"])
    c.eq(r.returncode, 0, "publish CloudEvent exits 0 " + r.stderr)
    r = run_cli(["publish", base + "?routing_key=nowhere", "--data", "x"])
    c.check(r.returncode != 0 and "unroutable" in r.stderr,
            "publish to an unbound routing key fails (mandatory return)", r.stderr.strip())
    wait_until(lambda: {"pub-1", plain_id} <= fn.ok_ids("/"), 20 * SLOW)
    byid = fn.by_id("/")
    p1 = byid.get("pub-1", [None])[0]
    c.check(p1 is not None and p1.ce("type") == "pub.t" and p1.ce("tenant") == "acme" and
            json.loads(p1.body) == {"x": 1}, "published CloudEvent arrives in binary mode")
    p0 = byid.get(plain_id, [None])[0]
    c.check(p0 is not None and p0.body == b"plain-pub" and p0.ce("team") == "media",
            "published plain message arrives wrapped with its header")
    c.check(wait_drained(rmq, "jobs", 10), "queue drained at the end", rmq.queue_counts("jobs"))

    # TLS: peer verification with the test CA works; without it (system CAs) the connection is
    # refused by the verification, and the daemon never reports ready.
    publish_many(ch, "tlsq", 5)
    c.check(wait_until(lambda: {f"tlsq-{i}" for i in range(5)} <= fn.ok_ids("/tls"), 20 * SLOW),
            "amqps:// with cacertfile: consumed over TLS with peer verification")
    c.check(wait_drained(rmq, "tlsq", 10), "TLS queue drained")
    r = rmq.ctl("list_connections", "peer_port", "ssl", "ssl_protocol", check=False)
    c.check(any(l.split("\t")[1:2] == ["true"] and l.split("\t")[2] in ("tlsv1.2", "tlsv1.3")
                for l in r.stdout.splitlines() if "\t" in l),
            "the broker sees a TLS 1.2+ connection", r.stdout.strip())
    noca = config(sources={"tls": rabbit_source(
        f"amqps://guest:guest@localhost:{rmq.tls_port}/%2f", "tlsq")},
        sinks={"fn": http_sink(fn.url)}, triggers=[trigger("t", "tls", "fn")])
    td_noca = Triggerd(noca, name="no-ca").start()
    c.check(not td_noca.wait_ready(4), "amqps:// without the CA: not ready (verification fails)")
    c.check(any("tlsq" in l.get("msg", "") and ("SSL" in l.get("msg", "") or "verif" in
                                                 l.get("msg", "").lower())
                for l in td_noca.logs()), "the verification failure is logged",
            [l.get("msg") for l in td_noca.logs()][-3:])
    td_noca.terminate()
    c.eq(td_noca.wait(15 * SLOW), 0, "the unverified daemon exits 0 on SIGTERM")

    # consumer_timeout guard
    bad = dict(cfg)
    bad["triggers"] = [trigger("slow", "jobs", "fn", retry=100, backoff_max="1m",
                               retry_after_max="1m")]
    bad_td = Triggerd(bad, name="bad")
    r = run_cli(["check", "-c", bad_td.config_path])
    c.check(r.returncode == 2 and "consumer_timeout" in r.stderr,
            "check refuses a retry policy that can hold a delivery past consumer_timeout",
            r.stderr.strip()[:300])
    bad_td.start()
    c.eq(bad_td.wait(20 * SLOW), 2, "run refuses it too")

    td.terminate()
    c.eq(td.wait(15 * SLOW), 0, "exit status after SIGTERM")
    c.check(rmq.consumers("jobs") == 0, "consumer gone after exit")


run_rabbitmq_test(body)
