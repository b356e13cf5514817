"""Azure Functions and OpenFaaS against endpoints that require their credentials.

Azure: the function key from ${AZ_KEY}, as x-functions-key (default) or ?code= (azure_key_in: query);
a sink with a wrong key is refused (401, final, dead-lettered): the endpoint's check can fail.
OpenFaaS: a fake gateway requiring basic auth: POST /function/NAME (synchronous) and
/async-function/NAME (202; the gateway then POSTs the function's result to the X-Callback-Url, which the
test receives); binary mode; a wrong password is refused. No secret reaches the log.
"""

import base64
import os
import sys
import threading
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from fn_peers import CallbackServer  # noqa: E402

AZ_KEY = "az+key/with=odd&chars=="
FAAS_PW = "faas-password-7"


def azure(req, attempt):
    split = urllib.parse.urlsplit(req.path)
    q = dict(urllib.parse.parse_qsl(split.query))
    if split.path == "/api/header":
        ok = req.header("x-functions-key") == AZ_KEY and "code" not in q
    elif split.path == "/api/query":
        ok = q.get("code") == AZ_KEY and req.header("x-functions-key") is None
    else:
        ok = False
    return (200, {}, b"", 0) if ok else (401, {}, b"", 0)


def body(c):
    rs = RedisServer()
    cl = rs.client()
    az = FunctionServer(azure)
    callbacks = CallbackServer()
    seen = []

    def gateway(method, path, headers, body_):
        want = "Basic " + base64.b64encode(f"admin:{FAAS_PW}".encode()).decode()
        if headers.get("authorization") != want:
            return 401, {}, b"unauthorized"
        seen.append((path, headers, body_))
        if path == "/function/echo":
            return 200, {}, b"echo:" + body_
        if path == "/async-function/echo":
            cb = headers.get("x-callback-url")
            cid = headers.get("ce-id", "")

            def later():  # the queue worker runs the function, then calls back
                rq = urllib.request.Request(cb, data=b"result-for:" + cid.encode(), method="POST",
                                            headers={"X-Function-Status": "200", "X-Call-Id": cid})
                urllib.request.urlopen(rq, timeout=5).read()
            if cb:
                threading.Timer(0.05, later).start()
            return 202, {"X-Call-Id": cid}, b""
        return 404, {}, b"no such function"
    gw = CallbackServer(gateway)

    basic = {"basic": {"user": "admin", "password": "${FAAS_PW}"}}
    sinks = {
        "az-h": {"http": {"url": az.url + "api/header", "auth": {"azure_function_key": "${AZ_KEY}"}}},
        "az-q": {"http": {"url": az.url + "api/query",
                          "auth": {"azure_function_key": "${AZ_KEY}", "azure_key_in": "query"}}},
        "az-bad": {"http": {"url": az.url + "api/header", "auth": {"azure_function_key": "nope"}}},
        "faas": {"openfaas": {"gateway": gw.url + "/", "function": "echo", "auth": dict(basic)}},
        "faas-async": {"openfaas": {"gateway": gw.url, "function": "echo", "async": True,
                                    "callback_url": callbacks.url + "/done",
                                    "auth": {"basic": {"user": "admin", "password": "${FAAS_PW}"}}}},
        "faas-bad": {"openfaas": {"gateway": gw.url, "function": "echo",
                                  "auth": {"basic": {"user": "admin", "password": "wrong"}}}},
        "dead": {"redis": {"url": rs.url, "stream": "dead"}},
    }
    names = [n for n in sinks if n != "dead"]
    sources = {n: redis_source(rs.url, n) for n in names}
    triggers = [trigger("t-" + n, n, n, retry=1, backoff_delay="50ms", dead_letter="dead")
                for n in names]
    td = Triggerd(config(sources, sinks, triggers), env={"AZ_KEY": AZ_KEY, "FAAS_PW": FAAS_PW})
    td.start()
    c.check(td.wait_ready(10), "daemon ready")
    ids = {n: publish_many(cl, n, 4, lambda i: {"n": str(i)}) for n in names}
    # Each stream read up to its last entry and nothing pending, not XPENDING 0 alone: that is
    # also true right after the XADDs, before the daemon has read a stream (the callbacks only
    # prove the async stream was handled).
    c.check(wait_until(lambda: all(read_and_acked(cl, n, "g", ids[n][-1]) for n in names) and
                       len(callbacks.snapshot()) >= 4, 15 * SLOW, desc="all done"),
            "every stream read to its last entry and acked, 4 callbacks received",
            ({n: group_info(cl, n, "g") for n in names}, len(callbacks.snapshot())))

    ok = az.ok_ids()
    c.check(set(ids["az-h"]) <= ok, "Azure: x-functions-key accepted")
    c.check(set(ids["az-q"]) <= ok, "Azure: ?code= accepted (azure_key_in: query, key URL-encoded)")
    dl = {}
    for _, f in read_dead_letters(cl, "dead"):
        dl.setdefault(f.get("ce_deadlettertrigger"), []).append(f)
    c.eq(sorted(f["ce_id"] for f in dl.get("t-az-bad", [])), sorted(ids["az-bad"]),
         "Azure: a wrong key is refused (401) and dead-lettered")
    c.check(all(f.get("ce_knativeerrordest") == az.url + "api/query"
                for f in dl.get("t-az-q", [])), "no t-az-q dead letters")
    c.check(all("code=" not in f.get("ce_knativeerrordest", "") for fs in dl.values() for f in fs),
            "the key never appears in knativeerrordest")

    sync = [(p, h, b) for p, h, b in seen if p == "/function/echo"]
    c.eq(sorted(urllib.parse.unquote(h.get("ce-id", "")) for _, h, _ in sync), sorted(ids["faas"]),
         "OpenFaaS sync: POST /function/echo with basic auth, binary mode (ce-id headers)")
    c.check(all(h.get("ce-specversion") == "1.0" and h.get("prefer") == "reply" for _, h, _ in sync),
            "binary-mode headers and Prefer: reply on the synchronous path")
    asy = [(p, h, b) for p, h, b in seen if p == "/async-function/echo"]
    c.eq(sorted(urllib.parse.unquote(h.get("ce-id", "")) for _, h, _ in asy),
         sorted(ids["faas-async"]), "OpenFaaS async: POST /async-function/echo, 202 is success")
    c.check(all(h.get("x-callback-url") == callbacks.url + "/done" for _, h, _ in asy),
            "X-Callback-Url sent")
    cbs = callbacks.snapshot()
    c.eq(sorted(h.get("x-call-id") for _, p, h, _ in cbs), sorted(ids["faas-async"]),
         "the test received the callback for every async invocation")
    c.eq(sorted(f["ce_id"] for f in dl.get("t-faas-bad", [])), sorted(ids["faas-bad"]),
         "OpenFaaS: a wrong password is refused (401) and dead-lettered")
    c.check(not dl.get("t-faas") and not dl.get("t-faas-async"), "nothing else dead-lettered")

    text = "\n".join(td.raw_lines())
    c.check(AZ_KEY not in text and FAAS_PW not in text and
            urllib.parse.quote(AZ_KEY, safe="") not in text, "no secret in the log")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")


run_test(body)
