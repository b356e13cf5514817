"""Kafka over TLS and SASL, against one real broker that requires them: an SSL listener that
demands a client certificate (ssl.client.auth=required), a SASL_SSL listener that accepts
SCRAM-SHA-512 (a user created at format time), PLAIN and OAUTHBEARER (Kafka's default validator,
which takes unsecured JWTs), and a SASL_PLAINTEXT listener (PLAIN over plain TCP). The CA and the
certificates are made by the test (openssl); a stand-in OAuth2 token endpoint issues the JWTs for
the client credentials grant.

Independent clients (kcat) first prove the listeners refuse a client without a certificate,
with a wrong password, and without any credentials (each by the reason the broker gives, read
from kcat's log as it comes: a refusal costs no metadata timeout), and take the right ones.

Then one daemon consumes from four sources (SSL with a client certificate, PLAIN over SASL_SSL,
PLAIN over SASL_PLAINTEXT with `plaintext: true`, OAUTHBEARER; SCRAM too where librdkafka can)
written with the tls: and sasl: keys, forwards every record to a Kafka sink and dead-letters
every record (a function that answers 400) to a Kafka dead-letter topic, each over the same kind
of connection; the records come from kcat (PLAINTEXT) and from `triggerd publish --config
--from` (over the secure listener). Counted: every record in arrives once on the sink's topic
and once on the dead-letter topic, and the group's committed offsets reach the end (nothing
lost). The consumer-group lag (/metrics, asked through each source's consumer) is read for every
source over its secure listener. The token endpoint was called and never refused. `sasl:` without `tls:` or
`plaintext: true` speaks SASL_SSL (publish to the SASL_PLAINTEXT listener fails with a
sasl_ssl:// error): the password never goes over plain TCP unless asked. Explicit properties
win over the keys.

Once the daemon has stopped, `redrive --dry-run` lists the SASL_SSL dead-letter topic and
commits nothing; then, the function healthy, `triggerd redrive` empties three dead-letter
topics, over SSL with a client certificate, SASL_SSL and SASL_PLAINTEXT: each run delivers all
32, none dead-lettered again; the function gets each dead letter's event exactly once; the
group triggerd-redrive's committed offset on each topic reaches its end, and the end has not
moved; redrive logs no "SASL authentication error ... Broker handle destroyed" for the file's
other Kafka sinks it closes while they still authenticate.

The password and the client secret appear nowhere in the daemon's output, `publish`'s or
`redrive`'s, /metrics, /status, the records written or the requests to the function. `check`
reports a TLS file of the wrong kind with its file:line:column."""

import base64
import copy
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import yaml  # noqa: E402

from harness import (SLOW, FunctionServer, Triggerd, config, http_sink, log,  # noqa: E402
                     make_tempdir, run_cli, trigger, wait_until)
from kafka_fixture import (SCRAM_WITH_KAFKA4, KafkaBroker, librdkafka_version,  # noqa: E402
                           run_kafka_test)
from fn_peers import TokenServer  # noqa: E402
from tls_util import CA  # noqa: E402
from http_util import get, parse_metrics, with_http  # noqa: E402

PASSWORD = "scram-pw-5d1e8b-CANARY"
CLIENT_SECRET = "oidc-secret-93c7aa-CANARY"
N = 30  # records per topic from kcat, plus PUBLISHED from `triggerd publish`
PUBLISHED = 2
# SCRAM joins when the librdkafka here can do it against Kafka 4 (kafka_fixture.py says why)
SCRAM_OK = librdkafka_version() >= SCRAM_WITH_KAFKA4
KINDS = ("ssl", "plain", "sasltcp", "oauth") + (("scram",) if SCRAM_OK else ())
# the dead-letter topics `triggerd redrive` empties, and how it connects to each
REDRIVE_KINDS = ("ssl", "plain", "sasltcp")
LISTENER = {"ssl": "SSL with a client certificate", "plain": "SASL_SSL (PLAIN)",
            "sasltcp": "SASL_PLAINTEXT (PLAIN)"}
REDRIVE_GROUP = "triggerd-redrive"


