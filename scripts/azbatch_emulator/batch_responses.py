"""The Batch data plane's HTTP handlers (moto's responses.py): request -> checks
-> one call on the model (batch_models) -> response.  Each handler takes a Ctx:
the emulator, the request, the authenticated account, the simulated time and the
route's path parameters.  This module also renders pools and nodes as the
service returns them, and honours the conditional headers.
"""

import copy

from . import odata, world as W
from .images import check_vm_configuration
from .validate import (POOL_ID, bool_field, check_common, duration_field, int_field, invalid, list_field, missing,
                       read_json, refuse_shared_key_for_compute, reject_unknown, str_field)
from .wire import ApiError, Response, iso, parse_http_date, parse_iso, rfc1123

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
STATE_COUNTER = {"creating": "creating", "starting": "starting", "idle": "idle", "leavingpool": "leavingPool",
                 "running": "running", "unusable": "unusable", "starttaskfailed": "startTaskFailed"}


class Ctx:
    """One data-plane request on its way to a handler."""
    __slots__ = ("emu", "backend", "req", "account", "now", "params", "_placement")

    def __init__(self, emu, req, account, now, params):
        self.emu, self.backend, self.req, self.account, self.now, self.params = \
            emu, emu.batch, req, account, now, params
        self._placement = None

    def running_on(self, pool):
        """{node id: running tasks} for `pool` (job_models.JobBackend.placement), computed once."""
        if self._placement is None:
            self._placement = self.emu.jobs.placement(self.account, self.now)[1]
        return self._placement.get(pool.id.lower(), {})

    @property
    def world(self):
        return self.emu.world

    @property
    def base(self):
        return self.req.base_url

    def pool(self):
        """The pool the route names (404 PoolNotFound when there is none)."""
        return self.backend.get(self.account, self.params["poolId"])


# {===================================================================
# Rendering
# ====================================================================

def _scrub(value):
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in SECRET_FIELDS}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def pool_json(ctx, pool, stats=False):
    now, base = ctx.now, ctx.base
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
        core_secs *= ctx.backend.cores(pool)
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


def node_state(ctx, pool, node):
    """(state, since, running tasks): an idle node running job tasks is `running`."""
    state, since = node.state(ctx.now, ctx.world["allocation"])
    if state == "idle":
        running = ctx.running_on(pool).get(node.id, 0)
        if running:
            return "running", since, running
    return state, since, 0


def node_json(ctx, pool, node):
    now, base, account = ctx.now, ctx.base, ctx.account
    alloc = ctx.world["allocation"]
    state, since, running = node_state(ctx, pool, node)
    ref = copy.deepcopy((pool.spec.get("virtualMachineConfiguration") or {}).get("imageReference") or {})
    if ref.get("publisher"):
        ref.setdefault("version", "latest")
    if node.exact or pool.exact_version:
        ref["exactVersion"] = node.exact or pool.exact_version
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
              "runningTasksCount": running, "runningTaskSlotsCount": running, "isDedicated": node.dedicated})
    fate = node.fate
    started = state in ("idle", "running", "starttaskfailed", "unusable")
    if "startTask" in pool.spec:
        d["startTask"] = _scrub(pool.spec["startTask"])
        if fate is not None and fate.kind.startswith("starttaskfailed") and started:
            d["startTaskInfo"] = fate.start_task_info(iso(since), iso(since))
        elif started and state != "unusable":
            d["startTaskInfo"] = {"state": "completed", "startTime": iso(since), "endTime": iso(since),
                                  "exitCode": 0, "result": "success", "retryCount": 0}
    if state == "unusable" and fate is not None and fate.errors:
        d["errors"] = copy.deepcopy(fate.errors)
    if now >= booted:
        d["nodeAgentInfo"] = {"version": "1.12.4", "lastUpdateTime": iso(booted)}
    d["virtualMachineInfo"] = vmi
    return d


