"""The invariants of a chaos run, checked after it from three independent records: what the broker
holds (produced events, acknowledgement samples), what the function saw (every attempt, its answer
and reply time, the daemon generation that sent it) and the dead-letter stream. Each check returns
(ok, message); tests/chaos/README.md defines each one precisely."""

import json
import time

OK_RANGE = range(200, 300)


class Outcomes:
    """What happened to each event, from the function's log and the dead-letter stream."""

    def __init__(self, fn, dl_entries, event_number):
        mono_minus_wall = time.monotonic() - time.time()
        self.attempts = {}  # n -> [requests in arrival order]
        for r in fn.snapshot():
            n = event_number(r)
            if n is not None:
                self.attempts.setdefault(n, []).append(r)
        self.ok = {}  # n -> [2xx requests whose answer was written]
        for n, rs in self.attempts.items():
            oks = [r for r in rs if r.completed and r.status in OK_RANGE]
            if oks:
                self.ok[n] = oks
        self.dead = {}  # n -> [(monotonic time of the dead letter, reason)]
        for eid, f in dl_entries:
            try:
                n = int(json.loads(f.get("data", ""))["n"])
            except (ValueError, KeyError, TypeError):
                continue
            t = int(eid.split("-")[0]) / 1000.0 + mono_minus_wall
            self.dead.setdefault(n, []).append((t, f.get("ce_deadletterreason", "")))

    def first_ok(self, n):
        oks = self.ok.get(n)
        return min(r.t_reply for r in oks) if oks else None

    def settled_at(self, n):
        """The first moment the event's outcome was known: its first 2xx answer, its first final
        4xx answer, or its dead letter, whichever came first; None if never."""
        ts = []
        if n in self.ok:
            ts.append(self.first_ok(n))
        for r in self.attempts.get(n, []):
            if r.completed and r.status is not None and 400 <= r.status < 500 and \
                    r.status not in (408, 429):
                ts.append(r.t_reply)
                break
        if n in self.dead:
            ts.append(min(t for t, _ in self.dead[n]))
        return min(ts) if ts else None


def check_no_loss(produced, out):
    lost = sorted(n for n in produced if n not in out.ok and n not in out.dead)
    no_reason = sorted(n for n in produced if n in out.dead and n not in out.ok
                       and not all(reason for _, reason in out.dead[n]))
    ok = not lost and not no_reason
    msg = (f"no loss: every one of {len(produced)} produced events got a 2xx or is in the "
           f"dead-letter stream with a reason")
    if lost:
        msg += f"; LOST {len(lost)}: {lost[:20]}"
    if no_reason:
        msg += f"; dead-lettered without deadletterreason: {no_reason[:20]}"
    return ok, msg, lost


def check_poison(produced, out, is_poison):
    """Every permanently failing event is dead-lettered, never answered 2xx, and when the function's
    last answer before its (first) dead letter was the 400, the reason is final_status. (When every
    attempt failed to connect, e.g. while the function was unreachable, retries_exhausted is right.)"""
    bad = []
    for n in sorted(n for n in produced if is_poison(n)):
        dls = out.dead.get(n, [])
        if not dls or n in out.ok:
            bad.append((n, "not dead-lettered" if not dls else "answered 2xx"))
            continue
        t_dl = min(t for t, _ in dls)
        answered = [r for r in out.attempts.get(n, [])
                    if r.completed and r.t_reply is not None and r.t_reply <= t_dl + SLACK]
        last = max(answered, key=lambda r: r.t_reply) if answered else None
        if last is not None and last.status == 400 and \
                not any(reason == "final_status" for _, reason in dls):
            bad.append((n, f"reasons {[r for _, r in dls]} after a 400"))
    return not bad, (f"permanent 4xx: every poison event is dead-lettered, with reason final_status "
                     f"after a 400" + (f"; WRONG: {bad[:20]}" if bad else "")), len(bad)


SLACK = 0.005  # the dead-letter entry id's clock is in milliseconds


