"""`triggerd redrive` removes each Redis dead letter as soon as it was redelivered, not at the end:
128 dead letters, a slow function (concurrency 1), SIGKILL once 34 arrived. Every event is then either
delivered or still in the dead-letter stream (nothing lost); what was delivered is gone from it except
at most what was in flight at the kill; a second redrive sends the rest, so little is sent twice. The
summary line counts what was done; on a terminal a progress line comes every second."""

import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N, KILL_AT, INFLIGHT = 128, 34, 2


def body(c):
    rs = RedisServer()
    cl = rs.client()
    state = {"delay": 0.05}
    fn = FunctionServer(lambda req, attempt: (200, {}, b"", state["delay"]))
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"fn": http_sink(fn.url), "dl": {"redis": {"url": rs.url, "stream": "dl"}}},
                 triggers=[trigger("t1", "in", "fn", dead_letter="dl", concurrency=1)])
    td = Triggerd(cfg)  # only for its trigger file: redrive reads it
    ids = [f"ev-{i}" for i in range(N)]
    for eid in ids:
        cl.xadd("dl", {"ce_specversion": "1.0", "ce_id": eid, "ce_type": "com.example.test",
                       "ce_source": "/test", "ce_deadletterreason": "retries_exhausted",
                       "ce_deadlettertrigger": "t1", "content-type": "application/json",
                       "data": '{"n": 1}'})

    def in_dl():
        return {f.get("ce_id") for _, f in read_dead_letters(cl, "dl")}

    p = subprocess.Popen([triggerd_binary(), "redrive", "-c", td.config_path, "--from", "dl"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    at_cleanup(lambda: p.poll() is None and p.kill())
    ok = wait_until(lambda: len(fn.ok_ids()) >= KILL_AT, 30 * SLOW, interval=0.005,
                    desc=f"{KILL_AT} redelivered")
    c.check(ok, f"{KILL_AT} events redelivered before the kill")
    p.send_signal(signal.SIGKILL)
    p.wait()
    delivered = fn.ok_ids() & set(ids)
    left = in_dl()
    log(f"killed after {len(delivered)} delivered; {len(left)} left in the dead-letter stream")
    c.eq(sorted(set(ids) - delivered - left), [], "nothing lost: each event delivered or still there")
    both = delivered & left
    c.check(len(both) <= INFLIGHT, f"delivered ones are gone from the stream (at most {INFLIGHT} "
            "in flight at the kill remain)", sorted(both))
    c.check(len(left) <= N - len(delivered) + INFLIGHT and len(left) < N,
            "the stream shrank while redrive ran", len(left))

    # The rest, with stderr on a terminal: a progress line every second while it works.
    state["delay"] = 0.025
    master, slave = os.openpty()
    p2 = subprocess.Popen([triggerd_binary(), "redrive", "-c", td.config_path, "--from", "dl"],
                          stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    out, _ = p2.communicate(timeout=60 * SLOW)
    tty = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        tty += chunk
    os.close(master)
    r = subprocess.CompletedProcess(p2.args, p2.returncode, out, tty.decode(errors="replace"))
    updates = [u for u in r.stderr.split("\r") if u.startswith("redrive: ")]
    c.check(len(updates) >= 2 and "removed from the target" in updates[0],
            "on a terminal: progress lines while it works", r.stderr[-400:])
    c.eq(r.returncode, 0, "second redrive exit 0")
    c.check(f"redriven {len(left)} entries" in r.stdout and f"{len(left)} delivered" in r.stdout,
            "the summary counts what was redriven", r.stdout)
    c.eq(cl.xlen("dl"), 0, "the dead-letter stream is empty at the end")
    c.eq(sorted(set(ids) - fn.ok_ids()), [], "every event delivered in the end")
    twice = [eid for eid, v in fn.by_id().items() if eid in set(ids) and len(v) > 1]
    c.check(len(twice) <= INFLIGHT, "little sent twice (only what was in flight at the kill)",
            twice)


run_test(body)
