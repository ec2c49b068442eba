"""HTTP plumbing, fault injection and the command line.  Binds to loopback only;
HTTP/1.1 with keep-alive.  The state and the planes are in core, the control API in
control, the Batch data plane in batch_urls / batch_responses / batch_models.
"""

import argparse
import http.client
import ipaddress
import random
import re
import signal
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import __version__, control, core
from . import world as W
from .wire import ApiError, Request, Response

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


class Faults:
    """Fault settings.  Shares are probabilities in 0..1, drawn from one seeded generator."""
    FIELDS = {"p429": float, "p500": float, "p503": float, "drop": float, "dropAfterCommit": float,
              "latencyMs": float, "retryAfter": int, "auth": bool, "seed": int, "methods": list}
    METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    def __init__(self, **kw):
        self.p429 = self.p500 = self.p503 = self.drop = self.dropAfterCommit = 0.0
        self.latencyMs = 0.0
        self.retryAfter = 1
        self.auth = False
        self.seed = None
        self.methods = None                 # None: every method; else only these
        self.update(kw)

    def update(self, values):
        for k, v in values.items():
            if k not in self.FIELDS:
                raise ValueError("unknown fault setting '%s' (known: %s)" % (k, ", ".join(sorted(self.FIELDS))))
            typ = self.FIELDS[k]
            if v is None and k in ("seed", "methods"):
                setattr(self, k, None)
                continue
            if typ is list:
                if not isinstance(v, list) or not all(isinstance(m, str) and m.upper() in self.METHODS for m in v):
                    raise ValueError("methods must be null or a list of HTTP methods (%s)" % ", ".join(self.METHODS))
                self.methods = sorted({m.upper() for m in v})
                continue
            if typ is bool:
                if not isinstance(v, bool):
                    raise ValueError("%s must be true or false" % k)
            elif isinstance(v, bool) or not isinstance(v, (int, float)) or (typ is int and v != int(v)):
                raise ValueError("%s must be a number" % k)
            v = typ(v)
            if k in ("p429", "p500", "p503", "drop", "dropAfterCommit") and not 0.0 <= v <= 1.0:
                raise ValueError("%s must be a share between 0 and 1" % k)
            if k in ("latencyMs", "retryAfter") and v < 0:
                raise ValueError("%s must not be negative" % k)
            setattr(self, k, v)
        if sum((self.p429, self.p500, self.p503, self.drop)) > 1.0 + 1e-9:
            raise ValueError("the shares p429 + p500 + p503 + drop must not exceed 1")
        self.rng = random.Random(self.seed)

    def as_dict(self):
        return {k: getattr(self, k) for k in self.FIELDS}

    def applies_to(self, method):
        return self.methods is None or method in self.methods

    def pick(self):
        r, acc = self.rng.random(), 0.0
        for name in ("p429", "p500", "p503", "drop"):
            acc += getattr(self, name)
            if r < acc:
                return name
        return None

    def drop_after_commit(self):
        return self.dropAfterCommit > 0 and self.rng.random() < self.dropAfterCommit


def serve(emu, req):
    """One request through the faults to its plane; returns the Response (maybe a drop)."""
    plane = core.plane_of(req)
    if plane == "control":
        try:
            return control.handle(emu, req)
        except Exception:
            report_bug(emu, "%s %s" % (req.method, req.path))
            return emu.error(req, plane, internal_error())
    faults = emu.faults
    faults_apply = (plane in ("batch", "arm") or faults.auth) and faults.applies_to(req.method)
    if faults_apply:
        if faults.latencyMs:
            time.sleep(faults.latencyMs / 1000.0)
        with emu.lock:
            fault = faults.pick()
        if fault:
            resp = fault_response(emu, req, plane, fault)
            emu.finish(req, plane, resp, fault=fault)
            return resp
    try:
        with emu.lock:
            resp = emu.route(req, plane)
    except ApiError as e:
        resp = emu.error(req, plane, e)
    except Exception:                       # a bug: answer like the service, never with the traceback
        report_bug(emu, "%s %s" % (req.method, req.path))
        resp = emu.error(req, plane, internal_error())
    fault = None
    if faults_apply and req.method in MUTATING and resp.status < 400:
        with emu.lock:
            if faults.drop_after_commit():
                resp.drop, fault = True, "dropAfterCommit"
    with emu.lock:
        emu.record(req, plane, resp)
    emu.finish(req, plane, resp, fault=fault)
    return resp


