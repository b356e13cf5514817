"""Decodes OTLP/HTTP JSON export bodies with the official OpenTelemetry protocol definitions.

Run with a Python that has the `opentelemetry-proto` package (scripts/setup-debian.sh installs it in
a venv of its own): reads a JSON list of request bodies (strings) on stdin, and prints a JSON list
of the spans they hold, or exits 1 with the reason when a body is not a valid OTLP
ExportTraceServiceRequest.

The OTLP JSON mapping differs from protobuf's canonical JSON in one point: trace and span ids are
hex strings, not base64 (opentelemetry-proto docs/specification.md, "JSON Protobuf Encoding"). So
each id is checked to be lowercase hex of the right length, turned into base64, and the whole body
is parsed by protobuf's json_format.Parse into ExportTraceServiceRequest, which refuses unknown
fields and wrong types. The spans printed come from the parsed protobuf message, not from the JSON.
"""

import base64
import binascii
import json
import re
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1 import trace_pb2

HEX = {"traceId": 32, "spanId": 16, "parentSpanId": 16}


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def ids_to_base64(obj, where):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in HEX:
                if not isinstance(v, str) or not re.fullmatch("[0-9a-f]{%d}" % HEX[k], v):
                    fail(f"{where}: {k} {v!r} is not {HEX[k]} lowercase hex digits")
                obj[k] = base64.b64encode(binascii.unhexlify(v)).decode()
            else:
                ids_to_base64(v, where)
    elif isinstance(obj, list):
        for v in obj:
            ids_to_base64(v, where)


def value(av):
    which = av.WhichOneof("value")
    return getattr(av, which) if which else None


def main():
    bodies = json.load(sys.stdin)
    spans = []
    for i, body in enumerate(bodies):
        obj = json.loads(body)
        ids_to_base64(obj, f"body {i}")
        req = ExportTraceServiceRequest()
        try:
            json_format.Parse(json.dumps(obj), req)
        except json_format.ParseError as e:
            fail(f"body {i} is not an ExportTraceServiceRequest: {e}")
        for rs in req.resource_spans:
            resource = {a.key: value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append({
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "trace_state": s.trace_state,
                        "name": s.name,
                        "kind": trace_pb2.Span.SpanKind.Name(s.kind),
                        "start": s.start_time_unix_nano,
                        "end": s.end_time_unix_nano,
                        "status": trace_pb2.Status.StatusCode.Name(s.status.code),
                        "status_message": s.status.message,
                        "attributes": {a.key: value(a.value) for a in s.attributes},
                        "links": [{"trace_id": l.trace_id.hex(), "span_id": l.span_id.hex()}
                                  for l in s.links],
                        "resource": resource,
                        "scope": ss.scope.name,
                    })
    json.dump(spans, sys.stdout)


if __name__ == "__main__":
    main()
