"""The Batch data plane's state machine (moto's models.py): pools, nodes, the
allocation clock, resize errors, autoscale runs and the usage history behind
/poolusagemetrics.  No HTTP here: methods take
plain values and either change state or raise the service's ApiError for a state
rule (PoolExists, PoolBeingDeleted, PoolBeingResized, ...).

State is evaluated lazily from timestamps (tick() on each request, under the
emulator's lock): a resize schedules node allocation times up front; nodes go
creating -> starting -> idle as simulated time passes; a pool is `resizing` until
its resize completes, then `steady` (with resizeErrors for quota, timeout or a
stopped resize).  Deleting a pool makes it leave after allocation.deleteSeconds.
"""

import hashlib
import math
import time

from . import world as W
from .formula import FormulaEvaluationError, FormulaSyntaxError, FormulaTooLong, evaluate
from .validate import being_deleted, conflict, missing, pool_not_found
from .wire import ApiError, iso


class Node:
    __slots__ = ("id", "dedicated", "alloc_at", "leave_at", "gone_at", "ip", "seq", "fate", "exact")

    def __init__(self, node_id, dedicated, alloc_at, ip, seq, fate=None, exact=None):
        self.id, self.dedicated, self.alloc_at, self.ip, self.seq = node_id, dedicated, alloc_at, ip, seq
        self.leave_at = self.gone_at = None
        self.fate = fate                    # a failures.Fate, or None: what it becomes after starting
        self.exact = exact                  # the image version it was made from (None: the pool's)

    def visible(self, now):
        return self.alloc_at <= now and (self.gone_at is None or now < self.gone_at)

    def state(self, now, alloc):
        """(state, since) at time `now`."""
        if self.leave_at is not None and now >= self.leave_at:
            return "leavingpool", self.leave_at
        t1 = self.alloc_at + alloc["creatingSeconds"]
        t2 = t1 + alloc["startingSeconds"]
        if now < t1:
            return "creating", self.alloc_at
        if now < t2:
            return "starting", t1
        if self.fate is not None and self.fate.kind in ("unusable", "starttaskfailed"):
            return self.fate.kind, t2
        return "idle", t2


class Pool:
    def __init__(self, account, spec, now, etag, image):
        self.account = account              # the account's name
        self.spec = spec                    # the user-set properties, as given (validated)
        self.id = spec["id"]
        self.image = image                  # images.ImageInfo: what the image reference resolved to
        self.creation = self.last_modified = self.state_time = self.alloc_time = now
        self.etag = etag
        self.state = "active"
        self.alloc_state = "steady"
        self.op = None                      # {"done_at": t, "errors": [...]} while not steady
        self.resize_errors = []
        self.nodes = []
        self.seq = 0
        self.target_d = self.target_lp = 0
        self.resize_timeout = 900.0
        self.autoscale = False
        self.formula = None
        self.interval = None
        self.autoscale_run = None
        self.last_enable = None
        self.next_eval = None
        self.delete_at = None
        self.usage = None                   # its UsageRecord

    @property
    def exact_version(self):
        return self.image.exact if self.image is not None else ""

    def counts(self, now):
        live = [n for n in self.nodes if n.visible(now)]
        return sum(1 for n in live if n.dedicated), sum(1 for n in live if not n.dedicated)

    def has_nodes(self, now):
        return any(n.visible(now) for n in self.nodes) or self.op is not None


class UsageRecord:
    """One pool's life for /poolusagemetrics: kept after the pool is gone.  `segments` are
    the (cores, allocated, gone) spans of nodes that have left; live nodes are read from
    the pool."""
    __slots__ = ("pool_id", "vm_size", "created", "removed", "segments", "pool")

    def __init__(self, pool):
        self.pool_id, self.vm_size, self.created = pool.id, pool.spec["vmSize"], pool.creation
        self.removed, self.segments, self.pool = None, [], pool


USAGE_INTERVAL = 3600.0          # the service aggregates usage by the hour


def resize_error(code, message, values=()):
    err = {"code": code, "message": message}
    if values:
        err["values"] = [{"name": k, "value": str(v)} for k, v in values]
    return err


def not_steady(pool):
    return conflict("PoolBeingResized", "The specified pool is currently resizing (allocationState '%s'); "
                                        "wait until it is steady." % pool.alloc_state,
                    [("AllocationState", pool.alloc_state)])


# Node addresses come from 198.18.0.0/15 (RFC 2544, benchmarking): never routed on the Internet,
# not an RFC 1918 private range, and room for 131,072 nodes.  docs/emulator.md, "Nodes".
NODE_NET = (198 << 24) | (18 << 16)
NODE_NET_SIZE = 1 << 17


