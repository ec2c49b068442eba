"""The data plane's custom-image rules: what the service refuses when a pool is
created (4xx), and what fails only when nodes are allocated (a resize error
AllocationFailed relaying the provider's error).  docs/emulator.md, "Custom
images on the data plane", gives each rule's source.

    python3 -m unittest discover -s tests/emulator -v
"""

import base64
import json
import unittest

import test_emulator as T

RESTRICTED = "00000000-0000-0000-0000-0000000000c2"
RESTRICTED_SECRET = "dev-restricted-secret"
USERSUB = "devbatchusersub"
USERSUB_KEY = base64.b64encode(b"azbatch-emulator-usersub-development-key-not-a-secret-012345").decode()
REGIONAL = T.GALLERY + "/images/ubuntu2204-regional"
OTHER = "/subscriptions/00000000-0000-0000-0000-000000000002/resourceGroups/azbatch-other/providers/" \
        "Microsoft.Compute/galleries/othergallery/images/ubuntu2204/versions/1.0.0"


class ImageRuleTests(T.EmulatorCase):
    def setUp(self):
        super().setUp()
        self.token = self.bearer()

    def body(self, pool_id, image_id, agent="batch.node.ubuntu 22.04", vm_size="Standard_D2s_v3", **extra):
        b = T.pool_body(pool_id, vmSize=vm_size, targetDedicatedNodes=2, **extra)
        b["virtualMachineConfiguration"] = {"imageReference": {"virtualMachineImageId": image_id},
                                            "nodeAgentSKUId": agent}
        return b

    def create(self, pool_id, image_id, token=None, **kw):
        return self.c.batch("POST", "/pools", body=self.body(pool_id, image_id, **kw), auth=token or self.token)

    def created(self, pool_id, image_id, **kw):
        r = self.create(pool_id, image_id, **kw)
        self.assertEqual(r.status, 201, r.body)
        return r

    def pool(self, pool_id):
        r = self.c.batch("GET", "/pools/" + pool_id, auth=self.token)
        self.assertEqual(r.status, 200, r.body)
        return r.json

    def allocation_failed(self, pool_id, provider_code, target=2):
        self.advance(20)
        p = self.pool(pool_id)
        self.assertEqual((p["allocationState"], p["currentDedicatedNodes"], p["targetDedicatedNodes"]),
                         ("steady", 0, target))
        (err,) = p["resizeErrors"]
        self.assertEqual((err["code"], err["message"]),
                         ("AllocationFailed", "Desired number of dedicated nodes could not be allocated"))
        values = {v["name"]: v["value"] for v in err["values"]}
        self.assertEqual(values["ProviderErrorJsonTruncated"], "False")
        provider = json.loads(values["ProviderErrorJson"])["error"]
        self.assertEqual(provider["code"], provider_code)
        return provider["message"]

    def steady_with_nodes(self, pool_id, n=2):
        self.advance(20)
        p = self.pool(pool_id)
        self.assertEqual((p["allocationState"], p["currentDedicatedNodes"]), ("steady", n), p)
        self.assertNotIn("resizeErrors", p)
        return p

    # {---------------------------------------------------------- at create

    def test_shared_key_is_refused_for_gallery_and_managed_images(self):
        detail = ("The specified type of authentication SharedKey is not allowed when external resources of type "
                  "Compute are linked.")
        for image in (T.GALLERY_IMAGE + "/versions/1.0.0", T.MANAGED_IMAGE):
            r = self.c.batch("POST", "/pools", body=self.body("sk", image))
            self.assertError(r, 403, "AuthenticationFailed", AuthenticationErrorDetail=detail)
        self.assertEqual(self.c.batch("POST", "/pools", body=T.pool_body("market")).status, 201)

    def test_a_user_subscription_account_refuses_shared_key(self):
        r = T.Client(self.emu, USERSUB, USERSUB_KEY).batch("GET", "/pools")
        body = self.assertError(r, 403, "AuthenticationFailed")
        self.assertIn("SharedKey is not allowed", r.values()["AuthenticationErrorDetail"])
        host = USERSUB + ".westeurope.batch.azure.com"
        r = self.c.batch("POST", "/pools", body=self.body("u", T.GALLERY_IMAGE), auth=self.token, host=host)
        self.assertEqual(r.status, 201, r.body)
        self.assertIsNotNone(body)

    def test_a_principal_without_read_on_the_image_meets_linked_authorization_failed(self):
        r = self.c.token(client_id=RESTRICTED, secret=RESTRICTED_SECRET)
        restricted = r.json["access_token"]
        version = T.GALLERY_IMAGE + "/versions/1.0.0"
        for image in (version, T.GALLERY_IMAGE):
            r = self.create("denied", image, token=restricted)
            body = self.assertError(r, 403, "LinkedAuthorizationFailed", LinkedScope=image,
                                    LinkedAction="Microsoft.Compute/galleries/images/versions/read")
            msg = body["message"]["value"]
            self.assertIn("'%s'" % RESTRICTED, msg)
            self.assertIn("does not have permission to perform action(s) "
                          "'Microsoft.Compute/galleries/images/versions/read' on the linked scope(s) '%s'" % image, msg)
            self.assertIn("'Microsoft.Batch/batchAccounts/pools/write' on scope '%s'" % T.BATCH_ACCOUNT, msg)
        self.created("allowed", REGIONAL + "/versions/2.0.0", token=restricted)   # other definitions are readable
        self.created("dev", version)                                               # and the dev principal may
        self.assertError(self.c.batch("GET", "/pools/denied", auth=self.token), 404, "PoolNotFound")

    def test_refused_at_create(self):
        def refused(image, prop="virtualMachineImageId", reason=None, **kw):
            r = self.create("refused", image, **kw)
            body = self.assertError(r, 400, "InvalidPropertyValue", PropertyName=prop)
            if reason:
                self.assertIn(reason, r.values()["Reason"])
            return body
        refused(OTHER, reason="same subscription as the Batch account")
        refused(T.GALLERY + "/images/missing", reason="was not found")
        refused(T.GALLERY_IMAGE + "/versions/9.9.9", reason="was not found")
        refused(T.GALLERY + "/images/ubuntu2204-specialized/versions/1.0.0", reason="Specialized")
        refused(T.GALLERY + "/images/ubuntu2204-specialized", reason="generalized")
        refused(T.GALLERY + "/images/windows2022", prop="nodeAgentSKUId", reason="OS type 'Windows'")
        refused(T.GALLERY_IMAGE, prop="nodeAgentSKUId", agent="batch.node.windows amd64")
        refused(T.MANAGED_IMAGE.replace(T.SUB, "00000000-0000-0000-0000-000000000002"), reason="same subscription")
        refused(T.MANAGED_IMAGE + "x", reason="was not found")
        refused("/subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/disks/z")
        refused(T.GALLERY_IMAGE, prop="nodeAgentSKUId", agent="batch.node.centos 7")
        self.assertEqual(self.emu.control("GET", "stats")[1]["pools"], 0)
        self.created("windows", T.GALLERY + "/images/windows2022", agent="batch.node.windows amd64")

    def test_a_definition_id_uses_the_latest_version_not_excluded_from_latest(self):
        self.created("latest", T.GALLERY_IMAGE)
        self.advance(20)
        node = self.c.batch("GET", "/pools/latest/nodes", auth=self.token).json["value"][0]
        self.assertEqual(node["virtualMachineInfo"]["imageReference"],
                         {"virtualMachineImageId": T.GALLERY_IMAGE, "exactVersion": "1.1.0"})   # 1.2.0 is excluded
        self.created("pinned", T.GALLERY_IMAGE + "/versions/1.2.0")       # excluded from latest, still usable

    # {---------------------------------------------------------- at allocation

    def test_no_replica_in_the_accounts_region_fails_allocation(self):
        self.created("ne-only", REGIONAL + "/versions/2.0.0")
        self.assertEqual(self.pool("ne-only")["allocationState"], "resizing")
        msg = self.allocation_failed("ne-only", "GalleryImageNotFound")
        self.assertEqual(msg, "The gallery image %s/versions/2.0.0 is not available in westeurope region. Please "
                              "contact image owner to replicate to this region, or change your requested region."
                         % REGIONAL)

    def test_failed_or_unfinished_replication_fails_allocation(self):
        self.created("failed", REGIONAL + "/versions/2.1.0")
        self.created("replicating", REGIONAL + "/versions/2.2.0")
        self.created("latest-replicating", REGIONAL)                       # latest is 2.2.0
        for pool_id in ("failed", "replicating", "latest-replicating"):
            self.allocation_failed(pool_id, "GalleryImageNotFound")
        self.assertEqual(self.c.batch("POST", "/pools/failed/resize", body={"targetDedicatedNodes": 3},
                                      auth=self.token).status, 202)
        self.allocation_failed("failed", "GalleryImageNotFound", 3)       # every resize meets it again

    def test_a_hyper_v_generation_the_vm_size_cannot_boot_fails_allocation(self):
        self.created("gen2-on-a1", T.GALLERY_IMAGE, vm_size="Standard_A1_v2")
        msg = self.allocation_failed("gen2-on-a1", "BadRequest")
        self.assertEqual(msg, "The selected VM size 'STANDARD_A1_V2' cannot boot Hypervisor Generation '2'. If this "
                              "was a Create operation, please ensure that the Hypervisor Generation of the Image "
                              "matches the Hypervisor Generation of the selected VM Size. If this was an Update "
                              "operation, please choose a Hypervisor Generation '2' VM Size.")
        gen1 = T.GALLERY + "/images/ubuntu2004-gen1"
        self.created("gen1-on-arm", gen1, vm_size="Standard_D2ps_v5")
        self.assertIn("Generation '1'", self.allocation_failed("gen1-on-arm", "BadRequest"))
        self.created("gen1-on-d2", gen1)
        self.steady_with_nodes("gen1-on-d2")
        self.created("managed-on-a1", T.MANAGED_IMAGE, vm_size="Standard_A1_v2")   # a V2 managed image
        self.allocation_failed("managed-on-a1", "BadRequest")
        r = self.c.batch("POST", "/pools", body=T.pool_body("market-on-a1", vmSize="Standard_A1_v2",
                                                             targetDedicatedNodes=1))
        self.assertEqual(r.status, 201)                                    # marketplace images are not checked
        self.steady_with_nodes("market-on-a1", 1)

    def test_replication_that_completes_lets_the_next_resize_allocate(self):
        arm = self.bearer(T.ARM_SCOPE)
        path = REGIONAL + "/versions/2.0.0"
        r = self.c.arm("PATCH", path, arm, body={"properties": {"publishingProfile": {"targetRegions": [
            {"name": "northeurope"}, {"name": "westeurope", "regionalReplicaCount": 2}]}}})
        self.assertEqual(r.status, 200, r.body)
        self.created("grows", path)
        self.allocation_failed("grows", "GalleryImageNotFound")            # 60 s of replication still to go
        self.advance(45)
        self.assertEqual(self.c.batch("POST", "/pools/grows/resize", body={"targetDedicatedNodes": 2},
                                      auth=self.token).status, 202)
        self.steady_with_nodes("grows")

    def test_a_raised_replica_count_keeps_the_existing_replicas_usable(self):
        arm = self.bearer(T.ARM_SCOPE)
        path = T.GALLERY_IMAGE + "/versions/1.1.0"
        r = self.c.arm("PATCH", path, arm, body={"properties": {"publishingProfile": {"targetRegions": [
            {"name": "westeurope", "regionalReplicaCount": 6}]}}})
        self.assertEqual(r.status, 200, r.body)
        self.created("during", path)
        self.steady_with_nodes("during")

    def test_patching_the_image_of_an_empty_pool_applies_the_rules(self):
        b = self.body("empty", T.GALLERY_IMAGE)
        b["targetDedicatedNodes"] = 0
        self.assertEqual(self.c.batch("POST", "/pools", body=b, auth=self.token).status, 201)
        self.advance(5)
        vmc = {"imageReference": {"virtualMachineImageId": OTHER}, "nodeAgentSKUId": "batch.node.ubuntu 22.04"}
        r = self.c.batch("PATCH", "/pools/empty", body={"virtualMachineConfiguration": vmc}, auth=self.token)
        self.assertError(r, 400, "InvalidPropertyValue", PropertyName="virtualMachineImageId")
        vmc["imageReference"]["virtualMachineImageId"] = REGIONAL + "/versions/2.0.0"
        r = self.c.batch("PATCH", "/pools/empty", body={"virtualMachineConfiguration": vmc}, auth=self.token)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.c.batch("POST", "/pools/empty/resize", body={"targetDedicatedNodes": 1},
                                      auth=self.token).status, 202)
        self.allocation_failed("empty", "GalleryImageNotFound", 1)

    def test_a_managed_image_from_a_vhd_that_is_not_what_it_says_gives_unusable_nodes(self):
        self.created("unprepared", T.MANAGED_IMAGE.replace("ubuntu-managed", "ubuntu-unprepared"))
        self.advance(20)
        nodes = self.c.batch("GET", "/pools/unprepared/nodes", auth=self.token).json["value"]
        self.assertEqual([n["state"] for n in nodes], ["unusable", "unusable"])
        (err,) = nodes[0]["errors"]
        self.assertIn("not prepared for Batch: the VHD is Specialized, the image says Generalized",
                      err["errorDetails"][0]["value"])


if __name__ == "__main__":
    unittest.main()
