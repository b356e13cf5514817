"""A RabbitMQ source that cannot connect says where and why, never just "a socket error occurred",
and never shows the password: a closed port (connection refused), a real node with a wrong password
(authentication refused, with the broker's reply text), a vhost that does not exist (vhost access), and
amqps:// against the node's plain AMQP port (TLS handshake). Each line names HOST:PORT."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from rabbitmq_fixture import RabbitMQServer, rabbit_source, run_rabbitmq_test  # noqa: E402

SECRET = "s3cr3t-Pa55"


def first_warning(cfg_source):
    cfg = config(sources={"q": cfg_source}, sinks={"fn": http_sink("http://127.0.0.1:9/")},
                 triggers=[trigger("t1", "q", "fn")])
    td = Triggerd(cfg)
    td.start()
    line = wait_until(lambda: next((l for l in td.logs() if l.get("source") == "q"
                                    and l.get("level") in ("warn", "error")), None),
                      20 * SLOW, desc="the source's first warning")
    td.terminate()
    td.wait(10 * SLOW)
    return (line or {}).get("msg", ""), "\n".join(td.raw_lines())


def body(c):
    rmq = RabbitMQServer()
    closed = free_port()
    cases = [
        ("closed port", f"amqp://guest:{SECRET}@127.0.0.1:{closed}/%2f", closed,
         ["connection refused"]),
        ("wrong password", f"amqp://guest:{SECRET}@127.0.0.1:{rmq.port}/%2f", rmq.port,
         ["authentication", "ACCESS_REFUSED"]),
        ("unknown vhost", f"amqp://guest:guest@127.0.0.1:{rmq.port}/nope", rmq.port,
         ["vhost", "nope"]),
        ("TLS to a plain port", f"amqps://guest:{SECRET}@127.0.0.1:{rmq.port}/%2f", rmq.port,
         ["TLS handshake"]),
    ]
    for what, url, port, words in cases:
        msg, text = first_warning(rabbit_source(url, "jobs"))
        log(f"{what}: {msg}")
        c.check(f"127.0.0.1:{port}" in msg, f"{what}: the line names host:port", msg)
        c.check(all(w.lower() in msg.lower() for w in words), f"{what}: the line says {words}", msg)
        c.check("a socket error occurred" not in msg, f"{what}: not just 'a socket error'", msg)
        c.check(SECRET not in text, f"{what}: the password appears nowhere in the log")


run_rabbitmq_test(body)
