"""triggerd redrive builds only the sinks of the triggers it sends through.

The daemon dead-letters the events of two triggers into a Redis stream `dl` (the function fails).
The redrive then runs with the trigger file of a machine that holds more than those triggers: other
triggers on the same source deliver to a Kafka, a RabbitMQ and a Redis sink whose address is a
plain TCP listener that only counts the connections made to it (it speaks no protocol), a Kafka sink
whose tls.ca_file is not on this machine (as when the redrive runs where that sink's credentials
are not), and a file sink. And one of the two triggers now dead-letters to another stream `dl2`.
`redrive --from dl`, as a dry run, while the function still fails, and once it is healthy (then
`--from dl2`):
- succeeds and counts every dead letter: as many in as out (dead-lettered again, then delivered
  once each);
- the trigger whose dead_letter is no longer `dl` is built when its first entry comes, and what
  fails again goes to its new target;
- nothing connects to the listener, the file sink's file is never created, and nothing names an
  unused sink on stderr;
- an entry naming a trigger that needs the sink without its CA file is left in place (said once,
  exit 1) while the others are delivered; with `--trigger` naming it the redrive fails up front,
  naming the sink, and leaves the target as it was.
Before the fix every sink of the file was built: the first redrive failed on the missing CA file,
and without that sink the Kafka producers connected to the listener."""

import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N1, N2 = 12, 5
UNUSED = ("kafka_unused", "kafka_secure", "rabbit_unused", "redis_unused", "file_unused")


