"""Every outbound HTTP request says `User-Agent: triggerd/VERSION`: an HTTP sink, an OpenFaaS sink, the
Google ID token fetch from the metadata server, and a Lambda invocation (when botocore is there to
verify its signature); a sink whose own `headers:` set a User-Agent sends that one instead."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from fn_peers import HAVE_BOTOCORE, LambdaServer, MetadataServer  # noqa: E402

KEY = ("AKIDUSERAGENT00001", "ua/secret+key00000000000000000000000000")


def body(c):
    version = run_cli(["version"]).stdout.split()[-1]
    want = f"triggerd/{version}"
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer()
    md = MetadataServer(lifetime=60)
    ls = LambdaServer("eu-west-1")
    ls.verifier.add_key(*KEY)
    sinks = {
        "web": http_sink(fn.url + "web"),
        "own": {"http": {"url": fn.url + "own", "headers": {"User-Agent": "mine/2"}}},
        "faas": {"openfaas": {"gateway": fn.url, "function": "f"}},
        "gcf": {"http": {"url": fn.url + "gcf",
                         "auth": {"google_id_token": {"audience": "https://x.a.run.app",
                                                      "metadata_url": md.identity_url}}}},
    }
    if HAVE_BOTOCORE:
        sinks["lam"] = {"lambda": {"function": "fn", "region": "eu-west-1", "endpoint": ls.url,
                                   "credentials": {"access_key_id": KEY[0],
                                                   "secret_access_key": KEY[1]}}}
    sources = {name: redis_source(rs.url, name) for name in sinks}
    triggers = [trigger("t-" + name, name, name) for name in sinks]
    td = Triggerd(config(sources, sinks, triggers)).start()
    c.check(td.wait_ready(10), "daemon ready")
    ids = {name: cl.xadd(name, {"n": "1"}).decode() for name in sinks}

    # Read (last-delivered-id) and acked, not XPENDING alone: that is 0 too right after the XADD,
    # before the just-started daemon has read the entries.
    c.check(wait_until(lambda: all(read_and_acked(cl, s, "g", ids[s]) for s in sinks), 20 * SLOW,
                       desc="every entry acked"), "every entry read and acked")

    def agents(path):
        return sorted({r.header("user-agent") for r in fn.snapshot(path)})

    c.eq(agents("/web"), [want], "HTTP sink: User-Agent triggerd/VERSION")
    c.eq(agents("/own"), ["mine/2"], "a sink's own headers: User-Agent replaces ours")
    c.eq(agents("/function/f"), [want], "OpenFaaS sink: User-Agent triggerd/VERSION")
    c.eq(agents("/gcf"), [want], "Google ID token sink: User-Agent triggerd/VERSION")
    with md.lock:
        mua = sorted(set(md.user_agents))
    c.eq(mua, [want], "metadata server token fetch: User-Agent triggerd/VERSION")
    if HAVE_BOTOCORE:
        lreqs = ls.snapshot()
        c.check(lreqs and all(r.verified for r in lreqs), "Lambda requests verified", lreqs[:1])
        c.eq(sorted({r.headers.get("user-agent") for r in lreqs}), [want],
             "Lambda invocation: User-Agent triggerd/VERSION")
    else:
        log("botocore missing: the Lambda part is skipped")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")


run_test(body)
