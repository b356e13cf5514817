"""What the JSON data fidelity tests share (test_json_data_fidelity*.py): the pretty-printed data
with numbers a double cannot hold exactly, its compacted form, structured events that carry it,
and the checks of what a binary-mode function, a structured-mode function and a file dead-letter
target received. Re-printing the data through a cJSON tree turns 12345678901234567890 into
1.2345678901234567e+19, 0.1000000000000000055511151231257827 into 0.1 and 7e777 into null."""

import json
import os

from harness import http_sink, make_tempdir, trigger, wait_until

DATA = ('{\n  "id": 12345678901234567890,\n  "x": 0.1000000000000000055511151231257827,\n'
        '  "big": 7e777, "list": [1.10, -0, "\\u00e9", " two  spaces "]\n}')
COMPACT = ('{"id":12345678901234567890,"x":0.1000000000000000055511151231257827,'
           '"big":7e777,"list":[1.10,-0,"\\u00e9"," two  spaces "]}')


def event(eid):
    """A structured event on one line but for its data, with blanks around the data value."""
    return ('{"specversion":"1.0","id":"%s","source":"/fidelity","type":"com.example.fidelity",'
            '"datacontenttype":"application/json","data": %s }' % (eid, DATA))


# DATA as it stands inside pretty_event(): its inner lines indented one level more.
PRETTY_DATA = DATA.replace("\n", "\n  ")


def pretty_event(eid):
    """The whole event pretty-printed, data first and a newline after the closing brace, as a
    producer's JSON library writes it to a file or a message body."""
    return ('{\n  "data": %s,\n  "specversion": "1.0",\n  "id": "%s",\n  "source": "/fidelity",\n'
            '  "type": "com.example.fidelity",\n  "datacontenttype": "application/json"\n}\n'
            % (PRETTY_DATA, eid))


def fidelity_sinks(fn_url, dlfile):
    """Sinks for fidelity_triggers: binary (/b), structured (/s), a function that refuses (/f)
    and a file dead-letter target."""
    return {"b": http_sink(fn_url + "b", timeout="10s"),
            "s": http_sink(fn_url + "s", mode="structured", timeout="10s"),
            "f": http_sink(fn_url + "f", timeout="10s"),
            "dlfile": {"file": {"path": dlfile}}}


def fidelity_triggers(source):
    """Three triggers on source: binary, structured, and one whose every event is refused (400,
    retry 0) and dead-lettered to the file."""
    return [trigger("tb", source, "b", timeout="10s"),
            trigger("ts", source, "s", timeout="10s"),
            trigger("tf", source, "f", timeout="10s", retry=0, dead_letter="dlfile")]


def refuse_f(req, attempt):
    return (400 if req.path == "/f" else 200, {}, b"", 0)


def dead_letter_file():
    return os.path.join(make_tempdir("td-fidelity-"), "dead.jsonl")


def file_lines(path):
    try:
        with open(path) as f:
            return [line for line in f.read().split("\n") if line]
    except FileNotFoundError:
        return []


def check_fidelity(c, fn, dlfile, want, timeout, what):
    """want: {ce id: the data text the binary-mode function must get byte for byte}. Waits until
    every event reached both functions and the dead-letter file, then checks each delivery once
    (a healthy run: at least once is exactly once here) with the data as written: the binary body
    is the producer's text, the structured "data" member and each dead letter's are COMPACT."""
    ids = set(want)
    ok = wait_until(lambda: fn.ok_ids("/b") == ids and fn.ok_ids("/s") == ids
                    and len(file_lines(dlfile)) >= len(ids), timeout)
    c.check(ok, f"{what}: every event at both functions and in the dead-letter file",
            (fn.ok_ids("/b"), fn.ok_ids("/s"), len(file_lines(dlfile))))
    for path in ("/b", "/s", "/f"):
        got = sorted(r.ce_id for r in fn.snapshot(path))
        c.eq(got, sorted(ids), f"{what}: {path} got each event once")
    for r in fn.snapshot("/b"):
        c.eq(r.body.decode(), want.get(r.ce_id),
             f"{what}: binary mode: {r.ce_id}'s body is the data as written")
    for r in fn.snapshot("/s"):
        text = r.body.decode()
        c.check(('"data":' + COMPACT) in text and "\n" not in text,
                f"{what}: structured mode: {r.ce_id}'s data member, compacted", text)
        c.eq(json.loads(text).get("id"), r.ce_id, f"{what}: structured mode: {r.ce_id} is JSON")
    lines = file_lines(dlfile)
    c.eq(len(lines), len(ids), f"{what}: the dead-letter file holds one line per event")
    for line in lines:
        c.check(('"data":' + COMPACT) in line, f"{what}: a dead letter's data member", line)
        c.check(json.loads(line).get("id") in ids, f"{what}: each line is one JSON event", line)
