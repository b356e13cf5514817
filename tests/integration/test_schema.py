#!/usr/bin/python3
"""test_schema.py - the trigger-file schema and `triggerd check` agree.

Every conf/**/*.yaml and every tests/data/config/good_*.yaml must validate against
schemas/triggerd.schema.json (JSON Schema 2020-12) and pass `triggerd check -c FILE` (exit 0).
Every tests/data/config/bad_*.yaml announces on its first line the error it must produce
("# expect: LINE:COL: message"); `triggerd check` must exit 2 and print "FILE:LINE:COL: message",
and the schema must reject the file too, unless the fixture says "# schema: valid" (a problem
JSON Schema cannot see, such as a reference to an unknown sink name). tests/data/config/refused_*.yaml
are the same, for a problem the loader lets through and a plugin's check hook reports (at the sink's
or source's position, beside the other plugins' findings); tests/unit/test_config.c loads only bad_*.

Environment: TD_SOURCE_DIR (repo root, default: two levels up), TRIGGERD (the binary; when it
is unset the check half is skipped). Prints one line per case and "N passed, M failed".
"""
import glob
import json
import os
import re
import subprocess
import sys

import jsonschema
import yaml

ROOT = os.environ.get("TD_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
TRIGGERD = os.environ.get("TRIGGERD")
VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")

passed = 0
failed = 0


def report(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""))


def env_for(text):
    """The environment `triggerd check` needs for the ${VAR} references in TEXT."""
    env = dict(os.environ)
    for name, default in VAR.findall(text):
        if not default and name not in env:
            env[name] = "6379" if name.endswith("_PORT") else "test-secret"
    return env


def check(path, text):
    """Runs `triggerd check -c PATH`; returns (exit code, stderr) or None when skipped."""
    if not TRIGGERD:
        return None
    try:
        proc = subprocess.run([TRIGGERD, "check", "-c", path], env=env_for(text),
                              capture_output=True, text=True, timeout=60)
    except OSError as e:
        return (-1, str(e))
    return (proc.returncode, proc.stderr)


def schema_errors(validator, text):
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return ["not YAML: %s" % e]
    return [e.message for e in validator.iter_errors(doc)]


def main():
    with open(os.path.join(ROOT, "schemas", "triggerd.schema.json")) as f:
        schema = json.load(f)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
        report(True, "schema is valid JSON Schema 2020-12")
    except jsonschema.SchemaError as e:
        report(False, "schema is valid JSON Schema 2020-12", e.message)
        return
    validator = jsonschema.Draft202012Validator(schema)
    if not TRIGGERD:
        print("note: TRIGGERD is not set; `triggerd check` cases are skipped")

    good = sorted(glob.glob(os.path.join(ROOT, "conf", "**", "*.yaml"), recursive=True))
    good += sorted(glob.glob(os.path.join(ROOT, "tests", "data", "config", "good_*.yaml")))
    for path in good:
        rel = os.path.relpath(path, ROOT)
        with open(path) as f:
            text = f.read()
        errs = schema_errors(validator, text)
        report(not errs, "schema accepts %s" % rel, "; ".join(errs[:3]))
        res = check(path, text)
        if res is not None:
            report(res[0] == 0, "triggerd check accepts %s" % rel,
                   "exit %d: %s" % (res[0], res[1].strip()[:300]) if res[0] else "")

    bad = sorted(glob.glob(os.path.join(ROOT, "tests", "data", "config", "bad_*.yaml")))
    bad += sorted(glob.glob(os.path.join(ROOT, "tests", "data", "config", "refused_*.yaml")))
    for path in bad:
        rel = os.path.relpath(path, ROOT)
        with open(path) as f:
            text = f.read()
        m = re.match(r"# expect: (\d+):(\d+): (.*)\n", text)
        if not m:
            report(False, rel, "first line is not '# expect: LINE:COL: message'")
            continue
        line, col, message = m.group(1), m.group(2), m.group(3)
        schema_blind = "\n# schema: valid" in text
        errs = schema_errors(validator, text)
        if schema_blind:
            report(not errs, "schema cannot see the problem in %s (accepts it)" % rel,
                   "; ".join(errs[:3]))
        else:
            report(bool(errs), "schema rejects %s" % rel, "" if errs else "it was accepted")
        res = check(path, text)
        if res is not None:
            want = "%s:%s:%s: %s" % (path, line, col, message)
            ok = res[0] == 2 and want in res[1].splitlines()
            report(ok, "triggerd check rejects %s at %s:%s" % (rel, line, col),
                   "" if ok else "exit %d, stderr: %s" % (res[0], res[1].strip()[:300]))

    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
