"""One adapter per source kind for the chaos harness: starts the real broker (and a Redis server for
the dead-letter stream), writes the load, gives the daemon's source block, restarts the broker, and
answers the broker-side questions the invariants ask:

- produced(): the authoritative set of events after the run ({n: key}), read back from the broker
  where it keeps them (Redis XRANGE, Kafka topic), or the publisher-confirmed ones (RabbitMQ);
- ack_sample(): a snapshot of what the broker considers acknowledged, taken during the run;
  acked_in(sample) turns it into the event numbers acknowledged at that moment (Kafka, Redis) -
  RabbitMQ cannot name them, so its sample is the queue depth and the number of confirmed publishes;
- drained(): the broker has no backlog (Kafka committed == end, Redis nothing pending and every entry
  read by the group, RabbitMQ 0 ready and 0 unacknowledged).
"""

import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import SLOW, RedisServer, log, make_tempdir  # noqa: E402

KEYS = 16


def key_of(n):
    return f"key{n % KEYS}"


class _Producer:
    """Writes events 0, 1, 2, ... at a steady rate from a thread until stop(); write(n) is the
    broker-specific part. Returns nothing: what was produced is read back from the broker later."""

    def __init__(self, rate, write):
        self.rate = rate
        self.write = write
        self.next_n = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()

    def _run(self):
        t0 = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - t0) * self.rate)
            while self.next_n < due and not self._stop.is_set():
                self.write(self.next_n)
                self.next_n += 1
            time.sleep(0.01)

    def stop(self):
        self._stop.set()
        self.thread.join(120)


class RedisAdapter:
    kind = "redis"
    infra_faults = ["kill", "second_daemon", "broker_restart", "reload"]
    drain_bound = 60.0
    dup_window = 20.0  # claim_idle 2 s, reconnect backoff
    checks_ordering = False
    tuning_keys = ("concurrency", "max_inflight")

    def setup(self):
        self.rs = RedisServer()
        self.dl = self.rs  # the dead-letter stream lives on the same server (restarted with it)
        self.cl = self.rs.client(socket_timeout=5)
        self.stream, self.group = "chaos", "g"
        self.uncertain = set()
        # Created here, before any daemon, so the group sees every entry from the first.
        self.cl.xgroup_create(self.stream, self.group, id="0", mkstream=True)

    def source(self, consumer, tuning):
        d = harness.redis_source(self.rs.url, self.stream, group=self.group, consumer=consumer,
                                 claim_idle="2s", max_deliveries=20, block="200ms")
        d["max_inflight"] = tuning["max_inflight"]
        return d

    def dead_letter_sink(self):
        return {"redis": {"url": self.rs.url, "stream": "dead"}}

    def start_load(self, rate):
        def write(n):
            try:
                self.cl.xadd(self.stream, {"n": str(n), "k": key_of(n)})
            except Exception:  # Redis is restarting: this one may or may not be in the stream
                self.uncertain.add(n)
                time.sleep(0.05)
        self.producer = _Producer(rate, write)
        self.producer.start()

    def stop_load(self):
        self.producer.stop()

    def broker_down(self):
        self.rs.stop()

    def broker_up(self):
        self.rs.start()

    def _entries(self):
        out = {}
        for eid, f in harness.read_stream(self.cl, self.stream):
            out[eid] = int(f["n"])
        return out

    def produced(self):
        self.entries = self._entries()
        return {n: key_of(n) for n in self.entries.values()}

    def ack_sample(self):
        p = self.cl.pipeline(transaction=True)  # one atomic view: pending and last-delivered
        p.xinfo_groups(self.stream)
        p.xpending_range(self.stream, self.group, "-", "+", 1000000)
        groups, pend = p.execute()
        last = None
        for g in groups:
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            if name == self.group:
                last = g["last-delivered-id"]
                last = last.decode() if isinstance(last, bytes) else last
        ids = set()
        for e in pend:
            mid = e["message_id"]
            ids.add(mid.decode() if isinstance(mid, bytes) else mid)
        return {"last": last, "pending": ids}

    def acked_in(self, sample):
        if sample["last"] is None:
            return set()
        lk = harness.id_key(sample["last"])
        return {n for eid, n in self.entries.items()
                if harness.id_key(eid) <= lk and eid not in sample["pending"]}

    def drained(self):
        s = self.ack_sample()
        last_id = self.cl.xrevrange(self.stream, "+", "-", count=1)
        last_id = last_id[0][0].decode() if last_id else None
        return not s["pending"] and s["last"] == last_id

    def backlog(self):
        s = self.ack_sample()
        return f"pending={len(s['pending'])} last-delivered={s['last']} xlen={self.cl.xlen(self.stream)}"

    def close(self):
        pass


