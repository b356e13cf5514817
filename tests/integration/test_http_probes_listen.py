"""daemon.http.probes_listen: a listener of its own for /healthz, /readyz, /metrics and /status
(issue 11). With probes_on_listen: false the ingress listener serves only the ingress paths (the
probes there are 404, so callers of a Service never see /metrics or /status) and the probes
listener serves only the probes (an ingress path there is 404); `triggerd status` asks the
probes listener; and a SIGHUP that changes daemon.http, or an http source (its route), is refused
(a restart applies it) while the daemon keeps serving."""

import json
import os
import signal
import sys
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import metrics, metric, request  # noqa: E402


def body(c):
    fn = FunctionServer()
    port, pport = free_port(), free_port()
    cfg = config(sources={"in": {"http": {"path": "/events"}}},
                 sinks={"fn": http_sink(fn.url)}, triggers=[trigger("t", "in", "fn")])
    cfg["daemon"]["http"] = {"listen": f"127.0.0.1:{port}", "probes_listen": f"127.0.0.1:{pport}",
                             "probes_on_listen": False}
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")

    for path in ("/healthz", "/readyz", "/metrics", "/status"):
        st, _, _ = request(pport, "GET", path, timeout=5)
        c.eq(st, 200, f"{path} on probes_listen: 200")
        st, _, _ = request(port, "GET", path, timeout=5)
        c.eq(st, 404, f"{path} on listen with probes_on_listen false: 404")
    ev = {"specversion": "1.0", "id": "p-1", "source": "/s", "type": "t"}
    hdr = {"Content-Type": "application/cloudevents+json"}
    st, _, _ = request(pport, "POST", "/events", body=json.dumps(ev).encode(), headers=hdr,
                       timeout=10)
    c.eq(st, 404, "an ingress path on probes_listen: 404")
    st, _, _ = request(port, "POST", "/events", body=json.dumps(ev).encode(), headers=hdr,
                       timeout=10)
    c.eq(st, 202, "the ingress on listen: 202")
    c.check(wait_until(lambda: "p-1" in fn.ok_ids(), 5), "the event was delivered")

    r = run_cli(["status", "-c", td.config_path])
    c.check(r.returncode == 0 and "t" in r.stdout, "triggerd status asks probes_listen",
            (r.returncode, r.stderr[-300:]))

    # A reload cannot move or resize a listener: refused, the daemon keeps serving.
    cfg["daemon"]["http"]["max_connections_per_ip"] = 5
    with open(td.config_path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    td.signal(signal.SIGHUP)
    c.check(wait_until(lambda: metric(metrics(pport), "triggerd_reloads_total",
                                      result="failure") == 1, 10),
            "a SIGHUP that changes daemon.http is refused")
    c.check(any("daemon.http changed" in json.dumps(l) for l in td.logs()),
            "the log says daemon.http needs a restart")
    st, _, _ = request(pport, "GET", "/healthz", timeout=5)
    c.eq(st, 200, "still serving after the refused reload")

    # Nor move an ingress route: its descriptor says its sources are bound at start
    # (restart_to_change), so a changed http source is refused and the old path keeps serving.
    del cfg["daemon"]["http"]["max_connections_per_ip"]
    cfg["sources"]["in"]["http"]["path"] = "/moved"
    with open(td.config_path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    td.signal(signal.SIGHUP)
    c.check(wait_until(lambda: metric(metrics(pport), "triggerd_reloads_total",
                                      result="failure") == 2, 10),
            "a SIGHUP that changes an http source is refused")
    c.check(any("http source 'in' was added, removed or changed" in json.dumps(l)
                for l in td.logs()), "the log says the http source needs a restart")
    ev["id"] = "p-2"
    st, _, _ = request(port, "POST", "/events", body=json.dumps(ev).encode(), headers=hdr,
                       timeout=10)
    c.eq(st, 202, "the old ingress path still serves")
    td.terminate()
    c.eq(td.wait(30), 0, "clean exit")


run_test(body)
