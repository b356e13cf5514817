"""AWS Lambda sink: every invocation is verified by an independent SigV4 implementation (botocore's
signer, tests/integration/fn_peers.py), never by the code that signed it.

- credentials from the trigger file, from AWS_* environment variables with a session token, and from a
  shared credentials file + AWS_PROFILE (a second daemon);
- a sink with a wrong secret is rejected by that same check (403, final, dead-lettered): the check
  can fail;
- Lambda semantics: 200 + X-Amz-Function-Error is a retryable failure; 429 and 500 retry; after the
  retries the event is dead-lettered with the function's error body in knativeerrordata;
- qualifier (?Qualifier=, also $LATEST), invocation Event (202), payload: data;
- the secrets never appear in the daemon's log.
"""

import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from fn_peers import HAVE_BOTOCORE, LambdaServer  # noqa: E402

REGION = "eu-west-1"
GOOD = ("AKIDGOOD0000000001", "good/secret+key0000000000000000000000000")
SESSION = ("ASIASESSION0000001", "session/secret+key00000000000000000000", "FwoGZXIvYXdzE//token+abc==")
PROFILE = ("AKIDPROFILE000001", "profile/secret+key000000000000000000000")
WRONG = "wrong/secret+key00000000000000000000000000"
ERR_BODY = json.dumps({"errorMessage": "boom", "errorType": "Error", "stackTrace": []})


def behaviour(req, attempt):
    fn = req.function
    if fn == "fn-err":  # always failing, in the three ways Lambda fails
        kind = attempt % 3
        if kind == 1:
            return (200, {"X-Amz-Function-Error": "Unhandled", "Content-Type": "application/json"},
                    ERR_BODY)
        if kind == 2:
            return (429, {"x-amzn-ErrorType": "TooManyRequestsException"},
                    json.dumps({"message": "Rate exceeded"}))
        return (500, {"x-amzn-ErrorType": "ServiceException"}, json.dumps({"message": "oops"}))
    if fn == "fn-flaky" and attempt == 1:
        return (200, {"X-Amz-Function-Error": "Unhandled"}, ERR_BODY)
    if req.headers.get("x-amz-invocation-type") == "Event":
        return (202, {}, b"")
    return (200, {"Content-Type": "application/json"}, b'{"statusCode":200}')


def lam(server, function, **kw):
    d = {"function": function, "region": REGION, "endpoint": server.url, "timeout": "2s"}
    d.update(kw)
    return {"lambda": d}


