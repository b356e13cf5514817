"""1 000 wrapped entries to a healthy function: each arrives exactly once, correctly normalized, and
every entry is acked. A binary-mode CloudEvent written by `triggerd publish` keeps its own attributes;
a plain publish (an entry whose only field is data) arrives as its payload, not wrapped."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 1000


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer()
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"fn": http_sink(fn.url)},
                 triggers=[trigger("t1", "in", "fn", concurrency=16)])

    # Half before the daemon starts (read from the group's start), half while it runs.
    fields = lambda i: {"n": str(i), "name": f"item-{i}", "empty": "", "quote": 'a "q" \\ b'}
    ids = publish_many(cl, "s", N // 2, fields)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon logs msg=ready")
    ids += publish_many(cl, "s", N - N // 2, lambda i: fields(i + N // 2))
    c.eq(len(set(ids)), N, "published entries")

    wait_until(lambda: len(fn.ok_ids() & set(ids)) >= N, 30 * SLOW, desc="all entries delivered")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="pending 0")
    reqs = [r for r in fn.snapshot() if r.ce_id in set(ids)]
    byid = {}
    for r in reqs:
        byid.setdefault(r.ce_id, []).append(r)
    c.eq(len(byid), N, "distinct entry ids that arrived (ce-id = entry id)")
    dups = sum(len(v) - 1 for v in byid.values())
    c.eq(dups, 0, "duplicate deliveries")
    c.eq(sorted(set(ids) - set(byid)), [], "entry ids that never arrived")

    bad = []
    for i, eid in enumerate(ids):
        rl = byid.get(eid)
        if not rl:
            continue
        r = rl[0]
        problems = []
        if r.method != "POST":
            problems.append(f"method {r.method}")
        if r.ce("specversion") != "1.0":
            problems.append(f"ce-specversion {r.ce('specversion')!r}")
        if r.ce("type") != "com.example.test":
            problems.append(f"ce-type {r.ce('type')!r}")
        if r.ce("source") != "/test":
            problems.append(f"ce-source {r.ce('source')!r}")
        t = r.ce("time")
        try:
            if t is None or abs(parse_rfc3339_ms(t) - entry_time_ms(eid)) >= 1.0:
                problems.append(f"ce-time {t!r} vs id ms {entry_time_ms(eid)}")
        except ValueError:
            problems.append(f"ce-time unparsable {t!r}")
        ct = r.header("content-type", "")
        if ct.split(";")[0].strip().lower() != "application/json":
            problems.append(f"content-type {ct!r}")
        try:
            if r.json() != fields(i):
                problems.append(f"body {r.body[:200]!r} != {fields(i)}")
        except ValueError:
            problems.append(f"body not JSON {r.body[:200]!r}")
        if problems:
            bad.append((eid, problems))
    c.check(not bad, "every wrapped event: POST, ce-specversion 1.0, ce-type/ce-source from the "
            "event block, ce-time = id ms, content-type application/json, body = fields as JSON",
            f"{len(bad)} bad, first: {bad[:3]}")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING count after delivery (all acked)")

    # A binary-mode CloudEvent written by `triggerd publish`.
    data = '{"hello":"world","n":1}'
    p = run_cli(["publish", rs.url_for("s"), "--data", data,
                 "--ce-type", "com.example.published", "--ce-source", "/cli", "--ce-id", "ev-42"])
    c.eq(p.returncode, 0, "triggerd publish --ce-* exit status")
    pid = p.stdout.strip()
    entries = dict(read_stream(cl, "s"))
    c.check(pid in entries, "publish prints the id of the entry it added", f"stdout {p.stdout!r}")
    ent = entries.get(pid, {})
    c.eq({k: ent.get(k) for k in ("ce_specversion", "ce_id", "ce_type", "ce_source", "data")},
         {"ce_specversion": b"1.0", "ce_id": b"ev-42", "ce_type": b"com.example.published",
          "ce_source": b"/cli", "data": data.encode()},
         "published entry is binary mode (ce_* fields, data)")
    c.check("content-type" in ent, "published entry has a content-type field", sorted(ent))
    wait_until(lambda: "ev-42" in fn.ok_ids(), 10 * SLOW, desc="published CloudEvent delivered")
    got = fn.by_id().get("ev-42", [])
    c.eq(len(got), 1, "published CloudEvent arrived once")
    if got:
        r = got[0]
        c.eq((r.ce("id"), r.ce("type"), r.ce("source"), r.ce("specversion")),
             ("ev-42", "com.example.published", "/cli", "1.0"),
             "published CloudEvent keeps its own id/type/source")
        c.eq(r.body, data.encode(), "published CloudEvent body = its data")
        c.eq(r.header("content-type"), ent.get("content-type", b"").decode(),
             "Content-Type = the entry's content-type field")

    # Plain publish (no --ce-*): an entry whose only field is data is delivered as that payload
    # (ce-id = entry id), with the content type detected from the bytes.
    plain = [(["--data", '{"plain": 1}'], None, b'{"plain": 1}', "application/json"),
             ([], "from-stdin\n", b"from-stdin\n", "text/plain; charset=utf-8")]
    for args, stdin, want_body, want_ct in plain:
        p = run_cli(["publish", rs.url_for("s")] + args, input=stdin)
        c.eq(p.returncode, 0, f"triggerd publish {args or 'stdin'} exit status")
        pid2 = p.stdout.strip()
        ent2 = dict(read_stream(cl, "s")).get(pid2)
        c.check(ent2 is not None and "ce_specversion" not in ent2 and ent2.get("data") == want_body,
                "plain publish writes an entry with field data and no ce_ fields", ent2)
        wait_until(lambda: pid2 in fn.ok_ids(), 10 * SLOW, desc="plain published entry delivered")
        got = fn.by_id().get(pid2, [])
        c.eq(len(got), 1, "plain published entry arrived once (ce-id = entry id)")
        if got:
            c.eq(got[0].body, want_body, "plain entry arrives as its payload, not {\"data\": ...}")
            c.eq(got[0].header("content-type"), want_ct, "content type detected from the payload")
            c.eq((got[0].ce("type"), got[0].ce("source")), ("com.example.test", "/test"),
                 "type and source from the trigger's event block")

    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW)
    total_in = cl.xlen("s")
    total_out = len(fn.ok_ids())
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING count at the end")
    c.eq(total_out, total_in, "messages in (stream length) = distinct events out")
    c.check(td.running(), "daemon still running")
    td.terminate()
    rc = td.wait(10 * SLOW)
    c.eq(rc, 0, "exit status after SIGTERM")
    log(f"in={total_in} out={total_out} requests={fn.count()}")


run_test(body)
