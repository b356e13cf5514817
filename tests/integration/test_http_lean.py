"""The HTTP client a sink gets (client: auto | curl | lean), and at-least-once through a function that
is SIGKILLed mid-run and comes back on the same port, with some first attempts timing out.

The function runs in a process of its own (so a SIGKILL cuts every keep-alive connection at once,
mid-request or idle) and logs each event's id when the request has arrived, before it answers: an id
that Redis acknowledged must be in that log, so "in" (the stream) == "out" (distinct ids the function
received) proves nothing was lost across the kills, the stale connections and the timeouts.
Run as written (127.0.0.1: the lean client) and with TD_HTTP_CLIENT=curl (libcurl) by CTest."""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 1500
FN = r'''
import http.server, json, os, socketserver, sys, time, urllib.parse
port, logpath = int(sys.argv[1]), sys.argv[2]
out = os.open(logpath, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
seen = set()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        cid = urllib.parse.unquote(self.headers.get("ce-id", ""))
        os.write(out, (cid + "\n").encode())
        try:
            n = int(json.loads(body)["n"])
        except Exception:
            n = 1
        if n % 97 == 0 and cid not in seen:
            seen.add(cid)
            time.sleep(2.5)  # beyond the sink's 1 s timeout: this attempt times out
        # every 7th answer closes the connection, as a function behind a proxy may
        close = n % 7 == 0
        self.send_response(204)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
S(("127.0.0.1", port), H).serve_forever()
'''


def start_fn(port, logpath):
    p = subprocess.Popen([sys.executable, "-c", FN, str(port), logpath])
    at_cleanup(lambda: p.poll() is None and p.kill())

    def up():
        try:
            import socket
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False
    wait_until(up, 10 * SLOW, desc="the function listens")
    return p


def received(logpath):
    try:
        with open(logpath) as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def rss_file_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    return 0


