"""The README's commands and the example trigger files work as written.

- The Quick start block is RUN as written (bash, from the repository root) with three rewrites only:
  `build/triggerd` becomes the binary under test, the ports 6379 and 8081 become free ones (in the
  block and in a copy of conf/examples/redis-to-http.yaml it runs), and after the line that starts
  redis-server the script waits for it to answer (on a user's machine the build line gives it that
  time). Two lines are not run: `scripts/setup-debian.sh` (needs root and apt; the script must exist
  and know its flags) and the cmake build line (the binary under test was built by it). The event it
  publishes must reach examples/function/function.py, which must print it.
- Every other ```sh block is checked for syntax only (`bash -n`, every command exists: a repository
  file, or a program on PATH; `triggerd` subcommands and flags appear in that command's --help; files
  named by -c exist): the "Two commands" block runs scripts/demo.sh (which builds in build/) and
  scripts/test.sh (this suite itself), which a test inside the suite cannot run.
- The directories the "Layout" block names exist.
- The "Command line" synopsis names exactly the subcommands of `triggerd --help`, and only flags their
  --help lists.
- The `triggerd ... -c FILE` commands in the header comments of conf/*.yaml and conf/examples/*.yaml
  name real subcommands, flags and files.
- `triggerd check` accepts every conf/*.yaml, conf/examples/*.yaml, and every ```yaml block of the
  README that is a whole trigger file (has `version` and `triggers`); `${VAR}` without a default get a
  placeholder value. The other YAML blocks are fragments and are not checked here. The examples for
  Knative, Lambda, Cloud Run, Azure and OpenFaaS need a cluster or a cloud account, so only `check`
  runs them.
"""

import glob
import os
import re
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
import readme_util as ru  # noqa: E402

SRC = ru.SRC
BASH_BUILTINS = {"cd", "kill", "jobs", "fg", "bg", "wait", "export", "set", "source", ".", "echo",
                 "sleep", "true", "false", ":", "exit", "trap", "until", "while", "do", "done"}


def placeholder_env(text):
    """Environment with a placeholder for every ${VAR} (without a default) the text uses."""
    env = dict(os.environ)
    for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text):
        env.setdefault(name, "6379" if name.endswith("PORT") else "placeholder-" + name.lower())
    return env


def check_file(c, path, text=None):
    """`triggerd check -c PATH` exits 0."""
    text = text if text is not None else open(path).read()
    r = subprocess.run([triggerd_binary(), "check", "-c", path], capture_output=True, text=True,
                       timeout=30 * SLOW, env=placeholder_env(text))
    c.check(r.returncode == 0, f"triggerd check accepts {os.path.relpath(path, SRC)}",
            (r.returncode, (r.stdout + r.stderr)[-600:]) if r.returncode else None)


class CommandChecker:
    """Checks that the commands of a shell line exist and, for triggerd, that its subcommands and
    flags are real."""

    def __init__(self, c):
        self.c = c
        self.binary = triggerd_binary()
        self.subs = ru.subcommands(self.binary)
        self.helps = {s: ru.help_text(self.binary, s) for s in self.subs}

    def triggerd(self, words, where):
        c = self.c
        if len(words) < 2:
            c.check(False, f"{where}: 'triggerd' names a subcommand", words)
            return
        sub = words[1]
        if not c.check(sub in self.subs, f"{where}: 'triggerd {sub}' is a subcommand", self.subs):
            return
        flags = self.helps[sub]
        for i, w in enumerate(words[2:], 2):
            if re.fullmatch(r"--?[A-Za-z][\w-]*", w):
                c.check(w in ru.help_flags(flags), f"{where}: triggerd {sub} {w} is in its --help")
            prev = words[i - 1]
            if prev in ("-c", "--config") and not w.isupper():
                c.check(os.path.exists(os.path.join(SRC, w)), f"{where}: -c {w} exists")

    def line(self, line, where):
        for words in ru.split_commands(line):
            while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
                words = words[1:]  # VAR=value prefixes
            if not words:
                continue
            cmd = words[0]
            if cmd in ("build/triggerd", "triggerd"):
                self.triggerd(words, where)
            elif "/" in cmd:
                path = os.path.join(SRC, cmd)
                self.c.check(os.path.isfile(path) and os.access(path, os.X_OK),
                             f"{where}: {cmd} exists and is executable")
                if cmd.endswith(".sh"):
                    script = open(path).read() if os.path.isfile(path) else ""
                    for flag in words[1:]:
                        if flag.startswith("-"):
                            self.c.check(flag in script, f"{where}: {cmd} knows {flag}")
            elif cmd in BASH_BUILTINS:
                pass
            else:
                self.c.check(shutil.which(cmd) is not None, f"{where}: {cmd} is installed")
                if cmd.startswith("python"):
                    script = next((w for w in words[1:] if not w.startswith("-")), None)
                    self.c.check(script and os.path.isfile(os.path.join(SRC, script)),
                                 f"{where}: {cmd} {script} exists")


