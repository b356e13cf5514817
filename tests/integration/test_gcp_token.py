"""Google Cloud Functions / Cloud Run: ID tokens from a fake metadata server (fn_peers.MetadataServer)
that issues short-lived JWTs (4 s) and counts requests; the function endpoint accepts only a valid,
unexpired token for its audience (checked with the metadata server's own key, not by triggerd).

- every event is delivered with a valid token; none is refused;
- the token is cached (far fewer metadata requests than events) and shared per audience (two sinks with
  the same audience share one token), and refreshed before it expires during a ~10 s run;
- the endpoint does reject a missing or a stale token (the check can fail);
- binary mode (as Eventarc delivers), Metadata-Flavor: Google on every metadata request.
"""

import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from fn_peers import MetadataServer  # noqa: E402

AUD_A = "https://a-xyz.a.run.app"
AUD_B = "https://europe-west1-proj.cloudfunctions.net/b"
AUD_ENV = "https://env.example"
LIFETIME = 4
MD = {}
REFUSED = []


def behaviour(req, attempt):
    aud = AUD_B if req.path.startswith("/b") else AUD_ENV if req.path.startswith("/env") else AUD_A
    auth = req.header("authorization", "")
    ok, why = MD["s"].valid(auth[len("Bearer "):], aud) if auth.startswith("Bearer ") else \
        (False, "no token")
    if not ok:
        REFUSED.append((req.path, why))
        return (401, {}, why.encode(), 0)
    return (200, {}, b"", 0)


def body(c):
    rs = RedisServer()
    cl = rs.client()
    md = MetadataServer(lifetime=LIFETIME)
    MD["s"] = md
    fn = FunctionServer(behaviour)

    def gsink(path, aud):
        return {"http": {"url": fn.url + path, "timeout": "2s",
                         "auth": {"google_id_token": {"audience": aud,
                                                      "metadata_url": md.identity_url}}}}
    sources = {s: redis_source(rs.url, s) for s in ("a1", "a2", "b")}
    sinks = {"a1": gsink("a1", AUD_A), "a2": gsink("a2", AUD_A), "b": gsink("b", AUD_B)}
    triggers = [trigger("t-" + s, s, s, retry=2, backoff_delay="100ms") for s in sources]
    td = Triggerd(config(sources, sinks, triggers)).start()
    c.check(td.wait_ready(10), "daemon ready")

    t_end = time.monotonic() + 10
    sent = {s: [] for s in sources}
    while time.monotonic() < t_end:
        for s in sources:
            sent[s].append(cl.xadd(s, {"t": str(time.time())}).decode())
        time.sleep(0.1)
    # Waited for by their deliveries, not by XPENDING alone: pending is 0 too before the daemon
    # has read the last entries.
    every = {i for v in sent.values() for i in v}
    wait_until(lambda: every <= fn.ok_ids() and
               all(pending_count(cl, s, "g") == 0 for s in sources), 15 * SLOW)
    total = sum(len(v) for v in sent.values())
    ok = fn.ok_ids()
    c.eq(sum(1 for v in sent.values() for i in v if i in ok), total,
         f"all {total} events delivered with a valid token")
    c.eq(REFUSED, [], "no request refused by the function")
    reqs = fn.snapshot()
    c.check(reqs and all(r.header("ce-id") and not r.is_structured() for r in reqs),
            "binary mode (ce- headers)")
    with md.lock:
        mreqs = list(md.requests)
    na = sum(1 for _, a in mreqs if a == AUD_A)
    nb = sum(1 for _, a in mreqs if a == AUD_B)
    log(f"metadata requests: audience a {na}, audience b {nb}, events {total}")
    # 10 s with 4 s tokens refreshed at 3/4 of their life: about 4 fetches per audience.
    c.check(2 <= na <= 8, "audience a: cached, shared by both sinks, and refreshed", na)
    c.check(2 <= nb <= 8, "audience b: its own token, cached and refreshed", nb)
    c.eq(md.bad_requests, 0, "every metadata request had Metadata-Flavor: Google and an audience")

    # The endpoint's check can fail: no token, and a stale one.
    def post(headers):
        rq = urllib.request.Request(fn.url + "a1", data=b"{}", method="POST",
                                    headers=dict({"ce-id": "manual", "ce-specversion": "1.0"},
                                                 **headers))
        try:
            return urllib.request.urlopen(rq, timeout=5).status
        except urllib.error.HTTPError as e:
            return e.code
    c.eq(post({}), 401, "the function rejects a request without a token")
    r0 = [r for r in reqs if r.header("authorization")][0]
    stale = r0.header("authorization")
    left = 0
    while MD["s"].valid(stale[7:], AUD_A)[0] and left < 100:
        time.sleep(0.1)
        left += 1
    c.eq(post({"Authorization": stale}), 401, "the function rejects a stale token")
    REFUSED.clear()
    # and the daemon, still running, has a fresh one
    more = publish_many(cl, "a1", 5)
    wait_until(lambda: set(more) <= fn.ok_ids(), 10 * SLOW)
    c.check(set(more) <= fn.ok_ids() and not REFUSED, "later events still carry a fresh token",
            REFUSED[:2])
    text = "\n".join(td.raw_lines())
    c.check(stale[7:] not in text, "no token in the log")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")

    # metadata_url may be the server's base URL (as conf/triggerd.yaml shows it), and without
    # metadata_url GCE_METADATA_HOST (host:port, http) names the server, as Google's libraries do.
    host = md.url.split("://", 1)[1].rstrip("/")
    gs = {"root": {"http": {"url": fn.url + "root", "timeout": "2s",
                            "auth": {"google_id_token": {"audience": AUD_A,
                                                         "metadata_url": md.url}}}},
          "b-slash": {"http": {"url": fn.url + "b-slash", "timeout": "2s",
                             "auth": {"google_id_token": {"audience": AUD_B,
                                                          "metadata_url": md.url + "/"}}}},
          "env": {"http": {"url": fn.url + "env", "timeout": "2s",
                           "auth": {"google_id_token": {"audience": AUD_ENV}}}}}
    td2 = Triggerd(config({s: redis_source(rs.url, s) for s in gs}, gs,
                          [trigger("t-" + s, s, s, retry=2, backoff_delay="100ms") for s in gs]),
                   name="triggerd-base-url", env={"GCE_METADATA_HOST": host})
    with md.lock:
        before = list(md.requests)
    td2.start()
    c.check(td2.wait_ready(10), "second daemon ready")
    ids = {s: cl.xadd(s, {"n": "1"}).decode() for s in gs}
    # Not XPENDING alone: it is 0 too right after the XADD, before the just-started daemon has
    # read the entries (the wait then returns at once and the check finds nothing delivered).
    wait_until(lambda: set(ids.values()) <= fn.ok_ids() and
               all(pending_count(cl, s, "g") == 0 for s in gs), 15 * SLOW)
    ok = fn.ok_ids()
    c.eq([s for s in gs if ids[s] not in ok], [],
         "base metadata_url (with and without /) and GCE_METADATA_HOST: delivered with a token")
    with md.lock:
        auds = sorted({a for _, a in md.requests[len(before):]})
    c.eq(auds, sorted([AUD_A, AUD_B, AUD_ENV]),
         "each fetched its token from the metadata server's identity path")
    c.eq(md.bad_requests, 0, "no request to a wrong path")
    c.check(not any("not a JWT" in l for l in td2.raw_lines()), "no 'not a JWT' error")
    td2.terminate()
    c.eq(td2.wait(10 * SLOW), 0, "second daemon exits 0")


run_test(body)
