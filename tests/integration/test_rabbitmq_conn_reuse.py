"""Connection reuse (issue 14): a backlog drained from a real RabbitMQ queue with concurrency N
reaches the function over at most 2 x N TCP connections for the whole run, however the source's
prefetch window makes the requests in flight rise and fall.

Without a cache size of its own, libcurl kept at most 4 x the requests in flight *at that moment*
and closed the oldest connection whenever an answer came back during a dip (every time the
prefetch window drained); the next burst opened them again: hundreds of connections for a few
thousand messages (measured: 371 for 3 000 with prefetch = concurrency = 16). The function
stand-in counts the connections it accepts; every message must still arrive, once, and be acked.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from rabbitmq_fixture import *  # noqa: E402,F401,F403

MESSAGES = 3000
CONCURRENCY = 16
# (prefetch, why): a window as large as the concurrency drains to zero before the next one
# arrives; a larger one dips less often but still does.
SCENARIOS = [(CONCURRENCY, "prefetch = concurrency"), (4 * CONCURRENCY, "prefetch = 4 x concurrency")]


def body(c):
    rmq = RabbitMQServer()
    ch = rmq.channel()
    for prefetch, what in SCENARIOS:
        queue = f"reuse{prefetch}"
        declare_queue(ch, queue)
        # The backlog first: the daemon starts on a full queue, so the concurrency is reached.
        ids = publish_many(ch, queue, MESSAGES)
        fn = FunctionServer()
        cfg = config(sources={"q": rabbit_source(rmq.url, queue, prefetch=prefetch)},
                     sinks={"fn": http_sink(fn.url)},
                     triggers=[trigger("t", "q", "fn", concurrency=CONCURRENCY)])
        cfg["daemon"]["log"]["level"] = "info"  # debug logs a line per event
        t0 = time.monotonic()
        td = Triggerd(cfg, name=queue).start()
        ok = wait_until(lambda: set(ids) <= fn.ok_ids("/"), 120 * SLOW, interval=0.1,
                        desc=f"{MESSAGES} delivered")
        conns = fn.accepted()
        log(f"{what}: {MESSAGES} messages in {time.monotonic() - t0:.1f}s over {conns} "
            f"connections (concurrency {CONCURRENCY}, prefetch {prefetch})")
        c.check(ok, f"{what}: every message reached the function with 2xx",
                len(set(ids) & fn.ok_ids("/")))
        c.check(conns <= 2 * CONCURRENCY,
                f"{what}: at most 2 x concurrency = {2 * CONCURRENCY} connections for the run",
                conns)
        c.check(wait_drained(rmq, queue, 20), f"{what}: queue empty with nothing unacked",
                rmq.queue_counts(queue))
        byid = fn.by_id("/")
        c.eq(sum(len(byid.get(i, [])) - 1 for i in ids if byid.get(i)), 0,
             f"{what}: no duplicates")
        td.terminate()
        c.eq(td.wait(15 * SLOW), 0, f"{what}: exit status after SIGTERM")
        fn.stop()


run_rabbitmq_test(body)
