"""Acknowledgements past a gap (sources/rabbitmq.c, flush_acks): the RabbitMQ source acks a
contiguous run of completed deliveries with one multiple ack, and a completion that overtook an
earlier delivery still in flight waits a few ms for such an ack to cover it. It must not wait for
the earlier one to finish: the unacknowledged ones fill the prefetch window, and the broker sends
nothing more.

One message the function holds (until the test lets it go), then 200 that it answers at once,
prefetch 10: all 200 are delivered while the first is still held (with the window starved, at most
9 would be), the queue shows 1 unacknowledged message (the held one) and none ready, and once it is
let go everything is acknowledged: each message delivered exactly once, the queue empty."""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from rabbitmq_fixture import *  # noqa: E402,F401,F403

N = 200


def body(c):
    rmq = RabbitMQServer()
    ch = rmq.channel()
    declare_queue(ch, "q")
    release = threading.Event()

    def behaviour(req, attempt):
        if b'"hold"' in req.body:
            release.wait(120)
        return (204, {}, b"", 0)

    fn = FunctionServer(behaviour)
    cfg = config(sources={"s": rabbit_source(rmq.url, "q", prefetch=10)},
                 sinks={"fn": http_sink(fn.url)},
                 # The held attempt must outlast every check made while it is held (200
                 # deliveries and rabbitmqctl calls, seconds on a loaded machine): with the
                 # harness's 2 s attempt timeout it timed out under load, was retried, and
                 # the function saw it twice. Its hold is bounded by release.wait(120).
                 triggers=[trigger("t", "s", "fn", concurrency=10, timeout="150s")])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(20), "daemon ready")
    c.check(wait_until(lambda: rmq.consumers("q") == 1, 10 * SLOW), "consuming")
    held = publish_many(ch, "q", 1, body_fn=lambda i: b'{"hold": true}')
    c.check(wait_until(lambda: fn.in_flight == 1, 10 * SLOW), "the held message reached the function")
    fast = publish_many(ch, "q", N, props_fn=lambda i: pika.BasicProperties(
        message_id=f"fast-{i}", delivery_mode=2, content_type="application/json"))
    ok = wait_until(lambda: set(fast) <= fn.ok_ids(), 30 * SLOW, interval=0.1,
                    desc="every fast message delivered while the first is held")
    c.check(ok, f"all {N} fast messages delivered while the first was held",
            len(set(fast) & fn.ok_ids()))
    c.check(not release.is_set() and fn.in_flight == 1 and len(fn.by_id().get(held[0], [])) == 1,
            "the first was still held meanwhile (its first attempt)")
    counts = None

    def one_unacked():
        nonlocal counts
        counts = rmq.queue_counts("q")
        return counts == (0, 1)

    c.check(wait_until(one_unacked, 10 * SLOW, interval=0.2),
            "the queue: none ready, only the held message unacknowledged", counts)
    release.set()
    c.check(wait_drained(rmq, "q", 20), "queue drained after the held one was let go",
            rmq.queue_counts("q"))
    byid = fn.by_id()
    c.eq(sorted(len(byid.get(i, [])) for i in fast + held), [1] * (N + 1),
         "each message delivered exactly once")
    td.terminate()
    c.eq(td.wait(15 * SLOW), 0, "exit status after SIGTERM")


run_rabbitmq_test(body)
