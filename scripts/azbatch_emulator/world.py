"""The world (accounts, quotas, VM sizes, supported images, galleries, managed
images, Entra ID principals), its JSON file format, and the simulated clock.

The built-in world is scripts/emulator-world.json (WORLD_FILE), read by default_world().
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
                       "minResizeSeconds": 2, "deleteSeconds": 5}
DEFAULT_TENANT = "00000000-0000-0000-0000-0000000000aa"
TOP_LEVEL_KEYS = ("accounts", "vmSizes", "defaultVmCores", "allocation", "supportedImages", "galleries",
                  "managedImages", "arm", "entra")


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


def validate_world(world):
    """Check a world dict and fill optional sections with defaults; returns a new dict."""
    if not isinstance(world, dict):
        raise WorldError("world: expected a JSON object")
    w = {k: copy.deepcopy(v) for k, v in world.items() if not k.startswith("_")}
    for k in w:
        if k not in TOP_LEVEL_KEYS:
            raise WorldError("world.%s: unknown field (known: %s)" % (k, ", ".join(TOP_LEVEL_KEYS)))
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
        _need(a, "subscriptionId", str, where)
        _need(a, "resourceGroup", str, where)
        a.setdefault("poolAllocationMode", "BatchService")
        if a["poolAllocationMode"] not in ("BatchService", "UserSubscription"):
            raise WorldError(where + ".poolAllocationMode: must be one of 'BatchService', 'UserSubscription'")
        for q, d in (("dedicatedCoreQuota", 500), ("lowPriorityCoreQuota", 100), ("poolQuota", 100)):
            a.setdefault(q, d)
            if not isinstance(a[q], int) or isinstance(a[q], bool) or a[q] < 0:
                raise WorldError("%s.%s: must be a non-negative integer" % (where, q))
        default_modes = ["AAD", "TaskAuthenticationToken"] if a["poolAllocationMode"] == "UserSubscription" \
            else ["SharedKey", "AAD", "TaskAuthenticationToken"]
        a.setdefault("allowedAuthenticationModes", default_modes)
    w.setdefault("vmSizes", {})
    if not isinstance(w["vmSizes"], dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in w["vmSizes"].values()):
        raise WorldError("world.vmSizes: expected an object of positive integer core counts")
    w.setdefault("defaultVmCores", 2)
    for section, typ in (("allocation", dict), ("arm", dict), ("entra", dict), ("supportedImages", list),
                         ("galleries", list), ("managedImages", list)):
        if section in w and not isinstance(w[section], typ):
            raise WorldError("world.%s: expected %s" % (section, "an object" if typ is dict else "an array"))
    alloc = dict(ALLOCATION_DEFAULTS)
    alloc.update(w.get("allocation") or {})
    for k, v in alloc.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            raise WorldError("world.allocation.%s: must be a non-negative number" % k)
    if alloc["nodesPerSecond"] <= 0:
        raise WorldError("world.allocation.nodesPerSecond: must be positive")
    w["allocation"] = alloc
    for i, img in enumerate(w.setdefault("supportedImages", [])):
        where = "world.supportedImages[%d]" % i
        _need(img, "nodeAgentSKUId", str, where)
        _need(img, "imageReference", dict, where)
        _need(img, "osType", str, where)
        img.setdefault("verificationType", "verified")
    for i, g in enumerate(w.setdefault("galleries", [])):
        where = "world.galleries[%d]" % i
        for k in ("name", "subscriptionId", "resourceGroup", "location"):
            _need(g, k, str, where)
        for j, im in enumerate(g.setdefault("images", [])):
            iw = "%s.images[%d]" % (where, j)
            _need(im, "name", str, iw)
            props = _need(im, "properties", dict, iw)
            for k in ("osType", "osState"):
                _need(props, k, str, iw + ".properties")
            _need(props, "identifier", dict, iw + ".properties")
            for k, ver in enumerate(im.setdefault("versions", [])):
                _need(ver, "name", str, "%s.versions[%d]" % (iw, k))
                ver.setdefault("properties", {})
    for i, m in enumerate(w.setdefault("managedImages", [])):
        where = "world.managedImages[%d]" % i
        for k in ("name", "subscriptionId", "resourceGroup", "location"):
            _need(m, k, str, where)
        _need(m, "properties", dict, where)
    arm = {"managedImageCreateSeconds": 20}
    arm.update(w.get("arm") or {})
    w["arm"] = arm
    entra = w.setdefault("entra", {"tenantId": DEFAULT_TENANT, "clients": []})
    _need(entra, "tenantId", str, "world.entra")
    for i, c in enumerate(entra.setdefault("clients", [])):
        _need(c, "clientId", str, "world.entra.clients[%d]" % i)
        _need(c, "clientSecret", str, "world.entra.clients[%d]" % i)
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


def vm_cores(world, vm_size):
    sizes = world["vmSizes"]
    low = vm_size.lower()
    for name, cores in sizes.items():
        if name.lower() == low:
            return cores
    return world["defaultVmCores"]


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


def known_resource_group(world, sub, rg):
    things = world["accounts"] + world["galleries"] + world["managedImages"]
    return any(_same(t["subscriptionId"], sub) and _same(t["resourceGroup"], rg) for t in things)


def known_subscription(world, sub):
    things = world["accounts"] + world["galleries"] + world["managedImages"]
    return any(_same(t["subscriptionId"], sub) for t in things)
