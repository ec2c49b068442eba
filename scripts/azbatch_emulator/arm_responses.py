"""ARM's HTTP handlers (moto's responses.py): request -> checks -> model -> response.
Each handler takes an ArmCtx.  Writes are long-running operations: the answer is
201 (created) or 200 (updated) with the resource in Creating/Updating state and an
`Azure-AsyncOperation` header naming an operation-status resource, plus
`Location` (the resource itself) and `Retry-After`.
"""

import base64
import re
import urllib.parse

from . import world as W
from .arm_models import definition_id, gallery_id, managed_image_id, rid, version_id
from .images import GALLERY_ID, MANAGED_ID
from .validate import parse_json
from .wire import ApiError, Response, PLAIN_JSON, iso, parse_iso

VERSION_NAME = re.compile(r"^\d{1,9}\.\d{1,9}\.\d{1,9}$")
RESOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
STORAGE_TYPES = ("Standard_LRS", "Standard_ZRS", "Premium_LRS", "PremiumV2_LRS")
BLOB_HOST = re.compile(r"^([a-z0-9]{3,24})\.blob\.core\.windows\.net$")


class ArmCtx:
    """One authenticated ARM request on its way to a handler."""
    __slots__ = ("emu", "arm", "req", "now", "params", "principal")

    def __init__(self, emu, req, now, params, principal):
        self.emu, self.arm, self.req, self.now, self.params, self.principal = \
            emu, emu.arm, req, now, params, principal

    @property
    def world(self):
        return self.emu.world

    def ok(self, status, body, headers=()):
        return Response(status, body, list(headers), PLAIN_JSON)


# {===================================================================
# Errors
# ====================================================================

def bad_param(target, message):
    return ApiError(400, "InvalidParameter", message, target=target)


def not_found(rtype, name, rg):
    return ApiError(404, "ResourceNotFound", "The Resource '%s/%s' under resource group '%s' was not found. "
                    "For more details please go to https://aka.ms/ARMResourceNotFoundFix" % (rtype, name, rg))


def parent_not_found(name):
    return ApiError(404, "ParentResourceNotFound", "Can not perform requested operation on nested resource. "
                                                   "Parent resource '%s' not found." % name)


def authorization_failed(principal, action, scope):
    return ApiError(403, "AuthorizationFailed",
                    "The client '%s' with object id '%s' does not have authorization to perform action '%s' "
                    "over scope '%s' or the scope is invalid. If access was recently granted, please refresh "
                    "your credentials." % (principal, principal, action, scope))


def require_access(ctx, kind, action, scope):
    if ctx.arm.denied(ctx.principal, kind, scope):
        raise authorization_failed(ctx.principal, action, scope)


def change_not_allowed(prop):
    return ApiError(409, "PropertyChangeNotAllowed", "Changing property '%s' is not allowed." % prop, target=prop)


# {===================================================================
# Bodies
# ====================================================================

def read_body(req):
    try:
        body = parse_json(req.body or b"null")
    except ValueError as e:
        raise ApiError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                                                     "deserialized: '%s'." % e)
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body


def _location(body):
    loc = body.get("location")
    if not isinstance(loc, str) or not loc.strip():
        raise ApiError(400, "LocationRequired", "The location property is required for this definition.")
    return W.norm_region(loc)


def _props(body, target):
    props = body.get("properties")
    if not isinstance(props, dict):
        raise bad_param(target + ".properties", "Required parameter 'properties' is missing (null).")
    return props


def _enum(obj, key, allowed, target, default=None, required=False):
    v = obj.get(key, default)
    if v is None:
        if required:
            raise bad_param(target, "Required parameter '%s' is missing (null)." % target)
        return None
    if v not in allowed:
        raise bad_param(target, "The value '%s' of parameter '%s' is not valid. Allowed values are %s."
                        % (v, target, ", ".join(allowed)))
    return v


