#!/usr/bin/python3
"""The chaos harness's checks can fail: each invariant is fed a small synthetic record (function
log, dead-letter stream, broker snapshots) once healthy and once with the violation it exists to
catch, and must pass the first and fail the second. No broker, no daemon: a second or so."""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import invariants as inv  # noqa: E402
from chaos_function import event_number, is_poison  # noqa: E402
from harness import Checks, Request, run_test  # noqa: E402


class FakeFn:
    def __init__(self):
        self.reqs = []

    def add(self, n, t, status=200, completed=True):
        r = Request()
        r.body = json.dumps({"n": n, "k": "key0"}).encode()
        r.headers = {}
        r.t_arrival, r.t_reply, r.t_done = t, t + 0.01, t + 0.01
        r.status, r.completed = status, completed
        self.reqs.append(r)

    def snapshot(self):
        return list(self.reqs)


def dl_entry(n, t_mono, reason="final_status"):
    wall_ms = int((t_mono - (time.monotonic() - time.time())) * 1000)
    return (f"{wall_ms}-0", {"data": json.dumps({"n": n}), "ce_deadletterreason": reason})


class KafkaLike:
    """acked_in: the events below a committed offset of partition 0 (offset = event number)."""

    def __init__(self, ns):
        self.order = {n: (0, n) for n in ns}

    def acked_in(self, sample):
        return {n for n in self.order if n < sample["committed"]}


def body(c: Checks):
    produced = {n: "key0" for n in range(5)}
    t0 = time.monotonic()

    # Healthy: 0..4 in order, 13 is poison and dead-lettered.
    fn = FakeFn()
    for n in range(5):
        fn.add(n, t0 + n)
    out = inv.Outcomes(fn, [], event_number)
    c.check(inv.check_no_loss(produced, out)[0], "no loss passes when all delivered")
    fn2 = FakeFn()
    for n in range(4):
        fn2.add(n, t0 + n)
    fn2.add(4, t0 + 4, status=503)
    out2 = inv.Outcomes(fn2, [], event_number)
    ok, msg, lost = inv.check_no_loss(produced, out2)
    c.check(not ok and lost == [4], "no loss fails when event 4 only got a 503", msg)
    out3 = inv.Outcomes(fn2, [dl_entry(4, t0 + 4.1, reason="retries_exhausted")], event_number)
    c.check(inv.check_no_loss(produced, out3)[0], "no loss passes when 4 is dead-lettered")
    out4 = inv.Outcomes(fn2, [dl_entry(4, t0 + 4.1, reason="")], event_number)
    c.check(not inv.check_no_loss(produced, out4)[0], "no loss fails on a dead letter without reason")

    pp = {13: "key0"}
    fnp = FakeFn()
    fnp.add(13, t0, status=400)
    c.check(not inv.check_poison(pp, inv.Outcomes(fnp, [], event_number), is_poison)[0],
            "poison check fails when 13 is not dead-lettered")
    c.check(inv.check_poison(pp, inv.Outcomes(fnp, [dl_entry(13, t0 + 0.1)], event_number),
                             is_poison)[0], "poison check passes when it is")
    c.check(not inv.check_poison(pp, inv.Outcomes(fnp, [dl_entry(13, t0 + 0.1, "retries_exhausted")],
                                                  event_number), is_poison)[0],
            "poison check fails on retries_exhausted right after a 400")
    c.check(inv.check_poison(pp, inv.Outcomes(FakeFn(), [dl_entry(13, t0 + 0.1, "retries_exhausted")],
                                              event_number), is_poison)[0],
            "poison check passes on retries_exhausted when the function never answered")

    # Ack after outcome: committed 3 at t0+2.5 while event 2 was answered at t0+2.01: fine; a
    # snapshot at t0+1.5 with committed 3 acknowledges event 2 before its 2xx.
    k = KafkaLike(range(5))
    c.check(inv.check_ack_after_outcome(k, [(t0 + 2.5, {"committed": 3})], produced, out)[0],
            "ack check passes when the commit follows the answers")
    ok, msg, nv = inv.check_ack_after_outcome(k, [(t0 + 1.5, {"committed": 3})], produced, out)
    c.check(not ok and nv == 1, "ack check fails on a commit ahead of event 2's answer", msg)

    class RabbitLike:
        def acked_in(self, s):
            return None
    rs = {"depth": 2, "ns": set(range(5))}  # at t0+2.5 events 3 and 4 are unsettled: depth >= 2
    c.check(inv.check_ack_after_outcome(RabbitLike(), [(t0 + 2.5, rs)], produced, out)[0],
            "queue-depth check passes with depth = unsettled")
    rs = {"depth": 1, "ns": set(range(5))}
    c.check(not inv.check_ack_after_outcome(RabbitLike(), [(t0 + 2.5, rs)], produced, out)[0],
            "queue-depth check fails with depth < unsettled")

    # Ordering: healthy; a redelivery of 1 after 3 (a duplicate) is fine; 3 before 2 is not; 3
    # reaching the function while 2 is still failing is not.
    c.check(inv.check_ordering(k, produced, out)[0], "ordering passes in order")
    fnd = FakeFn()
    for n in range(5):
        fnd.add(n, t0 + n)
    fnd.add(1, t0 + 3.5)
    c.check(inv.check_ordering(k, produced, inv.Outcomes(fnd, [], event_number))[0],
            "ordering passes with a late duplicate of 1")
    fno = FakeFn()
    for n, t in ((0, 0), (1, 1), (3, 2), (2, 3), (4, 4)):
        fno.add(n, t0 + t)
    ok, msg, worst = inv.check_ordering(k, produced, inv.Outcomes(fno, [], event_number))
    c.check(not ok and worst >= 1, "ordering fails when 3 succeeds before 2", msg)
    fnh = FakeFn()
    for n in range(5):
        fnh.add(n, t0 + n)
    fnh.reqs[2].status = 503  # 2 fails at t0+2, succeeds at t0+3.5; 3 arrived at t0+3
    fnh.add(2, t0 + 3.5)
    ok, msg, worst = inv.check_ordering(k, produced, inv.Outcomes(fnh, [], event_number))
    c.check(not ok, "ordering fails when 3 is sent while 2 is still unsettled", msg)

    # 2 dead-lettered at t0+2.2 (retries ran out), 3 and 4 delivered after it, then 2 redelivered
    # after a crash and answered 2xx at t0+6: a duplicate, not 3 before 2. Without the dead letter
    # it is a violation.
    fnr = FakeFn()
    for n in range(5):
        fnr.add(n, t0 + n)
    fnr.reqs[2].status = 503
    fnr.add(2, t0 + 6)
    ok, msg, _ = inv.check_ordering(k, produced, inv.Outcomes(
        fnr, [dl_entry(2, t0 + 2.2, reason="retries_exhausted")], event_number))
    c.check(ok, "ordering passes when 2 was dead-lettered before 3 and redelivered later", msg)
    c.check(not inv.check_ordering(k, produced, inv.Outcomes(fnr, [], event_number))[0],
            "ordering fails when 2's only outcome is a 2xx after 3 and 4")

    # Duplicates: explained inside a window, not outside.
    dups = inv.duplicates(inv.Outcomes(fnd, [], event_number))
    c.eq(len(dups), 1, "one duplicate counted")
    c.check(inv.check_duplicates_explained(dups, [(t0 + 3, t0 + 4, "kill")])[0],
            "a duplicate inside a kill window is explained")
    c.check(not inv.check_duplicates_explained(dups, [(t0 + 10, t0 + 20, "kill")])[0],
            "a duplicate outside every window is not")


run_test(body, needs_triggerd=False)
