"""The README's Reference tables say what the code has: no key, metric or dead-letter reason missing,
none that does not exist.

- "Trigger file keys": one row per object of schemas/triggerd.schema.json (found by walking it from the
  root through properties, map values (NAME), list items ([]), $ref and oneOf/anyOf/allOf; a $def met a
  second time is not listed again), labelled with the first `code` of its first cell (none: the top
  level), with exactly that object's keys as the `code` spans of its second cell.
- "Metrics": the metric names and types of a running daemon's /metrics (its `# TYPE` lines; a daemon
  with a Redis source, an ingress source, an HTTP sink and one event delivered, so the per-source and
  per-trigger families have samples) are exactly the table's; for each metric that has samples, the
  label names (without the histogram's `le`) are exactly the table's Labels column (a metric whose
  samples carry no label may be documented with labels still to come). A new metric in
  broker/core/metrics.c therefore needs only a README row.
- "Dead-letter reasons": exactly the `TD_DL_*` string values of broker/event/dl_reasons.h.

Run with --print to print the tables the code implies (to paste into the README).
"""

import json
import os
import re
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
import readme_util as ru  # noqa: E402

SRC = ru.SRC


# ---- the schema ------------------------------------------------------------------------------------
def schema_objects():
    """{label: set of keys} for every object the schema describes."""
    schema = json.load(open(os.path.join(SRC, "schemas", "triggerd.schema.json")))
    out, seen = {}, set()

    def resolve(node):
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                return None
            seen.add(ref)
            target = schema
            for part in ref.lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def walk(node, label):
        node = resolve(node)
        if not isinstance(node, dict):
            return
        for comb in ("oneOf", "anyOf", "allOf"):
            for sub in node.get(comb, []):
                walk(sub, label)
        props = node.get("properties")
        if isinstance(props, dict):
            out.setdefault(label, set()).update(props)
            for key, sub in props.items():
                walk(sub, f"{label}.{key}" if label else key)
        ap = node.get("additionalProperties")
        if isinstance(ap, dict):
            walk(ap, f"{label}.NAME")
        items = node.get("items")
        if isinstance(items, dict):
            walk(items, f"{label}[]")

    walk(schema, "")
    return out


def readme_keys():
    rows = ru.table("Trigger file keys")
    out = {}
    for cells in rows[1:]:
        spans = ru.code_spans(cells[0])
        out[spans[0] if spans else ""] = set(ru.code_spans(cells[1]))
    return out


# ---- /metrics --------------------------------------------------------------------------------------
def scrape_metrics(c):
    """{name: (type, set of label names or None when no samples)} from a running daemon."""
    srv = RedisServer()
    fn = FunctionServer()
    port = free_port()
    cfg = config({"s": redis_source(srv.url, "st"),
                  "in": {"http": {"path": "/events"}}},
                 {"fn": http_sink(fn.url)},
                 [trigger("t", "s", "fn"), trigger("ti", "in", "fn")])
    cfg["daemon"]["http"] = {"listen": f"127.0.0.1:{port}"}
    d = Triggerd(cfg).start()
    if not c.check(d.wait_ready(), "the daemon is ready"):
        return {}
    srv.client().xadd("st", {"k": "v"})
    wait_until(lambda: fn.count() >= 1, 10 * SLOW, desc="one delivery")
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    d.terminate()
    d.wait(10 * SLOW)
    types, labels = {}, {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            types[m.group(1)] = m.group(2)
            continue
        m = re.match(r"([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? ", line)
        if m and not line.startswith("#"):
            name = re.sub(r"_(bucket|sum|count)$", "", m.group(1)) if m.group(1) not in types else m.group(1)
            names = set(re.findall(r"(\w+)=\"", m.group(2) or "")) - {"le"}
            labels.setdefault(name, set()).update(names)
    return {n: (t, labels.get(n)) for n, t in types.items()}


def readme_metrics():
    rows = ru.table("Metrics")
    head = [h.lower() for h in rows[0]]
    i_name, i_type, i_labels = head.index("metric"), head.index("type"), head.index("labels")
    out = {}
    for cells in rows[1:]:
        name = ru.code_spans(cells[i_name])[0]
        out[name] = (cells[i_type].strip("` "), set(ru.code_spans(cells[i_labels])))
    return out


# ---- dead-letter reasons ---------------------------------------------------------------------------
def code_reasons():
    text = open(os.path.join(SRC, "broker", "event", "dl_reasons.h")).read()
    return set(re.findall(r'#define\s+TD_DL_\w+\s+"([a-z_]+)"', text))


def readme_reasons():
    return {ru.code_spans(cells[0])[0] for cells in ru.table("Dead-letter reasons")[1:]}


def same(c, got, want, what):
    """got == want as sets, reporting what the README lacks and what it has too much."""
    got, want = set(got), set(want)
    return c.check(got == want, what, None if got == want else
                   {"not in the README": sorted(want - got), "only in the README": sorted(got - want)})


def body(c):
    want = schema_objects()
    got = readme_keys()
    same(c, got, want, "Trigger file keys: one row per object of the schema")
    for label in sorted(set(want) & set(got)):
        same(c, got[label], want[label],
             f"Trigger file keys: the keys of '{label or 'top level'}' are the schema's")
    metrics = scrape_metrics(c)
    documented = readme_metrics()
    c.check(len(metrics) >= 15, "the daemon's /metrics has its metric families", len(metrics))
    same(c, documented, metrics, "Metrics: exactly the metrics /metrics exports")
    for name in sorted(set(metrics) & set(documented)):
        typ, labels = metrics[name]
        c.eq(documented[name][0], typ, f"Metrics: {name} is a {typ}")
        if labels:
            same(c, documented[name][1], labels, f"Metrics: the labels of {name}")
        # Samples without labels (or none at all) leave nothing to compare: the README may name
        # labels a branch in flight adds (the per-source triggerd_events_unmatched_total).
    same(c, readme_reasons(), code_reasons(),
         "Dead-letter reasons: exactly the TD_DL_* values of broker/event/dl_reasons.h")


def print_tables():
    print("| Where | Keys |\n|---|---|")
    for label, keys in schema_objects().items():
        print(f"| {'`' + label + '`' if label else 'top level'} | "
              f"{', '.join('`' + k + '`' for k in sorted(keys))} |")
    print("\n| Metric | Type | Labels | Meaning |\n|---|---|---|---|")
    for name, (typ, labels) in scrape_metrics(Checks()).items():
        print(f"| `{name}` | {typ} | {', '.join('`' + l + '`' for l in sorted(labels or []))} | |")
    print("\n| Reason | When |\n|---|---|")
    for r in sorted(code_reasons()):
        print(f"| `{r}` | |")


if __name__ == "__main__" and sys.argv[1:] == ["--print"]:
    print_tables()
    sys.exit(0)  # harness's atexit hook stops the servers
run_test(body)