def internal_error():
    return ApiError(500, "InternalError", "Server encountered an internal error. Please try again after some time.")


def report_bug(emu, what):
    """An unexpected exception: the traceback goes to stderr with --verbose, else one line."""
    if emu.settings.verbose:
        sys.stderr.write("azbatch-emulator: internal error in %s\n" % what)
        traceback.print_exc(file=sys.stderr)
    else:
        sys.stderr.write("azbatch-emulator: internal error in %s (--verbose shows the traceback)\n" % what)


def fault_response(emu, req, plane, fault):
    retry = [("Retry-After", str(emu.faults.retryAfter))]
    if fault == "drop":
        resp = Response(0)
        resp.drop = True
        return resp
    status, code, message, hdrs = {
        "p429": (429, "TooManyRequests", "The request rate is too high; retry after the interval in the "
                                         "Retry-After header.", retry),
        "p500": (500, "InternalError", "Server encountered an internal error. Please try again after some "
                                       "time.", []),
        "p503": (503, "ServerBusy", "The server is currently unable to receive requests. Please retry your "
                                    "request.", retry),
    }[fault]
    if plane in ("entra", "imds"):
        err = ApiError(status, code, message, headers=hdrs, payload={
            "error": "temporarily_unavailable", "error_description": message})
    else:
        err = ApiError(status, code, message, headers=hdrs)
    return emu.error(req, plane, err)


# {===================================================================
# HTTP
# ====================================================================

class Limits:
    """What one connection may cost: body and header bytes, idle and per-request time."""

    def __init__(self, max_body=1 << 20, max_header_bytes=32 << 10, idle_timeout=30.0, request_timeout=30.0):
        self.max_body = max_body
        self.max_header_bytes = max_header_bytes       # the request line and the header block, each
        self.idle_timeout = idle_timeout               # between requests on a keep-alive connection
        self.request_timeout = request_timeout         # from a request's first line to its last body byte,
        #                                                and for writing the answer


class Watchdog:
    """One thread that shuts down connections whose deadline has passed: a keep-alive
    connection idle too long, or a client that sends part of a request (or reads no answer)
    and stalls.  A blocked read or write then returns, and the connection's thread ends."""

    def __init__(self, on_expire):
        self._cv = threading.Condition()
        self._deadlines = {}                     # socket -> (monotonic deadline, kind)
        self._wake = None
        self._stopped = False
        self._on_expire = on_expire
        self._thread = threading.Thread(target=self._run, name="azbatch-watchdog", daemon=True)
        self._thread.start()

    def arm(self, sock, seconds, kind):
        deadline = time.monotonic() + seconds
        with self._cv:
            self._deadlines[sock] = (deadline, kind)
            if self._wake is None or deadline < self._wake:
                self._cv.notify()

    def disarm(self, sock):
        with self._cv:
            self._deadlines.pop(sock, None)

    def stop(self):
        with self._cv:
            self._stopped = True
            self._cv.notify()

    def _run(self):
        while True:
            with self._cv:
                if self._stopped:
                    return
                now = time.monotonic()
                expired = [(s, k) for s, (d, k) in self._deadlines.items() if d <= now]
                for s, _ in expired:
                    del self._deadlines[s]
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                self._wake = min((d for d, _ in self._deadlines.values()), default=None)
                if not expired:
                    self._cv.wait(None if self._wake is None else self._wake - now)
            for _, kind in expired:
                self._on_expire(kind)


