"""The emulator's ARM (management plane): reads in ARM's shapes, the principals'
permissions, and writes as long-running operations on the simulated clock.

    python3 -m unittest discover -s tests/emulator -v
"""

import json
import os
import tempfile
import time
import unittest

import test_emulator as T
from azbatch_emulator.wire import parse_iso  # noqa: E402  (test_emulator put scripts/ on sys.path)

SUB2 = "00000000-0000-0000-0000-000000000002"
RESTRICTED = "00000000-0000-0000-0000-0000000000c2"
RESTRICTED_SECRET = "dev-restricted-secret"
RG_PATH = "/subscriptions/%s/resourceGroups/%s" % (T.SUB, T.RG)
DEF = T.GALLERY + "/images/ubuntu2204"
REGIONAL = T.GALLERY + "/images/ubuntu2204-regional"
GALLERY_API = "2025-03-03"


class ArmCase(T.EmulatorCase):
    def setUp(self):
        super().setUp()
        self.token = self.bearer(T.ARM_SCOPE)

    def get(self, path, api=GALLERY_API, token=None, **kw):
        return self.c.arm("GET", path, token or self.token, api=api, **kw)

    def ok(self, resp):
        self.assertEqual(resp.status, 200, resp.body)
        self.assertRegex(resp.headers["x-ms-request-id"], r"^[0-9a-f-]{36}$")
        return resp.json

    def arm_error(self, resp, status, code, target=None):
        self.assertEqual(resp.status, status, resp.body)
        err = resp.json["error"]
        self.assertEqual(err["code"], code, resp.body)
        self.assertTrue(err["message"])
        self.assertIsInstance(err["details"], list)
        if target is not None:
            self.assertEqual(err.get("target"), target)
        return err

    def follow(self, url, token=None):
        auth = [("Authorization", "Bearer " + (token or self.token))]
        return self.c.send("GET", url[url.index("/subscriptions"):], auth)

    def restricted_token(self, scope=T.ARM_SCOPE):
        r = self.c.token(scope=scope, client_id=RESTRICTED, secret=RESTRICTED_SECRET)
        self.assertEqual(r.status, 200, r.body)
        return r.json["access_token"]

    def put(self, path, body, api=GALLERY_API, method="PUT"):
        return self.c.arm(method, path, self.token, api=api, body=body)

    def operation(self, resp):
        self.assertEqual(resp.headers["retry-after"], "1")
        self.assertIn("?api-version=", resp.headers["location"])
        return lambda: self.ok(self.follow(resp.headers["azure-asyncoperation"]))


