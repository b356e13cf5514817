"""A Redis source that loses its connections during a drain delivers nothing twice.

After a reconnect the source reads its own pending entries (XREADGROUP with an id, not ">"): what
a lost connection left delivered to it but unanswered. Two kinds of entry are pending too and must
not be handed out again: those that completed and wait for their XACK (acknowledged first, 38bac80)
and those that complete while that read is on its way (Redis may have run it before their XACK, so
the reply lists them: they stay in the in-flight set until it was handled, 1f53730, and the daemon
logs "completions were held for an own-pending read").

5,000 entries drain to a prompt function while the test cuts connections (CLIENT KILL ID) every
150 ms: first only the source's XREADGROUP connection, then both of its connections (an XACK that
failed is kept and sent again before the next own-pending read; one that Redis ran before the cut
is harmless to repeat). Every entry must reach the function exactly once, nothing stays pending,
and the first scenario must have met the second kind of entry at least once (else it proved
nothing)."""

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
    # A sink timeout far from the function's 10 ms: a retry would look like a duplicate.
    cfg = config(sources={"in": src}, sinks={"fn": http_sink(fn.url, timeout=f"{int(10 * SLOW)}s")},
                 triggers=[trigger("t", "in", "fn", concurrency=16, timeout=f"{int(10 * SLOW)}s")])
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
    held = [l for l in td.logs() if "held for an own-pending read" in str(l.get("msg", ""))]
    log(f"{label}: completions held for an own-pending read {len(held)} times")
    if label == "read connection":
        c.check(held, f"{label}: completions arrived during an own-pending read", len(held))
    td.terminate()
    c.eq(td.wait(15 * SLOW), 0, f"{label}: exit status after SIGTERM")


def body(c):
    scenario(c, "read connection", readers)
    scenario(c, "both connections", daemons)


run_test(body)
