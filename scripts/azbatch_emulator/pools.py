"""The Batch data plane: pools and nodes.

State is evaluated lazily from timestamps on each request (under the
emulator's lock): a resize schedules node allocation times up front; nodes go
creating -> starting -> idle as simulated time passes; a pool is `resizing`
until its resize completes, then `steady` (with resizeErrors for quota,
timeout or a stopped resize).  Deleting a pool makes it leave after
allocation.deleteSeconds.
"""

import copy
import hashlib

from . import odata, world as W
from .formula import FormulaError, evaluate
from .validate import (POOL_ID, being_deleted, bool_field, check_common, check_vm_configuration, conflict,
                       duration_field, int_field, invalid, list_field, missing, pool_not_found, read_json,
                       refuse_shared_key_for_compute, reject_unknown, str_field)
from .wire import ApiError, Response, iso, rfc1123, parse_http_date

DEALLOCATION = ("requeue", "terminate", "taskcompletion", "retaineddata")
SECRET_FIELDS = ("password", "accountKey", "sasKey")

CREATE_FIELDS = {
    "id", "displayName", "vmSize", "virtualMachineConfiguration", "resizeTimeout", "targetDedicatedNodes",
    "targetLowPriorityNodes", "enableAutoScale", "autoScaleFormula", "autoScaleEvaluationInterval",
    "enableInterNodeCommunication", "networkConfiguration", "startTask", "applicationPackageReferences",
    "taskSlotsPerNode", "taskSchedulingPolicy", "userAccounts", "metadata", "mountConfiguration",
    "upgradePolicy", "identity",
}
# Accepted from older api-versions (2022-10-01.16.0 .. 2024-07-01.20.0) and echoed back.
LEGACY_FIELDS = {"certificateReferences", "targetNodeCommunicationMode", "resourceTags",
                 "cloudServiceConfiguration", "maxTasksPerNode", "applicationLicenses"}
PATCH_FIELDS = {
    "displayName", "vmSize", "enableInterNodeCommunication", "startTask", "applicationPackageReferences",
    "metadata", "virtualMachineConfiguration", "taskSlotsPerNode", "taskSchedulingPolicy",
    "networkConfiguration", "userAccounts", "mountConfiguration", "upgradePolicy",
    "certificateReferences", "targetNodeCommunicationMode", "resourceTags",
}
PATCH_ANY_TIME = {"startTask", "applicationPackageReferences", "metadata", "certificateReferences",
                  "targetNodeCommunicationMode", "resourceTags"}
REPLACE_FIELDS = {"startTask", "applicationPackageReferences", "metadata", "certificateReferences",
                  "targetNodeCommunicationMode"}
POOL_PROPERTIES = [
    "id", "displayName", "url", "eTag", "lastModified", "creationTime", "state", "stateTransitionTime",
    "allocationState", "allocationStateTransitionTime", "vmSize", "virtualMachineConfiguration",
    "resizeTimeout", "resizeErrors", "currentDedicatedNodes", "currentLowPriorityNodes",
    "targetDedicatedNodes", "targetLowPriorityNodes", "enableAutoScale", "autoScaleFormula",
    "autoScaleEvaluationInterval", "autoScaleRun", "enableInterNodeCommunication", "networkConfiguration",
    "startTask", "applicationPackageReferences", "taskSlotsPerNode", "taskSchedulingPolicy", "userAccounts",
    "metadata", "stats", "mountConfiguration", "identity", "upgradePolicy",
] + sorted(LEGACY_FIELDS)
NODE_PROPERTIES = [
    "id", "url", "state", "schedulingState", "stateTransitionTime", "lastBootTime", "allocationTime",
    "ipAddress", "ipv6Address", "affinityId", "vmSize", "totalTasksRun", "runningTasksCount",
    "runningTaskSlotsCount", "totalTasksSucceeded", "recentTasks", "startTask", "startTaskInfo", "errors",
    "isDedicated", "endpointConfiguration", "nodeAgentInfo", "virtualMachineInfo",
]
COUNT_FIELDS = ["creating", "idle", "offline", "preempted", "rebooting", "reimaging", "running", "starting",
                "startTaskFailed", "leavingPool", "unknown", "unusable", "waitingForStartTask", "deallocated",
                "deallocating", "total", "upgradingOS"]
