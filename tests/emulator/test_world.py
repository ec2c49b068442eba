"""The world file: the dev world's fixtures the integration tests rely on, the
new sections' validation, relative dates, and pools and jobs at start.

    python3 -m unittest discover -s tests/emulator -v
"""

import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

import test_emulator as T
from azbatch_emulator import world as W  # noqa: E402
from azbatch_emulator.wire import parse_iso  # noqa: E402


def dev():
    with open(T.WORLD_FILE) as f:
        return json.load(f)


class DevWorldFixtureTests(unittest.TestCase):
    """What docs/emulator.md promises the dev world holds (the next issues' integration tests use it)."""

    def setUp(self):
        self.w = W.validate_world(dev())

    def gallery(self, name):
        return next(g for g in self.w["galleries"] if g["name"] == name)

    def test_subscriptions_accounts_and_storage(self):
        subs = {s["subscriptionId"]: s for s in self.w["subscriptions"]}
        self.assertEqual(set(subs), {T.SUB, "00000000-0000-0000-0000-000000000002"})
        dev_acct, usersub = self.w["accounts"]
        self.assertEqual((dev_acct["name"], dev_acct["region"], dev_acct["subscriptionId"], dev_acct["resourceGroup"]),
                         ("devbatch", "westeurope", T.SUB, T.RG))
        self.assertEqual((usersub["poolAllocationMode"], usersub["region"]), ("UserSubscription", "westeurope"))
        self.assertIn("keyVaultReference", usersub)
        stores = {s["name"]: s for s in self.w["storageAccounts"]}
        self.assertEqual(stores["azbatchdevstore"]["location"], "westeurope")
        self.assertEqual(stores["azbatchdevstorene"]["location"], "northeurope")
        states = {b["osState"] for b in stores["azbatchdevstore"]["blobs"]}
        self.assertEqual(states, {"Generalized", "Specialized"})
        self.assertEqual(self.gallery("othergallery")["subscriptionId"], "00000000-0000-0000-0000-000000000002")

    def test_definitions_and_versions(self):
        images = {im["name"]: im for im in self.gallery("devgallery")["images"]}
        p = lambda name: images[name]["properties"]
        self.assertEqual((p("ubuntu2204")["osType"], p("ubuntu2204")["osState"], p("ubuntu2204")["hyperVGeneration"]),
                         ("Linux", "Generalized", "V2"))
        self.assertEqual(p("ubuntu2204-specialized")["osState"], "Specialized")
        self.assertEqual(p("windows2022")["osType"], "Windows")
        self.assertEqual(p("ubuntu2004-gen1")["hyperVGeneration"], "V1")
        versions = {v["name"]: v["properties"]["publishingProfile"] for v in images["ubuntu2204"]["versions"]}
        self.assertTrue({"1.0.0", "1.1.0"} <= set(versions))
        self.assertTrue(versions["1.2.0"]["excludeFromLatest"])
        now = time.time()
        self.assertLess(parse_iso(versions["0.9.0"]["endOfLifeDate"]), now)
        self.assertLess(parse_iso(versions["1.0.1"]["endOfLifeDate"]), now + 90 * 86400)
        self.assertEqual(W.latest_gallery_version(images["ubuntu2204"])["name"], "1.1.0")
        regional = {v["name"]: v["properties"] for v in images["ubuntu2204-regional"]["versions"]}
        self.assertEqual([t["name"] for t in regional["2.0.0"]["publishingProfile"]["targetRegions"]], ["northeurope"])
        self.assertEqual(regional["2.1.0"]["replicationStatus"]["summary"][0]["state"], "Failed")
        self.assertEqual(regional["2.2.0"]["replicationStatus"]["summary"][0]["state"], "Replicating")

    def test_vm_sizes_supported_images_permissions_pools_and_jobs(self):
        self.assertEqual(W.vm_hyperv_generations(self.w, "standard_a1_v2"), ["V1"])
        self.assertEqual(W.vm_hyperv_generations(self.w, "Standard_D2s_v3"), ["V1", "V2"])
        self.assertEqual(W.vm_cores(self.w, "Standard_D8s_v5"), 8)
        eols = [parse_iso(i["batchSupportEndOfLife"]) for i in self.w["supportedImages"]
                if "batchSupportEndOfLife" in i]
        now = time.time()
        self.assertTrue(any(t < now for t in eols) and any(now < t < now + 90 * 86400 for t in eols))
        (perm,) = self.w["permissions"]
        self.assertEqual((perm["principal"], perm["deny"]), ("00000000-0000-0000-0000-0000000000c2", ["read"]))
        self.assertTrue(perm["scope"].endswith("/images/ubuntu2204"))
        self.assertEqual([p["id"] for p in self.w["pools"]], ["workers-v1"])
        self.assertEqual({j["poolInfo"]["poolId"] for j in self.w["jobs"]}, {"workers-v1"})


