"""Payload validation (`schema: FILE` on a trigger): events whose JSON data fails the schema are
dead-lettered with deadletterreason "schema" and the first validation error in knativeerrordata; the
trigger's function never sees them; valid events are delivered; a second trigger on the same stream
without a schema still gets everything; every entry is acknowledged. `triggerd check` reports a schema
file that is invalid (an error) or that it cannot read (a warning; `run` refuses to start without it),
with the trigger's position. A SIGHUP reload with the file unchanged keeps validating, and so does
`triggerd redrive` (the dead letters fail the schema again and go back to the target).
"""

import base64
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["order", "qty"],
    "additionalProperties": False,
    "properties": {
        "order": {"type": "string", "pattern": "^ord-[0-9]+$"},
        "qty": {"type": "integer", "minimum": 1},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
    },
    "$defs": {"tag": {"type": "string", "maxLength": 8}},
}

# (data, content type, expected first error or None when valid)
CASES = [
    ('{"order": "ord-1", "qty": 2}', "application/json", None),
    ('{"order": "ord-2", "qty": 1, "tags": ["a", "b"]}', "application/json", None),
    ('{"qty": 2}', "application/json", "at /: required property 'order' is missing"),
    ('{"order": "x-3", "qty": 2}', "application/json",
     'at /order: string does not match the pattern "^ord-[0-9]+$"'),
    ('{"order": "ord-4", "qty": 0}', "application/json", "at /qty: 0 is less than the minimum 1"),
    ('{"order": "ord-5", "qty": "2"}', "application/json", "at /qty: expected integer, got string"),
    ('{"order": "ord-6", "qty": 2, "tags": ["ok", "waytoolong"]}', "application/json",
     "at /tags/1: string longer than 8 characters"),
    ('{"order": "ord-7", "qty": 2, "x": 1}', "application/json", "at /: property 'x' is not allowed"),
    ('{"order": ', "application/json", "the data is not JSON"),
    ("order=8", "text/plain", "the data is text/plain, not JSON"),
    ('{"order": "ord-9", "qty": 3}', "application/json", None),
]


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer()
    tv = trigger("validated", "in", "orders", retry=0, dead_letter="dead")
    tv["schema"] = "schemas/order.json"  # relative to the trigger file
    cfg = config(sources={"in": redis_source(rs.url, "s")},
                 sinks={"orders": http_sink(fn.url + "orders"), "all": http_sink(fn.url + "all"),
                        "dead": {"redis": {"url": rs.url, "stream": "dead"}}},
                 triggers=[tv, trigger("everything", "in", "all", retry=0)])
    td = Triggerd(cfg)
    os.makedirs(os.path.join(td.dir, "schemas"))
    with open(os.path.join(td.dir, "schemas", "order.json"), "w") as f:
        json.dump(SCHEMA, f)

    r = run_cli(["check", "-c", td.config_path])
    c.eq(r.returncode, 0, "triggerd check accepts the trigger file with its schema")

    td.start()
    c.check(td.wait_ready(10), "daemon ready")

    def fields(i):
        data, ctype, _ = CASES[i]
        return {"ce_specversion": "1.0", "ce_id": f"evt-{i}", "ce_type": "com.example.order",
                "ce_source": "/shop", "content-type": ctype, "data": data}

    publish_many(cl, "s", len(CASES), fields)
    valid = {f"evt-{i}" for i, (_, _, err) in enumerate(CASES) if err is None}
    invalid = {f"evt-{i}": err for i, (_, _, err) in enumerate(CASES) if err is not None}
    # Plain entries (only a data field, as `triggerd publish` writes them) are validated as their
    # payload, not as a {"data": "..."} wrapper.
    valid.add(cl.xadd("s", {"data": '{"order": "ord-10", "qty": 1}'}).decode())
    invalid[cl.xadd("s", {"data": '{"order": "ord-11"}'}).decode()] = \
        "at /: required property 'qty' is missing"
    nall = len(CASES) + 2

    def dead():
        return {f.get("ce_id"): f for _, f in read_dead_letters(cl, "dead")} if cl.exists("dead") else {}

    wait_until(lambda: valid <= fn.ok_ids("/orders") and set(invalid) <= set(dead())
               and len(fn.ok_ids("/all")) == nall, 30 * SLOW, desc="deliveries and dead letters")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="XPENDING 0")

    c.eq(sorted(fn.by_id("/orders")), sorted(valid), "the validated function saw only the valid events")
    c.eq(len(fn.ok_ids("/all")), nall, "the trigger without a schema got every event")
    dl = dead()
    c.eq(sorted(dl), sorted(invalid), "exactly the invalid events are in the dead-letter stream")
    bad = []
    for eid, want in invalid.items():
        f = dl.get(eid, {})
        got = base64.b64decode(f.get("ce_knativeerrordata", "")).decode("utf-8", "replace")
        if (f.get("ce_deadletterreason") != "schema" or f.get("ce_deadlettertrigger") != "validated"
                or got != want):
            bad.append((eid, f.get("ce_deadletterreason"), f.get("ce_deadlettertrigger"), got, want))
    c.eq(bad, [], "each dead letter says reason schema, the trigger, and the first validation error")
    i = next(k for k in invalid if k.startswith("evt-")).split("-")[1]
    f = dl.get(f"evt-{i}", {})
    c.eq(f.get("data"), CASES[int(i)][0], "the dead letter keeps the original data")
    c.eq(pending_count(cl, "s", "g"), 0, "every entry acknowledged")

    # A SIGHUP reload with the file unchanged keeps validating (the reload builds triggers the way
    # the start does; it once forgot the schema and delivered invalid events with 200).
    reloads = len([l for l in td.logs() if str(l.get("msg", "")).startswith("reloaded")])
    td.signal(signal.SIGHUP)
    c.check(wait_until(lambda: len([l for l in td.logs()
                                    if str(l.get("msg", "")).startswith("reloaded")]) > reloads,
                       10 * SLOW), "reloaded")
    bad_after = cl.xadd("s", {"data": '{"order": "ord-12"}'}).decode()
    good_after = cl.xadd("s", {"data": '{"order": "ord-13", "qty": 5}'}).decode()
    wait_until(lambda: good_after in fn.ok_ids("/orders") and bad_after in dead(), 20 * SLOW,
               desc="after the reload: valid delivered, invalid dead-lettered")
    c.check(bad_after not in fn.by_id("/orders"),
            "after a reload an invalid event still never reaches the validated function")
    c.eq(dead().get(bad_after, {}).get("ce_deadletterreason"), "schema",
         "after a reload an invalid event is still dead-lettered with reason schema")
    c.check(good_after in fn.ok_ids("/orders"), "after a reload a valid event is delivered")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 10 * SLOW, desc="XPENDING 0")
    td.terminate()
    c.eq(td.wait(20 * SLOW), 0, "daemon exits 0")

    # `triggerd redrive` builds the trigger as the daemon does, schema included: with the schema
    # unchanged the dead letters fail it again and go back to the target (redrive once built its
    # own triggers without the schema and delivered them to the validated function).
    before = set(dead())
    seen = len(fn.by_id("/orders"))
    r = run_cli(["redrive", "-c", td.config_path, "--from", "dead"], timeout=60)
    n = len(before)
    c.check(r.returncode == 0 and f"redriven {n} entries" in r.stdout
            and f"0 delivered, {n} dead-lettered again" in r.stdout,
            "redrive: every schema dead letter fails the schema again", (r.stdout, r.stderr[-500:]))
    c.eq(len(fn.by_id("/orders")), seen, "redrive: the validated function saw none of them")
    again = dead()
    c.eq(sorted(again), sorted(before), "redrive: the same events are back in the dead-letter stream")
    c.eq(sorted({f.get("ce_deadletterreason") for f in again.values()}), ["schema"],
         "redrive: dead-lettered again with reason schema")

    # `triggerd check`: an invalid schema and a missing one are errors at the trigger's position.
    with open(os.path.join(td.dir, "schemas", "order.json"), "w") as f:
        json.dump({"type": "object", "patternProperties": {"^x": {}}}, f)
    r = run_cli(["check", "-c", td.config_path])
    c.eq(r.returncode, 2, "check exits 2 on a schema the validator does not support")
    c.check("trigger 'validated': schema:" in r.stderr and "patternProperties" in r.stderr
            and r.stderr.startswith(td.config_path + ":"), "check names the file, trigger and keyword",
            r.stderr)
    with open(os.path.join(td.dir, "schemas", "order.json"), "w") as f:
        f.write("{not json")
    r = run_cli(["check", "-c", td.config_path])
    c.check(r.returncode == 2 and "not valid JSON" in r.stderr, "check reports a schema that is not JSON",
            r.stderr)
    os.unlink(os.path.join(td.dir, "schemas", "order.json"))
    r = run_cli(["check", "-c", td.config_path])
    c.check(r.returncode == 0 and "warning: trigger 'validated': schema: cannot read" in r.stderr,
            "check warns about a schema file it cannot read (it may exist only where triggerd runs)",
            r.stderr)
    td2 = Triggerd(cfg, name="triggerd-missing-schema")
    td2.start()
    c.eq(td2.wait(20 * SLOW), 2, "run refuses to start with a missing schema file (exit 2)")
    c.check(any("schema" in l for l in td2.raw_lines()), "run says why", td2.raw_lines()[-3:])


if __name__ == "__main__":
    run_test(body)
