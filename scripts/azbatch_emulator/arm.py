"""ARM (management plane) pieces a preflight needs: Compute Gallery image
definitions and versions, managed images (GET, and PUT from a VHD as a
long-running operation), and Batch accounts.  Segment names match
case-insensitively, as in ARM; errors use the CloudError shape.
"""

import json
import re
import urllib.parse
import uuid

from . import world as W
from .validate import parse_json
from .wire import ApiError, Response, PLAIN_JSON, iso

GALLERY_API = ("2025-03-03", "2024-03-03", "2023-07-03", "2022-08-03", "2022-03-03", "2022-01-03", "2021-10-01")
IMAGE_API = ("2025-04-01", "2024-11-01", "2024-07-01", "2024-03-01", "2023-09-01", "2023-07-01", "2023-03-01",
             "2022-11-01", "2022-08-01", "2022-03-01", "2021-11-01")
BATCH_API = ("2025-06-01", "2024-07-01", "2024-02-01", "2023-11-01", "2023-05-01", "2022-10-01", "2022-06-01")


def _not_found(rtype, name, rg):
    return ApiError(404, "ResourceNotFound", "The Resource '%s/%s' under resource group '%s' was not found. "
                    "For more details please go to https://aka.ms/ARMResourceNotFoundFix" % (rtype, name, rg))


def _api_version(req, supported, rtype, location):
    v = req.q("api-version")
    if not v:
        raise ApiError(400, "MissingApiVersionParameter",
                       "The api-version query parameter (?api-version=) is required for all requests.")
    if v not in supported:
        raise ApiError(400, "NoRegisteredProviderFound",
                       "No registered resource provider found for location '%s' and API version '%s' for type "
                       "'%s'. The supported api-versions are '%s'." % (location, v, rtype, ", ".join(supported)))
    return v


def _bad_param(target, message):
    return ApiError(400, "InvalidParameter", message, target=target)


def _rid(sub, rg, *parts):
    return "/subscriptions/%s/resourceGroups/%s/providers/%s" % (sub, rg, "/".join(parts))


def gallery_image_json(gallery, image):
    props = json.loads(json.dumps(image["properties"]))
    props.setdefault("provisioningState", "Succeeded")
    return {"id": _rid(gallery["subscriptionId"], gallery["resourceGroup"], "Microsoft.Compute", "galleries",
                       gallery["name"], "images", image["name"]),
            "name": image["name"], "type": "Microsoft.Compute/galleries/images",
            "location": gallery["location"], "properties": props}


def gallery_version_json(gallery, image, version, expand):
    props = json.loads(json.dumps(version.get("properties", {})))
    props.setdefault("provisioningState", "Succeeded")
    if "replicationstatus" not in expand:
        props.pop("replicationStatus", None)
    return {"id": _rid(gallery["subscriptionId"], gallery["resourceGroup"], "Microsoft.Compute", "galleries",
                       gallery["name"], "images", image["name"], "versions", version["name"]),
            "name": version["name"], "type": "Microsoft.Compute/galleries/images/versions",
            "location": gallery["location"], "properties": props}


def managed_image_json(emu, image, now):
    props = json.loads(json.dumps(image["properties"]))
    ready = emu.image_ready.get(_image_key(image))
    props["provisioningState"] = "Creating" if ready is not None and now < ready else "Succeeded"
    return {"id": _rid(image["subscriptionId"], image["resourceGroup"], "Microsoft.Compute", "images",
                       image["name"]),
            "name": image["name"], "type": "Microsoft.Compute/images", "location": image["location"],
            "properties": props}


def batch_account_json(account):
    return {
        "id": _rid(account["subscriptionId"], account["resourceGroup"], "Microsoft.Batch", "batchAccounts",
                   account["name"]),
        "name": account["name"], "type": "Microsoft.Batch/batchAccounts", "location": account["region"],
        "identity": {"type": "None"},
        "properties": {
            "accountEndpoint": "%s.%s.batch.azure.com" % (account["name"], account["region"]),
            "nodeManagementEndpoint": "%s.nodes.%s.batch.azure.com" % (account["name"], account["region"]),
            "provisioningState": "Succeeded",
            "poolAllocationMode": account["poolAllocationMode"],
            "dedicatedCoreQuota": account["dedicatedCoreQuota"],
            "lowPriorityCoreQuota": account["lowPriorityCoreQuota"],
            "dedicatedCoreQuotaPerVMFamilyEnforced": False,
            "poolQuota": account["poolQuota"],
            "activeJobAndJobScheduleQuota": 300,
            "allowedAuthenticationModes": account["allowedAuthenticationModes"],
            "publicNetworkAccess": "Enabled",
        },
    }


