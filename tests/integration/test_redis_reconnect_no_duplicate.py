"""A Redis source that loses its read connection while completed entries wait for their XACK does
not hand them out again.

The source acknowledges completed entries in batches (a read's worth, nothing else in flight, or
5 ms; acks_due in sources/redis.c). After a reconnect it reads its own pending list first (id 0):
what a lost connection left delivered to it but unanswered. Entries that completed and wait for
their XACK are pending too, and in no in-flight set; read before they are acknowledged, they were
delivered a second time (38bac80 acknowledges them first).

5,000 entries drain to a prompt function while the test cuts connections (CLIENT KILL ID) every
150 ms: first only the source's XREADGROUP connection, then both of its connections (an XACK that
failed is kept and sent again before the next own-pending read; one that Redis ran before the cut
is harmless to repeat). Every entry must reach the function exactly once, and nothing stays
pending."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 5000


def readers(cl, mine):
    """Client ids of the connections whose last command was XREADGROUP (the source's read one)."""
    return [c["id"] for c in cl.client_list() if c.get("cmd", "").lower() == "xreadgroup"]


def daemons(cl, mine):
    """Client ids of every connection but the test's own."""
    return [c["id"] for c in cl.client_list() if c.get("name", "") != mine]


def scenario(c, label, victims):
    rs = RedisServer()
    cl = rs.client()
    mine = "test-client"
    fn = FunctionServer(lambda req, a: (204, {}, b"", 0.01))
    src = redis_source(rs.url, "s", claim_idle="60s", block="5s", batch=50)
    cfg = config(sources={"in": src}, sinks={"fn": http_sink(fn.url)},
                 triggers=[trigger("t", "in", "fn", concurrency=16)])
    ids = publish_many(cl, "s", N)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), f"{label}: daemon ready")
    stop = threading.Event()
    cuts = [0]

    killer = rs.client()  # used by the cutter thread alone: one connection, named

    def cutter():
        killer.client_setname(mine)
        while not stop.is_set():
            for cid in victims(killer, mine):
                try:
                    killer.execute_command("CLIENT", "KILL", "ID", cid)
                    cuts[0] += 1
                except Exception:  # gone already
                    pass
            stop.wait(0.15)

    th = threading.Thread(target=cutter, daemon=True)
    th.start()
    try:
        wait_until(lambda: set(ids) <= fn.ok_ids(), 120 * SLOW, interval=0.2,
                   desc=f"{label}: every entry delivered")
    finally:
        stop.set()
        th.join(5)
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 20 * SLOW, desc=f"{label}: nothing pending")
    log(f"{label}: {cuts[0]} connections cut during the drain")
    c.check(cuts[0] >= 5, f"{label}: connections were cut during the drain", cuts[0])
    byid = fn.by_id()
    c.eq(len(set(ids) - fn.ok_ids()), 0, f"{label}: every entry reached the function")
    dups = {i: len(byid[i]) for i in ids if len(byid.get(i, [])) > 1}
    c.check(not dups, f"{label}: no entry was delivered twice", list(dups.items())[:5])
    c.eq(pending_count(cl, "s", "g"), 0, f"{label}: nothing left pending")
    td.terminate()
    c.eq(td.wait(15 * SLOW), 0, f"{label}: exit status after SIGTERM")


def body(c):
    scenario(c, "read connection", readers)
    scenario(c, "both connections", daemons)


run_test(body)