def _tags(body):
    tags = body.get("tags")
    if tags is None:
        return None
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise bad_param("tags", "The tags must be an object of string values.")
    return dict(tags)


def _int(obj, key, target, low=None, high=None):
    v = obj.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or (low is not None and v < low) or \
            (high is not None and v > high):
        raise bad_param(target, "The value of parameter '%s' must be an integer%s." % (
            target, " from %d to %d" % (low, high) if low is not None and high is not None else ""))
    return v


def _bool(obj, key, target):
    v = obj.get(key)
    if v is not None and not isinstance(v, bool):
        raise bad_param(target, "The value of parameter '%s' must be true or false." % target)
    return v


def _date(obj, key, target):
    v = obj.get(key)
    if v is not None and (not isinstance(v, str) or parse_iso(v) is None):
        raise bad_param(target, "The value of parameter '%s' is not a valid date-time." % target)
    return v


def _target_regions(pub, target):
    """A validated copy of publishingProfile.targetRegions, names normalised."""
    regions = pub.get("targetRegions")
    if regions is None:
        return None
    if not isinstance(regions, list):
        raise bad_param(target, "The value of parameter '%s' must be an array." % target)
    out, seen = [], set()
    for i, tr in enumerate(regions):
        t = "%s[%d]" % (target, i)
        if not isinstance(tr, dict) or not isinstance(tr.get("name"), str) or not tr["name"].strip():
            raise bad_param(t + ".name", "Required parameter '%s.name' is missing (null)." % t)
        name = W.norm_region(tr["name"])
        if name in seen:
            raise bad_param(t + ".name", "The region '%s' appears more than once in targetRegions." % name)
        seen.add(name)
        item = dict(tr, name=name)
        _int(tr, "regionalReplicaCount", t + ".regionalReplicaCount", 1, 100)
        _enum(tr, "storageAccountType", STORAGE_TYPES, t + ".storageAccountType")
        _bool(tr, "excludeFromLatest", t + ".excludeFromLatest")
        item.setdefault("storageAccountType", "Standard_LRS")
        out.append(item)
    return out


def _publishing_profile(props, existing):
    pub = props.get("publishingProfile", {})
    if not isinstance(pub, dict):
        raise bad_param("galleryImageVersion.properties.publishingProfile", "The publishingProfile must be an "
                                                                            "object.")
    t = "galleryImageVersion.properties.publishingProfile"
    _int(pub, "replicaCount", t + ".replicaCount", 1, 100)
    _bool(pub, "excludeFromLatest", t + ".excludeFromLatest")
    _date(pub, "endOfLifeDate", t + ".endOfLifeDate")
    _enum(pub, "storageAccountType", STORAGE_TYPES, t + ".storageAccountType")
    regions = _target_regions(pub, t + ".targetRegions")
    out = dict(existing or {})
    out.update({k: v for k, v in pub.items() if k not in ("publishedDate", "targetRegions")})
    if regions is not None:
        out["targetRegions"] = regions
    return out


# {===================================================================
# Pages
# ====================================================================

def _skip(req):
    raw = req.q("$skiptoken")
    if raw is None:
        return None
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise bad_param("$skiptoken", "The value '%s' of the $skiptoken query parameter is not valid." % raw)


def page(ctx, keyed):
    """`keyed` [(sort key, item)] as {"value": [...], "nextLink"?}; listPageSize items a page."""
    keyed = sorted(keyed, key=lambda kv: kv[0])
    after = _skip(ctx.req)
    if after is not None:
        keyed = [kv for kv in keyed if kv[0] > after]
    size = ctx.world["arm"]["listPageSize"]
    body = {"value": [item for _, item in keyed[:size]]}
    if len(keyed) > size:
        kept = [(k, v) for k, v in ctx.req.query if k.lower() != "$skiptoken"]
        token = base64.urlsafe_b64encode(keyed[size - 1][0].encode()).rstrip(b"=").decode()
        body["nextLink"] = "%s%s?%s" % (ctx.req.base_url, ctx.req.path,
                                        urllib.parse.urlencode(kept + [("$skiptoken", token)]))
    return body