def _image_key(image):
    return (image["subscriptionId"].lower(), image["resourceGroup"].lower(), image["name"].lower())


def _put_managed_image(emu, req, sub, rg, name, now):
    try:
        body = parse_json(req.body or b"null")
    except ValueError as e:
        raise ApiError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                                                     "deserialized: '%s'." % e)
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    location = body.get("location")
    if not isinstance(location, str) or not location.strip():
        raise ApiError(400, "LocationRequired", "The location property is required for this definition.")
    props = body.get("properties")
    if not isinstance(props, dict):
        raise _bad_param("properties", "Required parameter 'properties' is missing (null).")
    sp = props.get("storageProfile")
    if not isinstance(sp, dict):
        raise _bad_param("storageProfile", "Required parameter 'storageProfile' is missing (null).")
    os_disk = sp.get("osDisk")
    if not isinstance(os_disk, dict):
        raise _bad_param("osDisk", "Required parameter 'osDisk' is missing (null).")
    for field, allowed in (("osType", ("Linux", "Windows")), ("osState", ("Generalized", "Specialized"))):
        v = os_disk.get(field)
        if v is None:
            raise _bad_param("osDisk." + field, "Required parameter 'osDisk.%s' is missing (null)." % field)
        if v not in allowed:
            raise _bad_param("osDisk." + field, "The value '%s' of parameter 'osDisk.%s' is not valid; use %s."
                             % (v, field, " or ".join(allowed)))
    blob = os_disk.get("blobUri")
    if not blob and not os_disk.get("managedDisk") and not os_disk.get("snapshot") \
            and not props.get("sourceVirtualMachine"):
        raise _bad_param("osDisk", "One of 'osDisk.blobUri', 'osDisk.managedDisk', 'osDisk.snapshot' or "
                                   "'sourceVirtualMachine' must be specified.")
    if blob:
        u = urllib.parse.urlparse(blob)
        if u.scheme != "https" or not re.match(r"^[a-z0-9]{3,24}\.blob\.core\.windows\.net$", u.hostname or "") \
                or not u.path.lower().endswith(".vhd"):
            raise _bad_param("osDisk.blobUri", "The blob URI '%s' is not a valid page blob VHD URI of the form "
                                               "https://{account}.blob.core.windows.net/{container}/{name}.vhd." % blob)
    hvg = props.get("hyperVGeneration", "V1")
    if hvg not in ("V1", "V2"):
        raise _bad_param("hyperVGeneration", "The value '%s' of parameter 'hyperVGeneration' is not valid." % hvg)
    os_disk.setdefault("caching", "ReadWrite")
    sp.setdefault("dataDisks", [])
    props = dict(props, hyperVGeneration=hvg)
    props.pop("provisioningState", None)
    existing = W.find_managed_image(emu.world, sub, rg, name)
    image = {"name": existing["name"] if existing else name, "subscriptionId": sub, "resourceGroup": rg,
             "location": W.norm_region(location), "properties": props}
    if existing:
        emu.world["managedImages"].remove(existing)
    emu.world["managedImages"].append(image)
    op_id = str(uuid.uuid4())
    ready = now + emu.world["arm"]["managedImageCreateSeconds"]
    emu.image_ready[_image_key(image)] = ready
    emu.arm_ops[op_id] = {"start": now, "end": ready}
    op_url = "%s/subscriptions/%s/providers/Microsoft.Compute/locations/%s/operations/%s?api-version=%s" % (
        req.base_url, sub, image["location"], op_id, req.q("api-version"))
    return Response(200 if existing else 201, managed_image_json(emu, image, now),
                    [("Azure-AsyncOperation", op_url), ("Retry-After", "1")], PLAIN_JSON)


def _operation(emu, req, op_id, now):
    op = emu.arm_ops.get(op_id)
    if op is None:
        raise ApiError(404, "ResourceNotFound", "The operation '%s' was not found." % op_id)
    body = {"startTime": iso(op["start"]), "name": op_id}
    if now >= op["end"]:
        body.update(status="Succeeded", endTime=iso(op["end"]))
    else:
        body["status"] = "InProgress"
    return Response(200, body, [("Retry-After", "1")] if body["status"] == "InProgress" else [], PLAIN_JSON)