STATE_COUNTER = {"creating": "creating", "starting": "starting", "idle": "idle", "leavingpool": "leavingPool"}


# {===================================================================
# Pools, nodes and the allocation state machine
# ====================================================================

class Node:
    __slots__ = ("id", "dedicated", "alloc_at", "leave_at", "gone_at", "ip", "seq")

    def __init__(self, node_id, dedicated, alloc_at, ip, seq):
        self.id, self.dedicated, self.alloc_at, self.ip, self.seq = node_id, dedicated, alloc_at, ip, seq
        self.leave_at = self.gone_at = None

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
        return "idle", t2


class Pool:
    def __init__(self, account, spec, now, etag, exact_version):
        self.account = account
        self.spec = spec                    # the user-set properties, as given (validated)
        self.id = spec["id"]
        self.exact_version = exact_version
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

    def counts(self, now):
        live = [n for n in self.nodes if n.visible(now)]
        return sum(1 for n in live if n.dedicated), sum(1 for n in live if not n.dedicated)


def _resize_error(code, message, values=()):
    err = {"code": code, "message": message}
    if values:
        err["values"] = [{"name": k, "value": str(v)} for k, v in values]
    return err


def cores_in_use(emu, account, dedicated, now, exclude=None):
    total = 0
    for pool in emu.pools[account["name"]].values():
        if pool is exclude:
            continue
        cores = W.vm_cores(emu.world, pool.spec["vmSize"])
        total += cores * sum(1 for n in pool.nodes if n.dedicated == dedicated
                             and (n.gone_at is None or n.gone_at > now))
    return total