# {===================================================================
# Lookups
# ====================================================================

def _gallery(ctx):
    p = ctx.params
    g = W.find_gallery(ctx.world, p["sub"], p["rg"], p["gallery"])
    if g is None:
        raise not_found("Microsoft.Compute/galleries", p["gallery"], p["rg"])
    return g


def _definition(ctx, gallery, for_write=False):
    p = ctx.params
    image = W.find_gallery_image(gallery, p["image"])
    if image is None:
        if for_write:
            raise parent_not_found(p["image"])
        raise ApiError(404, "GalleryImageNotFound", "The gallery image %s is not found."
                       % rid(p["sub"], p["rg"], "Microsoft.Compute", "galleries", gallery["name"], "images",
                             p["image"]))
    return image


def _region_of(world, sub):
    return next((a["region"] for a in world["accounts"] if W.same(a["subscriptionId"], sub)), "westeurope")


def _lro(ctx, status, body, op_id, location, resource_path, kind="capsOperations"):
    api = ctx.req.q("api-version")
    op_url = "%s/subscriptions/%s/providers/Microsoft.Compute/locations/%s/%s/%s?api-version=%s" % (
        ctx.req.base_url, ctx.params["sub"], location, kind, op_id, api)
    headers = [("Azure-AsyncOperation", op_url), ("Location", "%s%s?api-version=%s" % (ctx.req.base_url,
                                                                                        resource_path, api)),
               ("Retry-After", "1")]
    return ctx.ok(status, body, headers)


# {===================================================================
# Subscriptions, Batch accounts, storage, SKUs, operations
# ====================================================================

def list_subscriptions(ctx):
    subs = [s for s in ctx.world["subscriptions"] if W.sees_subscription(s, ctx.principal)]
    body = page(ctx, [(s["subscriptionId"].lower(), ctx.arm.subscription_json(s)) for s in subs])
    body["count"] = {"type": "Total", "value": len(subs)}
    return ctx.ok(200, body)


def get_subscription(ctx):
    return ctx.ok(200, ctx.arm.subscription_json(W.find_subscription(ctx.world, ctx.params["sub"])))


def _accounts(ctx, rg=None):
    p = ctx.params
    return [a for a in ctx.world["accounts"] if W.same(a["subscriptionId"], p["sub"])
            and (rg is None or W.same(a["resourceGroup"], rg))]


def list_batch_accounts(ctx):
    return ctx.ok(200, page(ctx, [(a["name"], ctx.arm.account_json(a)) for a in _accounts(ctx, ctx.params.get("rg"))]))


def get_batch_account(ctx):
    p = ctx.params
    account = next((a for a in _accounts(ctx, p["rg"]) if a["name"] == p["name"].lower()), None)
    if account is None:
        raise not_found("Microsoft.Batch/batchAccounts", p["name"], p["rg"])
    return ctx.ok(200, ctx.arm.account_json(account))


def list_storage_accounts(ctx):
    p = ctx.params
    items = [sa for sa in ctx.world["storageAccounts"] if W.same(sa["subscriptionId"], p["sub"])
             and ("rg" not in p or W.same(sa["resourceGroup"], p["rg"]))]
    return ctx.ok(200, page(ctx, [(sa["name"], ctx.arm.storage_json(sa)) for sa in items]))


def get_storage_account(ctx):
    p = ctx.params
    sa = W.find_storage_account(ctx.world, p["name"])
    if sa is None or not W.same(sa["subscriptionId"], p["sub"]) or not W.same(sa["resourceGroup"], p["rg"]):
        raise not_found("Microsoft.Storage/storageAccounts", p["name"], p["rg"])
    return ctx.ok(200, ctx.arm.storage_json(sa))


_SKU_FILTER = re.compile(r"^\s*location\s+eq\s+'([^']*)'\s*$", re.I)


