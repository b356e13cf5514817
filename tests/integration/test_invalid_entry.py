"""Invalid input never crashes or vanishes: a broken binary-mode CloudEvent (no ce_id) is dead-lettered
with reason invalid_event; an entry with binary, non-UTF-8 values is wrapped and delivered; the daemon keeps
running; and when the dead-letter target itself is down, the entry stays pending until it comes back."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer(lambda req, a: (400, {}, b"rejected", 0) if req.path == "/reject"
                        else (200, {}, b"ok", 0))
    dl_port = free_port()  # nothing listens here until the second half
    cfg = config(sources={"in": redis_source(rs.url, "s"), "in2": redis_source(rs.url, "s2")},
                 sinks={"fn": http_sink(fn.url), "reject": http_sink(fn.url + "reject"),
                        "dead": {"redis": {"url": rs.url, "stream": "dead"}},
                        "deadhttp": http_sink(f"http://127.0.0.1:{dl_port}/dl", timeout="1s")},
                 triggers=[trigger("t1", "in", "fn", dead_letter="dead"),
                           trigger("t2", "in2", "reject", retry=1, backoff_delay="100ms",
                                   backoff_max="500ms", dead_letter="deadhttp")])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")

    invalid = cl.xadd("s", {"ce_specversion": "1.0", "ce_type": "com.example.broken",
                            "ce_source": "/broken", "content-type": "text/plain",
                            "data": "no id"}).decode()
    binary = cl.xadd("s", {"blob": b"\xff\xfe\x00\x01\x80bin", "text": "ok",
                           "latin1": "caf\xe9".encode("latin-1")}).decode()
    after = cl.xadd("s", {"n": "after"}).decode()

    def dead():
        return read_dead_letters(cl, "dead") if cl.exists("dead") else []

    wait_until(lambda: {binary, after} <= fn.ok_ids() and dead(), 15 * SLOW,
               desc="binary + after delivered, invalid dead-lettered")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="pending 0")
    dl = [f for _, f in dead()]
    c.eq(len(dl), 1, "exactly one dead letter")
    if dl:
        f = dl[0]
        c.eq(f.get("ce_deadletterreason"), "invalid_event", "dead letter reason")
        c.eq(f.get("data"), "no id", "dead letter keeps the original data")
        c.eq(f.get("ce_type"), "com.example.broken", "dead letter keeps the original type")
    c.eq([r for r in fn.snapshot() if r.ce("type") == "com.example.broken"], [],
         "the invalid event never reached the function")
    got = fn.by_id().get(binary, [])
    c.eq(len(got), 1, "entry with binary field values delivered once (wrapped, ce-id = entry id)")
    if got:
        r = got[0]
        try:
            d = json.loads(r.body.decode("utf-8"))
            c.check(isinstance(d, dict) and d.get("text") == "ok" and "blob" in d and "latin1" in d,
                    "its body is valid UTF-8 JSON with every field", d)
        except (UnicodeDecodeError, ValueError) as e:
            c.check(False, "its body is valid UTF-8 JSON with every field", f"{e}: {r.body[:100]!r}")
        c.eq(r.ce("type"), "com.example.test", "wrapped: ce-type from the event block")
    c.eq(len(fn.by_id().get(after, [])), 1, "the next entry is delivered too")
    c.check(td.running(), "daemon keeps running")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING s (all three acked)")

    # Dead-letter target down: the function answers 400 (final) and deadhttp refuses connections.
    e2 = cl.xadd("s2", {"n": "doomed"}).decode()
    c.check(wait_until(lambda: fn.by_id("/reject").get(e2), 10 * SLOW), "function answered 400")
    # The entry must stay pending for as long as the target is down: watch it for 3 s.
    t_end = time.monotonic() + 3.0
    always = True
    while time.monotonic() < t_end:
        if e2 not in pending_ids(cl, "s2", "g"):
            always = False
            break
        time.sleep(0.1)
    c.check(always, "entry stays pending (not acked, not lost) while the dead-letter target is down")
    c.eq(len(fn.by_id("/reject").get(e2, [])), 1, "400 is final: the function is not called again")
    c.check(td.running(), "daemon keeps running while the dead-letter target fails")

    # The target comes back: the dead letter is retried, delivered, and the entry acked.
    dls = FunctionServer(port=dl_port)
    c.check(wait_until(lambda: dls.by_id().get(e2), 30 * SLOW), "dead letter delivered once the target is up")
    c.check(wait_until(lambda: pending_count(cl, "s2", "g") == 0, 10 * SLOW), "entry acked after that")
    got = dls.by_id().get(e2, [])
    if got:
        r = got[0]
        c.eq((r.ce("deadletterreason"), r.ce("knativeerrorcode"), r.ce("deadlettertrigger")),
             ("final_status", "400", "t2"), "HTTP dead letter carries reason/code/trigger as ce- headers")
        c.eq(r.ce("knativeerrordata"), b64(b"rejected"), "HTTP dead letter: knativeerrordata")
    c.eq(pending_count(cl, "s", "g") + pending_count(cl, "s2", "g"), 0, "XPENDING at the end")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")
    log(f"in=4 delivered={len(fn.ok_ids())} dead(redis)={len(dead())} dead(http)={len(dls.ok_ids())}")


run_test(body)
