"""A poison message on a RabbitMQ source: one that always gets a final 400 on a trigger without a
dead_letter target. Before the fix it was nacked with requeue=1 at once and came straight back,
some 2 800 function calls a second, forever. Now:
- a released delivery is held for a growing delay (1 s, 2 s, 4 s ... up to 30 s) before it is
  requeued, and past the source's max_deliveries it is not delivered again: within ~10 s the
  function sees at most max_deliveries calls (+1 of slack), while other messages of the same queue
  flow unhindered;
- classic queue (the local delivery counter): after a reload that gives the trigger a dead_letter
  target, the next redelivery is dead-lettered with deadletterreason max_deliveries and the source
  queue ends empty;
- quorum queue (the broker's x-delivery-count): the count survives a restart of the daemon: a new
  daemon with a dead_letter target dead-letters the message at once, without calling the function.
Also (regression, audit item 4): a plain `triggerd publish amqp://...` without --content-type sets
the content type its --help promises, picked from the data.
"""

import os
import signal
import sys
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from rabbitmq_fixture import *  # noqa: E402,F401,F403

MAX = 3


def behaviour(req, attempt):
    if req.body.startswith(b'{"poison"'):
        return (400, {"Content-Type": "text/plain"}, b"never", 0)
    return (200, {}, b"", 0)


def hdrs(props):
    return {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
            for k, v in (props.headers or {}).items()}


def calls(fn, mid):
    return len(fn.by_id().get(mid, []))


def dead_letters(ch, queue):
    return [(hdrs(p), b) for p, b in read_all(ch, queue, timeout=0.5)]