def list_skus(ctx):
    raw = ctx.req.q("$filter")
    location = None
    if raw is not None and raw.strip():
        m = _SKU_FILTER.match(raw)
        if not m:
            raise bad_param("$filter", "The filter '%s' is not supported. Use \"location eq '{region}'\"." % raw)
        location = W.norm_region(m.group(1))
    value = []
    for name in sorted(ctx.world["vmSizes"], key=str.lower):
        sku = ctx.arm.sku_json(name, ctx.world["vmSizes"][name])
        if location is not None:
            if location not in sku["locations"]:
                continue
            sku["locations"] = [location]
            sku["locationInfo"] = [li for li in sku["locationInfo"] if li["location"] == location]
        value.append(sku)
    return ctx.ok(200, {"value": value})


def get_operation(ctx):
    body = ctx.arm.operation(ctx.params["op"], ctx.now)
    if body is None:
        raise ApiError(404, "ResourceNotFound", "The operation '%s' was not found." % ctx.params["op"])
    return ctx.ok(200, body, [("Retry-After", "1")] if body["status"] == "InProgress" else [])


# {===================================================================
# Galleries and image definitions
# ====================================================================

def get_gallery(ctx):
    g = _gallery(ctx)
    require_access(ctx, "read", "Microsoft.Compute/galleries/read", gallery_id(g))
    return ctx.ok(200, ctx.arm.gallery_json(g))


def list_definitions(ctx):
    g = _gallery(ctx)
    require_access(ctx, "read", "Microsoft.Compute/galleries/images/read", gallery_id(g))
    return ctx.ok(200, page(ctx, [(im["name"].lower(), ctx.arm.definition_json(g, im, ctx.now))
                                  for im in g["images"]]))


def get_definition(ctx):
    g = _gallery(ctx)
    scope = definition_id(g, {"name": ctx.params["image"]})
    require_access(ctx, "read", "Microsoft.Compute/galleries/images/read", scope)
    return ctx.ok(200, ctx.arm.definition_json(g, _definition(ctx, g), ctx.now))


def put_definition(ctx):
    p = ctx.params
    g = W.find_gallery(ctx.world, p["sub"], p["rg"], p["gallery"])
    if g is None:
        raise parent_not_found(p["gallery"])
    scope = definition_id(g, {"name": p["image"]})
    require_access(ctx, "write", "Microsoft.Compute/galleries/images/write", scope)
    if not RESOURCE_NAME.match(p["image"]):
        raise bad_param("galleryImageName", "The gallery image name '%s' is not valid." % p["image"])
    body = read_body(ctx.req)
    location = _location(body)
    if location != g["location"]:
        raise bad_param("galleryImage.location", "The location '%s' must be the gallery's location '%s'."
                        % (location, g["location"]))
    props = _props(body, "galleryImage")
    t = "galleryImage.properties"
    os_type = _enum(props, "osType", ("Linux", "Windows"), t + ".osType", required=True)
    os_state = _enum(props, "osState", ("Generalized", "Specialized"), t + ".osState", required=True)
    hvg = _enum(props, "hyperVGeneration", ("V1", "V2"), t + ".hyperVGeneration", default="V1")
    arch = _enum(props, "architecture", ("x64", "Arm64"), t + ".architecture", default="x64")
    ident = props.get("identifier")
    if not isinstance(ident, dict):
        raise bad_param(t + ".identifier", "Required parameter 'identifier' is missing (null).")
    for k in ("publisher", "offer", "sku"):
        if not isinstance(ident.get(k), str) or not ident[k]:
            raise bad_param("%s.identifier.%s" % (t, k), "Required parameter 'identifier.%s' is missing "
                                                         "(null)." % k)
    features = props.get("features", [])
    if not isinstance(features, list) or not all(isinstance(f, dict) and isinstance(f.get("name"), str)
                                                 and isinstance(f.get("value"), str) for f in features):
        raise bad_param(t + ".features", "Each feature must be an object with string name and value.")
    _date(props, "endOfLifeDate", t + ".endOfLifeDate")
    tags = _tags(body)
    existing = W.find_gallery_image(g, p["image"])
    new = dict(props, osType=os_type, osState=os_state, hyperVGeneration=hvg, architecture=arch)
    new.pop("provisioningState", None)
    if existing is not None:
        old = existing["properties"]
        for k in ("osType", "osState", "hyperVGeneration", "architecture"):
            if old.get(k, {"hyperVGeneration": "V1", "architecture": "x64"}.get(k)) != new[k]:
                raise change_not_allowed("galleryImage.properties." + k)
        if {k: old["identifier"].get(k) for k in ("publisher", "offer", "sku")} != \
                {k: ident[k] for k in ("publisher", "offer", "sku")}:
            raise change_not_allowed("galleryImage.properties.identifier")
        existing["properties"] = new
        if tags is not None:
            existing["tags"] = tags
        image, status, state = existing, 200, "Updating"
    else:
        image = {"name": p["image"], "properties": new, "versions": []}
        if tags is not None:
            image["tags"] = tags
        g["images"].append(image)
        status, state = 201, "Creating"
    end = ctx.now + ctx.world["arm"]["galleryImageCreateSeconds"]
    op_id = ctx.arm.start_operation(image, state, ctx.now, end)
    return _lro(ctx, status, ctx.arm.definition_json(g, image, ctx.now), op_id, g["location"],
                definition_id(g, image))


