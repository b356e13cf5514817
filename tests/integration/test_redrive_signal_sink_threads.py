"""`triggerd redrive` reads SIGINT/SIGTERM through a signalfd: the signals must be blocked in every
thread, also in the threads the sinks start (a RabbitMQ sink publishes on a thread of its own). A
thread that has them unblocked takes a process-directed signal with its default action, and the
process dies at once (killed by the signal) instead of saying "interrupted; finishing" and keeping
what it could not finish in the target.

A dead letter in a Redis stream names a trigger whose sink is RabbitMQ at an address where nothing
listens: the publish is retried (long backoff), so the redrive is still running when it gets SIGINT.
It must say so and, on a second SIGINT, exit 1 ("exiting now") with the entry still in the target."""

import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403


def body(c):
    rs = RedisServer()
    cl = rs.client()
    at = f"127.0.0.1:{free_port()}"  # nothing listens: the publish is refused and retried
    sources = {"in": redis_source(rs.url, "in")}
    sinks = {"rabbit": {"rabbitmq": {"url": f"amqp://guest:guest@{at}/%2f",
                                     "exchange": "amq.direct", "routing_key": "k"}},
             "dl": {"redis": {"url": rs.url, "stream": "dl"}}}
    triggers = [trigger("t", "in", "rabbit", retry=100, backoff_delay="1s", dead_letter="dl")]
    cpath = Triggerd(config(sources, sinks, triggers)).config_path
    cl.xadd("dl", {"ce_specversion": "1.0", "ce_id": "x1", "ce_source": "/test",
                   "ce_type": "com.example.test", "ce_deadlettertrigger": "t", "data": "{}"})

    errpath = os.path.join(os.path.dirname(cpath), "redrive.err")
    errf = open(errpath, "wb")
    at_cleanup(errf.close)
    p = subprocess.Popen([triggerd_binary(), "redrive", "-c", cpath, "--from", "dl"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf)
    at_cleanup(lambda: p.poll() is None and p.kill())

    def err():
        with open(errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    # The sink's thread reports the refused connection: the entry is in flight.
    tried = wait_until(lambda: "rabbit" in err() or p.poll() is not None, 30 * SLOW,
                       desc="the publish was tried")
    c.check(tried and p.poll() is None, "redrive runs, the publish tried", (p.poll(), err()[-400:]))
    p.send_signal(signal.SIGINT)
    asked = wait_until(lambda: "again to stop now" in err() or p.poll() is not None, 10 * SLOW)
    c.check(asked and p.poll() is None and "again to stop now" in err(),
            "the first SIGINT is read by redrive, not taken by a sink's thread",
            (p.poll(), err()[-400:]))
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
    try:
        rc = p.wait(30 * SLOW)
    except subprocess.TimeoutExpired:
        rc = None
        p.kill()
        p.wait(30)
    c.eq(rc, 1, "the second SIGINT: exit 1 (entries left in the target)")
    c.eq(cl.xlen("dl"), 1, "the entry stays in the target")


run_test(body)
