"""Shared fixtures for the triggerd integration tests.

Every test is a plain script run by /usr/bin/python3 (standard library + Debian's python3-redis and
python3-yaml). It starts what it needs itself, on loopback ports of its own, and stops all of it at exit,
even on failure:

- RedisServer: a real redis-server in its own temp dir (AOF, fsync always, so a restart keeps the data);
  with TD_REDIS_TLS=1 in the environment (the "-tls" CTest entries), every RedisServer listens on a
  TLS port only and requires client certificates, its url is rediss://, and Triggerd / run_cli add
  the matching `tls:` block / --tls-* flags, so the same test runs over TLS (RedisTLS below);
- FunctionServer: an HTTP "function" in a background thread that records every request and answers
  according to a pluggable behaviour (status, headers, body, delay), per CloudEvent id and attempt number;
- Triggerd: the real binary ($TRIGGERD), one config file, stderr captured to a file and parsed as JSON;
- frozen(pid): a broker frozen (SIGSTOP) for a with block and resumed however it ends;
  exits_within(td, bound): a bounded wait for an exit that kills past the bound.

A test builds a Checks object, calls check() for each property it asserts, and ends with run_test(),
which prints "N passed, M failed" as the last line and exits 0 (all passed), 1 (any failed or an
exception) or 77 (skip).
"""

import atexit
import base64
import contextlib
import datetime
import http.server
import json
import os
import random
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

import redis
import yaml

SKIP = 77
SANITIZE = os.environ.get("TD_SANITIZE", "").upper() in ("ON", "1", "TRUE", "YES")
# The ThreadSanitizer build (TD_TSAN): its reports ("WARNING: ThreadSanitizer") fail a test
# like any other sanitizer report (Triggerd.sanitizer_reports).
TSAN = os.environ.get("TD_TSAN", "").upper() in ("ON", "1", "TRUE", "YES")
# Time stretch for slow builds (ASan/UBSan, TSan): every generous timeout and timing slack is multiplied.
SLOW = 3.0 if SANITIZE or TSAN else 1.0

_cleanups = []  # callables, run in reverse order at exit
_cleanup_lock = threading.Lock()


def at_cleanup(fn):
    with _cleanup_lock:
        _cleanups.append(fn)
    return fn


def _run_cleanups():
    while True:
        with _cleanup_lock:
            if not _cleanups:
                return
            fn = _cleanups.pop()
        try:
            fn()
        except Exception:  # cleanup must never mask the test's result
            traceback.print_exc()


atexit.register(_run_cleanups)


def _on_signal(signum, frame):
    _run_cleanups()
    sys.exit(1)


signal.signal(signal.SIGTERM, _on_signal)


def log(msg):
    print(msg, flush=True)


_ports_given = set()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago, and that this process has not handed
    out before: the kernel may give the same ephemeral port to two binds in a row once the first
    socket is closed, and a fixture that asks for two ports (a RabbitMQ node's TLS listener and
    its distribution port) then got one twice, and the node's second listener failed with
    eaddrinuse."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("no TCP port that was not handed out already")


def holds_listener(pid, port):
    """Whether process pid holds a listening TCP socket on 127.0.0.1:port. A server that could not
    bind its port may answer through someone else's (another test's broker on the same number):
    this tells the two apart."""
    # a JVM listens on an IPv6 socket, where 127.0.0.1 is ::ffff:127.0.0.1 (in /proc/net/tcp6)
    local = {"0100007F:%04X" % port, "0000000000000000FFFF00000100007F:%04X" % port}
    inodes = set()
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                inodes |= {"socket:[%s]" % row[9] for row in (line.split() for line in f)
                           if row[1] in local and row[3] == "0A"}
        fds = f"/proc/{pid}/fd"
        names = os.listdir(fds)
    except OSError:
        return False
    for fd in names:
        try:
            if os.readlink(os.path.join(fds, fd)) in inodes:
                return True
        except OSError:
            pass
    return False


