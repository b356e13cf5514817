"""RedisServer's start loop with a real redis-server: a port clash, then a failure of another kind.

Every start of one RedisServer appends to the same log file. After a first start that lost its
port to another process, the log says "Address already in use"; a second start on a new port
that fails for another reason must raise that start's own error at once, not be taken for a
clash again because of the first start's lines (which gave it a third start, and an error that
could name the old clash).

The port the constructor draws first (harness.free_port) is one this test holds listening, so the
first start clashes; the second draw is a free port, where redis-server binds and then fails to
load a module that does not exist (it loads modules after it binds its port). No triggerd runs.
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Checks, run_test  # noqa: E402


class CountingRedis(harness.RedisServer):
    starts = 0

    def start(self):
        CountingRedis.starts += 1
        return super().start()


def body(c: Checks):
    held = socket.socket()
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    taken = held.getsockname()[1]
    draws = []
    real_free_port = harness.free_port

    def free_port():
        port = taken if not draws else real_free_port()
        draws.append(port)
        return port

    harness.free_port = free_port
    try:
        err = None
        try:
            CountingRedis(extra_args=["--loadmodule", "/nonexistent/td-no-such-module.so"])
        except RuntimeError as e:
            err = str(e)
    finally:
        harness.free_port = real_free_port
        held.close()

    c.check(err is not None, "the constructor raises when the start after the clash fails")
    c.eq(draws[0], taken, "the first start was on the held port (a clash)")
    c.eq(CountingRedis.starts, 2, "two starts: the clash, then the failure of another kind, raised "
         "at once (the first start's lines in the shared log are not this start's)")
    c.check(err is not None and "td-no-such-module" in err and "Address already in use" not in err,
            "the error is the second start's own (the module), not the first start's clash",
            (err or "")[-300:])


if __name__ == "__main__":
    run_test(body, needs_triggerd=False)
