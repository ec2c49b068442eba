"""Nodes that fail on purpose: rules (world nodeFailures, POST /_emulator/failures)
that make a share of an image's nodes end unusable or starttaskfailed, drawn
deterministically from the seed.

    python3 -m unittest discover -s tests/emulator -v
"""

import json
import os
import tempfile
import unittest

import test_emulator as T

URN = "Canonical:0001-com-ubuntu-server-jammy:22_04-lts"
START_TASK = {"commandLine": "/bin/sh -c true"}


class FailureCase(T.EmulatorCase):
    ARGS = ("--seed", "42")

    def rule(self, **rule):
        status, body = self.emu.control("POST", "failures", rule)
        self.assertEqual(status, 200, body)
        return body

    def nodes(self, pool_id, n, **extra):
        self.create(pool_id, targetDedicatedNodes=n, **extra)
        self.advance(10 + n)
        r = self.c.batch("GET", "/pools/%s/nodes" % pool_id)
        self.assertEqual(r.status, 200)
        return sorted(r.json["value"], key=lambda x: x["allocationTime"])

    def states(self, nodes):
        return [n["state"] for n in nodes]


class FailureRuleTests(FailureCase):
    def test_unusable_nodes_carry_errors_and_show_in_node_counts(self):
        self.rule(image=URN, unusable=1)
        nodes = self.nodes("bad", 3)
        self.assertEqual(self.states(nodes), ["unusable"] * 3)
        (err,) = nodes[0]["errors"]
        self.assertEqual(set(err), {"code", "message", "errorDetails"})
        self.assertEqual(err["code"], "NodeAgentNotResponding")
        self.assertEqual(err["errorDetails"][0]["name"], "Reason")
        counts = self.c.batch("GET", "/nodecounts").json["value"][0]["dedicated"]
        self.assertEqual((counts["unusable"], counts["idle"], counts["total"]), (3, 0, 3))
        self.assertEqual(self.get("bad")["allocationState"], "steady")
        r = self.c.batch("GET", "/pools/bad/nodes", [("$filter", "state eq 'unusable'")])
        self.assertEqual(len(r.json["value"]), 3)
        r = self.c.batch("POST", "/pools/bad/removenodes", body={"nodeList": [nodes[0]["id"]]})
        self.assertEqual(r.status, 202, r.body)
        self.advance(5)
        self.assertEqual(self.get("bad")["currentDedicatedNodes"], 2)

    def test_a_start_task_that_fails(self):
        self.rule(image=URN, startTaskFailed=1, exitCode=3)
        nodes = self.nodes("stf", 2, startTask=START_TASK)
        self.assertEqual(self.states(nodes), ["starttaskfailed"] * 2)
        info = nodes[0]["startTaskInfo"]
        self.assertEqual((info["state"], info["exitCode"], info["result"], info["retryCount"]),
                         ("completed", 3, "failure", 0))
        self.assertEqual(info["failureInfo"], {"category": "usererror", "code": "FailureExitCode",
                                               "message": "The task process exited with an unexpected exit code",
                                               "details": [{"name": "Message", "value": "The task process exited "
                                                            "with an unexpected exit code"}]})
        self.assertEqual(self.c.batch("GET", "/nodecounts").json["value"][0]["dedicated"]["startTaskFailed"], 2)
        nowait = self.nodes("nowait", 1, startTask=dict(START_TASK, waitForSuccess=False))
        self.assertEqual(self.states(nowait), ["idle"])                   # the node is usable anyway
        self.assertEqual(nowait[0]["startTaskInfo"]["result"], "failure")
        none = self.nodes("nostarttask", 1)
        self.assertEqual(self.states(none), ["idle"])                     # no start task to fail
        ok = self.c.batch("GET", "/pools/nowait/nodes").json["value"][0]
        self.assertNotIn("errors", ok)

    def test_nodes_of_other_images_are_spared_and_healthy_ones_report_success(self):
        self.rule(image=T.GALLERY_IMAGE, unusable=1)
        nodes = self.nodes("market", 2, startTask=START_TASK)
        self.assertEqual(self.states(nodes), ["idle", "idle"])
        self.assertEqual(nodes[0]["startTaskInfo"]["result"], "success")
        self.assertEqual(nodes[0]["startTaskInfo"]["exitCode"], 0)

    def test_a_share_is_deterministic_with_the_seed(self):
        self.rule(image=URN, unusable=0.5)
        first = self.states(self.nodes("half", 20))
        self.assertTrue(3 <= first.count("unusable") <= 17, first)
        self.emu.control("POST", "reset")
        self.rule(image=URN, unusable=0.5)
        self.assertEqual(self.states(self.nodes("half", 20)), first)      # same seed, same pool: same nodes
        self.emu.control("POST", "reset")
        self.rule(image=URN, unusable=0.5)
        self.assertEqual(self.emu.control("POST", "failures", {"seed": 7})[1]["seed"], 7)
        self.assertNotEqual(self.states(self.nodes("half", 20)), first)

    def test_rules_match_versions_definitions_managed_images_and_urn_versions(self):
        token = self.bearer()
        def pool(pool_id, image):
            b = T.pool_body(pool_id, targetDedicatedNodes=1)
            b["virtualMachineConfiguration"]["imageReference"] = {"virtualMachineImageId": image}
            self.assertEqual(self.c.batch("POST", "/pools", body=b, auth=token).status, 201)
        self.rule(image=T.GALLERY_IMAGE.lower() + "/", unusable=1)        # case and a trailing slash do not matter
        self.rule(image=T.MANAGED_IMAGE, startTaskFailed=1)
        self.rule(image=URN + ":latest", unusable=1)
        pool("by-definition", T.GALLERY_IMAGE + "/versions/1.0.0")
        pool("managed", T.MANAGED_IMAGE)
        self.create("urn", targetDedicatedNodes=1)
        self.advance(10)
        state = lambda p: self.c.batch("GET", "/pools/%s/nodes" % p, auth=token).json["value"][0]["state"]
        self.assertEqual((state("by-definition"), state("managed"), state("urn")), ("unusable", "idle", "unusable"))
        rules = self.emu.control("GET", "failures")[1]["rules"]
        self.assertEqual(len(rules), 3)
        self.rule(image=URN + ":latest", unusable=0, startTaskFailed=0)   # both shares 0: the rule goes
        self.assertEqual(len(self.emu.control("GET", "failures")[1]["rules"]), 2)
        self.assertEqual(self.emu.control("POST", "failures", {"rules": []})[1]["rules"], [])

    def test_bad_rules_are_refused_and_change_nothing(self):
        for bad in ({"image": URN, "unusable": 1.5}, {"image": "", "unusable": 0.1}, {"unusable": 0.1},
                    {"image": URN, "unusable": 0.6, "startTaskFailed": 0.6}, {"image": URN, "typo": 1},
                    {"image": URN, "exitCode": 0, "startTaskFailed": 1}, {"image": URN, "errorDetails": "x"},
                    {"rules": [{"image": URN}, {"image": URN.lower()}]}, {"rules": "x"}, {"seed": "x"},
                    {"seed": 1, "image": URN}, {}):
            status, body = self.emu.control("POST", "failures", bad)
            self.assertEqual(status, 400, bad)
            self.assertTrue(body["error"])
        self.assertEqual(self.emu.control("GET", "failures")[1]["rules"], [])

    def test_a_custom_error_code_message_and_details(self):
        self.rule(image=URN, unusable=1, errorCode="DiskFull", errorMessage="The disk is full.",
                  errorDetails=[{"name": "Path", "value": "/mnt"}])
        (err,) = self.nodes("custom", 1)[0]["errors"]
        self.assertEqual(err, {"code": "DiskFull", "message": "The disk is full.",
                               "errorDetails": [{"name": "Path", "value": "/mnt"}]})


