"""JWT bearer verification on the ingress (sources: x: {http: {auth: {jwt: {jwks_file, issuer,
audience}}}}), with tokens the test signs itself (python3-cryptography): an RSA (RS256) and a P-256
(ES256) key in the JWKS file. Valid tokens of both are answered 202 and reach the function; expired,
not-yet-valid, wrong-audience, wrong-issuer, wrongly-signed (a key not in the JWKS, under a kid that
is), tampered, `alg: none`, HS256 with the public key as the HMAC secret (algorithm confusion) and
missing tokens are answered 401 and never reach the function. The JWKS file is then replaced by one
with a new key while the daemon runs: tokens of the new key are accepted without a restart, those of
the old key refused. `triggerd check` fails on a jwks_file that is not a JWKS (at its
file:line:column) and warns about a missing one; `run` refuses to start without it."""

import base64
import hashlib
import hmac
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import request, with_http  # noqa: E402
from fn_peers import _Peer  # noqa: E402

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
except ImportError:
    ec = None

ISS = "https://issuer.example"
AUD = "https://triggerd.example/events"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def uint(n):
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Key:
    def __init__(self, kind, kid):
        self.kind, self.kid = kind, kid
        if kind == "RS256":
            self.priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pub = self.priv.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                        "n": uint(pub.n), "e": uint(pub.e)}
        else:
            self.priv = ec.generate_private_key(ec.SECP256R1())
            pub = self.priv.public_key().public_numbers()
            self.jwk = {"kty": "EC", "kid": kid, "crv": "P-256",
                        "x": b64u(pub.x.to_bytes(32, "big")), "y": b64u(pub.y.to_bytes(32, "big"))}

    def sign(self, claims, kid=None, alg=None):
        hdr = {"alg": alg or self.kind, "typ": "JWT", "kid": kid or self.kid}
        signing = (b64u(json.dumps(hdr).encode()) + "." +
                   b64u(json.dumps(claims).encode())).encode()
        if self.kind == "RS256":
            sig = self.priv.sign(signing, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(self.priv.sign(signing, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing.decode() + "." + b64u(sig)

    def public_pem(self):
        return self.priv.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def claims(**over):
    now = int(time.time())
    c = {"iss": ISS, "aud": AUD, "sub": "system:serviceaccount:default:sender", "iat": now,
         "exp": now + 300}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def write_jwks(path, keys):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        json.dump({"keys": [k.jwk for k in keys]}, f)
    os.replace(tmp, path)


def body(c):
    if ec is None:
        log("SKIP: python3-cryptography is not installed")
        return SKIP
    tmp = make_tempdir("td-jwt-")
    rsa1, ec1 = Key("RS256", "rsa-1"), Key("ES256", "ec-1")
    intruder = Key("RS256", "rsa-1")  # same kid, another key
    rsa2 = Key("RS256", "rsa-2")
    jwks = os.path.join(tmp, "jwks.json")
    write_jwks(jwks, [rsa1, ec1])
    fn = FunctionServer()
    cfg = config(sources={"in": {"http": {"path": "/events", "auth": {
                     "jwt": {"jwks_file": jwks, "issuer": ISS, "audience": AUD}}}}},
                 sinks={"fn": http_sink(fn.url + "fn")},
                 triggers=[trigger("t", "in", "fn")])
    port = with_http(cfg)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")

    def post(eid, token):
        h = {"ce-specversion": "1.0", "ce-id": eid, "ce-source": "/jwt", "ce-type": "t",
             "Content-Type": "application/json"}
        if token is not None:
            h["Authorization"] = "Bearer " + token
        st, _, b = request(port, "POST", "/events", body=b"{}", headers=h)
        return st, b.decode("utf-8", "replace")

    st, b = post("ok-rs", rsa1.sign(claims()))
    c.eq(st, 202, "RS256 token of a JWKS key: accepted")
    st, b = post("ok-es", ec1.sign(claims(aud=["other", AUD])))
    c.eq(st, 202, "ES256 token (aud as an array holding ours): accepted")
    now = int(time.time())
    none_tok = (b64u(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "." +
                b64u(json.dumps(claims()).encode()) + ".")
    hs_signing = (b64u(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode()) + "." +
                  b64u(json.dumps(claims()).encode()))
    hs_tok = hs_signing + "." + b64u(hmac.new(rsa1.public_pem(), hs_signing.encode(),
                                              hashlib.sha256).digest())
    good = rsa1.sign(claims())
    h, p, s = good.split(".")
    tampered = h + "." + b64u(json.dumps(claims(sub="admin")).encode()) + "." + s
    bad = {
        "expired": (rsa1.sign(claims(iat=now - 7200, exp=now - 3600)), "expired"),
        "not yet valid": (rsa1.sign(claims(nbf=now + 3600)), "nbf"),
        "no exp": (rsa1.sign(claims(exp=None)), "exp"),
        "wrong audience": (rsa1.sign(claims(aud="https://someone.else")), "audience"),
        "wrong issuer": (ec1.sign(claims(iss="https://evil.example")), "issuer"),
        "wrong key (same kid)": (intruder.sign(claims()), "signature"),
        "unknown kid": (rsa2.sign(claims()), "no key"),
        "tampered claims": (tampered, "signature"),
        "alg none": (none_tok, "alg"),
        "HS256 with the public key as secret": (hs_tok, "alg"),
        "garbage": ("not.a.jwt", "JWT"),
        "no token": (None, "required"),
    }
    for i, (what, (tok, word)) in enumerate(bad.items()):
        st, b = post(f"bad-{i}", tok)
        c.check(st == 401 and word in b, f"{what}: refused with 401", (st, b))
    wait_until(lambda: len(fn.ok_ids("/fn")) >= 2, 10 * SLOW)
    c.eq(sorted(fn.ok_ids("/fn")), ["ok-es", "ok-rs"], "only the valid tokens' events reached "
         "the function")

    # rotation: the JWKS now holds only rsa-2
    write_jwks(jwks, [rsa2])
    ok = wait_until(lambda: post(f"rot-{time.monotonic()}", rsa2.sign(claims()))[0] == 202,
                    10 * SLOW, interval=0.2)
    c.check(ok, "after the JWKS file changed: a token of the new key is accepted (no restart)")
    st, b = post("rot-old", rsa1.sign(claims()))
    c.check(st == 401, "after the JWKS file changed: a token of the removed key is refused", (st, b))
    with open(jwks, "w") as f:
        f.write("{not json")
    time.sleep(1.5)
    st, b = post("rot-broken", rsa2.sign(claims()))
    c.eq(st, 202, "a JWKS file broken later keeps the keys read before")
    c.check(any("jwks_file changed but cannot be used" in str(l.get("msg")) for l in td.logs()),
            "the broken JWKS file is logged")
    c.check(td.running() and td.runs == 1, "no restart")
    # a changed jwt block cannot be applied by SIGHUP (the route keeps its verifier): refused
    with open(td.config_path) as f:
        changed = yaml.safe_load(f)
    changed["sources"]["in"]["http"]["auth"]["jwt"]["audience"] = "https://other"
    with open(td.config_path, "w") as f:
        yaml.safe_dump(changed, f, sort_keys=False)
    td.signal(signal.SIGHUP)
    c.check(wait_until(lambda: any("http source 'in' was added, removed or changed; that needs a "
                                   "restart" in str(l.get("msg")) for l in td.logs()), 10 * SLOW),
            "SIGHUP with a changed auth.jwt: refused, it needs a restart")
    c.eq(post("after-hup", rsa2.sign(claims()))[0], 202, "the old audience still applies")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")

    # check and run
    path = os.path.join(tmp, "bad.yaml")

    def write(jwks_path):
        with open(path, "w") as f:
            f.write(f"""version: 1
daemon: {{http: {{listen: "127.0.0.1:{free_port()}"}}}}
sources:
  in:
    http:
      path: /events
      auth: {{jwt: {{jwks_file: {jwks_path}, issuer: "{ISS}", audience: "{AUD}"}}}}
sinks:
  fn: {{http: {{url: "http://127.0.0.1:1/"}}}}
triggers:
  - {{name: t, source: in, sink: fn}}
""")

    write(jwks)  # holds "{not json" now
    r = run_cli(["check", "-c", path])
    c.eq(r.returncode, 2, "check: a jwks_file that is not a JWKS is an error")
    c.check(f"{path}:7:31: source 'in': auth.jwt.jwks_file {jwks} is not a JWKS" in r.stderr,
            "check: reported at the jwks_file's file:line:column", r.stderr)
    missing = os.path.join(tmp, "missing.json")
    write(missing)
    r = run_cli(["check", "-c", path])
    c.check(r.returncode == 0 and
            f"{path}:7:31: warning: source 'in': auth.jwt.jwks_file {missing} cannot be read"
            in r.stderr, "check: a missing jwks_file is a warning at its position", r.stderr)
    r = run_cli(["run", "-c", path], timeout=10)
    c.check(r.returncode != 0 and "cannot be read" in r.stderr,
            "run refuses to start without the JWKS", r.stderr[-300:])
    jwks_url_phase(c, fn, rsa1, rsa2)
    log(f"in={2 + len(bad) + 3} out={len(fn.ok_ids('/fn'))}")


class JwksServer(_Peer):
    """Serves {"keys": [...]} at /jwks and counts the fetches."""

    def __init__(self, keys):
        self.keys = keys
        self.fetches = 0
        super().__init__()

    def handle(self, method, path, headers, body):
        with self.lock:
            self.fetches += 1
            doc = json.dumps({"keys": [k.jwk for k in self.keys]})
        return 200, {"Content-Type": "application/json"}, doc

    def count(self):
        with self.lock:
            return self.fetches


def jwks_url_phase(c, fn, rsa1, rsa2):
    """auth: {jwt: {jwks_url}}: fetched by the daemon, reused, fetched again when a token names a
    kid it does not know (not more than every 5 s), and the rotated keys replace the old ones."""
    js = JwksServer([rsa1])
    cfg = config(sources={"in": {"http": {"path": "/events", "auth": {
                     "jwt": {"jwks_url": js.url + "/jwks", "issuer": ISS, "audience": AUD}}}}},
                 sinks={"fn": http_sink(fn.url + "url")},
                 triggers=[trigger("t", "in", "fn")])
    port = with_http(cfg)
    td = Triggerd(cfg, name="triggerd-url").start()
    c.check(td.wait_ready(10), "jwks_url: daemon ready")

    def post(eid, token):
        h = {"ce-specversion": "1.0", "ce-id": eid, "ce-source": "/jwt", "ce-type": "t",
             "Content-Type": "application/json", "Authorization": "Bearer " + token}
        return request(port, "POST", "/events", body=b"{}", headers=h)[0]

    ok = wait_until(lambda: post(f"u-{time.monotonic()}", rsa1.sign(claims())) == 202, 10 * SLOW,
                    interval=0.1)
    c.check(ok, "jwks_url: a token of the served key is accepted once the JWKS was fetched")
    for i in range(10):
        post(f"u-again-{i}", rsa1.sign(claims()))
    c.eq(js.count(), 1, "jwks_url: fetched once, reused for every request")
    with js.lock:
        js.keys = [rsa2]  # the issuer rotates its key
    t0 = time.monotonic()
    statuses = [post(f"u-new-{i}", rsa2.sign(claims())) for i in range(20)]
    c.check(js.count() <= 2, "jwks_url: 20 tokens with an unknown kid cause at most one fetch",
            js.count())
    ok = wait_until(lambda: post(f"u-rot-{time.monotonic()}", rsa2.sign(claims())) == 202,
                    15 * SLOW, interval=0.25)
    c.check(ok, "jwks_url: after the issuer rotated, a token of the new key is accepted "
            "(an unknown kid made it fetch again)", (time.monotonic() - t0, statuses[:3]))
    c.eq(post("u-old", rsa1.sign(claims())), 401, "jwks_url: the removed key's tokens are refused")
    c.check(js.count() <= 4, "jwks_url: fetched only when needed", js.count())
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "jwks_url: exit 0 (the fetch thread stops)")


run_test(body)