def body(c):
    if not HAVE_BOTOCORE:
        log("SKIP: python3-botocore not installed")
        return SKIP
    rs = RedisServer()
    cl = rs.client()
    ls = LambdaServer(REGION, behaviour)
    ls.verifier.add_key(*GOOD)
    ls.verifier.add_key(*SESSION)
    ls.verifier.add_key(*PROFILE)
    def creds():  # a fresh dict each time: yaml.safe_dump would write aliases for a shared one
        return {"access_key_id": GOOD[0], "secret_access_key": "${LAMBDA_SECRET}"}
    dead = {"redis": {"url": rs.url, "stream": "dead"}}
    streams = ["ok", "env", "bad", "err", "flaky", "qual", "latest"]
    sources = {s: redis_source(rs.url, s) for s in streams}
    sinks = {
        "ok": lam(ls, "fn-ok", credentials=creds()),
        "env": lam(ls, "fn-env"),  # AWS_* environment, with a session token
        "bad": lam(ls, "fn-ok", credentials={"access_key_id": GOOD[0], "secret_access_key": WRONG}),
        "err": lam(ls, "fn-err", credentials=creds()),
        "flaky": lam(ls, "fn-flaky", credentials=creds()),
        "qual": lam(ls, "fn-q", credentials=creds(), qualifier="live", invocation="Event",
                    payload="data"),
        "latest": lam(ls, "fn-q", credentials=creds(), qualifier="$LATEST"),
        "dead": dead,
    }
    triggers = [trigger("t-" + s, s, s, retry=3, backoff_delay="50ms", backoff_max="200ms",
                        dead_letter="dead") for s in streams]
    env = {"LAMBDA_SECRET": GOOD[1], "AWS_ACCESS_KEY_ID": SESSION[0],
           "AWS_SECRET_ACCESS_KEY": SESSION[1], "AWS_SESSION_TOKEN": SESSION[2]}
    td = Triggerd(config(sources, sinks, triggers), env=env).start()
    c.check(td.wait_ready(10), "daemon ready")

    ids = {s: publish_many(cl, s, 5, lambda i: {"n": str(i), "s": s}) for s in streams}
    n_dead = len(ids["bad"]) + len(ids["err"])
    # Each stream read up to its last entry and nothing pending, not XPENDING 0 alone: that is
    # also true right after the XADDs, before the daemon has read a stream (the dead letters
    # only prove "bad" and "err" were handled).
    c.check(wait_until(lambda: cl.exists("dead") and cl.xlen("dead") >= n_dead and
                       all(read_and_acked(cl, s, "g", ids[s][-1]) for s in streams), 30 * SLOW,
                       desc="everything read and acked"),
            "every stream read to its last entry and acked, dead letters written",
            {s: group_info(cl, s, "g") for s in streams})
    reqs = ls.snapshot()

    def of(fn, akid=None):
        return [r for r in reqs if r.function == fn and
                (akid is None or r.headers.get("authorization", "").find(akid + "/") > 0)]

    good = [r for r in reqs if WRONG not in str(r.headers)]
    bad = [r for r in reqs if r.function == "fn-ok" and not r.verified]
    c.check(bad and all(r.why == "SignatureDoesNotMatch" for r in bad),
            "the wrong secret is rejected by the independent SigV4 check (SignatureDoesNotMatch)",
            f"{len(bad)} rejected: {[r.why for r in bad][:3]}")
    verified = [r for r in good if r.verified]
    c.eq(len(verified) + len(bad), len(reqs), "every other request verified by botocore's signer")
    c.eq(sorted(r.json()["id"] for r in of("fn-ok") if r.verified), sorted(ids["ok"]),
         "trigger-file credentials: each event invoked once, signed right")
    st = [r.json() for r in of("fn-ok") if r.verified]
    c.check(st and all(e.get("specversion") == "1.0" and e.get("type") == "com.example.test" and
                       e.get("data", {}).get("s") == "ok" for e in st),
            "payload: event sends the structured CloudEvent JSON", st[:1])
    env_reqs = of("fn-env")
    c.check(len(env_reqs) == 5 and all(r.verified for r in env_reqs) and
            all(r.headers.get("x-amz-security-token") == SESSION[2] for r in env_reqs),
            "AWS_* environment credentials with a session token: X-Amz-Security-Token sent and "
            "signed, verified", [(r.verified, r.why) for r in env_reqs][:3])
    c.check(all("x-amz-security-token" not in r.headers for r in of("fn-ok")),
            "no X-Amz-Security-Token for long-term keys")
    c.check(all(r.headers.get("x-amz-invocation-type") == "RequestResponse" for r in of("fn-ok")),
            "X-Amz-Invocation-Type RequestResponse by default")

    q = [r for r in of("fn-q") if r.qualifier == "live"]
    c.check(len(q) == 5 and all(r.verified for r in q) and
            all(r.headers.get("x-amz-invocation-type") == "Event" for r in q),
            "qualifier as ?Qualifier=live, invocation Event: verified, 202 accepted",
            [(r.path, r.why) for r in q][:2])
    c.check(all(r.json() == {"n": r.json().get("n"), "s": "qual"} for r in q),
            "payload: data sends only the event's data", [r.body for r in q][:2])
    lt = [r for r in of("fn-q") if r.qualifier == "$LATEST"]
    c.check(len(lt) == 5 and all(r.verified for r in lt), "qualifier $LATEST (percent-encoded) verified",
            [(r.path, r.why) for r in lt][:2])

    flaky = of("fn-flaky")
    c.eq(len(flaky), 10, "200 + X-Amz-Function-Error is retried (2 invocations per event)")

    dl = read_dead_letters(cl, "dead")
    dl_err = [f for _, f in dl if f.get("ce_deadlettertrigger") == "t-err"]
    dl_bad = [f for _, f in dl if f.get("ce_deadlettertrigger") == "t-bad"]
    c.eq(sorted(f["ce_id"] for f in dl_bad), sorted(ids["bad"]), "wrong secret: dead-lettered")
    c.check(all(f.get("ce_knativeerrorcode") == "403" and
                f.get("ce_deadletterreason") == "final_status" and
                f.get("ce_deadletterattempts") == "1" for f in dl_bad),
            "wrong secret: 403 is final (one attempt)", dl_bad[:1])
    c.eq(sorted(f["ce_id"] for f in dl_err), sorted(ids["err"]),
         "function errors, 429, 500: dead-lettered after the retries")
    c.eq(sorted(len(of("fn-err")) for _ in [0]), [20], "4 attempts each (retry: 3)")
    # attempts cycle 1: function error, 2: 429, 3: 500, 4: function error -> the last body
    c.check(all(f.get("ce_deadletterreason") == "retries_exhausted" and
                f.get("ce_deadletterattempts") == "4" and f.get("ce_knativeerrorcode") == "200" and
                base64.b64decode(f.get("ce_knativeerrordata", "")) == ERR_BODY.encode()
                for f in dl_err),
            "the dead letter carries the function's error body in knativeerrordata", dl_err[:1])
    codes = sorted({r.status for r in of("fn-err")})
    c.eq(codes, [200, 429, 500], "the function answered 200+error, 429 and 500")

    text = "\n".join(td.raw_lines())
    leaks = [s for s in (GOOD[1], SESSION[1], SESSION[2], WRONG) if s in text]
    c.check(not leaks, "no secret in the daemon's log", leaks[:1])
    c.check("function error (Unhandled)" in text, "the log says why (function error)")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")

    # The shared credentials file and its profile.
    home = make_tempdir("td-home-")
    credfile = os.path.join(home, "creds")
    with open(credfile, "w") as f:
        f.write(f"[default]\naws_access_key_id = AKIDNOTTHISONE\naws_secret_access_key = x\n\n"
                f"[prof]\naws_access_key_id = {PROFILE[0]}\naws_secret_access_key = {PROFILE[1]}\n")
    env2 = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env2.update({"HOME": home, "AWS_SHARED_CREDENTIALS_FILE": credfile, "AWS_PROFILE": "prof"})
    cfg2 = config({"p": redis_source(rs.url, "prof")}, {"p": lam(ls, "fn-prof")},
                  [trigger("t-prof", "p", "p", retry=1)])
    td2 = Triggerd(cfg2, name="triggerd-profile")
    td2.env = env2
    td2.start()
    c.check(td2.wait_ready(10), "daemon with the shared credentials file ready")
    pids = publish_many(cl, "prof", 3)
    # Read to the last entry and acked (XPENDING 0 alone is true before the daemon read them).
    c.check(wait_until(lambda: read_and_acked(cl, "prof", "g", pids[-1]) and
                       len(of_all(ls, "fn-prof")) >= 3, 15 * SLOW, desc="profile entries acked"),
            "profile: the 3 entries read and acked", group_info(cl, "prof", "g"))
    pr = of_all(ls, "fn-prof")
    c.check(len(pr) == 3 and all(r.verified and PROFILE[0] in r.headers["authorization"] for r in pr),
            "shared credentials file, AWS_PROFILE=prof: verified with that profile's key",
            [(r.verified, r.why) for r in pr])
    c.eq(sorted(r.json()["id"] for r in pr), sorted(pids), "profile: every event invoked")
    td2.terminate()
    c.eq(td2.wait(10 * SLOW), 0, "exit status after SIGTERM (profile daemon)")

    # `triggerd check` reports a lambda sink without any credential source.
    path = os.path.join(home, "nocreds.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg2, f)
    env3 = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env3["HOME"] = home + "/nowhere"
    p = subprocess.run([triggerd_binary(), "check", "-c", path], env=env3, capture_output=True,
                       text=True, timeout=30 * SLOW)
    c.check("no AWS credentials" in p.stderr and "sink 'p'" in p.stderr,
            "check reports a lambda sink whose credentials cannot be found", p.stderr.strip()[:300])
    td3 = Triggerd(cfg2, name="triggerd-nocreds")
    td3.env = env3
    td3.start()
    c.check(td3.wait(10 * SLOW) not in (None, 0), "run refuses to start without credentials")
    c.check("no AWS credentials" in "\n".join(td3.raw_lines()), "and says why")


def of_all(ls, fn):
    return [r for r in ls.snapshot() if r.function == fn]


run_test(body)
