"""Independent peers for the function-endpoint tests (issue 5): they check what triggerd sends with
code that did not make it.

- SigV4Verifier: verifies an AWS Signature Version 4 with botocore's signer (Debian python3-botocore),
  independently of libcurl, which made the signature. Session tokens are checked too.
- LambdaServer: an HTTP endpoint speaking the Lambda Invoke API (POST
  /2015-03-31/functions/NAME/invocations), every request verified by SigV4Verifier; a behaviour decides
  the answer (200, 200 + X-Amz-Function-Error, 429, 500 ...).
- StsServer: a fake STS answering AssumeRoleWithWebIdentity only when the web-identity token is the
  content the test wrote in the token file; it hands out expiring session credentials and registers them
  with the LambdaServer's verifier.
- MetadataServer: a fake Google metadata server issuing short-lived ID tokens (JWTs with exp) per
  audience, counting requests; tokens() tells which are valid now.

Everything runs in background threads on loopback ports of its own and stops at exit.
"""

import base64
import datetime
import hmac
import http.server
import json
import os
import secrets
import socketserver
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import at_cleanup, log  # noqa: E402

try:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    HAVE_BOTOCORE = True
except ImportError:  # the tests skip
    HAVE_BOTOCORE = False


class SigV4Verifier:
    """Known keys: access key id -> (secret, session token or None, not_after or None)."""

    def __init__(self, region, service="lambda"):
        self.region = region
        self.service = service
        self.keys = {}
        self.lock = threading.Lock()

    def add_key(self, akid, secret, token=None, not_after=None):
        with self.lock:
            self.keys[akid] = (secret, token, not_after)

    def verify(self, method, raw_path, headers, body):
        """headers: {lowercase name: value}. Returns (True, akid) or (False, reason)."""
        auth = headers.get("authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return False, "no SigV4 Authorization header"
        fields = {}
        for part in auth[len("AWS4-HMAC-SHA256 "):].split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v
        try:
            akid, date, region, service, term = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            got_sig = fields["Signature"]
        except (KeyError, ValueError):
            return False, "malformed Authorization header"
        if term != "aws4_request" or region != self.region or service != self.service:
            return False, f"wrong scope {region}/{service}/{term}"
        with self.lock:
            key = self.keys.get(akid)
        if key is None:
            return False, f"unknown access key {akid}"
        secret, token, not_after = key
        if not_after is not None and time.time() > not_after:
            return False, "ExpiredTokenException: the security token included in the request is expired"
        amz_date = headers.get("x-amz-date")
        for need in ("host", "x-amz-date"):
            if need not in signed:
                return False, f"{need} not signed"
        if not amz_date or not amz_date.startswith(date):
            return False, "x-amz-date missing or not matching the credential scope"
        try:
            t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            return False, "bad x-amz-date"
        if abs(time.time() - t.timestamp()) > 300:
            return False, "request time too skewed"
        if token is not None:
            if headers.get("x-amz-security-token") != token:
                return False, "missing or wrong X-Amz-Security-Token"
            if "x-amz-security-token" not in signed:
                return False, "x-amz-security-token not signed"
        elif "x-amz-security-token" in headers:
            return False, "unexpected X-Amz-Security-Token"
        for h in signed:
            if h not in headers:
                return False, f"signed header {h} not in the request"
        split = urllib.parse.urlsplit(raw_path)
        req = AWSRequest(method=method, url="http://" + headers["host"] + split.path,
                         headers={h: headers[h] for h in signed}, data=body)
        # The canonical query string as the SigV4 specification defines it (decoded, re-encoded,
        # sorted), not as the client happened to write it.
        req.params = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        req.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(akid, secret, token), self.service, self.region)
        canonical = signer.canonical_request(req)
        want = signer.signature(signer.string_to_sign(req, canonical), req)
        if signer.signed_headers(signer.headers_to_sign(req)) != ";".join(signed):
            return False, "SignedHeaders not canonical"
        if not hmac.compare_digest(want, got_sig):
            return False, "SignatureDoesNotMatch"
        return True, akid


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Peer:
    """A threaded HTTP server calling self.handle(method, path, headers, body) -> (status, headers,
    body)."""

    def __init__(self):
        peer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _do(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, rh, rb = peer.handle(self.command, self.path, headers, body)
                if isinstance(rb, str):
                    rb = rb.encode()
                self.send_response(status)
                for k, v in (rh or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(rb)))
                self.end_headers()
                self.wfile.write(rb)

            do_GET = _do
            do_POST = _do

        self.lock = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        at_cleanup(self.stop)

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


class LambdaRequest:
    def __init__(self, method, path, headers, body, verified, why, status):
        self.method, self.path, self.headers, self.body = method, path, headers, body
        self.verified, self.why, self.status = verified, why, status
        self.function = None
        self.qualifier = None

    def json(self):
        return json.loads(self.body)


