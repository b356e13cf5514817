#!/usr/bin/python3
"""kafka_http.py - the Python half of bench/kafka-http (see there and bench/README.md). Starts a
Kafka broker with the tests' fixture (tests/integration/kafka_fixture.py: jars from Maven Central,
cached), nginx and triggerd on loopback ports of their own, measures triggerd and the ceilings one
after the other, prints the table, and stops everything at exit (also on failure or Ctrl-C)."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

from benchlib import fmt_int, poll_pause, print_table, proc_cpu_s, proc_status, rounds_row  # bench/benchlib.py
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import at_cleanup, free_port, make_tempdir, wait_until  # noqa: E402
from kafka_fixture import KafkaBroker, missing_tools  # noqa: E402

BODY_SIZE = 1024
SOURCE = "bench"


def say(msg):
    print("==> " + msg, file=sys.stderr, flush=True)


FAILED = []  # die() was called: keep the logs


def die(msg):
    print("kafka-http: " + msg, file=sys.stderr, flush=True)
    FAILED.append(msg)
    sys.exit(1)


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


def which(t):
    for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/sbin"]:
        if d and os.access(os.path.join(d, t), os.X_OK):
            return os.path.join(d, t)
    return None


def rss_by_file(pid, n=4):
    """The n mappings holding the most resident memory, as (name, KiB): where idle RSS goes."""
    agg, cur = {}, "[anon]"
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and "-" in parts[0] and ":" in parts[3]:
                    cur = os.path.basename(parts[5]) if len(parts) > 5 else "[anon]"
                elif parts and parts[0] == "Rss:":
                    agg[cur] = agg.get(cur, 0) + int(parts[1])
    except OSError:
        return []
    return sorted(agg.items(), key=lambda kv: -kv[1])[:n]


def thread_cpu(pid):
    """CPU seconds per thread: {(tid, name): s}; the main thread runs the event loop."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        fields = st.rsplit(")", 1)[1].split()
        if int(tid) == pid:
            name = "loop"
        elif not name.startswith("rdk:"):
            name = "source"  # triggerd's other threads: the Kafka source here
        out[(int(tid), name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def thread_note(before, after, secs):
    """'loop 0.95, triggerd 0.40, rdk:broker1 0.20 ...': cores used per thread while draining,
    librdkafka's threads (rdk:*) summed by name, idle threads left out."""
    use = {}
    for k, v in after.items():
        use[k[1]] = use.get(k[1], 0) + (v - before.get(k, 0)) / secs
    parts = [f"{n} {u:.2f}" for n, u in sorted(use.items(), key=lambda x: -x[1]) if u >= 0.01]
    return ", ".join(parts)


def scrape(port):
    """{metric name: value} of the source's samples on /metrics, or None when it does not answer."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return None
    out = {}
    for m in re.finditer(r'^(triggerd_\w+)\{source="%s"\} (\S+)$' % SOURCE, text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


def nginx_accepts(port):
    """Connections nginx accepted so far (its stub_status); this read is one of them. A client that
    reuses its connections opens about one per request in flight for a whole run."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/nginx_status", timeout=5).read()
        return int(text.decode().splitlines()[2].split()[0])
    except (OSError, ValueError, IndexError) as e:
        die(f"no accepts count in nginx's stub_status: {e}")


def write_config(path, kafka, topic, group, url, concurrency, http_port):
    # KAFKA_PROPS="k=v,k=v": librdkafka properties for the source (to try a setting)
    pairs = [kv.split("=", 1) for kv in os.environ.get("KAFKA_PROPS", "").split(",") if kv]
    props = ", properties: {" + ", ".join(f'"{k}": "{v}"' for k, v in pairs) + "}" if pairs else ""
    with open(path, "w") as f:
        f.write(f"""version: 1
daemon:
  http: {{listen: "127.0.0.1:{http_port}"}}
  log: {{level: warn}}
sources:
  {SOURCE}:
    kafka: {{brokers: "{kafka.bootstrap}", topics: [{topic}], group: {group}, start: earliest{props}}}
sinks:
  nginx:
    http: {{url: "{url}", mode: binary, timeout: 10s}}
triggers:
  - name: bench
    source: {SOURCE}
    event: {{type: com.example.bench, source: /bench}}
    sink: nginx
    delivery: {{retry: 3, backoff_delay: 100ms, concurrency: {concurrency}}}
""")


def idle_rss(td, kafka, url, concurrency, tmp):
    """triggerd connected, in its group, holding the partitions of an empty topic: VmRSS."""
    kafka.create_topic("idle", 1)
    cfg = os.path.join(tmp, "idle.yaml")
    port = free_port()
    write_config(cfg, kafka, "idle", "idle", url, concurrency, port)
    with open(os.path.join(tmp, "triggerd-idle.log"), "wb") as log:
        p = start([td, "run", "-c", cfg], stderr=log)
        # The lag sample appears once the partition is assigned and its position known.
        ok = wait_until(lambda: "triggerd_kafka_consumer_lag" in (scrape(port) or {})
                        or p.poll() is not None, 60, interval=0.05)
        if not ok or p.poll() is not None:
            die("triggerd did not join its group on the idle topic (log: triggerd-idle.log)")
        time.sleep(1)
        st = proc_status(p.pid)
        st["top"] = rss_by_file(p.pid)
        p.terminate()
        if p.wait(30) != 0:
            die("triggerd exited non-zero after SIGTERM (idle run)")
    return st


def drain(td, kafka, url, a, tmp, res, group="bench", logname="triggerd.log"):
    """The measured run: start triggerd on the preloaded topic in GROUP (from the earliest
    offset); the clock runs from the first record it reads to the last one acked
    (committed-to-be), per its /metrics."""
    cfg = os.path.join(tmp, "bench.yaml")
    port = free_port()
    write_config(cfg, kafka, "bench", group, url, a.concurrency, port)
    tty = sys.stderr.isatty()
    log = open(os.path.join(tmp, logname), "wb")
    t_start = time.monotonic()
    p = start([td, "run", "-c", cfg], stderr=log)
    # Start, connect, join the group, get the assignment, first fetch: until the first record.
    first = None
    while first is None:
        if p.poll() is not None:
            die(f"triggerd exited with {p.returncode} before reading anything (log: {tmp}/{logname})")
        if time.monotonic() - t_start > 120:
            die("triggerd read nothing in 120 s")
        m = scrape(port)
        if m and m.get("triggerd_source_events_received_total", 0) > 0:
            first = time.monotonic()
            cpu0 = proc_cpu_s(p.pid)
            threads0 = thread_cpu(p.pid)
            received0 = m["triggerd_source_events_received_total"]
            acked0 = m.get("triggerd_source_events_acked_total", 0)
            break
        time.sleep(0.005)
    res["td_join_s"] = first - t_start
    say(f"first record read {first - t_start:.2f} s after the start (start, connect, group join, "
        f"first fetch); the clock starts now")
    peak, last_print = 0, first
    last_acked, last_change = -1, first
    while True:
        m = scrape(port)
        st = proc_status(p.pid)
        now = time.monotonic()
        if st is None or p.poll() is not None:
            die(f"triggerd exited during the drain (log: {tmp}/{logname})")
        peak = max(peak, st["VmRSS"])
        acked = int((m or {}).get("triggerd_source_events_acked_total", 0))
        if acked >= a.records:
            break
        if acked != last_acked:
            last_acked, last_change = acked, now
        elif now - last_change > a.stall_timeout:
            die(f"no progress for {a.stall_timeout} s ({acked} of {a.records} acked)")
        el = now - first
        lag = (m or {}).get("triggerd_kafka_consumer_lag")
        rate = fmt_int(acked / el if el > 0 else 0)
        lag = "?" if lag is None else fmt_int(lag)
        line = (f"  draining: {fmt_int(acked):>9} / {fmt_int(a.records)} acked "
                f"({100 * acked / a.records:5.1f} %)  {rate:>7} ev/s  lag {lag:>9}"
                f"  RSS {st['VmRSS'] / 1024:5.1f} MB")
        if tty:
            if now - last_print >= 0.1:
                sys.stderr.write("\r" + line)
                sys.stderr.flush()
                last_print = now
        elif now - last_print >= 1.0:
            print(line.strip(), file=sys.stderr, flush=True)
            last_print = now
        time.sleep(poll_pause(acked, a.records, el))
    secs = time.monotonic() - first
    cpu1 = proc_cpu_s(p.pid)
    threads = thread_note(threads0, thread_cpu(p.pid), secs)
    st = proc_status(p.pid)
    if tty:
        sys.stderr.write("\r" + " " * 100 + "\r")
    # The records read before the clock started (received0) are in the count, and so is the
    # first poll interval: a small bias against triggerd.
    say(f"drained {fmt_int(a.records)} records in {secs:.2f} s after the first read "
        f"({int(received0)} read, {int(acked0)} acked when the clock started)")
    lag = None
    for _ in range(30):  # the lag is recomputed once a second: wait for the final 0
        lag = (scrape(port) or {}).get("triggerd_kafka_consumer_lag")
        if lag == 0:
            break
        time.sleep(0.1)
    p.terminate()
    rc = p.wait(30)
    if rc != 0:
        die(f"triggerd exited with {rc} after SIGTERM")
    log.close()
    if os.path.getsize(os.path.join(tmp, logname)) > 0:
        say("triggerd logged warnings during the run:")
        with open(os.path.join(tmp, logname), errors="replace") as f:
            for line in f.readlines()[:5]:
                print("    " + line.rstrip(), file=sys.stderr)
    res.update(td_seconds=secs, td_rate=a.records / secs, td_cpu_s=cpu1 - cpu0,
               td_peak_rss_kb=max(peak, st["VmRSS"]), td_hwm_kb=st["VmHWM"],
               td_final_lag="absent" if lag is None else f"{lag:.0f}", td_threads=threads)


def env_int(name, default):
    """The environment's NAME as an integer (DEFAULT when unset); a clear error otherwise."""
    v = os.environ.get(name)
    if v is None:
        return default
    try:
        return int(v)
    except ValueError:
        die(f"{name} must be a positive integer (got {v!r})")


def main():
    ap = argparse.ArgumentParser(prog="bench/kafka-http")
    ap.add_argument("-n", "--records", type=int, default=env_int("RECORDS", 100000))
    ap.add_argument("-c", "--concurrency", type=int,
                    default=env_int("CONCURRENCY", 64))
    ap.add_argument("-p", "--partitions", type=int, default=env_int("PARTITIONS", 3))
    ap.add_argument("-d", "--duration", default=os.environ.get("WRK_DURATION", "5s"))
    ap.add_argument("-r", "--rounds", type=int, default=env_int("ROUNDS", 1),
                    help="more rounds of drain (a fresh triggerd in a new group) and libcurl "
                    "loop, for the median of the ratio")
    ap.add_argument("--stall-timeout", type=float, default=30)
    a = ap.parse_args()
    for k in ("records", "concurrency", "partitions", "rounds"):
        if getattr(a, k) < 1:
            die(f"{k} must be a positive integer")
    td = os.environ["TRIGGERD"]
    nginx = which("nginx")
    missing = missing_tools() + [t for t in ("nginx", "wrk", "cc", "pkg-config") if not which(t)]
    if missing:
        die("missing " + ", ".join(missing) + ": run scripts/setup-debian.sh")
    tmp = make_tempdir("triggerd-kbench-")
    keep_logs(tmp)
    cache = os.path.join(os.path.dirname(td), "CMakeCache.txt")
    build_type = "unknown build type"
    if os.path.exists(cache):
        m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", open(cache).read(), re.M)
        build_type = (m.group(1) if m else "?") + " build"
    res = {}

    say("compiling the libcurl ceiling (bench/curl_post.c)")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libcurl"], capture_output=True,
                           text=True, check=True).stdout.split()
    curl_post = os.path.join(tmp, "curl_post")
    subprocess.run(["cc", "-O2", "-o", curl_post, os.path.join(ROOT, "bench", "curl_post.c")]
                   + flags, check=True)
    # The body: exactly BODY_SIZE bytes of JSON, the same as bench/redis-http's, for every
    # record, wrk and the curl loop.
    head = {"order": 123456, "item": "bench", "pad": ""}
    head["pad"] = "x" * (BODY_SIZE - len(json.dumps(head, separators=(",", ":"))))
    body = json.dumps(head, separators=(",", ":"))
    assert len(body) == BODY_SIZE
    body_file = os.path.join(tmp, "body.json")
    with open(body_file, "w") as f:
        f.write(body)

    say("starting Kafka (KRaft, one node)")
    kafka = KafkaBroker()
    port = free_port()
    ndir = os.path.join(tmp, "nginx")
    os.makedirs(ndir)
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
    location / {{ return 204; }}
    location = /nginx_status {{ stub_status; }}
  }}
}}
""")
    start([nginx, "-p", ndir, "-c", os.path.join(ndir, "nginx.conf"), "-e",
           os.path.join(ndir, "error.log")])
    url = f"http://127.0.0.1:{port}/"
    if not wait_until(lambda: subprocess.run(["curl", "-s", "-o", "/dev/null", url]).returncode
                      == 0, 10):
        die("nginx did not start")

    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    say(f"load average {load} (other work on the machine skews every figure)")
    say(f"{os.cpu_count()} CPUs; triggerd ({build_type}: {td})")
    say(f"{a.records} records of {BODY_SIZE} B on {a.partitions} partitions, concurrency "
        f"{a.concurrency}; kafka {kafka.bootstrap}, nginx :{port}")

    say("idle RSS: triggerd in its group on an empty topic, 1 s")
    st = idle_rss(td, kafka, url, a.concurrency, tmp)
    res["td_idle_rss_kb"], res["td_idle_anon_kb"] = st["VmRSS"], st["RssAnon"]
    res["td_idle_top"] = ", ".join(f"{name} {kb / 1024:.1f}" for name, kb in st["top"])

    kafka.create_topic("bench", a.partitions)
    say(f"preloading {a.records} records on {a.partitions} partitions with kcat")
    records = os.path.join(tmp, "records")
    with open(records, "w") as f:
        for i in range(a.records):
            f.write(f"k{i % 1024}\t{body}\n")
    with open(records, "rb") as f:
        subprocess.run(["kcat", "-b", kafka.bootstrap, "-P", "-t", "bench", "-K", "\t",
                        "-X", "linger.ms=20", "-X", "batch.num.messages=10000"], stdin=f,
                       check=True)
    os.unlink(records)

    say(f"triggerd: draining the backlog (concurrency {a.concurrency}, at-least-once offsets)")
    accepts0 = nginx_accepts(port)
    drain(td, kafka, url, a, tmp, res)
    res["td_conns"] = nginx_accepts(port) - accepts0 - 1
    def check_committed(group):
        committed, end = kafka.offsets(group, "bench")
        if committed != end or sum(end.values()) != a.records:
            die(f"group {group}'s committed offsets {committed} are not the end {end}")

    check_committed("bench")

    # ---- ceilings, one after the other so they do not compete with triggerd for the CPUs
    say(f"HTTP ceiling: wrk -t1 -c{a.concurrency} -d{a.duration} POST {BODY_SIZE} B to nginx")
    lua = os.path.join(tmp, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                'wrk.headers["ce-specversion"] = "1.0"\n'
                'wrk.headers["ce-type"] = "com.example.bench"\n'
                'wrk.headers["ce-source"] = "/bench"\nwrk.headers["ce-id"] = "kafka:bench/0/0"\n'
                'wrk.headers["ce-time"] = "2024-01-01T00:00:00.000Z"\n'
                f'wrk.body = [==[{body}]==]\n')
    w = subprocess.run(["wrk", "-t1", f"-c{a.concurrency}", f"-d{a.duration}", "--latency", "-s",
                        lua, url], capture_output=True, text=True)
    m = re.search(r"Requests/sec:\s+([\d.]+)", w.stdout)
    if w.returncode != 0 or not m or "Non-2xx" in w.stdout:
        die("wrk failed: " + w.stdout[-2000:] + w.stderr[-1000:])
    res["wrk_rate"] = float(m.group(1))
    for pct in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)$" % pct, w.stdout, re.M)
        res[f"wrk_p{pct}"] = m.group(1) if m else "?"

    say(f"libcurl ceiling: a bare curl multi loop, {a.concurrency} in flight, {a.records} POSTs")

    def curl_loop():
        """The bare libcurl loop: (POSTs, CPU seconds, rate)."""
        r = subprocess.run([curl_post, url, body_file, str(a.concurrency), str(a.records)],
                           capture_output=True, text=True)
        parts = r.stdout.split()
        if r.returncode != 0 or len(parts) != 4 or parts[2] != "0":
            die(f"the libcurl loop failed: {r.stdout} {r.stderr[-1000:]}")
        return int(parts[0]), float(parts[3]), int(parts[0]) / float(parts[1])

    accepts0 = nginx_accepts(port)
    res["curl_entries"], res["curl_cpu_s"], res["curl_rate"] = curl_loop()
    res["curl_conns"] = nginx_accepts(port) - accepts0 - 1

    say("Kafka ceiling: kcat -C -e -o beginning > /dev/null on the same backlog (no group)")
    t1 = time.monotonic()
    subprocess.run(["kcat", "-b", kafka.bootstrap, "-C", "-t", "bench", "-o", "beginning", "-e",
                    "-q"], stdout=subprocess.DEVNULL, check=True)
    res["kcat_rate"] = a.records / (time.monotonic() - t1)

    # More rounds: the same backlog drained again by a fresh triggerd in a group of its own (from
    # the earliest offset), then the libcurl loop, in the order of the first round; the table
    # gives each round's ratio and the median.
    res["rounds"] = a.rounds
    for r in range(2, a.rounds + 1):
        say(f"round {r} of {a.rounds}: a fresh triggerd in group bench-{r} drains the backlog, "
            "then the libcurl loop")
        rr = {}
        drain(td, kafka, url, a, tmp, rr, group=f"bench-{r}", logname=f"triggerd-round{r}.log")
        check_committed(f"bench-{r}")
        res[f"round{r}_td_rate"] = rr["td_rate"]
        res[f"round{r}_curl_rate"] = curl_loop()[2]

    print()
    print(f"triggerd Kafka -> HTTP ({a.records} x {BODY_SIZE} B, {a.partitions} partitions, "
          f"concurrency {a.concurrency}, {os.cpu_count()} CPUs, {build_type})")
    table(res, a)


def keep_logs(tmp):
    """The harness removes tmp at exit (after stopping what was started later); with KEEP=1 or
    after a failure, copy the logs aside first."""
    def copy():
        if os.environ.get("KEEP") == "1" or FAILED:
            keep = tmp.rstrip("/") + "-kept"
            shutil.copytree(tmp, keep, dirs_exist_ok=True, ignore_dangling_symlinks=True,
                            ignore=shutil.ignore_patterns("records", "curl_post"))
            print(f"kafka-http: logs kept in {keep}", file=sys.stderr)
    at_cleanup(copy)


def table(v, a):
    def rate(k, unit):
        return "n/a" if v.get(k) is None else f"{v[k]:,.0f} {unit}"

    def mb(k):
        return "n/a" if v.get(k) is None else f"{v[k] / 1024:.1f} MB"

    def ratio(x, y):
        return "n/a" if not v.get(x) or not v.get(y) else f"{100 * v[x] / v[y]:.0f} %"

    td_us = 1e6 * v["td_cpu_s"] / a.records
    curl_us = 1e6 * v["curl_cpu_s"] / v["curl_entries"]
    c = a.concurrency
    rows = [
        ("triggerd idle RSS (in its group, empty topic)", mb("td_idle_rss_kb"),
         f"of which anonymous {mb('td_idle_anon_kb')}; the rest is shared libraries"),
        ("  largest resident mappings (MB)", "", v.get("td_idle_top", "")),
        ("triggerd start to first record read", f"{v['td_join_s']:.2f} s",
         "start, connect, group join, assignment, first fetch: not in the rate"),
        ("triggerd end to end: backlog -> nginx -> offset", rate("td_rate", "ev/s"),
         f"{a.records:,} in {v['td_seconds']:.2f} s from the first read; {v['td_cpu_s']:.2f} CPU s,"
         f" {td_us:.0f} us CPU/event"),
        ("triggerd cores used per thread while draining", "",
         v.get("td_threads") or "n/a"),
        ("triggerd peak RSS (sampled VmRSS)", mb("td_peak_rss_kb"),
         f"VmHWM {mb('td_hwm_kb')} (start included); consumer lag at the end: "
         f"{v.get('td_final_lag')}"),
        ("triggerd new connections to nginx", f"{v['td_conns']}",
         f"for the whole run, concurrency {c}; issue 14: at most 2 x {c} = {2 * c}"
         f"{' (OVER)' if v['td_conns'] > 2 * c else ''}; the libcurl loop opened "
         f"{v['curl_conns']}"),
        (f"HTTP ceiling: wrk -t1 -c{c} -d{a.duration}", rate("wrk_rate", "req/s"),
         f"p50 {v.get('wrk_p50')}, p99 {v.get('wrk_p99')}"),
        (f"libcurl ceiling: bare multi loop, {c} in flight", rate("curl_rate", "req/s"),
         f"{v['curl_entries']:,} POSTs; {curl_us:.0f} us CPU/POST"),
        ("Kafka ceiling: kcat -C -e -o beginning", rate("kcat_rate", "rec/s"),
         f"{a.records:,} records to /dev/null, its start included"),
        ("ratio triggerd / wrk", ratio("td_rate", "wrk_rate"), ""),
        ("ratio triggerd / libcurl loop", ratio("td_rate", "curl_rate"), "issue 14 goal 2: >= 80 % (DESIGN §6: >= 70 %)"),
        rounds_row(lambda k: v.get(k), "curl", "issue 14 goal 2: >= 80 %"),
        ("ratio triggerd / kcat consume", ratio("td_rate", "kcat_rate"), ""),
        ("CPU per event: libcurl loop / triggerd", f"{100 * curl_us / td_us:.0f} %",
         f"{curl_us:.0f} vs {td_us:.0f} us (kernel accounting)"),
    ]
    print_table([r for r in rows if r])

main()
