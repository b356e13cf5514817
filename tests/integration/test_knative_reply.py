"""Knative / Kubernetes Services: Prefer: reply, reply events, the TTL loop guard, bearer_file re-read.

- a function answering 200 with a CloudEvent (binary, and structured) has it published to the trigger's
  reply target (a Redis stream), with triggerdttl 9; the source entry is acked after that;
- a 200 that is not a CloudEvent is a plain success (no reply);
- a malformed reply (a CloudEvent without a type) is a failed delivery with a clear reason, dead-lettered;
- a reply loop (the reply target is the trigger's own source stream) stops at the TTL: 9 replies, then
  one "dropped" log line, and nothing pending;
- auth: {bearer_file}: the projected token is re-read when the file changes.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

TOKENS = {"current": "token-one"}


def behaviour(req, attempt):
    cid = req.ce_id or "none"
    if req.path == "/binary":
        return (200, {"ce-specversion": "1.0", "ce-id": "reply-" + cid, "ce-type": "com.example.reply",
                      "ce-source": "/fn/binary", "ce-replyto": "x%20y",
                      "Content-Type": "application/json"},
                json.dumps({"orig": cid}).encode(), 0)
    if req.path == "/structured":
        return (200, {"Content-Type": "application/cloudevents+json"},
                json.dumps({"specversion": "1.0", "id": "reply-" + cid, "type": "com.example.reply",
                            "source": "/fn/structured", "data": {"orig": cid}}).encode(), 0)
    if req.path == "/plain":
        return (200, {"Content-Type": "text/plain"}, b"thanks", 0)
    if req.path == "/malformed":
        return (200, {"ce-specversion": "1.0", "ce-id": "r", "ce-source": "/fn"}, b"{}", 0)
    if req.path == "/loop":
        # keeps answering with a new event of the same type: a loop through the source stream
        return (200, {"ce-specversion": "1.0", "ce-id": "again-" + cid, "ce-type": "com.example.test",
                      "ce-source": "/fn/loop", "Content-Type": "application/json"}, b'{"x":1}', 0)
    if req.path == "/auth":
        if req.header("authorization") == "Bearer " + TOKENS["current"]:
            return (200, {}, b"", 0)
        return (401, {}, b"bad token", 0)
    return (404, {}, b"", 0)


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer(behaviour)
    d = make_tempdir()
    token_file = os.path.join(d, "token")
    with open(token_file, "w") as f:
        f.write("token-one\n")
    streams = ["binary", "structured", "plain", "malformed", "loop", "auth"]
    sources = {s: redis_source(rs.url, s) for s in streams}
    sinks = {s: http_sink(fn.url + s) for s in streams}
    sinks["auth"]["http"]["auth"] = {"bearer_file": token_file}
    sinks["replies"] = {"redis": {"url": rs.url, "stream": "replies"}}
    sinks["loopback"] = {"redis": {"url": rs.url, "stream": "loop"}}
    sinks["dead"] = {"redis": {"url": rs.url, "stream": "dead"}}
    triggers = []
    for s in streams:
        t = trigger("t-" + s, s, s, retry=1, backoff_delay="50ms", backoff_max="100ms",
                    dead_letter="dead")
        if s in ("binary", "structured", "plain", "malformed"):
            t["reply"] = "replies"
        if s == "loop":
            t["reply"] = "loopback"
        triggers.append(t)
    td = Triggerd(config(sources, sinks, triggers)).start()
    c.check(td.wait_ready(10), "daemon ready")

    ids = {s: publish_many(cl, s, 4, lambda i: {"n": str(i)}) for s in
           ("binary", "structured", "plain", "malformed")}
    loop_id = cl.xadd("loop", {"n": "0"}).decode()
    wait_until(lambda: cl.exists("replies") and cl.xlen("replies") >= 8 and cl.exists("dead") and
               cl.xlen("dead") >= 4 and cl.xlen("loop") >= 10 and
               all(pending_count(cl, s, "g") == 0 for s in ids) and
               pending_count(cl, "loop", "g") == 0, 20 * SLOW, desc="replies and loop")
    time.sleep(0.5 * SLOW)

    reqs = fn.snapshot("/binary") + fn.snapshot("/structured")
    c.check(reqs and all(r.header("prefer") == "reply" for r in reqs), "Prefer: reply is sent")
    replies = [f for _, f in read_dead_letters(cl, "replies")]
    want = {"reply-" + i for s in ("binary", "structured") for i in ids[s]}
    c.eq({f.get("ce_id") for f in replies}, want,
         "binary and structured reply events published to the reply target (and nothing else)")
    rb = [f for f in replies if f.get("ce_source") == "/fn/binary"]
    c.check(rb and all(f.get("ce_type") == "com.example.reply" and f.get("ce_triggerdttl") == "9" and
                       f.get("ce_replyto") == "x y" and
                       json.loads(f["data"])["orig"] == f["ce_id"][len("reply-"):] for f in rb),
            "the binary reply keeps its attributes and data, with triggerdttl 9", rb[:1])
    rs_ = [f for f in replies if f.get("ce_source") == "/fn/structured"]
    c.check(rs_ and all(f.get("ce_triggerdttl") == "9" and
                        json.loads(f["data"])["orig"] == f["ce_id"][len("reply-"):] for f in rs_),
            "the structured reply is published too", rs_[:1])
    c.eq(len(fn.snapshot("/plain")), 4, "a 200 that is no CloudEvent is a plain success (one attempt)")

    dl = [f for _, f in read_dead_letters(cl, "dead")]
    c.eq(sorted(f.get("ce_id") for f in dl), sorted(ids["malformed"]),
         "a malformed reply is a failed delivery: dead-lettered")
    c.check(all(f.get("ce_deadletterreason") == "final_status" for f in dl), "as final (no retry)")
    c.eq(len(fn.snapshot("/malformed")), 4, "one attempt each")
    c.check(any("malformed reply event" in (l.get("msg", "")) for l in td.logs()),
            "the log says 'malformed reply event' and why")

    loop = read_stream(cl, "loop")
    ttls = [f.get("ce_triggerdttl", b"").decode() for _, f in loop]
    c.eq(ttls, [""] + [str(i) for i in range(9, 0, -1)],
         "the reply loop: 9 replies with triggerdttl 9..1, then it stops")
    c.eq(len(fn.snapshot("/loop")), 10, "the function saw the original and the 9 replies")
    drops = [l for l in td.logs() if "dropped" in l.get("msg", "") and l.get("trigger") == "t-loop"]
    c.eq(len(drops), 1, "one 'reply dropped' log line")
    c.eq(pending_count(cl, "loop", "g"), 0, "nothing pending on the loop stream")
    _ = loop_id

    # bearer_file: re-read when the file changes
    a1 = publish_many(cl, "auth", 3)
    # pending is 0 too before the daemon has read the new entries: wait for the answers
    wait_until(lambda: set(a1) <= {r.ce_id for r in fn.snapshot("/auth") if r.completed}
               and pending_count(cl, "auth", "g") == 0, 10 * SLOW)
    ok1 = {r.ce_id for r in fn.snapshot("/auth") if r.status == 200}
    c.check(set(a1) <= ok1, "bearer_file token sent")
    TOKENS["current"] = "token-two"
    time.sleep(0.05)
    with open(token_file + ".new", "w") as f:
        f.write("token-two\n")
    os.rename(token_file + ".new", token_file)  # as the kubelet swaps projected tokens
    time.sleep(1.2)  # the file is looked at (stat) at most once a second
    a2 = publish_many(cl, "auth", 3)
    wait_until(lambda: set(a2) <= {r.ce_id for r in fn.snapshot("/auth") if r.completed}
               and pending_count(cl, "auth", "g") == 0, 15 * SLOW)
    ok2 = {r.ce_id for r in fn.snapshot("/auth") if r.status == 200}
    c.check(set(a2) <= ok2, "the new token is used after the file changed",
            [(r.ce_id, r.status, r.header("authorization")) for r in fn.snapshot("/auth")][-4:])
    text = "\n".join(td.raw_lines())
    c.check("token-one" not in text and "token-two" not in text, "no token in the log")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")


run_test(body)
