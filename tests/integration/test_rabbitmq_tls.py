"""RabbitMQ over TLS against a real node that requires it: one node with a plain listener (the
test's own pika client) and a TLS listener with ssl_options.verify = verify_peer and
fail_if_no_peer_cert = true, offering EXTERNAL (rabbitmq_auth_mechanism_ssl, CN as user name).

One daemon consumes over amqps:// with acks (a PLAIN login whose password is a canary secret, plus a
client certificate), dead-letters a function's 4xx to a RabbitMQ sink over amqps:// (and `triggerd
redrive` reads them back through that sink's settings), consumes a second
queue as a user that has no password at all (auth_mechanism: external, tls.cert_file/key_file) and
publishes it on with publisher confirms through a RabbitMQ sink that logs in with EXTERNAL too, and a
third source connects with tls.insecure_skip_verify. Every message is counted in and out: nothing
lost, nothing left unacknowledged. `triggerd publish amqps://...&auth_mechanism=external` arrives.
Refused: a client without a certificate (daemon and publish), EXTERNAL with a certificate whose CN
is no user, a server name the certificate does not carry (server_name_indication). `triggerd
check`: a TLS file that is not PEM is an error at its file:line:column, a missing one a warning
(and `run` refuses to start), auth_mechanism: external without a certificate an error. The canary
password and the client key's content appear in no log, check output, /status, /metrics or dead
letter."""

import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import get, with_http  # noqa: E402
from rabbitmq_fixture import *  # noqa: E402,F401,F403

CANARY = "canary-5d1e8b-RMQ-SECRET"
N = 300        # to the PLAIN + certificate source; every 30th is poison (dead-lettered)
M = 300        # to the EXTERNAL source, published on to queue "out"


