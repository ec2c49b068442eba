"""ARM's state (moto's models.py for the management plane): Compute Gallery
image definitions and versions with their per-region replication, managed
images, storage accounts, Batch accounts, subscriptions, the principals' denied
scopes, and the long-running operations that ARM writes start.

Time is lazy, as in batch_models: a write records when things end (replication
of each region, the provisioning of a resource, an operation) and every read
computes the state at the request's simulated time.  No HTTP here; rendering to
the ARM JSON shapes is here because what a resource looks like depends on time.

Internal fields live beside `properties` (never inside it) and start with '_':
  version["_repl"]  [{name, count, ready, start, end, fail, state?, progress?}] per region
  resource["_prov"] {"state": "Creating"|"Updating", "end": t, "failed": bool}
"""

import copy
import re
import uuid

from . import world as W
from .wire import iso

AGGREGATED = ("Unknown", "InProgress", "Completed", "Failed")
BLOB_URI = re.compile(r"^https://([a-z0-9]{3,24})\.blob\.core\.windows\.net/([^/?#]+)/([^?#]+)$")
FAILED_DETAIL = "Failed with internal server error."


def rid(sub, rg, *parts):
    return "/subscriptions/%s/resourceGroups/%s/providers/%s" % (sub, rg, "/".join(parts))


def gallery_id(gallery):
    return rid(gallery["subscriptionId"], gallery["resourceGroup"], "Microsoft.Compute", "galleries", gallery["name"])


def definition_id(gallery, image):
    return gallery_id(gallery) + "/images/" + image["name"]


def version_id(gallery, image, version):
    return definition_id(gallery, image) + "/versions/" + version["name"]


def managed_image_id(image):
    return rid(image["subscriptionId"], image["resourceGroup"], "Microsoft.Compute", "images", image["name"])


def storage_id(sa):
    return rid(sa["subscriptionId"], sa["resourceGroup"], "Microsoft.Storage", "storageAccounts", sa["name"])


def account_id(account):
    return rid(account["subscriptionId"], account["resourceGroup"], "Microsoft.Batch", "batchAccounts",
               account["name"])


def _under(scope, target):
    """True when ARM id `target` is `scope` or lies beneath it (segment-wise, case-insensitive)."""
    s, t = scope.rstrip("/").lower(), target.rstrip("/").lower()
    return t == s or t.startswith(s + "/")


