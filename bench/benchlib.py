"""What the Python halves of the benches share: CPU time and memory read from /proc (what the
benches charge to triggerd and to the servers beside it: redis-server, RabbitMQ, nginx), and the
key=value figures of a run printed as the table each bench ends with."""

import os
import statistics


def proc_cpu_s(pid):
    """User + system CPU seconds of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_pids(root):
    """root and every process below it (RabbitMQ's beam.smp runs under the rabbitmq-server
    script; nginx's worker under its master)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_cpu_s(root):
    """CPU seconds of root and every process below it."""
    return sum(proc_cpu_s(p) or 0.0 for p in tree_pids(root))


def tree_minflt(root):
    """Minor page faults of root and every process below it: a process that maps fresh memory
    and touches it pays one per page, in system time."""
    total = 0
    for p in tree_pids(root):
        try:
            with open(f"/proc/{p}/stat") as f:
                total += int(f.read().rsplit(")", 1)[1].split()[7])
        except (OSError, ValueError, IndexError):
            pass
    return total


def proc_status(pid):
    """VmRSS, VmHWM and RssAnon in KiB, or None when the process is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon"):
                    out[k] = int(v.split()[0])
    except OSError:
        return None
    return out


def poll_pause(done, count, elapsed):
    """Seconds to a drain's next progress poll (triggerd's /metrics, or the Redis group), DONE of
    COUNT after ELAPSED seconds: half the time the rest should take at the rate so far, between
    2 ms and 100 ms. A poll costs the shared CPUs about 0.6 ms of Python that is charged to no
    one: polling every 20 ms took 1-2 % of the 2 CPUs during a RabbitMQ drain; this polls about
    25 times in a 2 s drain and still sees the end within a few ms."""
    if done <= 0 or elapsed <= 0:
        return 0.005
    eta = (count - done) * elapsed / done
    return min(0.1, max(0.002, eta / 2))


def fmt_int(n):
    return f"{n:,.0f}"


class Figures:
    """The key=value lines a bench collected in its results file, and the ways the tables show
    them; a figure that is missing or not a number shows as n/a (or ?) instead of failing."""

    def __init__(self, path):
        self.v = {}
        with open(path) as f:
            for line in f:
                k, sep, val = line.strip().partition("=")
                if sep:
                    self.v[k] = val

    def get(self, k, default=None):
        return self.v.get(k, default)

    def num(self, k):
        try:
            return float(self.v[k])
        except (KeyError, ValueError):
            return None

    def rate(self, k):
        x = self.num(k)
        return "n/a" if x is None else f"{x:,.0f}"

    def mb(self, k):
        x = self.num(k)
        return "n/a" if x is None else f"{x / 1024:.1f} MB"

    def count(self, k):
        x = self.num(k)
        return "n/a" if x is None else f"{x:.0f}"

    def ratio(self, a, b):
        x, y = self.num(a), self.num(b)
        return "n/a" if not x or not y else f"{100 * x / y:.0f} %"

    def us_per(self, cpu_k, n_k):
        x, y = self.num(cpu_k), self.num(n_k)
        return "?" if x is None or not y else f"{1e6 * x / y:.0f}"

    def cpu_ratio(self, p="td", q="curl"):
        """q's CPU per item over p's, from {p,q}_cpu_s and {p,q}_entries: above 100 %, p costs
        less per item."""
        pc, pn, qc, qn = (self.num(f"{p}_cpu_s"), self.num(f"{p}_entries"), self.num(f"{q}_cpu_s"),
                          self.num(f"{q}_entries"))
        if not (pc and pn and qc and qn):
            return "n/a"
        return f"{100 * (qc / qn) / (pc / pn):.0f} %"

    def rounds_row(self, ceiling, goal):
        """rounds_row() over these figures."""
        return rounds_row(self.num, ceiling, goal)

    def conn_bound(self):
        """Issue 14 goal 3: at most 2 x concurrency new connections for a whole run."""
        return 2 * int(self.num("concurrency") or 0)

    def conn_over(self, k="td_conns"):
        x = self.num(k)
        return " (OVER)" if x is not None and x > self.conn_bound() else ""


def rounds_row(num, ceiling, goal):
    """With more than one round (num("rounds")), a table row: triggerd's rate over CEILING's in
    each round (the first round's keys td_rate and CEILING_rate, round R's roundR_td_rate and
    roundR_CEILING_rate, looked up with num) and their median; None with one round. One run's
    ratio moves by 10 points and more on a 2-CPU machine the broker and nginx share with
    triggerd."""
    rounds = int(num("rounds") or 1)
    if rounds < 2:
        return None
    pairs = [(num("td_rate"), num(f"{ceiling}_rate"))]
    pairs += [(num(f"round{r}_td_rate"), num(f"round{r}_{ceiling}_rate")) for r in range(2, rounds + 1)]
    ratios = [100 * t / c for t, c in pairs if t and c]
    if not ratios:
        return None
    name = "libcurl loop" if ceiling == "curl" else ceiling
    return (f"ratio triggerd / {name}, median of {len(ratios)} rounds",
            f"{statistics.median(ratios):.0f} %",
            "rounds: " + ", ".join(f"{x:.0f}" for x in ratios) + f" %; {goal}")


def print_table(rows):
    """rows: (figure, value, note) triples, printed as aligned columns."""
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'figure':<{w0}}  {'value':>{w1}}  note")
    print(f"{'-' * w0}  {'-' * w1}  {'-' * 30}")
    for name, val, note in rows:
        print(f"{name:<{w0}}  {val:>{w1}}  {note}".rstrip())