class ArmReadTests(ArmCase):
    def test_subscriptions_the_principal_can_see(self):
        body = self.ok(self.get("/subscriptions", api="2022-12-01"))
        self.assertEqual([s["subscriptionId"] for s in body["value"]], [T.SUB, SUB2])
        self.assertEqual(body["count"], {"type": "Total", "value": 2})
        first = body["value"][0]
        self.assertEqual((first["id"], first["tenantId"], first["state"], first["displayName"]),
                         ("/subscriptions/" + T.SUB, T.TENANT, "Enabled", "azbatch-dev"))
        restricted = self.restricted_token()
        body = self.ok(self.get("/subscriptions", api="2022-12-01", token=restricted))
        self.assertEqual([s["subscriptionId"] for s in body["value"]], [T.SUB])
        self.assertEqual(self.ok(self.get("/subscriptions/" + SUB2, api="2022-12-01"))["displayName"],
                         "azbatch-other")
        err = self.arm_error(self.get("/subscriptions/" + SUB2, api="2022-12-01", token=restricted), 403,
                             "AuthorizationFailed")
        self.assertIn("'/subscriptions/%s'" % SUB2, err["message"])
        self.arm_error(self.get("/subscriptions/11111111-0000-0000-0000-000000000000", api="2022-12-01"), 404,
                       "SubscriptionNotFound")
        self.arm_error(self.get("/subscriptions", api=None), 400, "MissingApiVersionParameter")
        self.arm_error(self.get("/subscriptions", api="2025-03-03"), 400, "NoRegisteredProviderFound")

    def test_batch_accounts_by_subscription_and_resource_group(self):
        path = "/subscriptions/%s/providers/Microsoft.Batch/batchAccounts" % T.SUB
        body = self.ok(self.get(path, api="2025-06-01"))
        self.assertEqual([a["name"] for a in body["value"]], ["devbatch", "devbatchusersub"])
        dev, usersub = body["value"]
        self.assertEqual(dev["id"], T.BATCH_ACCOUNT)
        props = dev["properties"]
        self.assertEqual(props["accountEndpoint"], "devbatch.westeurope.batch.azure.com")
        self.assertEqual((props["poolAllocationMode"], props["dedicatedCoreQuota"], props["lowPriorityCoreQuota"],
                          props["poolQuota"], props["activeJobAndJobScheduleQuota"],
                          props["dedicatedCoreQuotaPerVMFamilyEnforced"]), ("BatchService", 500, 100, 100, 300, False))
        self.assertIn({"name": "standardDSv3Family", "coreQuota": 200}, props["dedicatedCoreQuotaPerVMFamily"])
        self.assertTrue(props["autoStorage"]["storageAccountId"].endswith("/storageAccounts/azbatchdevstore"))
        self.assertRegex(props["autoStorage"]["lastKeySync"], r"^\d{4}-\d\d-\d\dT")
        uprops = usersub["properties"]
        self.assertEqual(uprops["poolAllocationMode"], "UserSubscription")
        for absent in ("dedicatedCoreQuota", "lowPriorityCoreQuota", "dedicatedCoreQuotaPerVMFamily", "autoStorage"):
            self.assertNotIn(absent, uprops)             # "quota is managed on the subscription"
        self.assertTrue(uprops["keyVaultReference"]["url"].startswith("https://"))
        self.assertNotIn("SharedKey", uprops["allowedAuthenticationModes"])
        rg = self.ok(self.get(RG_PATH + "/providers/Microsoft.Batch/batchAccounts", api="2025-06-01"))
        self.assertEqual(len(rg["value"]), 2)
        other = "/subscriptions/%s/providers/Microsoft.Batch/batchAccounts" % SUB2
        self.assertEqual(self.ok(self.get(other, api="2025-06-01"))["value"], [])
        self.arm_error(self.get(RG_PATH + "/providers/Microsoft.Batch/batchAccounts/nope", api="2025-06-01"), 404,
                       "ResourceNotFound")

    def test_gallery_and_definitions_page_by_next_link(self):
        g = self.ok(self.get(T.GALLERY))
        self.assertEqual((g["name"], g["type"], g["location"], g["properties"]["provisioningState"]),
                         ("devgallery", "Microsoft.Compute/galleries", "westeurope", "Succeeded"))
        self.assertEqual(g["properties"]["identifier"]["uniqueName"], T.SUB + "-DEVGALLERY")
        first = self.ok(self.get(T.GALLERY + "/images"))
        self.assertEqual(len(first["value"]), 4)                          # the dev world's listPageSize
        second = self.ok(self.follow(first["nextLink"]))
        self.assertNotIn("nextLink", second)
        names = [d["name"] for d in first["value"] + second["value"]]
        self.assertEqual(sorted(names), ["ubuntu2004-gen1", "ubuntu2204", "ubuntu2204-regional",
                                         "ubuntu2204-specialized", "windows2022"])
        by_name = {d["name"]: d["properties"] for d in first["value"] + second["value"]}
        self.assertEqual((by_name["ubuntu2204-specialized"]["osState"], by_name["windows2022"]["osType"],
                          by_name["ubuntu2004-gen1"]["hyperVGeneration"]), ("Specialized", "Windows", "V1"))
        bogus = first["nextLink"].split("$skiptoken=")[0] + "$skiptoken=%25%25"
        self.arm_error(self.follow(bogus), 400, "InvalidParameter", target="$skiptoken")

    def test_version_fields_and_replication_status(self):
        v = self.ok(self.get(DEF + "/versions/1.0.0"))
        pub = v["properties"]["publishingProfile"]
        regions = [(t["name"], t["regionalReplicaCount"], t["storageAccountType"]) for t in pub["targetRegions"]]
        self.assertEqual(regions,
                         [("westeurope", 2, "Standard_LRS"), ("northeurope", 1, "Standard_LRS")])
        self.assertEqual((pub["replicaCount"], pub["excludeFromLatest"], pub["publishedDate"]),
                         (1, False, "2025-01-15T10:00:00.0000000Z"))
        self.assertEqual(v["properties"]["storageProfile"]["source"]["id"], T.MANAGED_IMAGE)
        self.assertEqual(v["tags"]["azbatch.version"], "1.0.0")
        self.assertNotIn("replicationStatus", v["properties"])
        excluded = self.ok(self.get(DEF + "/versions/1.2.0"))["properties"]["publishingProfile"]
        self.assertTrue(excluded["excludeFromLatest"])
        now = time.time()
        eol_past = self.ok(self.get(DEF + "/versions/0.9.0"))["properties"]["publishingProfile"]["endOfLifeDate"]
        eol_soon = self.ok(self.get(DEF + "/versions/1.0.1"))["properties"]["publishingProfile"]["endOfLifeDate"]
        self.assertLess(parse_iso(eol_past), now)                        # "now-30d" in the world file
        self.assertTrue(now < parse_iso(eol_soon) < now + 90 * 86400)    # "now+45d"
        def status(ver):
            expanded = self.get(REGIONAL + "/versions/" + ver, query=[("$expand", "ReplicationStatus")])
            return self.ok(expanded)["properties"]["replicationStatus"]
        s = status("2.1.0")
        self.assertEqual(s["aggregatedState"], "Failed")
        self.assertEqual(s["summary"][0], {"region": "westeurope", "state": "Failed",
                                           "details": "Failed with internal server error.", "progress": 0})
        s = status("2.2.0")
        self.assertEqual((s["aggregatedState"], s["summary"][0]["state"], s["summary"][0]["progress"]),
                         ("InProgress", "Replicating", 40))
        self.assertEqual(status("2.0.0")["summary"], [{"region": "northeurope", "state": "Completed", "details": "",
                                                       "progress": 100}])
        self.arm_error(self.get(DEF + "/versions/1.0.0", query=[("$expand", "bogus")]), 400, "InvalidParameter")

    def test_managed_images_and_storage_accounts(self):
        img = self.ok(self.get(T.MANAGED_IMAGE, api="2024-07-01"))
        self.assertEqual(img["properties"]["hyperVGeneration"], "V2")
        path = RG_PATH + "/providers/Microsoft.Storage/storageAccounts/azbatchdevstore"
        sa = self.ok(self.get(path, api="2023-05-01"))
        self.assertEqual((sa["location"], sa["kind"], sa["sku"]["name"], sa["properties"]["primaryEndpoints"]["blob"]),
                         ("westeurope", "StorageV2", "Standard_LRS", "https://azbatchdevstore.blob.core.windows.net/"))
        listed = self.ok(self.get("/subscriptions/%s/providers/Microsoft.Storage/storageAccounts" % T.SUB,
                                  api="2023-05-01"))
        self.assertEqual({(s["name"], s["location"]) for s in listed["value"]},
                         {("azbatchdevstore", "westeurope"), ("azbatchdevstorene", "northeurope")})
        by_rg = self.ok(self.get(RG_PATH + "/providers/Microsoft.Storage/storageAccounts", api="2023-05-01"))
        self.assertEqual(len(by_rg["value"]), 2)
        other_rg = "/subscriptions/%s/resourceGroups/azbatch-other/providers/Microsoft.Storage/storageAccounts" % SUB2
        self.assertEqual([s["name"] for s in self.ok(self.get(other_rg, api="2023-05-01"))["value"]],
                         ["azbatchotherstore"])
        self.arm_error(self.get(path.replace("azbatchdevstore", "nostore"), api="2023-05-01"), 404, "ResourceNotFound")
        self.arm_error(self.get(path, api="2025-03-03"), 400, "NoRegisteredProviderFound")

    def test_resource_skus_with_a_location_filter(self):
        path = "/subscriptions/%s/providers/Microsoft.Compute/skus" % T.SUB
        body = self.ok(self.get(path, api="2021-07-01", query=[("$filter", "location eq 'westeurope'")]))
        skus = {s["name"]: s for s in body["value"]}
        caps = lambda name: {c["name"]: c["value"] for c in skus[name]["capabilities"]}
        self.assertEqual(skus["Standard_D2s_v3"]["resourceType"], "virtualMachines")
        self.assertEqual(skus["Standard_D2s_v3"]["locations"], ["westeurope"])
        self.assertEqual(skus["Standard_D2s_v3"]["family"], "standardDSv3Family")
        self.assertEqual((caps("Standard_D2s_v3")["vCPUs"], caps("Standard_D2s_v3")["HyperVGenerations"],
                          caps("Standard_D2s_v3")["MemoryGB"], caps("Standard_D2s_v3")["CpuArchitectureType"]),
                         ("2", "V1,V2", "8", "x64"))
        self.assertEqual(caps("Standard_A1_v2")["HyperVGenerations"], "V1")
        self.assertEqual(caps("Standard_D2ps_v5")["CpuArchitectureType"], "Arm64")
        none = self.ok(self.get(path, api="2021-07-01", query=[("$filter", "location eq 'japaneast'")]))
        self.assertEqual(none["value"], [])
        self.arm_error(self.get(path, api="2021-07-01", query=[("$filter", "name eq 'x'")]), 400, "InvalidParameter")
        self.arm_error(self.get(path, api="2025-03-03"), 400, "NoRegisteredProviderFound")

    def test_a_principal_denied_read_on_a_definition(self):
        restricted = self.restricted_token()
        action = "Microsoft.Compute/galleries/images/versions/read"
        for path, act, scope in ((DEF, "Microsoft.Compute/galleries/images/read", DEF),
                                 (DEF + "/versions", action, DEF),
                                 (DEF + "/versions/1.0.0", action, DEF + "/versions/1.0.0"),
                                 (DEF + "/versions/9.9.9", action, DEF + "/versions/9.9.9")):
            err = self.arm_error(self.get(path, token=restricted), 403, "AuthorizationFailed")
            self.assertEqual(err["message"], "The client '%s' with object id '%s' does not have authorization to "
                             "perform action '%s' over scope '%s' or the scope is invalid. If access was recently "
                             "granted, please refresh your credentials." % (RESTRICTED, RESTRICTED, act, scope))
        self.ok(self.get(T.GALLERY, token=restricted))                   # the rest of the gallery is readable
        self.ok(self.get(REGIONAL + "/versions/2.0.0", token=restricted))
        self.ok(self.get(DEF + "/versions/1.0.0"))                       # and the dev principal reads it all

    def test_segments_match_case_insensitively(self):
        path = DEF.replace("resourceGroups", "RESOURCEGROUPS").replace("Microsoft.Compute", "microsoft.compute") \
            .replace("/galleries/", "/Galleries/").replace("/images/", "/IMAGES/")
        self.assertEqual(self.ok(self.get(path))["name"], "ubuntu2204")
        self.arm_error(self.get(RG_PATH + "/providers/Microsoft.Compute/widgets/x"), 404, "InvalidResourceType")


