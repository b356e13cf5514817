"""dead_letter to a file sink: one JSON line per dead letter, each a valid structured-mode CloudEvent
carrying the original event and the extension attributes; the entries are acked."""

import base64
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 20


def same(v, want):
    """Extension values may be JSON strings or, for integers, JSON numbers."""
    return v == want or (isinstance(want, str) and not isinstance(v, bool) and isinstance(v, int)
                         and str(v) == want)


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer(lambda req, a: (422, {}, b'{"why":"unprocessable"}', 0)
                        if req.json().get("bad") else (200, {}, b"ok", 0))
    path = os.path.join(make_tempdir("td-dlfile-"), "dead.jsonl")
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"fn": http_sink(fn.url), "dlfile": {"file": {"path": path}}},
                 triggers=[trigger("t1", "in", "fn", dead_letter="dlfile")])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")
    fields = lambda i: dict({"n": str(i)}, **({"bad": "1"} if i % 4 == 0 else {}))
    ids = publish_many(cl, "s", N, fields)
    bad = [ids[i] for i in range(N) if i % 4 == 0]
    good = [ids[i] for i in range(N) if i % 4]

    def lines():
        try:
            with open(path, "rb") as f:
                return [l for l in f.read().split(b"\n") if l.strip()]
        except FileNotFoundError:
            return []

    wait_until(lambda: set(good) <= fn.ok_ids() and len(lines()) >= len(bad), 15 * SLOW,
               desc="good delivered, bad in the file")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="pending 0")
    ls = lines()
    c.eq(len(ls), len(bad), "lines in the dead-letter file")
    evs, probs = [], []
    for l in ls:
        try:
            evs.append(json.loads(l.decode("utf-8")))
        except (UnicodeDecodeError, ValueError) as e:
            probs.append(f"not JSON: {e}: {l[:100]!r}")
    c.check(not probs, "every line is one JSON object", probs[:3])
    c.eq(sorted(e.get("id") for e in evs), sorted(bad), "dead-lettered ids = the rejected entries")
    orig = dict(read_stream(cl, "s"))
    for e in evs:
        eid = e.get("id")
        p = []
        for k, v in {"specversion": "1.0", "type": "com.example.test", "source": "/test",
                     "datacontenttype": "application/json", "knativeerrordest": fn.url,
                     "knativeerrorcode": "422", "knativeerrordata": b64(b'{"why":"unprocessable"}'),
                     "deadletterreason": "final_status", "deadletterattempts": "1",
                     "deadlettertrigger": "t1"}.items():
            if not same(e.get(k), v):
                p.append(f"{k}={e.get(k)!r} want {v!r}")
        want_data = {k: v.decode() for k, v in orig.get(eid, {}).items()}
        if e.get("data") != want_data:
            p.append(f"data={e.get('data')!r} want the JSON value {want_data}")
        try:
            if abs(parse_rfc3339_ms(e.get("time", "")) - entry_time_ms(eid)) >= 1:
                p.append(f"time={e.get('time')!r}")
        except (ValueError, AttributeError):
            p.append(f"time={e.get('time')!r}")
        bad_names = [k for k in e if k not in ("data", "data_base64") and not re.fullmatch(r"[a-z0-9]+", k)]
        if bad_names:
            p.append(f"attribute names not [a-z0-9]: {bad_names}")
        if p:
            probs.append(f"{eid}: " + "; ".join(p))
    c.check(evs and not probs, "each line: structured CloudEvent (specversion, id, type, source, time, "
            "datacontenttype, data as JSON) + knativeerror*/deadletter* attributes", probs[:4])
    c.eq(len(set(good) & fn.ok_ids()), len(good), "good events delivered")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING count (dead-lettered entries acked)")
    c.eq(len(set(good) & fn.ok_ids()) + len(ls), N, "in = delivered + dead-lettered")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")
    log(f"in={N} delivered={len(set(good) & fn.ok_ids())} dead={len(ls)} requests={fn.count()}")


run_test(body)
