#!/usr/bin/python3
"""latency.py - the Python half of bench/latency: added latency at a fixed offered rate.

  bench/latency [-r RATE] [-s SECONDS] [-c CONCURRENCY]

Starts a redis-server (no persistence), a small HTTP receiver (`latency.py receive`, a separate
process) and triggerd sending the stream `lat` to the receiver (binary mode). A producer then
XADDs RATE entries a second for SECONDS, paced on a schedule; each entry's data is a JSON body
with the producer's CLOCK_REALTIME nanoseconds, taken just before its XADD (the event's arrival
at the source). The receiver takes CLOCK_REALTIME when the first bytes of each request arrive
and answers 204. Added latency = receive time - producer time, for every event; p50/p90/p99/
p99.9/max are printed, with the offered rate achieved, triggerd's CPU and the receiver's own CPU
share (it must stay far from a core, or it is what is measured) and the receiver's ceiling
(wrk against it alone, same concurrency, before triggerd starts).

Environment: TRIGGERD (the binary), RATE (2000), DURATION (5), CONCURRENCY (64), KEEP=1 (keep
the temp dir).
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from benchlib import proc_cpu_s  # bench/benchlib.py

BODY_PAD = 900  # about 1 KiB of JSON with the timestamp


def say(msg):
    print(f"==> {msg}", file=sys.stderr, flush=True)


def die(msg):
    print(f"bench/latency: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the receiver ----------------------------------------------------------------------------

class Receiver(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length bodies only (what libcurl sends), 204 to all."""

    def __init__(self, out):
        self.out = out
        self.buf = b""
        self.t_first = 0

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        now = time.time_ns()
        if not self.buf:
            self.t_first = now  # the first bytes of the next request
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            i = head.find(b"content-length:")
            length = int(head[i + 15:head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0
                              else len(head)]) if i >= 0 else 0
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            t = 0
            try:
                t = json.loads(body)["t"]
            except (ValueError, KeyError, TypeError):
                pass
            self.out.append((t, self.t_first))
            self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            self.t_first = now  # a pipelined or coalesced next request arrived with this one


def cmd_receive(a):
    out = []

    async def main():
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        srv = await loop.create_server(lambda: Receiver(out), "127.0.0.1", a.port, backlog=512)
        print("ready", flush=True)
        await stop
        srv.close()

    asyncio.run(main())
    with open(a.out, "w") as f:
        for t, r in out:
            f.write(f"{t} {r}\n")


# ---- the run ---------------------------------------------------------------------------------

def start(args, log, **kw):
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **kw)


def stop(p):
    if p and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait()
    return p.returncode if p else 0


def pct(sorted_v, q):
    if not sorted_v:
        return float("nan")
    return sorted_v[min(len(sorted_v) - 1, int(q * len(sorted_v)))]


