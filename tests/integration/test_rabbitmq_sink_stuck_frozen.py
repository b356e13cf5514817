"""A RabbitMQ sink stuck writing to a frozen broker does not hold the shutdown up, and nothing is
lost.

rabbitmq-c writes with no time limit: amqp_basic_publish (and the requests of a polite close)
poll for a writable socket forever. A broker that reads nothing (frozen: SIGSTOP of its Erlang
VM, its sockets open) lets the socket's buffers take a few MB (about 4 MB here on loopback), and
a sink with more than that to publish then stays inside the write: its thread never came back to
see the stop, teardown joined it, and a SIGTERM'd daemon never exited. Now teardown cuts (shuts
down) the socket of a sink thread still inside rabbitmq-c 100 ms after its close deadline
(TD_AMQP_CLOSE_MS after the stop); the write fails, the connection is dropped, the thread leaves.

One Redis source, one trigger, one RabbitMQ sink. 10 small entries are published and confirmed;
then the broker freezes and 24 entries of 600 KB each are added (14 MB: more than the buffers
hold), and the daemon gets SIGTERM with shutdown_grace 2s. It must exit (a liveness bound, grace
+ 15 s, stretched for sanitizers: a hang check, not a speed limit; before the cut it waited
forever) with exit 0, saying that the connection was cut. Then the broker resumes and a new
daemon with the same consumer name reads the 24 again from its own pending list (never acked: no
confirm came): the queue must hold every one of the 34 entries at least once, counted by message
id (the CloudEvent id, the entry id), and the group ends with nothing pending."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, RedisServer, Triggerd, config, exits_within, frozen, log,  # noqa: E402
                     pending_count, publish_many, redis_source, trigger, wait_until)
from http_util import metric, metrics, with_http  # noqa: E402
from rabbitmq_fixture import (RabbitMQServer, declare_queue, rabbit_sink,  # noqa: E402
                              run_rabbitmq_test)

STREAM = "big"
QUEUE = "out"
GRACE_S = 2
NBIG = 24
PAD = 600 * 1024


def body(c):
    rmq = RabbitMQServer()
    ch = rmq.channel()
    declare_queue(ch, QUEUE)
    rs = RedisServer()
    cl = rs.client()

    # claim_idle off: the second daemon gets the 24 back from its own pending list (the same
    # consumer name). Timeouts longer than the grace: the unconfirmed publishes are neither
    # retried nor timed out before the shutdown gives them up.
    src = redis_source(rs.url, STREAM, group="g", consumer="c1", claim_idle="0s")
    cfg = config({"r": src}, {"k": rabbit_sink(rmq.url, "", QUEUE)},
                 [trigger("t", "r", "k", timeout="30s", concurrency=2 * NBIG)],
                 shutdown_grace=f"{GRACE_S}s")
    port = with_http(cfg)

    def attempts():
        return metric(metrics(port), "triggerd_trigger_attempts_total", trigger="t") or 0

    seen = set()

    def all_in_queue(ids):
        while True:
            method, props, _ = ch.basic_get(queue=QUEUE, auto_ack=True)
            if method is None:
                break
            seen.add(props.message_id)
        return set(ids) <= seen

    td = Triggerd(cfg).start()
    c.check(td.wait_ready(30 * SLOW), "daemon ready")
    ids = publish_many(cl, STREAM, 10)
    c.check(wait_until(lambda: all_in_queue(ids), 60 * SLOW, interval=0.05),
            "the first 10 published (the sink has its connection)", len(seen))

    with frozen(rmq.beam_pid()):
        big = publish_many(cl, STREAM, NBIG, lambda i: {"n": str(10 + i), "pad": "x" * PAD})
        ids += big
        # Handed to the sink (its thread publishes each job as it comes): more than the
        # socket's buffers take, so the thread is inside a write long before the stop.
        c.check(wait_until(lambda: attempts() >= len(ids), 60 * SLOW, interval=0.05),
                f"the {NBIG} large entries added with the broker frozen went to the sink",
                attempts())
        td.terminate()
        stopped_at = time.monotonic()
        bound = (GRACE_S + 15) * SLOW
        rc = exits_within(td, bound)
        c.check(rc is not None, f"SIGTERM'd with the broker frozen and the sink's socket full, "
                f"the daemon exits (liveness bound {bound:.0f} s: shutdown_grace {GRACE_S} s + "
                "15 s)")
        if rc is not None:
            log(f"exit {time.monotonic() - stopped_at:.1f} s after SIGTERM")
            c.eq(rc, 0, "exit code of a shutdown (README: exit 0)")
            msgs = [str(l.get("msg", "")) for l in td.logs()]
            c.check(any(m.startswith("sink 'k':") and "the connection is cut" in m for m in msgs),
                    "the sink's socket was cut (the path this test is about was taken)",
                    [m for m in msgs if m.startswith("sink 'k'")][-5:])
    c.eq(td.sanitizer_reports(), [], "no sanitizer reports (first daemon)")
    if c.failed:
        td.dump_tail(60)

    # The broker answers again: a new daemon reads the 24 unacked entries again.
    td2 = Triggerd(cfg, name="second").start()
    c.check(td2.wait_ready(30 * SLOW), "second daemon ready")
    got = wait_until(lambda: all_in_queue(ids), 120 * SLOW, interval=0.1)
    c.check(got, f"every one of the {len(ids)} entries reached the queue at least once (nothing "
            "lost)", sorted(set(ids) - seen))
    c.check(wait_until(lambda: pending_count(cl, STREAM, "g") == 0, 30 * SLOW, interval=0.1),
            "nothing pending in the group", pending_count(cl, STREAM, "g"))
    td2.terminate()
    c.eq(td2.wait(60 * SLOW), 0, "second daemon: clean shutdown")
    c.eq(td2.sanitizer_reports(), [], "no sanitizer reports (second daemon)")
    if c.failed:
        td2.dump_tail(60)


if __name__ == "__main__":
    run_rabbitmq_test(body)
