"""Hot reload: 20 SIGHUPs under a steady stream of events, with valid files (a changed trigger, a changed
source that must drain and restart, an added and a removed trigger) and invalid ones (unknown key, YAML
syntax, a dangling sink, a RabbitMQ trigger that `check` refuses). Every event is delivered to the trigger that exists throughout, none twice; the
invalid reloads leave the daemon serving; /metrics counts both kinds."""

import os
import signal
import sys
import threading
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import get, metric, metrics, with_http  # noqa: E402


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer(lambda req, a: (200, {}, b"", rand_delay(0, 0.004)))
    port = free_port()

    def variant(name):
        cfg = config(sources={"in": redis_source(rs.url, "s", claim_idle="30s")},
                     sinks={"a": http_sink(fn.url + "a"), "b": http_sink(fn.url + "b")},
                     triggers=[trigger("t1", "in", "a")])
        cfg["daemon"]["log"]["level"] = "info"
        with_http(cfg, port)
        if name == "B":
            cfg["triggers"][0]["delivery"]["concurrency"] = 4
        elif name == "C":
            cfg["sources"]["in"]["redis"]["block"] = "300ms"
        elif name == "D":
            cfg["triggers"].append(trigger("t2", "in", "b"))
        elif name == "bad-rabbitmq":
            # valid YAML and keys, but what `check` and a start refuse (ordering on a queue): a
            # reload must refuse it too, before connecting anything
            cfg["sources"]["mq"] = {"rabbitmq": {"url": "amqp://guest:guest@127.0.0.1:1/%2f",
                                                 "queue": "q"}}
            cfg["triggers"].append(trigger("t3", "mq", "b", ordering="partition"))
        text = yaml.safe_dump(cfg, sort_keys=False)
        if name == "bad-key":
            text += "bogus: 1\n"
        elif name == "bad-yaml":
            text = text.replace("sinks:", "sinks: [", 1)
        elif name == "bad-sink":
            text = text.replace("sink: a", "sink: nowhere", 1)
        return text

    td = Triggerd(variant("A")).start()
    c.check(td.wait_ready(10), "daemon ready")

    ids, stop = [], threading.Event()

    def publish():
        p = rs.client()
        while not stop.is_set():
            ids.append(p.xadd("s", {"n": str(len(ids))}).decode())
            time.sleep(0.002)

    th = threading.Thread(target=publish, daemon=True)
    th.start()
    seq = ["B", "bad-key", "C", "A", "bad-yaml", "D", "A", "C", "bad-sink", "B",
           "D", "bad-rabbitmq", "A", "C", "B", "bad-yaml", "D", "A", "bad-sink", "A"]
    valid = len([v for v in seq if not v.startswith("bad")])

    def outcomes():
        return [l.get("msg", "") for l in td.logs()
                if str(l.get("msg", "")).startswith(("reloaded", "reload failed"))]

    results = []
    for i, v in enumerate(seq):
        with open(td.config_path, "w") as f:
            f.write(variant(v))
        n = len(outcomes())
        td.signal(signal.SIGHUP)
        done = wait_until(lambda: len(outcomes()) > n, 10 * SLOW, desc=f"reload {i} ({v})")
        results.append((v, (outcomes()[n] if done else "none")[:60]))
        time.sleep(0.15)
        if not td.running():
            break
    stop.set()
    th.join(5)
    c.check(td.running(), "the daemon survived 20 reloads")
    wrong = [(v, r) for v, r in results if v.startswith("bad") != r.startswith("reload failed")]
    c.check(len(results) == 20 and not wrong, "valid reloads applied, invalid ones refused", wrong or results)
    c.check(any("ordering: partition is not supported on a RabbitMQ source" in str(l.get("msg", ""))
                for l in td.logs()), "a reload refuses what check refuses (RabbitMQ ordering), saying why")
    # The publisher paces itself at one entry per 2 ms; on a loaded CI runner the thread gets
    # far fewer turns, so the bar only proves there was traffic across the reloads.
    c.check(len(ids) > 100, "events kept coming during the reloads", len(ids))
    ok = wait_until(lambda: set(ids) <= fn.ok_ids("/a"), 30 * SLOW, desc="every event at t1")
    missing = set(ids) - fn.ok_ids("/a")
    c.check(ok, "counts in == counts out: every event reached t1", f"{len(missing)} missing of {len(ids)}")
    dups = {k: len(v) for k, v in fn.by_id("/a").items() if len([r for r in v if r.status == 200]) > 1}
    c.check(not dups, "no event delivered twice", list(dups.items())[:5])
    c.check(wait_until(lambda: pending_count(cl, "s", "g") == 0, 15 * SLOW), "nothing left pending")
    ms = metrics(port)
    c.eq((metric(ms, "triggerd_reloads_total", result="success"),
          metric(ms, "triggerd_reloads_total", result="failure")),
         (valid, len(seq) - valid), "reloads counted by result")
    c.eq(metric(ms, "triggerd_trigger_deliveries_total", trigger="t1", outcome="delivered"),
         len(ids), "t1's delivered counter continued across reloads")
    c.eq(get(port, "/readyz")[0], 200, "ready after the reloads")
    td.signal(signal.SIGTERM)
    c.eq(td.wait(20 * SLOW), 0, "exit 0")


run_test(body)
