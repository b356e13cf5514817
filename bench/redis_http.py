#!/usr/bin/python3
"""redis_http.py - the Python half of bench/redis-http (Debian's /usr/bin/python3 + python3-redis).

  preload    --port P --stream S --count N --body-file F [--format ce|plain]
             writes N-1 entries of the 1 KiB body F (the Nth is written by `drain`), creates the
             consumer group "triggerd" at the end of the stream, prints the number written
  wait-ready --port P --pid PID [--timeout S]
             waits until a client sits blocked in XREADGROUP (triggerd is connected and idle)
  drain      --port P --stream S --group G --count N --body-file F --pid PID [--format ..]
             rewinds the group to 0, appends the Nth entry (which wakes triggerd up: the clock
             starts), then polls XINFO GROUPS until every entry is delivered and acked; shows
             progress; prints key=value results (seconds, rate, triggerd's RSS and CPU)
  table      --results FILE
             prints the figures collected in FILE (key=value lines) as a table with the ratios
"""

import argparse
import os
import sys
import time

from benchlib import Figures, fmt_int, poll_pause, print_table, proc_cpu_s, proc_status, tree_cpu_s  # bench/benchlib.py

import redis

BENCH_TYPE = "com.example.bench"


def entry_fields(fmt, body, seq):
    if fmt == "plain":
        return {"data": body}
    return {
        "ce_specversion": "1.0",
        "ce_id": f"bench-{seq}",
        "ce_type": BENCH_TYPE,
        "ce_source": "/bench",
        "content-type": "application/json",
        "data": body,
    }


def connect(port):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=30)


def cmd_preload(a):
    r = connect(a.port)
    body = open(a.body_file, "rb").read()
    r.delete(a.stream)
    n = a.count - 1
    chunk = 2000
    pipe = r.pipeline(transaction=False)
    for start in range(0, n, chunk):
        for seq in range(start, min(n, start + chunk)):
            pipe.xadd(a.stream, entry_fields(a.format, body, seq))
        pipe.execute()
    # The group starts at the end: triggerd connects and idles; `drain` rewinds it.
    r.xgroup_create(a.stream, "triggerd", id="$", mkstream=True)
    print(r.xlen(a.stream))


def client_blocked_in_xreadgroup(r):
    for c in r.client_list():
        if c.get("cmd") == "xreadgroup" and "b" in c.get("flags", ""):
            return True
    return False


def cmd_wait_ready(a):
    r = connect(a.port)
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{a.pid}"):
            print("triggerd exited before it was ready", file=sys.stderr)
            return 1
        if client_blocked_in_xreadgroup(r):
            return 0
        time.sleep(0.01)
    print(f"triggerd did not block in XREADGROUP within {a.timeout}s", file=sys.stderr)
    return 1


def group_info(r, stream, group):
    for g in r.xinfo_groups(stream):
        if g["name"].decode() == group:
            return g
    raise RuntimeError(f"no group {group} on {stream}")


