"""Reading README.md for the docs tests (test_docs.py, test_docs_tables.py, test_cli.py): its fenced
blocks, its tables, and the help texts of the binary under test they are compared with. Standard
library only; nothing here starts a server."""

import os
import re
import shlex
import subprocess

SRC = os.path.abspath(
    os.environ.get("TD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")))
README = os.path.join(SRC, "README.md")


class Block:
    def __init__(self, lang, text, line, heading):
        self.lang, self.text, self.line, self.heading = lang, text, line, heading

    def __repr__(self):
        return f"README.md:{self.line} ({self.lang or 'plain'} block under '{self.heading}')"


def blocks(path=README):
    """Every fenced block of the file, in order, with the heading it sits under."""
    out, heading, cur = [], "", None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if cur is None:
                m = re.match(r"^(#+)\s+(.*)", line)
                if m:
                    heading = m.group(2).strip()
                m = re.match(r"^```\s*(\S*)\s*$", line)
                if m:
                    cur = Block(m.group(1), "", n, heading)
            elif re.match(r"^```\s*$", line):
                out.append(cur)
                cur = None
            else:
                cur.text += line
    if cur is not None:
        raise ValueError(f"{path}: unterminated block at line {cur.line}")
    return out


def section(heading, path=README):
    """The text under a heading (any level) up to the next heading of the same or a higher level."""
    lines = open(path, encoding="utf-8").read().splitlines()
    out, level = None, 0
    for line in lines:
        m = re.match(r"^(#+)\s+(.*)", line)
        if out is not None and m and len(m.group(1)) <= level:
            break
        if out is not None:
            out.append(line)
        elif m and m.group(2).strip() == heading:
            out, level = [], len(m.group(1))
    if out is None:
        raise KeyError(f"README.md has no heading '{heading}'")
    return "\n".join(out)


def table(heading, path=README):
    """The first Markdown table under a heading: a list of rows (lists of cell strings), the
    header row first, the |---| line left out."""
    rows = []
    for line in section(heading, path).splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(re.fullmatch(r":?-+:?", c) for c in cells):
                continue
            rows.append(cells)
        elif rows:
            break
    return rows


def code_spans(cell):
    """The `code` spans of a table cell."""
    return re.findall(r"`([^`]+)`", cell)


def help_text(binary, *args):
    """stdout of `triggerd ARGS --help` (exit 0 required)."""
    r = subprocess.run([binary, *args, "--help"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"triggerd {' '.join(args)} --help exited {r.returncode}: {r.stderr}")
    return r.stdout


def subcommands(binary):
    """The commands `triggerd --help` lists (the indented first words of its 'commands:' part)."""
    text = help_text(binary)
    part = text.split("commands:", 1)[1].split("\n\n", 1)[0]
    return [m.group(1) for m in re.finditer(r"^  ([a-z]+)\b", part, re.M)]


def help_flags(text):
    """Every option a help text names: -x and --long spellings."""
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])(?![\w-])", text))


def split_commands(line):
    """A shell line split into simple commands (lists of words), at ; & && || | { } ( ).
    Comments are dropped; the words are as the shell would see them after quote removal."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.commenters = "#"
    lex.whitespace_split = True
    cmds, cur, redirect = [], [], False
    for tok in lex:
        if redirect:  # the file of a redirection is no command
            redirect = False
            continue
        if tok and set(tok) <= set("<>&") and ("<" in tok or ">" in tok):
            redirect = True
            continue
        if tok in ("{", "}") or (tok and set(tok) <= set(";&|()")):
            if cur:
                cmds.append(cur)
            cur = []
        else:
            cur.append(tok)
    if cur:
        cmds.append(cur)
    return cmds