class KafkaAdapter:
    kind = "kafka"
    infra_faults = ["kill", "second_daemon", "broker_restart", "reload"]
    drain_bound = 120.0  # a killed member is only dropped after session.timeout.ms, then a rejoin
    dup_window = 40.0
    checks_ordering = True
    PARTITIONS = 4
    tuning_keys = ("concurrency", "max_inflight")

    def setup(self):
        from kafka_fixture import KafkaBroker, missing_tools
        if missing_tools():
            raise SystemExit(77)
        self.kafka = KafkaBroker()
        self.topic, self.group = "chaos", "chaos"
        self.kafka.create_topic(self.topic, self.PARTITIONS)
        self.rs = RedisServer()  # only the dead-letter stream; never restarted
        self.dl = self.rs
        self.uncertain = set()
        self.dir = make_tempdir("td-chaos-kafka-")

    def source(self, consumer, tuning):
        from kafka_fixture import kafka_source
        d = kafka_source(self.kafka, [self.topic], group=self.group)
        d["max_inflight"] = tuning["max_inflight"]
        return d

    def dead_letter_sink(self):
        return {"redis": {"url": self.rs.url, "stream": "dead"}}

    def _spawn_kcat(self):
        self.kcat = subprocess.Popen(
            ["kcat", "-b", self.kafka.bootstrap, "-P", "-t", self.topic, "-K", "\t",
             "-X", "enable.idempotence=true", "-X", "acks=all", "-X", "linger.ms=5"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._perr)

    def start_load(self, rate):
        # A long-lived kcat producer (idempotent, acks=all) keeps the load in order per key. kcat
        # gives up when every broker is down: then a new one is started, and the lines the old one
        # had not sent are simply not in the topic (what was produced is read back from it).
        self._perr = open(os.path.join(self.dir, "kcat-producer.log"), "wb")
        self._spawn_kcat()

        def write(n):
            line = f"{key_of(n)}\t{json.dumps({'n': n, 'k': key_of(n)})}\n".encode()
            try:
                if self.kcat.poll() is not None:
                    raise BrokenPipeError("kcat exited")
                self.kcat.stdin.write(line)
                self.kcat.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.uncertain.add(n)
                try:
                    self.kcat.kill()
                    self.kcat.wait()
                except OSError:
                    pass
                time.sleep(0.2)
                self._spawn_kcat()
        self.producer = _Producer(rate, write)
        self.producer.start()

    def stop_load(self):
        self.producer.stop()
        try:
            self.kcat.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.kcat.wait(120 * SLOW)
        except subprocess.TimeoutExpired:
            self.kcat.kill()
            log("kcat producer did not finish flushing in time")

    def broker_down(self):
        self.kafka.stop()

    def broker_up(self):
        self.kafka.start()

    def produced(self):
        recs = self.kafka.consume(self.topic)
        self.where = {}  # (partition, offset) -> n
        self.order = {}  # n -> (partition, offset)
        out = {}
        for r in recs:
            try:
                d = json.loads(r["payload"])
            except (ValueError, TypeError):
                continue
            n = int(d["n"])
            self.where[(r["partition"], r["offset"])] = n
            self.order.setdefault(n, (r["partition"], r["offset"]))
            out[n] = r.get("key") or key_of(n)
        return out

    def ack_sample(self):
        committed, end = self.kafka.offsets(self.group, self.topic)
        return {"committed": committed, "end": end}

    def acked_in(self, sample):
        out = set()
        for (p, o), n in self.where.items():
            c = sample["committed"].get(p)
            if c is not None and c >= 0 and o < c:
                out.add(n)
        return out

    def drained(self):
        committed, end = self.kafka.offsets(self.group, self.topic)
        return all(committed.get(p, -1) == e for p, e in end.items())

    def backlog(self):
        committed, end = self.kafka.offsets(self.group, self.topic)
        return f"committed={committed} end={end}"

    def close(self):
        pass


class RabbitAdapter:
    kind = "rabbitmq"
    infra_faults = ["kill", "second_daemon", "broker_restart", "reload"]
    drain_bound = 60.0
    dup_window = 20.0
    checks_ordering = False
    tuning_keys = ("concurrency", "max_inflight", "prefetch")

    def setup(self):
        from rabbitmq_fixture import RabbitMQServer, rabbitmq_available
        if rabbitmq_available():
            log("SKIP: " + rabbitmq_available())
            raise SystemExit(77)
        self.rmq = RabbitMQServer()
        self.queue = "chaos"
        ch = self.rmq.channel()
        ch.queue_declare(queue=self.queue, durable=True)
        self.rs = RedisServer()  # the dead-letter stream; never restarted
        self.dl = self.rs
        self.uncertain = set()
        self.confirmed = []  # (monotonic time of the confirm, n), in order
        self._lock = threading.Lock()
        self.conn = None

    def source(self, consumer, tuning):
        from rabbitmq_fixture import rabbit_source
        d = rabbit_source(self.rmq.url, self.queue, prefetch=tuning["prefetch"], heartbeat="5s",
                          max_deliveries=20)
        d["max_inflight"] = tuning["max_inflight"]
        return d

    def dead_letter_sink(self):
        return {"redis": {"url": self.rs.url, "stream": "dead"}}

    def _channel(self):
        if self.conn is None or not self.conn.is_open:
            self.conn = self.rmq.connection()
            self.ch = self.conn.channel()
            self.ch.confirm_delivery()
        return self.ch

    def start_load(self, rate):
        import pika

        def write(n):
            try:
                ch = self._channel()
                ch.basic_publish(exchange="", routing_key=self.queue,
                                 body=json.dumps({"n": n, "k": key_of(n)}).encode(),
                                 properties=pika.BasicProperties(message_id=f"ev-{n}",
                                                                 delivery_mode=2,
                                                                 content_type="application/json"))
                with self._lock:
                    self.confirmed.append((time.monotonic(), n))
            except Exception:  # the broker is restarting: maybe in the queue, maybe not
                self.uncertain.add(n)
                self.conn = None
                time.sleep(0.2)
        self.producer = _Producer(rate, write)
        self.producer.start()

    def stop_load(self):
        self.producer.stop()
        try:
            if self.conn is not None and self.conn.is_open:
                self.conn.close()
        except Exception:
            pass

    def broker_down(self):
        self.rmq.stop_app()

    def broker_up(self):
        self.rmq.start_app()

    def produced(self):
        with self._lock:
            return {n: key_of(n) for _, n in self.confirmed}

    def ack_sample(self):
        t_before = time.monotonic()
        c = self.rmq.queue_counts(self.queue)
        if c is None:
            return None
        with self._lock:
            confirmed_before = sum(1 for t, _ in self.confirmed if t <= t_before)
            ns = {n for t, n in self.confirmed if t <= t_before}
        return {"depth": c[0] + c[1], "confirmed": confirmed_before, "ns": ns}

    def acked_in(self, sample):
        return None  # RabbitMQ cannot name them: see invariants.check_ack_after_outcome

    def drained(self):
        return self.rmq.queue_counts(self.queue) == (0, 0)

    def backlog(self):
        return f"ready, unacked = {self.rmq.queue_counts(self.queue)}"

    def close(self):
        pass


ADAPTERS = {"redis": RedisAdapter, "kafka": KafkaAdapter, "rabbitmq": RabbitAdapter}
