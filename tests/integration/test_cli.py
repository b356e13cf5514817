"""The command line's own help: -h and -V everywhere, the schemes `publish` names, and the man page
and shell completions that are made from (or checked against) the --help texts.

- `triggerd -V`, `--version` and `version` print the same line; `triggerd -h`, `--help` and `help`
  the same usage (exit 0, stdout); every subcommand answers `-h` exactly as `--help` (exit 0, stdout,
  a usage line naming it); an unknown command or option exits 2 with the usage on stderr.
- `triggerd publish http://x/` exits 2 without waiting for stdin and lists every scheme this build
  takes: each scheme `triggerd publish --help` shows is listed, and each listed one is accepted
  (its error is about the URL, never "unsupported URL scheme").
- The man page the build made (BUILD/triggerd.1, scripts/gen-man.py) renders without warnings
  (groff -man -Tutf8 -ww, and `man -l` when man-db is there), has a section per subcommand, and
  holds each subcommand's --help text.
- completions/triggerd.bash, run as bash runs it (COMP_WORDS/COMP_CWORD, then _triggerd), offers
  exactly the subcommands of `triggerd --help` plus -h/--help/-V/--version, and for each subcommand
  exactly the options its --help lists (plus -h/--help); completions/_triggerd (zsh) has one function
  per subcommand whose flags are those same options: read from the file, and, when zsh is installed,
  parsed (`zsh -n`) and run with stand-ins for _arguments/_describe that print what they are given.
  The --reason values both offer are the deadletterreason values of broker/event/dl_reasons.h.
"""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
import readme_util as ru  # noqa: E402

SRC = ru.SRC


def cli(*args, stdin=subprocess.DEVNULL, timeout=20):
    return subprocess.run([triggerd_binary(), *args], stdin=stdin, capture_output=True, text=True,
                          timeout=timeout * SLOW)


def option_flags(help_text):
    """The flags a help text defines: those on its option lines (lines starting with '-', up to
    the description column)."""
    out = set()
    for line in help_text.splitlines():
        s = line.strip()
        if s.startswith("-"):
            out |= ru.help_flags(re.split(r"\s{2,}", s)[0])
    return out


