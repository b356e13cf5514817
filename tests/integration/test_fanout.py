"""Fan-out: one Redis stream feeds 20 triggers with overlapping filters (exact, prefix, suffix, all, any,
not, the legacy exact map, cesql). Every event must reach exactly the triggers whose filters match it, as
decided by an independent evaluation of the same filters in this script, once each; each stream entry is
acknowledged once, and only after all its deliveries finished (one trigger's function is slow for a few
events: while it holds them, those entries stay pending); XPENDING is 0 at the end.

Each trigger has its own sink URL ending with /<trigger name>, so the function knows which trigger a
request came from.
"""

import os
import random
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 300
SLOW_EVERY = 50  # events i % SLOW_EVERY == 0 are held by /t15 for a while

TYPES = ["com.example.order.created", "com.example.order.paid", "com.example.user.signup",
         "org.other.ping"]
SOURCES = ["/orders/eu", "/orders/us", "/users", "/x"]
SUBJECTS = [None, "images/a.png", "images/b.jpg", "docs/readme.txt"]
REGIONS = [None, "eu", "us"]


def make_event(i, rnd):
    ev = {"specversion": "1.0", "id": f"evt-{i}", "type": rnd.choice(TYPES),
          "source": rnd.choice(SOURCES)}
    for name, choices in (("subject", SUBJECTS), ("region", REGIONS),
                          ("priority", [None] + [str(p) for p in range(1, 11)])):
        v = rnd.choice(choices)
        if v is not None:
            ev[name] = v
    return ev


# ---- the filters, as written in the trigger file, and their independent evaluation ----------------

def ev_exact(m):
    return lambda e: all(k in e and e[k] == v for k, v in m.items())


def ev_prefix(m):
    return lambda e: all(k in e and e[k].startswith(v) for k, v in m.items())


def ev_suffix(m):
    return lambda e: all(k in e and e[k].endswith(v) for k, v in m.items())


def evaluate(f, e):
    """The Knative filter dialects, evaluated here (cesql: the Python twin given with the test)."""
    (kind, arg), = f.items()
    if kind == "exact":
        return ev_exact(arg)(e)
    if kind == "prefix":
        return ev_prefix(arg)(e)
    if kind == "suffix":
        return ev_suffix(arg)(e)
    if kind == "all":
        return all(evaluate(x, e) for x in arg)
    if kind == "any":
        return any(evaluate(x, e) for x in arg)
    if kind == "not":
        return not evaluate(arg, e)
    if kind == "cesql":
        return CESQL[arg](e)
    raise ValueError(kind)


def prio(e):
    return int(e["priority"]) if "priority" in e else None


# Each CESQL expression beside its meaning in Python. A missing attribute is an error, and an error
# is a non-match (the CESQL spec for filters).
CESQL = {
    "priority > 5": lambda e: prio(e) is not None and prio(e) > 5,
    "type LIKE '%.order.%' AND region = 'eu'":
        lambda e: ".order." in e["type"] and e.get("region") == "eu",
    "EXISTS subject AND subject NOT LIKE '%.txt'":
        lambda e: "subject" in e and not e["subject"].endswith(".txt"),
    "source IN ('/orders/eu', '/users') OR priority = 1":
        lambda e: e["source"] in ("/orders/eu", "/users") or (prio(e) is not None and prio(e) == 1),
    "INT(priority) >= 9": lambda e: prio(e) is not None and prio(e) >= 9,
    "UPPER(region) = 'US' XOR LENGTH(source) > 6":
        lambda e: "region" in e and ((e["region"].upper() == "US") != (len(e["source"]) > 6)),
    "priority = 10": lambda e: prio(e) == 10,
}

# name -> (trigger-file keys, [filters that must all hold] for the Python side)
TRIGGERS = {
    "t01": ({"filters": [{"exact": {"type": "com.example.order.created"}}]},),
    "t02": ({"filters": [{"prefix": {"type": "com.example.order."}}]},),
    "t03": ({"filters": [{"suffix": {"type": ".paid"}}]},),
    "t04": ({"filters": [{"exact": {"type": "com.example.order.created", "source": "/orders/eu"}}]},),
    "t05": ({"filters": [{"prefix": {"subject": "images/"}}]},),
    "t06": ({"filters": [{"suffix": {"subject": ".png"}}]},),
    "t07": ({"filters": [{"any": [{"exact": {"region": "eu"}}, {"exact": {"region": "us"}}]}]},),
    "t08": ({"filters": [{"not": {"exact": {"region": "eu"}}}]},),
    "t09": ({"filters": [{"all": [{"prefix": {"type": "com.example."}},
                                  {"not": {"prefix": {"source": "/orders"}}}]}]},),
    "t10": ({"filters": [{"cesql": "priority > 5"}]},),
    "t11": ({"filters": [{"cesql": "type LIKE '%.order.%' AND region = 'eu'"}]},),
    "t12": ({"filters": [{"cesql": "EXISTS subject AND subject NOT LIKE '%.txt'"}]},),
    "t13": ({"filters": [{"cesql": "source IN ('/orders/eu', '/users') OR priority = 1"}]},),
    "t14": ({"filter": {"type": "com.example.user.signup"}},),
    "t15": ({},),  # no filter: every event (and the slow one)
    "t16": ({"filters": [{"prefix": {"type": "com.example."}}, {"suffix": {"source": "/us"}}]},),
    "t17": ({"filters": [{"any": [{"cesql": "INT(priority) >= 9"},
                                  {"exact": {"subject": "docs/readme.txt"}}]}]},),
    "t18": ({"filters": [{"not": {"any": [{"prefix": {"type": "com."}}, {"exact": {"source": "/x"}}]}}]},),
    "t19": ({"filters": [{"cesql": "UPPER(region) = 'US' XOR LENGTH(source) > 6"}],
             "filter": {"specversion": "1.0"}},),
    "t20": ({"filters": [{"exact": {"priority": "10"}}, {"cesql": "priority = 10"}]},),
}