class LambdaServer(_Peer):
    """behaviour(req, attempt) -> (status, headers, body) for verified requests; attempt counts
    verified requests per (function, qualifier, event id) (the structured event's "id", or the
    body)."""

    def __init__(self, region="eu-west-1", behaviour=None):
        self.verifier = SigV4Verifier(region)
        self.behaviour = behaviour or (lambda req, attempt: (200, {}, b'{"ok":true}'))
        self.requests = []
        self.attempts = {}
        super().__init__()

    def handle(self, method, path, headers, body):
        ok, why = self.verifier.verify(method, path, headers, body)
        split = urllib.parse.urlsplit(path)
        parts = split.path.split("/")
        req = LambdaRequest(method, path, headers, body, ok, why, None)
        if len(parts) == 5 and parts[1] == "2015-03-31" and parts[2] == "functions" \
                and parts[4] == "invocations":
            req.function = urllib.parse.unquote(parts[3])
        q = dict(urllib.parse.parse_qsl(split.query))
        req.qualifier = q.get("Qualifier")
        if not ok:
            status, rh, rb = 403, {"x-amzn-ErrorType": "InvalidSignatureException"}, \
                json.dumps({"message": why})
        elif method != "POST" or req.function is None:
            status, rh, rb = 404, {}, json.dumps({"message": "no such resource"})
        else:
            try:
                key = json.loads(body).get("id") if body else None
            except (ValueError, AttributeError):
                key = None
            key = (req.function, req.qualifier, key or body)  # ids repeat across streams
            with self.lock:
                self.attempts[key] = self.attempts.get(key, 0) + 1
                attempt = self.attempts[key]
            status, rh, rb = self.behaviour(req, attempt)
        req.status = status
        with self.lock:
            self.requests.append(req)
        return status, rh, rb

    def snapshot(self):
        with self.lock:
            return list(self.requests)