class _Reject(Exception):
    """A request refused before it reaches a plane (framing, size); the connection closes."""

    def __init__(self, status, code, message, values=()):
        super().__init__(code)
        self.err = ApiError(status, code, message, list(values))


class _Incomplete(Exception):
    """The client went away (or was timed out) in the middle of a request."""


class _HeaderLines:
    """The request's rfile while its headers are parsed: a byte budget for the block, and a
    note of EOF (http.client.parse_headers treats EOF as the end of the headers)."""

    def __init__(self, f, budget):
        self.f, self.budget, self.eof = f, budget, False

    def readline(self, limit=-1):
        if self.budget <= 0:
            raise http.client.LineTooLong("the header block is larger than the limit")
        line = self.f.readline(self.budget + 1 if limit < 0 else min(limit, self.budget + 1))
        self.budget -= len(line)
        if not line.endswith(b"\n"):
            if self.budget < 0:
                raise http.client.LineTooLong("the header block is larger than the limit")
            self.eof = True
        return line


_STATUS_CODES = {400: "InvalidInput", 413: "RequestEntityTooLarge", 414: "RequestUriTooLong",
                 431: "RequestHeaderFieldsTooLarge", 501: "NotImplemented", 505: "UnsupportedHttpVersion"}
_DIGITS = re.compile(r"^[0-9]{1,18}$")
_HEX = re.compile(rb"^[0-9A-Fa-f]{1,8}$")


