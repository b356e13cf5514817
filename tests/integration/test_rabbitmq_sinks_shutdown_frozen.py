"""RabbitMQ sinks close together at shutdown: a frozen broker costs their close one wait, not one
per sink, and nothing is lost.

A RabbitMQ sink's thread closes its connection politely at teardown, waiting for the broker's
close-ok at most TD_AMQP_CLOSE_MS (2 s). Teardown freed the sinks one after another, so with the
broker frozen (SIGSTOP of its Erlang VM: its sockets stay open, nothing answers) N RabbitMQ sinks
added N x 2 s to the shutdown after shutdown_grace. Now every sink is told to stop before any is
freed (td_sink_stop), so their closes overlap.

One Redis source (Redis keeps answering) fans each entry out to 4 triggers, each with a RabbitMQ
sink publishing to a queue of its own. 10 entries are delivered and confirmed into all 4 queues;
then the broker freezes, 5 more entries are added (the sinks publish them and wait for confirms
that do not come) and the daemon gets SIGTERM with shutdown_grace 2s. It must exit (a liveness
bound, grace + 15 s, stretched for sanitizers: a hang check, not a speed limit) with exit 0, every
sink having given its close up, and all 4 sinks must have begun their close before any gave it up
(the closes overlapped: one after another, the first gives up before the second begins). Then the
broker resumes and a new daemon with the same consumer name reads the 5 entries again from its
own pending list (never acked: no confirm came): every queue must hold every one of the 15 entries
at least once, counted by message id (the CloudEvent id, the entry id), and the group ends with
nothing pending."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, RedisServer, Triggerd, config, exits_within, frozen,  # noqa: E402
                     group_info, log, pending_count, publish_many, redis_source, trigger,
                     wait_until)
from rabbitmq_fixture import (RabbitMQServer, declare_queue, rabbit_sink,  # noqa: E402
                              run_rabbitmq_test)

STREAM = "fan"
GRACE_S = 2
NSINKS = 4


def body(c):
    rmq = RabbitMQServer()
    ch = rmq.channel()
    queues = [f"out{i}" for i in range(NSINKS)]
    for q in queues:
        declare_queue(ch, q)
    rs = RedisServer()
    cl = rs.client()

    # claim_idle off: the second daemon gets the 5 back from its own pending list (the same
    # consumer name). Timeouts longer than the grace: the unconfirmed publishes are neither
    # retried nor timed out before the shutdown gives them up.
    src = redis_source(rs.url, STREAM, group="g", consumer="c1", claim_idle="0s")
    sinks = {f"k{i}": rabbit_sink(rmq.url, "", q) for i, q in enumerate(queues)}
    triggers = [trigger(f"t{i}", "r", f"k{i}", timeout="30s") for i in range(NSINKS)]
    cfg = config({"r": src}, sinks, triggers, shutdown_grace=f"{GRACE_S}s")

    seen = {q: set() for q in queues}

    def take():
        """Gets (and acks) what the queues hold now into seen."""
        for q in queues:
            while True:
                method, props, _ = ch.basic_get(queue=q, auto_ack=True)
                if method is None:
                    break
                seen[q].add(props.message_id)

    def everywhere(ids):
        take()
        return all(set(ids) <= seen[q] for q in queues)

    td = Triggerd(cfg).start()
    c.check(td.wait_ready(30 * SLOW), "daemon ready")
    ids = publish_many(cl, STREAM, 10)
    c.check(wait_until(lambda: everywhere(ids), 60 * SLOW, interval=0.05),
            f"the first 10 published by all {NSINKS} sinks (each has its connection)",
            {q: len(seen[q]) for q in queues})

    with frozen(rmq.beam_pid()):
        more = publish_many(cl, STREAM, 5, lambda i: {"n": str(10 + i)})
        ids += more
        c.check(wait_until(lambda: (group_info(cl, STREAM, "g") or {}).get("last-delivered-id")
                           == more[-1], 30 * SLOW, interval=0.01),
                "the 5 added with the broker frozen were read by the daemon")
        td.terminate()
        stopped_at = time.monotonic()
        bound = (GRACE_S + 15) * SLOW
        rc = exits_within(td, bound)
        c.check(rc is not None, f"SIGTERM'd with the broker frozen, the daemon exits (liveness "
                f"bound {bound:.0f} s: shutdown_grace {GRACE_S} s + 15 s)")
        if rc is not None:
            log(f"exit {time.monotonic() - stopped_at:.1f} s after SIGTERM")
            c.eq(rc, 0, "exit code of a shutdown (README: exit 0)")
            order = []  # (sink, "closing" | "given up"), in the order logged
            for line in td.logs():
                msg = str(line.get("msg", ""))
                for i in range(NSINKS):
                    if msg.startswith(f"sink 'k{i}': closing the connection"):
                        order.append((f"k{i}", "closing"))
                    elif msg.startswith(f"sink 'k{i}': close given up"):
                        order.append((f"k{i}", "given up"))
            closing = [s for s, what in order if what == "closing"]
            given_up = [s for s, what in order if what == "given up"]
            c.eq(sorted(given_up), sorted(sinks), "every sink gave its close up (the broker "
                 "was frozen: the path this test is about was taken)")
            first_given_up = next((k for k, (_, what) in enumerate(order)
                                   if what == "given up"), len(order))
            c.check(sorted(closing[:first_given_up]) == sorted(sinks),
                    "every sink began its close before any gave it up (the closes overlapped)",
                    order)
    c.eq(td.sanitizer_reports(), [], "no sanitizer reports (first daemon)")
    if c.failed:
        td.dump_tail(60)

    # The broker answers again: a new daemon reads the 5 unacked entries again.
    td2 = Triggerd(cfg, name="second").start()
    c.check(td2.wait_ready(30 * SLOW), "second daemon ready")
    got = wait_until(lambda: everywhere(ids), 120 * SLOW, interval=0.1)
    c.check(got, f"every one of the {len(ids)} entries reached every one of the {NSINKS} queues "
            "at least once (nothing lost)", {q: sorted(set(ids) - seen[q]) for q in queues})
    c.check(wait_until(lambda: pending_count(cl, STREAM, "g") == 0, 30 * SLOW, interval=0.1),
            "nothing pending in the group", pending_count(cl, STREAM, "g"))
    td2.terminate()
    c.eq(td2.wait(60 * SLOW), 0, "second daemon: clean shutdown")
    c.eq(td2.sanitizer_reports(), [], "no sanitizer reports (second daemon)")
    if c.failed:
        td2.dump_tail(60)


if __name__ == "__main__":
    run_rabbitmq_test(body)
