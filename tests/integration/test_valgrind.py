"""The daemon under valgrind (memcheck): 20 events delivered and 2 dead-lettered, then SIGTERM; exit 0
means no invalid access and no definite leak (--error-exitcode=3)."""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 20


def body(c):
    if SANITIZE:
        log("SKIP: sanitizer build (valgrind and ASan do not mix)")
        return SKIP
    vg = shutil.which("valgrind")
    if not vg:
        log("SKIP: valgrind not installed")
        return SKIP
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer(lambda req, a: (400, {}, b"no", 0) if b'"bad"' in req.body
                        else (503, {}, b"", 0) if a == 1 and req.body.endswith(b'"3"}')
                        else (200, {}, b"ok", 0))
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"fn": http_sink(fn.url, timeout="10s"),
                        "dead": {"redis": {"url": rs.url, "stream": "dead"}}},
                 triggers=[trigger("t1", "in", "fn", timeout="10s", backoff_delay="50ms",
                                   dead_letter="dead")])
    vlog = os.path.join(make_tempdir("td-vg-"), "valgrind.log")
    td = Triggerd(cfg, name="triggerd (valgrind)",
                  wrapper=[vg, "--leak-check=full", "--errors-for-leak-kinds=definite",
                           "--error-exitcode=3", "--track-fds=no", f"--log-file={vlog}"])
    td.start()
    c.check(td.wait_ready(60), "daemon ready under valgrind")
    ids = publish_many(cl, "s", N, lambda i: {"n": str(i)})
    bad = publish_many(cl, "s", 2, lambda i: {"bad": "yes", "n": str(i)})
    wait_until(lambda: set(ids) <= fn.ok_ids() and cl.exists("dead") and cl.xlen("dead") >= 2, 60,
               desc="delivered and dead-lettered")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 30, desc="pending 0")
    c.eq(len(set(ids) & fn.ok_ids()), N, "events delivered under valgrind")
    c.eq(cl.xlen("dead") if cl.exists("dead") else 0, 2, "events dead-lettered under valgrind")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING count")
    td.terminate()
    rc = td.wait(60)
    c.eq(rc, 0, "exit status under valgrind after SIGTERM (3 = memcheck errors)")
    try:
        report = open(vlog).read()
    except OSError:
        report = ""
    c.check("Memcheck" in report and "ERROR SUMMARY" in report,
            "the daemon really ran under memcheck (its report is complete)", f"{len(report)} bytes")
    summary = [l for l in report.splitlines() if "ERROR SUMMARY" in l or "definitely lost" in l
               or "All heap blocks were freed" in l or "still reachable" in l]
    log("valgrind: " + " | ".join(s.split("== ", 1)[-1] for s in summary))
    if rc != 0:
        log(report[-6000:])
    log(f"in={N + 2} delivered={len(set(ids) & fn.ok_ids())} dead={cl.xlen('dead') if cl.exists('dead') else 0}")


run_test(body)