def start_on_free_ports(name, start, clash, new_ports, attempts=3):
    """Starts a server on ports from free_port() and, when another process bound one of them
    first, again on new ones: the broker fixtures' common loop (RedisServer, KafkaBroker,
    RabbitMQServer). free_port's ports are free when asked, but on a loaded machine running tests
    in parallel another test's server, or any outgoing connection (whose local port comes from
    the same ephemeral range), may take one before the server binds it; that is no failure of
    the code under test. Any other failure is, and is raised at once.

    start(): starts the server on the ports configured now, or raises RuntimeError; its value is
    returned. clash(exc): for that RuntimeError, which port another process took (a short text
    for the log), or a falsy value when it failed for another reason. new_ports(): undoes what
    the failed start left and configures new ports for the next start(). name: the server in the
    log line, or a callable giving it (a RabbitMQ node's name changes with its ports). start()
    runs at most `attempts` times; the last one's error is raised as it is, so a test that gives
    up says why the server would not start, not that it was retried. Each retry is logged once."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except RuntimeError as e:
            which = clash(e)
            if not which or attempt == attempts:
                raise
        who = name() if callable(name) else name
        log(f"{who}: a port was taken by another process ({which}); starting again on new "
            f"ports (try {attempt + 1} of {attempts})")
        new_ports()


def make_tempdir(prefix="td-it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    at_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def wait_until(predicate, timeout, interval=0.02, desc=None):
    """Polls predicate() until it returns a truthy value (returned) or timeout seconds pass (returns
    the last falsy value). Exceptions from the predicate count as falsy."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
        except Exception as e:  # e.g. Redis briefly unreachable
            last = None
            if desc:
                pass
            _ = e
        if last:
            return last
        if time.monotonic() >= deadline:
            if desc:
                log(f"  (wait_until timed out after {timeout:.1f}s: {desc})")
            return last
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------------
# Checks and the runner


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def check(self, cond, what, detail=None):
        if cond:
            self.passed += 1
            log(f"PASS {what}" + (f" ({detail})" if detail is not None else ""))
        else:
            self.failed += 1
            self.failures.append(what)
            log(f"FAIL {what}" + (f" ({detail})" if detail is not None else ""))
        return bool(cond)

    def eq(self, got, want, what):
        return self.check(got == want, what, f"got {_short(got)!s}, want {_short(want)!s}")