def cmd_drain(a):
    r = connect(a.port)
    body = open(a.body_file, "rb").read()
    tty = sys.stderr.isatty()  # stdout carries the results
    st = proc_status(a.pid)
    if st is None:
        print("triggerd is not running", file=sys.stderr)
        return 1
    idle_rss, idle_anon = st["VmRSS"], st["RssAnon"]
    cpu0 = proc_cpu_s(a.pid)
    also = [x.split("=", 1) for x in a.also]
    also0 = {name: tree_cpu_s(int(pid)) for name, pid in also}
    r.execute_command("XGROUP", "SETID", a.stream, a.group, "0", "ENTRIESREAD", "0")
    t0 = time.monotonic()
    last_id = r.xadd(a.stream, entry_fields(a.format, body, a.count - 1))
    total = r.xlen(a.stream)
    peak_rss = idle_rss
    last_print = t0
    last_progress, last_progress_t = -1, t0
    while True:
        g = group_info(r, a.stream, a.group)
        now = time.monotonic()
        read = g.get("entries-read") or 0
        acked = max(0, read - g["pending"])
        st = proc_status(a.pid)
        if st is None:
            print(f"\ntriggerd exited during the drain ({acked} of {total} acked)", file=sys.stderr)
            return 1
        peak_rss = max(peak_rss, st["VmRSS"])
        if g["last-delivered-id"] == last_id and g["pending"] == 0:
            break
        if acked != last_progress:
            last_progress, last_progress_t = acked, now
        elif now - last_progress_t > a.stall_timeout:
            print(f"\nno progress for {a.stall_timeout}s ({acked} of {total} acked, "
                  f"{g['pending']} pending)", file=sys.stderr)
            return 1
        el = now - t0
        line = (f"  draining: {fmt_int(acked):>9} / {fmt_int(total)} acked ({100 * acked / total:5.1f} %)"
                f"  {fmt_int(acked / el if el > 0 else 0):>7} ev/s  RSS {st['VmRSS'] / 1024:5.1f} MB"
                f"  pending {g['pending']:>5}")
        if tty:
            if now - last_print >= 0.1:
                sys.stderr.write("\r" + line)
                sys.stderr.flush()
                last_print = now
        elif now - last_print >= 1.0:
            print(line.strip(), file=sys.stderr, flush=True)
            last_print = now
        time.sleep(poll_pause(acked, total, el))
    secs = time.monotonic() - t0
    cpu1 = proc_cpu_s(a.pid)
    st = proc_status(a.pid)
    if tty:
        sys.stderr.write("\r" + " " * 100 + "\r")
    print(f"  drained {fmt_int(total)} entries in {secs:.2f} s", file=sys.stderr, flush=True)
    print(f"td_entries={total}")
    print(f"td_seconds={secs:.6f}")
    print(f"td_rate={total / secs:.1f}")
    print(f"td_idle_rss_kb={idle_rss}")
    print(f"td_idle_anon_kb={idle_anon}")
    print(f"td_peak_rss_sampled_kb={max(peak_rss, st['VmRSS'])}")
    print(f"td_hwm_kb={st['VmHWM']}")
    print(f"td_end_anon_kb={st['RssAnon']}")
    print(f"td_cpu_s={cpu1 - cpu0:.3f}")
    for name, pid in also:
        print(f"td_also_{name}_cpu_s={tree_cpu_s(int(pid)) - also0[name]:.3f}")
    return 0


