"""The emulator's state and its planes.  `Emulator` holds everything mutable (the
world, the simulated clock, the Batch models (pools, jobs), ARM's model, the node
failure rules, tokens, settings, faults and statistics); `plane_of` tells which
API a request is for, and `Emulator.route` sends an authenticated request to that
API's handlers.
"""

import collections
import copy
import os
import threading

from . import arm_urls, auth, batch_urls, images, validate
from . import world as W
from .arm_models import ArmBackend
from .batch_models import BatchBackend
from .batch_responses import build_pool
from .failures import FailureRules
from .job_models import JobBackend
from .job_responses import seed_job, world_account
from .wire import ApiError, render_error


class Settings:
    def __init__(self, token_lifetime=None, verbose=False, seed=None):
        self.token_lifetime = token_lifetime
        self.verbose = verbose
        self.seed = seed                        # --seed: faults and node failures


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
        self.failure_seed = settings.seed if settings.seed is not None else int.from_bytes(os.urandom(4), "big")
        self.reset()

    def reset(self):
        """The world as at start: its resources, and its pools and jobs an hour old.  A world
        pool or job the service would refuse raises WorldError."""
        self.world = copy.deepcopy(self.initial_world)
        now = self.clock.now()
        self.arm = ArmBackend(self.world, now)
        self.failures = FailureRules(self.world["nodeFailures"], self.failure_seed)
        self.batch = BatchBackend(
            self.world,
            allocation_check=lambda account, pool, kind, t: images.allocation_error(self, account, pool, pool.image,
                                                                                    kind, t),
            node_fate=lambda account, pool, seq: images.node_fate(self, account, pool, seq),
            node_version=lambda account, pool: images.node_version(pool))
        self.jobs = JobBackend(self.world, self.batch)
        self._seed(now)
        self.stats = {"requests": 0, "byStatus": collections.Counter(), "connections": 0,
                      "faults": collections.Counter(), "timeouts": collections.Counter()}
        # every write the service applied, answered or not: the ground truth
        # a client's reported outcomes are checked against
        self.journal = collections.deque(maxlen=JOURNAL_MAX)
        self.journal_total = 0                  # entries ever appended since the reset

    def _seed(self, now):
        for section, make in (("pools", lambda a, item: build_pool(self, a, {k: v for k, v in item.items()
                                                                              if k != "account"},
                                                                   now - 3600, None)),
                              ("jobs", lambda a, item: seed_job(self, a, item, now))):
            for i, item in enumerate(self.world[section]):
                account = world_account(self.world, item["account"])
                try:
                    make(account, item)
                except ApiError as e:
                    detail = "; ".join("%s=%s" % kv for kv in e.values)
                    raise W.WorldError("world.%s[%d]: the service would refuse it: %s %s%s"
                                       % (section, i, e.code, e.message, " (%s)" % detail if detail else ""))
        for account in self.world["accounts"]:
            self.batch.tick(account, now)
            self.jobs.tick(account, now)

    def record(self, req, plane, resp):
        """Journal a write that took effect (2xx), even when its answer is dropped."""
        if plane in ("batch", "arm") and req.method in ("POST", "PUT", "PATCH", "DELETE") and resp.status < 300:
            self.journal.append({"clientRequestId": req.header("client-request-id"), "method": req.method,
                                 "path": req.path.split("?")[0], "status": resp.status,
                                 "answered": not resp.drop})
            self.journal_total += 1

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
            claims = auth.authenticate_arm(req, self)
            return arm_urls.handle(self, req, claims)
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
