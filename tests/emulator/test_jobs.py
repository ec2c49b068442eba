"""Batch jobs in the emulator: the 2025-06-01 job operations, their errors and
repeat answers, ETags, the journal, and the simulated tasks that show a job runs
on its pool and moves with it in a handover.

    python3 -m unittest discover -s tests/emulator -v
"""

import json
import os
import tempfile
import unittest

import test_emulator as T


def job_body(job_id, pool_id="p1", **extra):
    body = {"id": job_id, "poolInfo": {"poolId": pool_id}}
    body.update(extra)
    return body


class JobCase(T.EmulatorCase):
    def job(self, job_id, **query):
        r = self.c.batch("GET", "/jobs/" + job_id, list(query.items()))
        self.assertEqual(r.status, 200, r.body)
        return r.json

    def counts(self, job_id):
        r = self.c.batch("GET", "/jobs/%s/taskcounts" % job_id)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["taskCounts"], r.json["taskSlotCounts"])
        return r.json["taskCounts"]

    def post(self, path, body=None):
        return self.c.batch("POST", path, body=body)

    def running_nodes(self, pool_id):
        nodes = self.c.batch("GET", "/pools/%s/nodes" % pool_id).json["value"]
        return sorted((n["state"], n["runningTasksCount"]) for n in nodes)