class WorldValidationTests(unittest.TestCase):
    def bad(self, change, expect):
        w = dev()
        change(w)
        with self.assertRaises(W.WorldError) as cm:
            W.validate_world(w)
        self.assertIn(expect, str(cm.exception))

    def test_bad_new_sections_name_the_field(self):
        self.bad(lambda w: w["vmSizes"].update(X={"cores": 2, "hyperVGenerations": "V3"}),
                 "world.vmSizes.X.hyperVGenerations")
        self.bad(lambda w: w["vmSizes"].update(X={"cores": 0}), "world.vmSizes.X.cores")
        self.bad(lambda w: w["vmSizes"].update(X={"cores": 2, "cpuArchitecture": "mips"}),
                 "world.vmSizes.X.cpuArchitecture")
        self.bad(lambda w: w["storageAccounts"].append(dict(w["storageAccounts"][0])), "duplicate storage account")
        self.bad(lambda w: w["storageAccounts"][0]["blobs"][0].update(osState="Sleepy"),
                 "world.storageAccounts[0].blobs[0].osState")
        self.bad(lambda w: w["permissions"][0].update(deny=["delete"]), "world.permissions[0].deny")
        self.bad(lambda w: w["permissions"][0].update(scope="devgallery"), "world.permissions[0].scope")
        self.bad(lambda w: w["pools"][0].update(account="nope"), "world.pools[0].account")
        self.bad(lambda w: w["jobs"][0].update(state="deleting"), "world.jobs[0].state")
        self.bad(lambda w: w["jobs"][0].update(taskCount=-1), "world.jobs[0].taskCount")
        self.bad(lambda w: w.update(nodeFailures=[{"image": "x", "unusable": 2}]), "world.nodeFailures")
        self.bad(lambda w: w["arm"].update(listPageSize=0), "world.arm.listPageSize")
        self.bad(lambda w: w["arm"].update(bogus=1), "world.arm.bogus")
        self.bad(lambda w: w["allocation"].update(bogus=1), "world.allocation.bogus")
        self.bad(lambda w: w["subscriptions"][1].update(principals="all"), "world.subscriptions[1].principals")
        self.bad(lambda w: w["galleries"][0]["images"][0]["versions"][0]["properties"]["replicationStatus"]
                 ["summary"][0].update(state="Done"), "replicationStatus.summary[0].state")
        self.bad(lambda w: w["accounts"][0].update(activeJobAndJobScheduleQuota=-1),
                 "world.accounts[0].activeJobAndJobScheduleQuota")

    def test_relative_dates_and_plain_core_counts(self):
        w = dev()
        w["vmSizes"] = {"Standard_X": 3}
        w["supportedImages"][0]["batchSupportEndOfLife"] = "now+2d"
        w["galleries"][0]["images"][0]["versions"][0]["properties"]["publishingProfile"]["endOfLifeDate"] = "now-12h"
        out = W.validate_world(w, now=1000000.0)
        self.assertEqual(out["supportedImages"][0]["batchSupportEndOfLife"], "1970-01-14T13:46:40.0000000Z")
        self.assertEqual(out["galleries"][0]["images"][0]["versions"][0]["properties"]["publishingProfile"]
                         ["endOfLifeDate"], "1970-01-12T01:46:40.0000000Z")
        self.assertEqual(out["vmSizes"]["Standard_X"]["cores"], 3)
        self.assertEqual(W.vm_hyperv_generations(out, "Standard_X"), ["V1", "V2"])
        subs = [s["subscriptionId"] for s in out["subscriptions"]]
        self.assertEqual(len(subs), len(set(subs)))


