"""AWS web identity (EKS pods): AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE exchanged with a fake STS
(fn_peers.StsServer) that accepts only the token file's current content and hands out session
credentials valid for 6 s; the Lambda endpoint verifies every invocation with botocore's signer and
refuses expired credentials.

During a ~15 s run with an event every 0.25 s: every event is delivered, every invocation verified with
unexpired credentials, the credentials are refreshed before they expire (several exchanges), and the
token file is re-read for each exchange (it is rotated mid-run).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from fn_peers import HAVE_BOTOCORE, LambdaServer, StsServer  # noqa: E402

REGION = "us-east-2"
ROLE = "arn:aws:iam::123456789012:role/triggerd-test"


def body(c):
    if not HAVE_BOTOCORE:
        log("SKIP: python3-botocore not installed")
        return SKIP
    rs = RedisServer()
    cl = rs.client()
    ls = LambdaServer(REGION)
    d = make_tempdir()
    token_file = os.path.join(d, "token")
    with open(token_file, "w") as f:
        f.write("eyJhbGciOi.projected-token-1.sig\n")

    def current_token():
        with open(token_file) as f:
            return f.read().strip()
    sts = StsServer(ls.verifier, ROLE, current_token, lifetime=6)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HOME": d, "AWS_ROLE_ARN": ROLE, "AWS_WEB_IDENTITY_TOKEN_FILE": token_file,
                "AWS_ENDPOINT_URL_STS": sts.url + "/", "AWS_REGION": REGION})
    cfg = config({"in": redis_source(rs.url, "in")},
                 {"lam": {"lambda": {"function": "fn-wi", "endpoint": ls.url, "timeout": "2s"}}},
                 [trigger("t", "in", "lam", retry=3, backoff_delay="100ms")])
    td = Triggerd(cfg)
    td.env = env
    td.start()
    c.check(td.wait_ready(10), "daemon ready")
    ids = []
    t0 = time.monotonic()
    rotated = False
    while time.monotonic() - t0 < 15:
        ids.append(cl.xadd("in", {"n": str(len(ids))}).decode())
        if not rotated and time.monotonic() - t0 > 7:
            with open(token_file + ".new", "w") as f:
                f.write("eyJhbGciOi.projected-token-2.sig\n")
            os.rename(token_file + ".new", token_file)
            rotated = True
        time.sleep(0.25)
    # pending is 0 too before the daemon read the last entries: wait for their invocations
    wait_until(lambda: set(ids) <= {r.json()["id"] for r in ls.snapshot() if r.status == 200}
               and pending_count(cl, "in", "g") == 0, 15 * SLOW)
    reqs = ls.snapshot()
    ok = {r.json()["id"] for r in reqs if r.status == 200}
    c.eq(len(set(ids) - ok), 0, f"all {len(ids)} events invoked successfully")
    bad = [r.why for r in reqs if not r.verified]
    c.eq(bad, [], "every invocation verified by botocore's signer with unexpired credentials")
    c.check(all(r.headers.get("x-amz-security-token") for r in reqs),
            "session token sent on every invocation")
    issued = list(sts.issued)
    c.check(len(issued) >= 3, "credentials refreshed before expiry during the run",
            f"{len(issued)} exchanges in {time.monotonic() - t0:.1f}s")
    used = {r.headers["authorization"].split("Credential=")[1].split("/")[0] for r in reqs}
    c.check(len(used) >= 3, "the refreshed credentials are used", len(used))
    c.eq(sts.rejected, 0, "STS never saw a stale web identity token (the file is re-read)")
    c.check(len([t for t, _ in issued if t - sts.issued[0][0] > 8]) >= 1,
            "exchanges after the token file was rotated succeeded")
    text = "\n".join(td.raw_lines())
    c.check("projected-token" not in text, "no token in the log")
    c.check(any("web identity" in l.get("msg", "") for l in td.logs()),
            "the log says where the credentials come from")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")


run_test(body)
