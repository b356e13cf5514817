"""Redis stops and restarts (data kept) while 2 000 entries are being published and consumed: the daemon
survives, reconnects, delivers every entry and leaves nothing pending; the source's
triggerd_source_connected gauge (/metrics and /status) goes to 0 within seconds of the stop and back to 1
after the restart."""

import os
import sys
import threading
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import get_json, metric, metrics, with_http  # noqa: E402

N = 2000
BATCH = 20


def body(c):
    rs = RedisServer()
    fn = FunctionServer(lambda req, a: (200, {}, b"", 0.002))
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"fn": http_sink(fn.url)},
                 triggers=[trigger("t1", "in", "fn", concurrency=8)])
    port = with_http(cfg)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")

    def connected():
        """(the /metrics gauge, /status's `connected`) of the source."""
        st = get_json(port, "/status")[1]
        src = [s for s in st.get("sources", []) if s.get("name") == "in"]
        return (metric(metrics(port), "triggerd_source_connected", source="in"),
                src[0].get("connected") if src else None)

    c.eq(connected(), (1, True), "source connected before the stop")

    # Publisher: N entries, seq numbers 0..N-1, in batches; a batch that fails (Redis down) is retried.
    state = {"sent": 0, "retries": 0, "done": False}

    def publisher():
        seq = 0
        while seq < N:
            try:
                p = rs.client(socket_timeout=2).pipeline(transaction=False)
                for i in range(seq, min(N, seq + BATCH)):
                    p.xadd("s", {"n": str(i)})
                p.execute()
                seq = min(N, seq + BATCH)
                state["sent"] = seq
                time.sleep(0.05)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                    redis.exceptions.BusyLoadingError):
                state["retries"] += 1
                time.sleep(0.1)
        state["done"] = True

    th = threading.Thread(target=publisher, daemon=True)
    th.start()
    c.check(wait_until(lambda: fn.count() >= 400, 30 * SLOW), "some events delivered before the stop",
            fn.count())
    rs.stop()
    t_stop = time.monotonic()
    at_stop, sent_at_stop = fn.count(), state["sent"]
    log(f"redis stopped after {at_stop} requests, {sent_at_stop} published")
    down = wait_until(lambda: connected() == (0, False), 5 * SLOW, interval=0.1,
                      desc="connected gauge 0")
    c.check(down, "the connected gauge and /status say 0 within seconds of the stop", connected())
    log(f"connected 0 after {time.monotonic() - t_stop:.1f}s")
    # Redis stays down for a while (this is the scenario, not a wait for a condition).
    time.sleep(max(0.0, 1.5 - (time.monotonic() - t_stop)))
    c.eq(connected(), (0, False), "still 0 while Redis is down")
    c.check(td.running(), "daemon still running while Redis is down")
    rs.start()
    at_restart = state["sent"]
    log(f"redis restarted after {time.monotonic() - t_stop:.1f}s, {at_restart} published")
    up = wait_until(lambda: connected() == (1, True), 15 * SLOW, interval=0.1,
                    desc="connected gauge 1")
    c.check(up, "the connected gauge and /status say 1 again after the restart", connected())
    th.join(60 * SLOW)
    c.check(state["done"], "publisher finished", state)
    c.check(0 < sent_at_stop and at_restart < N, "entries published before the stop and after the restart",
            (sent_at_stop, at_restart))
    cl = rs.client()

    entries = read_stream(cl, "s")
    seqs = {f["n"].decode() for _, f in entries}
    c.eq(len(seqs), N, "distinct seq numbers in the stream after the restart (data kept)")
    sids = {e for e, _ in entries}
    wait_until(lambda: sids <= fn.ok_ids(), 60 * SLOW, desc="all stream entries delivered")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 20 * SLOW, desc="pending 0")
    missing = sids - fn.ok_ids()
    c.eq(len(missing), 0, "stream entries never delivered", )
    if missing:
        log(f"  first missing: {sorted(missing, key=id_key)[:10]}")
    c.check(fn.count() > at_stop, "deliveries resumed after the restart", f"{at_stop} -> {fn.count()}")
    byid = fn.by_id()
    dups = sum(len(v) - 1 for k, v in byid.items() if k in sids)
    log(f"duplicates: {dups}; publisher retries: {state['retries']}")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING count at the end")
    c.check(td.running(), "daemon still running after the restart")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")
    log(f"in={len(entries)} out(distinct)={len(sids & fn.ok_ids())} requests={fn.count()}")


run_test(body)
