"""Kafka fixtures for the triggerd integration tests (the Redis ones are in harness.py).

KafkaBroker is a real Apache Kafka broker: its jars come from Maven Central through
tests/kafka/pom.xml (`mvn dependency:copy-dependencies`), cached outside the build tree in
${XDG_CACHE_HOME:-~/.cache}/triggerd/kafka-<version>/, once per machine (a file lock keeps two
tests from fetching at the same time). Each test file starts one KRaft node (broker and controller
in one JVM, Java 17, -Xmx512m) on free loopback ports with a log directory of its own, and stops it
and removes everything at exit. When another process bound one of those ports before the broker
could, the broker starts again on new ones (up to 3 tries), its storage formatted for them.

The tests read and write Kafka with independent clients: kcat (Debian's, librdkafka-based) for
bulk produce and consume, and tests/kafka/KafkaTool.java (Kafka's own Java client, compiled once
into the cache) for topic creation, the broker's view of a group's committed offsets, and records
kcat cannot produce (binary header values, 10 000 headers, a 1 MiB header).
"""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SKIP, SLOW, at_cleanup, free_port, holds_listener, log,  # noqa: E402
                     make_tempdir, run_test, start_on_free_ports, wait_until)

KAFKA_VERSION = os.environ.get("TD_KAFKA_VERSION", "4.1.0")
SRC = os.environ.get("TD_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "..", ".."))
POM = os.path.join(SRC, "tests", "kafka", "pom.xml")
TOOL_SRC = os.path.join(SRC, "tests", "kafka", "KafkaTool.java")


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "triggerd", f"kafka-{KAFKA_VERSION}")


def missing_tools():
    return [t for t in ("java", "javac", "mvn", "kcat") if shutil.which(t) is None]