def _bad_header(name, value, reason):
    return _Reject(400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.",
                   [("HeaderName", name), ("HeaderValue", value), ("Reason", reason)])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "azbatch-emulator/" + __version__
    sys_version = ""

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        emu = self.server.emu
        with emu.lock:
            emu.stats["connections"] += 1

    def finish(self):
        self.server.watchdog.disarm(self.connection)
        super().finish()

    def log_message(self, fmt, *args):
        if self.server.emu.settings.verbose:
            sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    # {---------------------------------------------------------- one request

    def handle_one_request(self):
        limits, watchdog, conn = self.server.limits, self.server.watchdog, self.connection
        self.command, self.path, self.requestline, self.headers = None, "/", "", None
        self.request_version = "HTTP/1.1"
        watchdog.arm(conn, limits.idle_timeout, "idle")
        try:
            line = self.rfile.readline(limits.max_header_bytes + 1)
        except OSError:
            line = b""
        if not line:
            self.close_connection = True
            return
        watchdog.arm(conn, limits.request_timeout, "request")
        if len(line) > limits.max_header_bytes:
            self.send_error(414, "The request line is longer than %d bytes." % limits.max_header_bytes)
            return
        if not line.endswith(b"\n"):
            self.close_connection = True                 # cut off in the middle of the request line
            return
        self.raw_requestline = line
        real, lines = self.rfile, _HeaderLines(self.rfile, limits.max_header_bytes)
        self.rfile = lines
        try:
            parsed = self.parse_request()
        except OSError:
            parsed, lines.eof = False, True
        finally:
            self.rfile = real
        if lines.eof:
            self.close_connection = True
            return
        if not parsed:
            return
        if self.request_version == "HTTP/0.9":
            self.send_error(400, "HTTP/0.9 requests are not supported.")
            return
        if not hasattr(self, "do_" + self.command):
            self.send_error(501, "Unsupported method (%r)" % self.command)
            return
        try:
            self._handle()
            self.wfile.flush()
        except (_Incomplete, OSError):
            self.close_connection = True

    def handle_expect_100(self):
        """Say 100 Continue only to a body the emulator will read; otherwise answer at once."""
        length = (self.headers.get("Content-Length") or "").strip()
        if _DIGITS.match(length) and int(length) <= self.server.limits.max_body:
            return super().handle_expect_100()
        return True

    def _read_body(self):
        limit = self.server.limits.max_body
        te = self.headers.get_all("Transfer-Encoding") or []
        cl = self.headers.get_all("Content-Length") or []
        if te:
            codings = [c.strip().lower() for c in ",".join(te).split(",")]
            if cl:
                raise _bad_header("Transfer-Encoding", ",".join(te), "Transfer-Encoding and Content-Length "
                                                                       "must not both be sent.")
            if codings != ["chunked"]:
                raise _bad_header("Transfer-Encoding", ",".join(te), "Only 'chunked' is supported.")
            return self._read_chunked(limit)
        if not cl:
            return b""
        values = {v.strip() for v in cl}
        if len(values) != 1 or not _DIGITS.match(next(iter(values))):
            raise _bad_header("Content-Length", ",".join(cl), "Content-Length must be one non-negative integer.")
        n = int(values.pop())
        if n > limit:
            raise self._too_large(limit)
        data = self.rfile.read(n)
        if len(data) < n:
            raise _Incomplete()
        return data

    def _read_chunked(self, limit):
        chunks, total = [], 0
        while True:
            line = self.rfile.readline(1025)
            if not line.endswith(b"\n"):
                if len(line) > 1024:
                    raise _bad_header("Transfer-Encoding", "chunked", "A chunk-size line is too long.")
                raise _Incomplete()
            size = line.split(b";")[0].strip()
            if not _HEX.match(size):
                raise _bad_header("Transfer-Encoding", "chunked", "A chunk size is not a hexadecimal number.")
            n = int(size, 16)
            if n == 0:
                budget = self.server.limits.max_header_bytes
                while True:                               # trailers, then the final empty line
                    t = self.rfile.readline(budget + 1)
                    budget -= len(t)
                    if budget < 0:
                        raise _Reject(431, "RequestHeaderFieldsTooLarge", "The trailer block is too large.")
                    if not t.endswith(b"\n"):
                        raise _Incomplete()
                    if t in (b"\r\n", b"\n"):
                        return b"".join(chunks)
            total += n
            if total > limit:
                raise self._too_large(limit)
            data = self.rfile.read(n)
            if len(data) < n:
                raise _Incomplete()
            chunks.append(data)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _bad_header("Transfer-Encoding", "chunked", "A chunk does not end with CRLF.")

    @staticmethod
    def _too_large(limit):
        return _Reject(413, "RequestEntityTooLarge", "The request body is too large and exceeds the maximum "
                                                      "permissible limit.",
                       [("MaxRequestBodySize", str(limit))])

    def _request(self, body):
        host = (self.headers.get("Host") if self.headers else None) or self.server.url_host
        return Request(self.command or "GET", self.path or "/", self.headers.items() if self.headers else [],
                       body, "http://" + host, self.client_address[0])

    def _handle(self):
        emu = self.server.emu
        try:
            body = self._read_body()
        except _Reject as e:
            req = self._request(b"")
            plane = core.plane_of(req)
            resp = emu.error(req, plane, e.err)
            emu.finish(req, plane, resp)
            self._write(resp, close=True)
            self._linger()
            return
        self.server.watchdog.disarm(self.connection)    # the emulator's own time (latency faults) is not timed
        resp = serve(emu, self._request(body))
        if resp.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.log_message('"%s" dropped', self.requestline)
            return
        self._write(resp)

    def _write(self, resp, close=False):
        self.server.watchdog.arm(self.connection, self.server.limits.request_timeout, "request")
        self.send_response(resp.status)
        for k, v in resp.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        if close:
            self.send_header("Connection", "close")
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD" and resp.status not in (204, 304):
            self._headers_buffer.append(resp.body)       # headers and body in one write
        self.flush_headers()

    def _linger(self):
        """After an early answer, read (and drop) what the client is still sending for a moment,
        so that closing does not reset the connection before the answer arrives."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.server.watchdog.arm(self.connection, 1.0, "linger")
            left = 4 * self.server.limits.max_body + (1 << 16)
            while left > 0:
                data = self.rfile.read1(min(left, 1 << 16))
                if not data:
                    break
                left -= len(data)
        except OSError:
            pass

    def send_error(self, code, message=None, explain=None):
        """Errors the request parser finds (bad request line, too long, too many headers,
        unknown method) answer in the plane's error shape, never as an HTML page."""
        emu = self.server.emu
        self.request_version = "HTTP/1.1"           # answer with a status line even to an HTTP/0.9 form
        req = self._request(b"")
        plane = core.plane_of(req)
        if code == 431:
            text = ("The request has more than 100 headers." if message == "Too many headers" else
                    "The request's header block is larger than %d bytes." % self.server.limits.max_header_bytes)
        else:
            text = message or self.responses.get(code, ("Error",))[0]
        resp = emu.error(req, plane, ApiError(code, _STATUS_CODES.get(code, "InvalidInput"), text))
        emu.finish(req, plane, resp)
        try:
            self._write(resp, close=True)
        except OSError:
            pass
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128        # socketserver's 5 makes a burst of connects wait for SYN retries

    def __init__(self, addr, emu, limits=None):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.emu = emu
        self.limits = limits or Limits()
        super().__init__(addr, Handler)
        host = addr[0] if ":" not in addr[0] else "[%s]" % addr[0]
        self.url_host = "%s:%d" % (host, self.server_address[1])
        self.watchdog = Watchdog(self._timed_out)

    def _timed_out(self, kind):
        with self.emu.lock:
            self.emu.stats["timeouts"][kind] += 1

    def server_close(self):
        self.watchdog.stop()
        super().server_close()

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)):
            return
        report_bug(self.emu, "the connection from %s" % (client_address[0],))


