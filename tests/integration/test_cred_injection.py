"""CR/LF in a credential never becomes a request header (issue 11, Low 5). The function records every
request's headers and must never see X-Injected:

- a metadata server whose first answers are "<jwt>\\r\\nX-Injected: yes": the fetch fails (retryable,
  the error names the sink, never the value) and the event is delivered once a clean token comes;
- a bearer_file holding "tok\\r\\nX-Injected: yes": attempts fail (retryable, naming the sink) until the
  file is fixed, then the event is delivered with the new token;
- a ${VAR} bearer holding it: `triggerd check` exits 2 with file:line:column naming the key, not the
  value, and `triggerd run` refuses to start.
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from fn_peers import MetadataServer  # noqa: E402

INJECT = "\r\nX-Injected: yes"
AUD = "https://fn-xyz.a.run.app"


class DirtyMetadata(MetadataServer):
    """The first `dirty` answers carry an injected header after the JWT."""

    def __init__(self, dirty):
        self.dirty = dirty
        super().__init__(lifetime=600)

    def handle(self, method, path, headers, body):
        status, hdrs, text = super().handle(method, path, headers, body)
        with self.lock:
            if status == 200 and self.dirty > 0:
                self.dirty -= 1
                text += INJECT
        return status, hdrs, text


def body(c):
    rs = RedisServer()
    cl = rs.client()
    md = DirtyMetadata(dirty=2)
    fn = FunctionServer()
    d = make_tempdir()
    token_file = os.path.join(d, "token")
    with open(token_file, "w") as f:
        f.write("tok" + INJECT + "\n")
    sinks = {
        "gcp": {"http": {"url": fn.url + "gcp", "timeout": "2s",
                         "auth": {"google_id_token": {"audience": AUD,
                                                      "metadata_url": md.identity_url}}}},
        "file": {"http": {"url": fn.url + "file", "timeout": "2s",
                          "auth": {"bearer_file": token_file}}},
    }
    sources = {"g": redis_source(rs.url, "g"), "f": redis_source(rs.url, "f")}
    triggers = [trigger("tg", "g", "gcp", retry=8, backoff_delay="200ms", backoff_max="1s"),
                trigger("tf", "f", "file", retry=50, backoff_delay="200ms", backoff_max="500ms")]
    td = Triggerd(config(sources, sinks, triggers)).start()
    c.check(td.wait_ready(10), "daemon ready")

    eg = cl.xadd("g", {"n": "1"}).decode()
    ef = cl.xadd("f", {"n": "1"}).decode()
    c.check(wait_until(lambda: eg in fn.ok_ids("/gcp"), 20 * SLOW),
            "metadata token: delivered once a clean token came")
    c.eq(md.dirty, 0, "both dirty answers were fetched (and refused)")
    # The bearer_file event keeps failing while the file holds CR/LF.
    time.sleep(1.5)
    c.eq(fn.by_id("/file").get(ef, []), [], "bearer_file with CR/LF: nothing sent")
    c.check(ef in pending_ids(cl, "f", "g"), "the entry stays pending (retryable, not lost)")
    with open(token_file + ".new", "w") as f:
        f.write("good-token\n")
    os.rename(token_file + ".new", token_file)
    c.check(wait_until(lambda: ef in fn.ok_ids("/file"), 20 * SLOW),
            "bearer_file: delivered once the file is fixed")
    got = fn.by_id("/file").get(ef, [])
    if got:
        c.eq(got[-1].header("authorization"), "Bearer good-token", "with the new token")

    everything = fn.snapshot()
    c.check(len(everything) >= 2, "the function saw requests", len(everything))
    c.eq([r.path for r in everything if "x-injected" in r.headers], [],
         "the function never sees X-Injected")
    lines = "\n".join(td.raw_lines())
    c.check("sink 'file'" in lines and "control character" in lines,
            "the bearer_file failure names the sink and the cause")
    c.check("sink 'gcp'" in lines, "the token failure names the sink")
    c.check("X-Injected" not in lines, "the value never reaches the log")
    c.check(wait_until(lambda: pending_count(cl, "g", "g") + pending_count(cl, "f", "g") == 0,
                       10 * SLOW), "all acked")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "exit status after SIGTERM")

    # ${VAR}: refused when loaded, the key named, the value never shown.
    cfg = config({"f": redis_source(rs.url, "f")},
                 {"fn": {"http": {"url": fn.url, "auth": {"bearer": "${TD_INJECT}"}}}},
                 [trigger("t", "f", "fn")])
    td2 = Triggerd(cfg, name="triggerd-var", env={"TD_INJECT": "tok" + INJECT})
    r = subprocess.run([triggerd_binary(), "check", "-c", td2.config_path], capture_output=True,
                       text=True, env=dict(os.environ, TD_INJECT="tok" + INJECT), timeout=30 * SLOW)
    out = r.stdout + r.stderr
    c.eq(r.returncode, 2, "triggerd check: exit 2")
    c.check("'bearer' is a credential" in out and ".yaml:" in out, "names file:line:column and the key",
            out)
    c.check("X-Injected" not in out, "never the value", out)
    td2.start()
    c.check(td2.wait(10 * SLOW) not in (0, None), "triggerd run refuses to start")
    c.eq([r.path for r in fn.snapshot() if "x-injected" in r.headers], [], "still no X-Injected")


run_test(body)
