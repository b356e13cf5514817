"""Mutual TLS to a function: an HTTP sink with ca_file, client_cert and client_key delivering to a
real nginx that requires a client certificate (`ssl_verify_client on`), with certificates the test
makes with openssl. A client without a certificate, or with one from a CA nginx does not trust, is
refused; triggerd's requests arrive with its certificate's serial. Then the certificate and key are
replaced on disk while the daemon runs, twice: first by one from the same CA with another serial
(nginx unchanged, so only the serial tells), then by one from a second CA while nginx is reloaded to
trust only that CA (the old certificate would now be refused). After each rotation every new
connection presents the new certificate, with no restart and no lost entry; nginx closes the
connection after every request, so every request is a new connection and handshake."""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from tls_util import CA, Nginx, curl, replace_file, serial_hex  # noqa: E402

SERIAL_A, SERIAL_C, SERIAL_B = 0x1A01, 0x1C03, 0x2B02


def body(c):
    if not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
        log("SKIP: nginx is not installed (scripts/setup-debian.sh installs nginx-light)")
        return SKIP
    tmp = make_tempdir("td-mtls-")
    server_ca = CA(tmp, "server-ca")
    ca1 = CA(tmp, "client-ca1")
    ca2 = CA(tmp, "client-ca2")
    srv_cert, srv_key = server_ca.issue("server", 100)
    a_cert, a_key = ca1.issue("client-a", SERIAL_A, client=True)
    c_cert, c_key = ca1.issue("client-c", SERIAL_C, client=True)
    b_cert, b_key = ca2.issue("client-b", SERIAL_B, client=True)
    # the paths the daemon reads: rotation replaces their content
    live = make_tempdir("td-mtls-live-")
    cert = os.path.join(live, "client.pem")
    key = os.path.join(live, "client.key")
    replace_file(a_cert, cert)
    replace_file(a_key, key)

    ng = Nginx(srv_cert, srv_key, [ca1.cert])
    code, err = curl(ng.url, "--cacert", server_ca.cert)
    c.eq(code, 400, "nginx refuses a client without a certificate (400 No required SSL certificate)")
    code, err = curl(ng.url, "--cacert", server_ca.cert, "--cert", b_cert, "--key", b_key)
    c.eq(code, 400, "nginx refuses a certificate from a CA it does not trust")
    code, err = curl(ng.url, "--cacert", server_ca.cert, "--cert", a_cert, "--key", a_key)
    c.eq(code, 204, "nginx accepts the client certificate it trusts (curl)")
    n0 = len(ng.requests())

    rs = RedisServer()
    cl = rs.client()
    sink = {"http": {"url": ng.url + "fn", "timeout": "5s", "ca_file": server_ca.cert,
                     "client_cert": cert, "client_key": key}}
    cfg = config({"s": redis_source(rs.url, "s")}, {"fn": sink},
                 [trigger("t", "s", "fn", retry=20, backoff="linear", backoff_delay="100ms", backoff_max="500ms")])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")
    pid = td.proc.pid

    def deliver(tag, n):
        for i in range(n):
            cl.xadd("s", {"phase": tag, "i": str(i)})
        ok = wait_until(lambda: not td.running() or pending_count(cl, "s", "g") == 0 and
                        len(cl.xrange("s")) == len(ok_requests()), 30 * SLOW,
                        desc=f"{tag}: every entry delivered and acked")
        return ok

    def ok_requests():
        return [r for r in ng.requests()[n0:] if r["uri"] == "/fn" and r["status"] == 204]

    deliver("a", 5)
    got = ng.requests()[n0:]
    c.eq([r["serial"] for r in got], [serial_hex(SERIAL_A)] * 5,
         "first certificate: every request presented serial A")
    c.check(all(r["verify"] == "SUCCESS" for r in got), "nginx verified the client certificate",
            got[:2])
    n1 = len(ng.requests())

    # Rotation 1: same CA, another serial, nginx untouched. Only the serial can tell.
    replace_file(c_key, key)
    replace_file(c_cert, cert)
    deliver("c", 5)
    got = [r for r in ng.requests()[n1:] if r["status"] == 204]
    c.eq([r["serial"] for r in got], [serial_hex(SERIAL_C)] * 5,
         "after rotation on disk: every new connection presented the new serial")
    c.check(all(r["reused"] == "." for r in got),
            "no TLS session of the old certificate was resumed", got[:2])
    n2 = len(ng.requests())

    # Rotation 2: a certificate of another CA, and nginx now trusts only that CA.
    replace_file(b_key, key)
    replace_file(b_cert, cert)
    c.check(ng.trust_only([ca2.cert]), "nginx reloaded to trust only the second CA")
    code, err = curl(ng.url, "--cacert", server_ca.cert, "--cert", a_cert, "--key", a_key)
    c.eq(code, 400, "the first certificate is now refused")
    n2 = len(ng.requests())
    deliver("b", 5)
    got = [r for r in ng.requests()[n2:] if r["status"] == 204]
    c.eq([r["serial"] for r in got], [serial_hex(SERIAL_B)] * 5,
         "after rotation to a new CA: the deliveries presented the new certificate")
    c.check(td.running() and td.proc.pid == pid and td.runs == 1, "no restart")
    entries = cl.xrange("s")
    c.eq(len(entries), 15, "15 entries published")
    c.eq(pending_count(cl, "s", "g"), 0, "every entry acknowledged")
    log(f"in={len(entries)} out={len(ok_requests())}")
    # nothing about the key in the logs
    keytext = open(b_key).read().split("\n")[1]
    c.check(not any(keytext in l for l in td.raw_lines()), "the private key never reaches a log")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")
    check_reports(c, tmp, server_ca.cert, cert, key)