def handle(emu, req):
    """Route one authenticated ARM request."""
    now = emu.clock.now()
    world = emu.world
    segs = req.segments()
    low = [s.lower() for s in segs]

    def verbs(*allowed):
        if req.method not in allowed:
            raise ApiError(405, "HttpMethodNotAllowed", "The requested resource does not support http method "
                                                        "'%s'." % req.method, headers=[("Allow", ", ".join(allowed))])

    # /subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/operations/{id}
    if len(low) == 8 and low[2] == "providers" and low[3] == "microsoft.compute" and low[4] == "locations" \
            and low[6] == "operations":
        verbs("GET")
        return _operation(emu, req, segs[7], now)
    if len(low) < 6 or low[0] != "subscriptions" or low[2] != "resourcegroups" or low[4] != "providers":
        raise ApiError(404, "InvalidResourceType", "The resource type could not be found for the request URI "
                                                   "'%s'." % req.path)
    sub, rg, ns, rest = segs[1], segs[3], low[5], low[6:]
    if not W.known_subscription(world, sub):
        raise ApiError(404, "SubscriptionNotFound", "The subscription '%s' could not be found." % sub)
    if not W.known_resource_group(world, sub, rg):
        raise ApiError(404, "ResourceGroupNotFound", "Resource group '%s' could not be found." % rg)
    region = next((a["region"] for a in world["accounts"] if a["subscriptionId"].lower() == sub.lower()),
                  "westeurope")
    if ns == "microsoft.compute" and len(rest) >= 4 and rest[0] == "galleries" and rest[2] == "images":
        verbs("GET")
        _api_version(req, GALLERY_API, "galleries/images", region)
        gallery = W.find_gallery(world, sub, rg, segs[7])
        if gallery is None:
            raise _not_found("Microsoft.Compute/galleries", segs[7], rg)
        image = W.find_gallery_image(gallery, segs[9])
        if image is None:
            raise ApiError(404, "GalleryImageNotFound", "The gallery image %s is not found." % _rid(
                sub, rg, "Microsoft.Compute", "galleries", segs[7], "images", segs[9]))
        if len(rest) == 4:
            return Response(200, gallery_image_json(gallery, image), [], PLAIN_JSON)
        expand = [e.strip().lower() for e in (req.q("$expand") or "").split(",")]
        if len(rest) == 5 and rest[4] == "versions":
            return Response(200, {"value": [gallery_version_json(gallery, image, v, expand)
                                            for v in image["versions"]]}, [], PLAIN_JSON)
        if len(rest) == 6 and rest[4] == "versions":
            version = W.find_gallery_version(image, segs[11])
            if version is None:
                raise _not_found("Microsoft.Compute/galleries/%s/images/%s/versions" % (segs[7], segs[9]),
                                 segs[11], rg)
            return Response(200, gallery_version_json(gallery, image, version, expand), [], PLAIN_JSON)
    if ns == "microsoft.compute" and len(rest) == 2 and rest[0] == "images":
        verbs("GET", "PUT")
        _api_version(req, IMAGE_API, "images", region)
        if req.method == "PUT":
            return _put_managed_image(emu, req, sub, rg, segs[7], now)
        image = W.find_managed_image(world, sub, rg, segs[7])
        if image is None:
            raise _not_found("Microsoft.Compute/images", segs[7], rg)
        return Response(200, managed_image_json(emu, image, now), [], PLAIN_JSON)
    if ns == "microsoft.batch" and len(rest) == 2 and rest[0] == "batchaccounts":
        verbs("GET")
        _api_version(req, BATCH_API, "batchAccounts", region)
        account = next((a for a in world["accounts"] if a["subscriptionId"].lower() == sub.lower()
                        and a["resourceGroup"].lower() == rg.lower() and a["name"] == segs[7].lower()), None)
        if account is None:
            raise _not_found("Microsoft.Batch/batchAccounts", segs[7], rg)
        return Response(200, batch_account_json(account), [], PLAIN_JSON)
    raise ApiError(404, "InvalidResourceType", "The resource type '%s' could not be found in the namespace '%s'."
                   % ("/".join(segs[6:7]), segs[5]))
