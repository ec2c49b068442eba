"""The data plane's rules for a pool's image (virtualMachineConfiguration): the
checks the service makes when a pool is created or patched (a 4xx answer), and
the ones that only fail when nodes are allocated (a resize error on the pool).
docs/emulator.md, "Custom images on the data plane", gives each rule's source.

At create (or PATCH):  the image reference's shape; the node agent SKU; the
  principal's read access to a gallery image (403 LinkedAuthorizationFailed); the
  gallery image, version or managed image existing in the account's subscription;
  "latest" resolving to a version not excluded from latest; a generalized image;
  the image's OS type fitting the node agent.
At allocation:  a replica of the gallery version in the account's region whose
  replication has completed; the image's Hyper-V generation fitting the VM size.
  These give resize error AllocationFailed with the relayed provider error.
"""

import json
import re

from . import arm_models, failures, world as W
from .validate import invalid, missing, str_field
from .wire import ApiError

GALLERY_ID = re.compile(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/"
                        r"galleries/([^/]+)/images/([^/]+)(?:/versions/([^/]+))?$", re.I)
MANAGED_ID = re.compile(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/"
                        r"images/([^/]+)$", re.I)
VERSION_READ = "Microsoft.Compute/galleries/images/versions/read"
IMAGE_READ = "Microsoft.Compute/images/read"
POOL_WRITE = "Microsoft.Batch/batchAccounts/pools/write"


class ImageInfo:
    """What a pool's image reference resolved to at create."""
    __slots__ = ("kind", "exact", "keys", "hyperv", "gallery", "definition", "version", "managed")

    def __init__(self, kind, exact, keys, hyperv=None, gallery=None, definition=None, version=None, managed=None):
        self.kind, self.exact, self.keys, self.hyperv = kind, exact, keys, hyperv
        self.gallery, self.definition, self.version, self.managed = gallery, definition, version, managed


def linked_authorization_failed(principal, account, vmid, action=VERSION_READ):
    scope = arm_models.account_id(account)
    return ApiError(403, "LinkedAuthorizationFailed",
                    "The client '%s' with object id '%s' has permission to perform action '%s' on scope '%s'; "
                    "however, it does not have permission to perform action(s) '%s' on the linked scope(s) '%s' "
                    "(respectively) or the linked scope(s) are invalid."
                    % (principal, principal, POOL_WRITE, scope, action, vmid),
                    [("LinkedAction", action), ("LinkedScope", vmid)])


def _os_fits(agent, os_type):
    if (os_type or "linux").lower() == "windows" and not agent.lower().startswith("batch.node.windows"):
        return False
    if (os_type or "linux").lower() == "linux" and agent.lower().startswith("batch.node.windows"):
        return False
    return True


def _marketplace(world, ref, agent):
    for k in ("publisher", "offer", "sku"):
        str_field(ref, k, required=True)
    for img in world["supportedImages"]:
        ir = img["imageReference"]
        if all(ir.get(k, "").lower() == ref[k].lower() for k in ("publisher", "offer", "sku")):
            if img["nodeAgentSKUId"].lower() != agent.lower():
                raise invalid("nodeAgentSKUId", "The node agent SKU '%s' does not match the image %s/%s/%s, "
                                                "which needs '%s'." % (agent, ref["publisher"], ref["offer"],
                                                                       ref["sku"], img["nodeAgentSKUId"]))
    version = ref.get("version") or "latest"
    urn = ":".join(ref[k] for k in ("publisher", "offer", "sku"))
    return ImageInfo("marketplace", version, [failures.image_key(urn + ":" + version), failures.image_key(urn)])


def _gallery(emu, account, vmid, m, agent, principal):
    world = emu.world
    gsub, rg, gname, iname, vname = m.groups()
    if not W.same(gsub, account["subscriptionId"]):
        raise invalid("virtualMachineImageId", "The Azure Compute Gallery image must be in the same subscription "
                                               "as the Batch account (%s)." % account["subscriptionId"])
    if emu.arm.denied(principal, "read", vmid):
        raise linked_authorization_failed(principal, account, vmid)
    gallery = W.find_gallery(world, gsub, rg, gname)
    image = W.find_gallery_image(gallery, iname)
    if image is None:
        raise invalid("virtualMachineImageId", "The Azure Compute Gallery image '%s' was not found." % vmid)
    version = W.find_gallery_version(image, vname) if vname else W.latest_gallery_version(image)
    if version is None:
        raise invalid("virtualMachineImageId", "The Azure Compute Gallery image version '%s' was not found."
                      % (vname or "latest"))
    props = image["properties"]
    if props["osState"] != "Generalized":
        raise invalid("virtualMachineImageId", "The Azure Compute Gallery image '%s' is %s; Batch only supports "
                                               "generalized images." % (vmid, props["osState"]))
    if not _os_fits(agent, props["osType"]):
        raise invalid("nodeAgentSKUId", "The node agent SKU '%s' does not match the image's OS type '%s'."
                      % (agent, props["osType"]))
    keys = [failures.image_key(arm_models.version_id(gallery, image, version)),
            failures.image_key(arm_models.definition_id(gallery, image))]
    return ImageInfo("gallery", version["name"], keys, props.get("hyperVGeneration", "V1"), gallery, image, version)


