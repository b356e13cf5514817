"""Host names on the loop's clients: an HTTP sink whose URL names its host (as a Kubernetes Service's
cluster DNS name does) is served by the lean client, which looks the name up on its resolver thread
(never on the loop), connects, and keeps the connections; a name that does not resolve fails each
attempt as libcurl does ("Couldn't resolve host name"), is retried, and ends in the dead-letter
stream, while the other sink's deliveries go on. The Redis sink (here the dead-letter target, named
by "localhost") looks its host up the same way; one whose name does not resolve keeps its dead
letters' messages unacknowledged (retried, never lost) while everything else flows. Counts in and
out: nothing is lost."""

import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 300
N_GONE = 5
N_NODL = 4


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer()
    # localhost is a name like any other to the lean client (RFC 6761 reserves .invalid: no
    # resolver may answer it).
    local = rs.url.replace("127.0.0.1", "localhost")
    cfg = config(sources={"in": redis_source(rs.url, "s"), "in2": redis_source(rs.url, "s2"),
                          "in3": redis_source(rs.url, "s3")},
                 sinks={"fn": http_sink(f"http://localhost:{fn.port}/"),
                        "gone": http_sink(f"http://no-such-function.invalid:{fn.port}/"),
                        "dead": {"redis": {"url": local, "stream": "dead"}},
                        "nodl": {"redis": {"url": "redis://no-such-redis.invalid:6379/0",
                                           "stream": "dead", "timeout": "1s"}}},
                 triggers=[trigger("t1", "in", "fn"),
                           trigger("t2", "in2", "gone", etype="com.example.gone", retry=2,
                                   backoff_delay="50ms", backoff_max="100ms", dead_letter="dead"),
                           trigger("t3", "in3", "gone", etype="com.example.nodl", retry=0,
                                   backoff_delay="50ms", backoff_max="100ms", dead_letter="nodl")])
    td = Triggerd(cfg, env={"TD_HTTP_CLIENT": ""}).start()
    c.check(td.wait_ready(10 * SLOW), "daemon ready")
    msgs = [l.get("msg", "") for l in td.logs()]
    c.check("sink 'fn': the lean HTTP client" in msgs, "a host name is served by the lean client",
            [m for m in msgs if m.startswith("sink '")])
    c.check("sink 'gone': the lean HTTP client" in msgs, "so is one that does not resolve")

    nodl = publish_many(cl, "s3", N_NODL, lambda i: {"x": str(i)})
    gone = publish_many(cl, "s2", N_GONE, lambda i: {"g": str(i)})
    ids = publish_many(cl, "s", N, lambda i: {"n": str(i)})

    def dead_ids():
        return {f.get("ce_id") for _, f in read_dead_letters(cl, "dead")} if cl.exists("dead") else set()

    wait_until(lambda: set(ids) <= fn.ok_ids() and set(gone) <= dead_ids(), 60 * SLOW,
               desc="delivered through the name, and the unresolvable one dead-lettered")
    wait_until(lambda: pending_count(cl, "s", "g") == 0 and pending_count(cl, "s2", "g") == 0,
               30 * SLOW, desc="pending 0")
    wait_until(lambda: any("resolving no-such-redis.invalid" in l.get("msg", "") for l in td.logs()),
               30 * SLOW, desc="the Redis sink's lookup failed")

    c.eq(len(set(ids) - fn.ok_ids()), 0, "ids never delivered through localhost (lost)")
    dl = read_dead_letters(cl, "dead")
    c.eq(sorted(f.get("ce_id") for _, f in dl), sorted(gone),
         "dead letters = exactly the events for the name that does not resolve")
    reasons = {f.get("ce_deadletterreason") for _, f in dl}
    c.eq(reasons, {"retries_exhausted"}, "retried, then dead-lettered")
    errs = {base64.b64decode(f.get("ce_knativeerrordata", "")).decode("utf-8", "replace") for _, f in dl}
    c.check(all("resolve" in e.lower() for e in errs), "the dead letter says the name did not resolve", errs)
    c.eq({f.get("ce_deadletterattempts") for _, f in dl}, {"3"}, "three attempts each (retry: 2)")
    c.eq(fn.count(), len(fn.by_id()), "no event reached the function twice")
    c.check(fn.accepted() <= 16, "the name's connections are kept and reused (at most concurrency)",
            fn.accepted())
    warn = [l for l in td.logs() if "resolving no-such-function.invalid" in l.get("msg", "")]
    c.check(warn, "the failed lookup is logged with the resolver's reason")
    c.eq(pending_count(cl, "s", "g") + pending_count(cl, "s2", "g"), 0, "XPENDING at the end")
    # The dead letters for a Redis whose name does not resolve are retried for as long as the
    # daemon runs: their messages stay unacknowledged, to be read again after a restart.
    c.eq(pending_count(cl, "s3", "g"), N_NODL,
         "messages whose dead letter cannot be written stay pending (not acked, not lost)")
    # (by trigger, not by id: entries of two streams written in the same ms share their ids)
    c.check(not any(f.get("ce_deadlettertrigger") == "t3" for _, f in read_dead_letters(cl, "dead")),
            "and reached no other stream")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")
    log(f"in={N}+{N_GONE}+{N_NODL} delivered={len(fn.ok_ids())} dead={len(dl)} "
        f"pending s3={pending_count(cl, 's3', 'g')} connections={fn.accepted()}")


if __name__ == "__main__":
    run_test(body)
