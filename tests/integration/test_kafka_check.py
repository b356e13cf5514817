"""`triggerd check` refuses the Kafka `properties` that `run` refuses (librdkafka does not know
the name, or refuses the value), for a source and for a sink, at FILE:LINE:COL with exit status 2,
and never prints a property's value (it may be a secret). Valid properties check clean. No broker
is needed: nothing connects.

The tls: and sasl: keys the same way: what a mechanism needs (username and password; token_url,
client_id and client_secret for OAUTHBEARER), keys of the other mechanism, an unknown mechanism,
a client certificate without its key, `plaintext: true` (SASL_PLAINTEXT) beside `tls:`, and TLS
files (tls_file.c: a file of the wrong kind is an error, one that cannot be read here a
warning), each at its FILE:LINE:COL, never printing the password or client secret."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import make_tempdir, run_cli, run_test  # noqa: E402
from tls_util import CA  # noqa: E402

GOOD = """\
version: 1
sources:
  src:
    kafka:
      brokers: 127.0.0.1:1
      topics: [t]
      group: g
      properties: {session.timeout.ms: "6000", sasl.password: hunter2secret}
sinks:
  fn: {http: {url: "http://127.0.0.1:1/"}}
  dl:
    kafka:
      brokers: 127.0.0.1:1
      topic: d
      properties: {linger.ms: "5"}
triggers:
  - name: t
    source: src
    sink: fn
    delivery: {dead_letter: dl}
"""

CASES = [
    ("unknown source property", GOOD.replace("session.timeout.ms", "no.such.prop"), (3, 3),
     "no.such.prop"),
    ("bad source value", GOOD.replace('"6000"', "notanumberSECRET"), (3, 3), "session.timeout.ms"),
    ("bad sink value", GOOD.replace('linger.ms: "5"', "acks: hunter3secret"), (11, 3), "acks"),
    ("unknown sink property", GOOD.replace("linger.ms", "no.such.sink.prop"), (11, 3),
     "no.such.sink.prop"),
]

SECURE = """\
version: 1
sources:
  src:
    kafka:
      brokers: 127.0.0.1:1
      topics: [t]
      tls: {ca_file: CA}
      sasl:
        mechanism: SCRAM-SHA-512
        username: u
        password: pw-hunter4secret
sinks:
  fn: {http: {url: "http://127.0.0.1:1/"}}
  dl:
    kafka:
      brokers: 127.0.0.1:1
      topic: d
      tls: {ca_file: CA, cert_file: CERT, key_file: KEY}
      sasl:
        mechanism: OAUTHBEARER
        method: oidc
        token_url: "http://127.0.0.1:1/token"
        client_id: td
        client_secret: cs-hunter5secret
triggers:
  - name: t
    source: src
    sink: fn
    delivery: {dead_letter: dl}