def check_sh_block(c, cc, b):
    r = subprocess.run(["bash", "-n"], input=b.text, capture_output=True, text=True)
    c.check(r.returncode == 0, f"{b}: bash -n accepts it", r.stderr or None)
    for off, line in enumerate(b.text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            cc.line(line, f"README.md:{b.line + off}")


def check_synopsis(c, cc, b):
    """The 'Command line' block: one `triggerd SUB ...` per command (continuation lines indented)."""
    cmds = {}
    last = None
    for line in b.text.splitlines():
        text = line.split("#", 1)[0]
        if text.startswith("triggerd "):
            last = text.split()[1]
            cmds.setdefault(last, []).append(text)
        elif text.strip() and last:
            cmds[last].append(text)
    c.eq(sorted(cmds), sorted(cc.subs), "the Command line synopsis names every subcommand, no more")
    for sub, lines in cmds.items():
        for flag in ru.help_flags(" ".join(lines)):
            c.check(sub in cc.helps and flag in ru.help_flags(cc.helps[sub]),
                    f"synopsis: triggerd {sub} {flag} is in its --help")


def run_quick_start(c, b):
    tmp = make_tempdir("td-docs-")
    rport, fport = free_port(), free_port()
    example = "conf/examples/redis-to-http.yaml"
    conf_text = open(os.path.join(SRC, example)).read()
    c.check("6379" in conf_text and "8081" in conf_text and "stream: uploads" in conf_text,
            f"{example} reads 'uploads' on 6379 and posts to 8081 (what the Quick start assumes)")
    conf = os.path.join(tmp, "redis-to-http.yaml")
    with open(conf, "w") as f:
        f.write(conf_text.replace("6379", str(rport)).replace("8081", str(fport)))
    lines = []
    for line in b.text.splitlines():
        words = (ru.split_commands(line) or [[""]])[0]
        if words[0] == "scripts/setup-debian.sh":
            lines.append("# (not run) " + line)
            continue
        if words[0] == "cmake":
            lines.append("# (not run: the binary under test was built so) " + line)
            continue
        line = re.sub(r"(?<![\w/])build/triggerd\b", triggerd_binary(), line)
        line = line.replace(example, conf).replace("6379", str(rport)).replace("8081", str(fport))
        lines.append(line)
        if "redis-server" in words or any("redis-server" in w for w in sum(ru.split_commands(line), [])):
            lines.append(f"for i in $(seq 200); do redis-cli -p {rport} ping >/dev/null 2>&1 && break;"
                         " sleep 0.05; done")
    script = "set -e\n" + "\n".join(lines) + "\n"
    log("---- the Quick start as run ----\n" + script + "----")
    c.check(any("redis-server" in l for l in lines), "the Quick start starts redis-server")
    out_path = os.path.join(tmp, "out.log")
    out = open(out_path, "wb")
    # A session of its own: everything the block starts in the background is in its process group,
    # which is stopped at the end (and at cleanup, even on failure).
    proc = subprocess.Popen(["bash", "-c", script], cwd=SRC, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    pgid = proc.pid

    def stop_group():
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(100):
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    at_cleanup(stop_group)
    at_cleanup(out.close)
    try:
        rc = proc.wait(timeout=60 * SLOW)
    except subprocess.TimeoutExpired:
        rc = None
    text = lambda: open(out_path, "rb").read().decode("utf-8", "replace")  # noqa: E731
    c.check(rc == 0, "the Quick start block runs to its end and exits 0", rc)
    c.check(re.search(r"^\d+-\d+$", text(), re.M), "publish printed the new entry's id")
    got = wait_until(lambda: re.search(r"^received com\.example\.upload id=\S+ source=/uploads .*42",
                                       text(), re.M), 20 * SLOW, desc="the event at the function")
    c.check(got, "the function printed the published event", got.group(0) if got else None)
    r = redis.Redis(host="127.0.0.1", port=rport)
    acked = wait_until(lambda: r.xpending("uploads", "triggerd")["pending"] == 0, 10 * SLOW)
    c.check(acked, "the entry is acknowledged (XPENDING 0)")
    stop_group()
    if not got or rc != 0:
        log("---- output of the Quick start ----\n" + text()[-4000:] + "\n----")
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        c.check(marker not in text(), f"no '{marker}' in the Quick start's output")


def body(c):
    bl = ru.blocks()
    cc = CommandChecker(c)
    quick = [b for b in bl if b.heading == "Quick start" and b.lang == "sh"]
    c.eq(len(quick), 1, "the README has one sh block in its Quick start")
    for b in bl:
        if b.lang == "sh":
            check_sh_block(c, cc, b)
    synopsis = [b for b in bl if b.heading == "Command line" and not b.lang]
    c.eq(len(synopsis), 1, "the README has a Command line synopsis block")
    for b in synopsis:
        check_synopsis(c, cc, b)
    for b in (b for b in bl if b.heading == "Layout" and not b.lang):
        dirs = [l.split()[0] for l in b.text.splitlines() if l and not l[0].isspace()]
        missing = [d for d in dirs if not os.path.isdir(os.path.join(SRC, d))]
        c.check(dirs and not missing, "every directory the Layout block names exists", missing)
    files = sorted(glob.glob(os.path.join(SRC, "conf", "*.yaml")) +
                   glob.glob(os.path.join(SRC, "conf", "examples", "*.yaml")))
    c.check(len(files) >= 6, "conf/ and conf/examples/ hold trigger files", len(files))
    for path in files:
        check_file(c, path)
        # The commands their header comments show (`#   REDIS_URL=... triggerd run -c FILE`).
        for n, line in enumerate(open(path), 1):
            m = re.match(r"#.*?((?:[A-Z_]+=\S+\s+)*triggerd\s+[a-z]+\s.*-c\s.*)$", line.rstrip())
            if m:
                cc.line(m.group(1), f"{os.path.relpath(path, SRC)}:{n}")
    tmp = make_tempdir("td-docs-yaml-")
    whole = 0
    for b in bl:
        if b.lang != "yaml":
            continue
        doc = yaml.safe_load(b.text)
        if isinstance(doc, dict) and "version" in doc and "triggers" in doc:
            whole += 1
            path = os.path.join(tmp, f"readme-{b.line}.yaml")
            with open(path, "w") as f:
                f.write(b.text)
            r = subprocess.run([triggerd_binary(), "check", "-c", path], capture_output=True,
                               text=True, timeout=30 * SLOW, env=placeholder_env(b.text))
            c.check(r.returncode == 0, f"triggerd check accepts the trigger file at {b}",
                    (r.returncode, (r.stdout + r.stderr)[-600:]) if r.returncode else None)
        else:
            log(f"(a fragment, not a whole trigger file: {b})")
    c.check(whole >= 1, "the README shows at least one whole trigger file", whole)
    for b in quick:
        run_quick_start(c, b)


run_test(body)