class ConnectionCounter:
    """A TCP listener on 127.0.0.1 that accepts, counts and closes every connection."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()
        at_cleanup(self.sock.close)

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.count += 1
            conn.close()

    def accepted(self):
        with self.lock:
            return self.count


def body(c):
    rs = RedisServer()
    cl = rs.client()
    probe = ConnectionCounter()
    tmp = make_tempdir("td-redrive-unused-")
    unused_file = os.path.join(tmp, "unused.jsonl")
    state = {"healthy": False}

    def behaviour(req, attempt):
        return (200, {}, b"", 0) if state["healthy"] else (503, {}, b"busy", 0)

    fn = FunctionServer(behaviour)
    sources = {"in": redis_source(rs.url, "in"), "in2": redis_source(rs.url, "in2")}
    sinks = {"fn": http_sink(fn.url), "dl": {"redis": {"url": rs.url, "stream": "dl"}}}
    triggers = [trigger("t", "in", "fn", retry=1, backoff_delay="50ms", dead_letter="dl"),
                trigger("t_moved", "in2", "fn", retry=1, backoff_delay="50ms", dead_letter="dl")]
    td = Triggerd(config(sources, sinks, triggers)).start()
    c.check(td.wait_ready(10), "daemon ready")
    ids1 = publish_many(cl, "in", N1)
    ids2 = publish_many(cl, "in2", N2)
    ok = wait_until(lambda: cl.xlen("dl") == N1 + N2, 30 * SLOW, desc="all dead-lettered")
    c.check(ok, "every event dead-lettered while the function fails", cl.xlen("dl"))
    td.terminate()
    c.eq(td.wait(20 * SLOW), 0, "daemon stopped")

    # The redrive's trigger file: the same triggers (t_moved now dead-letters to dl2) and
    # unrelated ones whose sinks the redrive must not build.
    at = f"127.0.0.1:{probe.port}"
    sinks2 = dict(sinks)
    sinks2.update({
        "dl2": {"redis": {"url": rs.url, "stream": "dl2"}},
        "file_unused": {"file": {"path": unused_file}},
        "rabbit_unused": {"rabbitmq": {"url": f"amqp://guest:guest@{at}/%2f",
                                       "exchange": "amq.direct", "routing_key": "other"}},
        "redis_unused": {"redis": {"url": f"redis://{at}/0", "stream": "other"}},
        "kafka_unused": {"kafka": {"brokers": at, "topic": "other"}},
        # last: before the fix, building it failed the redrive after the others were built
        "kafka_secure": {"kafka": {"brokers": at, "topic": "other",
                                   "tls": {"ca_file": os.path.join(tmp, "not-here-ca.pem")}}},
    })
    triggers2 = [trigger("t", "in", "fn", retry=1, backoff_delay="50ms", dead_letter="dl"),
                 trigger("t_moved", "in2", "fn", retry=1, backoff_delay="50ms", dead_letter="dl2"),
                 trigger("other_kafka", "in", "kafka_unused", dead_letter="kafka_secure"),
                 trigger("other_rabbit", "in", "rabbit_unused", dead_letter="file_unused"),
                 trigger("other_redis", "in", "redis_unused", dead_letter="redis_unused")]
    cpath = Triggerd(config(sources, sinks2, triggers2), name="redrive-file").config_path
    r = run_cli(["check", "-c", cpath])
    c.eq(r.returncode, 0, "the redrive's trigger file is valid")

    def clean(r, what):
        c.check(not any(m in r.stderr for m in ("AddressSanitizer", "LeakSanitizer",
                                                   "runtime error:")),
                f"{what}: no sanitizer report", r.stderr[-2000:])

    def quiet(r, what):
        named = [n for n in UNUSED if n in r.stderr]
        c.check(not named, f"{what}: no unused sink named on stderr", (named, r.stderr[-600:]))
        clean(r, what)

    r = run_cli(["redrive", "-c", cpath, "--from", "dl", "--dry-run"], timeout=60)
    c.check(r.returncode == 0 and r.stdout.count("would redrive") == N1 + N2,
            "dry run lists every dead letter", (r.returncode, r.stdout[-400:], r.stderr[-600:]))
    quiet(r, "dry run")
    c.eq(cl.xlen("dl"), N1 + N2, "dry run changed nothing")

    # Still failing: every entry goes through its trigger and back to its dead-letter target.
    r = run_cli(["redrive", "-c", cpath, "--from", "dl"], timeout=90)
    c.check(r.returncode == 0 and f"redriven {N1 + N2} entries" in r.stdout
            and f"{N1 + N2} dead-lettered again" in r.stdout,
            "still failing: every entry dead-lettered again", (r.returncode, r.stdout, r.stderr[-800:]))
    quiet(r, "redrive while failing")
    dls, dls2 = read_dead_letters(cl, "dl"), read_dead_letters(cl, "dl2")
    c.eq(sorted(f.get("ce_id") for _, f in dls), sorted(ids1), "t's events are back in dl")
    c.eq(sorted(f.get("ce_id") for _, f in dls2), sorted(ids2),
         "t_moved, built for its first entry, sent its events to its new target dl2")

    # Healthy: each dead letter delivered exactly once, the targets drained.
    state["healthy"] = True
    mark = fn.count()
    r = run_cli(["redrive", "-c", cpath, "--from", "dl"], timeout=60)
    c.check(r.returncode == 0 and f"redriven {N1} entries" in r.stdout
            and f"{N1} delivered" in r.stdout, "dl: every entry delivered",
            (r.returncode, r.stdout, r.stderr[-800:]))
    quiet(r, "redrive from dl")
    r = run_cli(["redrive", "-c", cpath, "--from", "dl2"], timeout=60)
    c.check(r.returncode == 0 and f"redriven {N2} entries" in r.stdout
            and f"{N2} delivered" in r.stdout, "dl2: every entry delivered",
            (r.returncode, r.stdout, r.stderr[-800:]))
    quiet(r, "redrive from dl2")
    got = [q.ce_id for q in fn.snapshot()[mark:] if q.status == 200]
    c.eq(sorted(got), sorted(ids1 + ids2), "each dead letter delivered exactly once")
    c.eq((cl.xlen("dl"), cl.xlen("dl2")), (0, 0), "both targets are empty")

    c.eq(probe.accepted(), 0, "no connection to the unused Kafka, RabbitMQ and Redis sinks")
    c.check(not os.path.exists(unused_file), "the unused file sink's file was never created")

    # Entries naming a trigger that needs the sink whose CA file is missing.
    def dead_letter(ce_id, trg):
        cl.xadd("dl", {"ce_specversion": "1.0", "ce_id": ce_id, "ce_source": "/test",
                       "ce_type": "com.example.test", "ce_deadlettertrigger": trg, "data": "{}"})
    dead_letter("x1", "other_kafka")
    dead_letter("x2", "t")
    dead_letter("x3", "other_kafka")
    mark = fn.count()
    r = run_cli(["redrive", "-c", cpath, "--from", "dl"], timeout=60)
    c.check(r.returncode == 1 and "redriven 1 entries" in r.stdout and "1 delivered" in r.stdout
            and "2 skipped" in r.stdout and r.stderr.count("kafka_secure") == 1,
            "an entry whose trigger cannot be built: said once, its entries skipped, exit 1",
            (r.returncode, r.stdout, r.stderr[-800:]))
    clean(r, "redrive with an unbuildable trigger")
    c.eq([q.ce_id for q in fn.snapshot()[mark:]], ["x2"], "the other entry was delivered")
    c.eq(sorted(f.get("ce_id") for _, f in read_dead_letters(cl, "dl")), ["x1", "x3"],
         "the skipped entries stay in the target")
    r = run_cli(["redrive", "-c", cpath, "--from", "dl", "--trigger", "other_kafka"], timeout=60)
    c.check(r.returncode == 1 and "kafka_secure" in r.stderr and "ca_file" in r.stderr
            and "redriven" not in r.stdout,
            "--trigger naming it fails up front, naming the sink",
            (r.returncode, r.stdout, r.stderr[-800:]))
    clean(r, "--trigger with an unbuildable trigger")
    c.eq(cl.xlen("dl"), 2, "and leaves the target as it was")


run_test(body)
