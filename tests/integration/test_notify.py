"""systemd notify protocol under a fake NOTIFY_SOCKET (a Unix datagram socket this test listens on):
READY=1 once the sources are connected, WATCHDOG=1 at under half of WATCHDOG_USEC, RELOADING=1 then
READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM."""

import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403


def body(c):
    rs = RedisServer()
    fn = FunctionServer()
    path = os.path.join(make_tempdir("td-notify-"), "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    at_cleanup(sock.close)
    got, lock, stop = [], threading.Lock(), threading.Event()

    def listen():
        while not stop.is_set():
            try:
                data = sock.recv(4096)
            except (socket.timeout, OSError):
                continue
            with lock:
                got.append((time.monotonic(), data.decode()))

    th = threading.Thread(target=listen, daemon=True)
    th.start()
    at_cleanup(stop.set)

    def msgs(prefix):
        with lock:
            return [(t, m) for t, m in got if any(l.startswith(prefix) for l in m.split("\n"))]

    cfg = config(sources={"in": redis_source(rs.url, "s")}, sinks={"fn": http_sink(fn.url)},
                 triggers=[trigger("t1", "in", "fn")])
    td = Triggerd(cfg, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "600000"}).start()
    c.check(wait_until(lambda: msgs("READY=1"), 10 * SLOW), "READY=1 sent")
    ready = msgs("READY=1")
    c.check(ready and "STATUS=" in ready[0][1], "with a STATUS= line", ready[:1])
    t0 = time.monotonic()
    time.sleep(1.5)
    wd = [t for t, _ in msgs("WATCHDOG=1") if t >= t0]
    c.check(len(wd) >= 4, "WATCHDOG=1 at under half of WATCHDOG_USEC", len(wd))
    gaps = [b - a for a, b in zip(wd, wd[1:])]
    c.check(gaps and max(gaps) < 0.3 * SLOW + 0.1, "no watchdog gap near the timeout",
            max(gaps) if gaps else None)
    n_ready = len(msgs("READY=1"))
    td.signal(signal.SIGHUP)
    c.check(wait_until(lambda: msgs("RELOADING=1"), 10 * SLOW), "RELOADING=1 on SIGHUP")
    c.check(wait_until(lambda: len(msgs("READY=1")) > n_ready, 10 * SLOW), "READY=1 after the reload")
    rl, rd = msgs("RELOADING=1")[0][0], msgs("READY=1")[-1][0]
    c.check(rl <= rd, "RELOADING=1 before READY=1")
    td.terminate()
    c.eq(td.wait(20 * SLOW), 0, "exit 0")
    c.check(msgs("STOPPING=1"), "STOPPING=1 on SIGTERM")


run_test(body)