def wait_until(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return
        time.sleep(0.02)
    die(f"timed out waiting for {what}")


def cmd_run(a):
    import redis  # Debian's python3-redis

    td = os.environ.get("TRIGGERD")
    if not td:
        die("TRIGGERD is not set (bench/latency builds one)")
    for tool in ("redis-server", "wrk"):
        if shutil.which(tool) is None:
            die(f"{tool} is missing (scripts/setup-debian.sh)")
    tmp = tempfile.mkdtemp(prefix="td-latency-")
    procs = []
    ok = False
    try:
        rport, hport, mport = free_port(), free_port(), free_port()
        rlog = open(os.path.join(tmp, "redis.log"), "wb")
        procs.append(start(["redis-server", "--bind", "127.0.0.1", "--port", str(rport), "--dir",
                            tmp, "--save", "", "--appendonly", "no"], rlog))
        r = redis.Redis(host="127.0.0.1", port=rport, socket_timeout=10)

        def redis_up():
            try:
                return r.ping()
            except redis.exceptions.ConnectionError:
                return False
        wait_until(redis_up, 10, "redis-server")

        out_file = os.path.join(tmp, "received.txt")
        recv = subprocess.Popen([sys.executable, os.path.abspath(__file__), "receive", "--port",
                                 str(hport), "--out", out_file], stdout=subprocess.PIPE,
                                stderr=open(os.path.join(tmp, "receiver.log"), "wb"))
        procs.append(recv)
        if recv.stdout.readline().strip() != b"ready":
            die("the receiver did not start")
        url = f"http://127.0.0.1:{hport}/"

        # The receiver's ceiling, alone (its records of this are discarded: t = 0).
        lua = os.path.join(tmp, "post.lua")
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\nwrk.body = \'{"t": 0}\'\n'
                    'wrk.headers["Content-Type"] = "application/json"\n')
        w = subprocess.run(["wrk", "-t1", f"-c{a.concurrency}", "-d2s", "-s", lua, url],
                           capture_output=True, text=True, timeout=60)
        ceiling = 0.0
        for line in w.stdout.splitlines():
            if line.startswith("Requests/sec:"):
                ceiling = float(line.split()[1])

        r.xgroup_create("lat", "triggerd", id="$", mkstream=True)
        cfg = os.path.join(tmp, "latency.yaml")
        with open(cfg, "w") as f:
            f.write(f"""version: 1
daemon:
  http: {{listen: "127.0.0.1:{mport}"}}
  log: {{level: warn}}
sources:
  lat:
    redis: {{url: "redis://127.0.0.1:{rport}", stream: lat, group: triggerd}}
sinks:
  recv:
    http: {{url: "{url}", mode: binary, timeout: 10s}}
triggers:
  - name: lat
    source: lat
    sink: recv
    delivery: {{retry: 3, backoff_delay: 100ms, concurrency: {a.concurrency}}}
""")
        tlog = open(os.path.join(tmp, "triggerd.log"), "wb")
        tdp = start([td, "run", "-c", cfg], tlog)
        procs.insert(0, tdp)

        def blocked():
            return any(c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "")
                       for c in r.client_list())
        wait_until(blocked, 20, "triggerd blocked in XREADGROUP")
        time.sleep(0.5)

        n = int(a.rate * a.seconds)
        pad = "x" * BODY_PAD
        say(f"producing {n} events at {a.rate:.0f}/s for {a.seconds:.0f} s "
            f"(concurrency {a.concurrency})")
        cpu0, rcpu0 = proc_cpu_s(tdp.pid), proc_cpu_s(recv.pid)
        t0 = time.monotonic()
        late = 0
        for i in range(n):
            due = t0 + i / a.rate
            d = due - time.monotonic()
            if d > 0:
                time.sleep(d)
            elif d < -0.001:
                late += 1
            body = f'{{"t": {time.time_ns()}, "seq": {i}, "pad": "{pad}"}}'
            r.xadd("lat", {"data": body})
        produced_s = time.monotonic() - t0

        def done():
            g = [g for g in r.xinfo_groups("lat") if g["name"] == b"triggerd"][0]
            return (g.get("entries-read") or 0) >= n and g["pending"] == 0
        wait_until(done, 60, "every event delivered and acked")
        wall = time.monotonic() - t0
        cpu = proc_cpu_s(tdp.pid) - cpu0
        rcpu = proc_cpu_s(recv.pid) - rcpu0
        if stop(tdp) != 0:
            die("triggerd exited non-zero on SIGTERM")
        stop(recv)
        lat = []
        with open(out_file) as f:
            for line in f:
                t, rcv = map(int, line.split())
                if t > 0:
                    lat.append((rcv - t) / 1e6)
        if len(lat) < n:
            die(f"the receiver got {len(lat)} of {n} events")
        lat.sort()
        print(f"\ntriggerd added latency: Redis XADD -> function (bench/latency, {n} events, "
              f"{os.cpu_count()} CPUs)")
        rows = [
            ("offered rate", f"{n / produced_s:,.0f} ev/s",
             f"target {a.rate:.0f}/s; {late} XADDs more than 1 ms behind schedule"),
            ("latency p50", f"{pct(lat, 0.50):.3f} ms", "producer clock before XADD -> first "
             "bytes of the POST at the function (CLOCK_REALTIME, same host)"),
            ("latency p90", f"{pct(lat, 0.90):.3f} ms", ""),
            ("latency p99", f"{pct(lat, 0.99):.3f} ms", "issue 14 target: <= 1 ms on an idle machine"),
            ("latency p99.9", f"{pct(lat, 0.999):.3f} ms", ""),
            ("latency max", f"{lat[-1]:.3f} ms", f"min {lat[0]:.3f} ms"),
            ("triggerd CPU", f"{cpu / wall * 100:.1f} %", f"of one core over {wall:.1f} s; "
             f"{cpu / n * 1e6:.0f} us per event"),
            ("receiver CPU", f"{rcpu / wall * 100:.1f} %", "of one core: far below 100 %, so "
             "it is not what is measured"),
            ("receiver ceiling (wrk)", f"{ceiling:,.0f} req/s",
             f"wrk -c{a.concurrency} against the receiver alone; the offered rate is "
             f"{a.rate / ceiling * 100 if ceiling else float('nan'):.0f} % of it"),
        ]
        w0 = max(len(x[0]) for x in rows)
        for k, v, note in rows:
            print(f"{k:<{w0}}  {v:>14}  {note}")
        ok = True
    finally:
        for p in procs:
            stop(p)
        if ok and not os.environ.get("KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            say(f"logs kept in {tmp}")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "receive":
        ap = argparse.ArgumentParser()
        ap.add_argument("cmd")
        ap.add_argument("--port", type=int, required=True)
        ap.add_argument("--out", required=True)
        return cmd_receive(ap.parse_args())
    ap = argparse.ArgumentParser(description="added latency at a fixed offered rate")
    ap.add_argument("-r", "--rate", type=float, default=float(os.environ.get("RATE", 2000)))
    ap.add_argument("-s", "--seconds", type=float, default=float(os.environ.get("DURATION", 5)))
    ap.add_argument("-c", "--concurrency", type=int,
                    default=int(os.environ.get("CONCURRENCY", 64)))
    return cmd_run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main() or 0)
