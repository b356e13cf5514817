"""Helpers for the tests of triggerd's HTTP endpoint: plain requests, the Prometheus text format,
and a config with daemon.http.listen on a port of its own."""

import http.client
import json
import re

from harness import free_port

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def request(port, method, path, body=None, headers=None, timeout=30):
    """(status, {header lowercased: value}, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def get(port, path, timeout=10):
    return request(port, "GET", path, timeout=timeout)


def get_json(port, path):
    status, _, body = get(port, path)
    return status, json.loads(body)


def parse_metrics(text):
    """{(name, ((label, value), ...sorted)): float} for every sample; raises on a malformed line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"not a sample line: {line!r}")
        labels = tuple(sorted(_LABEL.findall(m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metrics(port):
    status, _, body = get(port, "/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    return parse_metrics(body.decode())


def metric(ms, name, **labels):
    return ms.get((name, tuple(sorted(labels.items()))))


def with_http(cfg, port=None):
    """Adds daemon.http.listen to a harness config dict; returns the port."""
    port = port or free_port()
    cfg["daemon"]["http"] = {"listen": f"127.0.0.1:{port}"}
    return port