class ArmWriteTests(ArmCase):
    DEF_BODY = {"location": "westeurope", "properties": {
        "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
        "identifier": {"publisher": "azbatch", "offer": "new", "sku": "1"},
        "features": [{"name": "SecurityType", "value": "TrustedLaunchSupported"}]}}

    def version_body(self, regions, source=T.MANAGED_IMAGE, **pub):
        pub = dict(pub, targetRegions=regions)
        return {"location": "westeurope", "tags": {"azbatch.version": "new"},
                "properties": {"publishingProfile": pub, "storageProfile": {"source": {"id": source}}}}

    def test_definition_put_is_a_long_running_operation(self):
        path = T.GALLERY + "/images/new-def"
        r = self.put(path, self.DEF_BODY)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json["properties"]["provisioningState"], "Creating")
        self.assertIn("/providers/Microsoft.Compute/locations/westeurope/capsOperations/",
                      r.headers["azure-asyncoperation"])
        poll = self.operation(r)
        self.assertEqual(poll()["status"], "InProgress")
        self.assertEqual(self.ok(self.get(path))["properties"]["provisioningState"], "Creating")
        self.advance(11)
        done = poll()
        self.assertEqual(done["status"], "Succeeded")
        self.assertIn("endTime", done)
        self.assertEqual(self.ok(self.get(path))["properties"]["provisioningState"], "Succeeded")
        again = self.put(path, self.DEF_BODY)
        self.assertEqual((again.status, again.json["properties"]["provisioningState"]), (200, "Updating"))
        changed = json.loads(json.dumps(self.DEF_BODY))
        changed["properties"]["osType"] = "Windows"
        self.arm_error(self.put(path, changed), 409, "PropertyChangeNotAllowed",
                       target="galleryImage.properties.osType")
        self.ok(self.get(T.GALLERY + "/images/new-def/versions"))

    def test_definition_put_validation(self):
        path = T.GALLERY + "/images/bad-def"
        body = lambda **props: {"location": "westeurope", "properties": dict(self.DEF_BODY["properties"], **props)}
        self.arm_error(self.put(path, {"properties": self.DEF_BODY["properties"]}), 400, "LocationRequired")
        self.arm_error(self.put(path, dict(self.DEF_BODY, location="eastus")), 400, "InvalidParameter")
        self.arm_error(self.put(path, body(osType=None)), 400, "InvalidParameter",
                       target="galleryImage.properties.osType")
        self.arm_error(self.put(path, body(osState="Sleepy")), 400, "InvalidParameter",
                       target="galleryImage.properties.osState")
        self.arm_error(self.put(path, body(hyperVGeneration="V3")), 400, "InvalidParameter")
        self.arm_error(self.put(path, body(identifier={"publisher": "p", "offer": "o"})), 400, "InvalidParameter",
                       target="galleryImage.properties.identifier.sku")
        self.arm_error(self.put(path, body(features="x")), 400, "InvalidParameter")
        self.arm_error(self.put(T.GALLERY.replace("devgallery", "nogallery") + "/images/x", self.DEF_BODY), 404,
                       "ParentResourceNotFound")
        self.arm_error(self.c.arm("PUT", path, self.token, api=GALLERY_API, body=[1]), 400, "InvalidRequestContent")
        self.arm_error(self.get(path), 404, "GalleryImageNotFound")

    def test_version_put_replicates_per_region_on_the_clock(self):
        path = DEF + "/versions/2.0.0"
        r = self.put(path, self.version_body([{"name": "West Europe", "regionalReplicaCount": 2},
                                              {"name": "northeurope"}], replicaCount=1, excludeFromLatest=True,
                                             endOfLifeDate="2030-01-01T00:00:00Z"))
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json["properties"]["provisioningState"], "Creating")
        self.assertEqual(r.json["tags"], {"azbatch.version": "new"})
        poll = self.operation(r)
        status = lambda: self.ok(self.get(path, query=[("$expand", "ReplicationStatus")]))["properties"]
        p = status()
        self.assertEqual(p["replicationStatus"]["aggregatedState"], "InProgress")
        self.assertEqual([(s["region"], s["state"], s["progress"]) for s in p["replicationStatus"]["summary"]],
                         [("westeurope", "Replicating", 0), ("northeurope", "Replicating", 0)])
        self.advance(30)                                    # 30 s a replica: northeurope done, westeurope halfway
        p = status()
        self.assertEqual([(s["region"], s["state"], s["progress"]) for s in p["replicationStatus"]["summary"]],
                         [("westeurope", "Replicating", 50), ("northeurope", "Completed", 100)])
        self.assertEqual((p["provisioningState"], poll()["status"]), ("Creating", "InProgress"))
        self.advance(31)
        p = status()
        self.assertEqual((p["replicationStatus"]["aggregatedState"], p["provisioningState"], poll()["status"]),
                         ("Completed", "Succeeded", "Succeeded"))
        pub = p["publishingProfile"]
        self.assertEqual((pub["excludeFromLatest"], pub["endOfLifeDate"]), (True, "2030-01-01T00:00:00Z"))
        self.assertRegex(pub["publishedDate"], r"^\d{4}-\d\d-\d\dT")
        # a version as the source of another
        copy_path = DEF + "/versions/2.0.1"
        r = self.put(copy_path, self.version_body([{"name": "westeurope"}], source=T.GALLERY_IMAGE + "/versions/1.1.0"))
        self.assertEqual(r.status, 201, r.body)

    def test_patch_raises_a_replica_count_and_adds_a_region(self):
        path = DEF + "/versions/1.1.0"
        r = self.put(path, {"properties": {"publishingProfile": {"targetRegions": [
            {"name": "westeurope", "regionalReplicaCount": 4}, {"name": "northeurope", "regionalReplicaCount": 1},
            {"name": "eastus", "regionalReplicaCount": 1}]}}}, method="PATCH")
        self.assertEqual((r.status, r.json["properties"]["provisioningState"]), (200, "Updating"), r.body)
        poll = self.operation(r)
        summary = lambda: {s["region"]: (s["state"], s["progress"]) for s in self.ok(self.get(
            path, query=[("$expand", "ReplicationStatus")]))["properties"]["replicationStatus"]["summary"]}
        self.assertEqual(summary(), {"westeurope": ("Replicating", 0), "northeurope": ("Completed", 100),
                                     "eastus": ("Replicating", 0)})
        self.advance(30)
        self.assertEqual(summary(), {"westeurope": ("Replicating", 50), "northeurope": ("Completed", 100),
                                     "eastus": ("Completed", 100)})
        self.advance(31)
        self.assertEqual(set(summary().values()), {("Completed", 100)})
        self.assertEqual(poll()["status"], "Succeeded")
        regions = self.ok(self.get(path))["properties"]["publishingProfile"]["targetRegions"]
        self.assertEqual([(t["name"], t["regionalReplicaCount"]) for t in regions],
                         [("westeurope", 4), ("northeurope", 1), ("eastus", 1)])
        self.arm_error(self.put(DEF + "/versions/9.9.9", {"properties": {}}, method="PATCH"), 404, "ResourceNotFound")

    def test_replication_to_a_failing_region_fails_the_operation(self):
        path = DEF + "/versions/1.0.0"
        r = self.put(path, {"properties": {"publishingProfile": {"targetRegions": [
            {"name": "westeurope", "regionalReplicaCount": 2}, {"name": "southcentralus"}]}}}, method="PATCH")
        self.assertEqual(r.status, 200, r.body)
        poll = self.operation(r)
        self.advance(31)
        op = poll()
        self.assertEqual(op["status"], "Failed")
        self.assertEqual(op["error"]["code"], "GalleryReplicationFailed")
        self.assertIn("{region:southcentralus, detail:Failed with internal server error.}", op["error"]["message"])
        p = self.ok(self.get(path, query=[("$expand", "ReplicationStatus")]))["properties"]
        self.assertEqual((p["provisioningState"], p["replicationStatus"]["aggregatedState"]), ("Failed", "Failed"))

    def test_version_put_validation(self):
        ok = [{"name": "westeurope"}]
        self.arm_error(self.put(DEF + "/versions/one", self.version_body(ok)), 400, "InvalidParameter",
                       target="galleryImageVersionName")
        self.arm_error(self.put(DEF + "/versions/3.0.0", self.version_body(ok, source=T.MANAGED_IMAGE + "x")), 400,
                       "InvalidParameter", target="galleryImageVersion.properties.storageProfile.source.id")
        self.arm_error(self.put(DEF + "/versions/3.0.0", self.version_body(
            [{"name": "westeurope", "regionalReplicaCount": 0}])), 400, "InvalidParameter")
        self.arm_error(self.put(DEF + "/versions/3.0.0", self.version_body([{"name": "westeurope"}] * 2)), 400,
                       "InvalidParameter")
        body = self.version_body(ok)
        del body["properties"]["storageProfile"]
        self.arm_error(self.put(DEF + "/versions/3.0.0", body), 400, "InvalidParameter")
        windows = T.GALLERY + "/images/windows2022/versions/2.0.0"
        err = self.arm_error(self.put(windows, self.version_body(ok)), 400, "InvalidParameter")
        self.assertIn("OS type", err["message"])
        gen1 = T.GALLERY + "/images/ubuntu2004-gen1/versions/2.0.0"
        err = self.arm_error(self.put(gen1, self.version_body(ok)), 400, "InvalidParameter")
        self.assertIn("Hyper-V", err["message"])
        other_source = self.version_body(ok, source=T.GALLERY_IMAGE + "/versions/1.1.0")
        self.arm_error(self.put(DEF + "/versions/1.0.0", other_source), 409, "PropertyChangeNotAllowed")
        self.arm_error(self.put(T.GALLERY + "/images/nodef/versions/1.0.0", self.version_body(ok)), 404,
                       "ParentResourceNotFound")

    def test_a_source_in_another_region_is_refused(self):
        ne = T.MANAGED_IMAGE.replace("ubuntu-managed", "ne-image")
        r = self.put(ne, {"location": "northeurope", "properties": {"hyperVGeneration": "V2", "storageProfile": {
            "osDisk": {"osType": "Linux", "osState": "Generalized",
                       "blobUri": "https://azbatchdevstorene.blob.core.windows.net/vhds/ubuntu-2204.vhd"}}}},
                     api="2024-07-01")
        self.assertEqual(r.status, 201, r.body)
        self.assertIn("/locations/northeurope/operations/", r.headers["azure-asyncoperation"])
        body = self.version_body([{"name": "westeurope"}], source=ne)
        err = self.arm_error(self.put(DEF + "/versions/3.0.0", body), 400, "InvalidParameter")
        self.assertIn("'Creating'", err["message"])                     # not provisioned yet
        self.advance(21)
        err = self.arm_error(self.put(DEF + "/versions/3.0.0", body), 400, "InvalidParameter")
        self.assertIn("region 'northeurope'", err["message"])

    def test_managed_image_from_a_vhd_checks_the_blob(self):
        path = T.MANAGED_IMAGE.replace("ubuntu-managed", "from-blob")
        def put(blob, location="westeurope"):
            return self.put(path, {"location": location, "properties": {"hyperVGeneration": "V2", "storageProfile": {
                "osDisk": {"osType": "Linux", "osState": "Generalized", "blobUri": blob}}}}, api="2024-07-01")
        err = self.arm_error(put("https://nosuchstore.blob.core.windows.net/vhds/x.vhd"), 400, "InvalidParameter",
                             target="disks")
        self.assertEqual(err["message"], "The source blob https://nosuchstore.blob.core.windows.net/vhds/x.vhd is "
                                         "not accessible.")
        self.arm_error(put("https://azbatchdevstore.blob.core.windows.net/vhds/missing.vhd"), 400, "InvalidParameter",
                       target="disks")
        err = self.arm_error(put("https://azbatchotherstore.blob.core.windows.net/vhds/ubuntu-2204.vhd"), 400,
                             "InvalidParameter", target="osDisk.blobUri")
        self.assertIn(SUB2, err["message"])
        err = self.arm_error(put("https://azbatchdevstorene.blob.core.windows.net/vhds/ubuntu-2204.vhd"), 400,
                             "BadRequest")
        self.assertIn("does not belong to the same region", err["message"])
        self.arm_error(put("https://azbatchdevstore.blob.core.windows.net/vhds/ubuntu-2204.vhd", "northeurope"), 400,
                       "BadRequest")
        self.assertEqual(put("https://azbatchdevstore.blob.core.windows.net/vhds/ubuntu-2204.vhd").status, 201)

    def test_writes_are_journaled_and_unknown_operations_are_404(self):
        r = self.put(T.GALLERY + "/images/journaled", self.DEF_BODY)
        self.assertEqual(r.status, 201)
        journal = self.emu.control("GET", "journal")[1]["value"]
        self.assertEqual([(e["method"], e["status"]) for e in journal if e["path"].endswith("/images/journaled")],
                         [("PUT", 201)])
        url = r.headers["azure-asyncoperation"]
        missing = url.split("/capsOperations/")[0] + "/capsOperations/00000000-0000-0000-0000-000000000000?" + \
            url.split("?")[1]
        self.arm_error(self.follow(missing), 404, "ResourceNotFound")


