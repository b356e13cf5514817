#!/usr/bin/python3
"""gen-man.py - writes the man page triggerd(1) from the binary's own help texts.

    scripts/gen-man.py BUILD/triggerd OUT.1

Runs `triggerd --version`, `triggerd --help` and `triggerd COMMAND --help` for every command the
top-level help lists, and sets each text as it is (preformatted) in a section of its own: the man page
says exactly what --help says and cannot drift from it. CMake runs this after linking the binary
(target `man`); `cmake --install` puts the page in MANDIR/man1. No date is written, so the output
depends only on the binary (reproducible builds).
"""

import re
import subprocess
import sys


def run(binary, *args):
    r = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        sys.exit(f"gen-man: '{binary} {' '.join(args)}' exited {r.returncode}: {r.stderr}")
    return r.stdout


def roff(text):
    """Plain text as roff input: backslashes and hyphens escaped, control characters at a line's
    start neutralised."""
    out = []
    for line in text.rstrip("\n").split("\n"):
        line = line.replace("\\", "\\e").replace("-", "\\-")
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line)
    return "\n".join(out)


def pre(text):
    return ".nf\n" + roff(text) + "\n.fi\n"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gen-man.py TRIGGERD OUT.1")
    binary, out = sys.argv[1], sys.argv[2]
    version = run(binary, "--version").split()[-1]
    top = run(binary, "--help")
    part = top.split("commands:", 1)[1].split("\n\n", 1)[0]
    commands = [m.group(1) for m in re.finditer(r"^  ([a-z]+)\b", part, re.M)]
    if not commands:
        sys.exit("gen-man: 'triggerd --help' lists no commands")
    page = [
        f'.TH TRIGGERD 1 "" "triggerd {version}" "User Commands"',
        ".SH NAME",
        "triggerd \\- event\\-driven trigger broker daemon",
        ".SH SYNOPSIS",
        ".B triggerd",
        "\\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
        ".SH DESCRIPTION",
        "triggerd reads messages from Redis Streams, Kafka topics, RabbitMQ queues and its own HTTP",
        "ingress, turns each into a CloudEvent, matches it against the triggers of a YAML trigger",
        "file and delivers it to functions (HTTP, Knative, OpenFaaS, AWS Lambda, Google Cloud",
        "Functions, Azure Functions), with retries and dead letters.",
        "What follows is the text of \\fBtriggerd \\-\\-help\\fR and of each command's",
        "\\fB\\-\\-help\\fR.",
        ".PP",
        pre(top).rstrip("\n"),
        ".SH COMMANDS",
    ]
    for cmd in commands:
        page += [f".SS {cmd}", pre(run(binary, cmd, "--help")).rstrip("\n")]
    page += [
        ".SH FILES",
        ".TP",
        ".I SYSCONFDIR/triggerd/",
        "the trigger files the systemd unit runs (\\fB/etc/triggerd\\fR when installed under",
        "\\fB/usr\\fR, \\fIPREFIX\\fB/etc/triggerd\\fR otherwise).",
        ".SH SEE ALSO",
        "The README (in the doc directory, e.g. /usr/share/doc/triggerd/README.md) and the",
        "documented trigger file conf/triggerd.yaml next to it.",
    ]
    with open(out, "w") as f:
        f.write("\n".join(page) + "\n")


if __name__ == "__main__":
    main()
