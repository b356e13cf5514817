"""The daemon under valgrind (memcheck) with RabbitMQ on both sides: a RabbitMQ source (its own
thread, rabbitmq-c's connection, batched acks) delivers to a function, and what the function
refuses is dead-lettered to a RabbitMQ sink (its publisher thread, confirms); then a reload that
changes the source (it drains and restarts) and the dead-letter sink (the old one is stopped and
freed once drained), more messages, and SIGTERM. Exit 0 means no invalid access and no definite
leak in that lifecycle (--error-exitcode=3); every message is delivered or dead-lettered, and
the queue ends empty."""

import os
import signal
import sys

import pika
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FunctionServer, Triggerd, config, http_sink, trigger, wait_until  # noqa: E402
from memcheck import memcheck_wrapper, skip, stop_and_judge  # noqa: E402
from rabbitmq_fixture import (RabbitMQServer, declare_queue, publish_many,  # noqa: E402
                              rabbit_sink, rabbit_source, read_all, run_rabbitmq_test)

N = 20


def body(c):
    wrapper, vlog = memcheck_wrapper()
    if not wrapper:
        return skip(vlog)
    rmq = RabbitMQServer()
    ch = rmq.channel()
    for q in ("in", "dead"):
        declare_queue(ch, q)
    fn = FunctionServer(lambda req, a: (400, {}, b"no", 0) if b'"bad"' in req.body
                        else (200, {}, b"ok", 0))

    def cfg_for(prefetch, routing_key):
        return config(sources={"q": rabbit_source(rmq.url, "in", prefetch=prefetch)},
                      sinks={"fn": http_sink(fn.url, timeout="10s"),
                             "dead": rabbit_sink(rmq.url, "", routing_key)},
                      triggers=[trigger("t1", "q", "fn", timeout="10s", backoff_delay="50ms",
                                        dead_letter="dead")])

    cfg = cfg_for(20, "dead")
    td = Triggerd(cfg, name="triggerd (valgrind)", wrapper=wrapper)
    td.start()
    c.check(td.wait_ready(120), "daemon ready under valgrind")

    def props(mid):
        return pika.BasicProperties(message_id=mid, delivery_mode=2,
                                    content_type="application/json")

    def run_batch(first):
        """N messages the function takes and one it refuses (400: dead-lettered); the ids."""
        ids = publish_many(ch, "in", N, lambda i: ('{"n": %d}' % (first + i)).encode(),
                           lambda i: props(f"m-{first + i}"))
        publish_many(ch, "in", 1, lambda i: b'{"bad": "yes"}', lambda i: props(f"bad-{first}"))
        return ids

    ids1 = run_batch(0)
    c.check(wait_until(lambda: set(ids1) <= fn.ok_ids() and rmq.drained("in"), 120,
                       interval=0.2), "first batch delivered and acked under valgrind")
    dead1 = read_all(ch, "dead", timeout=30)
    c.eq(len(dead1), 1, "the refused message dead-lettered to RabbitMQ")

    # The reload: a changed source (prefetch) drains and restarts; the changed sink's old
    # generation is stopped and freed once drained (reload.c collect, td_sinks_stopped).
    cfg2 = cfg_for(30, "dead")
    cfg2["sinks"]["dead"]["rabbitmq"]["exchange"] = "amq.direct"
    ch.queue_bind(queue="dead", exchange="amq.direct", routing_key="dead")
    cfg2["daemon"] = cfg["daemon"]
    with open(td.config_path, "w") as f:
        f.write(yaml.safe_dump(cfg2, sort_keys=False))
    td.signal(signal.SIGHUP)
    c.check(wait_until(lambda: any(str(l.get("msg", "")).startswith("reloaded") for l in td.logs())
                       and any(l.get("source") == "q" and
                               str(l.get("msg", "")).startswith("drained; restarting")
                               for l in td.logs()), 120, interval=0.2),
            "reloaded under valgrind; the source drained and restarted")
    ids2 = run_batch(100)
    c.check(wait_until(lambda: set(ids2) <= fn.ok_ids() and rmq.drained("in"), 120,
                       interval=0.2), "second batch delivered and acked under valgrind")
    dead2 = read_all(ch, "dead", timeout=30)
    c.eq(len(dead2), 1, "the refused message of the second batch dead-lettered through the new sink")

    stop_and_judge(c, td, vlog, 120)
    c.eq(rmq.queue_counts("in"), (0, 0), "queue 'in' empty: nothing ready, nothing unacked")


if __name__ == "__main__":
    run_rabbitmq_test(body)