# {===================================================================
# Image versions
# ====================================================================

def list_versions(ctx):
    g = _gallery(ctx)
    scope = definition_id(g, {"name": ctx.params["image"]})
    require_access(ctx, "read", "Microsoft.Compute/galleries/images/versions/read", scope)
    image = _definition(ctx, g)
    expand = _expand(ctx)
    return ctx.ok(200, page(ctx, [(_sort_key(v["name"]), ctx.arm.version_json(g, image, v, ctx.now, expand))
                                  for v in image["versions"]]))


def _sort_key(name):
    return ".".join("%010d" % int(p) if p.isdigit() else p for p in name.split("."))


def _expand(ctx):
    raw = ctx.req.q("$expand")
    if raw is None or not raw.strip():
        return False
    names = [n.strip().lower() for n in raw.split(",") if n.strip()]
    for n in names:
        if n not in ("replicationstatus", "uefisettings"):
            raise bad_param("$expand", "The value '%s' of the $expand query parameter is not valid. Allowed "
                                       "values are ReplicationStatus, UefiSettings." % raw)
    return "replicationstatus" in names


def get_version(ctx):
    g = _gallery(ctx)
    p = ctx.params
    scope = definition_id(g, {"name": p["image"]}) + "/versions/" + p["version"]
    require_access(ctx, "read", "Microsoft.Compute/galleries/images/versions/read", scope)
    image = _definition(ctx, g)
    version = W.find_gallery_version(image, p["version"])
    if version is None:
        raise not_found("Microsoft.Compute/galleries/%s/images/%s/versions" % (g["name"], image["name"]),
                        p["version"], p["rg"])
    return ctx.ok(200, ctx.arm.version_json(g, image, version, ctx.now, _expand(ctx)))