# {===================================================================
# Command line
# ====================================================================

def _share(text):
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError("must be a share between 0 and 1, got %s" % text)
    return v


def _positive(text):
    v = float(text)
    if not 0 < v < float("inf"):
        raise argparse.ArgumentTypeError("must be positive, got %s" % text)
    return v


def _positive_int(text):
    v = int(text)
    if v <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer, got %s" % text)
    return v


def _non_negative_int(text):
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError("must not be negative, got %s" % text)
    return v


def _methods(text):
    names = [m.strip().upper() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in Faults.METHODS]
    if not names or bad:
        raise argparse.ArgumentTypeError("must be a comma-separated list of HTTP methods (%s), got %s"
                                         % (", ".join(Faults.METHODS), text))
    return names


def loopback_host(text):
    if text.lower() == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        raise argparse.ArgumentTypeError("'%s' is not an IP address; the emulator binds to loopback only "
                                         "(127.0.0.0/8, ::1 or localhost)" % text)
    if not ip.is_loopback:
        raise argparse.ArgumentTypeError("'%s' is not a loopback address; the emulator binds to loopback only "
                                         "(127.0.0.0/8, ::1 or localhost)" % text)
    return str(ip)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="azbatch-emulator",
                                description="Loopback emulator of the Azure Batch data plane, with the ARM and "
                                            "Entra ID pieces a preflight needs.")
    p.add_argument("--host", type=loopback_host, default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one (default)")
    p.add_argument("--world", metavar="FILE", help="world JSON file (default: the built-in dev world)")
    p.add_argument("--account", metavar="NAME", help="override the first account's name")
    p.add_argument("--key", metavar="BASE64", help="override the first account's key")
    p.add_argument("--time-scale", type=_positive, default=1.0, metavar="X",
                   help="simulated seconds per real second (default 1)")
    p.add_argument("--token-lifetime", type=_non_negative_int, metavar="SECONDS",
                   help="lifetime of issued tokens (default 3599; IMDS 86399)")
    p.add_argument("--fault-429", type=_share, default=0.0, metavar="P", help="share of requests answered 429")
    p.add_argument("--fault-500", type=_share, default=0.0, metavar="P", help="share of requests answered 500")
    p.add_argument("--fault-503", type=_share, default=0.0, metavar="P", help="share of requests answered 503")
    p.add_argument("--fault-drop", type=_share, default=0.0, metavar="P",
                   help="share of requests whose connection is closed without an answer")
    p.add_argument("--fault-drop-after-commit", type=_share, default=0.0, metavar="P",
                   help="share of successful mutating requests applied, then dropped without an answer")
    p.add_argument("--latency-ms", type=float, default=0.0, metavar="N", help="delay before each answer")
    p.add_argument("--retry-after", type=_non_negative_int, default=1, metavar="S",
                   help="Retry-After seconds on 429/503 faults (default 1)")
    p.add_argument("--fault-auth", action="store_true", help="let faults hit the token endpoints too")
    p.add_argument("--fault-methods", type=_methods, metavar="M[,M...]",
                   help="let faults and latency hit only these HTTP methods, e.g. POST,PUT,PATCH,DELETE")
    p.add_argument("--seed", type=int, help="seed for the fault generator and the node failure draws "
                                            "(deterministic faults and failing nodes)")
    p.add_argument("--max-body", type=_positive_int, default=1 << 20, metavar="BYTES",
                   help="largest request body; a larger one is answered 413 unread (default 1048576)")
    p.add_argument("--max-header-bytes", type=_positive_int, default=32 << 10, metavar="BYTES",
                   help="largest request line, and largest header block (default 32768)")
    p.add_argument("--idle-timeout", type=_positive, default=30.0, metavar="SECONDS",
                   help="close a keep-alive connection idle this long (default 30)")
    p.add_argument("--request-timeout", type=_positive, default=30.0, metavar="SECONDS",
                   help="close a connection whose request (or answer) takes longer (default 30)")
    p.add_argument("--verbose", action="store_true", help="log requests (never headers) to stderr")
    p.add_argument("--version", action="version", version="azbatch-emulator " + __version__)
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        p.error("argument --port: must be between 0 and 65535")
    if args.latency_ms < 0:
        p.error("argument --latency-ms: must not be negative")
    if args.key is not None and not W.check_key(args.key):
        p.error("argument --key: not valid base64")
    if args.account is not None and not re.match(r"^[a-z0-9]{3,24}$", args.account):
        p.error("argument --account: must be 3-24 lowercase letters and digits")
    if args.fault_429 + args.fault_500 + args.fault_503 + args.fault_drop > 1.0:
        p.error("the fault shares --fault-429 + --fault-500 + --fault-503 + --fault-drop must not exceed 1")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        world = W.load_world(args.world) if args.world else W.default_world()
    except W.WorldError as e:
        sys.stderr.write("azbatch-emulator: %s\n" % e)
        return 2
    if args.account:
        old = world["accounts"][0]["name"]
        world["accounts"][0]["name"] = args.account
        for item in world["pools"] + world["jobs"]:
            if item["account"] == old:
                item["account"] = args.account
    if args.key:
        world["accounts"][0]["key"] = args.key
    faults = Faults(p429=args.fault_429, p500=args.fault_500, p503=args.fault_503, drop=args.fault_drop,
                    dropAfterCommit=args.fault_drop_after_commit, latencyMs=args.latency_ms,
                    retryAfter=args.retry_after, auth=args.fault_auth, seed=args.seed, methods=args.fault_methods)
    try:
        emu = core.Emulator(world, W.SimClock(args.time_scale),
                            core.Settings(args.token_lifetime, args.verbose, args.seed), faults)
    except W.WorldError as e:
        sys.stderr.write("azbatch-emulator: %s%s\n" % ((args.world + ": ") if args.world else "", e))
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        server = Server((args.host, args.port), emu, Limits(args.max_body, args.max_header_bytes,
                                                            args.idle_timeout, args.request_timeout))
    except OSError as e:
        sys.stderr.write("azbatch-emulator: cannot listen on %s:%d: %s\n" % (args.host, args.port, e.strerror))
        return 1
    sys.stdout.write("listening on http://%s\n" % server.url_host)
    sys.stdout.flush()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    while not stop.wait(0.2):
        pass
    server.shutdown()
    server.server_close()
    return 0
