"""CPU time of a process, and of a process tree, from /proc: what the benches charge to triggerd
and to the servers beside it (redis-server, RabbitMQ, nginx)."""

import os


def proc_cpu_s(pid):
    """User + system CPU seconds of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(root):
    """CPU seconds of root and every process below it (RabbitMQ's beam.smp runs under the
    rabbitmq-server script; nginx's worker under its master)."""
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
    total, todo = 0.0, [root]
    while todo:
        p = todo.pop()
        total += proc_cpu_s(p) or 0.0
        todo.extend(kids.get(p, []))
    return total
