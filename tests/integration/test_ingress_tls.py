"""HTTPS for the ingress (daemon.http.tls: {cert_file, key_file, client_ca_file}), with certificates the
test makes with openssl. Without client_ca_file: a CloudEvent POSTed over HTTPS (curl, verifying the
server certificate against the test's CA) is answered 202 and reaches the function, /healthz answers
over HTTPS, and plain HTTP on the same port gets no HTTP answer at all. With client_ca_file: a client
without a certificate, or with one from another CA, is refused and its event never reaches the
function; a client with a certificate of the trusted CA is served. `triggerd check` reports a missing
cert_file at its file:line:column and `run` refuses to start with it."""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import with_http  # noqa: E402
from tls_util import CA, curl  # noqa: E402


def ce_args(eid):
    return ["-X", "POST", "-H", "ce-specversion: 1.0", "-H", f"ce-id: {eid}", "-H",
            "ce-source: /tls", "-H", "ce-type: com.example.tls", "-H",
            "Content-Type: application/json", "--data", '{"x":1}']


def body(c):
    tmp = make_tempdir("td-ingress-tls-")
    server_ca = CA(tmp, "server-ca")
    client_ca = CA(tmp, "client-ca")
    other_ca = CA(tmp, "other-ca")
    srv_cert, srv_key = server_ca.issue("server", 7)
    cli_cert, cli_key = client_ca.issue("client", 8, client=True)
    bad_cert, bad_key = other_ca.issue("intruder", 9, client=True)
    fn = FunctionServer()

    def daemon(name, client_ca_file=None, probes=False):
        tls = {"cert_file": srv_cert, "key_file": srv_key}
        if client_ca_file:
            tls["client_ca_file"] = client_ca_file
        cfg = config(sources={"in": {"http": {"path": "/events"}}},
                     sinks={"fn": http_sink(fn.url + name)},
                     triggers=[trigger("t", "in", "fn")])
        port = with_http(cfg)
        cfg["daemon"]["http"]["tls"] = tls
        if probes:
            cfg["daemon"]["http"]["probes_listen"] = f"127.0.0.1:{free_port()}"
        td = Triggerd(cfg, name=name).start()
        c.check(td.wait_ready(10), f"{name}: daemon ready")
        return td, port

    # 1. server certificate only
    td, port = daemon("tls")
    url = f"https://127.0.0.1:{port}/events"
    code, err = curl(url, "--cacert", server_ca.cert, *ce_args("e1"))
    c.eq(code, 202, "HTTPS: the event is accepted (curl verified the server certificate)")
    c.check(wait_until(lambda: "e1" in fn.ok_ids("/tls"), 10 * SLOW), "HTTPS: the event reached "
            "the function")
    code, err = curl(f"https://127.0.0.1:{port}/healthz", "--cacert", server_ca.cert)
    c.eq(code, 200, "HTTPS: /healthz answers over TLS")
    code, err = curl(f"http://127.0.0.1:{port}/events", *ce_args("e-plain"))
    c.check(code == 0, "plain HTTP on the TLS port gets no HTTP answer", (code, err))
    code, err = curl(url, *ce_args("e-untrusted"))
    c.check(code == 0 and "certificate" in err.lower(),
            "a client that does not trust our CA fails the handshake (the server presented our "
            "certificate)", (code, err))
    r = run_cli(["status", "-c", td.config_path])
    c.check(r.returncode == 2 and "set daemon.http.probes_listen" in r.stderr,
            "status: with only an HTTPS listener it says to set probes_listen", r.stderr)
    # a changed tls block is not applied by SIGHUP (MHD reads the files at start): refused
    with open(td.config_path) as f:
        changed = yaml.safe_load(f)
    changed["daemon"]["http"]["tls"]["client_ca_file"] = client_ca.cert
    with open(td.config_path, "w") as f:
        yaml.safe_dump(changed, f, sort_keys=False)
    td.signal(signal.SIGHUP)
    c.check(wait_until(lambda: any("daemon.http changed; that needs a restart" in str(l.get("msg"))
                                   for l in td.logs()), 10 * SLOW),
            "SIGHUP with a changed daemon.http.tls: refused, it needs a restart")
    code, err = curl(url, "--cacert", server_ca.cert, *ce_args("e2"))
    c.eq(code, 202, "the running listener keeps serving as configured at start")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "tls: exit 0")

    # 2. client certificates required
    td, port = daemon("mtls", client_ca.cert, probes=True)
    url = f"https://127.0.0.1:{port}/events"
    code, err = curl(url, "--cacert", server_ca.cert, *ce_args("m-nocert"))
    c.check(code in (0, 403), "mTLS: a client without a certificate is refused", (code, err))
    code, err = curl(url, "--cacert", server_ca.cert, "--cert", bad_cert, "--key", bad_key,
                     *ce_args("m-badcert"))
    c.check(code in (0, 403), "mTLS: a certificate of another CA is refused", (code, err))
    code, err = curl(f"https://127.0.0.1:{port}/metrics", "--cacert", server_ca.cert)
    c.check(code in (0, 403), "mTLS: the built-in endpoints on the listener need it too",
            (code, err))
    code, err = curl(url, "--cacert", server_ca.cert, "--cert", cli_cert, "--key", cli_key,
                     *ce_args("m-ok"))
    c.eq(code, 202, "mTLS: a client certificate of the trusted CA is served")
    wait_until(lambda: "m-ok" in fn.ok_ids("/mtls"), 10 * SLOW)
    c.eq(sorted(fn.ok_ids("/mtls")), ["m-ok"], "mTLS: only the authenticated event reached the "
         "function")
    r = run_cli(["status", "-c", td.config_path])
    c.eq(r.returncode, 0, "status: asks the plain probes_listen next to an mTLS listener")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "mtls: exit 0")
    c.eq(sorted(fn.ok_ids("/tls")), ["e1", "e2"],
         "nothing sent over plain HTTP reached the function")

    # 3. check and run with a missing certificate
    path = os.path.join(tmp, "bad.yaml")
    missing = os.path.join(tmp, "missing.pem")
    with open(path, "w") as f:
        f.write(f"""version: 1
daemon:
  http:
    listen: 127.0.0.1:{free_port()}
    tls:
      cert_file: {missing}
      key_file: {srv_key}
sources:
  in: {{http: {{path: /events}}}}
sinks:
  fn: {{http: {{url: "http://127.0.0.1:1/"}}}}
triggers:
  - {{name: t, source: in, sink: fn}}
""")
    r = run_cli(["check", "-c", path])
    c.check(f"{path}:6:18: warning: daemon.http.tls: cert_file {missing} cannot be read"
            in r.stderr, "check: a missing cert_file is reported at its file:line:column",
            r.stderr)
    r = run_cli(["run", "-c", path], timeout=10)
    c.check(r.returncode != 0 and f"cert_file {missing} cannot be read" in r.stderr,
            "run refuses to start without the certificate", r.stderr[-300:])
    log(f"in=4 out={len(fn.ok_ids('/tls')) + len(fn.ok_ids('/mtls'))}")


run_test(body)