def body(c):
    rmq = RabbitMQServer()
    ch = rmq.channel()
    declare_queue(ch, "poison-in")
    declare_queue(ch, "qq-in", arguments={"x-queue-type": "quorum"})
    declare_queue(ch, "dead")
    ch.exchange_declare("dl-ex", "direct", durable=True)
    ch.queue_bind("dead", "dl-ex", routing_key="dead")
    fn = FunctionServer(behaviour)

    def cfg(dead_letter, queue="poison-in", max_deliveries=MAX):
        d = {"dead_letter": "deadq"} if dead_letter else {}
        return config(
            sources={"s": rabbit_source(rmq.url, queue, prefetch=20,
                                        max_deliveries=max_deliveries)},
            sinks={"fn": http_sink(fn.url), "deadq": rabbit_sink(rmq.url, "dl-ex", "dead")},
            triggers=[trigger("t", "s", "fn", retry=1, **d)])

    # ---- classic queue: the local counter ----
    td = Triggerd(cfg(False)).start()
    c.check(td.wait_ready(20), "daemon ready")
    t0 = time.monotonic()
    poison = publish_many(ch, "poison-in", 1, body_fn=lambda i: b'{"poison": true}',
                          props_fn=lambda i: pika.BasicProperties(
                              message_id="poison-1", delivery_mode=2,
                              content_type="application/json"))[0]
    good = publish_many(ch, "poison-in", 40, props_fn=lambda i: pika.BasicProperties(
        message_id=f"good-{i}", delivery_mode=2, content_type="application/json"))
    c.check(wait_until(lambda: set(good) <= fn.ok_ids(), 10 * SLOW),
            "the other messages flow while the poison message bounces",
            len(set(good) & fn.ok_ids()))
    time.sleep(max(0.0, 10 - (time.monotonic() - t0)))
    n10 = calls(fn, poison)
    log(f"poison message: {n10} function calls in 10 s (max_deliveries {MAX})")
    c.check(1 <= n10 <= MAX + 1, "at most max_deliveries (+1) function calls in ~10 s", n10)
    c.check(any("max_deliveries" in l.get("msg", "") for l in td.logs()),
            "giving up on it is logged with reason max_deliveries")
    c.eq(sum(rmq.queue_counts("poison-in") or (9, 9)), 1, "only the poison message is left")

    # give the trigger a dead_letter target: the next redelivery is dead-lettered
    with open(td.config_path, "w") as f:
        f.write(yaml.safe_dump(cfg(True), sort_keys=False))
    td.signal(signal.SIGHUP)
    c.check(wait_until(lambda: any(str(l.get("msg", "")).startswith("reloaded")
                                   for l in td.logs()), 10 * SLOW), "reloaded")
    c.check(wait_drained(rmq, "poison-in", 45), "classic: the source queue ends empty",
            rmq.queue_counts("poison-in"))
    dead = dead_letters(ch, "dead")
    c.eq([(h.get("cloudEvents:id"), h.get("cloudEvents:deadletterreason")) for h, _ in dead],
         [(poison, "max_deliveries")], "classic: dead-lettered once, reason max_deliveries")
    c.eq(calls(fn, poison), n10, "classic: no function call past max_deliveries")
    td.terminate()
    c.eq(td.wait(15 * SLOW), 0, "exit status after SIGTERM")

    # ---- quorum queue: the broker's x-delivery-count, across a restart of the daemon ----
    td2 = Triggerd(cfg(False, "qq-in", 2)).start()
    c.check(td2.wait_ready(20), "daemon 2 ready")
    qp = publish_many(ch, "qq-in", 1, body_fn=lambda i: b'{"poison": 2}',
                      props_fn=lambda i: pika.BasicProperties(
                          message_id="poison-qq", delivery_mode=2,
                          content_type="application/json"))[0]
    qgood = publish_many(ch, "qq-in", 10, props_fn=lambda i: pika.BasicProperties(
        message_id=f"qgood-{i}", delivery_mode=2, content_type="application/json"))
    c.check(wait_until(lambda: calls(fn, qp) >= 2, 15 * SLOW), "quorum: two deliveries",
            calls(fn, qp))
    c.check(wait_until(lambda: set(qgood) <= fn.ok_ids(), 10 * SLOW),
            "quorum: the other messages flow")
    time.sleep(4)
    nq = calls(fn, qp)
    c.eq(nq, 2, "quorum: max_deliveries 2 → 2 function calls")
    td2.terminate()
    c.eq(td2.wait(15 * SLOW), 0, "daemon 2 exit status")
    td3 = Triggerd(cfg(True, "qq-in", 2)).start()
    c.check(td3.wait_ready(20), "daemon 3 (with dead_letter) ready")
    c.check(wait_drained(rmq, "qq-in", 20), "quorum: the source queue ends empty",
            rmq.queue_counts("qq-in"))
    dead = dead_letters(ch, "dead")
    c.eq([(h.get("cloudEvents:id"), h.get("cloudEvents:deadletterreason")) for h, _ in dead],
         [(qp, "max_deliveries")], "quorum: dead-lettered at once after the restart")
    c.eq(calls(fn, qp), nq, "quorum: the new daemon never called the function with it")
    td3.terminate()
    c.eq(td3.wait(15 * SLOW), 0, "daemon 3 exit status")

    # ---- triggerd publish: a content type picked from the data ----
    declare_queue(ch, "pub")
    base = rmq.url + "/"
    for data, want in (('{"a": 1}', "application/json"), ("hello", "text/plain; charset=utf-8"),
                       (b"\xff\x00\xfe", "application/octet-stream")):
        r = run_cli(["publish", base + "?routing_key=pub"], input=data)
        c.eq(r.returncode, 0, f"publish {data!r}")
        got = read_all(ch, "pub", timeout=2)
        c.eq([p.content_type for p, _ in got], [want], f"content type of {data!r}")
    r = run_cli(["publish", base + "?routing_key=pub", "--data", "x", "--content-type", "a/b"])
    c.eq([p.content_type for p, _ in read_all(ch, "pub", timeout=2)], ["a/b"],
         "--content-type wins")


run_rabbitmq_test(body)
