"""The Redis source's group or stream vanishes under a blocked XREADGROUP: the read gets an error
reply (NOGROUP after XGROUP DESTROY, an error after DEL of the stream), the source reconnects,
recreates the group and delivers what comes next. Nothing is lost: every entry written reaches
the function (those of the destroyed group again, since the new group starts at the beginning:
at least once), the daemon stays up with no sanitizer report, and the pending list ends empty.
The XREADGROUP reply is built in an arena owned by its connection: a disconnect while it is being
handled must wait until it has been freed (this test crashed the daemon when it did not)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 20


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer()
    cfg = config(sources={"in": redis_source(rs.url, "s", block="5s")},
                 sinks={"fn": http_sink(fn.url)},
                 triggers=[trigger("t1", "in", "fn", concurrency=8)])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon logs msg=ready")

    ids = publish_many(cl, "s", N, lambda i: {"n": str(i)})
    wait_until(lambda: len(fn.ok_ids() & set(ids)) >= N, 20 * SLOW, desc="first entries delivered")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="first entries acked")

    # The source is now blocked in XREADGROUP ... BLOCK 5000 on an empty stream.
    cl.execute_command("XGROUP", "DESTROY", "s", "g")
    more = publish_many(cl, "s", N, lambda i: {"n": str(N + i)})
    wait_until(lambda: len(fn.ok_ids() & set(more)) >= N, 30 * SLOW,
               desc="entries written after XGROUP DESTROY delivered")
    c.check(td.running(), "the daemon survived the NOGROUP error reply")

    # The stream itself deleted under the blocked read.
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="pending 0 before DEL")
    cl.delete("s")
    last = publish_many(cl, "s", N, lambda i: {"n": str(2 * N + i)})
    wait_until(lambda: len(fn.ok_ids() & set(last)) >= N, 30 * SLOW,
               desc="entries written after DEL of the stream delivered")
    c.check(td.running(), "the daemon survived the stream's deletion")

    every = set(ids) | set(more) | set(last)
    c.eq(sorted(every - fn.ok_ids()), [], "entry ids that never arrived")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="pending 0 at the end")
    c.eq(pending_count(cl, "s", "g"), 0, "entries left pending")
    c.check(any("NOGROUP" in (l.get("msg") or "") for l in td.logs()),
            "the NOGROUP reply was logged (the error path ran)")

    td.terminate()
    c.eq(td.wait(20), 0, "exit status after SIGTERM")
    c.eq(td.sanitizer_reports(), [], "sanitizer reports")


if __name__ == "__main__":
    run_test(body)