def bash_complete(words):
    """What completions/triggerd.bash offers for the command line WORDS (the last one is being
    completed)."""
    script = os.path.join(SRC, "completions", "triggerd.bash")
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    prog = (f"source '{script}'; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
            "COMPREPLY=(); _triggerd; printf '%s\\n' \"${COMPREPLY[@]}\"")
    r = subprocess.run(["bash", "--norc", "-c", prog], capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise RuntimeError(f"bash completion failed: {r.stderr}")
    return {w for w in r.stdout.splitlines() if w}


def dl_reasons():
    text = open(os.path.join(SRC, "broker", "event", "dl_reasons.h")).read()
    return set(re.findall(r'#define\s+TD_DL_\w+\s+"([a-z_]+)"', text))


def check_version_help(c):
    v = [cli(a) for a in ("-V", "--version", "version")]
    c.check(all(r.returncode == 0 for r in v), "-V, --version and version exit 0",
            [r.returncode for r in v])
    c.check(re.fullmatch(r"triggerd \d+\.\d+\.\d+\n", v[0].stdout), "-V prints 'triggerd X.Y.Z'",
            v[0].stdout)
    c.check(v[0].stdout == v[1].stdout == v[2].stdout, "-V, --version and version print the same")
    h = [cli(a) for a in ("-h", "--help", "help")]
    c.check(all(r.returncode == 0 and r.stdout.startswith("usage: triggerd") for r in h),
            "-h, --help and help print the usage on stdout and exit 0", [r.returncode for r in h])
    c.check(h[0].stdout == h[1].stdout == h[2].stdout, "-h, --help and help print the same")
    top = option_flags(h[1].stdout)
    c.eq(top, {"-h", "--help", "-V", "--version"}, "triggerd --help lists -h/--help and -V/--version")
    subs = ru.subcommands(triggerd_binary())
    c.eq(sorted(subs), sorted(["run", "check", "publish", "redrive", "status", "version"]),
         "triggerd --help lists the six subcommands")
    for sub in subs:
        short, long_ = cli(sub, "-h"), cli(sub, "--help")
        c.check(short.returncode == 0 and short.stdout == long_.stdout and
                short.stdout.startswith(f"usage: triggerd {sub}"),
                f"triggerd {sub} -h prints its usage like --help and exits 0",
                (short.returncode, short.stdout[:80], short.stderr[:200]))
    r = cli("frobnicate")
    c.check(r.returncode == 2 and "usage: triggerd" in r.stderr, "an unknown command exits 2 with usage",
            r.returncode)
    for sub in ("run", "check", "status"):
        r = cli(sub, "--no-such-option")
        c.check(r.returncode == 2 and f"usage: triggerd {sub}" in r.stderr,
                f"triggerd {sub} --no-such-option exits 2 with its usage", (r.returncode, r.stderr[-200:]))
    r = cli("version", "extra")
    c.check(r.returncode == 2, "triggerd version extra exits 2", r.returncode)


def check_publish_schemes(c):
    p = subprocess.Popen([triggerd_binary(), "publish", "http://x/"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=10 * SLOW)  # stdin stays open until it exits: no waiting
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        rc = None
    c.eq(rc, 2, "publish http://x/ exits 2 at once, without reading stdin")
    m = re.search(r"\(this build: ([^)]*)\)", err)
    listed = [s.strip() for s in m.group(1).split(",")] if m else []
    c.check(m, "the error lists the schemes of this build", err.strip())
    want = set(re.findall(r"\b([a-z]+)(?:\[(s)\])?://", ru.help_text(triggerd_binary(), "publish")))
    shown = set()
    for scheme, s in want:
        shown.add(scheme + "://")
        if s:
            shown.add(scheme + "s://")
    c.eq(set(listed), shown, "the error lists exactly the schemes publish --help shows")
    c.check({"redis://", "kafka://", "amqp://", "amqps://"} <= set(listed),
            "redis, kafka, amqp and amqps are listed", listed)
    for scheme in listed:
        r = cli("publish", scheme, "--data", "x")
        c.check(r.returncode != 0 and "unsupported URL scheme" not in r.stderr,
                f"publish takes {scheme} (its error is about the URL)",
                (r.returncode, r.stderr.strip()[-200:]))


def check_man(c, helps):
    build = os.path.dirname(triggerd_binary())
    page = os.path.join(build, "triggerd.1")
    try:
        cache = open(os.path.join(build, "CMakeCache.txt")).read()
    except OSError:
        cache = ""
    if re.search(r"^TD_MAN:BOOL=OFF$", cache, re.M):
        log("(this build was configured with TD_MAN=OFF: no man page to check)")
        return
    if not c.check(os.path.isfile(page), "the build made triggerd.1 next to the binary", page):
        return
    groff = shutil.which("groff")
    if not c.check(groff, "groff is installed (scripts/setup-debian.sh: groff-base)"):
        return
    r = subprocess.run([groff, "-man", "-Tutf8", "-ww", page], capture_output=True, timeout=60)
    text = r.stdout.decode("utf-8", "replace")
    c.check(r.returncode == 0 and not r.stderr.strip(), "groff -man renders it without warnings",
            (r.returncode, r.stderr.decode()[-300:]))
    if shutil.which("man"):
        m = subprocess.run(["man", "-l", page], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="100"))
        c.check(m.returncode == 0 and "NAME" in m.stdout and "triggerd" in m.stdout,
                "man -l shows it", (m.returncode, m.stderr[-300:]))
    plain = re.sub(r".\x08", "", text)  # no overstrike
    plain = plain.replace("\u2010", "-").replace("\u2212", "-")
    for sub, h in helps.items():
        c.check(re.search(r"^\s+" + sub + r"\s*$", plain, re.M), f"the man page has a section '{sub}'")
        usage = h.splitlines()[0].strip()
        c.check(usage in plain, f"the man page holds '{usage}'")
        missing = sorted(f for f in option_flags(h) if f not in plain)
        c.check(not missing, f"the man page names every option of triggerd {sub}", missing)


ZSH_STUBS = (
    # Stand-ins for zsh's completion system: _arguments prints the specs it is given (brace
    # expansion done by zsh itself) and moves _triggerd to its 'command' state; _describe prints
    # the array it is given. The functions of _triggerd then run as they are.
    "_arguments() { print -rl -- \"$@\"; state=command; return 0 }; "
    "_describe() { print -rl -- \"${(@P)${@[-1]}}\" }; "
)


def zsh_run(zpath, func):
    """Lines printed by FUNC of the zsh completion file, run by zsh with the stubs above."""
    prog = ZSH_STUBS + f"source '{zpath}' >/dev/null 2>&1; {func}"
    r = subprocess.run(["zsh", "-f", "-c", prog], capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise RuntimeError(f"zsh {func} failed: {r.stderr}")
    return r.stdout.splitlines()


def zsh_spec_flags(lines):
    """The option each _arguments spec defines: '(-d --data)-d[...]:x:' -> -d."""
    out = set()
    for line in lines:
        if re.fullmatch(r"-[CsSAwWn]", line):  # _arguments' own options, not specs
            continue
        m = re.match(r"^(?:\([^)]*\))?\*?(--?[A-Za-z][\w-]*)", line)
        if m:
            out.add(m.group(1))
    return out


def zsh_functions(text):
    return {m.group(1): m.group(2) for m in
            re.finditer(r"^_triggerd_([a-z]+)\(\) \{\n(.*?)^\}", text, re.M | re.S)}


def check_completions(c, helps):
    subs = list(helps)
    got = bash_complete(["triggerd", ""])
    c.eq(got, set(subs) | {"-h", "--help", "-V", "--version"},
         "bash: 'triggerd <TAB>' offers every subcommand and -h/--help/-V/--version")
    c.eq(bash_complete(["triggerd", "pu"]), {"publish"}, "bash: 'triggerd pu<TAB>' gives publish")
    for sub in subs:
        want = option_flags(helps[sub]) | {"-h", "--help"}
        c.eq(bash_complete(["triggerd", sub, "-"]), want,
             f"bash: 'triggerd {sub} -<TAB>' offers exactly the options of its --help")
    got = bash_complete(["triggerd", "publish", ""])
    c.check({"redis://", "kafka://", "amqp://", "amqps://"} <= got, "bash: publish offers URL schemes",
            got)
    c.eq(bash_complete(["triggerd", "redrive", "--reason", ""]), dl_reasons(),
         "bash: redrive --reason offers the deadletterreason values of broker/event/dl_reasons.h")
    tmp = make_tempdir("td-cli-")
    open(os.path.join(tmp, "my-triggers.yaml"), "w").close()
    got = bash_complete(["triggerd", "run", "-c", os.path.join(tmp, "my-")])
    c.eq(got, {os.path.join(tmp, "my-triggers.yaml")}, "bash: run -c completes file names")

    zpath = os.path.join(SRC, "completions", "_triggerd")
    ztext = open(zpath).read()
    c.check(ztext.startswith("#compdef triggerd"), "zsh: _triggerd starts with #compdef triggerd")
    funcs = zsh_functions(ztext)
    c.eq(sorted(funcs), sorted(subs), "zsh: one _triggerd_SUB function per subcommand")
    shared = {"$_triggerd_help": {"-h", "--help"}, "$_triggerd_config": {"-c", "--config"}}
    for sub, body in funcs.items():
        flags = ru.help_flags(re.sub(r"'[^']*'", lambda m: m.group(0).split("[")[0], body))
        for var, fl in shared.items():
            if var in body:
                flags |= fl
        c.eq(flags, option_flags(helps.get(sub, "")) | {"-h", "--help"},
             f"zsh: _triggerd_{sub} offers exactly the options of triggerd {sub} --help")
    m = re.search(r"commands=\((.*?)\)", ztext, re.S)
    names = re.findall(r"'([a-z]+):", m.group(1)) if m else []
    c.eq(sorted(names), sorted(subs), "zsh: the command list is the subcommands of triggerd --help")
    m = re.search(r"--reason\[[^]]*\]:reason:\(([^)]*)\)", ztext)
    c.eq(set(m.group(1).split()) if m else set(), dl_reasons(),
         "zsh: redrive --reason offers the deadletterreason values")
    if shutil.which("zsh"):
        r = subprocess.run(["zsh", "-n", zpath], capture_output=True, text=True, timeout=20)
        c.check(r.returncode == 0, "zsh -n accepts _triggerd", r.stderr or None)
        # Run it: each function's _arguments specs, as zsh expands them.
        top = zsh_run(zpath, "_triggerd")
        c.eq(zsh_spec_flags(top), {"-h", "--help", "-V", "--version"},
             "zsh (run): _triggerd offers -h/--help/-V/--version")
        c.eq(sorted(l.split(":", 1)[0] for l in top if re.match(r"^[a-z]+:", l)), sorted(subs),
             "zsh (run): _triggerd describes exactly the subcommands")
        for sub in subs:
            c.eq(zsh_spec_flags(zsh_run(zpath, f"_triggerd_{sub}")),
                 option_flags(helps[sub]) | {"-h", "--help"},
                 f"zsh (run): _triggerd_{sub} offers exactly the options of its --help")
    else:
        log("(zsh not installed: _triggerd checked by reading it only; setup-debian.sh installs zsh)")


def body(c):
    check_version_help(c)
    check_publish_schemes(c)
    helps = {s: ru.help_text(triggerd_binary(), s) for s in ru.subcommands(triggerd_binary())}
    check_man(c, helps)
    check_completions(c, helps)


run_test(body)