class JobOperationTests(JobCase):
    def test_create_get_and_the_service_headers(self):
        r = self.post("/jobs", job_body("j1", priority=10, constraints={"maxWallClockTime": "PT1H"},
                                        metadata=[{"name": "k", "value": "v"}], displayName="first"))
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.body, b"")
        self.assertRegex(r.headers["etag"], r"^0x[0-9A-F]+$")
        self.assertTrue(r.headers["location"].endswith("/jobs/j1"))
        self.assertTrue(r.headers["dataserviceid"].endswith("/jobs/j1"))
        self.assertIn("last-modified", r.headers)
        j = self.job("j1")
        self.assertEqual((j["id"], j["displayName"], j["state"], j["priority"], j["poolInfo"], j["onAllTasksComplete"],
                          j["onTaskFailure"], j["maxParallelTasks"], j["usesTaskDependencies"]),
                         ("j1", "first", "active", 10, {"poolId": "p1"}, "noaction", "noaction", -1, False))
        self.assertEqual(j["constraints"], {"maxWallClockTime": "PT1H", "maxTaskRetryCount": 0})
        self.assertEqual(j["executionInfo"]["poolId"], "p1")
        self.assertEqual(j["eTag"], r.headers["etag"])
        self.assertTrue(j["odata.metadata"].endswith("$metadata#jobs/@Element"))
        self.assertEqual(self.job("J1")["id"], "j1")                       # ids are case-insensitive
        self.assertError(self.post("/jobs", job_body("J1")), 409, "JobExists")
        self.assertError(self.c.batch("GET", "/jobs/nope"), 404, "JobNotFound")
        slim = self.job("j1", **{"$select": "id,state"})
        self.assertEqual(set(slim) - {"odata.metadata"}, {"id", "state"})
        stats = self.job("j1", **{"$expand": "stats"})["stats"]
        self.assertEqual((stats["numSucceededTasks"], stats["numFailedTasks"]), ("0", "0"))
        self.assertEqual(self.c.batch("GET", "/jobs/j1", headers=[("If-None-Match", j["eTag"])]).status, 304)

    def test_create_validation(self):
        def err(body, status, code, **values):
            return self.assertError(self.post("/jobs", body), status, code, **values)
        err({"poolInfo": {"poolId": "p1"}}, 400, "MissingRequiredProperty", PropertyName="id")
        err({"id": "j"}, 400, "MissingRequiredProperty", PropertyName="poolInfo")
        err({"id": "j", "poolInfo": {}}, 400, "MissingRequiredProperty", PropertyName="poolInfo.poolId")
        err(job_body("bad id!"), 400, "InvalidPropertyValue", PropertyName="id")
        err(job_body("j", priority=1001), 400, "OutOfRangePriority", PropertyName="priority")
        err(job_body("j", priority="high"), 400, "InvalidPropertyValue", PropertyName="priority")
        err(job_body("j", maxParallelTasks=0), 400, "InvalidPropertyValue", PropertyName="maxParallelTasks")
        err(job_body("j", onAllTasksComplete="explode"), 400, "InvalidPropertyValue", PropertyName="onAllTasksComplete")
        err(job_body("j", constraints={"maxWallClockTime": "forever"}), 400, "InvalidPropertyValue",
            PropertyName="maxWallClockTime")
        err(job_body("j", constraints={"maxTaskRetryCount": -2}), 400, "InvalidPropertyValue",
            PropertyName="maxTaskRetryCount")
        err(job_body("j", poolinfo={}), 400, "UnsupportedProperty", PropertyName="poolinfo")
        err({"id": "j", "poolInfo": {"autoPoolSpecification": {"poolLifetimeOption": "job"}}}, 400,
            "InvalidPropertyValue", PropertyName="poolInfo.autoPoolSpecification")
        err(job_body("j", metadata=[{"value": "v"}]), 400, "MissingRequiredProperty", PropertyName="name")
        self.assertEqual(self.c.batch("GET", "/jobs").json["value"], [])

    def test_list_filters_selects_and_pages(self):
        for i, pool in enumerate(("blue", "blue", "green")):
            self.assertEqual(self.post("/jobs", job_body("job-%d" % i, pool)).status, 201)
        self.assertEqual(self.post("/jobs/job-0/disable", {"disableTasks": "requeue"}).status, 202)
        ids = lambda r: [j["id"] for j in r.json["value"]]
        r = self.c.batch("GET", "/jobs", [("$filter", "executionInfo/poolId eq 'blue'")])
        self.assertEqual(ids(r), ["job-0", "job-1"])
        r = self.c.batch("GET", "/jobs", [("$filter", "state eq 'disabling' or state eq 'disabled'")])
        self.assertEqual(ids(r), ["job-0"])
        r = self.c.batch("GET", "/jobs", [("$select", "id,executionInfo"), ("maxresults", "2")])
        self.assertEqual(ids(r), ["job-0", "job-1"])
        self.assertEqual(set(r.json["value"][0]), {"id", "executionInfo"})
        link = r.json["odata.nextLink"]
        r = self.c.signed("GET", link[link.index("/jobs"):])
        self.assertEqual((ids(r), r.json.get("odata.nextLink")), (["job-2"], None))
        self.assertError(self.c.batch("GET", "/jobs", [("$select", "bogus")]), 400, "InvalidQueryParameterValue")
        self.assertError(self.c.batch("GET", "/jobs", [("$expand", "tasks")]), 400, "InvalidQueryParameterValue")

    def test_patch_merges_and_pool_changes_only_while_disabled(self):
        self.post("/jobs", job_body("j", constraints={"maxTaskRetryCount": 3}))
        etag = self.job("j")["eTag"]
        r = self.c.batch("PATCH", "/jobs/j", body={"priority": 5})
        self.assertEqual(r.status, 200, r.body)
        self.assertNotEqual(r.headers["etag"], etag)
        j = self.job("j")
        self.assertEqual((j["priority"], j["constraints"]["maxTaskRetryCount"]), (5, 3))   # merged
        self.assertError(self.c.batch("PATCH", "/jobs/j", body={"priority": 6}, headers=[("If-Match", etag)]),
                         412, "ConditionNotMet")
        r = self.c.batch("PATCH", "/jobs/j", body={"poolInfo": {"poolId": "p2"}})
        self.assertError(r, 409, "OperationInvalidForCurrentState", PropertyName="poolInfo", JobState="active")
        self.assertEqual(self.c.batch("PATCH", "/jobs/j", body={"poolInfo": {"poolId": "P1"}}).status, 200)  # same
        self.assertError(self.c.batch("PATCH", "/jobs/j", body={"id": "x"}), 400, "UnsupportedProperty")
        self.post("/jobs/j/disable", {"disableTasks": "requeue"})
        r = self.c.batch("PATCH", "/jobs/j", body={"poolInfo": {"poolId": "p2"}})
        self.assertError(r, 409, "OperationInvalidForCurrentState", JobState="disabling")   # not yet disabled
        self.advance(3)
        self.assertEqual(self.c.batch("PATCH", "/jobs/j", body={"poolInfo": {"poolId": "p2"}}).status, 200)
        self.assertEqual(self.job("j")["executionInfo"]["poolId"], "p2")
        self.assertError(self.c.batch("PATCH", "/jobs/nope", body={"priority": 1}), 404, "JobNotFound")

    def test_put_replaces_every_updatable_property(self):
        self.post("/jobs", job_body("j", priority=7, constraints={"maxTaskRetryCount": 3},
                                    metadata=[{"name": "a", "value": "b"}], displayName="kept"))
        self.assertError(self.c.batch("PUT", "/jobs/j", body={"priority": 1}), 400, "MissingRequiredProperty",
                         PropertyName="poolInfo")
        current = self.job("j")
        current["priority"] = 1
        for k in ("constraints", "metadata"):
            del current[k]
        r = self.c.batch("PUT", "/jobs/j", body=current)                # a GET answer, edited, goes back
        self.assertEqual(r.status, 200, r.body)
        j = self.job("j")
        self.assertEqual((j["priority"], j["constraints"]["maxTaskRetryCount"], "metadata" in j, j["displayName"]),
                         (1, 0, False, "kept"))
        self.assertError(self.c.batch("PUT", "/jobs/j", body=job_body("j", "p2")), 409,
                         "OperationInvalidForCurrentState")
        self.post("/jobs", job_body("t", onAllTasksComplete="terminatejob"))
        self.assertError(self.c.batch("PATCH", "/jobs/t", body={"onAllTasksComplete": "noaction"}), 400,
                         "InvalidPropertyValue", PropertyName="onAllTasksComplete")
        self.assertError(self.c.batch("PUT", "/jobs/t", body=job_body("t")), 400, "InvalidPropertyValue",
                         PropertyName="onAllTasksComplete")

    def test_disable_and_enable_on_the_clock_with_repeats(self):
        self.post("/jobs", job_body("j"))
        self.assertError(self.post("/jobs/j/disable", {}), 400, "MissingRequiredProperty", PropertyName="disableTasks")
        self.assertError(self.post("/jobs/j/disable", {"disableTasks": "pause"}), 400, "InvalidPropertyValue")
        r = self.post("/jobs/j/disable", {"disableTasks": "requeue"})
        self.assertEqual((r.status, r.body), (202, b""))
        j = self.job("j")
        self.assertEqual((j["state"], j["previousState"]), ("disabling", "active"))
        again = self.post("/jobs/j/disable", {"disableTasks": "terminate"})
        self.assertEqual((again.status, again.headers["etag"]), (202, r.headers["etag"]))   # nothing changes
        self.assertError(self.post("/jobs/j/enable"), 409, "OperationInvalidForCurrentState", JobState="disabling")
        self.advance(3)
        self.assertEqual(self.job("j")["state"], "disabled")
        self.assertEqual(self.post("/jobs/j/disable", {"disableTasks": "wait"}).status, 202)
        r = self.post("/jobs/j/enable")
        self.assertEqual(r.status, 202)
        self.assertEqual(self.job("j")["state"], "enabling")
        self.assertEqual(self.post("/jobs/j/enable").headers["etag"], r.headers["etag"])     # a repeat
        self.assertError(self.post("/jobs/j/disable", {"disableTasks": "requeue"}), 409, "JobNotActive",
                         JobState="enabling")
        self.advance(3)
        j = self.job("j")
        self.assertEqual((j["state"], j["previousState"]), ("active", "enabling"))
        self.assertError(self.post("/jobs/j/enable"), 409, "OperationInvalidForCurrentState", JobState="active")
        stale = self.c.batch("POST", "/jobs/j/disable", body={"disableTasks": "requeue"},
                             headers=[("If-Match", "0x1")])
        self.assertError(stale, 412, "ConditionNotMet")

    def test_delete_and_its_repeats(self):
        self.post("/jobs", job_body("j"))
        r = self.c.batch("DELETE", "/jobs/j")
        self.assertEqual((r.status, r.body), (202, b""))
        self.assertEqual(self.job("j")["state"], "deleting")
        self.assertError(self.c.batch("DELETE", "/jobs/j"), 409, "JobBeingDeleted")
        self.assertError(self.post("/jobs", job_body("j")), 409, "JobBeingDeleted")
        self.assertError(self.post("/jobs/j/disable", {"disableTasks": "requeue"}), 409, "JobBeingDeleted")
        self.assertError(self.c.batch("PATCH", "/jobs/j", body={"priority": 1}), 409, "JobBeingDeleted")
        self.advance(3)
        self.assertError(self.c.batch("DELETE", "/jobs/j"), 404, "JobNotFound")
        self.assertEqual(self.post("/jobs", job_body("j")).status, 201)

    def test_writes_are_journaled(self):
        self.post("/jobs", job_body("j"))
        self.c.batch("PATCH", "/jobs/j", body={"priority": 2})
        self.post("/jobs/j/disable", {"disableTasks": "requeue"})
        self.c.batch("DELETE", "/jobs/j")
        self.post("/jobs", job_body("j"))                                  # refused: not journaled
        journal = self.emu.control("GET", "journal")[1]["value"]
        self.assertEqual([(e["method"], e["path"], e["status"]) for e in journal],
                         [("POST", "/jobs", 201), ("PATCH", "/jobs/j", 200), ("POST", "/jobs/j/disable", 202),
                          ("DELETE", "/jobs/j", 202)])

    def test_wrong_verbs(self):
        r = self.c.batch("HEAD", "/jobs/j")
        self.assertEqual(r.status, 405)
        self.assertIn("GET", r.headers["allow"])
        self.assertError(self.c.batch("GET", "/jobs/j/disable"), 405, "UnsupportedHttpVerb")


