"""Redis over TLS against a redis-server that refuses anything else: `--port 0 --tls-port N
--tls-auth-clients yes`, with a CA, server and client certificates the test makes with openssl.

- source -> function, a Redis sink and a Redis dead-letter target, all rediss:// with a `tls:`
  block: every entry published (half with `triggerd publish rediss://... --tls-*`, half with a
  TLS redis-py client) reaches the function or the sink exactly once or is dead-lettered (the
  function refuses some with 422), nothing stays pending: counted in and out;
- `triggerd redrive` reads the dead letters back over TLS and delivers them;
- a client that trusts another CA is refused with "certificate verify failed" (publish, and the
  daemon's source, which logs it and reads nothing); a client without a certificate is refused
  ("certificate required"); a wrong server_name is refused ("hostname mismatch"), the right one
  works; insecure_skip_verify accepts a server it cannot verify; a plain redis:// URL against the TLS port fails;
- the client certificate files are read for every new connection: an untrusted pair put in their
  place (connections cut with CLIENT KILL) is refused by the server, the trusted pair put back is
  used by the next reconnect, and the entry written meanwhile arrives (nothing lost, no restart);
- a server that accepts the TCP connection and never answers the handshake does not hold up the
  daemon's stop (the source's stop interrupts the connect; before, it waited for the 5 s timeout);
- `triggerd check` reports a tls file that is not PEM as an error, and a missing one as a
  warning, each at the file:line:column of its key; a tls block beside a redis:// URL is an error;
- the key file's content and the URL's password never show in the logs.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
import tls_util  # noqa: E402

N = 200


def body(c):
    tls = RedisTLS()
    other = RedisTLS("other")  # a CA the server does not use
    rs = RedisServer(tls=tls)
    cl = rs.client()
    c.check(cl.ping(), "the test's own TLS client reaches the server")

    def behaviour(req, attempt):
        d = req.json() if req.body else {}
        return (422, {}, b"no", 0) if d.get("bad") else (200, {}, b"", 0)

    fn = FunctionServer(behaviour)
    block = tls.tls_block  # a new dict each time: yaml.safe_dump would write aliases for one
    url = rs.url
    cfg = config(
        sources={"in": redis_source(url, "in", tls=block()),
                 "in2": redis_source(url, "in2", tls=block())},
        sinks={"fn": http_sink(fn.url),
               "out": {"redis": {"url": url, "stream": "out", "tls": block()}},
               "dl": {"redis": {"url": url, "stream": "dl", "tls": dict(block(),
                                                                         server_name="localhost")}}},
        triggers=[trigger("t1", "in", "fn", dead_letter="dl", retry=1),
                  trigger("t2", "in2", "out")])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")

    # In: half through `triggerd publish` over TLS, half through redis-py over TLS.
    published = []
    for i in range(20):
        r = run_cli(["publish", rs.url_for("in"), "--data", '{"n": %d}' % i] + tls.cli_flags())
        c.check(r.returncode == 0, f"publish {i} over TLS", r.stderr[-300:])
        published.append(r.stdout.strip())
    publish_many(cl, "in", N - 20, lambda i: {"n": str(i + 20), **({"bad": "1"} if i % 5 == 0 else {})})
    bad = sum(1 for i in range(N - 20) if i % 5 == 0)
    ids2 = publish_many(cl, "in2", N)
    c.eq(cl.xlen("in"), N, "entries in (stream in)")

    ok = wait_until(lambda: len(fn.ok_ids()) == N - bad and cl.xlen("dl") == bad
                    and cl.xlen("out") == N, 30 * SLOW, desc="all delivered")
    c.check(ok, "every entry delivered or dead-lettered over TLS",
            (len(fn.ok_ids()), cl.xlen("dl"), cl.xlen("out")))
    c.eq(len(fn.ok_ids()) + cl.xlen("dl"), N, "out = in: function + dead letters")
    c.eq(cl.xlen("out"), N, "out = in: the Redis sink got every entry of in2")
    c.eq(sorted(f.get("ce_id", b"").decode() for _, f in read_stream(cl, "out")), sorted(ids2),
         "the sink's entries are in2's, each once")
    wait_until(lambda: pending_count(cl, "in", "g") == 0 and pending_count(cl, "in2", "g") == 0,
               10 * SLOW)
    c.eq(pending_count(cl, "in", "g"), 0, "nothing pending on in")
    c.eq(pending_count(cl, "in2", "g"), 0, "nothing pending on in2")
    c.check(len(published) == 20 and all("-" in p for p in published), "publish printed ids")

    td.terminate()
    c.eq(td.wait(20 * SLOW), 0, "daemon stopped")

    # Redrive the dead letters over TLS, with the function now accepting them.
    def accept_all(req, attempt):
        return (200, {}, b"", 0)
    fn.behaviour = accept_all
    mark = len(fn.ok_ids())
    r = run_cli(["redrive", "-c", td.config_path, "--from", "dl"], timeout=60)
    c.check(r.returncode == 0 and f"{bad} delivered" in r.stdout, "redrive over TLS",
            (r.returncode, r.stdout[-300:], r.stderr[-500:]))
    c.eq(len(fn.ok_ids()) - mark, bad, "each dead letter delivered once by redrive")
    c.eq(cl.xlen("dl"), 0, "the dead-letter stream is empty afterwards")

    # Refusals, with a clear error.
    r = run_cli(["publish", rs.url_for("x"), "--data", "x"] + other.cli_flags())
    c.check(r.returncode != 0 and "certificate verify failed" in r.stderr,
            "publish trusting another CA: certificate verify failed", r.stderr[-300:])
    r = run_cli(["publish", rs.url_for("x"), "--data", "x", "--tls-ca", tls.ca.cert])
    c.check(r.returncode != 0 and "certificate required" in r.stderr,
            "publish without a client certificate: refused", r.stderr[-300:])
    r = run_cli(["publish", rs.url_for("x"), "--data", "x", "--tls-server-name", "redis.example"]
                + tls.cli_flags())
    c.check(r.returncode != 0 and "hostname mismatch" in r.stderr,
            "a server_name the certificate does not name: refused", r.stderr[-300:])
    r = run_cli(["publish", rs.url_for("x"), "--data", "x", "--tls-server-name", "localhost"]
                + tls.cli_flags())
    c.eq(r.returncode, 0, "server_name localhost (in the certificate): accepted")
    r = run_cli(["publish", rs.url_for("x"), "--data", "x", "--tls-insecure-skip-verify",
                 "--tls-cert", tls.client_cert, "--tls-key", tls.client_key,
                 "--tls-ca", other.ca.cert])
    c.eq(r.returncode, 0, "insecure_skip_verify: the untrusted server accepted (tests only)")
    r = run_cli(["publish", f"redis://127.0.0.1:{rs.port}/x", "--data", "x"])
    c.check(r.returncode != 0, "plain redis:// against the TLS port fails", r.stderr[-300:])
    c.eq(cl.xlen("x"), 2, "only the two accepted publishes wrote")

    # The daemon's source trusting another CA: logs why, reads nothing.
    cl.xadd("in3", {"data": "1"})
    bad_cfg = config(sources={"in": redis_source(url, "in3", tls=other.tls_block())},
                     sinks={"fn": http_sink(fn.url)}, triggers=[trigger("t", "in", "fn")])
    td2 = Triggerd(bad_cfg, name="wrong-ca").start()
    saw = wait_until(lambda: any("certificate verify failed" in str(l.get("msg", ""))
                                 for l in td2.logs()), 15 * SLOW)
    c.check(saw, "the source logs 'certificate verify failed'")
    c.eq(cl.xinfo_groups("in3") if cl.exists("in3") else [], [], "and created no group, read nothing")
    td2.terminate()
    td2.wait(20 * SLOW)
    # Without a client certificate.
    nocert_cfg = config(sources={"in": redis_source(url, "in3", tls={"ca_file": tls.ca.cert})},
                        sinks={"fn": http_sink(fn.url)}, triggers=[trigger("t", "in", "fn")])
    td3 = Triggerd(nocert_cfg, name="no-cert").start()
    saw = wait_until(lambda: any("certificate required" in str(l.get("msg", ""))
                                 for l in td3.logs()), 15 * SLOW)
    c.check(saw, "a source without a client certificate logs 'certificate required'")
    td3.terminate()
    td3.wait(20 * SLOW)

    # Rotation: the certificate files are read for every new connection (no restart).
    rot = make_tempdir("td-redis-rot-")
    cert, key = os.path.join(rot, "client.pem"), os.path.join(rot, "client.key")

    def put_pair(src_cert, src_key):
        tls_util.replace_file(src_cert, cert)
        tls_util.replace_file(src_key, key)
    put_pair(tls.client_cert, tls.client_key)
    rb = {"ca_file": tls.ca.cert, "cert_file": cert, "key_file": key}
    td5 = Triggerd(config(sources={"in": redis_source(url, "rot", tls=dict(rb))},
                          sinks={"out": {"redis": {"url": url, "stream": "rot-out", "tls": dict(rb)}}},
                          triggers=[trigger("t", "in", "out", retry=1000, backoff_max="200ms")]),
                   name="rotation").start()
    c.check(td5.wait_ready(10), "rotation: daemon ready")
    cl.xadd("rot", {"n": "1"})
    c.check(wait_until(lambda: cl.xlen("rot-out") == 1, 10 * SLOW), "rotation: first entry through")
    # An untrusted pair on disk and the connections cut: the daemon cannot get back in...
    put_pair(other.client_cert, other.client_key)
    mark = len(td5.logs())
    cl.client_kill_filter(_type="normal", skipme=True)
    cl.xadd("rot", {"n": "2"})
    refused = wait_until(lambda: any("alert" in str(l.get("msg", "")) for l in td5.logs()[mark:]),
                         10 * SLOW)
    c.check(refused, "rotation: the new connections present the new (untrusted) certificate")
    c.eq(cl.xlen("rot-out"), 1, "rotation: nothing gets through meanwhile")
    # ...until a trusted pair is back: the next reconnect uses it, nothing is lost.
    put_pair(tls.client_cert, tls.client_key)
    ok = wait_until(lambda: cl.xlen("rot-out") == 2 and pending_count(cl, "rot", "g") == 0,
                    20 * SLOW)
    c.check(ok, "rotation: after the trusted pair is back, the entry arrives, nothing pending",
            (cl.xlen("rot-out"), pending_count(cl, "rot", "g")))
    td5.terminate()
    c.eq(td5.wait(20 * SLOW), 0, "rotation: daemon stopped")

    # A server that accepts the TCP connection and never answers the handshake: stopping does
    # not wait for the connect timeout (5 s per connection), the source's stop interrupts it.
    import socket
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    at_cleanup(hole.close)
    hole_url = f"rediss://127.0.0.1:{hole.getsockname()[1]}/0"
    td4 = Triggerd(config(sources={"in": redis_source(hole_url, "s", tls=block())},
                          sinks={"fn": http_sink(fn.url)}, triggers=[trigger("t", "in", "fn")]),
                   name="black-hole").start()
    time.sleep(1.0)  # the source is in its handshake now (not ready: no connection)
    c.check(td4.running(), "daemon running beside a server that never answers")
    t0 = time.monotonic()
    td4.terminate()
    c.eq(td4.wait(20 * SLOW), 0, "stopped (exit 0)")
    took = time.monotonic() - t0
    c.check(took < 2.0 * SLOW, "stopping did not wait for the handshake's timeout", f"{took:.2f}s")

    # check: file:line:column of the key.
    d = make_tempdir("td-redis-tls-check-")
    notpem = os.path.join(d, "not.pem")
    with open(notpem, "w") as f:
        f.write("hello\n")
    text = f"""version: 1