class ArmBackend:
    """The management plane's resources, which live in the world dict, and its operations."""

    def __init__(self, world, start):
        self.world = world
        self.cfg = world["arm"]
        self.ops = {}
        for g in world["galleries"]:
            for im in g["images"]:
                for v in im["versions"]:
                    v["_repl"] = self._world_replication(v, g, start)
        for image in world["managedImages"]:
            self.check_vhd(image)

    def check_vhd(self, image):
        """Azure cannot tell what a VHD holds: an image made from a blob the world describes otherwise
        (osType, osState) is marked `_unprepared`, and its nodes never become usable."""
        disk = image["properties"].get("storageProfile", {}).get("osDisk", {})
        blob = self.blob(disk.get("blobUri") or "")
        image.pop("_unprepared", None)
        for field in ("osType", "osState"):
            if blob is not None and field in blob and field in disk and blob[field] != disk[field]:
                image["_unprepared"] = "the VHD is %s, the image says %s" % (blob[field], disk[field])

    def blob(self, uri):
        """The world's record of the blob at `uri` (https://{account}.blob.core.windows.net/{container}/{name}),
        or None."""
        m = BLOB_URI.match(uri)
        sa = W.find_storage_account(self.world, m.group(1)) if m else None
        if sa is None:
            return None
        return next((b for b in sa["blobs"] if b["container"] == m.group(2) and b["name"] == m.group(3)), None)

    # {---------------------------------------------------------- permissions

    def denied(self, principal, kind, target):
        """The first world permission that denies `principal` action `kind` ('read'/'write') on
        ARM id `target` (or a parent of it), or None."""
        if principal is None:
            return None
        for perm in self.world["permissions"]:
            if W.same(perm["principal"], principal) and kind in perm["deny"] and _under(perm["scope"], target):
                return perm
        return None

    # {---------------------------------------------------------- replication

    @staticmethod
    def _world_replication(version, gallery, start):
        """Per-region records for a version as the world file gives it: static states."""
        props = version["properties"]
        pub = props.get("publishingProfile", {})
        default = pub.get("replicaCount", 1)
        regions = pub.get("targetRegions") or [{"name": gallery["location"], "regionalReplicaCount": default}]
        summary = {W.norm_region(e["region"]): e for e in (props.get("replicationStatus") or {}).get("summary", [])}
        props.pop("replicationStatus", None)
        records = []
        for tr in regions:
            name = W.norm_region(tr["name"])
            count = tr.get("regionalReplicaCount") or default
            entry = summary.get(name, {"state": "Completed"})
            state = entry.get("state", "Completed")
            rec = {"name": name, "count": count, "ready": count if state == "Completed" else 0,
                   "start": start, "end": None, "fail": None, "state": state,
                   "progress": entry.get("progress", 100 if state == "Completed" else 0),
                   "details": entry.get("details", "")}
            records.append(rec)
        return records

    def replicate(self, version, target_regions, default_count, now):
        """Start replication to `target_regions` (validated TargetRegion dicts): a region whose
        replicas already exist keeps them; new replicas take replicationSecondsPerReplica each
        (regions in parallel).  Returns the time the last region ends."""
        before = {r["name"]: r for r in version.get("_repl", [])}
        per = float(self.cfg["replicationSecondsPerReplica"])
        fails = self.cfg["replicationFailRegions"]
        records, end = [], now
        for tr in target_regions:
            name = W.norm_region(tr["name"])
            count = tr.get("regionalReplicaCount") or default_count
            prev = before.get(name)
            ready = self.ready_replicas(prev, now) if prev else 0
            if ready >= count:
                rec = {"name": name, "count": count, "ready": count, "start": now, "end": now, "fail": None}
            else:
                finish = now + per * (count - ready)
                rec = {"name": name, "count": count, "ready": ready, "start": now, "end": finish,
                       "fail": FAILED_DETAIL if name in fails else None}
                end = max(end, finish)
            records.append(rec)
        version["_repl"] = records
        return end

    @staticmethod
    def region_state(rec, now):
        """(state, progress, details) of one region record at `now`."""
        if rec["end"] is None:                         # as the world file says, frozen
            return rec["state"], rec["progress"], rec["details"]
        if now >= rec["end"]:
            if rec["fail"]:
                return "Failed", 100, rec["fail"]
            return "Completed", 100, ""
        span = rec["end"] - rec["start"]
        return "Replicating", int(100 * (now - rec["start"]) / span) if span > 0 else 0, ""

    def ready_replicas(self, rec, now):
        """Replicas in a region that can serve VMs at `now`."""
        state = self.region_state(rec, now)[0]
        return rec["count"] if state == "Completed" else rec["ready"]

    def replication_status(self, version, now):
        summary = []
        for rec in version.get("_repl", []):
            state, progress, details = self.region_state(rec, now)
            summary.append({"region": rec["name"], "state": state, "details": details, "progress": progress})
        states = {e["state"] for e in summary}
        if "Failed" in states:
            agg = "Failed"
        elif "Replicating" in states:
            agg = "InProgress"
        elif "Unknown" in states or not summary:
            agg = "Unknown"
        else:
            agg = "Completed"
        return {"aggregatedState": agg, "summary": summary}

    def region_availability(self, version, region, now):
        """(ready replicas, state) of `version` in `region` at `now`; state None when the version
        has no target region there."""
        for rec in version.get("_repl", []):
            if rec["name"] == W.norm_region(region):
                return self.ready_replicas(rec, now), self.region_state(rec, now)[0]
        return 0, None

    def failed_regions(self, version, now):
        return [r for r in version.get("_repl", []) if self.region_state(r, now)[0] == "Failed"]

    # {---------------------------------------------------------- provisioning and operations

    @staticmethod
    def provisioning_state(resource, now):
        prov = resource.get("_prov")
        if prov is None or now >= prov["end"]:
            return "Failed" if prov and prov.get("failed") else "Succeeded"
        return prov["state"]

    def start_operation(self, resource, state, now, end, error=None):
        """Mark `resource` Creating/Updating until `end`; returns the new operation's id."""
        resource["_prov"] = {"state": state, "end": end, "failed": error is not None}
        op_id = str(uuid.uuid4())
        self.ops[op_id] = {"start": now, "end": end, "error": error}
        return op_id

    def operation(self, op_id, now):
        """The operation-status body at `now`, or None for an unknown id."""
        op = self.ops.get(op_id.lower())
        if op is None:
            return None
        body = {"startTime": iso(op["start"]), "status": "InProgress", "name": op_id.lower()}
        if now >= op["end"]:
            body["endTime"] = iso(op["end"])
            if op["error"] is not None:
                body.update(status="Failed", error=op["error"])
            else:
                body["status"] = "Succeeded"
        return body

    # {---------------------------------------------------------- rendering

    def gallery_json(self, gallery):
        out = {"id": gallery_id(gallery), "name": gallery["name"], "type": "Microsoft.Compute/galleries",
               "location": gallery["location"],
               "properties": {"identifier": {"uniqueName": "%s-%s" % (gallery["subscriptionId"],
                                                                      gallery["name"].upper())},
                              "provisioningState": "Succeeded"}}
        if gallery.get("description"):
            out["properties"]["description"] = gallery["description"]
        if gallery.get("tags"):
            out["tags"] = copy.deepcopy(gallery["tags"])
        return out

    def definition_json(self, gallery, image, now):
        props = copy.deepcopy(image["properties"])
        props["provisioningState"] = self.provisioning_state(image, now)
        out = {"id": definition_id(gallery, image), "name": image["name"],
               "type": "Microsoft.Compute/galleries/images", "location": gallery["location"], "properties": props}
        if image.get("tags"):
            out["tags"] = copy.deepcopy(image["tags"])
        return out

    def version_json(self, gallery, image, version, now, expand=False):
        props = copy.deepcopy(version["properties"])
        pub = props.setdefault("publishingProfile", {})
        pub["targetRegions"] = [dict(tr, name=W.norm_region(tr["name"])) for tr in pub.get("targetRegions", [])] \
            or [{"name": r["name"], "regionalReplicaCount": r["count"]} for r in version.get("_repl", [])]
        pub.setdefault("replicaCount", 1)
        pub.setdefault("excludeFromLatest", False)
        props["provisioningState"] = self.provisioning_state(version, now)
        if expand:
            props["replicationStatus"] = self.replication_status(version, now)
        out = {"id": version_id(gallery, image, version), "name": version["name"],
               "type": "Microsoft.Compute/galleries/images/versions", "location": gallery["location"],
               "properties": props}
        if version.get("tags") is not None:
            out["tags"] = copy.deepcopy(version["tags"])
        return out

    def managed_image_json(self, image, now):
        props = copy.deepcopy(image["properties"])
        props["provisioningState"] = self.provisioning_state(image, now)
        out = {"id": managed_image_id(image), "name": image["name"], "type": "Microsoft.Compute/images",
               "location": image["location"], "properties": props}
        if image.get("tags"):
            out["tags"] = copy.deepcopy(image["tags"])
        return out

    @staticmethod
    def storage_json(sa):
        name = sa["name"]
        endpoints = {kind: "https://%s.%s.core.windows.net/" % (name, kind)
                     for kind in ("blob", "queue", "table", "file", "dfs")}
        endpoints["web"] = "https://%s.z6.web.core.windows.net/" % name
        out = {"id": storage_id(sa), "name": name, "type": "Microsoft.Storage/storageAccounts",
               "location": sa["location"], "kind": sa["kind"], "sku": copy.deepcopy(sa["sku"]),
               "tags": copy.deepcopy(sa.get("tags", {})),
               "properties": {"provisioningState": "Succeeded", "primaryEndpoints": endpoints,
                              "primaryLocation": sa["location"], "statusOfPrimary": "available",
                              "supportsHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2",
                              "allowBlobPublicAccess": False,
                              "creationTime": sa.get("creationTime", "2025-01-01T00:00:00.0000000Z")}}
        return out

    @staticmethod
    def account_json(account):
        props = {
            "accountEndpoint": "%s.%s.batch.azure.com" % (account["name"], account["region"]),
            "nodeManagementEndpoint": "%s.nodes.%s.batch.azure.com" % (account["name"], account["region"]),
            "provisioningState": "Succeeded",
            "poolAllocationMode": account["poolAllocationMode"],
            "poolQuota": account["poolQuota"],
            "activeJobAndJobScheduleQuota": account["activeJobAndJobScheduleQuota"],
            "allowedAuthenticationModes": list(account["allowedAuthenticationModes"]),
            "publicNetworkAccess": "Enabled",
        }
        # "For accounts with PoolAllocationMode set to UserSubscription, quota is managed on the
        # subscription so this value is not returned." (BatchAccountProperties, 2025-06-01)
        if account["poolAllocationMode"] == "BatchService":
            props.update(dedicatedCoreQuota=account["dedicatedCoreQuota"],
                         lowPriorityCoreQuota=account["lowPriorityCoreQuota"],
                         dedicatedCoreQuotaPerVMFamily=copy.deepcopy(account["dedicatedCoreQuotaPerVMFamily"]),
                         dedicatedCoreQuotaPerVMFamilyEnforced=account["dedicatedCoreQuotaPerVMFamilyEnforced"])
        if "keyVaultReference" in account:
            props["keyVaultReference"] = copy.deepcopy(account["keyVaultReference"])
        if "autoStorage" in account:
            props["autoStorage"] = copy.deepcopy(account["autoStorage"])
        return {"id": account_id(account), "name": account["name"], "type": "Microsoft.Batch/batchAccounts",
                "location": account["region"], "identity": {"type": "None"}, "properties": props}

    @staticmethod
    def subscription_json(sub):
        return {"id": "/subscriptions/" + sub["subscriptionId"], "authorizationSource": "RoleBased",
                "managedByTenants": [], "subscriptionId": sub["subscriptionId"], "tenantId": sub["tenantId"],
                "displayName": sub["displayName"], "state": sub["state"],
                "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01",
                                         "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"}}

    def world_regions(self):
        """Every region the world names: accounts, galleries, replicas, storage, managed images."""
        w = self.world
        regions = {a["region"] for a in w["accounts"]} | {s["location"] for s in w["storageAccounts"]}
        regions |= {m["location"] for m in w["managedImages"]}
        for g in w["galleries"]:
            regions.add(g["location"])
            for im in g["images"]:
                for v in im["versions"]:
                    regions |= {r["name"] for r in v.get("_repl", [])}
        return sorted(regions)

    def sku_json(self, name, info):
        locations = info["locations"] or self.world_regions()
        caps = [("vCPUs", str(info["cores"])), ("vCPUsAvailable", str(info["cores"])),
                ("MemoryGB", ("%g" % info["memoryGB"])), ("HyperVGenerations", info["hyperVGenerations"]),
                ("CpuArchitectureType", info["cpuArchitecture"]),
                ("LowPriorityCapable", "True" if info["lowPriorityCapable"] else "False"),
                ("PremiumIO", "True" if "s" in name.split("_", 1)[-1].split("_")[0][1:].lower() else "False"),
                ("MaxDataDiskCount", str(max(2, info["cores"] * 2)))]
        return {"resourceType": "virtualMachines", "name": name, "tier": "Standard",
                "size": name.split("_", 1)[-1], "family": info["family"], "locations": locations,
                "locationInfo": [{"location": loc, "zones": [], "zoneDetails": []} for loc in locations],
                "capabilities": [{"name": k, "value": v} for k, v in caps], "restrictions": []}
