"""JSON data as written, from RabbitMQ: structured-mode messages (content_type property
application/cloudevents+json, the event JSON as the body, decoded by broker/wire/ce_amqp.c
through td_ce_from_json) carry pretty-printed data with numbers a double cannot hold exactly
(json_fidelity.py). The binary-mode function must get the data member's text byte for byte, the
structured-mode function and a file dead-letter target the same numbers and strings without the
blanks between tokens; and the queue must end empty with nothing unacknowledged (each message
delivered once to each trigger, then acked)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOW, FunctionServer, Triggerd, config, wait_until  # noqa: E402
from json_fidelity import (DATA, PRETTY_DATA, check_fidelity, dead_letter_file,  # noqa: E402
                           event, fidelity_sinks, fidelity_triggers, pretty_event, refuse_f)
from rabbitmq_fixture import (RabbitMQServer, declare_queue, pika, rabbit_source,  # noqa: E402
                              run_rabbitmq_test, wait_drained)

QUEUE = "fidelity"
# (id, body, content_type): the event on one line but for its data, the whole event
# pretty-printed with a trailing newline, and a content type with a parameter.
MESSAGES = [("amqp-1", event("amqp-1"), "application/cloudevents+json"),
            ("amqp-2", pretty_event("amqp-2"), "application/cloudevents+json"),
            ("amqp-3", event("amqp-3"), "application/cloudevents+json; charset=utf-8")]
WANT = {"amqp-1": DATA, "amqp-2": PRETTY_DATA, "amqp-3": DATA}


def body(c):
    rmq = RabbitMQServer()
    ch = rmq.channel()
    declare_queue(ch, QUEUE)
    ch.confirm_delivery()
    for _, text, ct in MESSAGES:
        # No message-id: the event's own id must be the one delivered.
        ch.basic_publish("", QUEUE, text.encode(),
                         pika.BasicProperties(content_type=ct, delivery_mode=2))
    c.check(wait_until(lambda: rmq.queue_counts(QUEUE) == (len(MESSAGES), 0), 20 * SLOW),
            "the queue holds the three messages", rmq.queue_counts(QUEUE))

    fn = FunctionServer(refuse_f)
    dlfile = dead_letter_file()
    cfg = config(sources={"q": rabbit_source(rmq.url, QUEUE)},
                 sinks=fidelity_sinks(fn.url, dlfile), triggers=fidelity_triggers("q"))
    td = Triggerd(cfg).start()
    if not c.check(td.wait_ready(20), "daemon ready"):
        return
    check_fidelity(c, fn, dlfile, WANT, 30 * SLOW, "RabbitMQ")
    c.check(wait_drained(rmq, QUEUE, 20), "queue empty with nothing unacknowledged",
            rmq.queue_counts(QUEUE))
    td.terminate()
    c.eq(td.wait(30 * SLOW), 0, "exit 0")


run_rabbitmq_test(body)