def _managed(emu, account, vmid, m, agent, principal):
    msub, rg, name = m.groups()
    if not W.same(msub, account["subscriptionId"]):
        raise invalid("virtualMachineImageId", "The managed image must be in the same subscription as the Batch "
                                               "account (%s)." % account["subscriptionId"])
    if emu.arm.denied(principal, "read", vmid):
        raise linked_authorization_failed(principal, account, vmid, IMAGE_READ)
    image = W.find_managed_image(emu.world, msub, rg, name)
    if image is None:
        raise invalid("virtualMachineImageId", "The managed image '%s' was not found." % vmid)
    if W.norm_region(image["location"]) != account["region"]:
        raise invalid("virtualMachineImageId", "The managed image must be in the Batch account's region '%s'."
                      % account["region"])
    disk = image["properties"].get("storageProfile", {}).get("osDisk", {})
    if disk.get("osState", "Generalized") != "Generalized":
        raise invalid("virtualMachineImageId", "The managed image '%s' is %s; Batch only supports generalized "
                                               "images." % (vmid, disk.get("osState")))
    if not _os_fits(agent, disk.get("osType", "Linux")):
        raise invalid("nodeAgentSKUId", "The node agent SKU '%s' does not match the image's OS type." % agent)
    return ImageInfo("managed", "", [failures.image_key(arm_models.managed_image_id(image))],
                     image["properties"].get("hyperVGeneration", "V1"), managed=image)


def check_vm_configuration(vmc, emu, account, principal=None):
    """Validate a virtualMachineConfiguration at create or PATCH; returns its ImageInfo."""
    world = emu.world
    if not isinstance(vmc, dict):
        raise invalid("virtualMachineConfiguration", "The value must be an object.")
    ref = vmc.get("imageReference")
    if ref is None:
        raise missing("imageReference")
    if not isinstance(ref, dict):
        raise invalid("imageReference", "The value must be an object.")
    agent = str_field(vmc, "nodeAgentSKUId", required=True)
    agents = {img["nodeAgentSKUId"].lower() for img in world["supportedImages"]}
    if agent.lower() not in agents:
        raise invalid("nodeAgentSKUId", "The node agent SKU '%s' is not supported. GET /supportedimages "
                                        "lists the supported node agent SKUs." % agent)
    custom = [k for k in ("virtualMachineImageId", "sharedGalleryImageId", "communityGalleryImageId") if ref.get(k)]
    market = [k for k in ("publisher", "offer", "sku") if ref.get(k)]
    if len(custom) > 1 or (custom and market):
        raise invalid(custom[0], "This property is mutually exclusive with the other imageReference properties.")
    if not custom:
        return _marketplace(world, ref, agent)
    if custom[0] != "virtualMachineImageId":
        return ImageInfo("shared", "", [failures.image_key(str(ref[custom[0]]))])
    vmid = str_field(ref, "virtualMachineImageId")
    m = GALLERY_ID.match(vmid)
    if m:
        return _gallery(emu, account, vmid, m, agent, principal)
    m = MANAGED_ID.match(vmid)
    if m:
        return _managed(emu, account, vmid, m, agent, principal)
    raise invalid("virtualMachineImageId", "The value must be the ARM resource ID of an Azure Compute Gallery "
                                           "image, image version or managed image.")


# {===================================================================
# At allocation
# ====================================================================

def _relayed(kind, provider_error):
    """A resize error relaying the provider's error, as Learn's "Relay provider error details" shows."""
    return {"code": "AllocationFailed", "message": "Desired number of %s nodes could not be allocated" % kind,
            "values": [{"name": "ProviderErrorJson", "value": json.dumps({"error": provider_error})},
                       {"name": "ProviderErrorJsonTruncated", "value": "False"}]}


def allocation_error(emu, account, pool, info, kind, now):
    """The resize error that stops `pool` from allocating nodes of `info` now, or None."""
    if info is None:
        return None
    if info.kind == "gallery":
        ready, _state = emu.arm.region_availability(info.version, account["region"], now)
        if ready <= 0:
            return _relayed(kind, {
                "code": "GalleryImageNotFound",
                "message": "The gallery image %s is not available in %s region. Please contact image owner to "
                           "replicate to this region, or change your requested region."
                           % (arm_models.version_id(info.gallery, info.definition, info.version), account["region"])})
    if info.hyperv is not None:
        gens = W.vm_hyperv_generations(emu.world, pool.spec["vmSize"])
        if info.hyperv not in gens:
            gen = info.hyperv[1:]
            return _relayed(kind, {
                "code": "BadRequest",
                "message": "The selected VM size '%s' cannot boot Hypervisor Generation '%s'. If this was a Create "
                           "operation, please ensure that the Hypervisor Generation of the Image matches the "
                           "Hypervisor Generation of the selected VM Size. If this was an Update operation, please "
                           "choose a Hypervisor Generation '%s' VM Size." % (pool.spec["vmSize"].upper(), gen, gen)})
    return None


def node_version(pool):
    """The gallery version a node allocated now is made from: for a pool on a definition id
    (no version), the latest at this moment, so nodes added after a new version was
    published run it while the older nodes keep theirs."""
    info = pool.image
    if info is None or info.kind != "gallery" or info.definition is None:
        return None
    vmid = ((pool.spec.get("virtualMachineConfiguration") or {}).get("imageReference") or {}).get(
        "virtualMachineImageId") or ""
    if "/versions/" in vmid.lower():
        return None
    latest = W.latest_gallery_version(info.definition)
    return latest["name"] if latest else None


def node_fate(emu, account, pool, seq):
    """The failures.Fate of a new node of `pool`, or None."""
    info = pool.image
    if info is None:
        return None
    if info.kind == "managed" and info.managed.get("_unprepared"):
        return failures.unusable(details=[{"name": "Reason", "value": "The custom image is not prepared for "
                                                                      "Batch: %s." % info.managed["_unprepared"]}])
    fate = emu.failures.fate(info.keys, account["name"], pool.id, seq)
    if fate is not None and fate.kind == "starttaskfailed":
        st = pool.spec.get("startTask")
        if not st:
            return None                                 # no start task to fail
        if st.get("waitForSuccess", True) is False:
            fate.kind = "starttaskfailed-nonblocking"
    return fate