def _short(v, n=300):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def triggerd_binary():
    path = os.environ.get("TRIGGERD")
    if not path:
        src = os.environ.get("TD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
        path = os.path.join(src, "build", "triggerd")
    path = os.path.abspath(path)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return None
    return path


_daemons = []  # every Triggerd started, for the sanitizer scan and the log dump on failure


def run_test(body, needs_triggerd=True, needs_redis=True):
    """Runs body(checks) and exits with the suite's convention. A test that starts no daemon
    and no redis-server says so (needs_triggerd, needs_redis False): it then runs everywhere."""
    if needs_triggerd and triggerd_binary() is None:
        log(f"SKIP: triggerd binary not found (TRIGGERD={os.environ.get('TRIGGERD')!r})")
        log("0 passed, 0 failed")
        sys.exit(SKIP)
    if needs_redis and shutil.which("redis-server") is None and not os.path.exists("/usr/bin/redis-server"):
        log("SKIP: redis-server not installed")
        log("0 passed, 0 failed")
        sys.exit(SKIP)
    c = Checks()
    t0 = time.monotonic()
    try:
        rc = body(c)
        if rc == SKIP:
            _run_cleanups()
            log("0 passed, 0 failed")
            sys.exit(SKIP)
    except SystemExit:
        raise
    except BaseException:
        c.failed += 1
        c.failures.append("exception")
        log("FAIL exception in test body:")
        traceback.print_exc(file=sys.stdout)
    # Any sanitizer report in any daemon's stderr is a failure, whatever the test checked.
    for d in _daemons:
        reports = d.sanitizer_reports()
        if reports:
            c.check(False, f"no sanitizer report in {d.name}'s stderr", reports[0][:2000])
    if c.failed:
        for d in _daemons:
            d.dump_tail()
    _run_cleanups()
    log(f"elapsed {time.monotonic() - t0:.1f}s")
    log(f"{c.passed} passed, {c.failed} failed")
    sys.stdout.flush()
    sys.exit(1 if c.failed else 0)


# ---------------------------------------------------------------------------------------------------
# Redis


REDIS_TLS = os.environ.get("TD_REDIS_TLS", "").upper() in ("ON", "1", "TRUE", "YES")


class RedisTLS:
    """Certificates for a TLS redis-server and its clients, made with openssl (tls_util.CA) under a
    temp dir: a CA, a server certificate (127.0.0.1, localhost) and a client certificate."""

    def __init__(self, name="redis"):
        import tls_util  # it imports this module: not at the top
        self.dir = make_tempdir("td-redis-tls-")
        self.ca = tls_util.CA(self.dir, name + "-ca")
        self.server_cert, self.server_key = self.ca.issue(name + "-server", 1)
        self.client_cert, self.client_key = self.ca.issue(name + "-client", 2, client=True)

    def tls_block(self):
        """The `tls:` block of a Redis url in a trigger file."""
        return {"ca_file": self.ca.cert, "cert_file": self.client_cert,
                "key_file": self.client_key}

    def cli_flags(self):
        """The same for `triggerd publish`."""
        return ["--tls-ca", self.ca.cert, "--tls-cert", self.client_cert,
                "--tls-key", self.client_key]

    def client_kw(self):
        """redis-py's keywords for a client of such a server."""
        return {"ssl": True, "ssl_ca_certs": self.ca.cert, "ssl_certfile": self.client_cert,
                "ssl_keyfile": self.client_key}


_redis_tls = None  # the RedisTLS of the TD_REDIS_TLS mode, made on first use


def redis_tls_default():
    global _redis_tls
    if _redis_tls is None:
        _redis_tls = RedisTLS()
    return _redis_tls


class RedisServer:
    def __init__(self, port=None, tls=None, auth_clients=True, extra_args=()):
        """tls: a RedisTLS to listen with TLS only (default: the TD_REDIS_TLS mode's, else plain);
        auth_clients: with TLS, require a client certificate; extra_args: more redis-server
        arguments (an ACL user, requirepass)."""
        self.port = port or free_port()
        self.dir = make_tempdir("td-redis-")
        self.proc = None
        self.tls = tls or (redis_tls_default() if REDIS_TLS else None)
        self.auth_clients = auth_clients
        self.extra_args = list(extra_args)
        self.scheme = "rediss" if self.tls else "redis"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}/0"
        self._log = os.path.join(self.dir, "redis.log")
        self._log_start = 0  # where this start's lines begin in the log every start appends to
        at_cleanup(self.stop)
        # A port from free_port() may be bound by another process before redis-server binds it:
        # then it exits at once, saying so in its log, and starts again on a new port. A port
        # the caller chose is never changed: the caller asked for that one.

        def clash(_):
            # Only this start's lines: after a clash the log still says "Address already in use",
            # and a later start that failed for another reason would be taken for a clash too.
            if (port is None and self.proc is not None and self.proc.poll() is not None
                    and "Address already in use" in self.log_text(self._log_start)):
                return f"127.0.0.1:{self.port}"
            return None

        def new_port():
            self.port = free_port()
            self.url = f"{self.scheme}://127.0.0.1:{self.port}/0"

        start_on_free_ports("redis-server", self.start, clash, new_port)

    def log_text(self, start=0):
        """The server's log from byte `start` on (every start appends to the same file)."""
        try:
            with open(self._log, errors="replace") as f:
                f.seek(start)
                return f.read()
        except OSError:
            return ""

    def url_for(self, path):
        """scheme://127.0.0.1:PORT/PATH (`publish` takes /[DB/]STREAM)."""
        return f"{self.scheme}://127.0.0.1:{self.port}/{path}"

    def _client_kw(self):
        return self.tls.client_kw() if self.tls else {}

    def start(self):
        # A second start while the first server runs would spawn one that cannot bind, take its
        # place in self.proc, and leave the first running after the test (stop() stops only
        # self.proc): two tests did that and leaked a redis-server each run.
        if self.running():
            raise RuntimeError(f"redis-server on port {self.port} is running already (the "
                               "constructor starts it)")
        args = [
            "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
            "--appendonly", "yes", "--appendfsync", "always", "--save", "",
            "--protected-mode", "no", "--logfile", self._log, "--daemonize", "no",
        ]
        if self.tls:
            args[2] = "0"
            args += ["--tls-port", str(self.port), "--tls-cert-file", self.tls.server_cert,
                     "--tls-key-file", self.tls.server_key, "--tls-ca-cert-file", self.tls.ca.cert,
                     "--tls-auth-clients", "yes" if self.auth_clients else "no"]
        args += self.extra_args
        try:
            self._log_start = os.path.getsize(self._log)
        except OSError:
            self._log_start = 0
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Up once it answers PING on a socket it holds itself: another test's redis-server on the
        # same number would answer too, until ours failed to bind (holds_listener).
        ok = wait_until(lambda: self.proc.poll() is not None or
                        (self._ping() and holds_listener(self.proc.pid, self.port)), 10 * SLOW)
        if self.proc.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} exited: "
                               f"{self.log_text(self._log_start)[-2000:]}")
        if not ok:
            raise RuntimeError(f"redis-server on port {self.port} did not answer PING")

    def _ping(self):
        if self.proc.poll() is not None:
            raise RuntimeError("redis-server exited: " + open(self._log).read()[-2000:])
        try:
            return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1,
                               **self._client_kw()).ping()
        except redis.exceptions.ConnectionError:
            return False
        except redis.exceptions.AuthenticationError:
            return True  # up, and wants a password (requirepass, ACL)
        except redis.exceptions.ResponseError as e:
            if "NOAUTH" in str(e):
                return True
            raise
        except redis.exceptions.BusyLoadingError:
            return False

    def client(self, **kw):
        kw.setdefault("socket_timeout", 10)
        for k, v in self._client_kw().items():
            kw.setdefault(k, v)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def cli_args(self):
        """redis-cli's arguments to reach this server (-p PORT, and the TLS ones)."""
        args = ["-p", str(self.port)]
        if self.tls:
            args += ["--tls", "--cacert", self.tls.ca.cert, "--cert", self.tls.client_cert,
                     "--key", self.tls.client_key]
        return args

    def stop(self):
        """Stops the server gracefully (SIGTERM); the AOF keeps the data for restart()."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None


def publish_many(client, stream, n, fields_fn=None, chunk=500):
    """XADDs n entries (fields_fn(i) -> dict, default {"n": i}) with a pipeline; returns the ids as
    str, in order."""
    fields_fn = fields_fn or (lambda i: {"n": str(i)})
    ids = []
    for start in range(0, n, chunk):
        p = client.pipeline(transaction=False)
        for i in range(start, min(n, start + chunk)):
            p.xadd(stream, fields_fn(i))
        ids.extend(x.decode() if isinstance(x, bytes) else x for x in p.execute())
    return ids


def pending_count(client, stream, group):
    return int(client.xpending(stream, group)["pending"])


def pending_ids(client, stream, group):
    out = []
    for e in client.xpending_range(stream, group, "-", "+", 1000000):
        mid = e["message_id"]
        out.append(mid.decode() if isinstance(mid, bytes) else mid)
    return out


def pending_detail(client, stream, group):
    """{entry id: (consumer, times_delivered)} for every pending entry."""
    out = {}
    for e in client.xpending_range(stream, group, "-", "+", 1000000):
        mid = e["message_id"]
        cons = e["consumer"]
        out[mid.decode() if isinstance(mid, bytes) else mid] = (
            cons.decode() if isinstance(cons, bytes) else cons, int(e["times_delivered"]))
    return out


def group_info(client, stream, group):
    for g in client.xinfo_groups(stream):
        name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
        if name == group:
            return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.items()}
    return None


def read_and_acked(client, stream, group, last_id):
    """True when the group has read the stream up to last_id (its last-delivered-id) and has
    nothing pending. XPENDING 0 alone is also true before the daemon has read the entries; with
    last_id the last entry added, this holds only once every entry was read and acknowledged."""
    g = group_info(client, stream, group)
    return g is not None and g["last-delivered-id"] == last_id and \
        pending_count(client, stream, group) == 0


def id_key(entry_id):
    ms, seq = entry_id.split("-")
    return (int(ms), int(seq))


def read_stream(client, stream):
    """[(id, {field: bytes})] for the whole stream."""
    out = []
    for eid, fields in client.xrange(stream, "-", "+"):
        out.append((eid.decode(), {k.decode(): v for k, v in fields.items()}))
    return out


def read_dead_letters(client, stream):
    """[(id, {field: str})]: the dead-letter stream, values decoded as UTF-8 (replace)."""
    return [(eid, {k: v.decode("utf-8", "replace") for k, v in f.items()})
            for eid, f in read_stream(client, stream)]


def entry_time_ms(entry_id):
    return int(entry_id.split("-")[0])


def parse_rfc3339_ms(s):
    """RFC 3339 timestamp -> float milliseconds since the epoch."""
    s = s.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    # Python 3.11 fromisoformat accepts fractions of any length up to 6 digits; trim longer ones.
    if "." in s:
        head, rest = s.split(".", 1)
        frac = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            frac += rest[i]
            i += 1
        s = head + "." + (frac[:6] or "0") + rest[i:]
    dt = datetime.datetime.fromisoformat(s)
    return dt.timestamp() * 1000.0


# ---------------------------------------------------------------------------------------------------
# The function


class Request:
    __slots__ = ("method", "path", "headers", "body", "t_arrival", "t_done", "t_reply", "status",
                 "ce_id", "attempt", "seq", "completed")

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def ce(self, attr):
        """A CloudEvent attribute of this request (binary: percent-decoded ce- header; structured:
        the JSON member)."""
        if self.is_structured():
            try:
                v = json.loads(self.body).get(attr)
            except Exception:
                return None
            return v if v is None or isinstance(v, str) else str(v) if not isinstance(v, bool) else (
                "true" if v else "false")
        v = self.headers.get("ce-" + attr)
        return None if v is None else urllib.parse.unquote(v)

    def is_structured(self):
        return self.headers.get("content-type", "").lower().startswith("application/cloudevents+json")

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return (f"<{self.method} {self.path} ce-id={self.ce_id} attempt={self.attempt} "
                f"status={self.status} body={self.body[:80]!r}>")


def default_behaviour(req, attempt):
    return (200, {}, b"", 0)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "td-test-fn/1"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self):
        fs = self.server.fn
        req = Request()
        req.t_arrival = time.monotonic()
        req.method = self.command
        req.path = self.path
        req.headers = {k.lower(): v for k, v in self.headers.items()}
        req.body = self._read_body()
        req.t_done = None
        req.t_reply = None
        req.completed = False
        # Set before the request is listed: a snapshot taken while it is being answered sees
        # status None (an unset slot raised AttributeError in test_kafka_released's filter).
        req.status = None
        cid = None
        if req.is_structured():
            try:
                cid = json.loads(req.body).get("id")
            except Exception:
                cid = None
        elif "ce-id" in req.headers:
            cid = urllib.parse.unquote(req.headers["ce-id"])
        req.ce_id = cid
        with fs.lock:
            fs.attempts[(req.path, cid)] = fs.attempts.get((req.path, cid), 0) + 1
            req.attempt = fs.attempts[(req.path, cid)]
            req.seq = len(fs.requests)
            fs.requests.append(req)
            fs.in_flight += 1
        try:
            res = fs.behaviour(req, req.attempt) or default_behaviour(req, req.attempt)
            status, headers, body, delay = res
            if isinstance(body, str):
                body = body.encode()
            if delay:
                time.sleep(delay)
            req.status = status
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            # Headers and body in one write, Nagle off: no 40 ms delayed-ACK stall skews the timings.
            self._headers_buffer.append(b"\r\n")
            self._headers_buffer.append(body)
            # Taken before the write: the peer may act on the answer before this thread runs
            # again, so "answered before X" must compare with this, not with t_done.
            req.t_reply = time.monotonic()
            self.flush_headers()
            req.completed = True
        finally:
            req.t_done = time.monotonic()
            with fs.lock:
                fs.in_flight -= 1

    do_POST = _handle
    do_PUT = _handle
    do_GET = _handle


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog: a test with many triggers can open a thousand connections at once
    # (test_fanout: 20 x concurrency 64). A SYN beyond the backlog is dropped and resent 1 s, then
    # 3 s later, which a 2 s sink timeout turns into failed deliveries; the kernel caps it at
    # net.core.somaxconn (4096 on Debian 12).
    request_queue_size = 2048

    def process_request(self, request, client_address):
        # Every accepted TCP connection, counted before its thread starts: the connection-reuse
        # tests compare it with the concurrency (a client that reuses keep-alive connections
        # opens about as many as it has requests in flight).
        with self.fn.lock:
            self.fn.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        # A client (triggerd) that closes or is killed mid-connection is part of several scenarios.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class FunctionServer:
    """The function triggerd delivers to. behaviour(request, attempt) -> (status, headers, body,
    delay_s); attempt counts requests with the same (path, ce-id), from 1."""

    def __init__(self, behaviour=None, port=None):
        self.behaviour = behaviour or default_behaviour
        self.lock = threading.Lock()
        self.requests = []
        self.attempts = {}
        self.in_flight = 0
        self.connections = 0  # TCP connections accepted so far
        self.httpd = _Server(("127.0.0.1", port or 0), _Handler)
        self.httpd.fn = self
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        at_cleanup(self.stop)

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def snapshot(self, path=None):
        with self.lock:
            reqs = list(self.requests)
        if path is not None:
            reqs = [r for r in reqs if r.path == path]
        return reqs

    def count(self, path=None):
        if path is None:
            with self.lock:
                return len(self.requests)
        return len(self.snapshot(path))

    def accepted(self):
        """TCP connections accepted so far (each new connection a client opened)."""
        with self.lock:
            return self.connections

    def by_id(self, path=None):
        """{ce-id: [requests in arrival order]}"""
        out = {}
        for r in self.snapshot(path):
            out.setdefault(r.ce_id, []).append(r)
        return out

    def ok_ids(self, path=None):
        """ce-ids that got a 2xx answer that was fully written."""
        return {r.ce_id for r in self.snapshot(path) if r.completed and r.status and 200 <= r.status < 300}


# ---------------------------------------------------------------------------------------------------
# triggerd


def redis_source(redis_url, stream, group="g", consumer="c1", claim_idle="2s", max_deliveries=5,
                 block="200ms", **extra):
    d = {"url": redis_url, "stream": stream, "group": group, "consumer": consumer,
         "claim_idle": claim_idle, "max_deliveries": max_deliveries, "block": block}
    d.update(extra)
    if REDIS_TLS and redis_url.startswith("rediss://") and "tls" not in d:
        d["tls"] = redis_tls_default().tls_block()  # the TD_REDIS_TLS mode
    return {"redis": d}


def http_sink(url, mode="binary", timeout="2s"):
    return {"http": {"url": url, "mode": mode, "timeout": timeout}}


def trigger(name, source, sink, etype="com.example.test", esource="/test", **delivery):
    d = {"retry": 2, "backoff": "exponential", "backoff_delay": "100ms", "backoff_max": "1s",
         "retry_after_max": "10s", "timeout": "2s", "concurrency": 16}
    d.update(delivery)
    return {"name": name, "source": source, "event": {"type": etype, "source": esource},
            "sink": sink, "delivery": d}


def config(sources, sinks, triggers, shutdown_grace="5s"):
    return {"version": 1,
            "daemon": {"log": {"format": "json", "level": "debug"}, "shutdown_grace": shutdown_grace},
            "sources": sources, "sinks": sinks, "triggers": triggers}


class Triggerd:
    def __init__(self, cfg, name="triggerd", wrapper=None, env=None):
        """cfg: a dict (dumped as YAML) or a YAML string. wrapper: argv prefix (e.g. valgrind)."""
        self.bin = triggerd_binary()
        self.dir = make_tempdir("td-daemon-")
        self.name = name
        self.config_path = os.path.join(self.dir, "triggerd.yaml")
        if REDIS_TLS:
            cfg = _with_redis_tls(cfg)
        with open(self.config_path, "w") as f:
            f.write(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg, sort_keys=False))
        self.wrapper = wrapper or []
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.runs = 0
        self.stderr_paths = []
        self.t_start = None
        _daemons.append(self)
        at_cleanup(self._cleanup)

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.runs += 1
        path = os.path.join(self.dir, f"stderr-{self.runs}.log")
        self.stderr_paths.append(path)
        self._err = open(path, "wb")
        self._out = open(os.path.join(self.dir, f"stdout-{self.runs}.log"), "wb")
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(self.wrapper + [self.bin, "run", "-c", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
                                     env=self.env)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=10):
        """True when this run logged {"msg": "ready"}; False on timeout or if the process exited."""
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if any(l.get("msg") == "ready" for l in self.logs(run=self.runs)):
                return True
            if not self.running():
                return False
            time.sleep(0.02)
        return False

    def signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def terminate(self):
        self.signal(signal.SIGTERM)

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()

    def wait(self, timeout):
        """Exit status, or None if still running after timeout s (not stretched)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def returncode(self):
        return None if self.proc is None else self.proc.poll()

    def _cleanup(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()
        for f in ("_err", "_out"):
            if hasattr(self, f):
                getattr(self, f).close()

    def raw_lines(self, run=None):
        paths = self.stderr_paths if run is None else [self.stderr_paths[run - 1]]
        out = []
        for p in paths:
            try:
                with open(p, "rb") as f:
                    out.extend(f.read().decode("utf-8", "replace").splitlines())
            except FileNotFoundError:
                pass
        return out

    def logs(self, run=None):
        """Stderr lines parsed as JSON objects; a line that is not JSON becomes {"raw": line}."""
        out = []
        for line in self.raw_lines(run):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                out.append(obj if isinstance(obj, dict) else {"raw": line})
            except ValueError:
                out.append({"raw": line})
        return out

    def sanitizer_reports(self):
        text = "\n".join(self.raw_lines())
        out = []
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "WARNING: ThreadSanitizer", "==ERROR:"):
            i = text.find(marker)
            if i >= 0:
                out.append(text[max(0, i - 200):i + 3000])
        return out

    def dump_tail(self, n=40):
        lines = self.raw_lines()
        log(f"---- last {min(n, len(lines))} of {len(lines)} stderr lines of {self.name} "
            f"(exit {self.returncode()}) ----")
        for l in lines[-n:]:
            log("  " + l[:400])
        log("----")