def b64url(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


class JwtTokenServer(TokenServer):
    """The client-credentials endpoint of fn_peers, issuing unsecured JWTs (alg none; sub, iat,
    exp, scope) as Kafka's default OAUTHBEARER validator wants them."""

    def handle(self, method, path, headers, body):
        st, h, b = super().handle(method, path, headers, body)
        if st != 200:
            return st, h, b
        now = int(time.time())
        with self.lock:
            rec = self.issued[-1]
            jwt = (b64url({"alg": "none"}) + "." +
                   b64url({"sub": "triggerd-oidc", "iat": now, "exp": now + self.lifetime,
                           "scope": rec["scope"] or ""}) + ".")
            rec["token"] = jwt
        return 200, h, json.dumps({"access_token": jwt, "token_type": "Bearer",
                                   "expires_in": self.lifetime})


def kcat_meta(bootstrap, *props):
    args = ["kcat", "-b", bootstrap, "-L", "-m", "8"]
    for p in props:
        args += ["-X", p]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60 * SLOW)
    return r.returncode == 0 and "1 brokers" in r.stdout


def kcat_refused(bootstrap, why, *props):
    """True when kcat, asking bootstrap for metadata, is told why (a regex over its log lines)
    before it gives up. Returns at that line rather than after kcat's whole -m wait: the
    refusal is proven by the broker's reason, not by a timeout."""
    args = ["kcat", "-b", bootstrap, "-L", "-m", "8"]
    for p in props:
        args += ["-X", p]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # ends when kcat exits
            if re.search(why, line):
                return True
        return False
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()


