"""`triggerd publish redis://H:P/STREAM`: the URL's path names the stream, or DB/STREAM when it
starts with a database number. A stream whose name holds a '/' (`redis://H:P/orders/eu`) was
taken as database atoi("orders") = 0 and stream "eu": the entry went, silently, to another
stream. Now a path whose first segment is not a number is the stream's whole name; DB/STREAM
(`/0/orders/eu`, `/3/clicks`) still selects the database, and the stream may hold a '/' there too."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403


def body(c):
    rs = RedisServer()
    cl = rs.client()
    cases = [("orders/eu", 0, "orders/eu"), ("0/orders/eu", 0, "orders/eu"),
             ("clicks", 0, "clicks"), ("3/clicks", 3, "clicks"), ("3/a/b", 3, "a/b")]
    for path, db, stream in cases:
        p = run_cli(["publish", rs.url_for(path), "--data", path])
        c.eq(p.returncode, 0, f"publish .../{path}: exit status")
        eid = p.stdout.strip()
        got = rs.client(db=db).xrange(stream) if db else cl.xrange(stream)
        c.eq([(e[0].decode(), e[1]) for e in got if e[0].decode() == eid],
             [(eid, {b"data": path.encode()})], f".../{path}: the entry is in db {db}, stream {stream!r}")
    for db in (0, 3):
        keys = sorted(k.decode() for k in (rs.client(db=db) if db else cl).keys("*"))
        want = sorted({s for _, d, s in cases if d == db})
        c.eq(keys, want, f"db {db} holds only the streams named")


run_test(body)