class WorldStartTests(unittest.TestCase):
    def run_world(self, w):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "w.json")
            with open(path, "w") as f:
                json.dump(w, f)
            return subprocess.run([sys.executable, T.SCRIPT, "--world", path], capture_output=True, text=True,
                                  timeout=20)

    def test_a_world_pool_or_job_the_service_would_refuse_stops_the_emulator(self):
        w = dev()
        w["pools"][0]["virtualMachineConfiguration"]["nodeAgentSKUId"] = "batch.node.windows amd64"
        r = self.run_world(w)
        self.assertEqual((r.returncode, r.stdout), (2, ""))
        self.assertIn("world.pools[0]: the service would refuse it: InvalidPropertyValue", r.stderr)
        self.assertIn("PropertyName=nodeAgentSKUId", r.stderr)
        w = dev()
        w["jobs"][0]["priority"] = 5000
        r = self.run_world(w)
        self.assertEqual(r.returncode, 2)
        self.assertIn("world.jobs[0]: the service would refuse it: OutOfRangePriority", r.stderr)

    def test_the_world_pool_is_steady_with_idle_nodes_an_hour_old(self):
        emu = T.Emulator(dev=True)
        try:
            c = T.Client(emu)
            p = c.batch("GET", "/pools/workers-v1").json
            self.assertEqual((p["state"], p["allocationState"], p["currentDedicatedNodes"]), ("active", "steady", 2))
            self.assertLess(parse_iso(p["creationTime"]), time.time() - 3000)
            self.assertEqual(p["virtualMachineConfiguration"]["imageReference"]["virtualMachineImageId"],
                             T.GALLERY_IMAGE + "/versions/1.0.0")
            for n in c.batch("GET", "/pools/workers-v1/nodes").json["value"]:
                ip = ipaddress.ip_address(n["ipAddress"])
                self.assertIn(ip, ipaddress.ip_network("198.18.0.0/15"))        # RFC 2544: never routed
                self.assertEqual(n["virtualMachineInfo"]["imageReference"]["exactVersion"], "1.0.0")
        finally:
            self.assertEqual(emu.stop(), 0)

    def test_the_account_flag_renames_the_world_pools_account_too(self):
        emu = T.Emulator("--account", "renamed", dev=True)
        try:
            r = T.Client(emu, "renamed", T.KEY).batch("GET", "/pools/workers-v1")
            self.assertEqual(r.status, 200, r.body)
        finally:
            self.assertEqual(emu.stop(), 0)

    def test_node_addresses_stay_unique_in_a_big_pool(self):
        emu = T.Emulator("--time-scale", "1000")
        try:
            c = T.Client(emu)
            body = T.pool_body("big", vmSize="Standard_A1_v2", targetDedicatedNodes=400)
            self.assertEqual(c.batch("POST", "/pools", body=body).status, 201)
            emu.control("POST", "clock", {"advance": 200})
            ips, link = [], "/pools/big/nodes?api-version=" + T.API
            while link:
                r = c.signed("GET", link)
                ips += [n["ipAddress"] for n in r.json["value"]]
                nxt = r.json.get("odata.nextLink")
                link = nxt[nxt.index("/pools"):] if nxt else None
            self.assertEqual((len(ips), len(set(ips))), (400, 400))
        finally:
            self.assertEqual(emu.stop(), 0)


if __name__ == "__main__":
    unittest.main()
