"""systemd/triggerd.service: `systemd-analyze verify` accepts it (with ExecStart pointing at the binary
under test, since verify checks that the executables exist) and `systemd-analyze security --offline=true`
rates its exposure at 1.2 or lower; the directives the daemon relies on are there, including the
resource limits of issue 11 (LimitNOFILE= well above 1024, MemoryMax=) and the LoadCredential= and
IPAddressDeny=/IPAddressAllow= guidance."""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403


def body(c):
    sa = shutil.which("systemd-analyze")
    if not sa:
        log("SKIP: systemd-analyze not installed")
        return SKIP
    src = os.environ.get("TD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    text = open(os.path.join(src, "systemd", "triggerd.service")).read()
    for d in ("Type=notify", "WatchdogSec=", "ExecReload=", "DynamicUser=yes", "StateDirectory=",
              "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=",
              "SystemCallFilter=@system-service", "RestrictAddressFamilies=", "LimitNOFILE=",
              "MemoryMax=", "#LoadCredential=", "#IPAddressDeny=", "#IPAddressAllow="):
        c.check(re.search(r"^" + re.escape(d), text, re.M), f"unit has {d}")
    m = re.search(r"^LimitNOFILE=(\d+)$", text, re.M)
    c.check(m and int(m.group(1)) >= 16384, "LimitNOFILE= raises the 1024 default",
            m.group(1) if m else None)
    c.check("${credential:" in text, "the unit shows how the trigger file names a credential")
    unit = os.path.join(make_tempdir("td-unit-"), "triggerd.service")
    with open(unit, "w") as f:
        f.write(text.replace("/usr/bin/triggerd", triggerd_binary()))
    r = subprocess.run([sa, "verify", unit], capture_output=True, text=True, timeout=60)
    c.check(r.returncode == 0 and not r.stderr.strip(), "systemd-analyze verify accepts it",
            (r.returncode, r.stderr[-800:]))
    r = subprocess.run([sa, "security", "--offline=true", unit], capture_output=True, text=True,
                       timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
    score = float(m.group(1)) if m else None
    c.check(score is not None and score <= 1.2, "security exposure <= 1.2", score)
    readme = open(os.path.join(src, "README.md")).read()
    c.check(m and f"exposure level {m.group(1)}" in readme, "the README states this score",
            m.group(1) if m else None)


run_test(body)
