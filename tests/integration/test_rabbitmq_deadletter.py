"""Dead letters from a RabbitMQ source, read back independently (pika basic.get):
- to a RabbitMQ sink (exchange + routing key, publisher confirms): a final 4xx dead-letters at once,
  an always-500 function after the retries; each dead letter is the original event in binary mode with
  the extension attributes (knativeerrordest/code/data, deadletterreason/attempts/trigger);
- `dead_letter: native`: basic.nack requeue=false, so the queue's own dead-letter exchange (declared by
  the source's `declare: arguments: x-dead-letter-exchange`) receives the original message, x-death and
  all; an invalid CloudEvent goes the same way without reaching the function;
- a RabbitMQ sink whose routing key is unbound: the publish is returned (mandatory); once the daemon
  has logged that return ("unroutable") for each message, and again after 10 such returns each, the
  source messages are all still unacknowledged and none is reported dead-lettered; after a queue is
  bound each dead letter arrives exactly once (3 in, 3 out), the function was called once per
  message, and the queue drains.
Every source queue ends empty with nothing unacknowledged."""

import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from rabbitmq_fixture import *  # noqa: E402,F401,F403

N = 60
REFUSALS = 10  # unroutable returns per message while the dead-letter target has no binding
BIG = (b"boom " * 400)[:2000]


def behaviour(req, attempt):
    if req.path.startswith("/always500"):
        return (500, {"Content-Type": "text/plain"}, BIG, 0)
    if req.body.startswith(b'{"bad"'):
        return (400, {"Content-Type": "application/json"}, b'{"error":"bad input"}', 0)
    return (200, {}, b"", 0)


def hdrs(props):
    return {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
            for k, v in (props.headers or {}).items()}


