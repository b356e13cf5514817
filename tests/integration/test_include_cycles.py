"""No include cycles between the modules of broker/, sources/ and sinks/, and the core reaches the
plugins only through their interfaces.

A module is a file name without its extension (dispatch.h + dispatch.c); module A depends on
module B when a file of A has `#include "b.h"`. The test fails when the dependencies form a cycle
(dispatch -> metrics -> dispatch was one: dispatch.c included metrics.h to count, metrics.h
included dispatch.h for the counter types), printing every cycle with the #include lines that
make it (KNOWN lists the cycles outside the core that are still to be untangled). It also fails
when a file under broker/core/ includes a header of sources/ or sinks/ other than the
interfaces, source.h and sink.h.

No server and no binary: it reads the tree at TD_SOURCE_DIR (or the checkout it is in). A
self-check first runs the cycle finder on a small graph with a known cycle, so the test cannot
pass by finding nothing.
"""

import os
import re
import sys

SRC = os.environ.get("TD_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ROOTS = ("broker", "sources", "sinks")
INTERFACES = {"source.h", "sink.h"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# Cycles still to be untangled, listed exactly: a new cycle, or one of these growing, fails; one
# that disappears is only reported, so remove it here then. None today.
KNOWN = []


def files():
    """[(relative path, text)] of every .c and .h under ROOTS."""
    out = []
    for root in ROOTS:
        for d, _, names in os.walk(os.path.join(SRC, root)):
            for n in sorted(names):
                if n.endswith((".c", ".h")):
                    p = os.path.join(d, n)
                    out.append((os.path.relpath(p, SRC), open(p, encoding="utf-8").read()))
    return out


# A private header shares the types of the module it belongs to and is part of that module, not a
# module of its own: config_internal.h is the loader's (broker/config/), ce_internal.h the event
# codecs' (broker/event/cloudevent.c and the codecs beside it).
PRIVATE = {"config_internal": "config", "ce_internal": "cloudevent"}


def module(path):
    name = os.path.splitext(os.path.basename(path))[0]
    return PRIVATE.get(name, name)


def cycles(edges):
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index, low, on, stack, out = {}, {}, set(), [], []
    nodes = sorted(set(edges) | {b for bs in edges.values() for b in bs})
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in nodes:
        if v not in index:
            visit(v)
    return sorted(out)


def main():
    problems = []
    # self-check: the finder sees a known cycle and no false one
    if cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) != [["a", "b", "c"]] or \
            cycles({"a": {"b"}, "b": {"c"}}) != []:
        print("FAIL: the cycle finder itself is broken")
        return 1

    tree = files()
    headers = {}
    for path, _ in tree:
        if path.endswith(".h"):
            headers.setdefault(os.path.basename(path), []).append(path)
    for name, paths in sorted(headers.items()):
        if len(paths) > 1:
            problems.append(f"header name {name} is not unique: {paths} (#include is by name)")

    edges, why = {}, {}
    for path, text in tree:
        a = module(path)
        edges.setdefault(a, set())
        for inc in INCLUDE.findall(text):
            name = os.path.basename(inc)
            if name not in headers:
                continue  # a system or third-party header
            b = module(name)
            target = headers[name][0]
            if path.startswith("broker/core/") and target.startswith(("sources/", "sinks/")) \
                    and name not in INTERFACES:
                problems.append(f"{path} includes {target}: the core reaches plugins only "
                                f"through {sorted(INTERFACES)}")
            if a != b:
                edges[a].add(b)
                why.setdefault((a, b), []).append(f"{path}: #include \"{inc}\"")

    found = cycles(edges)
    for comp in KNOWN:
        if comp not in found:
            print(f"note: the known cycle {comp} is gone; remove it from KNOWN")
    for comp in found:
        if comp in KNOWN:
            print(f"known cycle (outside the core, issue 13): {comp}")
            continue
        lines = [f"include cycle among modules {comp}:"]
        for a in comp:
            for b in sorted(edges[a] & set(comp)):
                lines += [f"    {a} -> {b}  ({w})" for w in why[(a, b)]]
        problems.append("\n".join(lines))

    nmod = len(edges)
    nedge = sum(len(v) for v in edges.values())
    print(f"{len(tree)} files, {nmod} modules, {nedge} module dependencies")
    for p in problems:
        print("FAIL:", p)
    if problems:
        return 1
    print("OK: no include cycles; broker/core reaches plugins only through their interfaces")
    return 0


if __name__ == "__main__":
    sys.exit(main())
