"""Malformed trigger files: `triggerd check` and `triggerd run` both exit 2 and report
FILE:LINE:COL: message at the right place; never a crash. A valid file checks clean."""

import os
import re
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

# A valid file in block style so that positions are easy to read off (1-based line and column).
BASE = """\
version: 1
daemon:
  log: {format: json, level: debug}
  shutdown_grace: 5s
sources:
  in:
    redis:
      url: "redis://127.0.0.1:6399/0"
      stream: s
      group: g
      claim_idle: 2s
sinks:
  fn:
    http:
      url: "http://127.0.0.1:1/"
      mode: binary
triggers:
  - name: t1
    source: in
    event: {type: com.example.test, source: /test}
    sink: fn
    delivery:
      retry: 2
      concurrency: 16
  - name: t2
    source: in
    event: {type: com.example.other, source: /other}
    sink: fn
"""


def replace_line(text, lineno, new):
    lines = text.split("\n")
    assert lines[lineno - 1].strip(), lineno
    lines[lineno - 1] = new
    return "\n".join(lines)


def insert_line(text, after, new):
    lines = text.split("\n")
    lines.insert(after, new)
    return "\n".join(lines)


# (name, text, [(line, col)] accepted positions for the first error, what libyaml must say or None)
CASES = [
    ("unknown key in a source", insert_line(BASE, 9, "      streem: s"), [(10, 7)]),
    ("unknown top-level key", BASE + "extras: 1\n", [(29, 1)]),
    ("unknown key in delivery", insert_line(BASE, 24, "      retries: 3"), [(25, 7)]),
    # the value (col 11) or its key (col 5)
    ("unknown sink reference", replace_line(BASE, 21, "    sink: nosuch"), [(21, 11), (21, 5)]),
    ("unknown source reference", replace_line(BASE, 26, "    source: nowhere"), [(26, 13), (26, 5)]),
    ("YAML syntax error (mapping value not allowed)", replace_line(BASE, 10, "      group: g: h"),
     [(10, 15)]),
    ("YAML syntax error (unclosed flow mapping)",
     replace_line(BASE, 20, "    event: {type: com.example.test, source: /test"), [(21, 9)]),
    ("wrong type (concurrency: lots)", replace_line(BASE, 24, "      concurrency: lots"), [(24, 20), (24, 7)]),
    ("bad duration (claim_idle: soon)", replace_line(BASE, 11, "      claim_idle: soon"), [(11, 19), (11, 7)]),
    ("tracing: otlp_endpoint not http(s)",
     insert_line(BASE, 4, '  tracing: {otlp_endpoint: "ftp://collector:4318"}'), [(5, 28), (5, 13)]),
    ("tracing: sample_ratio above 1",
     insert_line(BASE, 4, '  tracing: {otlp_endpoint: "http://c:4318", sample_ratio: 2}'), [(5, 59), (5, 45)]),
    ("tracing: sample_ratio not a number",
     insert_line(BASE, 4, '  tracing: {otlp_endpoint: "http://c:4318", sample_ratio: lots}'), [(5, 59), (5, 45)]),
    ("tracing: unknown key",
     insert_line(BASE, 4, '  tracing: {otlp_endpoint: "http://c:4318", ratio: 1}'), [(5, 45)]),
]


def body(c):
    d = make_tempdir("td-badcfg-")
    ok_path = os.path.join(d, "good.yaml")
    with open(ok_path, "w") as f:
        f.write(BASE)
    p = run_cli(["check", "-c", ok_path])
    c.eq(p.returncode, 0, "check on the valid file exits 0")
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    c.check(len(lines) == 2 and "t1" in lines[0] and "t2" in lines[1],
            "check prints one line per trigger", p.stdout + p.stderr)

    for i, (name, text, positions) in enumerate(CASES):
        path = os.path.join(d, f"bad{i}.yaml")
        with open(path, "w") as f:
            f.write(text)
        # The syntax-error positions above are libyaml's own (the library triggerd parses with).
        if "YAML syntax" in name:
            try:
                yaml.load(text, Loader=yaml.CSafeLoader)
                c.check(False, f"[{name}] libyaml rejects the file")
            except yaml.YAMLError as e:
                m = e.problem_mark
                c.eq((m.line + 1, m.column + 1), positions[0], f"[{name}] libyaml's position")
        for cmd in ("check", "run"):
            try:
                p = run_cli([cmd, "-c", path], timeout=15)
            except subprocess.TimeoutExpired:
                c.check(False, f"[{name}] {cmd} exits (did not within 15 s)")
                continue
            c.check(p.returncode >= 0, f"[{name}] {cmd}: no crash (no signal exit)", p.returncode)
            c.eq(p.returncode, 2, f"[{name}] {cmd} exit status")
            found = []
            for l in p.stderr.splitlines():
                m = re.match(re.escape(path) + r":(\d+):(\d+): \S", l)
                if m:
                    found.append((int(m.group(1)), int(m.group(2))))
            c.check(any(f in positions for f in found),
                    f"[{name}] {cmd} prints {path}:LINE:COL: message at {positions}",
                    f"positions found {found}; stderr {p.stderr.strip()[:300]!r}")
            for marker in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
                c.check(marker not in p.stderr, f"[{name}] {cmd}: no {marker} report")

    # An empty file and a missing file are errors too, not crashes.
    empty = os.path.join(d, "empty.yaml")
    open(empty, "w").close()
    for path in (empty, os.path.join(d, "missing.yaml")):
        for cmd in ("check", "run"):
            p = run_cli([cmd, "-c", path], timeout=15)
            c.eq(p.returncode, 2, f"[{os.path.basename(path)}] {cmd} exit status")
            c.check(path in p.stderr, f"[{os.path.basename(path)}] {cmd} names the file on stderr",
                    p.stderr.strip()[:200])


run_test(body)