def body(c):
    rmq = RabbitMQServer()
    ch = rmq.channel()
    for q in ("dl-in", "five-in", "dead", "nat-dlq", "orphan-in"):
        declare_queue(ch, q)
    ch.exchange_declare("nat-dlx", "fanout", durable=True)
    ch.queue_bind("nat-dlq", "nat-dlx")
    ch.exchange_declare("dl-ex", "direct", durable=True)
    ch.queue_bind("dead", "dl-ex", routing_key="dead")
    ch.exchange_declare("orphan-ex", "direct", durable=True)
    fn = FunctionServer(behaviour)
    url500 = fn.url + "always500"
    cfg = config(
        sources={"dl": rabbit_source(rmq.url, "dl-in"), "five": rabbit_source(rmq.url, "five-in"),
                 "nat": rabbit_source(rmq.url, "nat-in", declare={
                     "arguments": {"x-dead-letter-exchange": "nat-dlx"}}),
                 "orphan": rabbit_source(rmq.url, "orphan-in")},
        sinks={"fn": http_sink(fn.url), "fn500": http_sink(url500),
               "deadq": rabbit_sink(rmq.url, "dl-ex", "dead"),
               "orphanq": rabbit_sink(rmq.url, "orphan-ex", "later")},
        triggers=[trigger("t1", "dl", "fn", retry=3, dead_letter="deadq"),
                  trigger("t2", "five", "fn500", retry=2, backoff_delay="50ms", backoff_max="100ms",
                          dead_letter="deadq"),
                  trigger("tn", "nat", "fn", retry=1, dead_letter="native"),
                  # short backoff: the dead letter is refused many times in a second or two
                  trigger("to", "orphan", "fn", dead_letter="orphanq", backoff_delay="50ms",
                          backoff_max="200ms")])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(20), "daemon ready")

    bad = {i for i in range(N) if i % 10 == 3}
    mk = lambda i: (b'{"bad": true, "n": %d}' % i) if i in bad else (b'{"n": %d}' % i)
    ids = publish_many(ch, "dl-in", N, body_fn=mk)
    ids5 = publish_many(ch, "five-in", 5)
    bad_ids = {ids[i] for i in bad}
    good_ids = set(ids) - bad_ids
    c.check(wait_drained(rmq, "dl-in", 30) and wait_drained(rmq, "five-in", 30),
            "source queues drained (delivered or dead-lettered, all acked)",
            (rmq.queue_counts("dl-in"), rmq.queue_counts("five-in")))
    dead = read_all(ch, "dead")
    byid = {}
    for props, b in dead:
        byid.setdefault(hdrs(props).get("cloudEvents:id"), []).append((props, b))
    c.eq(sorted(byid), sorted(bad_ids | set(ids5)), "dead letters = the 6 bad + the 5 always-500")
    c.eq(good_ids <= fn.ok_ids("/"), True, "good messages delivered")
    probs = []
    for mid in bad_ids:
        props, b = byid.get(mid, [(None, None)])[0]
        if props is None:
            continue
        h = hdrs(props)
        exp = {"cloudEvents:specversion": "1.0", "cloudEvents:type": "com.example.test",
               "cloudEvents:knativeerrordest": fn.url, "cloudEvents:deadletterreason": "final_status",
               "cloudEvents:deadlettertrigger": "t1",
               "cloudEvents:knativeerrordata": base64.b64encode(b'{"error":"bad input"}').decode()}
        for k, v in exp.items():
            if h.get(k) != v:
                probs.append(f"{mid}: {k}={h.get(k)!r} want {v!r}")
        if str(h.get("cloudEvents:knativeerrorcode")) != "400" or \
                str(h.get("cloudEvents:deadletterattempts")) != "1":
            probs.append(f"{mid}: code/attempts {h.get('cloudEvents:knativeerrorcode')!r} "
                         f"{h.get('cloudEvents:deadletterattempts')!r}")
        if props.delivery_mode != 2 or props.content_type != "application/json" or \
                json.loads(b).get("bad") is not True or props.message_id != mid:
            probs.append(f"{mid}: props/body {props.delivery_mode} {props.content_type} {b!r}")
    c.check(not probs, "final_status dead letters: binary-mode original + extension attributes, "
            "persistent", probs[:5])
    probs = []
    for mid in ids5:
        props, b = byid.get(mid, [(None, None)])[0]
        h = hdrs(props) if props else {}
        if (h.get("cloudEvents:deadletterreason"), str(h.get("cloudEvents:deadletterattempts")),
                str(h.get("cloudEvents:knativeerrorcode"))) != ("retries_exhausted", "3", "500"):
            probs.append(f"{mid}: {h}")
        elif base64.b64decode(h.get("cloudEvents:knativeerrordata", "")) != BIG[:1024]:
            probs.append(f"{mid}: errordata")
    c.check(not probs, "retries_exhausted dead letters: 3 attempts, code 500, body in errordata",
            probs[:3])
    c.eq(len(dead), len(bad_ids) + len(ids5), "no extra dead letters")

    # native
    nids = publish_many(ch, "nat-in", 30, body_fn=mk)
    ch.basic_publish("", "nat-in", b"x", pika.BasicProperties(
        message_id="invalid-ce", headers={"cloudEvents:specversion": "1.0",
                                          "cloudEvents:type": "t"}))
    c.check(wait_drained(rmq, "nat-in", 30), "native: source queue drained",
            rmq.queue_counts("nat-in"))
    nat = read_all(ch, "nat-dlq")
    got = sorted(p.message_id for p, _ in nat)
    want = sorted([nids[i] for i in range(30) if i in bad] + ["invalid-ce"])
    c.eq(got, want, "native: the 400s and the invalid CloudEvent are in the DLX's queue")
    probs = []
    for p, b in nat:
        death = (p.headers or {}).get("x-death") or []
        reason = death[0].get("reason") if death else None
        reason = reason.decode() if isinstance(reason, bytes) else reason
        if reason != "rejected":
            probs.append(f"{p.message_id}: x-death {death!r}")
        if p.message_id != "invalid-ce" and json.loads(b).get("bad") is not True:
            probs.append(f"{p.message_id}: body {b!r}")
    c.check(not probs, "native dead letters are the original messages, x-death reason rejected",
            probs[:3])
    c.check("invalid-ce" not in {r.ce_id for r in fn.snapshot()},
            "the invalid CloudEvent never reached the function")
    c.check(any("dead-lettered natively" in l.get("msg", "") for l in td.logs()),
            "native dead letters are logged with their reason")

    # unroutable dead-letter target: held (unacked) until a binding exists
    oids = publish_many(ch, "orphan-in", 3, body_fn=lambda i: b'{"bad": true}')

    def lines(mid, text):
        return [l for l in td.logs() if l.get("trigger") == "to" and l.get("id") == mid and
                text in l.get("msg", "")]

    # The daemon's own word first: each message's dead letter was returned unroutable. Only then
    # does "unacknowledged" say something: a message is unacknowledged from its delivery on,
    # whatever the daemon does. Checked again after REFUSALS returns each (the backoff at its cap
    # several times), so a daemon that gives up after a few retries and acks cannot pass.
    def refused(n):
        return all(len(lines(m, "unroutable")) >= n for m in oids)

    for n in (1, REFUSALS):
        c.check(wait_until(lambda n=n: refused(n), 15 * SLOW, desc=f"{n} unroutable returns each"),
                f"each dead letter was returned unroutable {n} time(s) (the daemon's log)",
                {m: len(lines(m, "unroutable")) for m in oids})
        c.eq(rmq.queue_counts("orphan-in"), (0, 3), f"after {n} refusal(s) each, all 3 source "
             "messages are held: unacknowledged, none ready, none gone")
        c.eq([m for m in oids if lines(m, "dead-lettered to")], [],
             "none was reported dead-lettered while the target was unroutable")
    declare_queue(ch, "orphan-dlq")
    ch.queue_bind("orphan-dlq", "orphan-ex", routing_key="later")
    c.check(wait_drained(rmq, "orphan-in", 30), "once bound, the dead letters go through and "
            "the source drains", rmq.queue_counts("orphan-in"))
    od = read_all(ch, "orphan-dlq")
    # Counted in and out: 3 published, and each arrives exactly once (a list, not a set: a
    # duplicate must show), with the daemon saying so once per message.
    got = sorted(hdrs(p).get("cloudEvents:id") for p, _ in od)
    calls = [r.ce_id for r in fn.snapshot("/") if r.ce_id in set(oids)]
    log(f"orphan: in={len(oids)} out={len(od)} function calls={len(calls)}")
    c.eq(got, sorted(oids), "every held dead letter arrives, exactly once")
    c.eq({m: len(lines(m, "dead-lettered to 'orphanq'")) for m in oids}, {m: 1 for m in oids},
         "the daemon reports each one dead-lettered once")
    c.eq(sorted(calls), sorted(oids),
         "the function was called once per message (holding retries the dead letter only)")

    td.terminate()
    c.eq(td.wait(15 * SLOW), 0, "exit status after SIGTERM")


run_rabbitmq_test(body)
