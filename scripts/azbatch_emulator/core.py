"""The emulator's state and its planes.  `Emulator` holds everything mutable (the
world, the simulated clock, the Batch model, ARM's operations, tokens, settings,
faults and statistics); `plane_of` tells which API a request is for, and
`Emulator.route` sends an authenticated request to that API's handlers.
"""

import collections
import copy
import threading

from . import arm, auth, batch_urls, validate
from .batch_models import BatchBackend
from .wire import render_error


class Settings:
    def __init__(self, token_lifetime=None, verbose=False):
        self.token_lifetime = token_lifetime
        self.verbose = verbose


def plane_of(req):
    """'control', 'imds', 'entra', 'arm' or 'batch'."""
    segs = [s.lower() for s in req.segments()]
    if segs[:1] == ["_emulator"]:
        return "control"
    if segs == ["metadata", "identity", "oauth2", "token"]:
        return "imds"
    if len(segs) == 4 and segs[1:] == ["oauth2", "v2.0", "token"]:
        return "entra"
    if segs[:1] == ["subscriptions"]:
        return "arm"
    return "batch"


JOURNAL_MAX = 100000


class Emulator:
    """All mutable state; every handler runs under `lock`."""

    def __init__(self, world, clock, settings, faults):
        self.initial_world = copy.deepcopy(world)
        self.clock = clock
        self.settings = settings
        self.faults = faults
        self.lock = threading.RLock()
        self.tokens = auth.TokenService()
        self.reset()

    def reset(self):
        self.world = copy.deepcopy(self.initial_world)
        self.batch = BatchBackend(self.world)
        self.image_ready = {}
        self.arm_ops = {}
        self.stats = {"requests": 0, "byStatus": collections.Counter(), "connections": 0,
                      "faults": collections.Counter(), "timeouts": collections.Counter()}
        # every write the service applied, answered or not: the ground truth
        # a client's reported outcomes are checked against
        self.journal = collections.deque(maxlen=JOURNAL_MAX)

    def record(self, req, plane, resp):
        """Journal a write that took effect (2xx), even when its answer is dropped."""
        if plane in ("batch", "arm") and req.method in ("POST", "PUT", "PATCH", "DELETE") and resp.status < 300:
            self.journal.append({"clientRequestId": req.header("client-request-id"), "method": req.method,
                                 "path": req.path.split("?")[0], "status": resp.status,
                                 "answered": not resp.drop})

    def account_for_host(self, host):
        label = host.split(":")[0].split(".")[0].lower()
        return next((a for a in self.world["accounts"] if a["name"] == label), self.world["accounts"][0])

    def route(self, req, plane):
        """Authenticate and answer one request of `plane` (not 'control'); raises ApiError."""
        if plane == "imds":
            return auth.imds_endpoint(req, self)
        if plane == "entra":
            return auth.token_endpoint(req, self, req.segments()[0])
        if plane == "arm":
            auth.authenticate_arm(req, self)
            return arm.handle(self, req)
        account = auth.authenticate_batch(req, self)
        validate.check_api_version(req)
        return batch_urls.handle(self, req, account)

    def error(self, req, plane, err):
        return render_error(req, err, plane, self.clock.now())

    def finish(self, req, plane, resp, fault=None):
        """The headers every answer of `plane` carries, and the statistics."""
        if plane == "batch":
            resp.headers.append(("request-id", req.request_id))
            crid = req.header("client-request-id")
            if crid is not None and (req.header("return-client-request-id") or "").lower() == "true":
                resp.headers.append(("client-request-id", crid))
            resp.headers.append(("DataServiceVersion", "3.0"))
        elif plane == "arm":
            resp.headers.append(("x-ms-request-id", req.request_id))
            resp.headers.append(("x-ms-correlation-request-id", req.header("x-ms-correlation-request-id")
                                 or req.request_id))
        if plane == "control":
            return                              # the control API is not counted
        with self.lock:
            self.stats["requests"] += 1
            self.stats["byStatus"]["drop" if resp.drop else str(resp.status)] += 1
            if fault:
                self.stats["faults"][{"p429": "429", "p500": "500", "p503": "503"}.get(fault, fault)] += 1
