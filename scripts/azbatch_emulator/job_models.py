"""Batch jobs (the state machine), enough for job handover in rollouts.

A job runs on the pool its poolInfo names.  Tasks are not emulated one by one:
a job holds a number of simulated tasks (world `taskCount`, or added through
POST /_emulator/jobs/{id}/tasks) that never finish on their own.  While the job
is active, as many of them run as its pool has free task slots on nodes that
are idle (taskSlotsPerNode each); those nodes show `running`.  The rest are
active (queued).  Placement is recomputed on every read: jobs take slots by
priority, then by how long they have been active.

Disabling moves the job to `disabling`, then `disabled` after
allocation.jobDisableSeconds: `requeue` puts its running tasks back in the queue,
`terminate` ends them as failed, `wait` lets them run to success, which takes
allocation.taskWaitSeconds.  Enabling goes `enabling`, then `active` after
allocation.jobEnableSeconds.  Deleting goes `deleting` and the job is gone after
allocation.jobDeleteSeconds.  A job's poolInfo can change only while it is
disabled; enabled again, its tasks run on the new pool.
"""

from .validate import conflict
from .wire import ApiError


def job_not_found():
    return ApiError(404, "JobNotFound", "The specified job does not exist.")


def job_being_deleted():
    return conflict("JobBeingDeleted", "The specified job has been marked for deletion and is being garbage "
                                       "collected.")


class Job:
    def __init__(self, account, spec, now, etag):
        self.account = account
        self.spec = spec                        # the user-set properties (validated)
        self.id = spec["id"]
        self.creation = self.last_modified = self.state_time = now
        self.etag = etag
        self.state, self.prev_state, self.prev_time = "active", None, None
        self.pool_id = spec["poolInfo"].get("poolId")
        self.start_time = now
        self.queued = 0                         # tasks not yet finished (queued or running)
        self.completed = self.succeeded = self.failed = 0
        self.op = None                          # {"until": t, "then": state, "wait": n} while in transition

    def set_state(self, state, now):
        self.prev_state, self.prev_time = self.state, self.state_time
        self.state, self.state_time = state, now