def key_body(path):
    """A line from the middle of a PEM private key: what must never be printed."""
    with open(path) as f:
        lines = [l.strip() for l in f if l.strip() and not l.startswith("-----")]
    return lines[len(lines) // 2]


accept_poison = set()  # non-empty: the function takes the poison messages too (for the redrive)


def behaviour(req, attempt):
    if b"poison" in req.body and not accept_poison:
        return (400, {}, b"bad input", 0)
    return (200, {}, b"", 0)


def peek_all(rmq, queue):
    """Reads every message of queue without taking it: [(properties, body)], then requeued."""
    ch = rmq.channel()
    out, last = [], None
    while True:
        method, props, body = ch.basic_get(queue=queue, auto_ack=False)
        if method is None:
            break
        last = method.delivery_tag
        out.append((props, body))
    if last is not None:
        ch.basic_nack(delivery_tag=last, multiple=True, requeue=True)
    return out


def q(s):
    return urllib.parse.quote(s, safe="")


def body(c):
    os.environ["TD_CANARY"] = CANARY
    rmq = RabbitMQServer(tls="mutual")
    rmq.add_user("tduser", CANARY)
    rmq.add_cert_user("td-external")
    ext_cert, ext_key = rmq.client_cert("td-external")
    pw_cert, pw_key = rmq.client_cert("td-password")  # its CN is no user: PLAIN decides who
    nobody_cert, nobody_key = rmq.client_cert("td-nobody")
    secrets = [CANARY, CANARY[:12], key_body(ext_key), key_body(pw_key)]
    ch = rmq.channel()
    for name in ("in", "in-ext", "in-insecure", "out", "dead"):
        declare_queue(ch, name)
    fn = FunctionServer(behaviour)

    # functions: a dict used twice would be dumped as a YAML alias, which triggerd refuses
    tls_pw = lambda: {"ca_file": rmq.ca, "cert_file": pw_cert, "key_file": pw_key}
    tls_ext = lambda: {"ca_file": rmq.ca, "cert_file": ext_cert, "key_file": ext_key}
    amqps_pw = f"amqps://tduser:${{TD_CANARY}}@127.0.0.1:{rmq.tls_port}/%2f"
    amqps_ext = f"amqps://localhost:{rmq.tls_port}/%2f"
    cfg = config(
        sources={"in": rabbit_source(amqps_pw, "in", tls=tls_pw()),
                 "ext": rabbit_source(amqps_ext, "in-ext", tls=tls_ext(),
                                      auth_mechanism="external"),
                 "insecure": rabbit_source(amqps_ext, "in-insecure", auth_mechanism="external",
                                           tls={"cert_file": ext_cert, "key_file": ext_key,
                                                "insecure_skip_verify": True})},
        sinks={"fn": http_sink(fn.url), "fn2": http_sink(fn.url + "insecure"),
               "out": {"rabbitmq": {"url": amqps_ext, "exchange": "", "routing_key": "out",
                                    "tls": tls_ext(), "auth_mechanism": "external"}},
               "dead": {"rabbitmq": {"url": amqps_pw, "exchange": "", "routing_key": "dead",
                                     "tls": tls_pw()}}},
        triggers=[trigger("t1", "in", "fn", dead_letter="dead", retry=1),
                  trigger("t2", "ext", "out"),
                  trigger("t3", "insecure", "fn2")])
    port = with_http(cfg)
    td = Triggerd(cfg, env={"TD_CANARY": CANARY})
    outputs = []

    r = run_cli(["check", "-c", td.config_path])
    outputs += [r.stdout, r.stderr]
    c.eq(r.returncode, 0, "triggerd check accepts the TLS and EXTERNAL settings " + r.stderr[-300:])
    c.check("insecure_skip_verify" in r.stderr and "warning" in r.stderr,
            "check warns about insecure_skip_verify", r.stderr[-300:])

    td.start()
    c.check(td.wait_ready(30), "daemon ready: every amqps:// connection verified and logged in")
    if not td.running():
        td.dump_tail()
        return

    c.check(any("insecure_skip_verify" in l.get("msg", "") and l.get("level") == "warn"
                for l in td.logs()), "run logs the insecure_skip_verify warning (JSON)",
            [l for l in td.logs() if "insecure" in str(l)][:2])
    c.check(not any("raw" in l for l in td.logs()), "every stderr line of run is JSON",
            [l for l in td.logs() if "raw" in l][:2])

    # the broker's view: TLS connections, PLAIN for tduser, EXTERNAL for the certificate's CN
    r = rmq.ctl("list_connections", "user", "auth_mechanism", "ssl", check=False)
    rows = [tuple(l.split("\t")) for l in r.stdout.splitlines() if l.count("\t") == 2]
    c.check(("tduser", "PLAIN", "true") in rows, "tduser logged in with PLAIN over TLS", rows)
    c.check(sum(1 for row in rows if row == ("td-external", "EXTERNAL", "true")) >= 2,
            "td-external (a user without a password) logged in with EXTERNAL over TLS", rows)
    c.check(not any(row[0] in ("tduser", "td-external") and row[2] != "true" for row in rows),
            "no daemon connection without TLS", rows)

    # source -> function with acks, dead letters over amqps://
    poison = {f"in-{i}" for i in range(0, N, 30)}
    ids = publish_many(ch, "in", N, body_fn=lambda i: b'{"poison": 1}' if i % 30 == 0
                       else ('{"n": %d}' % i).encode())
    good = set(ids) - poison
    c.check(wait_until(lambda: good <= fn.ok_ids("/"), 60 * SLOW, desc="good ones delivered"),
            f"{len(good)} messages reached the function over the amqps:// source",
            len(good & fn.ok_ids("/")))
    c.check(wait_drained(rmq, "in", 20), "queue 'in' drained: every delivery acked",
            rmq.queue_counts("in"))
    c.check(wait_until(lambda: rmq.queue_counts("dead") == (len(poison), 0), 20 * SLOW),
            f"{len(poison)} dead letters in 'dead' through the amqps:// sink",
            rmq.queue_counts("dead"))
    dead = peek_all(rmq, "dead")
    c.eq({p.headers.get("cloudEvents:id") or p.message_id for p, _ in dead}, poison,
         "the dead letters are exactly the poison messages")
    outputs += [repr((p.headers, b)) for p, b in dead]
    byid = fn.by_id("/")
    c.eq(sum(len(byid.get(i, [])) for i in good), len(good), "no duplicates")

    # redrive reads them back over amqps:// (the sink's tls: block); the function takes them now
    accept_poison.add(True)
    r = run_cli(["redrive", "-c", td.config_path, "--from", "dead"])
    outputs += [r.stdout, r.stderr]
    c.eq(r.returncode, 0, "redrive from the amqps:// dead-letter queue " + r.stderr[-300:])
    c.check(poison <= fn.ok_ids("/"), "every dead letter redriven to the function",
            poison - fn.ok_ids("/"))
    c.check(wait_until(lambda: rmq.queue_counts("dead") == (0, 0), 10 * SLOW),
            "the dead-letter queue is empty after the redrive", rmq.queue_counts("dead"))

    # EXTERNAL source -> RabbitMQ sink with confirms over amqps://
    ext_ids = publish_many(ch, "in-ext", M)
    c.check(wait_until(lambda: rmq.queue_counts("out") == (M, 0), 30 * SLOW),
            f"{M} messages consumed and published on over EXTERNAL", rmq.queue_counts("out"))
    c.check(wait_drained(rmq, "in-ext", 10), "queue 'in-ext' drained", rmq.queue_counts("in-ext"))
    out = read_all(ch, "out")
    got = [p.headers.get("cloudEvents:id") or p.message_id for p, _ in out]
    c.eq((len(got), set(got)), (M, set(ext_ids)), "out holds each message once: nothing lost")
    outputs += [repr((p.headers, b)) for p, b in out]

    # insecure_skip_verify: connected without the CA
    publish_many(ch, "in-insecure", 3)
    c.check(wait_until(lambda: {f"in-insecure-{i}" for i in range(3)} <= fn.ok_ids("/insecure"),
                       20 * SLOW), "tls.insecure_skip_verify: consumed without a CA")

    # triggerd publish over amqps:// with EXTERNAL
    base = f"amqps://localhost:{rmq.tls_port}/%2f/?routing_key=in-ext&cacertfile={q(rmq.ca)}"
    ext_q = f"&certfile={q(ext_cert)}&keyfile={q(ext_key)}&auth_mechanism=external"
    r = run_cli(["publish", base + ext_q, "--data", '{"published": 1}', "--ce-id", "pub-1",
                 "--ce-type", "t", "--ce-source", "/s"])
    outputs += [r.stdout, r.stderr]
    c.eq(r.returncode, 0, "publish amqps:// with EXTERNAL confirmed " + r.stderr[-300:])
    c.check(wait_until(lambda: rmq.queue_counts("out") == (1, 0), 20 * SLOW),
            "the published message went through to 'out'", rmq.queue_counts("out"))
    out = read_all(ch, "out")
    c.eq([p.headers.get("cloudEvents:id") for p, _ in out], ["pub-1"], "it is the published one")

    # refused: no client certificate, a CN that is no user, a name the certificate lacks
    r = run_cli(["publish", base.replace("in-ext", "nowhere"), "--data", "x"])
    outputs += [r.stdout, r.stderr]
    c.check(r.returncode != 0 and "TLS" in r.stderr and "certificate" in r.stderr,
            "publish without a client certificate is refused, and the message says why",
            r.stderr[-300:])
    nobody = f"&certfile={q(nobody_cert)}&keyfile={q(nobody_key)}&auth_mechanism=external"
    r = run_cli(["publish", base.replace("in-ext", "nowhere") + nobody, "--data", "x"])
    outputs += [r.stdout, r.stderr]
    c.check(r.returncode != 0 and "td-nobody" in r.stderr and "EXTERNAL" in r.stderr,
            "EXTERNAL as a CN that is no user is refused, and the message names it",
            r.stderr[-300:])
    wrong = (f"amqps://127.0.0.1:{rmq.tls_port}/%2f/?routing_key=nowhere&cacertfile={q(rmq.ca)}"
             + ext_q + "&server_name_indication=wrong.example")
    r = run_cli(["publish", wrong, "--data", "x"])
    outputs += [r.stdout, r.stderr]
    c.check(r.returncode != 0 and "hostname mismatch" in r.stderr,
            "a server name the certificate does not carry is refused", r.stderr[-300:])
    right = wrong.replace("wrong.example", "localhost").replace("nowhere", "in-insecure")
    r = run_cli(["publish", right, "--data", "{}", "--ce-id", "sni-1", "--ce-type", "t",
                 "--ce-source", "/s"])
    outputs += [r.stdout, r.stderr]
    c.eq(r.returncode, 0, "server_name_indication=localhost verifies a connection to 127.0.0.1 "
         + r.stderr[-200:])

    nocert = config(sources={"in": rabbit_source(amqps_pw, "in", tls={"ca_file": rmq.ca})},
                    sinks={"fn": http_sink(fn.url)}, triggers=[trigger("t", "in", "fn")])
    td2 = Triggerd(nocert, name="no-cert", env={"TD_CANARY": CANARY}).start()
    c.check(not td2.wait_ready(4), "a daemon without a client certificate never gets ready")
    msgs = [l.get("msg", "") + " " + str(l.get("error", "")) for l in td2.logs()]
    c.check(any("127.0.0.1:%d" % rmq.tls_port in m and "TLS" in m and "certificate" in m
                for m in msgs),
            "the refusal is logged with HOST:PORT", msgs[-3:])
    td2.terminate()
    c.eq(td2.wait(15 * SLOW), 0, "it exits 0 on SIGTERM")

    # check: file:line:column for a file that is not PEM, a warning for a missing one
    notpem = os.path.join(td.dir, "notpem.txt")
    with open(notpem, "w") as f:
        f.write("not a certificate\n")
    bad = (f"version: 1\nsources:\n  in:\n    rabbitmq:\n      url: {amqps_ext}\n"
           f"      queue: in\n      tls:\n        ca_file: {notpem}\n"
           f"        cert_file: /nonexistent/td-client.pem\n        key_file: {ext_key}\n"
           f"sinks:\n  fn: {{http: {{url: '{fn.url}'}}}}\n"
           f"triggers:\n  - {{name: t, source: in, sink: fn}}\n")
    btd = Triggerd(bad, name="bad-files")
    r = run_cli(["check", "-c", btd.config_path])
    outputs += [r.stdout, r.stderr]
    c.check(r.returncode == 2 and f"{btd.config_path}:8:18:" in r.stderr and "tls.ca_file" in
            r.stderr, "check: ca_file that is not PEM is an error at file:line:column",
            r.stderr.strip()[-400:])
    c.check(f"{btd.config_path}:9:20: warning:" in r.stderr and "tls.cert_file" in r.stderr,
            "check: a missing cert_file is a warning at file:line:column", r.stderr.strip()[-400:])
    btd.start()
    c.eq(btd.wait(20 * SLOW), 2, "run refuses to start with them")
    outputs += btd.raw_lines()
    ext_nocert = bad.replace(f"      tls:\n        ca_file: {notpem}\n"
                             f"        cert_file: /nonexistent/td-client.pem\n"
                             f"        key_file: {ext_key}\n", "      auth_mechanism: external\n")
    etd = Triggerd(ext_nocert, name="ext-no-cert")
    r = run_cli(["check", "-c", etd.config_path])
    outputs += [r.stdout, r.stderr]
    c.check(r.returncode == 2 and "auth_mechanism external needs" in r.stderr,
            "check: auth_mechanism external without a client certificate is an error",
            r.stderr.strip()[-300:])

    # secrets: nowhere in what was printed or served
    for path in ("/status", "/metrics", "/readyz"):
        st, _, b = get(port, path)
        outputs.append(b.decode("utf-8", "replace"))
    td.terminate()
    c.eq(td.wait(15 * SLOW), 0, "exit status after SIGTERM")
    outputs += td.raw_lines() + td2.raw_lines()
    text = "\n".join(outputs)
    c.check(not any(m in text for m in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                        "runtime error:")),
            "no sanitizer report from check, publish or redrive (a refused connection frees "
            "everything too)")
    for s in secrets:
        c.check(s not in text, "secret absent from logs, check, status, metrics, dead letters",
                text[max(0, text.find(s) - 200):text.find(s) + 50] if s in text else s[:6])


run_rabbitmq_test(body)