def _source(ctx, gallery, image, props):
    """The validated storageProfile of a new version: source.id names a managed image or a
    gallery image version, which exists, has finished provisioning, is in the gallery's region,
    and has the definition's OS type (and, for a managed image, Hyper-V generation)."""
    t = "galleryImageVersion.properties.storageProfile"
    sp = props.get("storageProfile")
    if not isinstance(sp, dict):
        raise bad_param(t, "Required parameter 'storageProfile' is missing (null).")
    source = sp.get("source")
    src_id = source.get("id") if isinstance(source, dict) else None
    if not isinstance(src_id, str) or not src_id:
        raise bad_param(t + ".source.id", "Required parameter 'storageProfile.source.id' is missing (null).")
    m = MANAGED_ID.match(src_id)
    want_os = image["properties"]["osType"]
    if m:
        src = W.find_managed_image(ctx.world, *m.groups())
        if src is None:
            raise bad_param(t + ".source.id", "The source image '%s' was not found." % src_id)
        state = ctx.arm.provisioning_state(src, ctx.now)
        region = src["location"]
        os_type = src["properties"].get("storageProfile", {}).get("osDisk", {}).get("osType")
        hvg = src["properties"].get("hyperVGeneration", "V1")
        if hvg != image["properties"].get("hyperVGeneration", "V1"):
            raise bad_param(t + ".source.id", "The Hyper-V generation '%s' of the source image does not match "
                                              "the gallery image's '%s'."
                            % (hvg, image["properties"].get("hyperVGeneration", "V1")))
    else:
        m = GALLERY_ID.match(src_id)
        if not m or not m.group(5):
            raise bad_param(t + ".source.id", "The source id '%s' must be a managed image or a gallery image "
                                              "version." % src_id)
        sg = W.find_gallery(ctx.world, m.group(1), m.group(2), m.group(3))
        simg = W.find_gallery_image(sg, m.group(4))
        src = W.find_gallery_version(simg, m.group(5))
        if src is None:
            raise bad_param(t + ".source.id", "The source image version '%s' was not found." % src_id)
        state = ctx.arm.provisioning_state(src, ctx.now)
        region = sg["location"]
        os_type = simg["properties"]["osType"]
    if state != "Succeeded":
        raise bad_param(t + ".source.id", "The source '%s' is in provisioning state '%s'; it must be "
                                          "'Succeeded'." % (src_id, state))
    if W.norm_region(region) != gallery["location"]:
        raise bad_param(t + ".source.id", "The source '%s' is in region '%s'; it must be in the gallery image "
                                          "version's region '%s'." % (src_id, region, gallery["location"]))
    if os_type and os_type.lower() != want_os.lower():
        raise bad_param(t + ".source.id", "The OS type '%s' of the source does not match the gallery image's "
                                          "'%s'." % (os_type, want_os))
    out = dict(sp)
    out["source"] = {"id": src_id}
    out.setdefault("osDiskImage", {"sizeInGB": 30, "hostCaching": "ReadWrite"})
    return out


def put_version(ctx):
    p = ctx.params
    g = W.find_gallery(ctx.world, p["sub"], p["rg"], p["gallery"])
    if g is None:
        raise parent_not_found(p["gallery"])
    scope = definition_id(g, {"name": p["image"]}) + "/versions/" + p["version"]
    require_access(ctx, "write", "Microsoft.Compute/galleries/images/versions/write", scope)
    image = _definition(ctx, g, for_write=True)
    if not VERSION_NAME.match(p["version"]):
        raise bad_param("galleryImageVersionName", "The gallery image version name '%s' is not valid. It must "
                                                   "be of the form Major.Minor.Patch." % p["version"])
    body = read_body(ctx.req)
    _location(body)
    props = _props(body, "galleryImageVersion")
    existing = W.find_gallery_version(image, p["version"])
    storage = _source(ctx, g, image, props)
    if existing is not None and storage["source"]["id"].lower() != \
            existing["properties"].get("storageProfile", {}).get("source", {}).get("id", "").lower():
        raise change_not_allowed("galleryImageVersion.properties.storageProfile.source.id")
    pub = _publishing_profile(props, None)
    tags = _tags(body)
    return _write_version(ctx, g, image, existing, p["version"], pub, storage, tags)


