"""The function stand-in of the chaos harness: harness.FunctionServer (which records every attempt)
with a behaviour that can be switched at run time between healthy, slow, failing (transient 5xx) and
unreachable (its listening socket closed, then reopened on the same port), and a fixed set of events
that always get a permanent 400 (they must end in the dead-letter target).

Every event body is JSON with "n" (the event's number) and "k" (its key); the daemon that sent an
attempt is named by the X-Chaos-Gen header its sink adds (one value per daemon process run).
"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import FunctionServer, _Handler, _Server  # noqa: E402

POISON_MOD = 97  # n % 97 == 13 is answered 400 every time: a permanent failure


def is_poison(n):
    return n % POISON_MOD == 13


def event_number(req):
    """The event number of a request, or None when its body is not one of ours."""
    try:
        d = json.loads(req.body)
        return int(d["n"])
    except (ValueError, KeyError, TypeError):
        return None


class ChaosFunction(FunctionServer):
    def __init__(self, rnd_seed):
        import random
        self.mode = "ok"  # ok | slow | failing
        self.slow_s = 0.3
        self.fail_ratio = 0.7
        self._rnd = random.Random(rnd_seed)  # the answers of a failing window (seeded too)
        self._rnd_lock = threading.Lock()
        super().__init__(self._behave)

    def _behave(self, req, attempt):
        n = event_number(req)
        if n is not None and is_poison(n):
            return (400, {"Content-Type": "text/plain"}, b"permanently bad event", 0)
        if self.mode == "failing":
            with self._rnd_lock:
                fail = self._rnd.random() < self.fail_ratio
            if fail:
                return (503, {"Content-Type": "text/plain"}, b"chaos: transient failure", 0)
        if self.mode == "slow":
            return (200, {}, b"", self.slow_s)
        return (200, {}, b"", 0)

    # ---- unreachable: the port is closed (connection refused), then reopened

    def go_down(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def come_up(self):
        if self.httpd is not None:
            return
        for _ in range(100):  # the port was ours a moment ago; SO_REUSEADDR makes this quick
            try:
                self.httpd = _Server(("127.0.0.1", self.port), _Handler)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"could not listen on {self.port} again")
        self.httpd.fn = self
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
