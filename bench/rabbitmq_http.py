#!/usr/bin/python3
"""rabbitmq_http.py - the Python half of bench/rabbitmq-http (Debian's /usr/bin/python3, standard
library only).

  drain --metrics URL --source NAME --count N --pid PID [--also NAME=PID ...] [--stall-timeout S]
        polls triggerd's /metrics every 5 ms until the source has received its first message (the
        clock starts then, as in bench/kafka-http; bench/startup times the start), then until
        triggerd_source_events_acked_total of the source reaches N (every message read, POSTed,
        answered 204 and acked), less often while the end is far (benchlib.poll_pause); shows progress;
        prints key=value results (seconds from the first message, the messages acked in that time
        and their rate, RSS, CPU; and the CPU seconds and minor page faults of each --also process
        tree, the broker and nginx, meanwhile: on a small machine they share the CPUs with
        triggerd, which bounds what any consumer could reach there)
  table --results FILE
        prints the figures collected in FILE (key=value lines) as a table with the ratios
"""

import argparse
import os
import re
import sys
import time

from benchlib import (Figures, poll_pause, print_table, proc_cpu_s, proc_status, tree_cpu_s,  # bench/benchlib.py
                      tree_minflt)
import urllib.request


def counter(url, source, name):
    try:
        text = urllib.request.urlopen(url, timeout=2).read().decode()
    except OSError:
        return None
    m = re.search(r'^triggerd_source_events_%s_total\{source="%s"\} (\S+)$' % (name, re.escape(source)),
                  text, re.M)
    return int(float(m.group(1))) if m else None


def acked(url, source):
    return counter(url, source, "acked")


def cmd_drain(a):
    tty = sys.stderr.isatty()
    also = [x.split("=", 1) for x in a.also]
    t_start = time.monotonic()
    # Start, connect, declare, consume: until the first message is in. The clock starts there, as
    # bench/kafka-http's does at its first record; the rate counts only what is acked after it.
    while True:
        if proc_status(a.pid) is None:
            print("triggerd exited before it received anything", file=sys.stderr)
            return 1
        if (counter(a.metrics, a.source, "received") or 0) > 0:
            break
        if time.monotonic() - t_start > a.stall_timeout:
            print(f"triggerd received nothing in {a.stall_timeout}s", file=sys.stderr)
            return 1
        time.sleep(0.005)
    t0 = time.monotonic()
    cpu0 = proc_cpu_s(a.pid)
    also0 = {name: tree_cpu_s(int(pid)) for name, pid in also}
    flt0 = {name: tree_minflt(int(pid)) for name, pid in also}
    acked0 = acked(a.metrics, a.source) or 0
    last, last_t, last_print = -1, t0, t0
    while True:
        n = acked(a.metrics, a.source)
        now = time.monotonic()
        st = proc_status(a.pid)
        if st is None:
            print(f"\ntriggerd exited during the drain ({n} acked)", file=sys.stderr)
            return 1
        if n is not None and n >= a.count:
            break
        if n != last:
            last, last_t = n, now
        elif now - last_t > a.stall_timeout:
            print(f"\nno progress for {a.stall_timeout}s ({n} of {a.count} acked)", file=sys.stderr)
            return 1
        line = f"  draining: {n or 0:>9,} / {a.count:,} acked  RSS {st['VmRSS'] / 1024:5.1f} MB"
        if tty and now - last_print >= 0.1:
            sys.stderr.write("\r" + line)
            last_print = now
        elif not tty and now - last_print >= 1.0:
            print(line.strip(), file=sys.stderr, flush=True)
            last_print = now
        time.sleep(poll_pause((n or 0) - acked0, a.count - acked0, now - t0))
    secs = time.monotonic() - t0
    cpu1 = proc_cpu_s(a.pid)
    st = proc_status(a.pid)
    if tty:
        sys.stderr.write("\r" + " " * 80 + "\r")
    n = a.count - acked0
    print(f"  drained {a.count:,} messages in {secs:.2f} s after the first one "
          f"({acked0} acked when the clock started)", file=sys.stderr, flush=True)
    print(f"td_entries={n}")
    print(f"td_seconds={secs:.6f}")
    print(f"td_rate={n / secs:.1f}")
    print(f"td_hwm_kb={st['VmHWM']}")
    print(f"td_cpu_s={cpu1 - cpu0:.3f}")
    for name, pid in also:
        print(f"{name}_cpu_s={tree_cpu_s(int(pid)) - also0[name]:.3f}")
        print(f"{name}_minflt={tree_minflt(int(pid)) - flt0[name]}")
    print(f"ncpu={os.cpu_count()}")
    return 0


