"""`triggerd publish redis://H:P/STREAM --ce-* --header K=V --key K` as DESIGN's command line
writes it: a binary-mode entry whose `ce_K` field is each --header (an extension attribute) and
`ce_partitionkey` the --key, and the function receives them as `ce-K` and `ce-partitionkey`.

An extension name longer than 63 characters (attribute names may have up to 200) was cut to 63 by
a fixed buffer, so the entry and the function got another attribute than the one asked for; one
of 200 characters must arrive whole, and one of 201 is refused (exit 1, nothing written) with a
message that says it is too long and gives the limit (it used to say "invalid attribute name",
as for a name with a character outside [a-z0-9], such as X-Team)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer()
    cfg = config(sources={"in": redis_source(rs.url, "s")}, sinks={"fn": http_sink(fn.url)},
                 triggers=[trigger("t", "in", "fn")])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")

    long64 = "x" * 64
    long200 = "y" * 200
    p = run_cli(["publish", rs.url_for("s"), "--data", '{"n": 1}', "--key", "k1",
                 "--header", "team=media", "--header", f"{long64}=v64",
                 "--header", f"{long200}=v200",
                 "--ce-type", "com.example.click", "--ce-source", "/cli", "--ce-id", "ev-1"])
    c.eq(p.returncode, 0, "publish --ce-* --header --key: exit status")
    ent = dict(read_stream(cl, "s")).get(p.stdout.strip(), {})
    c.eq({k: ent.get(k) for k in ("ce_specversion", "ce_id", "ce_team", "ce_partitionkey",
                                  "ce_" + long64, "ce_" + long200, "data")},
         {"ce_specversion": b"1.0", "ce_id": b"ev-1", "ce_team": b"media",
          "ce_partitionkey": b"k1", "ce_" + long64: b"v64", "ce_" + long200: b"v200",
          "data": b'{"n": 1}'},
         "the entry: binary mode, each --header a ce_ field under its whole name, --key as "
         "ce_partitionkey")
    c.eq(sorted(k for k in ent if k.startswith("ce_x") or k.startswith("ce_y")),
         sorted(["ce_" + long64, "ce_" + long200]), "no field under a shortened name")

    wait_until(lambda: "ev-1" in fn.ok_ids(), 10 * SLOW, desc="published event delivered")
    got = fn.by_id().get("ev-1", [])
    c.eq(len(got), 1, "the event arrived once")
    if got:
        r = got[0]
        c.eq((r.ce("team"), r.ce("partitionkey"), r.ce(long64), r.ce(long200)),
             ("media", "k1", "v64", "v200"), "the function gets every extension under its name")

    before = cl.xlen("s")
    p = run_cli(["publish", rs.url_for("s"), "--data", "x", "--ce-id", "ev-2",
                 "--header", "z" * 201 + "=v"])
    c.check(p.returncode == 1 and "is too long (201 characters, at most 200)" in p.stderr
            and "invalid attribute name" not in p.stderr,
            "a 201-character extension name is refused as too long, with the limit",
            (p.returncode, p.stderr))
    p = run_cli(["publish", rs.url_for("s"), "--data", "x", "--ce-id", "ev-3",
                 "--header", "X-Team=v"])
    c.check(p.returncode == 1 and "invalid attribute name 'X-Team'" in p.stderr,
            "a name with characters outside [a-z0-9] is refused as invalid",
            (p.returncode, p.stderr))
    c.eq(cl.xlen("s"), before, "nothing written for the refused ones")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "daemon exit status")


run_test(body)