class SeedAcrossRunsTests(unittest.TestCase):
    def test_the_same_seed_fails_the_same_nodes_in_another_process(self):
        def run(seed):
            emu = T.Emulator("--seed", str(seed))
            try:
                emu.control("POST", "failures", {"image": URN, "unusable": 0.3, "startTaskFailed": 0.3})
                c = T.Client(emu)
                body = T.pool_body("p", targetDedicatedNodes=12, startTask=START_TASK)
                self.assertEqual(c.batch("POST", "/pools", body=body).status, 201)
                emu.control("POST", "clock", {"advance": 30})
                nodes = c.batch("GET", "/pools/p/nodes").json["value"]
                return [n["state"] for n in sorted(nodes, key=lambda n: n["allocationTime"])]
            finally:
                self.assertEqual(emu.stop(), 0)
        first = run(9)
        self.assertEqual(run(9), first)
        self.assertEqual(set(first), {"idle", "unusable", "starttaskfailed"}, first)


class WorldFailureTests(FailureCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        with open(T.bare_world_file()) as f:
            w = json.load(f)
        w["nodeFailures"] = [{"image": URN, "unusable": 1}]
        cls.path = os.path.join(cls.tmp.name, "world.json")
        with open(cls.path, "w") as f:
            json.dump(w, f)
        cls.ARGS = ("--world", cls.path, "--seed", "1")
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.tmp.cleanup()

    def test_the_world_holds_rules_and_reset_restores_them(self):
        self.assertEqual(self.states(self.nodes("w", 1)), ["unusable"])
        self.emu.control("POST", "failures", {"rules": []})
        self.emu.control("POST", "reset")
        self.assertEqual(self.emu.control("GET", "failures")[1], {"rules": [{"image": URN, "unusable": 1.0,
                                                                             "startTaskFailed": 0.0}], "seed": 1})


if __name__ == "__main__":
    unittest.main()
