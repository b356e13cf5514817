"""libcurl is loaded only when something needs it (broker/runtime/curl_api.h): triggerd does not
link it, so a daemon whose sinks all use the lean HTTP client never maps libcurl.so (nor the
libraries it pulls in), while a sink that needs it (client: curl) loads it on first use and
delivers. The daemon's /proc/PID/maps is read after the events were delivered.

With LD_LIBRARY_PATH naming a libcurl.so.4 that cannot be loaded: the lean daemon still delivers
(it never tries), `triggerd check` of a lean-only file passes without a word about libcurl, and
`check` of a file with a sink that needs libcurl fails (exit 2) naming the sink and libcurl.so.4."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

N = 50


def curl_mapped(pid):
    with open(f"/proc/{pid}/maps") as f:
        return sorted({line.split()[-1] for line in f if "libcurl" in line})


def deliver(c, rs, cl, fn, stream, client, env=None):
    """Starts a daemon with one Redis source and one http sink (client: CLIENT) to fn, delivers
    N entries through it, and returns (its pid's libcurl mappings, the daemon)."""
    sink = http_sink(fn.url + "/" + stream)
    sink["http"]["client"] = client
    cfg = config(sources={"in": redis_source(rs.url, stream)}, sinks={"fn": sink},
                 triggers=[trigger("t", "in", "fn")])
    # TD_HTTP_CLIENT=curl (the HTTP test matrix's switch) would put an auto sink on libcurl
    td = Triggerd(cfg, name=f"triggerd-{stream}", env=dict({"TD_HTTP_CLIENT": ""}, **(env or {})))
    td.start()
    c.check(td.wait_ready(10), f"{stream}: daemon logs msg=ready")
    ids = set(publish_many(cl, stream, N))
    wait_until(lambda: ids <= fn.ok_ids("/" + stream), 20 * SLOW, desc=f"{stream}: delivered")
    c.eq(len(ids & fn.ok_ids("/" + stream)), N, f"{stream}: entries delivered")
    wait_until(lambda: pending_count(cl, stream, "g") == 0, 10 * SLOW, desc=f"{stream}: acked")
    return curl_mapped(td.proc.pid), td


def body(c):
    rs = RedisServer()
    cl = rs.client()
    fn = FunctionServer()

    maps, td = deliver(c, rs, cl, fn, "lean", "auto")
    c.check(any("the lean HTTP client" in str(l.get("msg", "")) for l in td.logs()),
            "auto picked the lean client for a plain http:// sink")
    c.eq(maps, [], "libcurl mappings of a daemon whose only sink is lean, after delivering")
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "lean daemon exits 0")

    maps, td = deliver(c, rs, cl, fn, "curl", "curl")
    c.check(any("libcurl.so.4" in m for m in maps), "a client: curl sink maps libcurl.so.4",
            maps)
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "libcurl daemon exits 0")

    # A libcurl.so.4 the loader finds first and cannot load.
    bad = make_tempdir("td-badcurl-")
    with open(os.path.join(bad, "libcurl.so.4"), "w") as f:
        f.write("not a shared object\n")
    env = {"LD_LIBRARY_PATH": bad}
    maps, td = deliver(c, rs, cl, fn, "lean2", "auto", env=env)
    c.eq(maps, [], "libcurl mappings of the lean daemon with a broken libcurl.so.4")
    c.check(not any("libcurl" in line for line in td.raw_lines()),
            "the lean daemon never tried to load libcurl", td.raw_lines()[-3:])
    td.terminate()
    c.eq(td.wait(10 * SLOW), 0, "lean daemon with a broken libcurl.so.4 exits 0")

    tmp = make_tempdir("td-check-")
    lean_cfg = config(sources={"in": redis_source(rs.url, "x")},
                      sinks={"fn": http_sink(fn.url)}, triggers=[trigger("t", "in", "fn")])
    curl_cfg = config(sources={"in": redis_source(rs.url, "x")},
                      sinks={"fn": http_sink(fn.url),
                             "tls": http_sink("https://fn.example/"),
                             "forced": {"http": {"url": fn.url, "client": "curl"}}},
                      triggers=[trigger("t", "in", "fn"), trigger("u", "in", "tls"),
                                trigger("v", "in", "forced")])
    for name, cfg in (("lean", lean_cfg), ("curl", curl_cfg)):
        with open(os.path.join(tmp, f"{name}.yaml"), "w") as f:
            f.write(yaml.safe_dump(cfg, sort_keys=False))
    run_env = dict(os.environ, TD_HTTP_CLIENT="", **env)
    p = subprocess.run([triggerd_binary(), "check", "-c", os.path.join(tmp, "lean.yaml")],
                       capture_output=True, text=True, env=run_env, timeout=30 * SLOW)
    c.eq(p.returncode, 0, "check of a lean-only file with a broken libcurl.so.4")
    c.check("libcurl" not in p.stderr, "... says nothing about libcurl", p.stderr)
    p = subprocess.run([triggerd_binary(), "check", "-c", os.path.join(tmp, "curl.yaml")],
                       capture_output=True, text=True, env=run_env, timeout=30 * SLOW)
    c.eq(p.returncode, 2, "check of a file with sinks that need libcurl, libcurl.so.4 broken")
    for sink, why in (("tls", "not a plain http:// URL"), ("forced", "client: curl")):
        c.check(any(f"sink '{sink}' needs libcurl ({why}), which cannot be loaded: cannot load "
                    f"libcurl.so.4: {bad}/libcurl.so.4" in line for line in p.stderr.splitlines()),
                f"check names sink '{sink}', why it needs libcurl and what the loader said",
                p.stderr)
    c.check(not any("sink 'fn'" in line for line in p.stderr.splitlines()),
            "check says nothing of the lean sink", p.stderr)
    p = run_cli(["check", "-c", os.path.join(tmp, "curl.yaml")])
    c.eq(p.returncode, 0, "the same file with libcurl.so.4 loadable")


run_test(body)
