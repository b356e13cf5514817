"""An OTLP/HTTP receiver for the tracing tests: keeps every POST /v1/traces body, answers 200 (or the
status it is made with), and
decodes them with the official OpenTelemetry protocol definitions (otlp_decode.py, run by the
Python of the venv scripts/setup-debian.sh makes: TD_OTEL_VENV, default
${XDG_CACHE_HOME:-~/.cache}/triggerd/otel-venv)."""

import http.server
import json
import os
import socketserver
import subprocess
import threading

from harness import at_cleanup

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "triggerd")
VENV = os.environ.get("TD_OTEL_VENV") or os.path.join(CACHE, "otel-venv")
PYTHON = os.path.join(VENV, "bin", "python")


def decoder_available():
    return subprocess.run([PYTHON, "-c", "import opentelemetry.proto"], capture_output=True).returncode == 0 \
        if os.path.exists(PYTHON) else False


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        rcv = self.server.receiver
        with rcv.lock:
            rcv.posts.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status = rcv.statuses[min(len(rcv.posts), len(rcv.statuses)) - 1]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class OtlpReceiver:
    def __init__(self, status=200):
        """status: what every export is answered (200: accepted), or a list: the answers to the
        first requests in order, the last one repeated."""
        self.statuses = status if isinstance(status, list) else [status]
        self.lock = threading.Lock()
        self.posts = []
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.receiver = self
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        at_cleanup(self.stop)

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def snapshot(self):
        with self.lock:
            return list(self.posts)

    def spans(self, accepted_only=False):
        """Every span received so far, decoded (raises with the decoder's reason if invalid);
        accepted_only: only those of requests answered 2xx."""
        posts = self.snapshot()
        if accepted_only:
            posts = [p for i, p in enumerate(posts)
                     if 200 <= self.statuses[min(i + 1, len(self.statuses)) - 1] < 300]
        bodies = [b.decode("utf-8") for _, _, b in posts]
        r = subprocess.run([PYTHON, os.path.join(HERE, "otlp_decode.py")], input=json.dumps(bodies),
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("OTLP decode failed: " + r.stderr.strip()[-2000:])
        return json.loads(r.stdout)
