"""librdkafka's own log goes through our logger: with the Kafka broker dead (a closed port),
`triggerd publish kafka://…` prints no raw `%3|…` line but our formatted error lines (time, level
error, `triggerd publish: librdkafka FAIL: … Connection refused`), and `triggerd run` with a Kafka
source on that port writes only JSON lines (format json), the librdkafka ones as warnings naming the
source. `triggerd check` of that file prints nothing raw either."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

RAW = re.compile(r"^%\d\|", re.M)
OURS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z error triggerd publish: librdkafka "
                  r"\w+: .*Connection refused", re.M)


def body(c):
    port = free_port()
    p = run_cli(["publish", f"kafka://127.0.0.1:{port}/t", "--data", "x"], timeout=60)
    c.check(p.returncode != 0, "publish to a dead broker fails", p.returncode)
    c.check(not RAW.search(p.stderr), "publish prints no raw librdkafka %N| line", p.stderr[:600])
    c.check(OURS.search(p.stderr), "publish prints librdkafka's error in our format", p.stderr[:600])
    c.check("not written" in p.stderr, "and says the record was not written", p.stderr[-300:])

    cfg = config(sources={"k": {"kafka": {"brokers": f"127.0.0.1:{port}", "topics": ["t"],
                                          "group": "g"}}},
                 sinks={"fn": http_sink("http://127.0.0.1:9/")},
                 triggers=[trigger("t1", "k", "fn")])
    cfg["daemon"]["log"]["level"] = "info"
    td = Triggerd(cfg).start()
    wait_until(lambda: any("librdkafka" in l.get("msg", "") for l in td.logs()), 15 * SLOW,
               desc="a librdkafka line")
    time.sleep(0.5)
    td.terminate()
    td.wait(15 * SLOW)
    raw = [l for l in td.logs() if "raw" in l]
    c.eq(raw, [], "run: every stderr line is one of our JSON lines")
    kl = [l for l in td.logs() if "librdkafka" in l.get("msg", "")]
    c.check(kl and all(l.get("source") == "k" and l.get("level") in ("warn", "info") for l in kl),
            "run: librdkafka lines carry the source and a mapped level (connection errors: warn)",
            kl[:3])
    c.check(any(l.get("level") == "warn" and "Connection refused" in l["msg"] for l in kl),
            "run: the refused connection is a warning", kl[:3])

    r = run_cli(["check", "-c", td.config_path])
    c.check(not RAW.search(r.stderr + r.stdout), "check prints no raw librdkafka line", r.stderr)


run_test(body)