sources:
  in:
    redis:
      url: "{url}"
      stream: s
      tls:
        ca_file: {notpem}
        cert_file: {tls.client_cert}
        key_file: {os.path.join(d, "missing.key")}
sinks:
  fn:
    http: {{url: "{fn.url}"}}
  plain:
    redis:
      url: "redis://127.0.0.1:{rs.port}/0"
      stream: s
      tls: {{ca_file: {tls.ca.cert}}}
triggers:
  - {{name: t, source: in, sink: fn}}
  - {{name: t2, source: in, sink: plain}}
"""
    path = os.path.join(d, "bad.yaml")
    with open(path, "w") as f:
        f.write(text)
    r = run_cli(["check", "-c", path])
    err = r.stderr
    c.check(r.returncode != 0, "check fails", (r.returncode, err[-500:]))
    c.check(f"{path}:8:18: " in err and "tls.ca_file" in err and "does not hold" in err,
            "the ca_file that is not PEM: an error at its key's line and column", err[-800:])
    c.check(f"{path}:10:19: warning" in err and "tls.key_file" in err,
            "the missing key_file: a warning at its key's line and column", err[-800:])
    c.check("rediss://" in err and "tls:" in err, "tls beside redis:// is an error", err[-800:])
    key_text = open(tls.client_key).read().strip().splitlines()[1]
    all_logs = "\n".join(td.raw_lines() + td2.raw_lines() + td3.raw_lines()) + err
    c.check(key_text not in all_logs, "the key file's content never shows")


run_test(body)