def mutation_headers(ctx, pool):
    url = "%s/pools/%s" % (ctx.base, pool.id)
    return [("ETag", pool.etag), ("Last-Modified", rfc1123(pool.last_modified)), ("DataServiceId", url)]


# {===================================================================
# Conditional headers and query options
# ====================================================================

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


def _expand_stats(req):
    raw = req.q("$expand")
    if raw is None:
        return False
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for n in names:
        if n != "stats":
            raise odata.bad_query("$expand", raw, "Only 'stats' can be expanded.")
    return True


def _deallocation_option(body):
    opt = str_field(body, "nodeDeallocationOption")
    if opt is not None and opt not in DEALLOCATION:
        raise invalid("nodeDeallocationOption", "The value must be one of %s." % ", ".join(DEALLOCATION))
    return opt


# {===================================================================
# Pools
# ====================================================================

def create_pool(ctx):
    req = ctx.req
    body = read_json(req)
    refuse_shared_key_for_compute(req, body)
    pool = build_pool(ctx.emu, ctx.account, body, ctx.now, req.principal)
    hdrs = mutation_headers(ctx, pool) + [("Location", "%s/pools/%s" % (ctx.base, pool.id))]
    return Response(201, b"", hdrs)


def build_pool(emu, account, body, now, principal):
    """Validate a BatchPoolCreateOptions body and create the pool (POST /pools, and the world's
    pools at start)."""
    reject_unknown(body, CREATE_FIELDS | LEGACY_FIELDS)
    pool_id = str_field(body, "id", required=True)
    str_field(body, "vmSize", required=True)
    if "virtualMachineConfiguration" not in body:
        raise missing("virtualMachineConfiguration")
    if not POOL_ID.match(pool_id):
        raise invalid("id", "The id can contain any combination of alphanumeric characters including hyphens "
                            "and underscores, and cannot contain more than 64 characters.")
    check_common(body)
    image = check_vm_configuration(body["virtualMachineConfiguration"], emu, account, principal)
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
    spec = {k: v for k, v in body.items() if k not in ("targetDedicatedNodes", "targetLowPriorityNodes",
                                                      "resizeTimeout", "enableAutoScale", "autoScaleFormula",
                                                      "autoScaleEvaluationInterval", "odata.metadata")}
    return emu.batch.create(account, spec, now, image, timeout, (td, tl),
                            (body["autoScaleFormula"], interval) if autoscale else None)


def list_pools(ctx):
    req = ctx.req
    select = odata.parse_select(req, POOL_PROPERTIES)
    stats = _expand_stats(req)
    pred = odata.compile_filter(req.q("$filter"))
    keyed = []
    for pool in ctx.backend.listed(ctx.account):
        item = pool_json(ctx, pool, stats)
        if pred is None or pred(item):
            keyed.append((pool.id.lower(), odata.apply_select(item, select)))
    return Response(200, odata.page(req, keyed, ctx.base + "/$metadata#pools"))


def get_pool(ctx):
    req, pool = ctx.req, ctx.pool()
    check_conditions(req, pool, read=True)
    if req.method == "HEAD":
        return Response(200, b"", [("ETag", pool.etag), ("Last-Modified", rfc1123(pool.last_modified))])
    select = odata.parse_select(req, POOL_PROPERTIES)
    body = {"odata.metadata": ctx.base + "/$metadata#pools/@Element"}
    body.update(pool_json(ctx, pool, _expand_stats(req)))
    return Response(200, odata.apply_select(body, select),
                    [("ETag", pool.etag), ("Last-Modified", rfc1123(pool.last_modified))])


