"""RabbitMQ queue depth on /metrics agrees with `rabbitmqctl list_queues`.

A function that holds every request and prefetch 10: of 50 messages 10 are delivered and
unacknowledged and 40 ready. triggerd_rabbitmq_queue_messages_ready{source,queue} equals
rabbitmqctl's messages_ready and triggerd_source_lag_messages too, triggerd_rabbitmq_queue_consumers
its consumers, and (AMQP has no unacknowledged count; the daemon knows its own)
triggerd_source_in_flight its messages_unacknowledged, stable over more than one 5 s lag
interval. A source whose queue does not exist shows no depth (absent, never 0). Released, every
message is delivered exactly once and both sides reach 0 ready. With the broker stopped the depth
samples disappear (unknown), never keep their last value."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import metric, metrics, with_http  # noqa: E402
from rabbitmq_fixture import *  # noqa: E402,F401,F403

N, WINDOW = 50, 10
READY, CONSUMERS = "triggerd_rabbitmq_queue_messages_ready", "triggerd_rabbitmq_queue_consumers"


def body(c):
    rmq = RabbitMQServer()
    ch = rmq.channel()
    declare_queue(ch, "jobs")
    gate = threading.Event()

    def behaviour(req, attempt):
        gate.wait(120)
        return (200, {}, b"ok", 0)

    fn = FunctionServer(behaviour)
    src = rabbit_source(rmq.url, "jobs", prefetch=WINDOW)
    cfg = config({"in": src, "ghost": rabbit_source(rmq.url, "nosuchqueue")},
                 {"fn": http_sink(fn.url, timeout="120s")},
                 [trigger("t", "in", "fn", concurrency=4, timeout="120s"),
                  trigger("g", "ghost", "fn")])
    port = with_http(cfg)
    d = Triggerd(cfg).start()
    time.sleep(1)
    publish_many(ch, "jobs", N)
    c.check(wait_until(lambda: fn.in_flight >= 4, 30 * SLOW), "the function holds requests")

    def agree(what, ready, unacked):
        seen = []

        def ok():
            ms = metrics(port)
            seen[:] = [metric(ms, READY, source="in", queue="jobs"),
                       metric(ms, "triggerd_source_lag_messages", source="in"),
                       metric(ms, CONSUMERS, source="in", queue="jobs"),
                       metric(ms, "triggerd_source_in_flight", source="in")]
            return seen == [ready, ready, 1, unacked]

        wait_until(ok, 20 * SLOW, interval=0.25)
        c.eq(rmq.queue_counts("jobs"), (ready, unacked),
             f"{what}: rabbitmqctl messages_ready and messages_unacknowledged")
        c.eq(rmq.consumers("jobs"), 1, f"{what}: rabbitmqctl consumers")
        c.eq(seen, [ready, ready, 1, unacked],
             f"{what}: /metrics ready, lag total, consumers and in flight agree with it")

    agree("held", N - WINDOW, WINDOW)
    time.sleep(6)  # more than one lag interval: stable while held
    agree("still held", N - WINDOW, WINDOW)
    ms = metrics(port)
    c.eq([k for k in ms if k[0] in (READY, CONSUMERS, "triggerd_source_lag_messages")
          and ("source", "ghost") in k[1]], [],
         "a queue the broker does not have: no depth sample for its source")

    gate.set()
    c.check(wait_until(lambda: len(fn.ok_ids()) >= N, 60 * SLOW), "all delivered once released")
    agree("drained", 0, 0)
    c.eq(len(fn.ok_ids()), N, "each message delivered once")

    # The broker gone: the depth is unknown (absent), not the last figure seen.
    rmq.stop_app()
    c.check(wait_until(lambda: metric(metrics(port), READY, source="in", queue="jobs") is None
                       and metric(metrics(port), "triggerd_source_lag_messages", source="in")
                       is None, 30 * SLOW, interval=0.25),
            "broker stopped: no depth sample (absent, never stale)")
    rmq.start_app()
    d.terminate()
    d.wait(15 * SLOW)


run_rabbitmq_test(body)
