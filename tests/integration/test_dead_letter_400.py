"""A final 4xx dead-letters the event at once with the Knative/triggerd extension attributes; a
retryable status dead-letters it after the retries are exhausted. Nothing else is dead-lettered, nothing
is left pending."""

import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 100
BIG = (b"internal error; " * 200)[:2000]  # longer than the 1024-byte knativeerrordata limit


def behaviour(req, attempt):
    if req.path.startswith("/always500"):
        return (500, {"Content-Type": "text/plain"}, BIG, 0)
    try:
        d = req.json()
    except ValueError:
        return (200, {}, b"", 0)
    if d.get("bad") == "true":
        return (400, {"Content-Type": "application/json"},
                json.dumps({"error": "bad input", "n": d.get("n")}).encode(), 0)
    return (200, {}, b"ok", 0)


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer(behaviour)
    url500 = fn.url + "always500"
    cfg = config(sources={"in": redis_source(rs.url, "s"), "in2": redis_source(rs.url, "s2")},
                 sinks={"fn": http_sink(fn.url), "fn500": http_sink(url500),
                        "dead": {"redis": {"url": rs.url, "stream": "dead"}}},
                 triggers=[trigger("t1", "in", "fn", retry=3, dead_letter="dead"),
                           trigger("t2", "in2", "fn500", etype="com.example.five", esource="/five",
                                   retry=2, backoff_delay="50ms", backoff_max="100ms",
                                   dead_letter="dead")])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")

    fields = lambda i: dict({"n": str(i)}, **({"bad": "true"} if i % 10 == 3 else {}))
    ids = publish_many(cl, "s", N, fields)
    bad_ids = {ids[i] for i in range(N) if i % 10 == 3}
    good_ids = set(ids) - bad_ids
    ids2 = publish_many(cl, "s2", 5, lambda i: {"k": f"v{i}"})

    def dead_ids():
        return {f.get("ce_id") for _, f in read_dead_letters(cl, "dead")} if cl.exists("dead") else set()

    wait_until(lambda: good_ids <= fn.ok_ids() and (bad_ids | set(ids2)) <= dead_ids(), 30 * SLOW,
               desc="good delivered and bad dead-lettered")
    wait_until(lambda: pending_count(cl, "s", "g") == 0 and pending_count(cl, "s2", "g") == 0,
               10 * SLOW, desc="pending 0")

    dl = read_dead_letters(cl, "dead")
    dl1 = [f for _, f in dl if f.get("ce_deadlettertrigger") == "t1"]
    dl2 = [f for _, f in dl if f.get("ce_deadlettertrigger") == "t2"]
    c.eq(sorted(f.get("ce_id") for f in dl1), sorted(bad_ids),
         "t1 dead letters are exactly the 10 bad events (by ce_id)")
    c.eq(len(fn.ok_ids() & good_ids), len(good_ids), "good events delivered (2xx)")
    byid = fn.by_id("/")
    c.eq(sorted(len(byid.get(e, [])) for e in bad_ids), [1] * len(bad_ids),
         "each bad event attempted once (400 is final, no retry)")
    c.eq(sum(len(byid.get(e, [])) for e in good_ids), len(good_ids), "each good event attempted once")

    src = dict(read_stream(cl, "s"))
    probs = []
    for f in dl1:
        eid = f.get("ce_id")
        orig = src.get(eid, {})
        want_body = json.dumps({"error": "bad input", "n": orig.get("n", b"").decode()}).encode()
        exp = {"ce_specversion": "1.0", "ce_type": "com.example.test", "ce_source": "/test",
               "ce_knativeerrordest": fn.url, "ce_knativeerrorcode": "400",
               "ce_knativeerrordata": b64(want_body), "ce_deadletterreason": "final_status",
               "ce_deadletterattempts": "1", "ce_deadlettertrigger": "t1",
               "content-type": "application/json"}
        for k, v in exp.items():
            if f.get(k) != v:
                probs.append(f"{eid}: {k}={f.get(k)!r} want {v!r}")
        try:
            if json.loads(f.get("data", "")) != {k: v.decode() for k, v in orig.items()}:
                probs.append(f"{eid}: data {f.get('data')!r} != original fields")
        except ValueError:
            probs.append(f"{eid}: data not JSON {f.get('data')!r}")
        try:
            if abs(parse_rfc3339_ms(f.get("ce_time", "")) - entry_time_ms(eid)) >= 1:
                probs.append(f"{eid}: ce_time {f.get('ce_time')!r}")
        except ValueError:
            probs.append(f"{eid}: ce_time {f.get('ce_time')!r}")
    c.check(dl1 and not probs, "final_status dead letters carry the original event + reason "
            "final_status, code 400, attempts 1, errordata = base64(body), errordest, trigger t1",
            f"{len(probs)} problems: {probs[:6]}")

    # retries exhausted
    c.eq(sorted(f.get("ce_id") for f in dl2), sorted(ids2), "t2 dead letters = the 5 events of s2")
    byid5 = fn.by_id("/always500")
    c.eq(sorted(len(byid5.get(e, [])) for e in ids2), [3] * len(ids2),
         "retry: 2 on always-500: exactly 3 attempts per event")
    probs = []
    for f in dl2:
        exp = {"ce_type": "com.example.five", "ce_source": "/five", "ce_knativeerrordest": url500,
               "ce_knativeerrorcode": "500", "ce_deadletterreason": "retries_exhausted",
               "ce_deadletterattempts": "3", "ce_deadlettertrigger": "t2"}
        for k, v in exp.items():
            if f.get(k) != v:
                probs.append(f"{f.get('ce_id')}: {k}={f.get(k)!r} want {v!r}")
        try:
            ed = base64.b64decode(f.get("ce_knativeerrordata", ""), validate=True)
            if ed != BIG[:1024]:
                probs.append(f"errordata decodes to {len(ed)} bytes, want the first 1024 of the body")
        except ValueError:
            probs.append(f"errordata not base64: {f.get('ce_knativeerrordata', '')[:60]!r}")
    c.check(dl2 and not probs, "retries_exhausted dead letters: code 500, attempts 3, errordata = "
            "base64 of the body's first 1024 bytes", f"{probs[:6]}")

    c.eq(len(dl), len(bad_ids) + len(ids2), "dead-letter stream length (nothing else dead-lettered)")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING s at the end")
    c.eq(pending_count(cl, "s2", "g"), 0, "XPENDING s2 at the end")
    out = len(fn.ok_ids() & set(ids)) + len(dl)
    c.eq(out, N + len(ids2), "in = delivered + dead-lettered")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")
    log(f"in={N + len(ids2)} delivered={len(fn.ok_ids() & set(ids))} dead={len(dl)} requests={fn.count()}")


run_test(body)
