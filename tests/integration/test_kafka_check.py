"""`triggerd check` refuses the Kafka `properties` that `run` refuses (librdkafka does not know
the name, or refuses the value), for a source and for a sink, at FILE:LINE:COL with exit status 2,
and never prints a property's value (it may be a secret). Valid properties check clean. No broker
is needed: nothing connects."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import make_tempdir, run_cli, run_test  # noqa: E402

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


run_test(body)
