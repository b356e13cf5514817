"""OAuth 2.0 client credentials on an HTTP sink (auth: {oauth2: {token_url, client_id, client_secret,
scopes, audience}}), against a stand-in token endpoint (fn_peers.TokenServer: HTTP Basic client
authentication, short-lived opaque tokens, every issue recorded) and a function that answers 401 to any
request without a token that endpoint issued, unexpired and not revoked.

- reuse: 20 entries published at once are delivered with one token, fetched once;
- refresh before expiry: entries published every 200 ms for 7 s (tokens live 3 s) all arrive with a
  valid token: no 401, each new token fetched before the previous one expired, and not more often
  than the refresh schedule asks;
- 401: after the endpoint revokes every token, the next delivery gets 401, the sink fetches one new
  token and repeats the request within the same attempt (204, "attempt 1"); a function that answers
  401 to every token gets exactly two requests per event (one refresh, one retry) and the event is
  dead-lettered as final (401);
- the client secret (a canary) appears in no log line (debug level), /metrics, /status,
  `triggerd status`, `triggerd check` or dead letter, and never in a token request's body."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import get, with_http  # noqa: E402
from fn_peers import TokenServer  # noqa: E402

CANARY = "canary-oauth2-4b7d-SECRET"
CLIENT_ID = "triggerd client/1"  # a blank and a slash: form-urlencoded before Basic
LIFETIME = 3


def body(c):
    ts = TokenServer(CLIENT_ID, CANARY, lifetime=LIFETIME)
    ts2 = TokenServer(CLIENT_ID, CANARY, lifetime=60)
    lock = threading.Lock()
    refused = []

    def behaviour(req, attempt):
        if req.path == "/always401":
            ok, why = ts2.check(req.header("authorization"))
            return (401, {}, b"", 0) if ok else (400, {}, b"no token", 0)
        ok, why = ts.check(req.header("authorization"))
        if not ok:
            with lock:
                refused.append((req.ce_id, why))
            return (401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, b"", 0)
        return (204, {}, b"", 0)

    fn = FunctionServer(behaviour)
    rs = RedisServer()
    cl = rs.client()
    oauth = {"token_url": ts.token_url, "client_id": CLIENT_ID, "client_secret": "${TD_CANARY}",
             "scopes": ["events.write", "fn:invoke"], "audience": "https://fn.example"}
    sinks = {"fn": {"http": {"url": fn.url + "fn", "timeout": "2s", "auth": {"oauth2": oauth}}},
             "deny": {"http": {"url": fn.url + "always401",
                               "auth": {"oauth2": dict(oauth, token_url=ts2.token_url,
                                                         scopes=list(oauth["scopes"]))}}},
             "dl": {"redis": {"url": rs.url, "stream": "dl"}}}
    cfg = config({"s": redis_source(rs.url, "s"), "s2": redis_source(rs.url, "s2")}, sinks,
                 [trigger("t", "s", "fn", dead_letter="dl"),
                  trigger("t2", "s2", "deny", dead_letter="dl")])
    port = with_http(cfg)
    td = Triggerd(cfg, env={"TD_CANARY": CANARY}).start()
    c.check(td.wait_ready(10), "daemon ready")

    def fn_reqs():
        return fn.snapshot("/fn")

    def drained(stream, n):
        return lambda: len(fn_ok()) >= n and pending_count(cl, stream, "g") == 0

    def fn_ok():
        return [r for r in fn_reqs() if r.status == 204]

    # 1. reuse
    for i in range(20):
        cl.xadd("s", {"phase": "reuse", "i": str(i)})
    wait_until(drained("s", 20), 20 * SLOW, desc="20 delivered")
    reqs = fn_reqs()
    c.eq(len([r for r in reqs if r.status == 204]), 20, "reuse: 20 entries delivered")
    tokens = {r.header("authorization") for r in reqs}
    c.eq(len(tokens), 1, "reuse: every request carried the same token")
    c.eq(ts.count(), 1, "reuse: the token endpoint was asked once")
    first = ts.snapshot()[0]
    c.eq((first["scope"], first["audience"]), ("events.write fn:invoke", "https://fn.example"),
         "the token request asks for the scopes (space-separated) and the audience")
    c.eq(ts.refused, 0, "the token endpoint accepted the client (HTTP Basic, form-urlencoded id)")

    # 2. refresh before expiry
    n0 = len(fn_ok())
    t0 = time.time()
    sent = 0
    while time.time() - t0 < 7:
        cl.xadd("s", {"phase": "refresh", "i": str(sent)})
        sent += 1
        time.sleep(0.2)
    wait_until(drained("s", n0 + sent), 20 * SLOW, desc="refresh phase delivered")
    c.eq(len(fn_ok()) - n0, sent, f"refresh: all {sent} entries delivered")
    c.eq(refused, [], "refresh: no request carried an expired token (no 401)")
    issued = ts.snapshot()
    c.check(len(issued) >= 3, "refresh: new tokens were fetched as the old ones aged",
            len(issued))
    c.check(len(issued) <= 2 + (time.time() - first["t"]) / (LIFETIME * 0.75 * 0.9),
            "refresh: not fetched more often than every 3/4 of the lifetime", len(issued))
    late = [(a["t"], b["t"], a["exp"]) for a, b in zip(issued, issued[1:]) if b["t"] >= a["exp"]]
    c.eq(late, [], "refresh: each token was fetched before the previous one expired")

    # 3. a 401 forces one refresh and one retry within the attempt. A long-lived token first, so
    # that no scheduled refresh can come between the revocation and the delivery.
    ts.lifetime = 60
    k = ts.count()
    wait_until(lambda: ts.count() > k, 5 * SLOW, desc="a refresh with the long lifetime")
    time.sleep(0.3)
    ts.revoke()
    k = ts.count()
    # Counted before the XADD: the daemon may deliver the entry before this thread runs again.
    n1 = len(fn_ok())
    eid = cl.xadd("s", {"phase": "revoked"}).decode()
    wait_until(drained("s", n1 + 1), 20 * SLOW, desc="the revoked-token entry delivered")
    mine = [r for r in fn_reqs() if r.ce_id == eid]
    c.eq([r.status for r in mine], [401, 204], "401: the request was repeated once, with success")
    c.eq(ts.count() - k, 1, "401: exactly one new token was fetched")
    c.check(mine and mine[0].header("authorization") != mine[-1].header("authorization"),
            "401: the repeated request carried the new token")
    delivered = [l for l in td.logs() if l.get("id") == eid and
                 str(l.get("msg", "")).startswith("delivered")]
    c.check(delivered and "attempt 1" in delivered[0]["msg"],
            "401: the retry happened within the first attempt (no backoff, no retry counted)",
            delivered[:1])
    for i in range(5):
        cl.xadd("s", {"phase": "after", "i": str(i)})
    wait_until(drained("s", n1 + 6), 20 * SLOW, desc="after the 401")
    c.eq(ts.count() - k, 1, "401: later deliveries reuse the new token")

    # 3b. a function that refuses every token: one refresh, one retry, then final
    eid2 = cl.xadd("s2", {"phase": "deny"}).decode()
    wait_until(lambda: cl.xlen("dl") >= 1 and pending_count(cl, "s2", "g") == 0, 20 * SLOW,
               desc="dead letter for the always-401 function")
    deny = fn.snapshot("/always401")
    c.eq([r.status for r in deny], [401, 401],
         "always 401: two requests (the first token, then one new token), no more")
    c.eq(ts2.count(), 2, "always 401: one refresh for the event")
    dls = read_dead_letters(cl, "dl")
    c.check(len(dls) == 1 and dls[0][1].get("ce_knativeerrorcode") == "401" and
            dls[0][1].get("ce_deadletterreason") == "final_status" and
            dls[0][1].get("ce_id") == eid2,
            "always 401: dead-lettered as final with code 401", dls[:1])

    # 4. the client secret appears nowhere
    outputs = ["\n".join(td.raw_lines())]
    for p in ("/metrics", "/status", "/readyz"):
        outputs.append(get(port, p)[2].decode("utf-8", "replace"))
    r = run_cli(["status", "-c", td.config_path])
    outputs += [r.stdout, r.stderr]
    env = dict(os.environ, TD_CANARY=CANARY)
    r = subprocess.run([triggerd_binary(), "check", "-c", td.config_path], capture_output=True,
                       text=True, env=env, timeout=30 * SLOW)
    outputs += [r.stdout, r.stderr]
    c.eq(r.returncode, 0, "check accepts the oauth2 sink")
    outputs.append(repr(cl.xrange("dl")))
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")
    outputs.append("\n".join(td.raw_lines()))
    text = "\n".join(outputs)
    c.check(len(text) > 2000, "there was output to search", len(text))
    c.check(CANARY[:14] not in text, "the client secret appears in no log, status, metric, "
            "check output or dead letter",
            text[max(0, text.find(CANARY[:14]) - 200):text.find(CANARY[:14]) + 60]
            if CANARY[:14] in text else None)
    log(f"in={cl.xlen('s') + cl.xlen('s2')} out={len(fn_ok())} tokens={ts.count()}+{ts2.count()}")


run_test(body)
