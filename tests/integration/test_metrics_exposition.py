"""/metrics read by the Prometheus text-format parser (prometheus_client, Debian's
python3-prometheus-client): every family has one HELP and one TYPE line before its samples and a
known type; the delivery-latency histogram has its buckets in ascending `le` order ending in +Inf,
cumulative, with +Inf equal to _count and a _sum; the process_* families of the client libraries
are there and plausible against the daemon's own /proc entries (RSS > 0 and near VmRSS, open fds
<= max fds = its RLIMIT_NOFILE soft limit, start time near when the test started it, CPU seconds
that never go back); triggerd_build_info is still 1 with the version."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, RedisServer, Triggerd, config, http_sink,  # noqa: E402
                     redis_source, run_test, trigger, wait_until)
from http_util import get, metric, metrics, with_http  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # scripts/setup-debian.sh installs python3-prometheus-client
    text_string_to_metric_families = None

PROCESS = ["process_cpu_seconds_total", "process_resident_memory_bytes",
           "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
           "process_start_time_seconds"]


def scrape(port):
    status, _, body = get(port, "/metrics")
    assert status == 200, f"/metrics answered {status}"
    return body.decode()


def check_help_type(c, text):
    """HELP and TYPE once per family, before its samples, for every sample's family."""
    helps, types, bad = {}, {}, []
    for line in text.splitlines():
        m = re.match(r"# (HELP|TYPE) (\S+) (.*)", line)
        if m:
            d = helps if m.group(1) == "HELP" else types
            if m.group(2) in d:
                bad.append(f"second {m.group(1)} for {m.group(2)}")
            d[m.group(2)] = m.group(3)
            continue
        if not line or line.startswith("#"):
            continue
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        fam = name if name in types else re.sub(r"_(bucket|sum|count)$", "", name)
        if fam not in types or fam not in helps:
            bad.append(f"sample {name} before or without its family's HELP and TYPE")
    c.check(not bad, "every family has one HELP and one TYPE before its samples", bad[:5])
    c.eq(sorted(set(helps) - set(types)), [], "no HELP without TYPE")
    c.check(all(t in ("counter", "gauge", "histogram") for t in types.values()),
            "every TYPE is counter, gauge or histogram", sorted(set(types.values())))
    c.check(all(h.strip() for h in helps.values()), "every HELP has text")
    return types


def check_histogram(c, fam):
    by_trigger = {}
    for s in fam.samples:
        by_trigger.setdefault(s.labels.get("trigger"), []).append(s)
    c.check(by_trigger, "the latency histogram has samples")
    counted = 0
    for trg, samples in by_trigger.items():
        buckets = [(s.labels["le"], s.value) for s in samples if s.name.endswith("_bucket")]
        count = [s.value for s in samples if s.name.endswith("_count")]
        total = [s.value for s in samples if s.name.endswith("_sum")]
        les = [float(le) for le, _ in buckets]
        c.check(len(buckets) >= 2 and buckets[-1][0] == "+Inf", f"{trg}: the last bucket is +Inf",
                [le for le, _ in buckets])
        c.check(all(a < b for a, b in zip(les, les[1:])), f"{trg}: le strictly ascending", les)
        vals = [v for _, v in buckets]
        c.check(all(a <= b for a, b in zip(vals, vals[1:])), f"{trg}: buckets cumulative", vals)
        c.check(len(count) == 1 and len(total) == 1, f"{trg}: one _count and one _sum")
        if count and buckets:
            c.eq(buckets[-1][1], count[0], f"{trg}: +Inf bucket equals _count")
            c.check(total[0] >= 0, f"{trg}: _sum is not negative", total[0])
            counted += count[0]
    return counted


def proc_limits_nofile(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft = line.split()[3]
                return None if soft == "unlimited" else float(soft)


def vm_rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) * 1024


