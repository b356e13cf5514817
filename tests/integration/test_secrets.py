"""Secrets never appear in output: a canary secret, passed through ${VAR} into an ingress bearer token,
into Redis passwords (source and dead-letter sink URLs; over TLS in the TD_REDIS_TLS mode, where
no line of the client key file may appear either), into an HTTP sink's OAuth2 client_secret
(a stand-in token endpoint accepts it), into a Kafka sink's sasl.password and a Kafka dead-letter
sink's OAUTHBEARER client_secret and token_url user-info (the same token endpoint; the brokers are a closed port, so
librdkafka logs its connection failures at debug level) is grepped for in everything a run prints:
the daemon's stderr and stdout (debug level, JSON and text), `check`, `status`, /metrics, /status,
/readyz, and the ingress answers."""

import os
import signal
import subprocess
import time
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from http_util import get, request, with_http  # noqa: E402
from fn_peers import TokenServer  # noqa: E402

CANARY = "canary-7f3a9c2e-SECRET"


def body(c):
    os.environ["TD_CANARY"] = CANARY  # for the daemon and every command run here
    rs = RedisServer()
    rs.client().config_set("requirepass", CANARY)
    cl = rs.client(password=CANARY)
    fn = FunctionServer(lambda req, a: (500, {}, b"boom", 0))
    url = f"{rs.scheme}://:${{TD_CANARY}}@127.0.0.1:{rs.port}/0"
    ts = TokenServer("td", CANARY)
    oauth = {"token_url": ts.token_url, "client_id": "td", "client_secret": "${TD_CANARY}"}
    outputs = []
    closed = f"127.0.0.1:{free_port()}"
    ksasl = {"mechanism": "PLAIN", "username": "u", "password": "${TD_CANARY}"}
    # user-info in the token URL too: the OAUTHBEARER refresh logs the URL without it
    koauth = {"mechanism": "OAUTHBEARER", "method": "oidc",
              "token_url": ts.token_url.replace("http://", "http://x:${TD_CANARY}@"),
              "client_id": "td", "client_secret": "${TD_CANARY}"}
    for fmt in ("json", "text"):
        issued0 = ts.count()
        cfg = config(sources={"in": redis_source(url, "s"),
                              "web": {"http": {"path": "/events", "auth": {"bearer": "${TD_CANARY}"}}}},
                     sinks={"fn": http_sink(fn.url), "dl": {"redis": {"url": url, "stream": "dl"}},
                            "oa": {"http": {"url": fn.url + "oa", "auth": {"oauth2": oauth}}},
                            "kdl": {"kafka": {"brokers": closed, "topic": "kdl",
                                              "sasl": dict(koauth)}},
                            "kpw": {"kafka": {"brokers": closed, "topic": "kpw",
                                              "sasl": dict(ksasl)}}},
                     triggers=[trigger("t1", "in", "fn", dead_letter="dl", retry=1),
                               trigger("t3", "in", "oa", dead_letter="dl", retry=1),
                               trigger("t2", "web", "fn", dead_letter="dl", retry=1),
                               dict(trigger("t4", "web", "kpw", dead_letter="kdl"),
                                    filters=[{"exact": {"type": "no.event.matches"}}])])
        cfg["daemon"]["log"] = {"format": fmt, "level": "debug"}
        port = with_http(cfg)
        td = Triggerd(cfg, name=f"triggerd-{fmt}", env={"TD_CANARY": CANARY}).start()
        ready = (td.wait_ready(10) if fmt == "json" else
                 wait_until(lambda: any(l.split()[2:3] == ["ready"] for l in td.raw_lines()
                                        if len(l.split()) > 2), 10 * SLOW))
        c.check(ready, f"{fmt}: daemon ready with the secret from the environment")
        dl0 = cl.xlen("dl")
        cl.xadd("s", {"n": "1"})
        hdr = {"ce-specversion": "1.0", "ce-id": "x1", "ce-source": "/s", "ce-type": "t",
               "Authorization": f"Bearer {CANARY}"}
        st, h, b = request(port, "POST", "/events", body=b"{}", headers=hdr)
        outputs.append(b.decode("utf-8", "replace") + str(h))
        c.eq(st, 202, f"{fmt}: ingress with the right token (dead-lettered: 202)")
        st, h, b = request(port, "POST", "/events", body=b"{}",
                           headers=dict(hdr, Authorization=f"Bearer {CANARY}x"))
        outputs.append(b.decode("utf-8", "replace") + str(h))
        c.eq(st, 401, f"{fmt}: a near miss is refused")
        wait_until(lambda: cl.xlen("dl") >= dl0 + 3, 15 * SLOW, desc="dead letters")
        outputs.append(repr(cl.xrange("dl")))
        c.check(ts.count() >= 1 and ts.refused == 0 and fn.count("/oa") >= 1,
                f"{fmt}: the OAuth2 sink got a token with the secret and used it")
        c.check(wait_until(lambda: ts.count() > issued0 + 1, 10 * SLOW),
                f"{fmt}: the Kafka sink's OAUTHBEARER refresh got a token with the secret")
        for p in ("/metrics", "/status", "/readyz", "/healthz"):
            outputs.append(get(port, p)[2].decode("utf-8", "replace"))
        r = run_cli(["status", "-c", td.config_path], timeout=30)
        outputs += [r.stdout, r.stderr]
        c.eq(r.returncode, 0, f"{fmt}: triggerd status answers")
        r = subprocess.run([triggerd_binary(), "check", "-c", td.config_path], capture_output=True,
                           text=True, env=dict(os.environ, TD_CANARY=CANARY), timeout=30 * SLOW)
        outputs += [r.stdout, r.stderr]
        rs.stop()  # connection errors get logged too
        time.sleep(1.0)
        rs.start()
        rs.client().config_set("requirepass", CANARY)
        td.signal(signal.SIGHUP)
        time.sleep(0.5)
        td.terminate()
        c.eq(td.wait(20 * SLOW), 0, f"{fmt}: exit 0")
        for n in range(1, td.runs + 1):
            outputs.append("\n".join(td.raw_lines(run=n)))
            outputs.append(open(os.path.join(td.dir, f"stdout-{n}.log"), errors="replace").read())
    text = "\n".join(outputs)
    c.check(len(text) > 2000, "there was output to search", len(text))
    c.check(CANARY not in text, "the canary secret appears nowhere",
            text[max(0, text.find(CANARY) - 300):text.find(CANARY) + 100] if CANARY in text else None)
    c.check(CANARY[:12] not in text, "not even a prefix of it")
    if rs.tls:  # the TD_REDIS_TLS mode: the client key's content is a secret too
        key_lines = [l for l in open(rs.tls.client_key).read().splitlines() if "-----" not in l]
        c.check(not any(l in text for l in key_lines), "no line of the TLS key file appears")


run_test(body)