def patch_pool(ctx):
    req, pool = ctx.req, ctx.pool()
    body = read_json(req)
    refuse_shared_key_for_compute(req, body)
    check_conditions(req, pool, read=False)
    ctx.backend.ensure_active(pool)
    reject_unknown(body, PATCH_FIELDS)
    check_common(body)
    if "taskSlotsPerNode" in body:
        cores = W.vm_cores(ctx.world, body.get("vmSize") or pool.spec["vmSize"])
        int_field(body, "taskSlotsPerNode", low=1, high=min(4 * cores, 256))
    image = pool.image
    if "virtualMachineConfiguration" in body:
        image = check_vm_configuration(body["virtualMachineConfiguration"], ctx.emu, ctx.account, req.principal)
    changes = {k: v for k, v in body.items() if k != "odata.metadata"}
    ctx.backend.patch(pool, changes, image, PATCH_ANY_TIME, ctx.now)
    return Response(200, b"", mutation_headers(ctx, pool))


def delete_pool(ctx):
    pool = ctx.pool()
    check_conditions(ctx.req, pool, read=False)
    ctx.backend.delete(pool, ctx.now)
    return Response(202, b"", [("DataServiceId", "%s/pools/%s" % (ctx.base, pool.id))])


def resize_pool(ctx):
    pool = ctx.pool()
    body = read_json(ctx.req)
    reject_unknown(body, {"targetDedicatedNodes", "targetLowPriorityNodes", "resizeTimeout", "nodeDeallocationOption"})
    td = int_field(body, "targetDedicatedNodes", low=0)
    tl = int_field(body, "targetLowPriorityNodes", low=0)
    timeout = duration_field(body, "resizeTimeout", minimum=300)
    _deallocation_option(body)
    check_conditions(ctx.req, pool, read=False)
    ctx.backend.resize(ctx.account, pool, td, tl, timeout, ctx.now)
    return Response(202, b"", mutation_headers(ctx, pool))


def stop_resize_pool(ctx):
    pool = ctx.pool()
    check_conditions(ctx.req, pool, read=False)
    ctx.backend.stop_resize(pool, ctx.now)
    return Response(202, b"", mutation_headers(ctx, pool))


def enable_autoscale(ctx):
    pool = ctx.pool()
    body = read_json(ctx.req)
    reject_unknown(body, {"autoScaleFormula", "autoScaleEvaluationInterval"})
    formula = str_field(body, "autoScaleFormula")
    interval = duration_field(body, "autoScaleEvaluationInterval", minimum=300, maximum=168 * 3600)
    check_conditions(ctx.req, pool, read=False)
    ctx.backend.enable_autoscale(ctx.account, pool, formula, interval, ctx.now)
    return Response(200, b"", mutation_headers(ctx, pool))


def disable_autoscale(ctx):
    pool = ctx.pool()
    ctx.backend.disable_autoscale(pool, ctx.now)
    return Response(200, b"", mutation_headers(ctx, pool))


def evaluate_autoscale(ctx):
    pool = ctx.pool()
    body = read_json(ctx.req)
    reject_unknown(body, {"autoScaleFormula"})
    formula = str_field(body, "autoScaleFormula", required=True)
    run = ctx.backend.evaluate_autoscale(pool, formula, ctx.now)
    out = {"odata.metadata": ctx.base + "/$metadata#Microsoft.Azure.Batch.Protocol.Entities.AutoScaleRun"}
    out.update(run)
    return Response(200, out, [("DataServiceId", "%s/pools/%s/evaluateautoscale" % (ctx.base, pool.id))])


def update_properties(ctx):
    pool = ctx.pool()
    body = read_json(ctx.req)
    reject_unknown(body, REPLACE_FIELDS)
    for name in ("applicationPackageReferences", "metadata"):
        if body.get(name) is None:
            raise missing(name)
    check_common(body)
    ctx.backend.replace_properties(pool, body, REPLACE_FIELDS, ctx.now)
    return Response(204, b"", mutation_headers(ctx, pool))