# ---------------------------------------------------------------------------------------------------
# A frozen broker, and a bounded wait for an exit


class Frozen:
    """A process frozen by frozen(): pid, at (time.monotonic() of its SIGSTOP), resume()."""

    def __init__(self, pid):
        self.pid = pid
        self.at = None
        self._stopped = False

    def stop(self):
        # Marked before the signal: a cleanup run by a signal between the two then still resumes.
        self._stopped = True
        os.kill(self.pid, signal.SIGSTOP)
        self.at = time.monotonic()

    def resume(self):
        """SIGCONT, once: later calls (the end of the with block, then the cleanup) do nothing, so
        a pid reused after the process exited is never signalled."""
        if not self._stopped:
            return
        self._stopped = False
        try:
            os.kill(self.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass  # gone: nothing is left frozen


@contextlib.contextmanager
def frozen(pid):
    """Freezes process pid (SIGSTOP: its sockets stay open and nothing answers) for the with block
    and resumes it (SIGCONT) when the block ends, however it ends. Also a cleanup: registered after
    the broker's fixture, it runs before the fixture stops the broker, also when the test is
    SIGTERM'd (the handler runs the cleanups), so no stop waits on a frozen process and none is
    left frozen. Yields the Frozen."""
    fz = Frozen(pid)
    at_cleanup(fz.resume)
    fz.stop()
    try:
        yield fz
    finally:
        fz.resume()


def exits_within(proc, bound):
    """Waits up to bound s (not stretched: the caller's bound is the check's) for a Triggerd, or a
    subprocess.Popen (`triggerd redrive`), to exit. Returns its exit status; past the bound kills
    it (and waits up to 30 s more for it) and returns None, so the test goes on to its checks and
    the broker's resume."""
    p = proc.proc if isinstance(proc, Triggerd) else proc
    try:
        return p.wait(bound)
    except subprocess.TimeoutExpired:
        p.kill()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            pass
        return None


def _with_redis_tls(cfg):
    """The TD_REDIS_TLS mode: cfg with the default RedisTLS's `tls:` block beside every rediss://
    url that has none (a YAML string is parsed and dumped again)."""
    tree = yaml.safe_load(cfg) if isinstance(cfg, str) else cfg

    def walk(node):
        if isinstance(node, dict):
            url = node.get("url")
            if isinstance(url, str) and url.startswith("rediss://") and "tls" not in node:
                node["tls"] = redis_tls_default().tls_block()
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(tree)
    return tree if not isinstance(cfg, str) else yaml.safe_dump(tree, sort_keys=False)


def run_cli(args, timeout=30, input=None):
    """Runs `triggerd ARGS` to completion: CompletedProcess (stdout/stderr as str). In the
    TD_REDIS_TLS mode, `publish rediss://...` gets the default RedisTLS's --tls-* flags."""
    if (REDIS_TLS and args and args[0] == "publish" and len(args) > 1
            and args[1].startswith("rediss://") and "--tls-ca" not in args):
        args = list(args) + redis_tls_default().cli_flags()
    return subprocess.run([triggerd_binary()] + args, input=input, capture_output=True,
                          timeout=timeout * SLOW, text=isinstance(input, str) or input is None)


def b64(data):
    return base64.b64encode(data).decode()


def rand_delay(lo, hi):
    return random.uniform(lo, hi)