class JobBackend:
    """Every account's jobs; task placement reads the pools of `batch` (a BatchBackend)."""

    def __init__(self, world, batch):
        self.world = world
        self.batch = batch
        self.alloc = world["allocation"]
        self.jobs = {a["name"]: {} for a in world["accounts"]}

    def get(self, account, job_id):
        job = self.jobs[account["name"]].get(job_id.lower())
        if job is None:
            raise job_not_found()
        return job

    def listed(self, account):
        return sorted(self.jobs[account["name"]].values(), key=lambda j: j.id.lower())

    def touch(self, job, now):
        job.etag = self.batch.new_etag()
        job.last_modified = now

    # {---------------------------------------------------------- the clock

    def tick(self, account, now):
        jobs = self.jobs[account["name"]]
        for key, job in list(jobs.items()):
            op = job.op
            if op is None or now < op["until"]:
                continue
            job.op = None
            if op["then"] is None:                      # deleted
                del jobs[key]
                continue
            if op.get("wait"):
                job.queued -= op["wait"]
                job.completed += op["wait"]
                job.succeeded += op["wait"]
            job.set_state(op["then"], op["until"])

    # {---------------------------------------------------------- placement

    def placement(self, account, now):
        """({job key: running}, {pool key: {node id: running}}) at `now`."""
        by_job, by_pool = {}, {}
        jobs = self.jobs[account["name"]]
        for pool in self.batch.listed(account):
            if pool.state != "active":
                continue
            mine = [j for j in jobs.values() if j.pool_id and j.pool_id.lower() == pool.id.lower()
                    and (j.state == "active" or (j.op and j.op.get("wait")))]
            if not mine:
                continue
            slots = pool.spec.get("taskSlotsPerNode", 1)
            nodes = sorted((n for n in pool.nodes if n.visible(now) and n.state(now, self.alloc)[0] == "idle"),
                           key=lambda n: n.seq)
            free = {n.id: slots for n in nodes}
            pack = pool.spec.get("taskSchedulingPolicy", {}).get("nodeFillType") == "pack"
            counts = {}
            for job in sorted(mine, key=lambda j: (-j.spec.get("priority", 0), j.state_time, j.id.lower())):
                want = job.op["wait"] if job.op and job.op.get("wait") else job.queued
                placed = 0
                while placed < want:
                    open_nodes = [n for n in nodes if free[n.id] > 0]
                    if not open_nodes:
                        break
                    for n in open_nodes[:1] if pack else open_nodes:
                        if placed >= want:
                            break
                        take = min(free[n.id], want - placed) if pack else 1
                        free[n.id] -= take
                        counts[n.id] = counts.get(n.id, 0) + take
                        placed += take
                by_job[job.id.lower()] = placed
            by_pool[pool.id.lower()] = counts
        return by_job, by_pool

    def running(self, account, job, now):
        return self.placement(account, now)[0].get(job.id.lower(), 0)

    # {---------------------------------------------------------- operations

    def create(self, account, spec, now, tasks=0):
        jobs = self.jobs[account["name"]]
        existing = jobs.get(spec["id"].lower())
        if existing is not None:
            if existing.state == "deleting":
                raise job_being_deleted()
            raise conflict("JobExists", "The specified job already exists.")
        active = sum(1 for j in jobs.values() if j.state not in ("completed", "deleting"))
        if active >= account["activeJobAndJobScheduleQuota"]:
            raise conflict("ActiveJobAndScheduleQuotaReached", "Active job and schedule quota for the account has "
                                                               "been reached.",
                           [("ActiveJobAndJobScheduleQuota", str(account["activeJobAndJobScheduleQuota"]))])
        job = Job(account["name"], spec, now, self.batch.new_etag())
        job.queued = tasks
        jobs[spec["id"].lower()] = job
        return job

    def ensure_not_deleting(self, job):
        if job.state == "deleting":
            raise job_being_deleted()

    def update(self, account, job, changes, now, replace_fields=None):
        """PATCH (merge `changes`) or, with `replace_fields`, PUT (every field in it is replaced;
        absent ones are removed).  poolInfo may change only while the job is disabled."""
        self.ensure_not_deleting(job)
        pool_info = changes.get("poolInfo")
        if pool_info is not None and (pool_info.get("poolId") or "").lower() != (job.pool_id or "").lower() \
                and job.state != "disabled":
            raise conflict("OperationInvalidForCurrentState",
                           "The specified operation is not valid for the current state of the resource: the pool "
                           "of a job can change only while the job is disabled (state '%s')." % job.state,
                           [("PropertyName", "poolInfo"), ("JobState", job.state)])
        if job.spec.get("onAllTasksComplete") == "terminatejob" and (
                changes.get("onAllTasksComplete") == "noaction"
                or (replace_fields is not None and changes.get("onAllTasksComplete") is None)):
            raise ApiError(400, "InvalidPropertyValue", "The value provided for one of the properties in the "
                                                        "request body is invalid.",
                           [("PropertyName", "onAllTasksComplete"),
                            ("Reason", "A job's completion behavior cannot be changed from terminatejob to "
                                       "noaction.")])
        if replace_fields is not None:
            for name in replace_fields:
                if name in changes:
                    job.spec[name] = changes[name]
                else:
                    job.spec.pop(name, None)
        else:
            job.spec.update(changes)
        if pool_info is not None:
            job.pool_id = pool_info.get("poolId")
        self.touch(job, now)

    def disable(self, account, job, option, now):
        """Repeats are harmless: disabling a disabling or disabled job changes nothing."""
        self.ensure_not_deleting(job)
        if job.state in ("disabling", "disabled"):
            return
        if job.state != "active":
            raise conflict("JobNotActive", "The specified job is not in active state.", [("JobState", job.state)])
        running = self.running(account, job, now)
        op = {"until": now + self.alloc["jobDisableSeconds"], "then": "disabled"}
        if option == "terminate":
            job.queued -= running
            job.completed += running
            job.failed += running
        elif option == "wait" and running:
            op = {"until": now + self.alloc["taskWaitSeconds"], "then": "disabled", "wait": running}
        job.set_state("disabling", now)
        job.op = op
        self.touch(job, now)

    def enable(self, account, job, now):
        """Enabling an enabling job changes nothing; an active one is refused (docs/emulator.md)."""
        self.ensure_not_deleting(job)
        if job.state == "enabling":
            return
        if job.state != "disabled":
            raise conflict("OperationInvalidForCurrentState",
                           "The specified operation is not valid for the current state of the resource: only a "
                           "disabled job can be enabled (state '%s')." % job.state, [("JobState", job.state)])
        job.set_state("enabling", now)
        job.op = {"until": now + self.alloc["jobEnableSeconds"], "then": "active"}
        self.touch(job, now)

    def delete(self, account, job, now):
        self.ensure_not_deleting(job)
        job.set_state("deleting", now)
        job.op = {"until": now + self.alloc["jobDeleteSeconds"], "then": None}
        self.touch(job, now)

    def add_tasks(self, job, count):
        self.ensure_not_deleting(job)
        job.queued += count
