"""Certificates and a TLS-terminating nginx for the secure-transport tests.

Certificates are made by the test itself with the openssl command line, under a temp dir that is
removed at exit: a CA, then leaf certificates (server: SAN IP:127.0.0.1 and DNS:localhost; client:
clientAuth) signed by it, each with a serial of our choosing so that a server's log can say which
one a client presented. nginx runs in the foreground (`daemon off`) on a free loopback port with its
own prefix directory; its access log has one JSON line per request with the client certificate's
serial and whether the TLS session was resumed."""

import json
import os
import shutil
import signal
import subprocess
import time

from harness import at_cleanup, free_port, make_tempdir, wait_until, SLOW


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


class CA:
    """A self-signed CA (RSA 2048) in DIR/NAME.{key,pem}."""

    def __init__(self, d, name):
        self.dir = d
        self.name = name
        self.key = os.path.join(d, name + ".key")
        self.cert = os.path.join(d, name + ".pem")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out",
                self.cert, "-days", "2", "-subj", f"/CN=triggerd test {name}", "-addext",
                "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")

    def issue(self, name, serial, client=False, cn=None):
        """Signs a new leaf: returns (cert_path, key_path). serial: an int (logged in hex)."""
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        cert = os.path.join(self.dir, name + ".pem")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            if client:
                f.write("extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n")
            else:
                f.write("extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,"
                        "keyEncipherment\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
                f"/CN={cn or name}")
        openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-set_serial",
                str(serial), "-days", "2", "-extfile", ext, "-out", cert)
        return cert, key


def serial_hex(serial):
    """How nginx's $ssl_client_serial writes an int serial (upper-case hex, even length)."""
    s = "%X" % serial
    return s if len(s) % 2 == 0 else "0" + s


def replace_file(src, dst):
    """Puts src's content at dst atomically (a reader sees the old file or the new one)."""
    tmp = dst + ".new"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class Nginx:
    """nginx serving https://127.0.0.1:PORT/ (return 204 on every path) with the server certificate
    of CA `server_ca`, requiring a client certificate signed by one of `client_cas` (paths) when
    verify_client is True. keepalive: False closes the connection after every request, so that
    each request is a new TLS connection (and handshake)."""

    def __init__(self, server_cert, server_key, client_cas, verify_client=True, keepalive=False):
        self.nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.dir = make_tempdir("td-nginx-")
        self.port = free_port()
        self.server_cert, self.server_key = server_cert, server_key
        self.verify_client = verify_client
        self.keepalive = keepalive
        self.access = os.path.join(self.dir, "access.log")
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.proc = None
        self._write_conf(client_cas)
        self.proc = subprocess.Popen([self.nginx, "-p", self.dir, "-c", self.conf, "-e",
                                      os.path.join(self.dir, "error.log")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr.log"), "wb"))
        at_cleanup(self.stop)
        if not wait_until(self._listening, 10 * SLOW):
            raise RuntimeError("nginx did not start: " + self.error_log())
        self.url = f"https://127.0.0.1:{self.port}/"

    def _write_conf(self, client_cas):
        bundle = os.path.join(self.dir, "client-cas.pem")
        with open(bundle + ".new", "w") as out:
            for p in client_cas:
                with open(p) as f:
                    out.write(f.read())
        os.replace(bundle + ".new", bundle)
        verify = ("ssl_verify_client on;\n    ssl_client_certificate " + bundle + ";"
                  if self.verify_client else "")
        with open(self.conf, "w") as f:
            f.write(f"""worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log info;
events {{ worker_connections 256; }}
http {{
  log_format td escape=json '{{"uri":"$request_uri","status":$status,'
      '"serial":"$ssl_client_serial","verify":"$ssl_client_verify",'
      '"reused":"$ssl_session_reused","conn":$connection}}';
  access_log {self.access} td;
  keepalive_timeout {"60s" if self.keepalive else "0"};
  client_body_temp_path {self.dir}/body;
  proxy_temp_path {self.dir}/proxy;
  fastcgi_temp_path {self.dir}/fastcgi;
  uwsgi_temp_path {self.dir}/uwsgi;
  scgi_temp_path {self.dir}/scgi;
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {self.server_cert};
    ssl_certificate_key {self.server_key};
    {verify}
    ssl_session_cache shared:td:1m;
    ssl_session_tickets on;
    location / {{ return 204; }}
  }}
}}
""")

    def _listening(self):
        import socket
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True

    def trust_only(self, client_cas):
        """Rewrites the trusted client CAs and reloads (SIGHUP): the new worker applies them to
        every connection it accepts; the old one closes its idle keep-alive connections."""
        before = self._workers()
        self._write_conf(client_cas)
        self.proc.send_signal(signal.SIGHUP)
        # reloaded when a worker that was not there before runs, and the old ones are gone
        return wait_until(lambda: (lambda now: now and not (now & before))(self._workers()),
                          10 * SLOW)

    def _workers(self):
        try:
            out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                                 text=True).stdout
        except FileNotFoundError:
            return set()
        return {int(x) for x in out.split()}

    def requests(self):
        """The access log so far: a list of dicts (uri, status, serial, verify, reused, conn)."""
        out = []
        try:
            with open(self.access) as f:
                for line in f:
                    line = line.strip()
                    if line:
                        out.append(json.loads(line))
        except FileNotFoundError:
            pass
        return out

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()[-2000:]
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def curl(url, *args, timeout=10):
    """Runs curl -sS URL ARGS: (http_code as int or 0, stderr)."""
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                        str(timeout)] + list(args) + [url], capture_output=True, text=True)
    try:
        code = int(r.stdout.strip() or "0")
    except ValueError:
        code = 0
    return code, r.stderr.strip()


def wait_ms(ms):
    time.sleep(ms / 1000.0 * SLOW)
