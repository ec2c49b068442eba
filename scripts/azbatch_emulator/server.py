"""HTTP plumbing, fault injection and the command line.  Binds to loopback only;
HTTP/1.1 with keep-alive.  The state and the planes are in core, the control API in
control, the Batch data plane in batch_urls / batch_responses / batch_models.
"""

import argparse
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
              "latencyMs": float, "retryAfter": int, "auth": bool, "seed": int}

    def __init__(self, **kw):
        self.p429 = self.p500 = self.p503 = self.drop = self.dropAfterCommit = 0.0
        self.latencyMs = 0.0
        self.retryAfter = 1
        self.auth = False
        self.seed = None
        self.update(kw)

    def update(self, values):
        for k, v in values.items():
            if k not in self.FIELDS:
                raise ValueError("unknown fault setting '%s' (known: %s)" % (k, ", ".join(sorted(self.FIELDS))))
            typ = self.FIELDS[k]
            if v is None and k == "seed":
                self.seed = None
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
    faults_apply = plane in ("batch", "arm") or faults.auth
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

    def log_message(self, fmt, *args):
        if self.server.emu.settings.verbose:
            sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def _read_body(self):
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        n = int(length)
        if n < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(n)

    def _handle(self):
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(400, "Bad Content-Length or chunked encoding")
            return
        host = self.headers.get("Host") or self.server.url_host
        req = Request(self.command, self.path, self.headers.items(), body, "http://" + host,
                      self.client_address[0])
        resp = serve(self.server.emu, req)
        if resp.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.log_message('"%s" dropped', self.requestline)
            return
        self.send_response(resp.status)
        for k, v in resp.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD" and resp.status not in (204, 304):
            self._headers_buffer.append(resp.body)       # headers and body in one write
        self.flush_headers()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr, emu):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.emu = emu
        super().__init__(addr, Handler)
        host = addr[0] if ":" not in addr[0] else "[%s]" % addr[0]
        self.url_host = "%s:%d" % (host, self.server_address[1])

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
    if v <= 0:
        raise argparse.ArgumentTypeError("must be positive, got %s" % text)
    return v


def _non_negative_int(text):
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError("must not be negative, got %s" % text)
    return v


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
    p.add_argument("--seed", type=int, help="seed for the fault generator (deterministic faults)")
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
        world["accounts"][0]["name"] = args.account
    if args.key:
        world["accounts"][0]["key"] = args.key
    faults = Faults(p429=args.fault_429, p500=args.fault_500, p503=args.fault_503, drop=args.fault_drop,
                    dropAfterCommit=args.fault_drop_after_commit, latencyMs=args.latency_ms,
                    retryAfter=args.retry_after, auth=args.fault_auth, seed=args.seed)
    emu = core.Emulator(world, W.SimClock(args.time_scale), core.Settings(args.token_lifetime, args.verbose),
                         faults)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        server = Server((args.host, args.port), emu)
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
