"""A second SIGTERM ends the daemon at once also after the drain, while teardown waits for a
broker that does not answer, and loses nothing.

The first SIGTERM starts the drain; a second one during the drain exits at once (exit 1, "second
signal: exiting now"). Once the drain ended the loop stops and teardown runs: the sources are told
to stop with a deadline (the end of shutdown_grace) and joined. A RabbitMQ source's last close
(channel.close and connection.close RPCs) waits for a frozen broker until that deadline. The
signalfd used to be read only by the loop, and every thread blocks the signals, so a second
SIGTERM then did nothing: the daemon went on waiting up to shutdown_grace (a minute here).

The daemon (shutdown_grace 60s) delivered 10 messages; 5 more are held at the function when it
gets SIGTERM. Once the consumer is cancelled (the source quiesced, the broker still answering)
the broker freezes (SIGSTOP of its Erlang VM: sockets open, nothing answers) and the function
answers the 5 (200): the drain ends ("drained; stopping", the last line before teardown) and
teardown waits for the broker. Then a second SIGTERM: the daemon must exit with 1 and log "second
signal: exiting now", within a liveness bound well short of the 60 s the old code waited (10 s,
stretched for sanitizers: a hang check, not a speed limit). The broker resumes, 10 more messages
are published, and a new daemon must deliver every one of the 25 messages with a 2xx at least
once, counted by message id (the 5 answered during the drain were acked or come back: either way
none is lost), and the queue ends empty with nothing unacknowledged."""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, at_cleanup, config, exits_within,  # noqa: E402
                     frozen, http_sink, log, trigger, wait_until)
from rabbitmq_fixture import (RabbitMQServer, declare_queue, pika, rabbit_source,  # noqa: E402
                              run_rabbitmq_test, wait_drained)

QUEUE = "ss"
GRACE_S = 60
HELD = range(10, 15)  # at the function when the shutdown begins, answered during the drain
release = threading.Event()


def n_of(req):
    try:
        return int((req.ce_id or "").rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def behaviour(req, attempt):
    if attempt == 1 and n_of(req) in HELD:
        release.wait(120)  # the test answers them once the broker is frozen
    return (200, {}, b"", 0)


def body(c):
    rmq = RabbitMQServer()
    ch = rmq.channel()
    declare_queue(ch, QUEUE)
    fn = FunctionServer(behaviour)
    at_cleanup(release.set)

    src = rabbit_source(rmq.url, QUEUE, prefetch=50, heartbeat="30s")
    cfg = config({"q": src}, {"fn": http_sink(fn.url, timeout="120s")},
                 [trigger("t", "q", "fn", timeout="120s")], shutdown_grace=f"{GRACE_S}s")
    cfg["daemon"]["log"]["level"] = "info"

    ch.confirm_delivery()
    ids = []

    def publish(first, n):
        """Persistent, confirmed, message_id ss-N (the CloudEvent id the function sees)."""
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
    publish(10, len(HELD))
    c.check(wait_until(lambda: {f"{QUEUE}-{i}" for i in HELD} <=
                       {r.ce_id for r in fn.snapshot()}, 30 * SLOW, interval=0.01),
            "5 more held at the function when the shutdown begins")

    td.terminate()
    cancelled = wait_until(lambda: ch.queue_declare(queue=QUEUE, passive=True).method.consumer_count
                           == 0, 10 * SLOW, interval=0.01)
    c.check(cancelled, "the consumer was cancelled at SIGTERM")
    with frozen(rmq.beam_pid()):
        release.set()

        def msgs():
            return [str(l.get("msg", "")) for l in td.logs()]

        drained = wait_until(lambda: "drained; stopping" in msgs() or not td.running(),
                             30 * SLOW, interval=0.01)
        c.check(drained and "drained; stopping" in msgs(), "the drain ended: the loop stopped "
                "and teardown began")
        c.check(td.running(), "teardown still waits for the frozen broker (the path this test is "
                "about)", td.returncode())
        td.terminate()
        bound = 10 * SLOW
        rc = exits_within(td, bound)
        c.check(rc is not None, f"a second SIGTERM during teardown ends the daemon (liveness bound "
                f"{bound:.0f} s, shutdown_grace {GRACE_S} s)")
        if rc is not None:
            c.eq(rc, 1, "exit code of a second signal (README: exit 1)")
        m = msgs()
        c.check("second signal: exiting now" in m and
                m.index("second signal: exiting now") > m.index("drained; stopping"),
                "logged \"second signal: exiting now\", after the drain ended", m[-8:])
    c.eq(td.sanitizer_reports(), [], "no sanitizer reports (first daemon)")
    if c.failed:
        td.dump_tail(60)

    # The broker answers again: more messages, and a new daemon on the same queue.
    publish(15, 10)
    td2 = Triggerd(cfg, name="second").start()
    c.check(td2.wait_ready(30 * SLOW), "second daemon ready")
    got = wait_until(lambda: set(ids) <= fn.ok_ids(), 120 * SLOW, interval=0.1)
    missing = sorted(set(ids) - fn.ok_ids())
    c.check(got, f"every one of the {len(ids)} messages published reached the function with a "
            "2xx at least once (nothing lost)", missing[:20])
    c.eq(len(fn.ok_ids() & set(ids)), len(ids), "count in = count out (by message id)")
    c.check(wait_drained(rmq, QUEUE, 30), "queue empty, nothing unacked", rmq.queue_counts(QUEUE))
    log(f"{len(fn.snapshot())} requests for {len(ids)} messages")
    td2.terminate()
    c.eq(td2.wait(60 * SLOW), 0, "second daemon: clean shutdown")
    c.eq(td2.sanitizer_reports(), [], "no sanitizer reports (second daemon)")
    if c.failed:
        td2.dump_tail(60)


if __name__ == "__main__":
    run_rabbitmq_test(body)
