"""The world (subscriptions, accounts, quotas, VM sizes, supported images,
galleries, managed images, storage accounts, permissions, Entra ID principals,
pools and jobs present at start, node failure rules), its JSON file format, and
the simulated clock.

The built-in world is scripts/emulator-world.json (WORLD_FILE), read by default_world().
Date fields may be relative to the start ("now+60d", "now-30d", "now+12h"): see RELATIVE.
"""

import base64
import binascii
import copy
import json
import os
import re
import threading
import time

# The built-in world lives in scripts/emulator-world.json, beside this package; it is the
# one copy (the dev account's well-known key, quotas, images and galleries are there).
WORLD_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "emulator-world.json")

# Defaults for the optional sections of any world file (docs/emulator.md, "The world file").
ALLOCATION_DEFAULTS = {"creatingSeconds": 4, "startingSeconds": 4, "nodesPerSecond": 5, "leavingSeconds": 2,
                       "minResizeSeconds": 2, "deleteSeconds": 5, "jobDisableSeconds": 2, "jobEnableSeconds": 2,
                       "jobDeleteSeconds": 2, "taskWaitSeconds": 10}
ARM_DEFAULTS = {"managedImageCreateSeconds": 20, "galleryImageCreateSeconds": 10, "replicationSecondsPerReplica": 30,
                "replicationFailRegions": [], "listPageSize": 100}
DEFAULT_TENANT = "00000000-0000-0000-0000-0000000000aa"
TOP_LEVEL_KEYS = ("subscriptions", "accounts", "vmSizes", "defaultVmCores", "allocation", "supportedImages",
                  "galleries", "managedImages", "storageAccounts", "permissions", "arm", "entra", "pools", "jobs",
                  "nodeFailures")
# Date fields whose value may be relative to the world's start: "now+60d", "now-400d", "now+12h".
DATE_FIELDS = ("endOfLifeDate", "publishedDate", "batchSupportEndOfLife", "lastKeySync")
RELATIVE = re.compile(r"^now([+-])(\d{1,6})([dhm])$")
HYPERV = ("V1", "V2")


class WorldError(ValueError):
    """A world file that cannot be used; the message names the field."""


def _need(obj, key, typ, where):
    if not isinstance(obj, dict):
        raise WorldError("%s: expected an object" % where)
    if key not in obj:
        raise WorldError("%s.%s: required field missing" % (where, key))
    val = obj[key]
    if typ is int and isinstance(val, bool) or not isinstance(val, typ):
        tname = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise WorldError("%s.%s: expected %s" % (where, key, tname))
    return val


def check_key(key):
    """True when `key` is valid, non-empty base64."""
    try:
        return len(base64.b64decode(key, validate=True)) > 0
    except (binascii.Error, ValueError, TypeError):
        return False


def _nonneg_int(obj, key, default, where):
    obj.setdefault(key, default)
    v = obj[key]
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise WorldError("%s.%s: must be a non-negative integer" % (where, key))
    return v


def _list_of(obj, key, where):
    """obj[key] (default []) as a list of objects."""
    items = obj.setdefault(key, [])
    if not isinstance(items, list):
        raise WorldError("%s.%s: expected an array" % (where, key))
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise WorldError("%s.%s[%d]: expected an object" % (where, key, i))
    return items