class StsServer(_Peer):
    """AssumeRoleWithWebIdentity: accepts only token_fn() as the WebIdentityToken and role_arn as the
    RoleArn; hands out credentials valid for `lifetime` seconds, registered with verifier."""

    def __init__(self, verifier, role_arn, token_fn, lifetime=6):
        self.verifier = verifier
        self.role_arn = role_arn
        self.token_fn = token_fn
        self.lifetime = lifetime
        self.issued = []  # (time, akid)
        self.rejected = 0
        super().__init__()

    def handle(self, method, path, headers, body):
        if method == "POST":
            q = dict(urllib.parse.parse_qsl(body.decode()))
        else:
            q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
        if q.get("Action") != "AssumeRoleWithWebIdentity" or q.get("Version") != "2011-06-15":
            return 400, {}, "<ErrorResponse><Error><Code>InvalidAction</Code></Error></ErrorResponse>"
        if q.get("RoleArn") != self.role_arn or q.get("WebIdentityToken") != self.token_fn() \
                or not q.get("RoleSessionName"):
            with self.lock:
                self.rejected += 1
            return 400, {}, ("<ErrorResponse><Error><Code>InvalidIdentityToken</Code>"
                             "</Error></ErrorResponse>")
        akid = "ASIA" + secrets.token_hex(8).upper()
        secret = secrets.token_urlsafe(30)
        token = base64.b64encode(secrets.token_bytes(48)).decode()
        exp = time.time() + self.lifetime
        self.verifier.add_key(akid, secret, token, not_after=exp)
        with self.lock:
            self.issued.append((time.time(), akid))
        expiration = datetime.datetime.fromtimestamp(exp, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        xml = ("<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
               "<AssumeRoleWithWebIdentityResult><Credentials>"
               f"<SessionToken>{token}</SessionToken><SecretAccessKey>{secret}</SecretAccessKey>"
               f"<Expiration>{expiration}</Expiration><AccessKeyId>{akid}</AccessKeyId>"
               "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>")
        return 200, {"Content-Type": "text/xml"}, xml


def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class MetadataServer(_Peer):
    """GET /computeMetadata/v1/instance/service-accounts/default/identity?audience=AUD with
    Metadata-Flavor: Google -> a JWT whose exp is `lifetime` seconds away (signed with a key only this
    server knows). valid(token, audience) says whether a token is one it issued, for that audience,
    not expired."""

    PATH = "/computeMetadata/v1/instance/service-accounts/default/identity"

    def __init__(self, lifetime=4):
        self.lifetime = lifetime
        self.key = secrets.token_bytes(32)
        self.requests = []  # (time, audience)
        self.user_agents = []  # the User-Agent of every request, in order
        self.bad_requests = 0
        super().__init__()
        self.identity_url = self.url + self.PATH

    def handle(self, method, path, headers, body):
        split = urllib.parse.urlsplit(path)
        q = dict(urllib.parse.parse_qsl(split.query))
        with self.lock:
            self.user_agents.append(headers.get("user-agent"))
        if split.path != self.PATH or headers.get("metadata-flavor") != "Google" \
                or not q.get("audience"):
            with self.lock:
                self.bad_requests += 1
            return 403, {}, "missing Metadata-Flavor or audience"
        now = time.time()
        with self.lock:
            self.requests.append((now, q["audience"]))
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64url(json.dumps({"aud": q["audience"], "iat": int(now),
                                      "exp": int(now + self.lifetime),
                                      "iss": "https://accounts.google.com",
                                      "nonce": secrets.token_hex(4)}).encode())
        sig = _b64url(hmac.new(self.key, f"{header}.{payload}".encode(), "sha256").digest())
        return 200, {"Content-Type": "text/html"}, f"{header}.{payload}.{sig}"

    def valid(self, token, audience):
        try:
            header, payload, sig = token.split(".")
        except (ValueError, AttributeError):
            return False, "not a JWT"
        want = _b64url(hmac.new(self.key, f"{header}.{payload}".encode(), "sha256").digest())
        if not hmac.compare_digest(want, sig):
            return False, "bad signature"
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if claims.get("aud") != audience:
            return False, "wrong audience"
        if time.time() >= claims["exp"]:
            return False, "expired"
        return True, "ok"

    def count(self):
        with self.lock:
            return len(self.requests)


class CallbackServer(_Peer):
    """Records every request (the OpenFaaS async callback, a fake gateway's function calls)."""

    def __init__(self, handler=None):
        self.handler = handler
        self.requests = []
        super().__init__()

    def handle(self, method, path, headers, body):
        with self.lock:
            self.requests.append((method, path, headers, body))
        if self.handler:
            return self.handler(method, path, headers, body)
        return 200, {}, b""

    def snapshot(self):
        with self.lock:
            return list(self.requests)


__all__ = ["HAVE_BOTOCORE", "SigV4Verifier", "LambdaServer", "StsServer", "MetadataServer",
           "CallbackServer", "log"]


class TokenServer(_Peer):
    """An OAuth 2.0 token endpoint for the client-credentials grant (RFC 6749 4.4): POST /token with
    grant_type=client_credentials, the client authenticated with HTTP Basic (form-urlencoded id and
    secret). It issues opaque tokens valid `lifetime` seconds (expires_in) and records each issue
    (time, scope, audience). check(authorization_header) says whether a request carries a token it
    issued that has not expired and was not revoked; revoke() invalidates every token issued so far
    (a rotated signing key), which the function then answers 401."""

    PATH = "/token"

    def __init__(self, client_id, client_secret, lifetime=4):
        self.client_id, self.client_secret = client_id, client_secret
        self.lifetime = lifetime
        self.issued = []  # dicts: token, t, exp, scope, audience
        self.refused = 0  # requests that were not a valid client-credentials request
        self.revoked = set()
        super().__init__()
        self.token_url = self.url + self.PATH

    def handle(self, method, path, headers, body):
        auth = headers.get("authorization", "")
        form = dict(urllib.parse.parse_qsl(body.decode()))
        ok = method == "POST" and path == self.PATH and auth.startswith("Basic ") and \
            headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        if ok:
            try:
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                ok = (urllib.parse.unquote_plus(user) == self.client_id and
                      urllib.parse.unquote_plus(pw) == self.client_secret)
            except Exception:
                ok = False
        if not ok or form.get("grant_type") != "client_credentials" or "client_secret" in form:
            with self.lock:
                self.refused += 1
            return 401, {"Content-Type": "application/json"}, '{"error":"invalid_client"}'
        now = time.time()
        tok = "at-" + secrets.token_urlsafe(16)
        with self.lock:
            self.issued.append({"token": tok, "t": now, "exp": now + self.lifetime,
                                "scope": form.get("scope"), "audience": form.get("audience")})
        return 200, {"Content-Type": "application/json", "Cache-Control": "no-store"}, json.dumps(
            {"access_token": tok, "token_type": "Bearer", "expires_in": self.lifetime})

    def check(self, authorization):
        if not authorization or not authorization.startswith("Bearer "):
            return False, "no bearer token"
        tok = authorization[7:]
        with self.lock:
            rec = next((r for r in self.issued if r["token"] == tok), None)
            if rec is None:
                return False, "unknown token"
            if tok in self.revoked:
                return False, "revoked"
            if time.time() >= rec["exp"]:
                return False, "expired"
        return True, "ok"

    def revoke(self):
        with self.lock:
            self.revoked.update(r["token"] for r in self.issued)

    def count(self):
        with self.lock:
            return len(self.issued)

    def snapshot(self):
        with self.lock:
            return [dict(r) for r in self.issued]