class JobHandoverTests(JobCase):
    """The dev world: pool workers-v1 (2 nodes, 2 slots each) running nightly-render (3 tasks,
    priority 100) and ingest (1 task); backfill (5 tasks) is disabled."""
    DEV_WORLD = True

    def test_the_world_starts_with_jobs_running_on_its_pool(self):
        jobs = {j["id"]: j for j in self.c.batch("GET", "/jobs").json["value"]}
        self.assertEqual({k: (j["state"], j["executionInfo"]["poolId"]) for k, j in jobs.items()},
                         {"nightly-render": ("active", "workers-v1"), "ingest": ("active", "workers-v1"),
                          "backfill": ("disabled", "workers-v1")})
        self.assertEqual(self.counts("nightly-render"), {"active": 0, "running": 3, "completed": 0, "succeeded": 0,
                                                         "failed": 0})
        self.assertEqual(self.counts("ingest")["running"], 1)
        self.assertEqual(self.counts("backfill"), {"active": 5, "running": 0, "completed": 0, "succeeded": 0,
                                                   "failed": 0})
        self.assertEqual(self.running_nodes("workers-v1"), [("running", 2), ("running", 2)])
        counts = self.c.batch("GET", "/nodecounts").json["value"][0]
        self.assertEqual((counts["poolId"], counts["dedicated"]["running"], counts["dedicated"]["idle"]),
                         ("workers-v1", 2, 0))
        pool = self.get("workers-v1")
        self.assertEqual((pool["allocationState"], pool["currentDedicatedNodes"]), ("steady", 2))

    def test_a_handover_moves_the_tasks_to_the_new_pool(self):
        token = self.bearer()
        green = T.pool_body("workers-v2", targetDedicatedNodes=2, taskSlotsPerNode=2)
        green["virtualMachineConfiguration"] = {"imageReference": {"virtualMachineImageId": T.GALLERY_IMAGE +
                                                                   "/versions/1.1.0"},
                                                "nodeAgentSKUId": "batch.node.ubuntu 22.04"}
        self.assertEqual(self.c.batch("POST", "/pools", body=green, auth=token).status, 201)
        self.advance(20)
        self.assertEqual(self.running_nodes("workers-v2"), [("idle", 0), ("idle", 0)])
        self.assertEqual(self.post("/jobs/nightly-render/disable", {"disableTasks": "requeue"}).status, 202)
        self.assertEqual(self.counts("nightly-render"), {"active": 3, "running": 0, "completed": 0, "succeeded": 0,
                                                         "failed": 0})
        self.advance(3)
        r = self.c.batch("PATCH", "/jobs/nightly-render", body={"poolInfo": {"poolId": "workers-v2"}})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.post("/jobs/nightly-render/enable").status, 202)
        self.advance(3)
        j = self.job("nightly-render")
        self.assertEqual((j["state"], j["executionInfo"]["poolId"], j["poolInfo"]["poolId"]),
                         ("active", "workers-v2", "workers-v2"))
        self.assertEqual(self.counts("nightly-render")["running"], 3)
        self.assertEqual(self.running_nodes("workers-v2"), [("running", 1), ("running", 2)])
        self.assertEqual(self.running_nodes("workers-v1"), [("idle", 0), ("running", 1)])      # ingest stays

    def test_terminate_fails_running_tasks_and_wait_lets_them_finish(self):
        self.post("/jobs/nightly-render/disable", {"disableTasks": "terminate"})
        self.assertEqual(self.counts("nightly-render"), {"active": 0, "running": 0, "completed": 3, "succeeded": 0,
                                                         "failed": 3})
        self.assertEqual(self.job("nightly-render", **{"$expand": "stats"})["stats"]["numFailedTasks"], "3")
        self.post("/jobs/ingest/disable", {"disableTasks": "wait"})
        self.advance(5)
        self.assertEqual((self.job("ingest")["state"], self.counts("ingest")["running"]), ("disabling", 1))
        self.advance(6)
        self.assertEqual(self.job("ingest")["state"], "disabled")
        self.assertEqual(self.counts("ingest"), {"active": 0, "running": 0, "completed": 1, "succeeded": 1,
                                                 "failed": 0})
        self.assertEqual(self.running_nodes("workers-v1"), [("idle", 0), ("idle", 0)])

    def test_priority_and_capacity_decide_what_runs(self):
        status, body = self.emu.control("POST", "jobs/backfill/tasks", {"count": 2})
        self.assertEqual((status, body), (200, {"jobId": "backfill", "tasks": 7}))
        self.post("/jobs/backfill/enable")
        self.advance(3)
        self.assertEqual(self.counts("backfill")["running"], 0)            # the pool is full
        self.post("/jobs/nightly-render/disable", {"disableTasks": "requeue"})
        self.assertEqual(self.counts("backfill")["running"], 3)            # its slots free up at once
        self.assertEqual(self.c.batch("POST", "/pools/workers-v1/resize", body={"targetDedicatedNodes": 4}).status,
                         202)
        self.advance(20)
        self.assertEqual(self.counts("backfill"), {"active": 0, "running": 7, "completed": 0, "succeeded": 0,
                                                   "failed": 0})
        self.c.batch("DELETE", "/pools/workers-v1")
        self.assertEqual(self.counts("backfill")["running"], 0)            # a deleting pool runs nothing
        self.assertEqual(self.emu.control("POST", "jobs/nope/tasks", {"count": 1})[0], 404)
        self.assertEqual(self.emu.control("POST", "jobs/backfill/tasks", {"count": 0})[0], 400)
        self.assertEqual(self.emu.control("POST", "jobs/backfill/tasks", {"count": 1, "account": "nope"})[0], 404)

    def test_reset_brings_the_world_back(self):
        self.c.batch("DELETE", "/jobs/ingest")
        self.c.batch("DELETE", "/pools/workers-v1")
        self.emu.control("POST", "reset")
        self.assertEqual(len(self.c.batch("GET", "/jobs").json["value"]), 3)
        self.assertEqual(self.get("workers-v1")["state"], "active")


class JobQuotaTests(JobCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        with open(T.WORLD_FILE) as f:
            w = json.load(f)
        w["accounts"][0]["activeJobAndJobScheduleQuota"] = 3
        cls.path = os.path.join(cls.tmp.name, "world.json")
        with open(cls.path, "w") as f:
            json.dump(w, f)
        cls.ARGS = ("--world", cls.path)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.tmp.cleanup()

    def test_active_job_quota(self):
        self.assertError(self.post("/jobs", job_body("fourth")), 409, "ActiveJobAndScheduleQuotaReached",
                         ActiveJobAndJobScheduleQuota="3")                  # the world's three count
        self.c.batch("DELETE", "/jobs/ingest")
        self.assertEqual(self.post("/jobs", job_body("fourth")).status, 201)


if __name__ == "__main__":
    unittest.main()