def cmd_table(a):
    f = Figures(a.results)
    v, num, rate, mb, conns, ratio, us_per = f.v, f.num, f.rate, f.mb, f.count, f.ratio, f.us_per
    cpu_ratio = f.cpu_ratio

    c, n = v.get("concurrency", "?"), int(num("entries") or 0)
    client = v.get("td_client", "auto")
    other = v.get("tdc_client")
    rows = [
        ("triggerd idle RSS (connected, before the load)", mb("td_idle_rss_kb"),
         f"of which anonymous {mb('td_idle_anon_kb')}; the rest is shared libraries"),
        (f"triggerd end to end (client: {client})", rate("td_rate") + " ev/s",
         f"{n:,} in {num('td_seconds') or 0:.2f} s; {num('td_cpu_s') or 0:.2f} CPU s, "
         f"{us_per('td_cpu_s', 'td_entries')} us CPU/event"),
        ("triggerd peak RSS (VmHWM)", mb("td_hwm_kb"), ""),
        ("triggerd new connections to nginx", conns("td_conns"),
         f"for the whole run, concurrency {c}; issue 14: at most 2 x {c} = {f.conn_bound()}"
         f"{f.conn_over()}; the libcurl loop opened {conns('curl_conns')}"),
        (f"HTTP ceiling: wrk -t1 -c{c} -d{v.get('wrk_duration', '?')}", rate("wrk_rate") + " req/s",
         f"p50 {v.get('wrk_p50', '?')}, p99 {v.get('wrk_p99', '?')}; "
         f"{us_per('wrk_cpu_s', 'wrk_entries')} us CPU/request"),
        (f"libcurl ceiling: bare multi loop, {c} in flight", rate("curl_rate") + " req/s",
         f"{int(num('curl_entries') or 0):,} POSTs; {us_per('curl_cpu_s', 'curl_entries')} us CPU/POST"),
        (f"lean client alone: its own loop, {c} in flight", rate("lean_rate") + " req/s",
         f"{int(num('lean_entries') or 0):,} POSTs; {us_per('lean_cpu_s', 'lean_entries')} us CPU/POST; "
         f"{conns('lean_conns')} connections"),
        (f"Redis ceiling: XREADGROUP COUNT {v.get('batch', '?')} + XACK (C)",
         rate("raw_rate") + " ev/s", f"{int(num('raw_entries') or 0):,} entries"),
        ("ratio triggerd / wrk", ratio("td_rate", "wrk_rate"),
         "end to end, Redis read and ack included; the lean client's own ratio is the next row"
         if client == "lean" else ""),
        f.rounds_row("wrk", "issue 14 goal 6 for the whole daemon: >= 60 %"),
        ("ratio lean client alone / wrk", ratio("lean_rate", "wrk_rate"),
         "issue 14 goal 6 (the client's path): >= 60 %; CPU per request, wrk / lean client: "
         + cpu_ratio("lean", "wrk")),
        ("ratio triggerd / libcurl loop", ratio("td_rate", "curl_rate"), "issue 14 goal 2: >= 80 % (DESIGN §6: >= 70 %)"),
        f.rounds_row("curl", "issue 14 goal 2: >= 80 %"),
        ("ratio triggerd / raw Redis consume", ratio("td_rate", "raw_rate"), ""),
        ("CPU per event: libcurl loop / triggerd", cpu_ratio(),
         "CPU time per event (kernel accounting) compared"),
        ("CPU per event: wrk / triggerd", cpu_ratio("td", "wrk"),
         "wrk's CPU per request against triggerd's per event (which also reads and acks Redis)"),
    ]
    # redis-server and nginx run on the same CPUs as triggerd here: what they spent per event while
    # triggerd drained bounds the rate any consumer could reach on this machine (wrk has the CPUs
    # to itself and nginx; triggerd shares them with redis-server too).
    also = [num(f"td_also_{k}_cpu_s") for k in ("redis", "nginx")]
    if None not in also and num("td_cpu_s") is not None and n:
        per = (sum(also) + num("td_cpu_s")) / n
        ncpu = int(num("ncpu") or os.cpu_count() or 1)
        bound_rate = ncpu / per if per > 0 else 0
        rows += [
            ("redis-server CPU while triggerd drained", f"{1e6 * also[0] / n:.0f} us",
             "per entry (XREADGROUP and XACK)"),
            ("nginx CPU while triggerd drained", f"{1e6 * also[1] / n:.0f} us", "per request"),
            ("machine bound: CPUs / (redis + nginx + triggerd)", f"{bound_rate:,.0f} ev/s",
             f"{ncpu} CPUs / {1e6 * per:.0f} us of CPU per event, all three together"),
            ("ratio triggerd / machine bound",
             f"{100 * (num('td_rate') or 0) / bound_rate:.0f} %" if bound_rate else "n/a",
             "how much of what this machine allows triggerd reaches"),
        ]
    if other:
        rows[3:3] = [
            (f"triggerd end to end (client: {other})", rate("tdc_rate") + " ev/s",
             f"{int(num('tdc_entries') or 0):,} in {num('tdc_seconds') or 0:.2f} s; "
             f"{num('tdc_cpu_s') or 0:.2f} CPU s, {us_per('tdc_cpu_s', 'tdc_entries')} us CPU/event; "
             f"peak RSS {mb('tdc_hwm_kb')}; {conns('tdc_conns')} connections"),
        ]
        rows += [
            (f"ratio client: {client} / client: {other}", ratio("td_rate", "tdc_rate"), "events/s"),
            (f"CPU per event: client: {other} / client: {client}", cpu_ratio("td", "tdc"),
             "above 100 %: the first costs less CPU per event"),
            (f"client: {other}: ratio to wrk / to the libcurl loop",
             f"{ratio('tdc_rate', 'wrk_rate')} / {ratio('tdc_rate', 'curl_rate')}",
             f"CPU per event, libcurl loop / triggerd: {cpu_ratio('tdc', 'curl')}"),
        ]
    print_table([r for r in rows if r])
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("preload")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--stream", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--body-file", required=True)
    p.add_argument("--format", choices=("ce", "plain"), default="ce")
    p = sub.add_parser("wait-ready")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--timeout", type=float, default=10)
    p = sub.add_parser("drain")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--stream", required=True)
    p.add_argument("--group", default="triggerd")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--body-file", required=True)
    p.add_argument("--format", choices=("ce", "plain"), default="ce")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--also", action="append", default=[], help="NAME=PID: a process tree to time")
    p.add_argument("--stall-timeout", type=float, default=30)
    p = sub.add_parser("table")
    p.add_argument("--results", required=True)
    a = ap.parse_args()
    return {"preload": cmd_preload, "wait-ready": cmd_wait_ready, "drain": cmd_drain,
            "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