"""

# (name, edit, (line, col) of the error, what it says)
SECURE_CASES = [
    ("SCRAM without password", lambda t: t.replace("        password: pw-hunter4secret\n", ""),
     (9, 9), "needs 'password'"),
    ("unknown mechanism", lambda t: t.replace("SCRAM-SHA-512", "GSSAPI"), (9, 20), "GSSAPI"),
    ("OAUTHBEARER without token_url",
     lambda t: t.replace('        token_url: "http://127.0.0.1:1/token"\n', ""), (20, 9),
     "needs 'token_url'"),
    ("password with OAUTHBEARER",
     lambda t: t.replace("        client_id: td\n", "        client_id: td\n        password: x\n"),
     (24, 19), "'password' is not used with OAUTHBEARER"),
    ("token_url not http", lambda t: t.replace('"http://127.0.0.1:1/token"', "ftp://x/t"),
     (22, 20), "token_url must be an http"),
    ("client_secret with SCRAM",
     lambda t: t.replace("        username: u\n", "        username: u\n        client_secret: x\n"),
     (11, 24), "'client_secret' is only for mechanism OAUTHBEARER"),
    ("cert_file without key_file", lambda t: t.replace(", key_file: KEY", ""), (18, 12),
     "cert_file and key_file go together"),
    ("a certificate as key_file", lambda t: t.replace("key_file: KEY", "key_file: CERT"), (18, 61),
     "tls.key_file"),
    ("plaintext: true beside tls:",
     lambda t: t.replace("        password: pw-hunter4secret\n",
                         "        password: pw-hunter4secret\n        plaintext: true\n"),
     (12, 20), "plaintext: true (SASL without TLS) cannot go with tls:"),
]


def check_secure(c, d):
    ca = CA(d, "ca")
    cert, key = ca.issue("client", 2, client=True)
    good = SECURE.replace("CA", ca.cert).replace("CERT", cert).replace("KEY", key)
    path = os.path.join(d, "secure.yaml")
    with open(path, "w") as f:
        f.write(good)
    p = run_cli(["check", "-c", path])
    c.eq(p.returncode, 0, f"tls: and sasl: check clean ({p.stderr.strip()})")
    for i, (name, edit, pos, says) in enumerate(SECURE_CASES):
        text = edit(SECURE)
        line = pos[0]
        text = text.replace("CA", ca.cert).replace("CERT", cert).replace("KEY", key)
        bad = os.path.join(d, f"secure{i}.yaml")
        with open(bad, "w") as f:
            f.write(text)
        p = run_cli(["check", "-c", bad], timeout=15)
        c.eq(p.returncode, 2, f"[{name}] check exits 2")
        m = re.search(re.escape(bad) + r":(\d+):(\d+): .*" + re.escape(says), p.stderr)
        c.check(m and int(m.group(1)) == line, f"[{name}] check says '{says}' at line {line}",
                p.stderr.strip())
        c.check("hunter4secret" not in p.stderr and "hunter5secret" not in p.stderr,
                f"[{name}] no secret printed")
    missing = good.replace(ca.cert, os.path.join(d, "nope.pem"))
    path = os.path.join(d, "missing.yaml")
    with open(path, "w") as f:
        f.write(missing)
    p = run_cli(["check", "-c", path])
    c.check(p.returncode == 0 and re.search(re.escape(path) + r":7:\d+: warning: .*tls.ca_file .*"
                                            r"nope.pem cannot be read", p.stderr),
            "a CA file that cannot be read here is a warning at its position", p.stderr.strip())
    r = run_cli(["run", "-c", path], timeout=15)
    c.check(r.returncode != 0 and "nope.pem cannot be read" in r.stderr,
            "run refuses to start without it", r.stderr.strip()[-300:])


def body(c):
    d = make_tempdir("td-kcheck-")
    path = os.path.join(d, "good.yaml")
    with open(path, "w") as f:
        f.write(GOOD)
    p = run_cli(["check", "-c", path])
    c.eq(p.returncode, 0, "valid properties check clean")
    for i, (name, text, pos, prop) in enumerate(CASES):
        path = os.path.join(d, f"bad{i}.yaml")
        with open(path, "w") as f:
            f.write(text)
        p = run_cli(["check", "-c", path], timeout=15)
        c.eq(p.returncode, 2, f"[{name}] check exits 2")
        m = re.search(re.escape(path) + r":(\d+):(\d+): .*property '" + re.escape(prop) + "'",
                      p.stderr)
        c.check(m and (int(m.group(1)), int(m.group(2))) == pos,
                f"[{name}] check names {prop} at {path}:{pos[0]}:{pos[1]}", p.stderr.strip())
        for secret in ("hunter2secret", "hunter3secret", "notanumberSECRET"):
            c.check(secret not in p.stderr, f"[{name}] check does not print the value")
        r = run_cli(["run", "-c", path], timeout=15)
        c.check(r.returncode != 0, f"[{name}] run refuses it too", r.returncode)
    check_secure(c, d)


run_test(body)
