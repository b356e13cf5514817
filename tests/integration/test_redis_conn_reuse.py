"""Connection reuse (issue 14), the Redis variant of test_rabbitmq_conn_reuse.py: a backlog read
from a real Redis stream in batches (XREADGROUP COUNT = concurrency, max_inflight = concurrency, so
the requests in flight fall to nothing before every read) reaches the function over at most
2 x concurrency TCP connections for the whole run. Before the connection cache was sized from the
most requests ever in flight, libcurl closed a connection for each answer that came back during a
dip, and the next batch opened them again. Every entry must still arrive, once, and be acked.
Then six triggers to six functions, busy in turn: at most 2 x their total concurrency."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

ENTRIES = 3000
CONCURRENCY = 16


def body(c):
    rs = RedisServer()
    cl = rs.client()
    ids = publish_many(cl, "s", ENTRIES)  # the backlog first: the concurrency is reached
    fn = FunctionServer()
    src = redis_source(rs.url, "s", batch=CONCURRENCY)
    src["max_inflight"] = CONCURRENCY
    cfg = config(sources={"in": src},
                 sinks={"fn": http_sink(fn.url)},
                 triggers=[trigger("t", "in", "fn", concurrency=CONCURRENCY)])
    cfg["daemon"]["log"]["level"] = "info"  # debug logs a line per event
    t0 = time.monotonic()
    td = Triggerd(cfg).start()
    ok = wait_until(lambda: set(ids) <= fn.ok_ids(), 120 * SLOW, interval=0.1,
                    desc=f"{ENTRIES} delivered")
    conns = fn.accepted()
    log(f"{ENTRIES} entries in {time.monotonic() - t0:.1f}s over {conns} connections "
        f"(concurrency {CONCURRENCY}, batch {CONCURRENCY})")
    c.check(ok, "every entry reached the function with 2xx", len(set(ids) & fn.ok_ids()))
    c.check(conns <= 2 * CONCURRENCY,
            f"at most 2 x concurrency = {2 * CONCURRENCY} connections for the run", conns)
    c.check(wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="pending 0"),
            "every entry acked")
    byid = fn.by_id()
    c.eq(sum(len(byid.get(i, [])) - 1 for i in ids if byid.get(i)), 0, "no duplicates")
    td.terminate()
    c.eq(td.wait(15 * SLOW), 0, "exit status after SIGTERM")
    fn.stop()
    several_functions(c, rs, cl)


FUNCTIONS = 6
PER_FUNCTION = 8  # concurrency of each trigger
ROUNDS = 3
BURST = 300


def several_functions(c, rs, cl):
    """Six triggers, each to a function of its own, busy one after the other, three rounds: never
    more than 8 requests in flight at once, but each function needs its 8 connections when its
    turn comes. The cache must keep all 48 (the daemon reserves its triggers' total concurrency),
    not the 4 x 8 = 32 the high-water mark alone allows: with those, every turn reopened them."""
    fns = [FunctionServer() for _ in range(FUNCTIONS)]
    cfg = config(sources={f"in{k}": redis_source(rs.url, f"s{k}") for k in range(FUNCTIONS)},
                 sinks={f"fn{k}": http_sink(fns[k].url) for k in range(FUNCTIONS)},
                 triggers=[trigger(f"t{k}", f"in{k}", f"fn{k}", concurrency=PER_FUNCTION)
                           for k in range(FUNCTIONS)])
    cfg["daemon"]["log"]["level"] = "info"
    td = Triggerd(cfg, name="several").start()
    c.check(td.wait_ready(10), "several functions: daemon ready")
    delivered = True
    for rnd in range(ROUNDS):
        for k in range(FUNCTIONS):
            ids = publish_many(cl, f"s{k}", BURST)
            delivered &= wait_until(lambda: set(ids) <= fns[k].ok_ids(), 60 * SLOW, interval=0.05,
                                    desc=f"round {rnd} function {k}")
    conns = [fn.accepted() for fn in fns]
    total = sum(conns)
    bound = 2 * FUNCTIONS * PER_FUNCTION
    log(f"several functions: {ROUNDS} rounds of {FUNCTIONS} x {BURST} entries over {conns} "
        f"connections ({total})")
    c.check(delivered, "several functions: every entry reached its function")
    c.check(total <= bound, f"several functions: at most 2 x the total concurrency = {bound} "
            f"connections for the run", conns)
    td.terminate()
    c.eq(td.wait(15 * SLOW), 0, "several functions: exit status after SIGTERM")


run_test(body)