class ArmPageSizeTests(ArmCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        with open(T.WORLD_FILE) as f:
            w = json.load(f)
        w["arm"]["listPageSize"] = 1
        cls.path = os.path.join(cls.tmp.name, "world.json")
        with open(cls.path, "w") as f:
            json.dump(w, f)
        cls.ARGS = ("--world", cls.path)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.tmp.cleanup()

    def test_every_arm_list_pages(self):
        for path, api in (("/subscriptions", "2022-12-01"),
                          ("/subscriptions/%s/providers/Microsoft.Batch/batchAccounts" % T.SUB, "2025-06-01"),
                          ("/subscriptions/%s/providers/Microsoft.Storage/storageAccounts" % T.SUB, "2023-05-01"),
                          (DEF + "/versions", GALLERY_API)):
            body = self.ok(self.get(path, api=api))
            names = [item.get("name", item.get("subscriptionId")) for item in body["value"]]
            while "nextLink" in body:
                self.assertIn("api-version=" + api, body["nextLink"])
                body = self.ok(self.follow(body["nextLink"]))
                self.assertEqual(len(body["value"]), 1)
                names += [item.get("name", item.get("subscriptionId")) for item in body["value"]]
            self.assertGreaterEqual(len(names), 2, path)
            self.assertEqual(len(names), len(set(names)), path)


class ArmPermissionWorldTests(ArmCase):
    """A world where the restricted principal may not write the gallery nor read a managed image."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        with open(T.bare_world_file()) as f:
            w = json.load(f)
        w["permissions"] = [{"principal": RESTRICTED, "deny": ["write"], "scope": T.GALLERY},
                            {"principal": RESTRICTED, "deny": ["read"], "scope": T.MANAGED_IMAGE}]
        cls.path = os.path.join(cls.tmp.name, "world.json")
        with open(cls.path, "w") as f:
            json.dump(w, f)
        cls.ARGS = ("--world", cls.path)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.tmp.cleanup()

    def test_denied_writes_and_a_denied_managed_image(self):
        restricted = self.restricted_token()
        body = ArmWriteTests.DEF_BODY
        err = self.arm_error(self.c.arm("PUT", T.GALLERY + "/images/x", restricted, body=body), 403,
                             "AuthorizationFailed")
        self.assertIn("'Microsoft.Compute/galleries/images/write' over scope '%s/images/x'" % T.GALLERY,
                      err["message"])
        patch = {"properties": {"publishingProfile": {"targetRegions": [{"name": "westeurope"}]}}}
        err = self.arm_error(self.c.arm("PATCH", DEF + "/versions/1.0.0", restricted, body=patch), 403,
                             "AuthorizationFailed")
        self.assertIn("'Microsoft.Compute/galleries/images/versions/write'", err["message"])
        self.ok(self.get(DEF + "/versions/1.0.0", token=restricted))      # reading is still allowed
        err = self.arm_error(self.get(T.MANAGED_IMAGE, api="2024-07-01", token=restricted), 403,
                             "AuthorizationFailed")
        self.assertIn("'Microsoft.Compute/images/read'", err["message"])
        self.assertEqual(self.c.arm("PUT", T.GALLERY + "/images/x", self.token, body=body).status, 201)
        batch = self.c.token(client_id=RESTRICTED, secret=RESTRICTED_SECRET).json["access_token"]
        pool = T.pool_body("managed")
        pool["virtualMachineConfiguration"]["imageReference"] = {"virtualMachineImageId": T.MANAGED_IMAGE}
        r = self.c.batch("POST", "/pools", body=pool, auth=batch)
        self.assertError(r, 403, "LinkedAuthorizationFailed", LinkedAction="Microsoft.Compute/images/read",
                         LinkedScope=T.MANAGED_IMAGE)
        pool["id"] = "gallery"
        pool["virtualMachineConfiguration"]["imageReference"] = {"virtualMachineImageId": DEF}
        self.assertEqual(self.c.batch("POST", "/pools", body=pool, auth=batch).status, 201)


if __name__ == "__main__":
    unittest.main()
