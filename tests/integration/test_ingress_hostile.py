"""The HTTP ingress under hostile clients (issue 11): the daemon runs with `ulimit -n 1024` (what a
systemd service gets by default) while one address opens 2,000 idle TCP connections, another
sends request headers one byte a second (slowloris), and others post oversized bodies, deeply
nested JSON, an event with thousands of attributes, malformed UTF-8, a Content-Type that only
starts like the batch media type, and a batch larger than max_inflight. Throughout, /healthz and
/readyz answer 200 within a second on both the ingress listener and daemon.http.probes_listen;
valid events posted meanwhile are all delivered (each posted id reaches the function, nothing of a
refused request does), which also proves outbound deliveries are not starved; the slow and idle
connections are closed after request_timeout; every idle connection past max_connections_per_ip
(default 64) is refused at accept and counted, exactly, in
triggerd_ingress_connections_refused_total{reason="per_ip"}; and the daemon never comes near its
descriptor limit (no "Too many open files").

TD_HOSTILE_OLD_CONFIG=1 writes only daemon.http.listen (no probes_listen, request_timeout at its
default of 15 s), so the same attack can be run against a build that predates those keys: it
fails there (the daemon runs out of descriptors and the probes time out for two minutes)."""

import json
import os
import resource
import shutil
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import metric, metrics, request  # noqa: E402

IDLE_CONNECTIONS = 2000
SLOWLORIS_CONNECTIONS = 20
MAX_INFLIGHT = 50
MAX_SIZE = 64 * 1024
PER_IP = 64  # daemon.http.max_connections_per_ip's default


def raise_own_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE_CONNECTIONS + SLOWLORIS_CONNECTIONS + 512
    if hard != resource.RLIM_INFINITY and hard < want:
        return False
    if soft == resource.RLIM_INFINITY or soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY
                                                    else hard, hard))
    return True


def try_request(port, method, path, **kw):
    """request(), with a connection failure or timeout as status None (the check then fails)."""
    try:
        return request(port, method, path, **kw)
    except OSError as e:
        return None, {}, repr(e).encode()


def structured(eid, **more):
    ev = {"specversion": "1.0", "id": eid, "source": "/hostile", "type": "com.example.in",
          "datacontenttype": "application/json", "data": {"id": eid}}
    ev.update(more)
    return ev


def connect_from(src_ip, port, timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src_ip, 0))
    s.connect(("127.0.0.1", port))
    return s