def wants(keys, e):
    """The Python verdict for one trigger: every filters: item and the legacy filter: map."""
    ok = all(evaluate(f, e) for f in keys.get("filters", []))
    if "filter" in keys:
        ok = ok and ev_exact(keys["filter"])(e)
    return ok


def body(c):
    rnd = random.Random(int(os.environ.get("TD_SEED", "6")))
    rs = RedisServer()
    cl = rs.client()
    events = [make_event(i, rnd) for i in range(N)]
    slow_ids = {e["id"] for i, e in enumerate(events) if i % SLOW_EVERY == 0}
    release = threading.Event()

    def behaviour(req, attempt):
        if req.path == "/t15" and req.ce_id in slow_ids:
            release.wait(30 * SLOW)
        return (200, {}, b"", 0)

    fn = FunctionServer(behaviour)
    sinks = {name: http_sink(fn.url + name) for name in TRIGGERS}
    triggers = []
    for name, (keys,) in TRIGGERS.items():
        t = trigger(name, "in", name, retry=0, concurrency=64, timeout=f"{int(60 * SLOW)}s")
        t.update(keys)
        triggers.append(t)
    cfg = config(sources={"in": redis_source(rs.url, "s", block="100ms", claim_idle="0s")},
                 sinks=sinks, triggers=triggers)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")

    expected = {name: {e["id"] for e in events if wants(keys, e)} for name, (keys,) in TRIGGERS.items()}
    for name, ids in sorted(expected.items()):
        log(f"{name}: {len(ids)} of {N} events expected")
    c.check(all(0 < len(ids) < N for n, ids in expected.items() if n != "t15"),
            "every filtered trigger expects some but not all events (the data exercises the filters)")

    # Count the ids in every XACK the daemon sends.
    acks = {}
    acks_lock = threading.Lock()
    mon_stop = threading.Event()

    def monitor():
        mc = rs.client()
        with mc.monitor() as m:
            for cmd in m.listen():
                parts = cmd.get("command", "").split()
                if parts and parts[0].upper() == "XACK":
                    with acks_lock:
                        for eid in parts[3:]:
                            acks[eid] = acks.get(eid, 0) + 1
                if mon_stop.is_set():
                    break

    mon = threading.Thread(target=monitor, daemon=True)
    mon.start()
    time.sleep(0.2)

    def fields(i):
        e = events[i]
        return {("ce_" + k): v for k, v in e.items()}

    entry_ids = publish_many(cl, "s", N, fields)
    entry_of = {events[i]["id"]: entry_ids[i] for i in range(N)}

    # Everything but the held ones arrives; the held entries stay pending meanwhile.
    def others_done():
        got = {name: fn.ok_ids("/" + name) for name in TRIGGERS}
        for name, ids in expected.items():
            want = ids - slow_ids if name == "t15" else ids
            if not want <= got[name]:
                return False
        return True

    wait_until(others_done, 60 * SLOW, desc="every delivery but the held ones")
    held = sorted(entry_of[i] for i in slow_ids)
    pend = set(pending_ids(cl, "s", "g"))
    c.check(set(held) <= pend, "entries whose /t15 delivery is held stay unacknowledged",
            f"held {held}, pending {sorted(pend)[:10]}...")
    with acks_lock:
        early = [eid for eid in held if acks.get(eid)]
    c.eq(early, [], "no held entry was acked before its last delivery")
    release.set()

    wait_until(lambda: all(expected[n] <= fn.ok_ids("/" + n) for n in TRIGGERS), 60 * SLOW,
               desc="all deliveries")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 20 * SLOW, desc="XPENDING 0")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING is 0 at the end")
    time.sleep(0.5)  # let the last XACKs reach the monitor

    mismatches = []
    for name in TRIGGERS:
        got = fn.by_id("/" + name)
        if set(got) != expected[name]:
            mismatches.append(f"{name}: missing {sorted(expected[name] - set(got))[:5]}, "
                              f"unexpected {sorted(set(got) - expected[name])[:5]}")
        dup = [i for i, reqs in got.items() if len(reqs) != 1]
        if dup:
            mismatches.append(f"{name}: delivered more than once: {dup[:5]}")
    c.eq(mismatches, [], "each trigger received exactly its matching events, once each")
    total = sum(len(v) for v in expected.values())
    c.eq(fn.count(), total, f"the function saw {total} requests in all (no extra deliveries)")
    with acks_lock:
        counts = {eid: acks.get(eid, 0) for eid in entry_ids}
    c.eq(sorted({v for v in counts.values()}), [1], "every entry acked exactly once")
    mon_stop.set()
    cl.xadd("s", {"n": "wake"})  # one more command so the monitor loop sees the stop flag
    td.terminate()
    c.eq(td.wait(20 * SLOW), 0, "daemon exits 0")


if __name__ == "__main__":
    run_test(body)