def resolve_dates(value, now):
    """Replace relative dates ("now+60d") in DATE_FIELDS, anywhere in `value`, by ISO 8601 at `now`."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k, item in v.items():
                if k in DATE_FIELDS and isinstance(item, str):
                    m = RELATIVE.match(item.strip())
                    if m:
                        sign = 1 if m.group(1) == "+" else -1
                        unit = {"d": 86400, "h": 3600, "m": 60}[m.group(3)]
                        when = now + sign * int(m.group(2)) * unit
                        v[k] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + ".0000000Z"
                elif isinstance(item, (dict, list)):
                    stack.append(item)
        elif isinstance(v, list):
            stack.extend(v)


def _accounts(w):
    accounts = _need(w, "accounts", list, "world")
    if not accounts:
        raise WorldError("world.accounts: at least one account is required")
    seen = set()
    for i, a in enumerate(accounts):
        where = "world.accounts[%d]" % i
        if not isinstance(a, dict):
            raise WorldError(where + ": expected an object")
        name = _need(a, "name", str, where)
        if not re.match(r"^[a-z0-9]{3,24}$", name):
            raise WorldError(where + ".name: must be 3-24 lowercase letters and digits")
        if name in seen:
            raise WorldError(where + ".name: duplicate account name")
        seen.add(name)
        if not check_key(_need(a, "key", str, where)):
            raise WorldError(where + ".key: not valid base64")
        _need(a, "region", str, where)
        a["region"] = norm_region(a["region"])
        _need(a, "subscriptionId", str, where)
        _need(a, "resourceGroup", str, where)
        a.setdefault("poolAllocationMode", "BatchService")
        if a["poolAllocationMode"] not in ("BatchService", "UserSubscription"):
            raise WorldError(where + ".poolAllocationMode: must be one of 'BatchService', 'UserSubscription'")
        for q, d in (("dedicatedCoreQuota", 500), ("lowPriorityCoreQuota", 100), ("poolQuota", 100),
                     ("activeJobAndJobScheduleQuota", 300)):
            _nonneg_int(a, q, d, where)
        for j, fam in enumerate(_list_of(a, "dedicatedCoreQuotaPerVMFamily", where)):
            fw = "%s.dedicatedCoreQuotaPerVMFamily[%d]" % (where, j)
            _need(fam, "name", str, fw)
            _nonneg_int(fam, "coreQuota", 0, fw)
        a.setdefault("dedicatedCoreQuotaPerVMFamilyEnforced", False)
        if not isinstance(a["dedicatedCoreQuotaPerVMFamilyEnforced"], bool):
            raise WorldError(where + ".dedicatedCoreQuotaPerVMFamilyEnforced: expected true or false")
        if "autoStorage" in a:
            auto = _need(a, "autoStorage", dict, where)
            _need(auto, "storageAccountId", str, where + ".autoStorage")
            auto.setdefault("lastKeySync", "now-1d")
            auto.setdefault("authenticationMode", "StorageKeys")
        if "keyVaultReference" in a:
            kv = _need(a, "keyVaultReference", dict, where)
            _need(kv, "id", str, where + ".keyVaultReference")
            _need(kv, "url", str, where + ".keyVaultReference")
        default_modes = ["AAD", "TaskAuthenticationToken"] if a["poolAllocationMode"] == "UserSubscription" \
            else ["SharedKey", "AAD", "TaskAuthenticationToken"]
        a.setdefault("allowedAuthenticationModes", default_modes)


def _vm_sizes(w):
    """vmSizes: {name: cores} or {name: {cores, memoryGB, family, hyperVGenerations, cpuArchitecture,
    lowPriorityCapable, locations}}; normalised to the object form."""
    sizes = w.setdefault("vmSizes", {})
    if not isinstance(sizes, dict):
        raise WorldError("world.vmSizes: expected an object")
    for name, v in list(sizes.items()):
        where = "world.vmSizes.%s" % name
        if isinstance(v, int) and not isinstance(v, bool):
            v = {"cores": v}
        if not isinstance(v, dict):
            raise WorldError(where + ": expected a positive integer core count or an object")
        cores = v.get("cores")
        if not isinstance(cores, int) or isinstance(cores, bool) or cores <= 0:
            raise WorldError(where + ".cores: must be a positive integer")
        v.setdefault("memoryGB", float(cores * 4))
        v.setdefault("family", "standard%sFamily" % re.sub(r"[^A-Za-z0-9]", "", name.split("_", 1)[-1]))
        v.setdefault("hyperVGenerations", "V1,V2")
        gens = [g.strip() for g in str(v["hyperVGenerations"]).split(",") if g.strip()]
        if not gens or any(g not in HYPERV for g in gens):
            raise WorldError(where + ".hyperVGenerations: must be 'V1', 'V2' or 'V1,V2'")
        v.setdefault("cpuArchitecture", "x64")
        if v["cpuArchitecture"] not in ("x64", "Arm64"):
            raise WorldError(where + ".cpuArchitecture: must be one of 'x64', 'Arm64'")
        v.setdefault("lowPriorityCapable", True)
        v.setdefault("locations", [])
        if not isinstance(v["locations"], list) or not all(isinstance(x, str) for x in v["locations"]):
            raise WorldError(where + ".locations: expected an array of region names")
        v["locations"] = [norm_region(x) for x in v["locations"]]
        sizes[name] = v
    w.setdefault("defaultVmCores", 2)


def _galleries(w):
    for i, g in enumerate(_list_of(w, "galleries", "world")):
        where = "world.galleries[%d]" % i
        for k in ("name", "subscriptionId", "resourceGroup", "location"):
            _need(g, k, str, where)
        g["location"] = norm_region(g["location"])
        for j, im in enumerate(_list_of(g, "images", where)):
            iw = "%s.images[%d]" % (where, j)
            _need(im, "name", str, iw)
            props = _need(im, "properties", dict, iw)
            for k, allowed in (("osType", ("Linux", "Windows")), ("osState", ("Generalized", "Specialized"))):
                if _need(props, k, str, iw + ".properties") not in allowed:
                    raise WorldError("%s.properties.%s: must be one of %s" % (iw, k, ", ".join(allowed)))
            props.setdefault("hyperVGeneration", "V1")
            if props["hyperVGeneration"] not in HYPERV:
                raise WorldError(iw + ".properties.hyperVGeneration: must be one of 'V1', 'V2'")
            ident = _need(props, "identifier", dict, iw + ".properties")
            for k in ("publisher", "offer", "sku"):
                _need(ident, k, str, iw + ".properties.identifier")
            for k, ver in enumerate(_list_of(im, "versions", iw)):
                vw = "%s.versions[%d]" % (iw, k)
                _need(ver, "name", str, vw)
                vp = ver.setdefault("properties", {})
                if not isinstance(vp, dict):
                    raise WorldError(vw + ".properties: expected an object")
                pub = vp.setdefault("publishingProfile", {})
                for t, tr in enumerate(_list_of(pub, "targetRegions", vw + ".properties.publishingProfile")):
                    _need(tr, "name", str, "%s.properties.publishingProfile.targetRegions[%d]" % (vw, t))
                status = vp.get("replicationStatus")
                if status is not None:
                    for t, entry in enumerate(_list_of(status, "summary", vw + ".properties.replicationStatus")):
                        ew = "%s.properties.replicationStatus.summary[%d]" % (vw, t)
                        _need(entry, "region", str, ew)
                        if entry.setdefault("state", "Completed") not in ("Unknown", "Replicating", "Completed",
                                                                          "Failed"):
                            raise WorldError(ew + ".state: must be one of Unknown, Replicating, Completed, Failed")
                if "tags" in ver and not isinstance(ver["tags"], dict):
                    raise WorldError(vw + ".tags: expected an object")


def _storage(w):
    seen = set()
    for i, sa in enumerate(_list_of(w, "storageAccounts", "world")):
        where = "world.storageAccounts[%d]" % i
        name = _need(sa, "name", str, where)
        if not re.match(r"^[a-z0-9]{3,24}$", name):
            raise WorldError(where + ".name: must be 3-24 lowercase letters and digits")
        if name in seen:
            raise WorldError(where + ".name: duplicate storage account name (they are global)")
        seen.add(name)
        for k in ("subscriptionId", "resourceGroup", "location"):
            _need(sa, k, str, where)
        sa["location"] = norm_region(sa["location"])
        sa.setdefault("kind", "StorageV2")
        sa.setdefault("sku", {"name": "Standard_LRS", "tier": "Standard"})
        for j, blob in enumerate(_list_of(sa, "blobs", where)):
            bw = "%s.blobs[%d]" % (where, j)
            _need(blob, "container", str, bw)
            _need(blob, "name", str, bw)
            for k, allowed in (("osType", ("Linux", "Windows")), ("osState", ("Generalized", "Specialized"))):
                if k in blob and blob[k] not in allowed:
                    raise WorldError("%s.%s: must be one of %s" % (bw, k, ", ".join(allowed)))


def _subscriptions(w):
    """Subscriptions named explicitly, plus every one a resource names (listed after them)."""
    subs = _list_of(w, "subscriptions", "world")
    tenant = w["entra"]["tenantId"]
    known = set()
    for i, sub in enumerate(subs):
        where = "world.subscriptions[%d]" % i
        sid = _need(sub, "subscriptionId", str, where)
        known.add(sid.lower())
        sub.setdefault("displayName", "Subscription " + sid)
        sub.setdefault("tenantId", tenant)
        sub.setdefault("state", "Enabled")
        if "principals" in sub and (not isinstance(sub["principals"], list)
                                    or not all(isinstance(p, str) for p in sub["principals"])):
            raise WorldError(where + ".principals: expected an array of client ids")
    for thing in w["accounts"] + w["galleries"] + w["managedImages"] + w["storageAccounts"]:
        sid = thing["subscriptionId"]
        if sid.lower() not in known:
            known.add(sid.lower())
            subs.append({"subscriptionId": sid, "displayName": "Subscription " + sid, "tenantId": tenant,
                         "state": "Enabled"})


def _permissions(w):
    for i, perm in enumerate(_list_of(w, "permissions", "world")):
        where = "world.permissions[%d]" % i
        _need(perm, "principal", str, where)
        scope = _need(perm, "scope", str, where)
        if not scope.lower().startswith("/subscriptions/"):
            raise WorldError(where + ".scope: must be an ARM resource id")
        deny = _need(perm, "deny", list, where)
        if not deny or any(d not in ("read", "write") for d in deny):
            raise WorldError(where + ".deny: must be a non-empty array of 'read' and 'write'")


def validate_world(world, now=None):
    """Check a world dict and fill optional sections with defaults; returns a new dict."""
    from . import failures                      # a leaf module; imported here to keep world the root
    if not isinstance(world, dict):
        raise WorldError("world: expected a JSON object")
    w = {k: copy.deepcopy(v) for k, v in world.items() if not k.startswith("_")}
    for k in w:
        if k not in TOP_LEVEL_KEYS:
            raise WorldError("world.%s: unknown field (known: %s)" % (k, ", ".join(TOP_LEVEL_KEYS)))
    for section, typ in (("allocation", dict), ("arm", dict), ("entra", dict), ("supportedImages", list),
                         ("galleries", list), ("managedImages", list), ("storageAccounts", list),
                         ("subscriptions", list), ("permissions", list), ("pools", list), ("jobs", list),
                         ("nodeFailures", list)):
        if section in w and not isinstance(w[section], typ):
            raise WorldError("world.%s: expected %s" % (section, "an object" if typ is dict else "an array"))
    _accounts(w)
    _vm_sizes(w)
    alloc = dict(ALLOCATION_DEFAULTS)
    alloc.update(w.get("allocation") or {})
    for k, v in alloc.items():
        if k not in ALLOCATION_DEFAULTS:
            raise WorldError("world.allocation.%s: unknown field" % k)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            raise WorldError("world.allocation.%s: must be a non-negative number" % k)
    if alloc["nodesPerSecond"] <= 0:
        raise WorldError("world.allocation.nodesPerSecond: must be positive")
    w["allocation"] = alloc
    for i, img in enumerate(_list_of(w, "supportedImages", "world")):
        where = "world.supportedImages[%d]" % i
        _need(img, "nodeAgentSKUId", str, where)
        _need(img, "imageReference", dict, where)
        _need(img, "osType", str, where)
        img.setdefault("verificationType", "verified")
    _galleries(w)
    for i, m in enumerate(_list_of(w, "managedImages", "world")):
        where = "world.managedImages[%d]" % i
        for k in ("name", "subscriptionId", "resourceGroup", "location"):
            _need(m, k, str, where)
        m["location"] = norm_region(m["location"])
        _need(m, "properties", dict, where)
    _storage(w)
    arm = copy.deepcopy(ARM_DEFAULTS)
    arm.update(w.get("arm") or {})
    for k, v in arm.items():
        if k not in ARM_DEFAULTS:
            raise WorldError("world.arm.%s: unknown field" % k)
        if k == "replicationFailRegions":
            if not isinstance(v, list) or not all(isinstance(r, str) for r in v):
                raise WorldError("world.arm.replicationFailRegions: expected an array of region names")
            arm[k] = [norm_region(r) for r in v]
        elif not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            raise WorldError("world.arm.%s: must be a non-negative number" % k)
    if not isinstance(arm["listPageSize"], int) or arm["listPageSize"] < 1:
        raise WorldError("world.arm.listPageSize: must be a positive integer")
    w["arm"] = arm
    entra = w.setdefault("entra", {"tenantId": DEFAULT_TENANT, "clients": []})
    _need(entra, "tenantId", str, "world.entra")
    for i, c in enumerate(_list_of(entra, "clients", "world.entra")):
        _need(c, "clientId", str, "world.entra.clients[%d]" % i)
        _need(c, "clientSecret", str, "world.entra.clients[%d]" % i)
    _subscriptions(w)
    _permissions(w)
    names = [a["name"] for a in w["accounts"]]
    for section in ("pools", "jobs"):
        for i, item in enumerate(_list_of(w, section, "world")):
            where = "world.%s[%d]" % (section, i)
            item.setdefault("account", names[0])
            if item["account"] not in names:
                raise WorldError(where + ".account: no account named '%s'" % item["account"])
            _need(item, "id", str, where)
    for i, job in enumerate(w["jobs"]):
        where = "world.jobs[%d]" % i
        _nonneg_int(job, "taskCount", 0, where)
        if job.setdefault("state", "active") not in ("active", "disabled"):
            raise WorldError(where + ".state: must be one of 'active', 'disabled'")
    try:
        w["nodeFailures"] = failures.check_rules(w.get("nodeFailures", []))
    except ValueError as e:
        raise WorldError("world.nodeFailures: %s" % e)
    resolve_dates(w, time.time() if now is None else now)
    return w


def load_world(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise WorldError("%s: %s" % (path, e.strerror or e))
    except json.JSONDecodeError as e:
        raise WorldError("%s: invalid JSON at line %d column %d: %s" % (path, e.lineno, e.colno, e.msg))
    try:
        return validate_world(data)
    except WorldError as e:
        raise WorldError("%s: %s" % (path, e))


def default_world():
    """The built-in world: WORLD_FILE, validated.  Raises WorldError naming the file."""
    return load_world(WORLD_FILE)


def vm_size_info(world, vm_size):
    """The world's entry for `vm_size` (case-insensitive), or None."""
    low = (vm_size or "").lower()
    for name, info in world["vmSizes"].items():
        if name.lower() == low:
            return info
    return None


