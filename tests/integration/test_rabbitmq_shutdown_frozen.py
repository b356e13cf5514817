"""Shutdown is bounded by shutdown_grace even when the RabbitMQ broker does not answer, and loses
nothing.

On its way out a RabbitMQ source acks what completed and closes its channel and connection.
rabbitmq-c's channel.close and connection.close are RPCs that wait for the broker's close-ok; with
the broker frozen (SIGSTOP of its Erlang VM, beam.smp: its sockets stay open and nothing answers)
the wait ends only with a heartbeat timeout, two heartbeat intervals (a minute with the default
30 s heartbeat, never with heartbeats off), so a SIGTERM'd daemon did not exit within
shutdown_grace (a systemd unit then waits for TimeoutStopSec and SIGKILLs, a pod for
terminationGracePeriodSeconds).

The daemon (default heartbeat, shutdown_grace 2s) delivered 10 messages before the shutdown; 10
more are at the function when it gets SIGTERM: 5 complete 1.5 s later, during the drain (their
acks are written while the broker is frozen), 5 answer only after 10 s with a 500 (still in flight
when shutdown_grace ends: never acked). Once the consumer is cancelled (the source quiesced, the
broker still answering) the broker freezes. The daemon must exit (the bound is a generous liveness
check, grace + 15 s, stretched for sanitizers: a hang check, not a speed limit) with the exit code
README gives for a shutdown (0), having given the close up (its log says so). Then the broker
resumes, more messages are published, and a new daemon must deliver every message published with
a 2xx at least once, counted by message id: the 5 that were in flight reach the function again
(the dropped connection returned them to the queue: nothing unfinished was acked), nothing is lost,
and the queue ends empty with nothing unacknowledged."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, exits_within, frozen,  # noqa: E402
                     http_sink, log, trigger, wait_until)
from rabbitmq_fixture import (RabbitMQServer, declare_queue, pika, rabbit_source,  # noqa: E402
                              run_rabbitmq_test, wait_drained)

QUEUE = "sd"
GRACE_S = 2
DRAIN_DONE = range(10, 15)  # complete during the drain, with the broker frozen
IN_FLIGHT = range(15, 20)  # still in flight when shutdown_grace ends


def n_of(req):
    try:
        return int((req.ce_id or "").rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def behaviour(req, attempt):
    n = n_of(req)
    if attempt == 1 and n in DRAIN_DONE:
        return (200, {}, b"", 1.5)
    if attempt == 1 and n in IN_FLIGHT:
        return (500, {}, b"", 10)
    return (200, {}, b"", 0)


def body(c):
    rmq = RabbitMQServer()
    ch = rmq.channel()
    declare_queue(ch, QUEUE)
    fn = FunctionServer(behaviour)

    # The default heartbeat (30 s), as a deployment has it. Timeouts longer than the grace: the
    # in-flight deliveries are neither retried nor timed out before the shutdown gives them up.
    src = rabbit_source(rmq.url, QUEUE, prefetch=50, heartbeat="30s")
    cfg = config({"q": src}, {"fn": http_sink(fn.url, timeout="30s")},
                 [trigger("t", "q", "fn", timeout="30s")], shutdown_grace=f"{GRACE_S}s")
    cfg["daemon"]["log"]["level"] = "info"

    ch.confirm_delivery()
    ids = []

    def publish(first, n):
        """Persistent, confirmed, message_id sd-N (the CloudEvent id the function sees)."""
        for i in range(first, first + n):
            ch.basic_publish(exchange="", routing_key=QUEUE, body=b'{"n": %d}' % i,
                             properties=pika.BasicProperties(message_id=f"{QUEUE}-{i}",
                                                             delivery_mode=2,
                                                             content_type="application/json"))
            ids.append(f"{QUEUE}-{i}")

    td = Triggerd(cfg).start()
    c.check(td.wait_ready(30 * SLOW), "daemon ready")
    publish(0, 10)
    c.check(wait_until(lambda: set(ids) <= fn.ok_ids(), 60 * SLOW, interval=0.05),
            "the first 10 delivered before the shutdown", len(fn.ok_ids()))
    publish(10, 10)
    c.check(wait_until(lambda: {f"{QUEUE}-{i}" for i in range(10, 20)} <=
                       {r.ce_id for r in fn.snapshot()}, 30 * SLOW, interval=0.01),
            "10 more at the function when the shutdown begins")

    td.terminate()
    # The source cancels its consumer on SIGTERM (while the broker answers): then it is quiesced,
    # asks the broker nothing more but acks, and the broker freezes.
    cancelled = wait_until(lambda: ch.queue_declare(queue=QUEUE, passive=True).method.consumer_count
                           == 0, 10 * SLOW, interval=0.01)
    c.check(cancelled, "the consumer was cancelled at SIGTERM")
    with frozen(rmq.beam_pid()) as fz:
        bound = (GRACE_S + 15) * SLOW
        rc = exits_within(td, bound)
        c.check(rc is not None, f"SIGTERM'd with the broker frozen, the daemon exits (liveness "
                f"bound {bound:.0f} s: shutdown_grace {GRACE_S} s + 15 s)")
        if rc is not None:
            log(f"exit {time.monotonic() - fz.at:.1f} s after the freeze")
            c.eq(rc, 0, "exit code of a shutdown (README: exit 0)")
            given_up = [l for l in td.logs() if l.get("source") == "q" and
                        str(l.get("msg", "")).startswith("close given up")]
            c.check(given_up, "the source gave its close up at the deadline (the path this test "
                    "is about was taken)")
    c.eq(td.sanitizer_reports(), [], "no sanitizer reports (first daemon)")
    if c.failed:
        td.dump_tail(60)

    # The broker answers again: more messages, and a new daemon on the same queue.
    publish(20, 10)
    td2 = Triggerd(cfg, name="second").start()
    c.check(td2.wait_ready(30 * SLOW), "second daemon ready")
    got = wait_until(lambda: set(ids) <= fn.ok_ids(), 120 * SLOW, interval=0.1)
    missing = sorted(set(ids) - fn.ok_ids())
    c.check(got, f"every one of the {len(ids)} messages published reached the function with a "
            "2xx at least once (nothing lost)", missing[:20])
    again = {r.ce_id for r in fn.snapshot() if r.attempt >= 2 and n_of(r) in IN_FLIGHT}
    c.eq(len(again), len(IN_FLIGHT), "the deliveries in flight at the shutdown came back (never "
         "acked)")
    c.check(wait_drained(rmq, QUEUE, 30), "queue empty, nothing unacked", rmq.queue_counts(QUEUE))
    log(f"{len(fn.snapshot())} requests for {len(ids)} messages")
    td2.terminate()
    c.eq(td2.wait(60 * SLOW), 0, "second daemon: clean shutdown")
    c.eq(td2.sanitizer_reports(), [], "no sanitizer reports (second daemon)")
    if c.failed:
        td2.dump_tail(60)


if __name__ == "__main__":
    run_rabbitmq_test(body)