def cmd_table(a):
    f = Figures(a.results)
    v, num, rate, mb, conns, ratio, us_per = f.v, f.num, f.rate, f.mb, f.count, f.ratio, f.us_per

    c, pf = v.get("concurrency", "?"), v.get("prefetch", "?")
    rows = [
        ("triggerd idle RSS (connected, before the load)", mb("td_idle_rss_kb"),
         f"of which anonymous {mb('td_idle_anon_kb')}"),
        ("triggerd end to end: backlog -> nginx -> basic.ack", rate("td_rate") + " ev/s",
         f"{int(num('td_entries') or 0):,} acked in {num('td_seconds') or 0:.2f} s from the first "
         f"message in; {num('td_cpu_s') or 0:.2f} CPU s, {us_per('td_cpu_s', 'td_entries')} us CPU/event"),
        ("triggerd peak RSS (VmHWM)", mb("td_hwm_kb"), ""),
        ("triggerd new connections to nginx", conns("td_conns"),
         f"for the whole run, concurrency {c}; issue 14: at most 2 x {c} = {f.conn_bound()}"
         f"{f.conn_over()}; the libcurl loop opened {conns('curl_conns')}"),
        (f"HTTP ceiling: wrk -t1 -c{c} -d{v.get('wrk_duration', '?')}", rate("wrk_rate") + " req/s",
         f"p50 {v.get('wrk_p50', '?')}, p99 {v.get('wrk_p99', '?')}"),
        (f"libcurl ceiling: bare multi loop, {c} in flight", rate("curl_rate") + " req/s",
         f"{int(num('curl_entries') or 0):,} POSTs; {us_per('curl_cpu_s', 'curl_entries')} us CPU/POST"),
        (f"RabbitMQ ceiling: consume + ack (C, prefetch {pf})", rate("raw_rate") + " ev/s",
         f"{int(num('raw_entries') or 0):,} messages, the same backlog"),
        ("ratio triggerd / wrk", ratio("td_rate", "wrk_rate"), ""),
        ("ratio triggerd / libcurl loop", ratio("td_rate", "curl_rate"), "issue 14 goal 2: >= 80 % (DESIGN §6: >= 70 %)"),
        f.rounds_row("curl", "issue 14 goal 2: >= 80 %"),
        ("ratio triggerd / raw RabbitMQ consume", ratio("td_rate", "raw_rate"), ""),
        ("CPU per event: libcurl loop / triggerd", f.cpu_ratio(),
         f"{us_per('curl_cpu_s', 'curl_entries')} vs {us_per('td_cpu_s', 'td_entries')} us "
         "(issue 14 goal 1: >= 83 %)"),
    ]
    # The broker and nginx run on the same CPUs as triggerd here: what they spent per event while
    # triggerd drained bounds the rate any consumer could reach on this machine.
    if num("rabbitmq_cpu_s") is not None and num("nginx_cpu_s") is not None:
        per = sum(num(k) for k in ("rabbitmq_cpu_s", "nginx_cpu_s", "td_cpu_s")) / max(num("td_entries") or 0, 1)
        ncpu = int(num("ncpu") or 1)
        bound_rate = ncpu / per if per > 0 else 0
        # New memory touched by the broker during the drain: page faults in its system time, the
        # mark of the slow rounds with BROKER_MEM=default (bench/README.md).
        faults = f.count("rabbitmq_minflt")
        rounds = int(num("rounds") or 1)
        faults_note = ""
        if rounds > 1:
            per_round = [faults] + [f.count(f"round{r}_rabbitmq_minflt") for r in range(2, rounds + 1)]
            faults_note = "; rounds: " + ", ".join(per_round)
        rows += [
            ("RabbitMQ broker CPU while triggerd drained", f"{us_per('rabbitmq_cpu_s', 'td_entries')} us",
             "per message (beam.smp and its children)"),
            ("RabbitMQ broker minor page faults while triggerd drained", faults,
             f"BROKER_MEM={v.get('broker_mem', '?')}{faults_note}"),
            ("RabbitMQ broker CPU while the C consumer drained", f"{us_per('raw_rabbitmq_cpu_s', 'raw_entries')} us",
             "per message, the same backlog (the ceiling's run): what the broker costs with a consumer doing nothing else"),
            ("nginx CPU while triggerd drained", f"{us_per('nginx_cpu_s', 'td_entries')} us",
             "per request"),
            ("machine bound: CPUs / (broker + nginx + triggerd)", f"{bound_rate:,.0f} ev/s",
             f"{ncpu} CPUs / {1e6 * per:.0f} us of CPU per event, all three together"),
            ("ratio triggerd / machine bound", f"{100 * (num('td_rate') or 0) / bound_rate:.0f} %"
             if bound_rate else "n/a", "how much of what this machine allows triggerd reaches"),
        ]
    # The broker's two modes (bench/README.md): a queue whose old generation references more
    # binaries than its limit gets a full sweep of its whole heap every other GC while it drains.
    def gc_mode(q):
        b, lim = num(f"rmq_{q}_bin_words"), num(f"rmq_{q}_limit_words")
        if b is None or lim is None:
            return "n/a", ""
        mode = "steady" if lim > b else "full sweeps"
        return mode, f"'{q}' references {b * 8 / 2**20:.0f} MB of binaries, limit {lim * 8 / 2**20:.0f} MB"

    (bm, bnote), (rm, rnote) = gc_mode("bench"), gc_mode("raw")
    if bm != "n/a":
        rows.append((f"RabbitMQ GC before the unmeasured drain (BROKER_GC={v.get('broker_gc', '?')})",
                     bm if rm in (bm, "n/a") else f"{bm} / {rm}", f"{bnote}; {rnote}"))
    print_table([r for r in rows if r])
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("drain")
    p.add_argument("--metrics", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--also", action="append", default=[], help="NAME=PID: a process tree to time")
    p.add_argument("--stall-timeout", type=float, default=30)
    p = sub.add_parser("table")
    p.add_argument("--results", required=True)
    a = ap.parse_args()
    return {"drain": cmd_drain, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
