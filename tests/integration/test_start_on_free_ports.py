"""harness.start_on_free_ports, the retry loop RedisServer, KafkaBroker and RabbitMQServer start
their servers with, on its own: no server, no binary, well under a second.

A fake server whose start() fails with a port clash its first N times stands in for a broker
whose ports another process bound first. The loop must start it again after each clash (logging
the clash once, then configuring new ports, in that order), stop after `attempts` starts and
raise the last start's own error (not retry forever, not call new_ports() for a start that will
not come), and raise a failure that is no clash, or that is no RuntimeError, at once. A start()
called far more often than any bound here raises an error the loop does not catch, so a loop that
retries forever fails this test instead of hanging it.
"""

import contextlib
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Checks, run_test, start_on_free_ports  # noqa: E402

RUNAWAY = 50  # starts after which the fake gives up on the loop under test


class RetriedForever(Exception):
    """Not a RuntimeError: the loop under test lets it through."""


class FakeServer:
    """start() fails with a clash on its port `clashes` times, then with `then` (an exception)
    if given, else succeeds; events records what the loop called, in order."""

    def __init__(self, clashes, then=None):
        self.clashes = clashes
        self.then = then
        self.port = 40000
        self.starts = 0
        self.errors = []  # every exception start() raised, in order
        self.events = []

    def start(self):
        self.starts += 1
        self.events.append(("start", self.port))
        if self.starts > RUNAWAY:
            raise RetriedForever(f"start() called {self.starts} times")
        if self.starts <= self.clashes:
            e = RuntimeError(f"server exited: bind 127.0.0.1:{self.port}: Address already in use")
        elif self.then is not None:
            e = self.then
        else:
            return f"up on {self.port}"
        self.errors.append(e)
        raise e

    def clash(self, e):
        self.events.append(("clash", e))
        if "Address already in use" in str(e):
            return f"127.0.0.1:{self.port}"
        return None

    def new_ports(self):
        self.events.append(("new_ports", self.port))
        self.port += 1


def run(fake, attempts=None, name="fake server"):
    """(what start_on_free_ports returned or raised, its log lines)."""
    out = io.StringIO()
    kw = {} if attempts is None else {"attempts": attempts}
    with contextlib.redirect_stdout(out):
        try:
            result = start_on_free_ports(name, fake.start, fake.clash, fake.new_ports, **kw)
        except BaseException as e:  # whatever escapes is what is checked
            result = e
    return result, out.getvalue().splitlines()


def body(c: Checks):
    # No clash: one start, no new ports, nothing logged.
    fake = FakeServer(0)
    got, lines = run(fake)
    c.eq(got, "up on 40000", "a server that starts is returned from the first start")
    c.eq((fake.starts, lines), (1, []), "no clash: one start, nothing logged")

    # Clashes below the bound: started again on new ports each time, each retry logged once.
    for clashes in (1, 2):
        fake = FakeServer(clashes)
        got, lines = run(fake)
        c.eq(got, f"up on {40000 + clashes}",
             f"{clashes} clash(es): up on the new ports of start {clashes + 1}")
        c.eq(fake.starts, clashes + 1, f"{clashes} clash(es): {clashes + 1} starts")
        c.eq(len(lines), clashes, f"{clashes} clash(es): one log line per retry")
    c.eq(lines, ["fake server: a port was taken by another process (127.0.0.1:40000); starting "
                 "again on new ports (try 2 of 3)",
                 "fake server: a port was taken by another process (127.0.0.1:40001); starting "
                 "again on new ports (try 3 of 3)"],
         "each retry's line names the server, the port that clashed and the try")
    c.eq([ev[0] for ev in fake.events],
         ["start", "clash", "new_ports", "start", "clash", "new_ports", "start"],
         "after a clash, new ports are configured before the next start")

    # Clashes up to the bound: gives up after the third start with that start's own error.
    fake = FakeServer(3)
    got, lines = run(fake)
    c.eq(fake.starts, 3, "3 clashes: gives up after 3 starts (the default bound)")
    c.check(got is fake.errors[-1], "3 clashes: the last start's RuntimeError is raised as it is",
            repr(got))
    c.eq(sum(1 for ev in fake.events if ev[0] == "new_ports"), 2,
         "3 clashes: no new ports for a start that does not come")
    c.eq(len(lines), 2, "3 clashes: two retries logged")

    # A port that keeps clashing: bounded, whatever the bound.
    for attempts in (1, 5):
        fake = FakeServer(1000)
        got, lines = run(fake, attempts=attempts)
        c.check(not isinstance(got, RetriedForever),
                f"always clashing, attempts={attempts}: does not retry forever", repr(got))
        c.eq(fake.starts, attempts, f"always clashing, attempts={attempts}: {attempts} starts")
        c.check(got is fake.errors[-1], f"always clashing, attempts={attempts}: the last error "
                "is raised", repr(got))
    got, lines = run(FakeServer(0), attempts=0)
    c.check(isinstance(got, ValueError), "attempts=0 is refused", repr(got))

    # A failure that is no clash is raised at once, also after a clash.
    for clashes in (0, 1):
        boom = RuntimeError("server did not answer PING")
        fake = FakeServer(clashes, then=boom)
        got, lines = run(fake)
        c.check(got is boom, f"{clashes} clash(es), then another failure: raised as it is",
                repr(got))
        c.eq(fake.starts, clashes + 1, f"{clashes} clash(es), then another failure: not retried")
    # ... and so is any error that is no RuntimeError (a subprocess timeout, a bug in start()).
    boom = ValueError("not a RuntimeError")
    fake = FakeServer(1, then=boom)
    got, lines = run(fake)
    c.check(got is boom and fake.starts == 2, "an error that is no RuntimeError is not retried",
            f"{got!r} after {fake.starts} starts")

    # The name may be a callable, asked at the retry: a RabbitMQ node's name has its old port.
    fake = FakeServer(1)
    got, lines = run(fake, name=lambda: f"node td{fake.port}")
    c.check(len(lines) == 1 and lines[0].startswith("node td40000: "),
            "a callable name is evaluated before new_ports()", lines)


if __name__ == "__main__":
    run_test(body, needs_triggerd=False, needs_redis=False)
