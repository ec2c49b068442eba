"""The Batch data plane's job handlers (2025-06-01): create, list, get, update
(PATCH), replace (PUT), disable, enable, delete and task counts.  Each takes the
same Ctx as the pool handlers; the state machine is job_models.
"""

import copy

from . import odata, world as W
from .batch_responses import check_conditions
from .validate import (POOL_ID, bool_field, check_common, duration_field, int_field, invalid, missing, read_json,
                       reject_unknown, str_field)
from .wire import ApiError, Response, iso, rfc1123

DISABLE_OPTIONS = ("requeue", "terminate", "wait")
ALL_TASKS_COMPLETE = ("noaction", "terminatejob")
TASK_FAILURE = ("noaction", "performexitoptionsjobaction")
UPDATE_FIELDS = {"priority", "allowTaskPreemption", "maxParallelTasks", "constraints", "poolInfo",
                 "onAllTasksComplete", "metadata", "networkConfiguration"}
REPLACE_FIELDS = {"priority", "allowTaskPreemption", "maxParallelTasks", "constraints", "poolInfo",
                  "onAllTasksComplete", "metadata"}
CREATE_FIELDS = UPDATE_FIELDS | {"id", "displayName", "usesTaskDependencies", "jobManagerTask",
                                 "jobPreparationTask", "jobReleaseTask", "commonEnvironmentSettings", "onTaskFailure"}
READ_ONLY = {"url", "eTag", "lastModified", "creationTime", "state", "stateTransitionTime", "previousState",
             "previousStateTransitionTime", "executionInfo", "stats"}
JOB_PROPERTIES = [
    "id", "displayName", "usesTaskDependencies", "url", "eTag", "lastModified", "creationTime", "state",
    "stateTransitionTime", "previousState", "previousStateTransitionTime", "priority", "allowTaskPreemption",
    "maxParallelTasks", "constraints", "jobManagerTask", "jobPreparationTask", "jobReleaseTask",
    "commonEnvironmentSettings", "poolInfo", "onAllTasksComplete", "onTaskFailure", "networkConfiguration",
    "metadata", "executionInfo", "stats",
]
FOREVER = "P10675199DT2H48M5.4775807S"          # the service's "no limit" duration (Jobs_GetJob example)


# {===================================================================
# Bodies
# ====================================================================

def _pool_info(body, required):
    info = body.get("poolInfo")
    if info is None:
        if required:
            raise missing("poolInfo")
        return
    if not isinstance(info, dict):
        raise invalid("poolInfo", "The value must be an object.")
    reject_unknown(info, {"poolId", "autoPoolSpecification"})
    if info.get("autoPoolSpecification") is not None:
        raise invalid("poolInfo.autoPoolSpecification", "Auto pools are not emulated: name an existing pool "
                                                        "with poolId.")
    pool_id = str_field(info, "poolId")
    if not pool_id:
        raise missing("poolInfo.poolId")
    if not POOL_ID.match(pool_id):
        raise invalid("poolInfo.poolId", "The pool id is not valid.")


