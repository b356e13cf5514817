"""`triggerd check` runs each plugin's own check (the descriptor's check hook, issue 13): one file
with a mistake for every kind that checks something beyond the loader, and the message of each at
the source's or sink's FILE:LINE:COL (errors, exit status 2) or on stderr as a warning. The same
file with the mistakes fixed checks clean. No server is needed: nothing connects."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import make_tempdir, run_cli, run_test  # noqa: E402

GOOD = """\
version: 1
daemon:
  http: {listen: "127.0.0.1:1"}
sources:
  rs: {redis: {url: "redis://127.0.0.1:1/0", stream: s}}
  in1: {http: {path: /a}}
  in2: {http: {path: /b}}
sinks:
  web: {http: {url: "http://127.0.0.1:1/"}}
  faas: {openfaas: {gateway: "http://127.0.0.1:1", function: f}}
  fn: {lambda: {function: f, region: eu-west-1, credentials: {access_key_id: AKIDX, secret_access_key: sk}}}
  rk: {redis: {url: "redis://127.0.0.1:1/1", stream: d}}
triggers:
  - {name: t, source: rs, sink: web}
"""

BAD = (GOOD.replace("127.0.0.1:1/0", "127.0.0.1:1/zero")
       .replace("path: /b", "path: /a")
       .replace('url: "http://127.0.0.1:1/"}', 'url: "http://127.0.0.1:1/", ca_file: /nonexistent/ca.pem,'
                ' auth: {bearer_file: /nonexistent/token}}')
       .replace("function: f}", "function: f, auth: {azure_key_in: query}}")
       .replace("function: f, region", "function: 'arn:aws:lambda:f', region")
       .replace("127.0.0.1:1/1", "127.0.0.1:1/one"))

# (line, col) of the source or sink, and the message after it
ERRORS = [
    ((5, 3), "the Redis URL path must be a database number"),                 # redis source
    ((7, 3), "source 'in2': path /a is already used by source 'in1'"),       # http source
    ((10, 3), "sink 'faas': azure_key_in needs azure_function_key"),         # openfaas (auth)
    ((11, 3), "sink 'fn': lambda function must be a plain name"),            # lambda
    ((12, 3), "the Redis URL path must be a database number"),               # redis sink
]
WARNINGS = [
    "warning: sink 'web': bearer_file /nonexistent/token cannot be read",     # http (auth)
    "warning: sink 'web': ca_file /nonexistent/ca.pem cannot be read",        # http (TLS)
]


def body(c):
    d = make_tempdir("td-pcheck-")
    good = os.path.join(d, "good.yaml")
    with open(good, "w") as f:
        f.write(GOOD)
    p = run_cli(["check", "-c", good], timeout=15)
    c.check(p.returncode == 0, "the file without mistakes checks clean", p.stderr.strip())
    bad = os.path.join(d, "bad.yaml")
    with open(bad, "w") as f:
        f.write(BAD)
    p = run_cli(["check", "-c", bad], timeout=15)
    c.eq(p.returncode, 2, "check exits 2")
    for (line, col), msg in ERRORS:
        want = f"{bad}:{line}:{col}: {msg}"
        c.check(want in p.stderr, f"check says {want}", p.stderr.strip())
    for msg in WARNINGS:
        c.check(msg in p.stderr, f"check warns {msg}", p.stderr.strip())


run_test(body)