def raw_request(port, data, src_ip="127.0.0.5", timeout=10):
    """Sends raw bytes, returns the status code (or None when the server closed without one)."""
    s = connect_from(src_ip, port, timeout)
    try:
        s.sendall(data)
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        try:
            return int(buf.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return None
    finally:
        s.close()


def try_raw_request(port, data):
    try:
        return raw_request(port, data)
    except OSError:
        return None


def closed_by_peer(s):
    """True when the server has closed (or reset) the connection."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


class ProbeWatch(threading.Thread):
    """GETs /healthz and /readyz on each port every 200 ms with a 1 s timeout; records failures."""

    def __init__(self, ports):
        super().__init__(daemon=True)
        self.ports = ports
        self.stop = threading.Event()
        self.failures = []
        self.count = 0

    def run(self):
        while not self.stop.is_set():
            for port in self.ports:
                for path in ("/healthz", "/readyz"):
                    t0 = time.monotonic()
                    try:
                        st, _, _ = request(port, "GET", path, timeout=1)
                        dt = time.monotonic() - t0
                        if st != 200 or dt > 1.0:
                            self.failures.append((port, path, st, round(dt, 2)))
                    except OSError as e:
                        self.failures.append((port, path, repr(e)[:80]))
                    self.count += 1
            self.stop.wait(0.2)


class Poster(threading.Thread):
    """Posts valid events one after another; an event is retried until it gets its 202."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.accepted = []
        self.retries = 0

    def run(self):
        i = 0
        while not self.stop.is_set():
            eid = f"ok-{i}"
            body = json.dumps(structured(eid)).encode()
            while True:
                try:
                    st, _, _ = request(self.port, "POST", "/events", body=body, timeout=10,
                                       headers={"Content-Type": "application/cloudevents+json"})
                    if st == 202:
                        break
                except OSError:
                    pass
                self.retries += 1
                time.sleep(0.2)
            self.accepted.append(eid)
            i += 1
            self.stop.wait(0.1)


def body(c):
    if not raise_own_nofile():
        log("SKIP: the test needs a descriptor hard limit above %d" % (IDLE_CONNECTIONS + 532))
        return SKIP
    if not shutil.which("prlimit"):
        log("SKIP: prlimit (util-linux) is not installed")
        return SKIP
    old_config = os.environ.get("TD_HOSTILE_OLD_CONFIG") == "1"
    request_timeout_s = 15 if old_config else 10
    fn = FunctionServer()
    dlpath = os.path.join(make_tempdir("td-hostile-"), "dead.jsonl")
    port, pport = free_port(), free_port()
    http = {"listen": f"127.0.0.1:{port}"}
    if not old_config:
        http.update(probes_listen=f"127.0.0.1:{pport}", request_timeout=f"{request_timeout_s}s")
    cfg = config(sources={"in": {"http": {"path": "/events", "max_size": "64KiB"},
                                 "max_inflight": MAX_INFLIGHT}},
                 sinks={"fn": http_sink(fn.url, timeout="10s"), "dl": {"file": {"path": dlpath}}},
                 triggers=[trigger("t", "in", "fn", dead_letter="dl", retry=5, timeout="10s")])
    cfg["daemon"]["http"] = http
    td = Triggerd(cfg, wrapper=["prlimit", "--nofile=1024:1024", "--"]).start()
    c.check(td.wait_ready(10), "daemon ready under ulimit -n 1024")
    probe_ports = [port] if old_config else [port, pport]

    watch = ProbeWatch(probe_ports)
    watch.start()
    poster = Poster(port)
    poster.start()
    time.sleep(0.5)

    # 1. 2,000 idle connections from one address: they connect and say nothing.
    idle = []
    t0 = time.monotonic()
    for _ in range(IDLE_CONNECTIONS):
        try:
            idle.append(connect_from("127.0.0.2", port, timeout=2))
        except OSError:
            break
    log(f"opened {len(idle)} idle connections in {time.monotonic() - t0:.1f}s")

    # 2. Slowloris from another address: request headers one byte a second.
    slow = []
    for _ in range(SLOWLORIS_CONNECTIONS):
        try:
            slow.append(connect_from("127.0.0.3", port, timeout=2))
        except OSError:
            break
    t_slow = time.monotonic()
    stop_slow = threading.Event()
    line = b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\n"

    def trickle():
        i = 0
        while not stop_slow.is_set():
            for s in slow:
                try:
                    s.send(line[i % len(line):i % len(line) + 1])
                except OSError:
                    pass
            i += 1
            stop_slow.wait(1)

    threading.Thread(target=trickle, daemon=True).start()

    # 3. Hostile requests while the connections are held (from yet another address).
    hdr = {"Content-Type": "application/cloudevents+json"}
    big = json.dumps(structured("big", data="x" * (MAX_SIZE + 4096))).encode()
    st, _, b = try_request(port, "POST", "/events", body=big, headers=hdr, timeout=10)
    c.eq(st, 413, "an oversized body: 413")
    nested = ('{"specversion":"1.0","id":"nested","source":"/h","type":"t","data":'
              + "[" * 30000 + "]" * 30000 + "}").encode()
    st, _, b = try_request(port, "POST", "/events", body=nested, headers=hdr, timeout=10)
    c.eq(st, 400, "deeply nested JSON: 400")
    many = structured("many")
    many.update({f"x{i}": "v" for i in range(4000)})
    st, _, b = try_request(port, "POST", "/events", body=json.dumps(many).encode(), headers=hdr,
                       timeout=10)
    c.check(st in (400, 413), "an event with 4,000 attributes: 400 or 413", st)
    bad_utf8 = b'{"specversion":"1.0","id":"utf\xff\xfe8","source":"/h","type":"t"}'
    st, _, b = try_request(port, "POST", "/events", body=bad_utf8, headers=hdr, timeout=10)
    c.eq(st, 400, "malformed UTF-8 in a structured event: 400")
    st = try_raw_request(port, b"POST /events HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\n"
                           b"ce-id: bin\xc3\x28\r\nce-source: /h\r\nce-type: t\r\n"
                           b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    c.eq(st, 400, "malformed UTF-8 in a binary-mode header: 400")
    batch = json.dumps([structured("xyz-1"), structured("xyz-2")]).encode()
    st, _, b = try_request(port, "POST", "/events", body=batch, timeout=10,
                       headers={"Content-Type": "application/cloudevents-batch+jsonXYZ"})
    c.eq(st, 400, "Content-Type application/cloudevents-batch+jsonXYZ is no batch: 400")
    st, _, b = try_request(port, "POST", "/events", body=json.dumps(structured("xyz-3")).encode(),
                           headers={"Content-Type": "application/cloudevents+jsonXYZ"}, timeout=10)
    c.eq(st, 400, "Content-Type application/cloudevents+jsonXYZ is no structured event: 400")
    cased = json.dumps([structured("cased-1"), structured("cased-2")]).encode()
    st, _, b = try_request(port, "POST", "/events", body=cased, timeout=10,
                       headers={"Content-Type": "Application/CloudEvents-Batch+JSON; charset=utf-8"})
    c.eq(st, 202, "the batch media type in other case and with a parameter: 202")
    huge = json.dumps([structured(f"huge-{i}") for i in range(MAX_INFLIGHT + 10)]).encode()
    st, _, b = try_request(port, "POST", "/events", body=huge, timeout=10,
                       headers={"Content-Type": "application/cloudevents-batch+json"})
    c.check(st == 413 and str(MAX_INFLIGHT) in b.decode("utf-8", "replace"),
            f"a batch of {MAX_INFLIGHT + 10} > max_inflight: 413 naming the limit",
            (st, b[:200]))

    # 4. The daemon stays well inside its descriptor limit.
    time.sleep(1)
    try:
        nfd = len(os.listdir(f"/proc/{td.proc.pid}/fd"))
    except OSError:
        nfd = None
    c.check(nfd is not None and nfd < 900, "the daemon's open descriptors stay well under 1024",
            nfd)

    # The idle address kept PER_IP connections; each one past them was refused, and counted.
    def refused():
        try:
            return metric(metrics(probe_ports[-1]), "triggerd_ingress_connections_refused_total",
                          reason="per_ip")
        except OSError:
            return None

    want = len(idle) - PER_IP
    wait_until(lambda: refused() == want, 10, desc="per-IP refusals counted")
    c.eq(refused(), want, f"triggerd_ingress_connections_refused_total{{reason=\"per_ip\"}}: the "
         f"{len(idle)} idle connections from one address minus the {PER_IP} it may have")

    # 5. After request_timeout, the slowloris connections and the idle ones the daemon accepted
    #    are closed by the daemon (MHD's own timeout counts inactivity only, and slowloris is
    #    never inactive).
    wait = t_slow + request_timeout_s + 4 - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    c.check(all(closed_by_peer(s) for s in slow),
            f"slowloris connections closed within request_timeout ({request_timeout_s}s) + 4s",
            sum(closed_by_peer(s) for s in slow))
    still_open = sum(not closed_by_peer(s) for s in idle)
    c.eq(still_open, 0, "every idle connection was refused or closed after request_timeout")

    stop_slow.set()
    poster.stop.set()
    poster.join(60)
    watch.stop.set()
    watch.join(10)
    for s in idle + slow:
        s.close()

    c.check(watch.count > 50 and not watch.failures,
            "/healthz and /readyz answered 200 within 1 s on every listener throughout",
            (watch.count, watch.failures[:5]))
    accepted = set(poster.accepted)
    c.check(len(accepted) >= 20, "valid events were accepted during the attack",
            (len(accepted), poster.retries))
    c.check(wait_until(lambda: accepted <= fn.ok_ids(), 10),
            "every accepted event was delivered (outbound deliveries worked meanwhile)",
            sorted(accepted - fn.ok_ids())[:5])
    delivered = fn.ok_ids()
    c.eq(sorted(delivered - accepted - {"cased-1", "cased-2"}), [],
         "nothing of a refused request reached the function")
    c.check({"cased-1", "cased-2"} <= delivered, "the correctly typed batch was delivered")
    text = "".join(open(p, errors="replace").read() for p in td.stderr_paths)
    c.check("Too many open files" not in text, "no 'Too many open files' in the daemon's log")
    c.check(td.running(), "the daemon is still running")
    td.terminate()
    c.eq(td.wait(30), 0, "clean exit")


run_test(body)