def remove_nodes(ctx):
    pool = ctx.pool()
    body = read_json(ctx.req)
    reject_unknown(body, {"nodeList", "resizeTimeout", "nodeDeallocationOption"})
    ids = list_field(body, "nodeList")
    if ids is None:
        raise missing("nodeList")
    if not ids or len(ids) > 100:
        raise invalid("nodeList", "The nodeList must contain between 1 and 100 node IDs.")
    if not all(isinstance(i, str) for i in ids):
        raise invalid("nodeList", "Each node ID must be a string.")
    duration_field(body, "resizeTimeout", minimum=300)
    _deallocation_option(body)
    check_conditions(ctx.req, pool, read=False)
    ctx.backend.remove_nodes(pool, ids, ctx.now)
    return Response(202, b"", mutation_headers(ctx, pool))


# {===================================================================
# Nodes, supported images, node counts, usage metrics
# ====================================================================

def list_nodes(ctx):
    req, pool = ctx.req, ctx.pool()
    select = odata.parse_select(req, NODE_PROPERTIES)
    pred = odata.compile_filter(req.q("$filter"))
    keyed = []
    for n in sorted((n for n in pool.nodes if n.visible(ctx.now)), key=lambda x: x.id):
        item = node_json(ctx, pool, n)
        if pred is None or pred(item):
            keyed.append((n.id, odata.apply_select(item, select)))
    return Response(200, odata.page(req, keyed, ctx.base + "/$metadata#nodes"))


def get_node(ctx):
    pool, node_id = ctx.pool(), ctx.params["nodeId"]
    node = next((n for n in pool.nodes if n.id == node_id and n.visible(ctx.now)), None)
    if node is None:
        raise ApiError(404, "NodeNotFound", "The specified node does not exist.", [("NodeId", node_id)])
    body = {"odata.metadata": ctx.base + "/$metadata#nodes/@Element"}
    body.update(node_json(ctx, pool, node))
    return Response(200, odata.apply_select(body, odata.parse_select(ctx.req, NODE_PROPERTIES)))


def list_supported_images(ctx):
    pred = odata.compile_filter(ctx.req.q("$filter"))
    keyed = [("%06d" % i, copy.deepcopy(img)) for i, img in enumerate(ctx.world["supportedImages"])
             if pred is None or pred(img)]
    return Response(200, odata.page(ctx.req, keyed, ctx.base + "/$metadata#supportedimages"))


def list_node_counts(ctx):
    pred = odata.compile_filter(ctx.req.q("$filter"))
    keyed = []
    for pool in ctx.backend.listed(ctx.account):
        counts = {True: dict.fromkeys(COUNT_FIELDS, 0), False: dict.fromkeys(COUNT_FIELDS, 0)}
        for n in pool.nodes:
            if n.visible(ctx.now):
                c = counts[n.dedicated]
                c[STATE_COUNTER[node_state(ctx, pool, n)[0]]] += 1
                c["total"] += 1
        item = {"poolId": pool.id, "dedicated": counts[True], "lowPriority": counts[False]}
        if pred is None or pred(item):
            keyed.append((pool.id.lower(), item))
    return Response(200, odata.page(ctx.req, keyed, ctx.base + "/$metadata#poolnodecounts"))


def _time_query(req, name):
    """An ISO 8601 date-time query parameter (name matched case-insensitively) -> epoch, or None."""
    for key, value in req.query:
        if key.lower() == name:
            when = parse_iso(value)
            if when is None:
                raise odata.bad_query(key, value, "The value is not a valid ISO 8601 date-time.")
            return key, when
    return None, None


def list_pool_usage_metrics(ctx):
    req = ctx.req
    _, start = _time_query(req, "starttime")
    end_name, end = _time_query(req, "endtime")
    if start is not None and end is not None and end <= start:
        raise odata.bad_query(end_name, req.q(end_name), "The end time must be later than the start time.")
    pred = odata.compile_filter(req.q("$filter"))
    keyed = [(k, item) for k, item in ctx.backend.usage_metrics(ctx.account, start, end, ctx.now)
             if pred is None or pred(item)]
    return Response(200, odata.page(req, keyed, ctx.base + "/$metadata#poolusagemetrics"))
