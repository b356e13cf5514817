"""`cmake --install BUILD --prefix P` with DESTDIR puts everything under DESTDIR/P (the trigger file under
DESTDIR/etc when P is /usr, as packagers expect) and the systemd unit names the installed paths.

For the prefixes /usr, /usr/local and /opt/triggerd-test (each in a DESTDIR of its own, in a temp dir):
- every path of install_manifest.txt is under DESTDIR, and under DESTDIR/P except the trigger file for
  /usr (DESTDIR/etc/triggerd/triggerd.yaml); nothing else appeared in DESTDIR;
- the binary, the runnable trigger file (SYSCONFDIR/triggerd/triggerd.yaml, = conf/examples/
  redis-to-http.yaml), the unit, the man page, the bash and zsh completions and the docs are there;
- the unit's ExecStart/ExecStartPre run P/bin/triggerd on SYSCONFDIR/triggerd, its EnvironmentFile and
  Documentation follow the prefix too, and no other prefix's path is left in it;
- `systemd-analyze verify` accepts the unit (offline; with its paths pointed into DESTDIR, since verify
  checks that the executables exist), when systemd-analyze is installed;
- the installed binary runs `check` on the installed trigger file, and the installed man page renders.
The build directory is the one of the binary under test ($TRIGGERD).
"""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

SRC = os.path.abspath(os.environ.get("TD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")))


def files_under(root):
    out = set()
    for d, _, fs in os.walk(root):
        for f in fs:
            out.add(os.path.join(d, f))
    return out


def real_state(path):
    try:
        st = os.stat(path)
        return (st.st_ino, st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        return None


def one_prefix(c, build, prefix):
    destdir = make_tempdir("td-install-")
    # What the real paths (outside DESTDIR) hold before: an install that ignored DESTDIR would
    # create or rewrite them.
    names = ("bin/triggerd", "lib/systemd/system/triggerd.service", "share/man/man1/triggerd.1",
             "share/doc/triggerd/README.md", "share/bash-completion/completions/triggerd",
             "share/zsh/site-functions/_triggerd", "share/doc/triggerd/triggerd.yaml")
    before = {p: real_state(p) for p in [f"{prefix}/{n}" for n in names] +
              [("/etc" if prefix == "/usr" else prefix + "/etc") + "/triggerd/triggerd.yaml"]}
    env = dict(os.environ, DESTDIR=destdir)
    r = subprocess.run(["cmake", "--install", build, "--prefix", prefix], capture_output=True,
                       text=True, env=env, timeout=120 * SLOW)
    if not c.check(r.returncode == 0, f"[{prefix}] cmake --install --prefix {prefix} succeeds",
                   (r.stdout + r.stderr)[-800:] if r.returncode else None):
        return
    sysconf = "/etc" if prefix == "/usr" else prefix + "/etc"
    root = destdir + prefix
    manifest = open(os.path.join(build, "install_manifest.txt")).read().split()
    allowed = (prefix + "/", sysconf + "/")
    outside = [p for p in manifest if not p.startswith(allowed)]
    c.check(manifest and not outside, f"[{prefix}] every installed path is under {prefix} "
            f"(or {sysconf})", outside)
    c.eq(files_under(destdir), {destdir + p for p in manifest},
         f"[{prefix}] DESTDIR holds exactly the manifest's files, each under DESTDIR")
    changed = [p for p in manifest if real_state(p) != before.get(p)]
    c.check(not changed, f"[{prefix}] no file outside DESTDIR was written", changed)
    conf = destdir + sysconf + "/triggerd/triggerd.yaml"
    want = {
        "binary": root + "/bin/triggerd",
        "trigger file": conf,
        "unit": root + "/lib/systemd/system/triggerd.service",
        "man page": root + "/share/man/man1/triggerd.1",
        "bash completion": root + "/share/bash-completion/completions/triggerd",
        "zsh completion": root + "/share/zsh/site-functions/_triggerd",
        "README": root + "/share/doc/triggerd/README.md",
        "documented trigger file": root + "/share/doc/triggerd/triggerd.yaml",
    }
    for what, path in want.items():
        c.check(os.path.isfile(path), f"[{prefix}] the {what} is at {path[len(destdir):]}")
    if os.path.isfile(conf):
        c.eq(open(conf).read(), open(os.path.join(SRC, "conf/examples/redis-to-http.yaml")).read(),
             f"[{prefix}] the installed trigger file is conf/examples/redis-to-http.yaml")
    unit_path = want["unit"]
    if not os.path.isfile(unit_path):
        return
    unit = open(unit_path).read()
    lines = {l.split("=", 1)[0]: l.split("=", 1)[1] for l in unit.splitlines() if "=" in l and not l.startswith("#")}
    c.eq(lines.get("ExecStart"), f"{prefix}/bin/triggerd run -c {sysconf}/triggerd",
         f"[{prefix}] ExecStart runs the installed binary on the installed trigger files")
    c.eq(lines.get("ExecStartPre"), f"{prefix}/bin/triggerd check -c {sysconf}/triggerd",
         f"[{prefix}] ExecStartPre checks them")
    c.eq(lines.get("EnvironmentFile"), f"-{sysconf}/default/triggerd",
         f"[{prefix}] EnvironmentFile is under SYSCONFDIR")
    c.eq(lines.get("Documentation"), f"file://{prefix}/share/doc/triggerd/README.md",
         f"[{prefix}] Documentation names the installed README")
    for other in ("/usr/local/", "/usr/bin/triggerd", "/usr/share/doc"):
        if not (prefix + "/").startswith(other) and not other.startswith(prefix + "/"):
            c.check(other not in unit, f"[{prefix}] the unit names no {other} path")
    sa = shutil.which("systemd-analyze")
    if sa:
        # verify wants the executables to exist: point the unit's paths into DESTDIR.
        test_unit = os.path.join(make_tempdir("td-install-unit-"), "triggerd.service")
        with open(test_unit, "w") as f:
            f.write(unit.replace(f"{prefix}/bin/triggerd", want["binary"]))
        r = subprocess.run([sa, "verify", test_unit], capture_output=True, text=True, timeout=60)
        c.check(r.returncode == 0 and not r.stderr.strip(), f"[{prefix}] systemd-analyze verify "
                "accepts the installed unit", (r.returncode, r.stderr[-600:]))
    else:
        log("(systemd-analyze not installed: the unit is checked by reading it only)")
    r = subprocess.run([want["binary"], "check", "-c", conf], capture_output=True, text=True,
                       timeout=30 * SLOW)
    c.check(r.returncode == 0, f"[{prefix}] the installed binary accepts the installed trigger file",
            (r.returncode, r.stderr[-400:]) if r.returncode else None)
    if shutil.which("groff"):
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", want["man page"]], capture_output=True,
                           timeout=60)
        c.check(r.returncode == 0 and b"triggerd" in r.stdout and not r.stderr,
                f"[{prefix}] the installed man page renders")


def body(c):
    if not shutil.which("cmake"):
        log("SKIP: cmake not installed")
        return SKIP
    build = os.path.dirname(triggerd_binary())
    if not os.path.isfile(os.path.join(build, "cmake_install.cmake")):
        log(f"SKIP: {build} is not a CMake build directory")
        return SKIP
    for prefix in ("/usr", "/usr/local", "/opt/triggerd-test"):
        one_prefix(c, build, prefix)


run_test(body)