def _check(body, fields, required_pool):
    reject_unknown(body, fields)
    _pool_info(body, required_pool)
    priority = body.get("priority")
    if priority is not None:
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise invalid("priority", "The value must be an integer.")
        if not -1000 <= priority <= 1000:
            raise ApiError(400, "OutOfRangePriority", "A job priority was specified which was outside the "
                                                      "permitted range of -1000 to 1000.",
                           [("PropertyName", "priority"), ("PropertyValue", str(priority))])
    mpt = int_field(body, "maxParallelTasks", low=-1)
    if mpt == 0:
        raise invalid("maxParallelTasks", "The value of maxParallelTasks must be -1 or greater than 0.")
    bool_field(body, "allowTaskPreemption")
    bool_field(body, "usesTaskDependencies")
    str_field(body, "displayName", maxlen=1024)
    cons = body.get("constraints")
    if cons is not None:
        if not isinstance(cons, dict):
            raise invalid("constraints", "The value must be an object.")
        reject_unknown(cons, {"maxWallClockTime", "maxTaskRetryCount"})
        duration_field(cons, "maxWallClockTime", minimum=0)
        int_field(cons, "maxTaskRetryCount", low=-1)
    for name, allowed in (("onAllTasksComplete", ALL_TASKS_COMPLETE), ("onTaskFailure", TASK_FAILURE)):
        v = str_field(body, name)
        if v is not None and v not in allowed:
            raise invalid(name, "The value must be one of %s." % ", ".join(allowed))
    for name in ("jobManagerTask", "jobPreparationTask", "jobReleaseTask", "networkConfiguration"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise invalid(name, "The value must be an object.")
    check_common({"metadata": body["metadata"]} if "metadata" in body else {})


# {===================================================================
# Rendering
# ====================================================================

def job_json(ctx, job, stats=False):
    spec = copy.deepcopy(job.spec)
    base = ctx.base
    d = {"id": job.id}
    if "displayName" in spec:
        d["displayName"] = spec["displayName"]
    d.update({"usesTaskDependencies": spec.get("usesTaskDependencies", False),
              "url": "%s/jobs/%s" % (base, job.id), "eTag": job.etag, "lastModified": iso(job.last_modified),
              "creationTime": iso(job.creation), "state": job.state, "stateTransitionTime": iso(job.state_time)})
    if job.prev_state:
        d["previousState"] = job.prev_state
        d["previousStateTransitionTime"] = iso(job.prev_time)
    d.update({"priority": spec.get("priority", 0), "maxParallelTasks": spec.get("maxParallelTasks", -1),
              "allowTaskPreemption": spec.get("allowTaskPreemption", False),
              "constraints": dict({"maxWallClockTime": FOREVER, "maxTaskRetryCount": 0},
                                  **spec.get("constraints", {}))})
    for k in ("jobManagerTask", "jobPreparationTask", "jobReleaseTask", "commonEnvironmentSettings"):
        if k in spec:
            d[k] = spec[k]
    d["poolInfo"] = spec["poolInfo"]
    d["onAllTasksComplete"] = spec.get("onAllTasksComplete", "noaction")
    d["onTaskFailure"] = spec.get("onTaskFailure", "noaction")
    for k in ("networkConfiguration", "metadata"):
        if k in spec:
            d[k] = spec[k]
    d["executionInfo"] = {"startTime": iso(job.start_time), "poolId": job.pool_id}
    if stats:
        zero = "PT0S"
        d["stats"] = {"url": "%s/jobs/%s/stats" % (base, job.id), "startTime": iso(job.creation),
                      "lastUpdateTime": iso(ctx.now), "userCPUTime": zero, "kernelCPUTime": zero,
                      "wallClockTime": zero, "readIOps": "0", "writeIOps": "0", "readIOGiB": 0.0,
                      "writeIOGiB": 0.0, "numSucceededTasks": str(job.succeeded),
                      "numFailedTasks": str(job.failed), "numTaskRetries": "0", "waitTime": zero}
    return d


def _headers(ctx, job):
    return [("ETag", job.etag), ("Last-Modified", rfc1123(job.last_modified)),
            ("DataServiceId", "%s/jobs/%s" % (ctx.base, job.id))]


def _expand_stats(req):
    raw = req.q("$expand")
    if raw is None or not raw.strip():
        return False
    for n in (x.strip() for x in raw.split(",") if x.strip()):
        if n != "stats":
            raise odata.bad_query("$expand", raw, "Only 'stats' can be expanded.")
    return True


def _job(ctx):
    return ctx.emu.jobs.get(ctx.account, ctx.params["jobId"])


# {===================================================================
# Handlers
# ====================================================================

def create_job(ctx):
    body = read_json(ctx.req)
    job_id = str_field(body, "id", required=True)
    _check(body, CREATE_FIELDS, required_pool=True)
    if not POOL_ID.match(job_id):
        raise invalid("id", "The id can contain any combination of alphanumeric characters including hyphens "
                            "and underscores, and cannot contain more than 64 characters.")
    spec = {k: v for k, v in body.items() if k != "odata.metadata"}
    job = ctx.emu.jobs.create(ctx.account, spec, ctx.now)
    return Response(201, b"", _headers(ctx, job) + [("Location", "%s/jobs/%s" % (ctx.base, job.id))])


def list_jobs(ctx):
    req = ctx.req
    select = odata.parse_select(req, JOB_PROPERTIES)
    stats = _expand_stats(req)
    pred = odata.compile_filter(req.q("$filter"))
    keyed = []
    for job in ctx.emu.jobs.listed(ctx.account):
        item = job_json(ctx, job, stats)
        if pred is None or pred(item):
            keyed.append((job.id.lower(), odata.apply_select(item, select)))
    return Response(200, odata.page(req, keyed, ctx.base + "/$metadata#jobs"))


def get_job(ctx):
    job = _job(ctx)
    check_conditions(ctx.req, job, read=True)
    body = {"odata.metadata": ctx.base + "/$metadata#jobs/@Element"}
    body.update(job_json(ctx, job, _expand_stats(ctx.req)))
    return Response(200, odata.apply_select(body, odata.parse_select(ctx.req, JOB_PROPERTIES)),
                    [("ETag", job.etag), ("Last-Modified", rfc1123(job.last_modified))])


def patch_job(ctx):
    job = _job(ctx)
    body = read_json(ctx.req)
    check_conditions(ctx.req, job, read=False)
    _check(body, UPDATE_FIELDS, required_pool=False)
    changes = {k: v for k, v in body.items() if k != "odata.metadata"}
    ctx.emu.jobs.update(ctx.account, job, changes, ctx.now)
    return Response(200, b"", _headers(ctx, job))


def replace_job(ctx):
    job = _job(ctx)
    body = read_json(ctx.req)
    check_conditions(ctx.req, job, read=False)
    reject_unknown(body, CREATE_FIELDS | READ_ONLY)
    given = {k: v for k, v in body.items() if k in REPLACE_FIELDS}
    _check(given, REPLACE_FIELDS, required_pool=True)
    ctx.emu.jobs.update(ctx.account, job, given, ctx.now, replace_fields=REPLACE_FIELDS)
    return Response(200, b"", _headers(ctx, job))


def disable_job(ctx):
    job = _job(ctx)
    body = read_json(ctx.req)
    reject_unknown(body, {"disableTasks"})
    option = str_field(body, "disableTasks", required=True)
    if option not in DISABLE_OPTIONS:
        raise invalid("disableTasks", "The value must be one of %s." % ", ".join(DISABLE_OPTIONS))
    check_conditions(ctx.req, job, read=False)
    ctx.emu.jobs.disable(ctx.account, job, option, ctx.now)
    return Response(202, b"", _headers(ctx, job))


def enable_job(ctx):
    job = _job(ctx)
    check_conditions(ctx.req, job, read=False)
    ctx.emu.jobs.enable(ctx.account, job, ctx.now)
    return Response(202, b"", _headers(ctx, job))


def delete_job(ctx):
    job = _job(ctx)
    check_conditions(ctx.req, job, read=False)
    ctx.emu.jobs.delete(ctx.account, job, ctx.now)
    return Response(202, b"", [("DataServiceId", "%s/jobs/%s" % (ctx.base, job.id))])


def job_task_counts(ctx):
    job = _job(ctx)
    running = ctx.emu.jobs.running(ctx.account, job, ctx.now)
    counts = {"active": max(0, job.queued - running), "running": running, "completed": job.completed,
              "succeeded": job.succeeded, "failed": job.failed}
    body = {"odata.metadata": ctx.base + "/$metadata#taskcounts/@Element", "taskCounts": counts,
            "taskSlotCounts": dict(counts)}
    return Response(200, body)


def seed_job(emu, account, item, now):
    """A job the world holds at start: validated like POST /jobs, created an hour back."""
    spec = {k: v for k, v in item.items() if k not in ("account", "taskCount", "state")}
    _check(spec, CREATE_FIELDS, required_pool=True)
    if not POOL_ID.match(spec["id"]):
        raise invalid("id", "The id is not valid.")
    job = emu.jobs.create(account, spec, now - 3600, tasks=item["taskCount"])
    if item["state"] == "disabled":
        job.set_state("disabled", now - 3600)
    return job


def world_account(world, name):
    return next(a for a in world["accounts"] if W.same(a["name"], name))
