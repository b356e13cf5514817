"""delivery.batch on a Lambda sink: one SigV4-signed invocation (verified by botocore's signer in
the stand-in) per batch, whose payload is a JSON array of the structured events; the function's
result {"batchItemFailures": [...]} re-sends exactly the events it names; a function error
(X-Amz-Function-Error) re-sends the whole batch. Every event delivered, every entry acked, in = out."""

import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from fn_peers import HAVE_BOTOCORE, LambdaServer  # noqa: E402

REGION = "eu-west-1"
KEY = ("AKIDGOOD0000000001", "good/secret+key0000000000000000000000000")
N = 50


def body(c):
    if not HAVE_BOTOCORE:
        log("SKIP: python3-botocore not installed")
        return SKIP
    rs = RedisServer()
    cl = rs.client()
    lock = threading.Lock()
    seen, batches, state = {}, [], {"flaky": set(), "errored": None}

    def behaviour(req, attempt):
        evs = json.loads(req.body)
        ids = [e["id"] for e in evs]
        with lock:
            batches.append((req.verified, ids, evs))
            for i in ids:
                seen[i] = seen.get(i, 0) + 1
            if state["errored"] is None:
                state["errored"] = ids
                return (200, {"X-Amz-Function-Error": "Unhandled", "Content-Type": "application/json"},
                        json.dumps({"errorMessage": "boom", "errorType": "Error"}))
            fail = [i for i in ids if i in state["flaky"] and seen[i] == 1]
        return (200, {"Content-Type": "application/json"},
                json.dumps({"batchItemFailures": [{"itemIdentifier": i} for i in fail]}))

    ls = LambdaServer(REGION, behaviour)
    ls.verifier.add_key(*KEY)
    sink = {"lambda": {"function": "fn-batch", "region": REGION, "endpoint": ls.url, "timeout": "2s",
                       "credentials": {"access_key_id": KEY[0], "secret_access_key": KEY[1]}}}
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"lam": sink, "dead": {"redis": {"url": rs.url, "stream": "dead"}}},
                 triggers=[trigger("t", "in", "lam", retry=3, backoff_delay="50ms",
                                   backoff_max="100ms", dead_letter="dead",
                                   batch={"max_events": 10, "max_wait": "50ms"})])
    cl.xgroup_create("s", "g", id="0", mkstream=True)
    ids = publish_many(cl, "s", N, lambda i: {"n": str(i)})
    state["flaky"] = set(ids[5::9])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")
    wait_until(lambda: set(ids) <= set(seen) and pending_count(cl, "s", "g") == 0, 30 * SLOW,
               desc="all delivered and acked")
    time.sleep(0.3 * SLOW)
    with lock:
        snap, counts = list(batches), dict(seen)
    c.check(snap and all(ok for ok, _, _ in snap) and all(r.verified for r in ls.snapshot()),
            "every invocation's SigV4 signature verified (botocore's signer)")
    c.check(max(len(b[1]) for b in snap) <= 10 and len(snap) < N, "several events per invocation, "
            "<= max_events", f"sizes {[len(b[1]) for b in snap]}")
    c.check(all(e.get("specversion") == "1.0" and "data" in e for b in snap for e in b[2]),
            "the payload is a JSON array of structured CloudEvents")
    errored, flaky = set(state["errored"] or []), state["flaky"]
    c.check(len(errored) > 1, "the function error answered a batch of several", f"{errored}")
    # (a flaky event is named only the first time the function sees it: after a function error
    # on its first batch it is not named again)
    want = {i: 1 + (i in errored) + (i in flaky and i not in errored) for i in ids}
    wrong = {i: (counts.get(i), w) for i, w in want.items() if counts.get(i) != w}
    c.check(not wrong, "each event came once, + once more if its batch had a function error, "
            "+ once more if batchItemFailures named it", f"{len(wrong)} wrong: {list(wrong.items())[:5]}")
    c.eq(cl.xlen("dead") if cl.exists("dead") else 0, 0, "no dead letters")
    c.eq(pending_count(cl, "s", "g"), 0, "every entry acked")
    c.eq(len(set(counts) & set(ids)), cl.xlen("s"), "in = out")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")


run_test(body)