def vm_cores(world, vm_size):
    info = vm_size_info(world, vm_size)
    return info["cores"] if info else world["defaultVmCores"]


def vm_hyperv_generations(world, vm_size):
    """['V1', 'V2'] by default; the world's list for a known size."""
    info = vm_size_info(world, vm_size)
    return [g.strip() for g in (info["hyperVGenerations"] if info else "V1,V2").split(",")]


def norm_region(name):
    """'West Europe' and 'westeurope' name the same region."""
    return re.sub(r"\s+", "", name or "").lower()


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(text):
    """ISO 8601 duration ('PT15M', 'P1DT2H', 'PT90S') -> seconds, or None."""
    if not isinstance(text, str):
        return None
    m = _DURATION.match(text)
    if not m or text in ("P", "PT") or text.endswith("T"):
        return None
    if len(text) > 64:
        return None
    d, h, mi, s = m.groups()
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def format_duration(seconds):
    seconds = float(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + ("%dD" % days if days else "")
    t = ""
    if hours:
        t += "%dH" % hours
    if minutes:
        t += "%dM" % minutes
    if secs:
        t += ("%d" % secs if secs == int(secs) else ("%.3f" % secs).rstrip("0")) + "S"
    if t:
        out += "T" + t
    return out if out != "P" else "PT0S"


class SimClock:
    """Simulated time: starts at wall-clock time, runs `scale` times faster, and can jump."""

    def __init__(self, scale=1.0):
        self._lock = threading.Lock()
        self.scale = float(scale)
        self._base = time.time()
        self._mono = time.monotonic()

    def now(self):
        with self._lock:
            return self._base + (time.monotonic() - self._mono) * self.scale

    def advance(self, seconds):
        with self._lock:
            self._base += float(seconds)

    def set_scale(self, scale):
        with self._lock:
            now = self._base + (time.monotonic() - self._mono) * self.scale
            self._base, self._mono, self.scale = now, time.monotonic(), float(scale)


# {===================================================================
# Lookups shared by the data plane (virtualMachineImageId) and ARM
# ====================================================================

def _same(a, b):
    return (a or "").lower() == (b or "").lower()


def find_gallery(world, sub, rg, name):
    return next((g for g in world["galleries"] if _same(g["subscriptionId"], sub)
                 and _same(g["resourceGroup"], rg) and _same(g["name"], name)), None)


def find_gallery_image(gallery, name):
    return next((i for i in gallery["images"] if _same(i["name"], name)), None) if gallery else None


def find_gallery_version(image, name):
    return next((v for v in image["versions"] if _same(v["name"], name)), None) if image else None


def _version_key(name):
    return tuple(int(p) if p.isdigit() else 0 for p in name.split("."))


def latest_gallery_version(image):
    """The highest version not excluded from 'latest', or None."""
    usable = [v for v in image["versions"]
              if not v.get("properties", {}).get("publishingProfile", {}).get("excludeFromLatest")]
    return max(usable, key=lambda v: _version_key(v["name"])) if usable else None


def find_managed_image(world, sub, rg, name):
    return next((m for m in world["managedImages"] if _same(m["subscriptionId"], sub)
                 and _same(m["resourceGroup"], rg) and _same(m["name"], name)), None)


def find_storage_account(world, name):
    """Storage account names are global: the account named `name`, in any subscription, or None."""
    return next((s for s in world["storageAccounts"] if _same(s["name"], name)), None)


def known_resource_group(world, sub, rg):
    things = world["accounts"] + world["galleries"] + world["managedImages"] + world["storageAccounts"]
    return any(_same(t["subscriptionId"], sub) and _same(t["resourceGroup"], rg) for t in things)


def find_subscription(world, sub):
    return next((s for s in world["subscriptions"] if _same(s["subscriptionId"], sub)), None)


def known_subscription(world, sub):
    return find_subscription(world, sub) is not None


def sees_subscription(subscription, principal):
    """True when `principal` (a client id, or None for keys) may see `subscription`."""
    allowed = subscription.get("principals")
    return allowed is None or any(_same(p, principal) for p in allowed)


def same(a, b):
    return _same(a, b)