def check_reports(c, tmp, ca, cert, key):
    """`triggerd check` names a missing or unusable TLS file at the position of its key, and
    `run` refuses to start with it."""
    missing = os.path.join(tmp, "nope.pem")
    notkey = os.path.join(tmp, "notkey.pem")
    with open(notkey, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    path = os.path.join(tmp, "tls-check.yaml")

    def write(cert_path, key_path):
        with open(path, "w") as f:
            f.write(f"""version: 1
sources:
  s: {{redis: {{url: "redis://127.0.0.1:1/0", stream: s}}}}
sinks:
  fn:
    http:
      url: https://127.0.0.1:1/
      ca_file: {ca}
      client_cert: {cert_path}
      client_key: {key_path}
triggers:
  - {{name: t, source: s, sink: fn}}
""")

    write(missing, key)
    r = run_cli(["check", "-c", path])
    c.eq(r.returncode, 0, "check: a missing client_cert is a warning (it may exist where run runs)")
    c.check(f"{path}:9:20: warning: sink 'fn': client_cert {missing} cannot be read" in r.stderr,
            "check: the missing client_cert is reported at its file:line:column", r.stderr)
    r = run_cli(["run", "-c", path], timeout=10)
    c.check(r.returncode != 0 and f"client_cert {missing} cannot be read" in r.stderr,
            "run refuses to start without the client certificate", r.stderr[-400:])
    write(cert, notkey)
    r = run_cli(["check", "-c", path])
    c.eq(r.returncode, 2, "check: a client_key that is no private key is an error")
    c.check(f"{path}:10:19: sink 'fn': client_key {notkey} does not hold a PEM private key"
            in r.stderr, "check: the bad client_key is reported at its file:line:column",
            r.stderr)
    os.chmod(key, 0)
    write(cert, key)
    r = run_cli(["check", "-c", path])
    if os.geteuid() != 0:
        c.check(f"{path}:10:19: warning: sink 'fn': client_key {key} cannot be read" in r.stderr,
                "check: an unreadable client_key is reported at its file:line:column", r.stderr)
    os.chmod(key, 0o600)


run_test(body)