def ensure_kafka():
    """Fetches the broker's jars and compiles KafkaTool once; returns the cache directory."""
    d = cache_dir()
    os.makedirs(d, exist_ok=True)
    libs = os.path.join(d, "libs")
    classes = os.path.join(d, "classes")
    with open(os.path.join(d, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(libs, ".complete")):
            tmp = libs + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            log(f"fetching Kafka {KAFKA_VERSION} with Maven into {libs}")
            subprocess.run(["mvn", "-q", "-B", "-f", POM, f"-Dkafka.version={KAFKA_VERSION}",
                            "dependency:copy-dependencies", f"-DoutputDirectory={tmp}",
                            "-DincludeScope=runtime"], check=True, timeout=600)
            shutil.rmtree(libs, ignore_errors=True)
            os.rename(tmp, libs)
            open(os.path.join(libs, ".complete"), "w").close()
        stamp = os.path.join(classes, "KafkaTool.class")
        if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(TOOL_SRC):
            os.makedirs(classes, exist_ok=True)
            subprocess.run(["javac", "-nowarn", "-cp", os.path.join(libs, "*"), "-d", classes,
                            TOOL_SRC], check=True, timeout=300)
        fcntl.flock(lock, fcntl.LOCK_UN)
    return d


class KafkaBroker:
    """One KRaft node on 127.0.0.1:port. stop()/start() keep the data (a broker restart).

    Secure listeners, besides the PLAINTEXT one the test's own clients use:
    tls=(ca_pem, cert_pem, key_pem) adds SSL on ssl_port, which requires a client certificate
    signed by that CA (ssl.client.auth=required); with scram={user: password} (SCRAM-SHA-512
    users created at format time, `--add-scram`), plain={user: password} (SASL PLAIN, the users
    in the listener's JAAS configuration) and/or oauth=True (OAUTHBEARER with Kafka's
    default validator, which accepts unsecured JWTs: alg none, sub and exp claims), SASL_SSL on
    sasl_port (no client certificate there, the SASL credentials are the identity). The
    keystore and truststore are the PEM files as they are (ssl.keystore.type=PEM).
    sasl_plaintext=True (with plain=..., tls or not) adds SASL_PLAINTEXT on sasl_plaintext_port:
    SASL PLAIN over plain TCP, the same users, only PLAIN enabled there."""

    def __init__(self, tls=None, scram=None, oauth=False, plain=None, sasl_plaintext=False):
        if sasl_plaintext and not plain:
            raise ValueError("sasl_plaintext needs plain={user: password}")
        self.cache = ensure_kafka()
        self.cp = os.path.join(self.cache, "libs", "*")
        self.tool_cp = os.path.join(self.cache, "classes") + ":" + self.cp
        self.dir = make_tempdir("td-kafka-")
        self.proc = None
        self.runs = 0
        self.props = os.path.join(self.dir, "server.properties")
        self._tls, self._scram, self._oauth, self._plain = tls, scram, oauth, plain
        self._sasl_plaintext = sasl_plaintext
        if tls:
            _, cert, key = tls
            self._keystore = os.path.join(self.dir, "broker-keystore.pem")
            with open(self._keystore, "w") as out:  # Kafka's PEM keystore: the key, then the chain
                for part in (key, cert):
                    with open(part) as f:
                        out.write(f.read())
        cluster = subprocess.run(["java", "-cp", self.cp, "kafka.tools.StorageTool", "random-uuid"],
                                 capture_output=True, text=True, check=True, timeout=120)
        self._cluster_id = cluster.stdout.strip().splitlines()[-1]
        at_cleanup(self.stop)
        # The ports come from free_port(): free when asked, but on a loaded machine running tests
        # in parallel another process may bind one before the broker does (another test's server,
        # or any outgoing connection, whose local port comes from the same ephemeral range). The
        # broker then cannot open that listener and exits; that is no failure of the code under
        # test, so it starts again on new ports, with storage formatted for them (the controller's
        # port is in the quorum's voter set written at format time).
        self._configure()

        def new_ports():
            self.kill()  # a broker that could not bind may still be shutting down
            self._configure()

        start_on_free_ports("kafka broker", self.start, lambda _: self._port_clash(), new_ports)

    def _configure(self):
        """Picks the broker's ports, writes server.properties for them and formats a fresh log
        directory with them."""
        tls, scram, oauth, plain = self._tls, self._scram, self._oauth, self._plain
        self.port = free_port()
        self.cport = free_port()
        while self.cport == self.port:
            self.cport = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        taken = {self.port, self.cport}
        listeners = [f"PLAINTEXT://127.0.0.1:{self.port}"]
        secure = ""
        plain_jaas = ("org.apache.kafka.common.security.plain.PlainLoginModule required " +
                      " ".join(f'user_{u}="{p}"' for u, p in (plain or {}).items()) + ";")
        if tls:
            ca = tls[0]
            secure += f"""ssl.keystore.type=PEM
ssl.keystore.location={self._keystore}
ssl.truststore.type=PEM
ssl.truststore.location={ca}
ssl.endpoint.identification.algorithm=
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.ssl.client.auth=none
"""
            self.ssl_port = self._another_port(taken)
            self.ssl_bootstrap = f"127.0.0.1:{self.ssl_port}"
            listeners.append(f"SSL://127.0.0.1:{self.ssl_port}")
            if scram or oauth or plain:
                self.sasl_port = self._another_port(taken)
                self.sasl_bootstrap = f"127.0.0.1:{self.sasl_port}"
                listeners.append(f"SASL_SSL://127.0.0.1:{self.sasl_port}")
                mechs = ((["SCRAM-SHA-512"] if scram else []) + (["OAUTHBEARER"] if oauth else []) +
                         (["PLAIN"] if plain else []))
                secure += "sasl.enabled.mechanisms=" + ",".join(mechs) + "\n"
                if scram:
                    secure += ("listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
                               "org.apache.kafka.common.security.scram.ScramLoginModule "
                               "required;\n")
                if plain:
                    secure += ("listener.name.sasl_ssl.plain.sasl.jaas.config=" +
                               plain_jaas + "\n")
                if oauth:
                    secure += ("listener.name.sasl_ssl.oauthbearer.sasl.jaas.config="
                               "org.apache.kafka.common.security.oauthbearer."
                               "OAuthBearerLoginModule required "
                               "unsecuredLoginStringClaim_sub=\"broker\";\n")
        if self._sasl_plaintext:
            self.sasl_plaintext_port = self._another_port(taken)
            self.sasl_plaintext_bootstrap = f"127.0.0.1:{self.sasl_plaintext_port}"
            listeners.append(f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_plaintext_port}")
            # its own mechanism list: the SASL_SSL one may name mechanisms configured only there
            secure += ("listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN\n"
                       "listener.name.sasl_plaintext.plain.sasl.jaas.config=" + plain_jaas + "\n")
        names = ",".join(l.split(":")[0] for l in listeners)
        with open(self.props, "w") as f:
            f.write(f"""process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{self.cport}
listeners={",".join(listeners)},CONTROLLER://127.0.0.1:{self.cport}
advertised.listeners={",".join(listeners)}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,{",".join(n + ":" + n for n in names.split(","))}
{secure}log.dirs={self.dir}/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
message.max.bytes=4194304
""")
        # A retry's new controller port must be in the voter set: a fresh directory, formatted
        # with this file, never one formatted for the ports of the attempt before.
        shutil.rmtree(os.path.join(self.dir, "data"), ignore_errors=True)
        users = []
        for user, password in (scram or {}).items():
            users += ["--add-scram", f"SCRAM-SHA-512=[name=\"{user}\",password=\"{password}\"]"]
        subprocess.run(["java", "-cp", self.cp, "kafka.tools.StorageTool", "format", "--standalone",
                        "-t", self._cluster_id, "-c", self.props] + users, capture_output=True,
                       check=True, timeout=120)

    @staticmethod
    def _another_port(taken):
        p = free_port()
        while p in taken:
            p = free_port()
        taken.add(p)
        return p

    def start(self):
        self.runs += 1
        if getattr(self, "_log", None):
            self._log.close()
        self._log = open(os.path.join(self.dir, f"broker-{self.runs}.log"), "wb")
        self.proc = subprocess.Popen(
            ["java", "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
             "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", self.cp, "kafka.Kafka",
             self.props], stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        # wait_until takes a predicate's exception for "not yet": a broker that exited, or that
        # could not open a listener (it takes a while to shut down after), ends the wait itself
        # instead of running out the 60 s
        up = wait_until(lambda: (self.proc.poll() is not None or self._port_clash() or
                                 self._answers()), 60 * SLOW, interval=0.25)
        if self.proc.poll() is not None:
            raise RuntimeError("the Kafka broker exited: " + self.log_tail())
        clash = self._port_clash()
        if clash:
            raise RuntimeError(f"the Kafka broker could not open a listener ({clash}): " +
                               self.log_tail())
        if not up:
            raise RuntimeError("the Kafka broker did not answer: " + self.log_tail())

    def _answers(self):
        r = subprocess.run(["kcat", "-b", self.bootstrap, "-L", "-m", "2"], capture_output=True,
                           text=True, timeout=10)
        # another process's Kafka broker on our port (one whose free_port() gave it the same
        # number) answers as well as ours would, until ours fails to bind it
        return (r.returncode == 0 and "1 brokers" in r.stdout and
                holds_listener(self.proc.pid, self.port))

    def _port_clash(self):
        """The line in this run's log saying a listener's port was bound by another process
        (Kafka's SocketServer: "Socket server failed to bind to 127.0.0.1:N: Address already in
        use"), or None."""
        for line in self.log_tail(n=None).splitlines():
            if "Address already in use" in line:
                return line.strip()[-200:]
        return None

    def log_tail(self, n=3000):
        """The last n characters of the current run's log (all of it with n=None)."""
        try:
            with open(os.path.join(self.dir, f"broker-{self.runs}.log"), "rb") as f:
                text = f.read().decode("utf-8", "replace")
                return text if n is None else text[-n:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- the independent clients

    def tool(self, *args, timeout=60):
        r = subprocess.run(["java", "-Xmx128m", "-XX:+UseSerialGC",
                            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", self.tool_cp,
                            "KafkaTool"] + list(args), capture_output=True, text=True,
                           timeout=timeout * SLOW)
        if r.returncode != 0:
            raise RuntimeError(f"KafkaTool {args[0]} failed: {r.stderr[-2000:]}")
        return r.stdout

    def create_topic(self, topic, partitions=1):
        self.tool("create", self.bootstrap, topic, str(partitions))

    def offsets(self, group, topic):
        """({partition: committed}, {partition: end offset}) as the broker sees them."""
        o = json.loads(self.tool("offsets", self.bootstrap, group, topic))
        return ({int(k): v for k, v in o["committed"].items()},
                {int(k): v for k, v in o["end"].items()})

    def produce(self, topic, records, partition=None):
        """records: [(key or None, value)] (str/bytes without tabs or newlines), via kcat,
        idempotent, acks=all."""
        lines = []
        for key, value in records:
            k = key.encode() if isinstance(key, str) else (key or b"")
            v = value.encode() if isinstance(value, str) else value
            lines.append(k + b"\t" + v)
        args = ["kcat", "-b", self.bootstrap, "-P", "-t", topic, "-K", "\t",
                "-X", "enable.idempotence=true", "-X", "acks=all", "-X", "linger.ms=5"]
        if partition is not None:
            args += ["-p", str(partition)]
        subprocess.run(args, input=b"\n".join(lines) + b"\n", check=True, timeout=120 * SLOW,
                       capture_output=True)

    def consume(self, topic, timeout=60):
        """Every record of topic from the beginning, as dicts (kcat -J: topic, partition, offset,
        key, payload, headers [k, v, k, v...])."""
        r = subprocess.run(["kcat", "-b", self.bootstrap, "-C", "-t", topic, "-o", "beginning",
                            "-e", "-J", "-q"], capture_output=True, timeout=timeout * SLOW)
        out = []
        for line in r.stdout.decode("utf-8", "replace").splitlines():
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out


def librdkafka_version():
    """The version of the librdkafka triggerd and kcat link (rd_kafka_version(): 0xMMmmrrxx)."""
    import ctypes
    return ctypes.CDLL("librdkafka.so.1").rd_kafka_version()


# SCRAM against Kafka 4.x needs librdkafka 2.6.1 or later: earlier versions append the client
# nonce twice in the client-final-message, which Kafka 4's strict RFC 5802 check refuses
# ("invalid credentials"; confluentinc/librdkafka#4895). Debian 12 has 2.0.2.
SCRAM_WITH_KAFKA4 = 0x020601ff


def kafka_source(broker, topics, group="g", start="earliest", **properties):
    props = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500",
             "topic.metadata.refresh.interval.ms": "2000"}
    props.update({k.replace("_", "."): str(v) for k, v in properties.items()})
    return {"kafka": {"brokers": broker.bootstrap, "topics": topics, "group": group,
                      "start": start, "properties": props}}


def kafka_sink(broker, topic):
    return {"kafka": {"brokers": broker.bootstrap, "topic": topic}}


def header_map(record):
    """kcat -J headers [k1, v1, k2, v2, ...] -> {k: v} (last wins)."""
    h = record.get("headers") or []
    return {h[i]: h[i + 1] for i in range(0, len(h) - 1, 2)}


def run_kafka_test(body):
    """run_test(), but skips (77) when Java, Maven or kcat are truly absent."""
    missing = missing_tools()
    if missing:
        log("SKIP: missing " + ", ".join(missing) + " (scripts/setup-debian.sh installs them)")
        log("0 passed, 0 failed")
        sys.exit(SKIP)
    run_test(body)


def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0
