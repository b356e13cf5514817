"""A real RabbitMQ node for the integration tests, and helpers to talk to it independently.

RabbitMQServer runs /usr/lib/rabbitmq/bin/rabbitmq-server directly (the /usr/sbin wrapper switches
users), in a world of its own under a temporary directory: its own node name, AMQP port, Erlang
distribution port, epmd port (ERL_EPMD_PORT, so parallel nodes never share an epmd), mnesia and log
directories, HOME (where the Erlang cookie lives), config, enabled-plugins and env files. Nothing depends
on, or touches, a system service. Startup takes 5-10 s, so a test file shares one node across its
scenarios (separate queues).

TLS: tls=True adds a TLS listener (tls_port) that asks for no client certificate; tls="mutual" adds
one that requires a client certificate signed by the test CA (ssl_options.verify = verify_peer,
fail_if_no_peer_cert = true) and offers the EXTERNAL mechanism (the rabbitmq_auth_mechanism_ssl
plugin, the user named by the certificate's CN). Either way the plain listener stays, so one node
serves plain and TLS clients. Certificates come from tls_util.CA (openssl, under the node's
temporary directory): self.ca, self.server_cert/server_key, and client_cert(cn) makes more. stop_app()/start_app() simulate a broker restart; at exit the node is shut
down and its epmd killed.

Independent clients: pika (Debian's python3-pika) for declaring, publishing with arbitrary properties
and reading back; `rabbitmqctl list_queues` for ready/unacked counts.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

from harness import (SKIP, SLOW, at_cleanup, free_port, holds_listener, log, make_tempdir,
                     run_test, start_on_free_ports, wait_until)

try:
    import pika
except ImportError:  # the test skips when it cannot talk to the broker independently
    pika = None

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
EPMD = shutil.which("epmd") or "/usr/bin/epmd"


def rabbitmq_available():
    """None when a node can be started here, else the reason to skip."""
    if not os.path.exists(RABBITMQ_SERVER):
        return "rabbitmq-server not installed"
    if pika is None:
        return "python3-pika not installed"
    return None


def run_rabbitmq_test(body):
    """run_test(), but skips (77) when a node cannot be started here (rabbitmq_available())."""
    why = rabbitmq_available()
    if why:
        log(f"SKIP: {why} (scripts/setup-debian.sh installs it)")
        log("0 passed, 0 failed")
        sys.exit(SKIP)
    run_test(body)


def make_tls_files(d):
    """A throw-away CA and a server certificate for localhost / 127.0.0.1 (openssl CLI), in d.
    Returns (ca, cert, key) paths."""
    ca, cakey = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    cert, key, csr = (os.path.join(d, n) for n in ("server.pem", "server.key", "server.csr"))
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run = lambda *a: subprocess.run(["openssl"] + list(a), check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cakey, "-out", ca, "-days", "2",
        "-subj", "/CN=triggerd test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial", "-out", cert,
        "-days", "2", "-extfile", ext)
    os.chmod(key, 0o644)
    return ca, cert, key


def _port_clash(output):
    """The sign in a node's startup output that one of its ports was bound by another process
    before it (see RabbitMQServer.__init__), or None."""
    for sign in ("epmd_port_taken", "dist_port_already_used", "nodistribution", "eaddrinuse"):
        if sign in output:
            return sign
    return None


class RabbitMQServer:
    def __init__(self, config_extra="", tls=False):
        self.dir = make_tempdir("td-rabbit-")
        self.tls = tls
        self.config_extra = config_extra
        self.plugins = []
        if tls == "mutual":
            from tls_util import CA
            self._ca = CA(self.dir, "ca")
            self._serial = 100
            self.ca = self._ca.cert
            self.server_cert, self.server_key = self._ca.issue("rabbit-server", 1)
            self.plugins.append("rabbitmq_auth_mechanism_ssl")
        elif tls:
            self.ca, self.server_cert, self.server_key = make_tls_files(self.dir)
        self.proc = None
        self._epmd = None
        at_cleanup(self.shutdown)
        # The ports come from free_port(): free when asked, but on a loaded machine running tests
        # in parallel another process may bind one before the node does (another test's server,
        # or any client's outgoing connection, whose local port comes from the same ephemeral
        # range). The node then dies at once (dist_port_already_used, eaddrinuse), or its epmd,
        # started first, cannot listen (see _start_epmd); that is no failure of the code under
        # test, so the node starts again on new ports.
        self._configure()

        def new_ports():
            self._kill()  # a node that failed to boot: no polite shutdown
            self._configure()

        start_on_free_ports(lambda: f"rabbitmq node {self.node}", self.start, self._clash,
                            new_ports)

    def _clash(self, e):
        """For a start that failed with e: the sign that another process bound one of the node's
        ports first and the port(s) it stands for (a short text for the log), or None."""
        said = str(e) + self.server_output()
        sign = _port_clash(said)
        if sign is None:
            return None
        roles = {"epmd_port_taken": ("epmd",), "dist_port_already_used": ("dist",),
                 "nodistribution": ("epmd", "dist"), "eaddrinuse": ("AMQP", "TLS")}.get(sign, ())
        ports = {"epmd": self.epmd_port, "dist": self.dist_port, "AMQP": self.port,
                 "TLS": self.tls_port}
        maybe = [(r, ports[r]) for r in roles if ports[r]]
        # the lines with the sign may name the port (eaddrinuse: which listener's)
        text = "\n".join(l for l in (str(e) + "\n" + self.server_output() + "\n" +
                                     self.node_log()).splitlines() if sign in l)
        named = [(r, p) for r, p in maybe if re.search(rf"\b{p}\b", text)]
        return sign + ": " + " or ".join(f"{r} port {p}" for r, p in (named or maybe))

    def _configure(self):
        """Picks the node's ports and writes its name, config and environment for them."""
        config_extra = self.config_extra
        self.tls_port = None
        if self.tls:
            self.tls_port = free_port()
            config_extra += (f"listeners.ssl.default = 127.0.0.1:{self.tls_port}\n"
                             f"ssl_options.cacertfile = {self.ca}\n"
                             f"ssl_options.certfile = {self.server_cert}\n"
                             f"ssl_options.keyfile = {self.server_key}\n")
        if self.tls == "mutual":
            config_extra += ("ssl_options.verify = verify_peer\n"
                             "ssl_options.fail_if_no_peer_cert = true\n"
                             "auth_mechanisms.1 = PLAIN\n"
                             "auth_mechanisms.2 = AMQPLAIN\n"
                             "auth_mechanisms.3 = EXTERNAL\n"
                             "ssl_cert_login_from = common_name\n")
        elif self.tls:
            config_extra += ("ssl_options.verify = verify_none\n"
                             "ssl_options.fail_if_no_peer_cert = false\n")
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = f"td{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2f"
        home = os.path.join(self.dir, "home")
        os.makedirs(home, exist_ok=True)
        for sub in ("mnesia", "log"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[%s].\n" % ",".join(self.plugins))
        with open(os.path.join(self.dir, "rabbitmq-env.conf"), "w") as f:
            f.write("# empty: the environment says everything\n")
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write(f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
                    "disk_free_limit.absolute = 1MB\n"
                    "vm_memory_high_watermark.relative = 0.8\n"
                    "log.console = false\n"
                    "log.file.level = info\n" + config_extra)
        self.env = dict(os.environ,
                        HOME=home,
                        RABBITMQ_NODENAME=self.node,
                        RABBITMQ_NODE_PORT=str(self.port),
                        RABBITMQ_DIST_PORT=str(self.dist_port),
                        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                        RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
                        RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
                        RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.dir, "enabled_plugins"),
                        RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "rabbitmq.conf"),
                        RABBITMQ_CONF_ENV_FILE=os.path.join(self.dir, "rabbitmq-env.conf"),
                        RABBITMQ_PID_FILE=os.path.join(self.dir, "rabbit.pid"),
                        ERL_EPMD_PORT=str(self.epmd_port),
                        # a node that fails to boot (a port clash) writes ~700 KB here, not into
                        # the test's working directory (the build tree)
                        ERL_CRASH_DUMP=os.path.join(self.dir, "erl_crash.dump"))

    # ---- lifecycle ----

    def start(self):
        t0 = time.monotonic()
        self._out = open(os.path.join(self.dir, "server.out"), "wb")
        self._start_epmd()
        self.proc = subprocess.Popen([RABBITMQ_SERVER], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        # await_startup fails at once while the node is not reachable yet: ask until it answers.
        deadline = time.monotonic() + 60 * SLOW
        while True:
            try:
                r = self.ctl("await_startup", "--timeout", "30", timeout=60 * SLOW, check=False)
                said = r.stdout[-800:]
            except subprocess.TimeoutExpired:
                r, said = None, "rabbitmqctl await_startup did not return"
            if (r is not None and r.returncode == 0) or self.proc.poll() is not None or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.3)
        if r is None or r.returncode != 0 or self.proc.poll() is not None:
            raise RuntimeError(f"rabbitmq-server did not start: {said} "
                               f"{self.server_output()[-1500:]}")
        # A TLS listener whose port is taken does not fail the boot: the node logs eaddrinuse and
        # runs on without it, and a test's TLS client would reach whatever holds the port.
        ports = [self.port] + ([self.tls_port] if self.tls_port else [])
        beam = self.beam_pid()
        wait_until(lambda: (all(holds_listener(beam, p) for p in ports) or
                            "eaddrinuse" in self.node_log()), 10 * SLOW, interval=0.1)
        missing = [p for p in ports if not holds_listener(beam, p)]
        if missing:
            said = [l[-300:] for l in self.node_log().splitlines() if "eaddrinuse" in l]
            raise RuntimeError(f"rabbitmq node {self.node} does not listen on 127.0.0.1:"
                               f"{missing}: {said[:2]}")
        log(f"rabbitmq node {self.node} on 127.0.0.1:{self.port} up in "
            f"{time.monotonic() - t0:.1f}s")

    def _start_epmd(self):
        """Starts the node's epmd on epmd_port, as a process of ours, and waits until it listens.
        Left to erl (`epmd -daemon`), an epmd whose port is taken exits without a word, and the
        node and every rabbitmqctl then talk to whatever holds the port: a listening server that
        never answers (another test's HTTP server) kept the node waiting ~20 s for its registration
        and rabbitmqctl past any timeout, and `epmd -kill` at shutdown hung too. Started here, the
        epmd that cannot listen exits at once, before there is a node to wait for; the epmds erl
        and rabbitmqctl spawn find the port taken by ours and leave."""
        self._epmd = subprocess.Popen([EPMD, "-address", "127.0.0.1", "-port", str(self.epmd_port)],
                                      stdin=subprocess.DEVNULL, stdout=self._out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        listens = wait_until(lambda: (self._epmd.poll() is not None or
                                      holds_listener(self._epmd.pid, self.epmd_port)), 10 * SLOW,
                             interval=0.02)
        if self._epmd.poll() is not None:
            raise RuntimeError(f"epmd_port_taken: epmd could not listen on 127.0.0.1:"
                               f"{self.epmd_port}")
        if not listens:
            raise RuntimeError(f"epmd did not listen on 127.0.0.1:{self.epmd_port}")

    def client_cert(self, cn):
        """A client certificate with CN=cn signed by the node's CA (tls="mutual"): (cert, key)."""
        self._serial += 1
        return self._ca.issue(f"client-{self._serial}", self._serial, client=True, cn=cn)

    def add_cert_user(self, name, tags=""):
        """A user with no password at all (it can log in only with EXTERNAL, as the CN of a
        client certificate) and every permission on the default vhost."""
        self.ctl("add_user", name, "unused")
        self.ctl("clear_password", name)
        self.ctl("set_permissions", "-p", "/", name, ".*", ".*", ".*")
        if tags:
            self.ctl("set_user_tags", name, tags)

    def add_user(self, name, password):
        self.ctl("add_user", name, password)
        self.ctl("set_permissions", "-p", "/", name, ".*", ".*", ".*")

    def ctl(self, *args, timeout=60, check=True):
        r = subprocess.run([RABBITMQCTL, "-n", self.node, "-q"] + list(args), env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {r.stdout} {r.stderr}")
        return r

    def stop_app(self):
        """Stops the broker application (connections drop, the port closes); the node stays."""
        self.ctl("stop_app", timeout=60 * SLOW)

    def start_app(self):
        self.ctl("start_app", timeout=60 * SLOW)
        self.ctl("await_startup", timeout=60 * SLOW)

    def beam_pid(self):
        """The OS pid of the node's Erlang VM (beam.smp), which holds the AMQP sockets: self.proc
        is the rabbitmq-server script, which may run it as a child. From RABBITMQ_PID_FILE, else
        the beam process whose command line names this node."""
        def is_beam(pid):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    return f.read().startswith("beam")
            except OSError:
                return False

        try:
            with open(self.env["RABBITMQ_PID_FILE"]) as f:
                pid = int(f.read().strip())
            if is_beam(pid):
                return pid
        except (OSError, ValueError):
            pass
        for d in os.listdir("/proc"):
            if not d.isdigit() or not is_beam(int(d)):
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if self.node.encode() in args:
                return int(d)
        raise RuntimeError(f"no beam.smp process found for node {self.node}")

    def server_output(self):
        try:
            with open(os.path.join(self.dir, "server.out"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def node_log(self):
        """The node's own log file (log.file.level = info), where listener errors go."""
        try:
            with open(os.path.join(self.dir, "log", f"{self.node}.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def shutdown(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.ctl("shutdown", timeout=30, check=False)
            except subprocess.TimeoutExpired:
                pass  # killed below
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        self._kill()

    def _kill(self):
        """Kills the node (rabbitmq-server, its VM and their children) and its epmd, if running:
        the end of shutdown(), and all of it for a node that failed to boot."""
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
        self.proc = None
        if self._epmd is not None:
            self._epmd.kill()
            self._epmd.wait()
            self._epmd = None
        if hasattr(self, "_out"):
            self._out.close()

    # ---- independent client ----

    def connection(self):
        params = pika.ConnectionParameters(host="127.0.0.1", port=self.port,
                                           credentials=pika.PlainCredentials("guest", "guest"),
                                           heartbeat=0, blocked_connection_timeout=30)
        return pika.BlockingConnection(params)

    def channel(self):
        """A fresh connection's channel (the connection closes with the test)."""
        conn = self.connection()

        def close():
            try:
                if conn.is_open:
                    conn.close()
            except Exception:  # the broker may have closed it first
                pass

        at_cleanup(close)
        return conn.channel()

    def queue_counts(self, queue):
        """(messages_ready, messages_unacknowledged) from rabbitmqctl, or None if no such queue."""
        r = self.ctl("list_queues", "name", "messages_ready", "messages_unacknowledged",
                     check=False)
        for line in r.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[0] == queue:
                return int(parts[1]), int(parts[2])
        return None

    def consumers(self, queue):
        r = self.ctl("list_queues", "name", "consumers", check=False)
        for line in r.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) == 2 and parts[0] == queue:
                return int(parts[1])
        return 0

    def drained(self, queue):
        c = self.queue_counts(queue)
        return c == (0, 0)


def declare_queue(ch, name, durable=True, arguments=None):
    ch.queue_declare(queue=name, durable=durable, arguments=arguments or {})


def publish_many(ch, queue, n, body_fn=None, props_fn=None, exchange=""):
    """Publishes n persistent messages with publisher confirms; returns the message ids in order
    (message_id = f"{queue}-{i}" unless props_fn sets its own)."""
    ch.confirm_delivery()
    ids = []
    for i in range(n):
        body = body_fn(i) if body_fn else ('{"n": %d}' % i).encode()
        props = props_fn(i) if props_fn else None
        if props is None:
            props = pika.BasicProperties(message_id=f"{queue}-{i}", delivery_mode=2,
                                         content_type="application/json")
        ch.basic_publish(exchange=exchange, routing_key=queue, body=body, properties=props)
        ids.append(props.message_id)
    return ids


def read_all(ch, queue, timeout=2.0):
    """Gets (and acks) every message in queue: [(properties, body)]."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        method, props, body = ch.basic_get(queue=queue, auto_ack=True)
        if method is None:
            if time.monotonic() >= deadline:
                return out
            time.sleep(0.05)
            continue
        deadline = time.monotonic() + 0.3
        out.append((props, body))


def rabbit_source(url, queue, prefetch=50, heartbeat="10s", **extra):
    d = {"url": url, "queue": queue, "prefetch": prefetch, "heartbeat": heartbeat}
    d.update(extra)
    return {"rabbitmq": d}


def rabbit_sink(url, exchange, routing_key=None):
    d = {"url": url, "exchange": exchange}
    if routing_key is not None:
        d["routing_key"] = routing_key
    return {"rabbitmq": d}


def wait_drained(rmq, queue, timeout):
    return wait_until(lambda: rmq.drained(queue), timeout * SLOW, interval=0.2,
                      desc=f"queue {queue} empty with no unacked messages")