def body(c):
    want_client = "libcurl" if os.environ.get("TD_HTTP_CLIENT") == "curl" else "the lean HTTP client"
    rs = RedisServer()
    cl = rs.client()
    tmp = make_tempdir()
    logpath = os.path.join(tmp, "fn.log")
    port = free_port()
    fn = start_fn(port, logpath)
    cfg = config(sources={"in": redis_source(rs.url, "s", claim_idle="3s", max_deliveries=100)},
                 sinks={"fn": http_sink(f"http://127.0.0.1:{port}/", timeout="1s"),
                        "dead": {"redis": {"url": rs.url, "stream": "dead"}}},
                 triggers=[trigger("t1", "in", "fn", retry=30, concurrency=16, backoff="exponential",
                                   backoff_delay="50ms", backoff_max="300ms", dead_letter="dead")])
    td = Triggerd(cfg).start()
    c.check(td.wait_ready(10 * SLOW), "daemon ready")
    chosen = [l.get("msg", "") for l in td.logs() if "sink 'fn': " in l.get("msg", "")]
    c.check(any(want_client in m for m in chosen), f"sink 'fn' uses {want_client}", chosen)

    ids = publish_many(cl, "s", N, lambda i: {"n": str(i)})
    for kill_at in (N // 4, N // 2):
        wait_until(lambda: len(set(received(logpath))) >= kill_at, 60 * SLOW, desc=f"{kill_at} received")
        fn.send_signal(signal.SIGKILL)
        fn.wait()
        log(f"function killed after {len(set(received(logpath)))} distinct ids")
        time.sleep(0.3)  # requests meanwhile are refused: retried with backoff
        fn = start_fn(port, logpath)
    wait_until(lambda: set(ids) <= set(received(logpath)), 120 * SLOW, desc="every id received")
    wait_until(lambda: pending_count(cl, "s", "g") == 0, 30 * SLOW, desc="pending 0")

    got = received(logpath)
    c.eq(len(set(ids) - set(got)), 0, "ids never received by the function (lost)")
    c.eq(cl.xlen("dead") if cl.exists("dead") else 0, 0, "dead letters")
    c.eq(pending_count(cl, "s", "g"), 0, "XPENDING at the end")
    c.check(len(got) > N, "some ids were sent more than once (timeouts, kills): at least once, not at most",
            f"{len(got)} requests for {N} ids")
    timed_out = [l for l in td.logs() if "Timeout was reached" in json.dumps(l)]
    c.check(timed_out, "attempts that outlived the 1 s timeout were reported as timeouts")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")
    log(f"in={cl.xlen('s')} out={len(set(got))} requests={len(got)}")

    # client: lean where the lean client cannot serve: a load error at the key that says why (so
    # `check` reports it too); client: curl on the same URL starts.
    bad = config(sources={"in": redis_source(rs.url, "s2")},
                 sinks={"fn": {"http": {"url": f"https://127.0.0.1:{port}/", "client": "lean"}}},
                 triggers=[trigger("t1", "in", "fn")])
    td2 = Triggerd(bad, name="lean-misfit").start()
    rc = td2.wait(20 * SLOW)
    c.check(rc not in (None, 0), "client: lean with an https:// URL does not start", rc)
    text = "\n".join(td2.raw_lines())
    c.check("client: lean cannot serve this sink" in text and "not a plain http:// URL" in text,
            "the error says why", text[-400:])
    chk = run_cli(["check", "-c", td2.config_path])
    c.check(chk.returncode != 0 and "triggerd.yaml:" in chk.stderr and "client: lean" in chk.stderr,
            "`triggerd check` points at the key", (chk.returncode, chk.stderr[-300:]))
    basic = config(sources={"in": redis_source(rs.url, "s2")},
                   sinks={"fn": {"http": {"url": f"http://127.0.0.1:{port}/", "client": "lean",
                                          "auth": {"basic": {"user": "u", "password": "p"}}}}},
                   triggers=[trigger("t1", "in", "fn")])
    td5 = Triggerd(basic, name="lean-basic")
    chk = run_cli(["check", "-c", td5.config_path])
    c.check(chk.returncode != 0 and "basic auth" in chk.stderr, "client: lean with basic auth is refused",
            (chk.returncode, chk.stderr[-300:]))
    ok = config(sources={"in": redis_source(rs.url, "s2")},
                sinks={"fn": {"http": {"url": f"http://127.0.0.1:{port}/", "client": "curl"}}},
                triggers=[trigger("t1", "in", "fn")])
    td3 = Triggerd(ok, name="curl-forced").start()
    c.check(td3.wait_ready(10 * SLOW), "client: curl starts")
    c.check(any("sink 'fn': libcurl" in l.get("msg", "") for l in td3.logs()), "client: curl is libcurl")
    # libcurl is initialized on first use (http_client.c): its global init makes about 2.3 MB of
    # libraries (OpenSSL, GSS-API ...) resident. A daemon whose sink is on the lean client never
    # pays it; one that sent a request through libcurl has. Compared as the file-backed resident
    # memory of two daemons of the same binary on the same machine, so no absolute figure is assumed.
    cl.xadd("s2", {"n": "1"})
    wait_until(lambda: len(received(logpath)) > len(got), 20 * SLOW, desc="the libcurl request arrived")
    curl_file_kb = rss_file_kb(td3.proc.pid)
    td3.terminate()
    c.eq(td3.wait(10 * SLOW), 0, "client: curl exit status")
    lean_cfg = config(sources={"in": redis_source(rs.url, "s3")},
                      sinks={"fn": {"http": {"url": f"http://127.0.0.1:{port}/", "client": "lean"}}},
                      triggers=[trigger("t1", "in", "fn")])
    td4 = Triggerd(lean_cfg, name="lean-idle").start()
    c.check(td4.wait_ready(10 * SLOW), "client: lean starts")
    time.sleep(0.5)  # idle
    lean_file_kb = rss_file_kb(td4.proc.pid)
    td4.terminate()
    c.eq(td4.wait(10 * SLOW), 0, "client: lean exit status")
    log(f"file-backed RSS: lean-only idle {lean_file_kb} kB, after a libcurl request {curl_file_kb} kB")
    c.check(lean_file_kb + 1024 < curl_file_kb,
            "a daemon that never used libcurl has not initialized it (>= 1 MB less resident libraries)",
            f"{lean_file_kb} kB vs {curl_file_kb} kB")


run_test(body)