def patch_version(ctx):
    p = ctx.params
    g = _gallery(ctx)
    scope = definition_id(g, {"name": p["image"]}) + "/versions/" + p["version"]
    require_access(ctx, "write", "Microsoft.Compute/galleries/images/versions/write", scope)
    image = _definition(ctx, g)
    existing = W.find_gallery_version(image, p["version"])
    if existing is None:
        raise not_found("Microsoft.Compute/galleries/%s/images/%s/versions" % (g["name"], image["name"]),
                        p["version"], p["rg"])
    body = read_body(ctx.req)
    props = body.get("properties", {})
    if not isinstance(props, dict):
        raise bad_param("galleryImageVersion.properties", "The properties must be an object.")
    src = props.get("storageProfile", {}).get("source", {}).get("id") if isinstance(
        props.get("storageProfile"), dict) and isinstance(props["storageProfile"].get("source"), dict) else None
    if src and src.lower() != existing["properties"].get("storageProfile", {}).get("source", {}).get("id",
                                                                                                    "").lower():
        raise change_not_allowed("galleryImageVersion.properties.storageProfile.source.id")
    pub = _publishing_profile(props, existing["properties"].get("publishingProfile", {}))
    tags = _tags(body)
    return _write_version(ctx, g, image, existing, p["version"], pub, existing["properties"]["storageProfile"],
                          tags)


def _write_version(ctx, g, image, existing, name, pub, storage, tags):
    now = ctx.now
    regions = pub.get("targetRegions") or [{"name": g["location"], "regionalReplicaCount": pub.get("replicaCount", 1),
                                            "storageAccountType": "Standard_LRS"}]
    pub["targetRegions"] = regions
    pub.setdefault("replicaCount", 1)
    pub.setdefault("excludeFromLatest", False)
    pub.setdefault("storageAccountType", "Standard_LRS")
    if existing is None:
        version = {"name": name, "properties": {}}
        image["versions"].append(version)
        status, state = 201, "Creating"
        pub["publishedDate"] = _iso_now(now)
    else:
        version = existing
        status, state = 200, "Updating"
        pub["publishedDate"] = existing["properties"].get("publishingProfile", {}).get("publishedDate",
                                                                                      _iso_now(now))
    version["properties"] = {k: v for k, v in version["properties"].items()
                             if k not in ("publishingProfile", "storageProfile")}
    version["properties"].update(publishingProfile=pub, storageProfile=storage)
    if tags is not None:
        version["tags"] = tags
    end = ctx.arm.replicate(version, regions, pub["replicaCount"], now)
    error = None
    failing = [r for r in version["_repl"] if r["fail"]]
    if failing:
        details = ", ".join("{region:%s, detail:%s}" % (r["name"], r["fail"]) for r in failing)
        error = {"code": "GalleryReplicationFailed",
                 "message": "Gallery replication jobs failed in one or more regions. The failing regions' details "
                            "are as follows: '%s'. If retry does not work, then please do an update by removing "
                            "the failed regions and update again by adding them back." % details}
    op_id = ctx.arm.start_operation(version, state, now, end, error)
    return _lro(ctx, status, ctx.arm.version_json(g, image, version, now), op_id, g["location"],
                version_id(g, image, version))


def _iso_now(now):
    return iso(now)


# {===================================================================
# Managed images
# ====================================================================

def get_managed_image(ctx):
    p = ctx.params
    require_access(ctx, "read", "Microsoft.Compute/images/read",
                   rid(p["sub"], p["rg"], "Microsoft.Compute", "images", p["name"]))
    image = W.find_managed_image(ctx.world, p["sub"], p["rg"], p["name"])
    if image is None:
        raise not_found("Microsoft.Compute/images", p["name"], p["rg"])
    return ctx.ok(200, ctx.arm.managed_image_json(image, ctx.now))


