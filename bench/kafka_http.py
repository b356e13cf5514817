#!/usr/bin/python3
"""kafka_http.py - the Python half of bench/kafka-http (see there). Starts a Kafka broker with the
tests' fixture (tests/integration/kafka_fixture.py: jars from Maven Central, cached), nginx and
triggerd on loopback ports of their own, and stops all of them at exit."""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import at_cleanup, free_port, make_tempdir, wait_until  # noqa: E402
from kafka_fixture import KafkaBroker, missing_tools  # noqa: E402

BODY_SIZE = 1024


def say(msg):
    print("==> " + msg, file=sys.stderr, flush=True)


def start(args, **kw):
    p = subprocess.Popen(args, **kw)

    def stop():
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    at_cleanup(stop)
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", "--records", type=int, default=int(os.environ.get("RECORDS", 100000)))
    ap.add_argument("-c", "--concurrency", type=int,
                    default=int(os.environ.get("CONCURRENCY", 64)))
    ap.add_argument("-p", "--partitions", type=int, default=int(os.environ.get("PARTITIONS", 3)))
    ap.add_argument("-d", "--duration", default=os.environ.get("WRK_DURATION", "5s"))
    a = ap.parse_args()
    td = os.environ["TRIGGERD"]
    missing = missing_tools() + [t for t in ("nginx", "wrk") if not _which(t)]
    if missing:
        sys.exit("kafka-http: missing " + ", ".join(missing) + ": run scripts/setup-debian.sh")
    tmp = make_tempdir("triggerd-kbench-")
    body = ('{"order":123456,"item":"bench","pad":"' + "x" * BODY_SIZE)[:BODY_SIZE - 2] + '"}'
    assert len(body) == BODY_SIZE

    say("starting Kafka (KRaft, one node)")
    kafka = KafkaBroker()
    kafka.create_topic("bench", a.partitions)
    say(f"preloading {a.records} records of {BODY_SIZE} B on {a.partitions} partitions")
    with open(os.path.join(tmp, "records"), "w") as f:
        for i in range(a.records):
            f.write(f"k{i % 1024}\t{body}\n")
    with open(os.path.join(tmp, "records"), "rb") as f:
        subprocess.run(["kcat", "-b", kafka.bootstrap, "-P", "-t", "bench", "-K", "\t",
                        "-X", "linger.ms=20", "-X", "batch.num.messages=10000"], stdin=f,
                       check=True)

    port = free_port()
    ndir = os.path.join(tmp, "nginx")
    os.makedirs(ndir)
    access = os.path.join(ndir, "access.log")
    with open(os.path.join(ndir, "nginx.conf"), "w") as f:
        f.write(f"""worker_processes 1;
daemon off;
pid {ndir}/nginx.pid;
error_log {ndir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path {ndir}/body;
  proxy_temp_path {ndir}/proxy;
  fastcgi_temp_path {ndir}/fastcgi;
  uwsgi_temp_path {ndir}/uwsgi;
  scgi_temp_path {ndir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{ access_log {access}; return 204; }}
    location /wrk {{ return 204; }}
  }}
}}
""")
    start(["/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else "nginx", "-p", ndir, "-c", os.path.join(ndir, "nginx.conf"), "-e",
           os.path.join(ndir, "error.log")])
    url = f"http://127.0.0.1:{port}/"
    wait_until(lambda: subprocess.run(["curl", "-s", "-o", "/dev/null", url]).returncode == 0, 10)

    cfg = os.path.join(tmp, "bench.yaml")
    with open(cfg, "w") as f:
        f.write(f"""version: 1
daemon:
  log: {{level: warn}}
sources:
  bench:
    kafka: {{brokers: "{kafka.bootstrap}", topics: [bench], group: bench, start: earliest}}
sinks:
  nginx:
    http: {{url: "{url}", mode: binary, timeout: 10s}}
triggers:
  - name: bench
    source: bench
    event: {{type: com.example.bench, source: /bench}}
    sink: nginx
    delivery: {{retry: 3, backoff_delay: 100ms, concurrency: {a.concurrency}}}
""")
    say(f"draining with triggerd (concurrency {a.concurrency})")
    log = open(os.path.join(tmp, "triggerd.log"), "wb")
    t0 = time.monotonic()
    p = start([td, "run", "-c", cfg], stderr=log)

    def lines():
        try:
            with open(access, "rb") as f:
                return f.read().count(b"\n")
        except OSError:
            return 0
    done = wait_until(lambda: lines() >= a.records or p.poll() is not None, 600, interval=0.05)
    took = time.monotonic() - t0
    rss = 0
    with open(f"/proc/{p.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) // 1024
    if not done or lines() < a.records:
        sys.exit(f"kafka-http: triggerd delivered {lines()} of {a.records}")
    p.terminate()
    p.wait(30)

    say("Kafka ceiling: kcat -C -e -o beginning > /dev/null on the same backlog")
    t1 = time.monotonic()
    subprocess.run(["kcat", "-b", kafka.bootstrap, "-C", "-t", "bench", "-o", "beginning", "-e",
                    "-q"], stdout=subprocess.DEVNULL, check=True)
    raw = time.monotonic() - t1

    say(f"HTTP ceiling: wrk -t1 -c{a.concurrency} -d{a.duration}")
    lua = os.path.join(tmp, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                'wrk.headers["ce-specversion"] = "1.0"\nwrk.headers["ce-type"] = "com.example.bench"\n'
                'wrk.headers["ce-source"] = "/bench"\nwrk.headers["ce-id"] = "kafka:bench/0/0"\n'
                f'wrk.body = [==[{body}]==]\n')
    w = subprocess.run(["wrk", "-t1", f"-c{a.concurrency}", f"-d{a.duration}", "-s", lua,
                        url + "wrk"], capture_output=True, text=True, check=True).stdout
    wrk = float(re.search(r"Requests/sec:\s+([\d.]+)", w).group(1))

    rate = a.records / took
    print()
    print(f"triggerd Kafka -> HTTP ({a.records} x {BODY_SIZE} B, {a.partitions} partitions, "
          f"concurrency {a.concurrency}, {os.cpu_count()} CPUs)")
    print(f"  {'triggerd end to end':34} {rate:10.0f} events/s  (RSS high-water {rss} MB, "
          f"includes start and group join)")
    print(f"  {'Kafka ceiling (kcat -C -e)':34} {a.records / raw:10.0f} records/s  "
          f"triggerd = {100 * rate * raw / a.records:.0f}%")
    print(f"  {'HTTP ceiling (wrk)':34} {wrk:10.0f} requests/s  triggerd = {100 * rate / wrk:.0f}%")
    if os.environ.get("KEEP") == "1":
        print(f"logs in {tmp} (removed at exit)")


def _which(t):
    return any(os.access(os.path.join(d, t), os.X_OK) for d in
               os.environ.get("PATH", "").split(":") + ["/usr/sbin"])


main()