def _new_node(emu, pool, dedicated, alloc_at):
    pool.seq += 1
    seed = "%s/%s/%r/%d" % (pool.account, pool.id, pool.creation, pool.seq)     # unique across re-creations
    digest = hashlib.sha256(seed.encode()).hexdigest()
    n = emu.next_ip()
    return Node("tvmps_%s_%s" % (digest, "d" if dedicated else "p"), dedicated, alloc_at,
                "10.0.%d.%d" % (n // 250, 4 + n % 250), pool.seq)


def start_resize(emu, account, pool, target_d, target_lp, timeout, now):
    """Schedule a resize to (target_d, target_lp): removals now, additions at nodesPerSecond,
    limited by the account's core quotas and by `timeout` seconds of simulated time."""
    alloc = emu.world["allocation"]
    cores = W.vm_cores(emu.world, pool.spec["vmSize"])
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
            quota = account["dedicatedCoreQuota" if dedicated else "lowPriorityCoreQuota"]
            used = cores_in_use(emu, account, dedicated, now, exclude=pool) + len(mine) * cores
            fits = max(0, (quota - used) // cores)
            if fits < need:
                kind = "dedicated" if dedicated else "low priority"
                errors.append(_resize_error(
                    "AccountCoreQuotaReached" if dedicated else "AccountLowPriorityCoreQuotaReached",
                    "Desired number of %s nodes could not be allocated as the account has reached its %s "
                    "core quota" % (kind, kind),
                    [("CoreQuota", quota), ("CoresInUse", used), ("CoresRequested", need * cores)]))
            for _ in range(min(need, fits)):
                schedule.append(_new_node(emu, pool, dedicated, now + k / float(alloc["nodesPerSecond"])))
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
        errors.append(_resize_error("AllocationTimedout", "Desired number of %s nodes could not be allocated "
                                                          "as the resize timeout was reached" % kinds))
    pool.nodes.extend(schedule)
    pool.target_d, pool.target_lp, pool.resize_timeout = target_d, target_lp, timeout
    pool.alloc_state, pool.alloc_time = "resizing", now
    pool.op = {"done_at": done, "errors": errors}


def stop_resize(emu, pool, now):
    if pool.op is None:
        return
    pending = [n for n in pool.nodes if n.alloc_at > now]
    pool.nodes = [n for n in pool.nodes if n.alloc_at <= now]
    errors = pool.op["errors"]
    if pending or pool.op["done_at"] > now:
        errors = [e for e in errors if e["code"] != "AllocationTimedout"] + [_resize_error(
            "ResizeStopped", "Desired number of nodes could not be allocated as the resize was stopped")]
    pool.alloc_state, pool.alloc_time = "stopping", now
    pool.op = {"done_at": now + emu.world["allocation"]["minResizeSeconds"], "errors": errors}


def _autoscale(emu, account, pool, now, formula=None):
    """Evaluate the pool's formula (or `formula`); returns (dedicated, low priority, AutoScaleRun)."""
    cur_d, cur_lp = pool.counts(now)
    try:
        ded, low, results = evaluate(formula or pool.formula, cur_d, cur_lp, pool.target_d, pool.target_lp)
    except FormulaError as e:
        raise ApiError(400, "AutoScalingFormulaSyntaxError", "The specified autoscale formula is not valid.",
                       [("PropertyName", "autoScaleFormula"), ("Reason", str(e))])
    return ded, low, {"timestamp": iso(now), "results": results}


def tick(emu, account, now):
    """Bring every pool of `account` up to simulated time `now`."""
    pools = emu.pools[account["name"]]
    for key, pool in list(pools.items()):
        if pool.op is not None and now >= pool.op["done_at"]:
            pool.alloc_state, pool.alloc_time = "steady", pool.op["done_at"]
            pool.resize_errors = pool.op["errors"]
            pool.op = None
        pool.nodes = [n for n in pool.nodes if n.gone_at is None or n.gone_at > now]
        if pool.delete_at is not None and now >= pool.delete_at:
            del pools[key]
            continue
        if pool.autoscale and pool.op is None and pool.state == "active" and now >= pool.next_eval:
            ded, low, run = _autoscale(emu, account, pool, now)
            pool.autoscale_run = run
            pool.next_eval = now + pool.interval
            if (ded, low) != (pool.target_d, pool.target_lp) or (ded, low) != pool.counts(now):
                start_resize(emu, account, pool, ded, low, pool.resize_timeout, now)


def _scrub(value):
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in SECRET_FIELDS}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def pool_json(emu, pool, now, base, stats=False):
    cur_d, cur_lp = pool.counts(now)
    spec = _scrub(pool.spec)
    vmc = copy.deepcopy(spec.get("virtualMachineConfiguration"))
    if vmc and isinstance(vmc.get("imageReference"), dict) and vmc["imageReference"].get("publisher"):
        vmc["imageReference"].setdefault("version", "latest")
    d = {"id": pool.id}
    if "displayName" in spec:
        d["displayName"] = spec["displayName"]
    d.update({
        "url": "%s/pools/%s" % (base, pool.id), "eTag": pool.etag, "lastModified": iso(pool.last_modified),
        "creationTime": iso(pool.creation), "state": pool.state, "stateTransitionTime": iso(pool.state_time),
        "allocationState": pool.alloc_state, "allocationStateTransitionTime": iso(pool.alloc_time),
        "vmSize": spec["vmSize"],
    })
    if vmc is not None:
        d["virtualMachineConfiguration"] = vmc
    d["resizeTimeout"] = W.format_duration(pool.resize_timeout)
    if pool.resize_errors and pool.alloc_state == "steady":
        d["resizeErrors"] = pool.resize_errors
    d.update({"currentDedicatedNodes": cur_d, "currentLowPriorityNodes": cur_lp,
              "targetDedicatedNodes": pool.target_d, "targetLowPriorityNodes": pool.target_lp,
              "enableAutoScale": pool.autoscale})
    if pool.autoscale:
        d["autoScaleFormula"] = pool.formula
        d["autoScaleEvaluationInterval"] = W.format_duration(pool.interval)
        if pool.autoscale_run:
            d["autoScaleRun"] = pool.autoscale_run
    d["enableInterNodeCommunication"] = spec.get("enableInterNodeCommunication", False)
    for k in ("networkConfiguration", "startTask", "applicationPackageReferences"):
        if k in spec:
            d[k] = spec[k]
    d["taskSlotsPerNode"] = spec.get("taskSlotsPerNode", 1)
    d["taskSchedulingPolicy"] = spec.get("taskSchedulingPolicy", {"nodeFillType": "spread"})
    for k in ("userAccounts", "metadata"):
        if k in spec:
            d[k] = spec[k]
    if stats:
        core_secs = sum(max(0.0, now - n.alloc_at) for n in pool.nodes if n.dedicated and n.visible(now))
        core_secs *= W.vm_cores(emu.world, spec["vmSize"])
        zero = {"startTime": iso(pool.creation), "lastUpdateTime": iso(now)}
        d["stats"] = {"url": "%s/pools/%s/stats" % (base, pool.id), "startTime": iso(pool.creation),
                      "lastUpdateTime": iso(now),
                      "usageStats": dict(zero, dedicatedCoreTime=W.format_duration(round(core_secs))),
                      "resourceStats": dict(zero, avgCPUPercentage=0.0, avgMemoryGiB=0.0, peakMemoryGiB=0.0,
                                            avgDiskGiB=0.0, peakDiskGiB=0.0, diskReadIOps="0",
                                            diskWriteIOps="0", diskReadGiB=0.0, diskWriteGiB=0.0,
                                            networkReadGiB=0.0, networkWriteGiB=0.0)}
    for k in ("mountConfiguration", "identity", "upgradePolicy") + tuple(sorted(LEGACY_FIELDS)):
        if k in spec:
            d[k] = spec[k]
    return d


def node_json(emu, account, pool, node, now, base):
    alloc = emu.world["allocation"]
    state, since = node.state(now, alloc)
    ref = copy.deepcopy((pool.spec.get("virtualMachineConfiguration") or {}).get("imageReference") or {})
    if ref.get("publisher"):
        ref.setdefault("version", "latest")
    if pool.exact_version:
        ref["exactVersion"] = pool.exact_version
    vmi = {"imageReference": ref}
    if account["poolAllocationMode"] == "UserSubscription":
        vmi["scaleSetVmResourceId"] = ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/"
                                       "virtualMachineScaleSets/%s/virtualMachines/%d"
                                       % (account["subscriptionId"], account["resourceGroup"],
                                          pool.id, node.seq))
    booted = node.alloc_at + alloc["creatingSeconds"]
    d = {"id": node.id, "url": "%s/pools/%s/nodes/%s" % (base, pool.id, node.id), "state": state,
         "schedulingState": "enabled", "stateTransitionTime": iso(since)}
    if now >= booted:
        d["lastBootTime"] = iso(booted)
    d.update({"allocationTime": iso(node.alloc_at), "ipAddress": node.ip, "affinityId": "TVM:" + node.id,
              "vmSize": pool.spec["vmSize"], "totalTasksRun": 0, "totalTasksSucceeded": 0,
              "runningTasksCount": 0, "runningTaskSlotsCount": 0, "isDedicated": node.dedicated})
    if "startTask" in pool.spec:
        d["startTask"] = _scrub(pool.spec["startTask"])
        if state == "idle":
            d["startTaskInfo"] = {"state": "completed", "startTime": iso(since), "endTime": iso(since),
                                  "exitCode": 0, "retryCount": 0}
    if now >= booted:
        d["nodeAgentInfo"] = {"version": "1.12.4", "lastUpdateTime": iso(booted)}
    d["virtualMachineInfo"] = vmi
    return d


# {===================================================================
# Handlers
# ====================================================================

def _mutation_headers(req, pool):
    url = "%s/pools/%s" % (req.base_url, pool.id)
    return [("ETag", pool.etag), ("Last-Modified", rfc1123(pool.last_modified)), ("DataServiceId", url)]


def _touch(emu, pool, now):
    pool.etag = emu.new_etag()
    pool.last_modified = now


def _etag_matches(header_value, etag):
    for part in header_value.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tag = tag.strip('"')
        if tag == "*" or tag == etag:
            return True
    return False


def check_conditions(req, pool, read):
    """Honour If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since."""
    not_met = ApiError(412, "ConditionNotMet",
                       "The condition specified using HTTP conditional header(s) is not met.")
    modified = int(pool.last_modified)
    im = req.header("If-Match")
    if im is not None and not _etag_matches(im, pool.etag):
        raise not_met
    ius = parse_http_date(req.header("If-Unmodified-Since") or "")
    if ius is not None and modified > ius:
        raise not_met
    inm = req.header("If-None-Match")
    if inm is not None and _etag_matches(inm, pool.etag):
        if read:
            raise ApiError(304, "ConditionNotMet", "Not modified.", headers=[("ETag", pool.etag)])
        raise not_met
    ims = parse_http_date(req.header("If-Modified-Since") or "")
    if ims is not None and modified <= ims:
        if read:
            raise ApiError(304, "ConditionNotMet", "Not modified.", headers=[("ETag", pool.etag)])
        raise not_met


def _get_pool(emu, account, pool_id):
    pool = emu.pools[account["name"]].get(pool_id.lower())
    if pool is None:
        raise pool_not_found()
    return pool


def create_pool(emu, req, account, now):
    body = read_json(req)
    refuse_shared_key_for_compute(req, body)
    reject_unknown(body, CREATE_FIELDS | LEGACY_FIELDS)
    pool_id = str_field(body, "id", required=True)
    str_field(body, "vmSize", required=True)
    if "virtualMachineConfiguration" not in body:
        raise missing("virtualMachineConfiguration")
    if not POOL_ID.match(pool_id):
        raise invalid("id", "The id can contain any combination of alphanumeric characters including hyphens "
                            "and underscores, and cannot contain more than 64 characters.")
    check_common(body)
    exact = check_vm_configuration(body["virtualMachineConfiguration"], emu, account)
    td = int_field(body, "targetDedicatedNodes", low=0)
    tl = int_field(body, "targetLowPriorityNodes", low=0)
    timeout = duration_field(body, "resizeTimeout", minimum=300)
    autoscale = bool(bool_field(body, "enableAutoScale"))
    interval = duration_field(body, "autoScaleEvaluationInterval", minimum=300, maximum=168 * 3600)
    cores = W.vm_cores(emu.world, body["vmSize"])
    int_field(body, "taskSlotsPerNode", low=1, high=min(4 * cores, 256))
    if autoscale:
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            if body.get(name) is not None:
                raise invalid(name, "%s cannot be specified if enableAutoScale is set to true." % name)
        if body.get("resizeTimeout") is not None:
            raise invalid("resizeTimeout", "resizeTimeout cannot be specified if enableAutoScale is set to true.")
        if not str_field(body, "autoScaleFormula"):
            raise missing("autoScaleFormula")
    else:
        if body.get("autoScaleFormula") is not None:
            raise invalid("autoScaleFormula", "autoScaleFormula can only be specified if enableAutoScale is true.")
        if body.get("autoScaleEvaluationInterval") is not None:
            raise invalid("autoScaleEvaluationInterval",
                          "autoScaleEvaluationInterval can only be specified if enableAutoScale is true.")
    pools = emu.pools[account["name"]]
    existing = pools.get(pool_id.lower())
    if existing is not None:
        if existing.state == "deleting":
            raise being_deleted()
        raise conflict("PoolExists", "The specified pool already exists.")
    if len(pools) >= account["poolQuota"]:
        raise conflict("PoolQuotaReached", "The pool quota for the specified account has been reached.",
                       [("PoolQuota", str(account["poolQuota"]))])
    spec = {k: v for k, v in body.items() if k not in ("targetDedicatedNodes", "targetLowPriorityNodes",
                                                      "resizeTimeout", "enableAutoScale", "autoScaleFormula",
                                                      "autoScaleEvaluationInterval", "odata.metadata")}
    pool = Pool(account["name"], spec, now, emu.new_etag(), exact)
    pool.resize_timeout = timeout or 900.0
    if autoscale:
        pool.autoscale, pool.formula, pool.interval = True, body["autoScaleFormula"], interval or 900.0
        td, tl, pool.autoscale_run = _autoscale(emu, account, pool, now)
        pool.next_eval = now + pool.interval
    pools[pool_id.lower()] = pool
    start_resize(emu, account, pool, td or 0, tl or 0, pool.resize_timeout, now)
    hdrs = _mutation_headers(req, pool) + [("Location", "%s/pools/%s" % (req.base_url, pool.id))]
    return Response(201, b"", hdrs)


def list_pools(emu, req, account, now):
    select = odata.parse_select(req, POOL_PROPERTIES)
    stats = _expand_stats(req)
    pred = odata.compile_filter(req.q("$filter"))
    keyed = []
    for pool in sorted(emu.pools[account["name"]].values(), key=lambda p: p.id.lower()):
        item = pool_json(emu, pool, now, req.base_url, stats)
        if pred is None or pred(item):
            keyed.append((pool.id.lower(), odata.apply_select(item, select)))
    return Response(200, odata.page(req, keyed, req.base_url + "/$metadata#pools"))


def _expand_stats(req):
    raw = req.q("$expand")
    if raw is None:
        return False
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for n in names:
        if n != "stats":
            raise odata._bad("$expand", raw, "Only 'stats' can be expanded.")
    return True


def get_pool(emu, req, account, pool, now):
    check_conditions(req, pool, read=True)
    if req.method == "HEAD":
        return Response(200, b"", [("ETag", pool.etag), ("Last-Modified", rfc1123(pool.last_modified))])
    select = odata.parse_select(req, POOL_PROPERTIES)
    body = {"odata.metadata": req.base_url + "/$metadata#pools/@Element"}
    body.update(pool_json(emu, pool, now, req.base_url, _expand_stats(req)))
    return Response(200, odata.apply_select(body, select),
                    [("ETag", pool.etag), ("Last-Modified", rfc1123(pool.last_modified))])


def patch_pool(emu, req, account, pool, now):
    body = read_json(req)
    refuse_shared_key_for_compute(req, body)
    check_conditions(req, pool, read=False)
    if pool.state == "deleting":
        raise being_deleted()
    reject_unknown(body, PATCH_FIELDS)
    check_common(body)
    if "taskSlotsPerNode" in body:
        cores = W.vm_cores(emu.world, body.get("vmSize") or pool.spec["vmSize"])
        int_field(body, "taskSlotsPerNode", low=1, high=min(4 * cores, 256))
    exact = pool.exact_version
    if "virtualMachineConfiguration" in body:
        exact = check_vm_configuration(body["virtualMachineConfiguration"], emu, account)
    restricted = [k for k in body if k not in PATCH_ANY_TIME]
    if restricted and (any(n.visible(now) for n in pool.nodes) or pool.op is not None):
        raise conflict("OperationInvalidForCurrentState",
                       "The property '%s' can only be updated when the pool has no compute nodes." % restricted[0],
                       [("PropertyName", restricted[0])])
    for k, v in body.items():
        if k == "odata.metadata":
            continue
        pool.spec[k] = v
    pool.exact_version = exact
    _touch(emu, pool, now)
    return Response(200, b"", _mutation_headers(req, pool))


def delete_pool(emu, req, account, pool, now):
    check_conditions(req, pool, read=False)
    if pool.state == "deleting":
        raise being_deleted()
    alloc = emu.world["allocation"]
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
    _touch(emu, pool, now)
    return Response(202, b"", [("DataServiceId", "%s/pools/%s" % (req.base_url, pool.id))])


def _not_steady(pool):
    return conflict("PoolBeingResized", "The specified pool is currently resizing (allocationState '%s'); "
                                        "wait until it is steady." % pool.alloc_state,
                    [("AllocationState", pool.alloc_state)])


def resize_pool(emu, req, account, pool, now):
    body = read_json(req)
    reject_unknown(body, {"targetDedicatedNodes", "targetLowPriorityNodes", "resizeTimeout", "nodeDeallocationOption"})
    td = int_field(body, "targetDedicatedNodes", low=0)
    tl = int_field(body, "targetLowPriorityNodes", low=0)
    timeout = duration_field(body, "resizeTimeout", minimum=300)
    opt = str_field(body, "nodeDeallocationOption")
    if opt is not None and opt not in DEALLOCATION:
        raise invalid("nodeDeallocationOption", "The value must be one of %s." % ", ".join(DEALLOCATION))
    check_conditions(req, pool, read=False)
    if pool.state == "deleting":
        raise being_deleted()
    if pool.autoscale:
        raise conflict("AutoScalingEnabled", "The pool has automatic scaling enabled; it cannot be resized "
                                             "manually. Disable autoscale first.")
    if pool.op is not None:
        raise _not_steady(pool)
    start_resize(emu, account, pool, pool.target_d if td is None else td, pool.target_lp if tl is None else tl,
                 timeout or 900.0, now)
    _touch(emu, pool, now)
    return Response(202, b"", _mutation_headers(req, pool))


def stop_resize_pool(emu, req, account, pool, now):
    check_conditions(req, pool, read=False)
    if pool.state == "deleting":
        raise being_deleted()
    stop_resize(emu, pool, now)
    _touch(emu, pool, now)
    return Response(202, b"", _mutation_headers(req, pool))


def enable_autoscale(emu, req, account, pool, now):
    body = read_json(req)
    reject_unknown(body, {"autoScaleFormula", "autoScaleEvaluationInterval"})
    formula = str_field(body, "autoScaleFormula")
    interval = duration_field(body, "autoScaleEvaluationInterval", minimum=300, maximum=168 * 3600)
    check_conditions(req, pool, read=False)
    if pool.state == "deleting":
        raise being_deleted()
    if not formula and not pool.autoscale:
        raise missing("autoScaleFormula")
    if pool.last_enable is not None and now - pool.last_enable < 30:
        raise conflict("TooManyEnableAutoScaleRequests",
                       "Enable AutoScale requests for the same pool must be separated by at least 30 seconds.")
    if pool.op is not None and not pool.autoscale:
        raise _not_steady(pool)
    ded, low, run = _autoscale(emu, account, pool, now, formula or pool.formula)
    pool.autoscale = True
    pool.formula = formula or pool.formula
    pool.interval = interval or pool.interval or 900.0
    pool.autoscale_run, pool.last_enable, pool.next_eval = run, now, now + pool.interval
    if pool.op is None and ((ded, low) != (pool.target_d, pool.target_lp) or (ded, low) != pool.counts(now)):
        start_resize(emu, account, pool, ded, low, pool.resize_timeout, now)
    _touch(emu, pool, now)
    return Response(200, b"", _mutation_headers(req, pool))


def disable_autoscale(emu, req, account, pool, now):
    if pool.state == "deleting":
        raise being_deleted()
    pool.autoscale, pool.formula, pool.interval, pool.autoscale_run, pool.next_eval = False, None, None, None, None
    _touch(emu, pool, now)
    return Response(200, b"", _mutation_headers(req, pool))


def evaluate_autoscale(emu, req, account, pool, now):
    body = read_json(req)
    reject_unknown(body, {"autoScaleFormula"})
    formula = str_field(body, "autoScaleFormula", required=True)
    if not pool.autoscale:
        raise conflict("AutoScalingNotEnabled", "The pool must have automatic scaling enabled in order to "
                                                "evaluate a formula.")
    _, _, run = _autoscale(emu, account, pool, now, formula)
    body = {"odata.metadata": req.base_url + "/$metadata#Microsoft.Azure.Batch.Protocol.Entities.AutoScaleRun"}
    body.update(run)
    return Response(200, body, [("DataServiceId", "%s/pools/%s/evaluateautoscale" % (req.base_url, pool.id))])


def update_properties(emu, req, account, pool, now):
    body = read_json(req)
    reject_unknown(body, REPLACE_FIELDS)
    for name in ("applicationPackageReferences", "metadata"):
        if body.get(name) is None:
            raise missing(name)
    check_common(body)
    if pool.state == "deleting":
        raise being_deleted()
    for name in REPLACE_FIELDS:
        if name in body:
            pool.spec[name] = body[name]
        elif name in ("startTask",):
            pool.spec.pop(name, None)
    _touch(emu, pool, now)
    return Response(204, b"", _mutation_headers(req, pool))


def remove_nodes(emu, req, account, pool, now):
    body = read_json(req)
    reject_unknown(body, {"nodeList", "resizeTimeout", "nodeDeallocationOption"})
    ids = list_field(body, "nodeList")
    if ids is None:
        raise missing("nodeList")
    if not ids or len(ids) > 100:
        raise invalid("nodeList", "The nodeList must contain between 1 and 100 node IDs.")
    if not all(isinstance(i, str) for i in ids):
        raise invalid("nodeList", "Each node ID must be a string.")
    duration_field(body, "resizeTimeout", minimum=300)
    opt = str_field(body, "nodeDeallocationOption")
    if opt is not None and opt not in DEALLOCATION:
        raise invalid("nodeDeallocationOption", "The value must be one of %s." % ", ".join(DEALLOCATION))
    check_conditions(req, pool, read=False)
    if pool.state == "deleting":
        raise being_deleted()
    if pool.op is not None:
        raise _not_steady(pool)
    by_id = {n.id: n for n in pool.nodes if n.visible(now)}
    for node_id in ids:
        if node_id not in by_id:
            raise ApiError(404, "NodeNotFound", "The specified node does not exist.", [("NodeId", node_id)])
    alloc = emu.world["allocation"]
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
    _touch(emu, pool, now)
    return Response(202, b"", _mutation_headers(req, pool))


def list_nodes(emu, req, account, pool, now):
    select = odata.parse_select(req, NODE_PROPERTIES)
    pred = odata.compile_filter(req.q("$filter"))
    keyed = []
    for n in sorted((n for n in pool.nodes if n.visible(now)), key=lambda x: x.id):
        item = node_json(emu, account, pool, n, now, req.base_url)
        if pred is None or pred(item):
            keyed.append((n.id, odata.apply_select(item, select)))
    return Response(200, odata.page(req, keyed, req.base_url + "/$metadata#nodes"))


def get_node(emu, req, account, pool, node_id, now):
    node = next((n for n in pool.nodes if n.id == node_id and n.visible(now)), None)
    if node is None:
        raise ApiError(404, "NodeNotFound", "The specified node does not exist.", [("NodeId", node_id)])
    body = {"odata.metadata": req.base_url + "/$metadata#nodes/@Element"}
    body.update(node_json(emu, account, pool, node, now, req.base_url))
    return Response(200, odata.apply_select(body, odata.parse_select(req, NODE_PROPERTIES)))


def list_supported_images(emu, req, account, now):
    pred = odata.compile_filter(req.q("$filter"))
    keyed = [("%06d" % i, copy.deepcopy(img)) for i, img in enumerate(emu.world["supportedImages"])
             if pred is None or pred(img)]
    return Response(200, odata.page(req, keyed, req.base_url + "/$metadata#supportedimages"))


def list_node_counts(emu, req, account, now):
    pred = odata.compile_filter(req.q("$filter"))
    alloc = emu.world["allocation"]
    keyed = []
    for pool in sorted(emu.pools[account["name"]].values(), key=lambda p: p.id.lower()):
        counts = {True: dict.fromkeys(COUNT_FIELDS, 0), False: dict.fromkeys(COUNT_FIELDS, 0)}
        for n in pool.nodes:
            if n.visible(now):
                c = counts[n.dedicated]
                c[STATE_COUNTER[n.state(now, alloc)[0]]] += 1
                c["total"] += 1
        item = {"poolId": pool.id, "dedicated": counts[True], "lowPriority": counts[False]}
        if pred is None or pred(item):
            keyed.append((pool.id.lower(), item))
    return Response(200, odata.page(req, keyed, req.base_url + "/$metadata#poolnodecounts"))


POOL_ACTIONS = {
    "resize": resize_pool, "stopresize": stop_resize_pool, "enableautoscale": enable_autoscale,
    "disableautoscale": disable_autoscale, "evaluateautoscale": evaluate_autoscale,
    "updateproperties": update_properties, "removenodes": remove_nodes,
}


def _verb(req, allowed):
    if req.method not in allowed:
        raise ApiError(405, "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb.",
                       [("HttpVerb", req.method)], headers=[("Allow", ", ".join(allowed))])


def handle(emu, req, account):
    """Route one authenticated data-plane request (api-version already checked)."""
    now = emu.clock.now()
    tick(emu, account, now)
    segs = req.segments()
    low = [s.lower() for s in segs]
    if low == ["pools"]:
        _verb(req, ("GET", "POST"))
        return list_pools(emu, req, account, now) if req.method == "GET" else create_pool(emu, req, account, now)
    if low == ["supportedimages"]:
        _verb(req, ("GET",))
        return list_supported_images(emu, req, account, now)
    if low == ["nodecounts"]:
        _verb(req, ("GET",))
        return list_node_counts(emu, req, account, now)
    if len(segs) >= 2 and low[0] == "pools":
        if len(segs) == 2:
            _verb(req, ("GET", "HEAD", "PATCH", "DELETE"))
        elif len(segs) == 3 and low[2] in POOL_ACTIONS:
            _verb(req, ("POST",))
        elif (len(segs) == 3 or len(segs) == 4) and low[2] == "nodes":
            _verb(req, ("GET",))
        else:
            raise invalid_uri()
        pool = _get_pool(emu, account, segs[1])
        if len(segs) == 2:
            return {"GET": get_pool, "HEAD": get_pool, "PATCH": patch_pool,
                    "DELETE": delete_pool}[req.method](emu, req, account, pool, now)
        if low[2] == "nodes":
            if len(segs) == 3:
                return list_nodes(emu, req, account, pool, now)
            return get_node(emu, req, account, pool, segs[3], now)
        return POOL_ACTIONS[low[2]](emu, req, account, pool, now)
    raise invalid_uri()


def invalid_uri():
    return ApiError(400, "InvalidUri", "The requested URI does not represent any resource on the server.")