def check_ack_after_outcome(adapter, samples, produced, out):
    """samples: [(monotonic time after the snapshot was taken, snapshot)]."""
    viol = []
    for t_after, s in samples:
        if s is None:
            continue
        acked = adapter.acked_in(s)
        if acked is None:  # RabbitMQ: count, not names
            unknown = sum(1 for n in s["ns"]
                          if (out.settled_at(n) is None or out.settled_at(n) > t_after + SLACK))
            if s["depth"] < unknown:
                viol.append((round(t_after, 2), f"queue depth {s['depth']} < {unknown} confirmed "
                             f"events without an outcome"))
            continue
        for n in sorted(acked):
            st = out.settled_at(n)
            if st is None or st > t_after + SLACK:
                viol.append((round(t_after, 2), f"event {n} acknowledged before its outcome "
                             f"(settled at {st})"))
    return not viol, (f"ack only after outcome: {len(samples)} broker snapshots, "
                      f"no acknowledgement ahead of a 2xx or dead letter"
                      + (f"; {len(viol)} VIOLATIONS: {viol[:10]}" if viol else "")), len(viol)


def check_ordering(adapter, produced, out):
    """ordering: key. Per key, events in production order (partition offset). Two violations:
    (a) first 2xx answers out of production order; (b) an attempt of an event that reached the
    function before an earlier event of its key was settled (2xx, final 4xx or dead letter).
    Redelivery of an already settled event is a duplicate, not a violation: also when it was
    settled by a dead letter and the redelivery got a 2xx (kafka seed 22545, 7 min: retries ran out
    on a failing function, the daemon was SIGKILLed before the commit and the record came back)."""
    per_key = {}
    for n in sorted(produced, key=lambda n: adapter.order.get(n, (0, n))):
        per_key.setdefault(produced[n], []).append(n)
    worst = 0
    examples = []
    total = 0
    for key, ns in per_key.items():
        v = 0
        last_ok = None
        last_ok_n = None
        held_until, held_n = None, None
        for n in ns:
            fo = out.first_ok(n)
            st = out.settled_at(n)
            # An event whose outcome was a dead letter (or a final 4xx) before any 2xx was settled
            # then; a 2xx that comes later (a redelivery after a crash, before the commit) is a
            # duplicate, and its place in the order is its settlement.
            if fo is not None and st is not None and st < fo:
                fo = st
            if fo is not None:
                if last_ok is not None and fo < last_ok:
                    v += 1
                    examples.append(f"{key}: first 2xx of {n} before that of {last_ok_n}")
                if last_ok is None or fo > last_ok:
                    last_ok, last_ok_n = fo, n
            atts = out.attempts.get(n)
            if atts and held_until is not None and atts[0].t_arrival < held_until - SLACK:
                v += 1
                examples.append(f"{key}: {n} reached the function "
                                f"{held_until - atts[0].t_arrival:.3f}s before {held_n} was settled")
            if st is not None and (held_until is None or st > held_until):
                held_until, held_n = st, n
        worst = max(worst, v)
        total += v
    return worst == 0, (f"ordering (key): per key, first 2xx in production order and nothing "
                        f"delivered while an earlier event of the key was unsettled"
                        + (f"; {total} VIOLATIONS, e.g. {examples[:6]}" if total else "")), worst


def duplicates(out):
    """[(n, monotonic arrival of each extra 2xx beyond the first)]."""
    res = []
    for n, oks in out.ok.items():
        for r in sorted(oks, key=lambda r: r.t_reply)[1:]:
            res.append((n, r.t_arrival))
    return res


def check_duplicates_explained(dups, windows):
    """windows: [(start, end, what)] around crashes, rebalances and broker restarts."""
    unexplained = [(n, round(t, 2)) for n, t in dups
                   if not any(a <= t <= b for a, b, _ in windows)]
    return not unexplained, (f"duplicates explained: {len(dups)} duplicate 2xx deliveries, all "
                             f"within a crash/rebalance/broker-restart window"
                             + (f"; {len(unexplained)} UNEXPLAINED (event, time): "
                                f"{unexplained[:10]}" if unexplained else "")), len(unexplained)
