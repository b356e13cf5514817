"""A reload that retires a RabbitMQ sink never holds up the loop thread while that sink closes.

A RabbitMQ sink closes its connection politely when it is freed: its thread sends
connection.close and waits for the broker's close-ok until TD_AMQP_CLOSE_MS (2 s). A reload
frees a retired generation's sinks once nothing of that generation is in flight (reload.c
collect), on the loop thread; freeing used to wait for the sink's thread there, so with a broker
that does not answer, no delivery, timer or reply ran for the whole daemon for 2 s.

The test freezes the RabbitMQ broker (SIGSTOP of its Erlang VM: its sockets stay open and
nothing answers, so the close waits for its deadline), then a reload removes the RabbitMQ sink
(its trigger now sends to a function) while an HTTP ingress trigger to the function stays. An event posted to the
ingress after the daemon logged "reloaded" must reach the function before the sink's thread
logs that it gave its close up: by order, not by a time limit. Before the fix the loop was
inside the free when the event came, and it came out only after that line. The sink's close
must still be given up with the broker frozen, the daemon must go on serving, and after the
broker resumes it shuts down cleanly (exit 0); the message published before the freeze is in
the queue once."""

import os
import signal
import sys
import threading

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, FunctionServer, Triggerd, config, frozen, http_sink,  # noqa: E402
                     log, trigger, wait_until)
from http_util import request, with_http  # noqa: E402
from rabbitmq_fixture import (RabbitMQServer, declare_queue, rabbit_sink, read_all,  # noqa: E402
                              run_rabbitmq_test)


def post_event(port, path, eid, out):
    headers = {"ce-specversion": "1.0", "ce-id": eid, "ce-source": "/test",
               "ce-type": "com.example.in", "Content-Type": "application/json"}
    try:
        out[eid] = request(port, "POST", path, body=b'{"x":1}', headers=headers,
                           timeout=300 * SLOW)[0]
    except Exception as e:  # noqa: BLE001 (reported by the check on out)
        out[eid] = repr(e)


def body(c):
    rmq = RabbitMQServer()
    ch = rmq.channel()
    declare_queue(ch, "out")
    fn = FunctionServer()

    def cfg_with(rabbit_too):
        # The ingress sources stay (adding or removing one needs a restart); the second
        # configuration sends /queue's events to the function and has no RabbitMQ sink.
        sources = {"in": {"http": {"path": "/events"}}, "inq": {"http": {"path": "/queue"}}}
        sinks = {"fn": http_sink(fn.url)}
        triggers = [trigger("ti", "in", "fn")]
        if rabbit_too:
            sinks["q"] = rabbit_sink(rmq.url, "", "out")
            triggers.append(trigger("tq", "inq", "q", timeout="30s"))
        else:
            triggers.append(trigger("tq", "inq", "fn"))
        cfg = config(sources, sinks, triggers)
        cfg["daemon"]["log"]["level"] = "info"
        return cfg

    first = cfg_with(True)
    port = with_http(first)
    td = Triggerd(first).start()
    c.check(td.wait_ready(60 * SLOW), "daemon ready")

    # One event through the RabbitMQ sink: its thread holds an open connection to the broker.
    answers = {}
    post_event(port, "/queue", "to-queue", answers)
    c.eq(answers.get("to-queue"), 202, "the ingress took the event for the queue")
    got = read_all(ch, "out", timeout=10 * SLOW)
    c.eq([b for _, b in got], [b'{"x":1}'], "the message is in the queue, once")
    post_event(port, "/events", "before", answers)
    c.check(wait_until(lambda: "before" in fn.ok_ids(), 30 * SLOW, interval=0.02),
            "an ingress event before the reload reached the function")

    def given_up_lines():
        return [l for l in td.logs() if "sink 'q': close given up" in str(l.get("msg", ""))]

    t = None
    with frozen(rmq.beam_pid()):
        second = cfg_with(False)
        second["daemon"]["http"] = first["daemon"]["http"]
        with open(td.config_path, "w") as f:
            f.write(yaml.safe_dump(second, sort_keys=False))
        td.signal(signal.SIGHUP)
        c.check(wait_until(lambda: any(str(l.get("msg", "")).startswith("reloaded")
                                       for l in td.logs()), 30 * SLOW, interval=0.02),
                "the reload retiring the RabbitMQ sink is done")
        # Nothing of the retired generation is in flight: the reload's collect timer, due at
        # once, tells its sink to stop; the close then waits 2 s for the frozen broker.
        t = threading.Thread(target=post_event, args=(port, "/events", "during", answers),
                             daemon=True)
        t.start()
        # Generous: before the fix this held only after the loop came out of the sink's free.
        delivered = wait_until(lambda: "during" in fn.ok_ids(), 120 * SLOW, interval=0.01)
        given_up_then = given_up_lines()
        c.check(delivered, "the ingress event posted during the retire reached the function "
                "while the RabbitMQ broker was frozen")
        c.eq(given_up_then, [], "... before the retired sink gave its close up (the loop did not "
             "wait for the sink's thread)")
        # A liveness bound, not a speed check: the close gives up 2 s after the stop.
        c.check(wait_until(lambda: given_up_lines(), 60 * SLOW, interval=0.05),
                "the retired sink gave its close up with the broker still frozen")
        post_event(port, "/events", "frozen-after", answers)
        c.check(wait_until(lambda: "frozen-after" in fn.ok_ids(), 30 * SLOW, interval=0.02),
                "the daemon goes on delivering with the broker frozen")

    if t:
        t.join(60 * SLOW)
    c.eq(answers.get("during"), 202, "the ingress answered 202 for the event posted during")
    td.terminate()
    c.eq(td.wait(60 * SLOW), 0, "clean shutdown")
    c.eq(read_all(ch, "out", timeout=1), [], "nothing more reached the queue")
    c.eq(td.sanitizer_reports(), [], "no sanitizer reports")
    if c.failed:
        log(f"answers: {answers}")
        td.dump_tail(60)


if __name__ == "__main__":
    run_rabbitmq_test(body)