def body(c):
    if text_string_to_metric_families is None:
        c.check(False, "prometheus_client is importable (apt install python3-prometheus-client)")
        return
    rs = RedisServer()
    fn = FunctionServer()
    cfg = config({"in": redis_source(rs.url, "st")}, {"fn": http_sink(fn.url)},
                 [trigger("t", "in", "fn")])
    port = with_http(cfg)
    started = time.time()
    d = Triggerd(cfg).start()
    c.check(d.wait_ready(30), "daemon ready")
    client = rs.client()
    for i in range(5):
        client.xadd("st", {"i": str(i)})
    c.check(wait_until(lambda: fn.count() >= 5, 20 * SLOW), "5 delivered")
    # Waited for, not a fixed 0.3 s pause: fn.count() counts a request when it arrives, before the
    # daemon has the answer and records the delivery in the histogram checked below.
    wait_until(lambda: (metric(metrics(port), "triggerd_trigger_delivery_latency_seconds_count",
                               trigger="t") or 0) >= 5, 10 * SLOW, desc="5 deliveries counted")

    text = scrape(port)
    types = check_help_type(c, text)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    c.check(len(fams) >= 20, "the parser reads the whole exposition", len(fams))
    for name in PROCESS:
        c.check(name in types, f"{name} is exported")
    # The parser strips _total from counter family names (OpenMetrics style).
    c.eq(fams["process_cpu_seconds"].type, "counter", "process_cpu_seconds_total is a counter")
    for name in PROCESS[1:]:
        c.eq(fams[name].type if name in fams else None, "gauge", f"{name} is a gauge")

    def val(name):
        f = fams.get(name[:-len("_total")] if name.endswith("_total") else name)
        return f.samples[0].value if f and f.samples else None

    pid = d.proc.pid
    rss, vm = val("process_resident_memory_bytes"), val("process_virtual_memory_bytes")
    c.check(rss is not None and rss > 0, "RSS > 0", rss)
    want_rss = vm_rss_bytes(pid)
    c.check(rss and 0.5 * want_rss <= rss <= 2 * want_rss, "RSS near the VmRSS of /proc/PID/status",
            (rss, want_rss))
    c.check(vm is not None and rss is not None and vm >= rss, "virtual memory >= RSS", (vm, rss))
    fds, max_fds = val("process_open_fds"), val("process_max_fds")
    c.check(fds is not None and 3 <= fds, "open fds counted", fds)
    c.check(fds is not None and max_fds is not None and fds <= max_fds, "open fds <= max fds",
            (fds, max_fds))
    c.eq(max_fds, proc_limits_nofile(pid), "max fds is the daemon's RLIMIT_NOFILE soft limit")
    real_fds = len(os.listdir(f"/proc/{pid}/fd"))
    c.check(fds is not None and abs(fds - real_fds) <= 3, "open fds near /proc/PID/fd's count",
            (fds, real_fds))
    st = val("process_start_time_seconds")
    c.check(st is not None and started - 2 <= st <= time.time() + 1,
            "start time is when the test started the daemon", (st, started))
    cpu = val("process_cpu_seconds_total")
    c.check(cpu is not None and cpu >= 0, "CPU seconds known", cpu)

    info = fams.get("triggerd_build_info")
    c.check(info and len(info.samples) == 1 and info.samples[0].value == 1
            and info.samples[0].labels.get("version"), "triggerd_build_info 1 with a version",
            info.samples if info else None)

    c.eq(check_histogram(c, fams["triggerd_trigger_delivery_latency_seconds"]), 5.0,
         "the histogram counted the 5 deliveries")

    # Busy the daemon a little: CPU seconds never go back.
    for i in range(200):
        client.xadd("st", {"i": str(i)})
    wait_until(lambda: fn.count() >= 205, 30 * SLOW)
    fams = {f.name: f for f in text_string_to_metric_families(scrape(port))}
    cpu2 = val("process_cpu_seconds_total")
    c.check(cpu2 is not None and cpu2 >= cpu, "CPU seconds do not go back", (cpu, cpu2))
    d.terminate()
    d.wait(10 * SLOW)


run_test(body)
