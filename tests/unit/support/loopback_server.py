#!/usr/bin/env python3
"""Tiny loopback HTTP(S) server for the transport and token unit specs.

Prints "listening on http://127.0.0.1:PORT pid=PID" and serves until it
is killed, its parent goes away, or 10 minutes pass. Standard library only.

Routes (any method unless noted):
  /echo...            request line, headers exactly as received, blank line, body
  /conn               the client's source port (keep-alive checks)
  /sleep?s=N          answer after N seconds
  /status?code=N      status N with repeated and folded-looking headers
  /big?n=N            N bytes of body
  /gzip               gzip-encoded body when the client accepts it
  /gzipbomb?n=N       N zero bytes, gzip-encoded (a few KiB on the wire)
  /drop               close the connection without answering
  /reply?status=&ctype=&body=   that answer, verbatim
  /cycle?n=0|1        a page list whose two pages link to each other
  /_freeport          a port nothing listens on
  /_count             token requests served so far
  /_last              the last token request's body
  POST /{tenant}/oauth2/v2.0/token            Entra ID client credentials
  GET  /metadata/identity/oauth2/token        IMDS (needs "Metadata: true")
"""
import gzip
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD_SECRET = "s3cret-value-never-logged"
GOOD_ASSERTION_PREFIX = "eyJ"          # any JWT-looking assertion is accepted
STATE = {"count": 0, "last": ""}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True   # headers and body go in separate writes

    def log_message(self, *args):  # keep the spec output clean
        pass

    def reply(self, code, body, headers=(), ctype="text/plain"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        body = self.read_body()
        p = url.path
        if p.startswith("/echo"):
            head = [self.requestline]
            head += ["%s: %s" % (k, v) for k, v in self.headers.items()]
            self.reply(200, "\n".join(head).encode() + b"\n\n" + body)
        elif p == "/conn":
            self.reply(200, str(self.client_address[1]))
        elif p == "/sleep":
            time.sleep(float(q.get("s", "1")))
            self.reply(200, "slept")
        elif p == "/status":
            code = int(q.get("code", "200"))
            self.reply(code, json.dumps({"code": "Thing", "status": code}),
                       [("X-Multi", "a"), ("X-Multi", "b"),
                        ("ETag", '"0x8DC"'), ("request-id", "rid-1")],
                       "application/json")
        elif p == "/big":
            self.reply(200, b"x" * int(q.get("n", "1000")))
        elif p == "/gzip":
            data = b"hello " * 1000
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                self.reply(200, gzip.compress(data), [("Content-Encoding", "gzip")])
            else:
                self.reply(200, data)
        elif p.startswith("/reply"):
            # whatever the test asks for: status, content type, body
            self.reply(int(q.get("status", "200")), q.get("body", "").encode(), (),
                       q.get("ctype", "application/json"))
        elif p == "/cycle":
            # pages 0 and 1 link to each other: a list that never ends
            n = int(q.get("n", "0"))
            host = self.headers.get("Host")
            self.reply(200, json.dumps({"value": [{"id": "p%d" % n}],
                                        "odata.nextLink": "http://%s/cycle?n=%d" % (host, 1 - n)}),
                       (), "application/json")
        elif p == "/gzipbomb":
            data = gzip.compress(b"\0" * int(q.get("n", "1000")), compresslevel=9)
            self.reply(200, data, [("Content-Encoding", "gzip")])
        elif p == "/drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif p == "/_freeport":
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            self.reply(200, str(port))
        elif p == "/_count":
            self.reply(200, str(STATE["count"]))
        elif p == "/_last":
            self.reply(200, STATE["last"])
        elif p.endswith("/oauth2/v2.0/token") and self.command == "POST":
            self.token(p.split("/")[1], body.decode())
        elif p == "/metadata/identity/oauth2/token" and self.command == "GET":
            self.imds(q)
        else:
            self.reply(404, "no route " + p)

    def count(self, text):
        with LOCK:
            STATE["count"] += 1
            STATE["last"] = text

    def aad_error(self, code, error, desc):
        self.reply(code, json.dumps({
            "error": error,
            "error_description": desc + "\r\nTrace ID: 0000\r\nCorrelation ID: 1111",
            "error_codes": [7000215], "trace_id": "0000"}),
            [("x-ms-request-id", "req-" + error)], "application/json")

    def token(self, tenant, text):
        self.count(text)
        form = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
        ctype = self.headers.get("Content-Type")
        if ctype != "application/x-www-form-urlencoded":
            return self.aad_error(400, "invalid_request", "AADSTS900144: bad content type")
        if form.get("grant_type") != "client_credentials" or "scope" not in form:
            return self.aad_error(400, "invalid_request", "AADSTS900144: missing grant")
        if tenant == "broken-json":
            return self.reply(200, '{"access_token": "x", ', (), "application/json")
        if tenant == "no-token":
            return self.reply(200, '{"token_type": "Bearer"}', (), "application/json")
        if tenant == "expires-in-overflow":
            # valid JSON whose number no double holds (found by fuzz_jfields: read as NaN, kept 10 minutes)
            return self.reply(200, '{"token_type": "Bearer", "access_token": "tok-%d-short", "expires_in": 1e999}'
                              % STATE["count"], (), "application/json")
        lifetimes = {"expires-in-0": {"expires_in": 0}, "expires-in-huge": {"expires_in": 10 ** 12},
                     "expires-in-100-digits": {"expires_in": 3 * 10 ** 100},
                     "expires-in-negative": {"expires_in": -5}, "expires-on-past": {"expires_on": 1000}}
        if tenant in lifetimes:
            answer = {"token_type": "Bearer", "access_token": "tok-%d-short" % STATE["count"]}
            answer.update(lifetimes[tenant])
            return self.reply(200, json.dumps(answer), (), "application/json")
        if tenant == "parrot":
            # a badly behaved endpoint that quotes the request back
            return self.aad_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided "
                                  "for request %s (secret %s)" % (text, form.get("client_secret")))
        if tenant == "parrot-id":
            # one that quotes the secret back as its request and trace ids
            secret = form.get("client_secret", "")
            return self.reply(401, json.dumps({"error": "invalid_client", "trace_id": secret}),
                              [("x-ms-request-id", secret)], "application/json")
        if "client_assertion" in form:
            ok = (form.get("client_assertion_type") ==
                  "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" and
                  form["client_assertion"].startswith(GOOD_ASSERTION_PREFIX))
            if not ok:
                return self.aad_error(401, "invalid_client",
                                      "AADSTS700024: Client assertion is not within its valid time range.")
        elif form.get("client_secret") != GOOD_SECRET:
            return self.aad_error(401, "invalid_client",
                                  "AADSTS7000215: Invalid client secret provided.")
        self.reply(200, json.dumps({
            "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
            "access_token": "tok-%d-%s" % (STATE["count"], form["scope"])}),
            (), "application/json")

    def imds(self, q):
        self.count(self.path)
        if self.headers.get("Metadata") != "true":
            return self.reply(400, json.dumps({
                "error": "invalid_request",
                "error_description": "Required metadata header not specified"}),
                (), "application/json")
        res = q.get("resource", "")
        if not res.startswith("https://batch.core.windows.net"):
            return self.reply(400, json.dumps({
                "error": "invalid_resource",
                "error_description": "AADSTS500011: The resource principal named %s was not found." % res}),
                (), "application/json")
        now = int(time.time())
        self.reply(200, json.dumps({
            "access_token": "mi-tok-%d-%s" % (STATE["count"], q.get("client_id", "system")),
            "expires_in": "86399", "expires_on": str(now + 86399), "resource": res,
            "token_type": "Bearer"}), (), "application/json")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = route


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # clients that cancel or time out close early: not worth a traceback
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            super().handle_error(request, client_address)


def watchdog(parent):
    deadline = time.time() + 600
    while time.time() < deadline and os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    scheme = "http"
    if len(sys.argv) >= 4 and sys.argv[1] == "--tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        if "--alpn-h2" in sys.argv:
            # offers HTTP/2 but cannot speak it: enough to make a client log
            # its HTTP/2 request headers before the exchange fails
            ctx.set_alpn_protocols(["h2"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        scheme = "https"
    threading.Thread(target=watchdog, args=(os.getppid(),), daemon=True).start()
    print("listening on %s://127.0.0.1:%d pid=%d" % (scheme, srv.server_address[1], os.getpid()),
          flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
