#!/usr/bin/python3
"""function.py - a tiny example "function" for triggerd (Python standard library only).

It listens on 127.0.0.1:PORT, accepts CloudEvents over HTTP in binary mode (attributes in ce-*
headers, the body is the data) or structured mode (Content-Type: application/cloudevents+json,
the whole event as JSON), prints one readable line per event and answers:

  204 No Content                          for every event it accepts;
  400 {"error": "...", "id": "..."}       for an event whose data is a JSON object with
                                          "reject": true (triggerd treats a 4xx as final and
                                          writes the event to its dead-letter target at once);
  400 {"error": "..."}                    for a request that is not a CloudEvent.

    /usr/bin/python3 examples/function/function.py --port 8081
    /usr/bin/python3 examples/function/function.py --port 0     # any free port, printed

On start it prints "listening on http://127.0.0.1:PORT/", then one line per event:

    received com.example.demo id=1732600000000-0 source=/demo mode=binary data={"order": 1}
"""

import argparse
import base64
import http.server
import json
import sys

MAX_DATA_SHOWN = 160


def parse_event(headers, body):
    """Returns (attributes, data bytes, mode) or raises ValueError."""
    ctype = headers.get("Content-Type", "") or ""
    if ctype.split(";")[0].strip().lower() == "application/cloudevents+json":
        try:
            ev = json.loads(body or b"null")
        except ValueError as e:
            raise ValueError(f"structured event is not JSON: {e}") from None
        if not isinstance(ev, dict):
            raise ValueError("structured event is not a JSON object")
        attrs = {k: v for k, v in ev.items() if k not in ("data", "data_base64")}
        if "data_base64" in ev:
            data = base64.b64decode(ev["data_base64"])
        elif "data" in ev:
            d = ev["data"]
            data = d.encode() if isinstance(d, str) else json.dumps(d).encode()
        else:
            data = b""
        mode = "structured"
    else:
        attrs = {k[3:].lower(): v for k, v in headers.items() if k.lower().startswith("ce-")}
        if ctype:
            attrs["datacontenttype"] = ctype
        data = body
        mode = "binary"
    for required in ("specversion", "id", "source", "type"):
        if not attrs.get(required):
            raise ValueError(f"not a CloudEvent: no '{required}' attribute")
    return attrs, data, mode


def wants_reject(data):
    try:
        obj = json.loads(data)
    except ValueError:
        return False
    return isinstance(obj, dict) and obj.get("reject") is True


def shown(data):
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= MAX_DATA_SHOWN else text[:MAX_DATA_SHOWN] + "..."


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: triggerd reuses its connections
    server_version = "example-function/1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            attrs, data, mode = parse_event(self.headers, body)
        except ValueError as e:
            print(f"rejected a request: {e}", flush=True)
            self.answer(400, {"error": str(e)})
            return
        print(
            f"received {attrs['type']} id={attrs['id']} source={attrs['source']} "
            f"mode={mode} data={shown(data)}",
            flush=True,
        )
        if wants_reject(data):
            print(f"  -> answering 400 to id={attrs['id']} (its data says \"reject\": true)",
                  flush=True)
            self.answer(400, {"error": "rejected on request: the event data says reject=true",
                              "id": attrs["id"]})
            return
        self.send_response(204)
        self.end_headers()

    def answer(self, status, obj):
        payload = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, fmt, *args):  # one line per event is printed above instead
        pass


def main():
    ap = argparse.ArgumentParser(description="an example CloudEvents function for triggerd")
    ap.add_argument("--port", type=int, default=8081, help="TCP port (0: any free port)")
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    server = http.server.ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"listening on http://{args.host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