class BatchBackend:
    """Every account's pools, and the counters ETags and node addresses come from.
    `allocation_check(account, pool, kind, now)` gives the resize error that stops allocation
    (images.allocation_error), `node_fate(account, pool, seq)` what a new node becomes."""

    def __init__(self, world, allocation_check=None, node_fate=None, node_version=None):
        self.world = world
        self.alloc = world["allocation"]
        self.pools = {a["name"]: {} for a in world["accounts"]}
        self.usage = {a["name"]: [] for a in world["accounts"]}
        self._etag = int(time.time() * 1000)
        self._ip = 0
        self.allocation_check = allocation_check or (lambda account, pool, kind, now: None)
        self.node_fate = node_fate or (lambda account, pool, seq: None)
        # the image version a node allocated now gets: a pool on a gallery
        # definition (latest) takes whatever version is latest at the time
        self.node_version = node_version or (lambda account, pool: None)

    # {---------------------------------------------------------- lookups and counters

    def new_etag(self):
        self._etag += 1
        return "0x%X" % (0x8DC000000000000 + self._etag)

    def touch(self, pool, now):
        """A user change: new ETag and lastModified (allocation progress never does this)."""
        pool.etag = self.new_etag()
        pool.last_modified = now

    def get(self, account, pool_id):
        pool = self.pools[account["name"]].get(pool_id.lower())
        if pool is None:
            raise pool_not_found()
        return pool

    def count(self):
        return sum(len(p) for p in self.pools.values())

    def listed(self, account):
        return sorted(self.pools[account["name"]].values(), key=lambda p: p.id.lower())

    def cores(self, pool):
        return W.vm_cores(self.world, pool.spec["vmSize"])

    def cores_in_use(self, account, dedicated, now, exclude=None):
        total = 0
        for pool in self.pools[account["name"]].values():
            if pool is exclude:
                continue
            total += self.cores(pool) * sum(1 for n in pool.nodes if n.dedicated == dedicated
                                            and (n.gone_at is None or n.gone_at > now))
        return total

    def _new_node(self, account, pool, dedicated, alloc_at):
        pool.seq += 1
        seed = "%s/%s/%r/%d" % (pool.account, pool.id, pool.creation, pool.seq)     # unique across re-creations
        digest = hashlib.sha256(seed.encode()).hexdigest()
        n = NODE_NET + 1 + self._ip % (NODE_NET_SIZE - 2)
        self._ip += 1
        ip = "%d.%d.%d.%d" % (n >> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255)
        return Node("tvmps_%s_%s" % (digest, "d" if dedicated else "p"), dedicated, alloc_at, ip, pool.seq,
                    self.node_fate(account, pool, pool.seq), self.node_version(account, pool))

    # {---------------------------------------------------------- the clock

    def tick(self, account, now):
        """Bring every pool of `account` up to simulated time `now`."""
        pools = self.pools[account["name"]]
        for key, pool in list(pools.items()):
            if pool.op is not None and now >= pool.op["done_at"]:
                pool.alloc_state, pool.alloc_time = "steady", pool.op["done_at"]
                pool.resize_errors = pool.op["errors"]
                pool.op = None
            self._prune(pool, now)
            if pool.delete_at is not None and now >= pool.delete_at:
                self._prune(pool, pool.delete_at, every=True)
                pool.usage.removed, pool.usage.vm_size, pool.usage.pool = pool.delete_at, pool.spec["vmSize"], None
                del pools[key]
                continue
            if pool.autoscale and pool.op is None and pool.state == "active" and now >= pool.next_eval:
                try:
                    ded, low, run = self._autoscale(pool, now)
                except ApiError as e:                  # cannot happen: the formula parsed when set
                    ded = low = None
                    run = {"timestamp": iso(now), "error": {"code": e.code, "message": e.message}}
                pool.autoscale_run = run
                pool.next_eval = now + pool.interval
                if ded is not None and ((ded, low) != (pool.target_d, pool.target_lp)
                                        or (ded, low) != pool.counts(now)):
                    self._start_resize(account, pool, ded, low, pool.resize_timeout, now)

    def _prune(self, pool, now, every=False):
        """Drop the nodes gone by `now` (all of them with `every`), keeping their usage."""
        keep, cores = [], self.cores(pool)
        for n in pool.nodes:
            if every or (n.gone_at is not None and n.gone_at <= now):
                end = now if n.gone_at is None else min(n.gone_at, now)
                if n.alloc_at < end:
                    pool.usage.segments.append((cores, n.alloc_at, end))
            else:
                keep.append(n)
        pool.nodes = keep

    # {---------------------------------------------------------- usage metrics

    def usage_metrics(self, account, start, end, now):
        """[(sort key, BatchPoolUsageMetrics)] for the whole hours that have ended by `now`
        and overlap [start, end) (the last such hour when both are None; `start` alone runs to
        the last hour, `end` alone starts at it).  One entry per pool that existed in an hour;
        a pool deleted and created again in the same hour is one entry."""
        last_end = math.floor(now / USAGE_INTERVAL) * USAGE_INTERVAL
        last_start = last_end - USAGE_INTERVAL
        start = last_start if start is None else start
        end = last_end if end is None else min(end, last_end)
        entries = {}
        for rec in self.usage[account["name"]]:
            gone = rec.removed if rec.removed is not None else now
            spans = list(rec.segments)
            vm_size = rec.vm_size
            if rec.pool is not None:
                vm_size = rec.pool.spec["vmSize"]
                cores = self.cores(rec.pool)
                spans += [(cores, n.alloc_at, now if n.gone_at is None else min(n.gone_at, now))
                          for n in rec.pool.nodes if n.alloc_at < now]
            h0 = math.floor(max(start, rec.created) / USAGE_INTERVAL) * USAGE_INTERVAL
            while h0 < end and h0 < gone:
                h1 = h0 + USAGE_INTERVAL
                core_secs = sum(c * max(0.0, min(t1, h1) - max(t0, h0)) for c, t0, t1 in spans)
                key = "%015d/%s" % (h0, rec.pool_id.lower())
                entry = entries.get(key)
                if entry is None:
                    entries[key] = entry = {"poolId": rec.pool_id, "startTime": iso(h0), "endTime": iso(h1),
                                            "vmSize": vm_size, "totalCoreHours": 0.0}
                entry["vmSize"] = vm_size
                entry["totalCoreHours"] += core_secs / 3600.0
                h0 = h1
        for entry in entries.values():
            entry["totalCoreHours"] = round(entry["totalCoreHours"], 6)
        return sorted(entries.items())

    # {---------------------------------------------------------- allocation

    def _start_resize(self, account, pool, target_d, target_lp, timeout, now):
        """Schedule a resize to (target_d, target_lp): removals now, additions at nodesPerSecond,
        limited by the account's core quotas and by `timeout` seconds of simulated time."""
        alloc = self.alloc
        cores = self.cores(pool)
        pool.resize_errors = []
        errors, schedule, removed = [], [], False
        pool.nodes = [n for n in pool.nodes if n.alloc_at <= now]          # cancel anything still pending
        k = 0
        for dedicated, target in ((True, target_d), (False, target_lp)):
            mine = [n for n in pool.nodes if n.dedicated == dedicated and n.leave_at is None]
            if target < len(mine):
                for n in sorted(mine, key=lambda x: x.seq, reverse=True)[:len(mine) - target]:
                    n.leave_at, n.gone_at = now, now + alloc["leavingSeconds"]
                    removed = True
            elif target > len(mine):
                need = target - len(mine)
                blocked = self.allocation_check(account, pool, "dedicated" if dedicated else "low priority", now)
                if blocked is not None:
                    errors.append(blocked)
                    continue
                quota = account["dedicatedCoreQuota" if dedicated else "lowPriorityCoreQuota"]
                used = self.cores_in_use(account, dedicated, now, exclude=pool) + len(mine) * cores
                fits = max(0, (quota - used) // cores)
                if fits < need:
                    kind = "dedicated" if dedicated else "low priority"
                    errors.append(resize_error(
                        "AccountCoreQuotaReached" if dedicated else "AccountLowPriorityCoreQuotaReached",
                        "Desired number of %s nodes could not be allocated as the account has reached its %s "
                        "core quota" % (kind, kind),
                        [("CoreQuota", quota), ("CoresInUse", used), ("CoresRequested", need * cores)]))
                for _ in range(min(need, fits)):
                    schedule.append(self._new_node(account, pool, dedicated,
                                                   now + k / float(alloc["nodesPerSecond"])))
                    k += 1
        done = now + alloc["minResizeSeconds"]
        if schedule:
            done = max(done, schedule[-1].alloc_at + alloc["creatingSeconds"] + alloc["startingSeconds"])
        if removed:
            done = max(done, now + alloc["leavingSeconds"])
        deadline = now + timeout
        cut = [n for n in schedule if n.alloc_at > deadline]
        if cut:
            schedule = [n for n in schedule if n.alloc_at <= deadline]
            done = deadline
            kinds = " and ".join(sorted({"dedicated" if n.dedicated else "low priority" for n in cut}))
            errors.append(resize_error("AllocationTimedout", "Desired number of %s nodes could not be allocated "
                                                             "as the resize timeout was reached" % kinds))
        pool.nodes.extend(schedule)
        pool.target_d, pool.target_lp, pool.resize_timeout = target_d, target_lp, timeout
        pool.alloc_state, pool.alloc_time = "resizing", now
        pool.op = {"done_at": done, "errors": errors}

    def _autoscale(self, pool, now, formula=None):
        """Evaluate the pool's formula (or `formula`): (dedicated, low priority, AutoScaleRun).
        A formula that does not parse is a 400; one that parses but cannot be evaluated gives
        targets None and an AutoScaleRun with `error`, as the service reports it."""
        cur_d, cur_lp = pool.counts(now)
        try:
            ded, low, results = evaluate(formula or pool.formula, cur_d, cur_lp, pool.target_d, pool.target_lp)
        except FormulaTooLong as e:
            raise ApiError(400, "AutoScaleFormulaTooLong", "The specified autoscale formula is too long. The "
                                                           "maximum length is 8192 characters.",
                           [("PropertyName", "autoScaleFormula"), ("Reason", str(e))])
        except FormulaSyntaxError as e:
            raise ApiError(400, "AutoScalingFormulaSyntaxError", "The specified autoscale formula is not valid.",
                           [("PropertyName", "autoScaleFormula"), ("Reason", str(e))])
        except FormulaEvaluationError as e:
            return None, None, {"timestamp": iso(now), "results": e.results, "error": {
                "code": "AutoScalingFormulaEvaluationError",
                "message": "Autoscale evaluation failed due to an error in the formula",
                "values": [{"name": "Message", "value": str(e)}]}}
        return ded, low, {"timestamp": iso(now), "results": results}

    # {---------------------------------------------------------- operations

    def create(self, account, spec, now, image, timeout, targets, autoscale=None):
        """A new pool from a validated `spec` and its images.ImageInfo; `targets` (dedicated, low
        priority) or `autoscale` (formula, interval)."""
        pools = self.pools[account["name"]]
        existing = pools.get(spec["id"].lower())
        if existing is not None:
            if existing.state == "deleting":
                raise being_deleted()
            raise conflict("PoolExists", "The specified pool already exists.")
        if len(pools) >= account["poolQuota"]:
            raise conflict("PoolQuotaReached", "The pool quota for the specified account has been reached.",
                           [("PoolQuota", str(account["poolQuota"]))])
        pool = Pool(account["name"], spec, now, self.new_etag(), image)
        pool.usage = UsageRecord(pool)
        pool.resize_timeout = timeout or 900.0
        td, tl = targets
        if autoscale is not None:
            pool.autoscale, pool.formula, pool.interval = True, autoscale[0], autoscale[1] or 900.0
            td, tl, pool.autoscale_run = self._autoscale(pool, now)     # None, None: evaluation failed
            pool.next_eval = now + pool.interval
        pools[spec["id"].lower()] = pool
        self.usage[account["name"]].append(pool.usage)
        self._start_resize(account, pool, td or 0, tl or 0, pool.resize_timeout, now)
        return pool

    def ensure_active(self, pool):
        """Every change to a deleting pool is refused (the spec's DELETE description)."""
        if pool.state == "deleting":
            raise being_deleted()

    def patch(self, pool, changes, image, any_time, now):
        """Merge `changes` (validated); only `any_time` properties while the pool has nodes."""
        self.ensure_active(pool)
        restricted = [k for k in changes if k not in any_time]
        if restricted and pool.has_nodes(now):
            raise conflict("OperationInvalidForCurrentState",
                           "The property '%s' can only be updated when the pool has no compute nodes."
                           % restricted[0], [("PropertyName", restricted[0])])
        for k, v in changes.items():
            pool.spec[k] = v
        pool.image = image
        self.touch(pool, now)

    def replace_properties(self, pool, body, fields, now):
        """updateproperties: every field in `fields` is replaced; an absent startTask is removed."""
        self.ensure_active(pool)
        for name in fields:
            if name in body:
                pool.spec[name] = body[name]
            elif name == "startTask":
                pool.spec.pop(name, None)
        self.touch(pool, now)

    def delete(self, pool, now):
        self.ensure_active(pool)
        alloc = self.alloc
        pool.nodes = [n for n in pool.nodes if n.alloc_at <= now]
        for n in pool.nodes:
            if n.leave_at is None:
                n.leave_at, n.gone_at = now, now + alloc["leavingSeconds"]
        pool.state, pool.state_time = "deleting", now
        pool.target_d = pool.target_lp = 0
        pool.alloc_state, pool.alloc_time = "resizing", now
        pool.delete_at = now + max(alloc["deleteSeconds"], alloc["leavingSeconds"])
        pool.op = {"done_at": pool.delete_at, "errors": []}
        pool.resize_errors = []
        self.touch(pool, now)

    def resize(self, account, pool, target_d, target_lp, timeout, now):
        """An omitted (None) target keeps its current value."""
        self.ensure_active(pool)
        if pool.autoscale:
            raise conflict("AutoScalingEnabled", "The pool has automatic scaling enabled; it cannot be resized "
                                                 "manually. Disable autoscale first.")
        if pool.op is not None:
            raise not_steady(pool)
        self._start_resize(account, pool, pool.target_d if target_d is None else target_d,
                           pool.target_lp if target_lp is None else target_lp, timeout or 900.0, now)
        self.touch(pool, now)

    def stop_resize(self, pool, now):
        """Stops a resize.  On a steady or already stopping pool it changes nothing (a repeated
        stopresize, or one that raced the resize's end, succeeds)."""
        self.ensure_active(pool)
        if pool.op is None or pool.alloc_state == "stopping":
            return
        pending = [n for n in pool.nodes if n.alloc_at > now]
        pool.nodes = [n for n in pool.nodes if n.alloc_at <= now]
        errors = pool.op["errors"]
        if pending or pool.op["done_at"] > now:
            errors = [e for e in errors if e["code"] != "AllocationTimedout"] + [resize_error(
                "ResizeStopped", "Desired number of nodes could not be allocated as the resize was stopped")]
        pool.alloc_state, pool.alloc_time = "stopping", now
        pool.op = {"done_at": now + self.alloc["minResizeSeconds"], "errors": errors}
        self.touch(pool, now)

    def enable_autoscale(self, account, pool, formula, interval, now):
        """`formula` None keeps the current one."""
        self.ensure_active(pool)
        if not formula and not pool.autoscale:
            raise missing("autoScaleFormula")
        if pool.last_enable is not None and now - pool.last_enable < 30:
            raise conflict("TooManyEnableAutoScaleRequests",
                           "Enable AutoScale requests for the same pool must be separated by at least 30 seconds.")
        if pool.op is not None and not pool.autoscale:
            raise not_steady(pool)
        ded, low, run = self._autoscale(pool, now, formula or pool.formula)
        pool.autoscale = True
        pool.formula = formula or pool.formula
        pool.interval = interval or pool.interval or 900.0
        pool.autoscale_run, pool.last_enable, pool.next_eval = run, now, now + pool.interval
        if pool.op is None and ded is not None and ((ded, low) != (pool.target_d, pool.target_lp)
                                                    or (ded, low) != pool.counts(now)):
            self._start_resize(account, pool, ded, low, pool.resize_timeout, now)
        self.touch(pool, now)

    def disable_autoscale(self, pool, now):
        """On a pool without autoscale it changes nothing (and succeeds)."""
        self.ensure_active(pool)
        if not pool.autoscale:
            return
        pool.autoscale, pool.formula, pool.interval, pool.autoscale_run, pool.next_eval = \
            False, None, None, None, None
        self.touch(pool, now)

    def evaluate_autoscale(self, pool, formula, now):
        """The AutoScaleRun of `formula`, not applied."""
        if not pool.autoscale:
            raise conflict("AutoScalingNotEnabled", "The pool must have automatic scaling enabled in order to "
                                                    "evaluate a formula.")
        return self._autoscale(pool, now, formula)[2]

    def remove_nodes(self, pool, ids, now):
        self.ensure_active(pool)
        if pool.op is not None:
            raise not_steady(pool)
        by_id = {n.id: n for n in pool.nodes if n.visible(now)}
        for node_id in ids:
            if node_id not in by_id:
                raise ApiError(404, "NodeNotFound", "The specified node does not exist.", [("NodeId", node_id)])
        alloc = self.alloc
        for node_id in set(ids):
            n = by_id[node_id]
            if n.leave_at is None:
                n.leave_at, n.gone_at = now, now + alloc["leavingSeconds"]
                if n.dedicated:
                    pool.target_d = max(0, pool.target_d - 1)
                else:
                    pool.target_lp = max(0, pool.target_lp - 1)
        pool.resize_errors = []
        pool.alloc_state, pool.alloc_time = "resizing", now
        pool.op = {"done_at": now + max(alloc["minResizeSeconds"], alloc["leavingSeconds"]), "errors": []}
        self.touch(pool, now)
