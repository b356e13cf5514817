"""triggerd redrive: dead letters from a Redis stream and from a JSON-lines file go back through their
trigger. While the function still fails they return to the dead-letter target (nothing is lost); once it
is healthy they arrive without the dead-letter attributes and the target is empty. --dry-run changes
nothing; --limit and --reason select; a wrong --from is a usage error."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N1, N2 = 10, 6


def body(c):
    rs = RedisServer()
    cl = rs.client()
    state = {"healthy": False}

    def behaviour(req, attempt):
        if state["healthy"]:
            return (200, {}, b"", 0)
        d = req.json() if req.body else {}
        return (422, {}, b"no", 0) if d.get("final") else (503, {}, b"busy", 0)

    fn = FunctionServer(behaviour)
    dlfile = os.path.join(make_tempdir("td-redrive-"), "dead.jsonl")
    cfg = config(sources={"in1": redis_source(rs.url, "s1"), "in2": redis_source(rs.url, "s2")},
                 sinks={"fn": http_sink(fn.url), "dl": {"redis": {"url": rs.url, "stream": "dl"}},
                        "dlfile": {"file": {"path": dlfile}}},
                 triggers=[trigger("t1", "in1", "fn", dead_letter="dl", retry=1),
                           trigger("t2", "in2", "fn", dead_letter="dlfile", retry=1)])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")
    ids1 = publish_many(cl, "s1", N1)
    ids2 = publish_many(cl, "s2", N2, lambda i: {"n": str(i), **({"final": "1"} if i % 2 else {})})

    def file_lines():
        try:
            return [json.loads(l) for l in open(dlfile) if l.strip()]
        except FileNotFoundError:
            return []

    ok = wait_until(lambda: cl.xlen("dl") == N1 and len(file_lines()) == N2, 30 * SLOW,
                    desc="all dead-lettered")
    c.check(ok, "every event dead-lettered while the function fails")
    td.terminate()
    c.eq(td.wait(20 * SLOW), 0, "daemon stopped")
    cpath = td.config_path

    r = run_cli(["redrive", "-c", cpath, "--from", "nope"])
    c.eq(r.returncode, 2, "unknown target: exit 2")
    r = run_cli(["redrive", "-c", cpath, "--from", "fn"])
    c.eq(r.returncode, 2, "a target redrive cannot read: exit 2")

    r = run_cli(["redrive", "-c", cpath, "--from", "dl", "--dry-run"])
    c.eq(r.returncode, 0, "dry run exit 0")
    c.check(r.stdout.count("would redrive") == N1 and "trigger t1" in r.stdout, "dry run lists all",
            r.stdout[-300:])
    c.eq(cl.xlen("dl"), N1, "dry run changed nothing")

    # Still failing: three go back to the target, none is lost.
    before = fn.count()
    r = run_cli(["redrive", "-c", cpath, "--from", "dl", "--limit", "3"], timeout=60)
    c.check(r.returncode == 0 and "3 dead-lettered again" in r.stdout, "limit 3: dead-lettered again",
            (r.returncode, r.stdout, r.stderr[-500:]))
    c.eq(cl.xlen("dl"), N1, "the target still holds every event (3 replaced)")
    c.check(fn.count() - before >= 3, "the function was tried again")
    dls = read_dead_letters(cl, "dl")
    c.eq(sorted(f.get("ce_id") for _, f in dls), sorted(ids1), "same events in the target")
    c.check(all(f.get("ce_deadlettertrigger") == "t1" for _, f in dls), "dead letters name t1")

    # Healthy: everything arrives once, stripped, and the target is empty.
    state["healthy"] = True
    mark = fn.count()
    r = run_cli(["redrive", "-c", cpath, "--from", "dl"], timeout=60)
    c.check(r.returncode == 0 and f"{N1} delivered" in r.stdout, "redis redrive delivered",
            (r.returncode, r.stdout, r.stderr[-500:]))
    got = fn.snapshot()[mark:]
    c.eq(sorted(q.ce_id for q in got if q.status == 200), sorted(ids1), "each event arrived")
    leaked = [k for q in got for k in q.headers if k.startswith("ce-deadletter")
              or k.startswith("ce-knativeerror")]
    c.check(not leaked, "dead-letter attributes stripped", leaked[:5])
    c.check(all(q.ce("type") == "com.example.test" for q in got), "original attributes kept")
    c.eq(cl.xlen("dl"), 0, "the Redis target is empty afterwards")

    # The file target, with a reason filter first.
    finals = [e["id"] for e in file_lines() if e.get("deadletterreason") == "final_status"]
    c.eq(len(finals), N2 // 2, "file holds the final_status ones")
    mark = fn.count()
    r = run_cli(["redrive", "-c", cpath, "--from", "dlfile", "--reason", "final_status"], timeout=60)
    c.check(r.returncode == 0, "file redrive with --reason", (r.stdout, r.stderr[-500:]))
    c.eq(sorted(q.ce_id for q in fn.snapshot()[mark:]), sorted(finals), "only final_status redriven")
    rest = file_lines()
    c.eq(sorted(e["id"] for e in rest), sorted(set(ids2) - set(finals)), "the others stay in the file")
    r = run_cli(["redrive", "-c", cpath, "--from", "dlfile", "--trigger", "t2"], timeout=60)
    c.check(r.returncode == 0, "file redrive of the rest", (r.stdout, r.stderr[-500:]))
    c.eq(file_lines(), [], "the file target is empty afterwards")
    c.eq(fn.ok_ids() >= set(ids1) | set(ids2), True, "every event was delivered in the end")


run_test(body)
