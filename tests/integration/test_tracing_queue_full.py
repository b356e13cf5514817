"""Tracing never holds up delivery: with a collector that accepts the connection and never answers,
the first batch stays in flight (daemon.tracing.timeout is long), the export queue (queue_size 4) fills,
and every further span is dropped and counted in triggerd_trace_spans_dropped_total{reason="queue_full"}
while all events are delivered and acknowledged as fast as without tracing. The daemon still stops on
SIGTERM with the export request hanging, after at most the 2 s it gives the last spans.

A collector that answers 400: the refused batches are counted as
triggerd_trace_spans_dropped_total{reason="export_failed"}, logged once (not once per batch), and
delivery goes on. A collector that answers 503 twice, then 200: the same batch is sent again after
a backoff (OTLP's retryable statuses) and exported, nothing dropped.

Shutdown flushes: with interval 60s nothing is exported while the daemon runs; on SIGTERM the queued
spans are sent (and answered) before it exits.
"""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import metric, metrics, with_http  # noqa: E402
from otlp_receiver import OtlpReceiver, decoder_available  # noqa: E402

N = 50


class Silent:
    """Accepts connections, reads what comes, never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []
        self.received = 0
        threading.Thread(target=self._accept, daemon=True).start()
        at_cleanup(self.stop)

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.received += len(data)

    def stop(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer()
    collector = Silent()
    cfg = config({"s": redis_source(rs.url, "s")}, {"fn": http_sink(fn.url)},
                 [trigger("t", "s", "fn")])
    cfg["daemon"]["tracing"] = {"otlp_endpoint": collector.url, "queue_size": 4,
                                "interval": "50ms", "timeout": "60s"}
    port = with_http(cfg)
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10), "daemon ready")
    # a first event, so that the first batch is in flight (and hangs) before the rest arrive
    cl.xadd("s", {"n": "first"})
    c.check(wait_until(lambda: collector.received > 0, 10 * SLOW), "the collector got a request")
    t0 = time.monotonic()
    publish_many(cl, "s", N)
    done = wait_until(lambda: len(fn.ok_ids()) == N + 1 and
                      cl.xpending("s", "g")["pending"] == 0, 20 * SLOW)
    took = time.monotonic() - t0
    c.check(done, "every event delivered and acknowledged while the collector hangs",
            f"{len(fn.ok_ids())} delivered")
    c.check(took < 10 * SLOW, f"without waiting for the collector ({took:.1f} s)")
    ms = metrics(port)
    dropped = metric(ms, "triggerd_trace_spans_dropped_total", reason="queue_full") or 0
    # 2 spans per event (process, deliver); at most 4 queued and the first batch in flight
    c.check(dropped >= 2 * (N + 1) - 4 - 2, "spans beyond the queue dropped and counted",
            f"dropped {dropped}")
    c.eq(metric(ms, "triggerd_trace_spans_exported_total"), 0.0, "nothing exported")
    t1 = time.monotonic()
    td.terminate()
    c.eq(td.wait(15 * SLOW), 0, "clean exit")
    c.check(time.monotonic() - t1 < 4 * SLOW, "SIGTERM waits for the hanging export 2 s at most")
    c.eq(td.sanitizer_reports(), [], "no sanitizer reports")

    # --- a collector that refuses
    refusing = OtlpReceiver(status=400)
    cfg["daemon"]["tracing"] = {"otlp_endpoint": refusing.url, "interval": "20ms"}
    cl.delete("s")
    td2 = Triggerd(cfg, name="refused").start()
    c.check(td2.wait_ready(10), "second daemon ready")
    before = len(fn.ok_ids())
    for i in range(5):
        cl.xadd("s", {"n": f"r{i}"})
        time.sleep(0.1)  # several batches
    c.check(wait_until(lambda: len(fn.ok_ids()) == before + 5 and
                       cl.xpending("s", "g")["pending"] == 0, 10 * SLOW), "delivered while refused")
    c.check(wait_until(lambda: (metric(metrics(port), "triggerd_trace_spans_dropped_total",
                                       reason="export_failed") or 0) >= 10, 10 * SLOW),
            "refused spans counted as export_failed")
    c.check(len(refusing.snapshot()) >= 2, "several batches were sent", len(refusing.snapshot()))
    warns = [l for l in td2.logs() if "spans not exported" in (l.get("msg") or "")]
    c.eq(len(warns), 1, "one warning, not one per batch")
    c.check(warns and "400" in warns[0]["msg"], "it says what the collector answered",
            warns[0]["msg"] if warns else None)
    c.eq(metric(metrics(port), "triggerd_trace_spans_exported_total"), 0.0, "nothing exported")
    td2.terminate()
    c.eq(td2.wait(15 * SLOW), 0, "clean exit")
    c.eq(td2.sanitizer_reports(), [], "no sanitizer reports")

    # --- a collector that is busy for a moment: retried, then exported
    busy = OtlpReceiver(status=[503, 503, 200])
    cfg["daemon"]["tracing"] = {"otlp_endpoint": busy.url, "interval": "20ms"}
    td4 = Triggerd(cfg, name="busy").start()
    c.check(td4.wait_ready(10), "fourth daemon ready")
    before = len(fn.ok_ids())
    cl.xadd("s", {"n": "busy"})
    c.check(wait_until(lambda: len(fn.ok_ids()) == before + 1, 10 * SLOW), "delivered")
    c.check(wait_until(lambda: (metric(metrics(port), "triggerd_trace_spans_exported_total") or 0) >= 2,
                       10 * SLOW), "exported after two 503s")
    posts = busy.snapshot()
    c.check(len(posts) >= 3 and posts[0][2] == posts[1][2] == posts[2][2],
            "the same batch sent three times", len(posts))
    c.eq(metric(metrics(port), "triggerd_trace_spans_dropped_total", reason="export_failed"), 0.0,
         "nothing dropped")
    if decoder_available():
        c.eq(sorted(s["name"] for s in busy.spans(accepted_only=True)), ["deliver t", "process s"],
             "the accepted batch holds the event's spans")
    td4.terminate()
    c.eq(td4.wait(15 * SLOW), 0, "clean exit")

    # --- shutdown exports what is queued
    late = OtlpReceiver()
    cfg["daemon"]["tracing"] = {"otlp_endpoint": late.url, "interval": "60s"}
    td3 = Triggerd(cfg, name="flush").start()
    c.check(td3.wait_ready(10), "third daemon ready")
    before = len(fn.ok_ids())
    cl.xadd("s", {"n": "last"})
    c.check(wait_until(lambda: len(fn.ok_ids()) == before + 1 and
                       cl.xpending("s", "g")["pending"] == 0, 10 * SLOW), "delivered")
    time.sleep(0.3)
    c.eq(len(late.snapshot()), 0, "nothing exported before the interval")
    t1 = time.monotonic()
    td3.terminate()
    c.eq(td3.wait(15 * SLOW), 0, "clean exit")
    c.check(time.monotonic() - t1 < 3 * SLOW, "promptly")
    c.eq(len(late.snapshot()), 1, "the queued spans were exported at shutdown, in one request")
    if decoder_available():
        names = sorted(s["name"] for s in late.spans()) if late.snapshot() else []
        c.eq(names, ["deliver t", "process s"], "both spans of the event")


if __name__ == "__main__":
    run_test(body)