def _check_blob(ctx, blob, sub, location):
    """The world's blob record for `blob` (a VHD URI); the service's errors when the storage
    account is missing, in another subscription or region, or has no such blob."""
    u = urllib.parse.urlparse(blob)
    host = BLOB_HOST.match(u.hostname or "")
    parts = u.path.lstrip("/").split("/", 1)
    if u.scheme != "https" or not host or len(parts) != 2 or not parts[1].lower().endswith(".vhd"):
        raise bad_param("osDisk.blobUri", "The blob URI '%s' is not a valid page blob VHD URI of the form "
                                          "https://{account}.blob.core.windows.net/{container}/{name}.vhd." % blob)
    sa = W.find_storage_account(ctx.world, host.group(1))
    not_accessible = bad_param("disks", "The source blob %s is not accessible." % blob)
    if sa is None:
        raise not_accessible
    if not W.same(sa["subscriptionId"], sub):
        raise bad_param("osDisk.blobUri", "The storage account '%s' of the source blob %s is in subscription "
                                          "'%s', not in the image's subscription '%s'."
                        % (sa["name"], blob, sa["subscriptionId"], sub))
    if sa["location"] != location:
        raise ApiError(400, "BadRequest", "The source blob %s does not belong to the same region as the image."
                       % blob)
    record = next((b for b in sa["blobs"] if b["container"] == parts[0] and b["name"] == parts[1]), None)
    if record is None:
        raise not_accessible
    return record


def put_managed_image(ctx):
    p = ctx.params
    sub, rg, name = p["sub"], p["rg"], p["name"]
    scope = rid(sub, rg, "Microsoft.Compute", "images", name)
    require_access(ctx, "write", "Microsoft.Compute/images/write", scope)
    body = read_body(ctx.req)
    location = _location(body)
    props = _props(body, "parameters")
    sp = props.get("storageProfile")
    if not isinstance(sp, dict):
        raise bad_param("storageProfile", "Required parameter 'storageProfile' is missing (null).")
    os_disk = sp.get("osDisk")
    if not isinstance(os_disk, dict):
        raise bad_param("osDisk", "Required parameter 'osDisk' is missing (null).")
    for field, allowed in (("osType", ("Linux", "Windows")), ("osState", ("Generalized", "Specialized"))):
        v = os_disk.get(field)
        if v is None:
            raise bad_param("osDisk." + field, "Required parameter 'osDisk.%s' is missing (null)." % field)
        if v not in allowed:
            raise bad_param("osDisk." + field, "The value '%s' of parameter 'osDisk.%s' is not valid; use %s."
                            % (v, field, " or ".join(allowed)))
    blob = os_disk.get("blobUri")
    if blob is not None and not isinstance(blob, str):
        raise bad_param("osDisk.blobUri", "The value of parameter 'osDisk.blobUri' must be a string.")
    if not blob and not os_disk.get("managedDisk") and not os_disk.get("snapshot") \
            and not props.get("sourceVirtualMachine"):
        raise bad_param("osDisk", "One of 'osDisk.blobUri', 'osDisk.managedDisk', 'osDisk.snapshot' or "
                                  "'sourceVirtualMachine' must be specified.")
    hvg = props.get("hyperVGeneration", "V1")
    if hvg not in ("V1", "V2"):
        raise bad_param("hyperVGeneration", "The value '%s' of parameter 'hyperVGeneration' is not valid." % hvg)
    if blob:
        _check_blob(ctx, blob, sub, location)
    os_disk.setdefault("caching", "ReadWrite")
    sp.setdefault("dataDisks", [])
    props = dict(props, hyperVGeneration=hvg)
    props.pop("provisioningState", None)
    existing = W.find_managed_image(ctx.world, sub, rg, name)
    image = {"name": existing["name"] if existing else name, "subscriptionId": sub, "resourceGroup": rg,
             "location": location, "properties": props}
    tags = _tags(body)
    if tags is not None:
        image["tags"] = tags
    ctx.arm.check_vhd(image)
    if existing:
        ctx.world["managedImages"].remove(existing)
    ctx.world["managedImages"].append(image)
    end = ctx.now + ctx.world["arm"]["managedImageCreateSeconds"]
    op_id = ctx.arm.start_operation(image, "Creating" if not existing else "Updating", ctx.now, end)
    return _lro(ctx, 200 if existing else 201, ctx.arm.managed_image_json(image, ctx.now), op_id, location,
                managed_image_id(image), kind="operations")