def body(c):
    d = make_tempdir("td-kafka-tls-")
    ca = CA(d, "ca")
    bcert, bkey = ca.issue("broker", 1)
    ccert, ckey = ca.issue("client", 2, client=True)
    kafka = KafkaBroker(tls=(ca.cert, bcert, bkey), scram={"triggerd": PASSWORD},
                        plain={"triggerd": PASSWORD}, oauth=True, sasl_plaintext=True)
    ts = JwtTokenServer("td-client", CLIENT_SECRET, lifetime=3600)

    # ---- the listeners refuse who has no credentials
    ssl_ca = ["security.protocol=ssl", f"ssl.ca.location={ca.cert}"]
    no_sasl = "might require SASL authentication"
    bad_password = "SASL authentication error: Authentication failed"
    c.check(kcat_refused(kafka.ssl_bootstrap, "alert (bad certificate|certificate required)",
                         *ssl_ca), "SSL listener: a client without a certificate is refused")
    c.check(kcat_meta(kafka.ssl_bootstrap, *ssl_ca, f"ssl.certificate.location={ccert}",
                      f"ssl.key.location={ckey}"), "SSL listener: the client certificate is taken")
    c.check(kcat_refused(kafka.sasl_bootstrap, no_sasl, *ssl_ca),
            "SASL_SSL listener: a client without SASL credentials is refused")
    for mech in ("PLAIN", "SCRAM-SHA-512"):
        sasl = ["security.protocol=sasl_ssl", f"ssl.ca.location={ca.cert}",
                f"sasl.mechanisms={mech}", "sasl.username=triggerd"]
        c.check(kcat_refused(kafka.sasl_bootstrap, bad_password, *sasl, "sasl.password=wrong"),
                f"SASL_SSL listener: a wrong {mech} password is refused")
        if mech == "PLAIN" or SCRAM_OK:
            c.check(kcat_meta(kafka.sasl_bootstrap, *sasl, f"sasl.password={PASSWORD}"),
                    f"SASL_SSL listener: the {mech} user is taken")
    tcp = ["security.protocol=sasl_plaintext", "sasl.mechanisms=PLAIN", "sasl.username=triggerd"]
    c.check(kcat_refused(kafka.sasl_plaintext_bootstrap, no_sasl, "security.protocol=plaintext"),
            "SASL_PLAINTEXT listener: a client without SASL credentials is refused")
    c.check(kcat_refused(kafka.sasl_plaintext_bootstrap, bad_password, *tcp,
                         "sasl.password=wrong"),
            "SASL_PLAINTEXT listener: a wrong PLAIN password is refused")
    c.check(kcat_meta(kafka.sasl_plaintext_bootstrap, *tcp, f"sasl.password={PASSWORD}"),
            "SASL_PLAINTEXT listener: the PLAIN user is taken")
    if not SCRAM_OK:
        log("NOTE: librdkafka %x here cannot do SCRAM with Kafka 4 (needs 2.6.1, "
            "confluentinc/librdkafka#4895): the SCRAM flow is not run" % librdkafka_version())

    # ---- one daemon, four secure connections
    sec = {
        "ssl": (kafka.ssl_bootstrap, {"tls": {"ca_file": ca.cert, "cert_file": ccert,
                                              "key_file": ckey}}),
        "scram": (kafka.sasl_bootstrap, {"tls": {"ca_file": ca.cert},
                                         "sasl": {"mechanism": "SCRAM-SHA-512",
                                                  "username": "triggerd",
                                                  "password": "${TD_KAFKA_PW}"}}),
        "plain": (kafka.sasl_bootstrap, {"tls": {"ca_file": ca.cert},
                                         "sasl": {"mechanism": "PLAIN",
                                                  "username": "triggerd",
                                                  "password": "${TD_KAFKA_PW}"}}),
        # SASL over plain TCP: no tls:, and plaintext: true (without it, sasl: means SASL_SSL)
        "sasltcp": (kafka.sasl_plaintext_bootstrap, {"sasl": {"mechanism": "PLAIN",
                                                              "username": "triggerd",
                                                              "password": "${TD_KAFKA_PW}",
                                                              "plaintext": True}}),
        "oauth": (kafka.sasl_bootstrap, {"tls": {"ca_file": ca.cert},
                                         "sasl": {"mechanism": "OAUTHBEARER", "method": "oidc",
                                                  "token_url": ts.token_url,
                                                  "client_id": "td-client",
                                                  "client_secret": "${TD_OIDC_SECRET}",
                                                  "scope": "kafka"}}),
    }
    state = {"healthy": False}  # refuses everything while the daemon runs, takes all in redrive
    fn = FunctionServer(lambda req, a: (200, {}, b"", 0) if state["healthy"]
                        else (400, {}, b"refused", 0))
    sources, sinks, triggers = {}, {"fn": http_sink(fn.url)}, []
    for k in KINDS:
        boot, keys = sec[k][0], copy.deepcopy(sec[k][1])
        kafka.create_topic(f"in-{k}")
        sources[f"src-{k}"] = {"kafka": dict(
            {"brokers": boot, "topics": [f"in-{k}"], "group": f"g-{k}",
             "properties": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}},
            **keys)}
        sinks[f"out-{k}"] = {"kafka": dict({"brokers": boot, "topic": f"out-{k}"},
                                           **copy.deepcopy(keys))}
        sinks[f"dl-{k}"] = {"kafka": dict({"brokers": boot, "topic": f"dl-{k}"},
                                          **copy.deepcopy(keys))}
        triggers.append(trigger(f"fwd-{k}", f"src-{k}", f"out-{k}"))
        triggers.append(trigger(f"fail-{k}", f"src-{k}", "fn", retry=0, dead_letter=f"dl-{k}"))
    # explicit properties win: the tls: key says SSL, the property says plaintext
    sinks["plain-wins"] = {"kafka": {"brokers": kafka.bootstrap, "topic": "plain",
                                     "tls": {"ca_file": ca.cert},
                                     "properties": {"security.protocol": "plaintext"}}}
    cfg = config(sources, sinks, triggers)
    port = with_http(cfg)
    env = {"TD_KAFKA_PW": PASSWORD, "TD_OIDC_SECRET": CLIENT_SECRET}
    os.environ.update(env)  # for `publish` and `redrive`, which read the same file
    td = Triggerd(cfg, env=env).start()
    c.check(td.wait_ready(60), f"daemon ready with {len(KINDS)} secure Kafka sources")

    cli_out = []
    for k in KINDS:
        kafka.produce(f"in-{k}", [(f"k{i}", json.dumps({"kind": k, "n": i})) for i in range(N)])
        for i in range(N, N + PUBLISHED):
            r = run_cli(["publish", "--config", td.config_path, "--from", f"out-{k}", "-k",
                         f"k{i}", "-d", json.dumps({"kind": k, "n": i}),
                         f"kafka://{sec[k][0]}/in-{k}"], timeout=60)
            cli_out.append(r.stdout + r.stderr)
            c.eq(r.returncode, 0, f"{k}: publish over the secure listener ({r.stderr.strip()})")
    r = run_cli(["publish", f"kafka://{kafka.sasl_bootstrap}/in-plain", "-d", "x",
                 "-X", "message.timeout.ms=5000"], timeout=60)
    cli_out.append(r.stdout + r.stderr)
    c.check(r.returncode != 0, "publish without --from cannot write to the SASL_SSL listener")
    r = run_cli(["publish", "--config", td.config_path, "--from", "plain-wins", "-d", "p",
                 f"kafka://{kafka.bootstrap}/plain"], timeout=60)
    c.eq(r.returncode, 0, f"properties win over tls: (plaintext to PLAINTEXT) {r.stderr.strip()}")
    # sasl: without plaintext: true means SASL_SSL: it never sends the password over plain TCP
    alone = os.path.join(d, "sasl-alone.yaml")
    with open(alone, "w") as f:
        yaml.safe_dump(config({}, {"s": {"kafka": {
            "brokers": kafka.sasl_plaintext_bootstrap, "topic": "never",
            "sasl": {"mechanism": "PLAIN", "username": "triggerd",
                     "password": "${TD_KAFKA_PW}"}}}}, []), f)
    r = run_cli(["publish", "--config", alone, "--from", "s", "-d", "x", "-X",
                 "message.timeout.ms=3000", f"kafka://{kafka.sasl_plaintext_bootstrap}/never"],
                timeout=60)
    cli_out.append(r.stdout + r.stderr)
    c.check(r.returncode != 0 and "not written" in r.stderr and "sasl_ssl://" in r.stderr,
            "sasl: without tls: or plaintext: true speaks SASL_SSL: it cannot write to the "
            "SASL_PLAINTEXT listener", r.stderr[-300:])

    want = N + PUBLISHED
    for k in KINDS:
        def counts():
            return len(kafka.consume(f"out-{k}")), len(kafka.consume(f"dl-{k}"))
        wait_until(lambda: counts() == (want, want), 90 * SLOW, interval=1.0)
        out = kafka.consume(f"out-{k}")
        dead = kafka.consume(f"dl-{k}")
        ns = sorted(json.loads(r["payload"])["n"] for r in out)
        dns = sorted(json.loads(r["payload"])["n"] for r in dead)
        c.eq(ns, list(range(want)), f"{k}: every record forwarded to the Kafka sink, once")
        c.eq(dns, list(range(want)), f"{k}: every record dead-lettered to Kafka, once")
        ok = wait_until(lambda: (lambda o: o[0] == o[1] and o[1].get(0) == want)(
            kafka.offsets(f"g-{k}", f"in-{k}")), 30 * SLOW, interval=1.0)
        c.check(ok, f"{k}: the committed offset reaches the end ({want})",
                kafka.offsets(f"g-{k}", f"in-{k}"))
    # the consumer-group lag is asked through each source's own (secure) consumer
    def lags():
        m = parse_metrics(get(port, "/metrics")[2].decode())
        return {dict(k[1]).get("source"): v for k, v in m.items()
                if k[0] == "triggerd_kafka_consumergroup_lag"}
    c.check(wait_until(lambda: set(lags()) == {f"src-{k}" for k in KINDS} and
                       not any(lags().values()), 30 * SLOW, interval=1.0),
            "the group lag is read for every source over its secure listener (lag 0)", lags())
    metrics_text = get(port, "/metrics")[2].decode() + get(port, "/status")[2].decode()
    cli_out.append(metrics_text)
    c.check(len(ts.issued) >= 1 and ts.refused == 0,
            "the token endpoint issued the OAUTHBEARER token with the client secret",
            (len(ts.issued), ts.refused))
    c.check(fn.count() >= len(KINDS) * want, "the function saw every record", fn.count())

    td.terminate()
    c.eq(td.wait(30), 0, "daemon exits 0")

    # ---- redrive over the secure listeners: the dead letters back to their trigger's function
    r = run_cli(["redrive", "-c", td.config_path, "--from", "dl-plain", "--dry-run"], timeout=90)
    cli_out.append(r.stdout + r.stderr)
    c.check(r.returncode == 0 and r.stdout.count("would redrive") == want,
            "redrive --dry-run over SASL_SSL lists every dead letter",
            (r.returncode, r.stdout[-300:], r.stderr[-300:]))
    c.eq(kafka.offsets(REDRIVE_GROUP, "dl-plain")[0], {}, "the dry run committed nothing")
    state["healthy"] = True
    for k in REDRIVE_KINDS:
        mark = fn.count()
        r = run_cli(["redrive", "-c", td.config_path, "--from", f"dl-{k}"], timeout=90)
        cli_out.append(r.stdout + r.stderr)
        c.check(r.returncode == 0 and f"redriven {want} entries" in r.stdout and
                f"{want} delivered, 0 dead-lettered again" in r.stdout,
                f"{k}: redrive moved every dead letter over {LISTENER[k]}",
                (r.returncode, r.stdout[-300:], r.stderr[-500:]))
        # closing the file's other Kafka sinks mid-handshake is no error (kafka_log.c)
        noise = [line for line in r.stderr.splitlines()
                 if "handle destroyed" in line and '"level":"debug"' not in line]
        c.check(not noise, f"{k}: redrive logs no error for the sinks it closes at its end",
                noise[:2])
        got = fn.snapshot()[mark:]
        c.eq(sorted(str(q.ce_id) for q in got),
             sorted(f"kafka:in-{k}/0/{i}" for i in range(want)),
             f"{k}: each dead letter arrived at the function once, and nothing else")
        committed, end = kafka.offsets(REDRIVE_GROUP, f"dl-{k}")
        c.check(committed == end == {0: want},
                f"{k}: the redrive group's offset on the dead-letter topic reaches its end "
                "(every dead letter consumed, none written again)", (committed, end))

    # ---- secrets
    seen = "\n".join(td.raw_lines()) + "\n".join(cli_out)
    for k in KINDS:
        seen += json.dumps(kafka.consume(f"dl-{k}")) + json.dumps(kafka.consume(f"out-{k}"))
    seen += json.dumps([(q.headers, q.body.decode("utf-8", "replace")) for q in fn.snapshot()])
    c.check(PASSWORD not in seen and CLIENT_SECRET not in seen,
            "neither the SASL password nor the client secret appears in logs, CLI output, "
            "/metrics, /status or records")
    c.check(any("librdkafka" in line for line in td.raw_lines()),
            "(the debug log did include librdkafka's lines)")

    # ---- check: file:line:column of a TLS file of the wrong kind
    bad = copy.deepcopy(cfg)
    bad["sources"] = {"src-ssl": {"kafka": {"brokers": kafka.ssl_bootstrap, "topics": ["x"],
                                            "tls": {"ca_file": ca.cert, "cert_file": ccert,
                                                    "key_file": ccert}}}}
    bad["triggers"] = [trigger("t", "src-ssl", "fn")]
    bad["sinks"] = {"fn": http_sink(fn.url)}
    path = os.path.join(d, "bad.yaml")
    text = yaml.safe_dump(bad, sort_keys=False)
    with open(path, "w") as f:
        f.write(text)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "key_file" in l)
    r = run_cli(["check", "-c", path])
    c.check(r.returncode != 0 and f"{path}:{line}:" in r.stderr and "tls.key_file" in r.stderr,
            "check: a certificate given as key_file is reported at its line", r.stderr[-400:])
    os.unlink(ckey)
    r = run_cli(["run", "-c", td.config_path])
    c.check(r.returncode != 0 and "key_file" in r.stderr,
            "run refuses to start without the client key", r.stderr[-300:])
    log(f"token requests: {len(ts.issued)}")


run_kafka_test(body)
