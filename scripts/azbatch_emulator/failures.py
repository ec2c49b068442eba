"""Nodes that fail on purpose: rules saying that a share of the nodes of one image
end `unusable` or `starttaskfailed` after `starting`.

A rule is {"image": ID, "unusable": P, "startTaskFailed": Q} plus, optionally,
"errorCode", "errorMessage", "errorDetails" (the unusable node's error) and
"exitCode" (the failed start task's).  ID is a gallery image version or image
definition ARM id, a managed image ARM id, or a marketplace URN
"publisher:offer:sku[:version]" (without a version it matches every version).

A node's fate is drawn once, when it is allocated, from a hash of the seed, the
account, the pool id and the node's sequence number in the pool: the same seed and
the same pools give the same failing nodes, whatever the order of requests.
A leaf module: it imports nothing from the emulator.
"""

import hashlib
import json
import os

RULE_FIELDS = ("image", "unusable", "startTaskFailed", "errorCode", "errorMessage", "errorDetails", "exitCode")

# Not a code seen in a stored source: the service's docs say only that an unusable node may carry
# errors, or none when Batch cannot reach the VM (docs/emulator.md, "Nodes that fail").
UNUSABLE_CODE = "NodeAgentNotResponding"
UNUSABLE_MESSAGE = ("The Batch node agent on the compute node stopped responding; the node cannot run tasks.")
UNUSABLE_DETAILS = [{"name": "Reason", "value": "The node did not report to the Batch service after it started. "
                                                "A custom image that is not prepared for Batch can cause this."}]
# The code and message a start task that exits non-zero gets (microsoft/ga4gh-tes PR #705).
START_TASK_CODE = "FailureExitCode"
START_TASK_MESSAGE = "The task process exited with an unexpected exit code"


def image_key(text):
    """The form rules and images are compared in: lower case, no trailing '/'."""
    return text.strip().rstrip("/").lower()


def check_rule(rule, where="rule"):
    """A valid rule, normalised; raises ValueError naming the field."""
    if not isinstance(rule, dict):
        raise ValueError("%s: expected an object" % where)
    for k in rule:
        if k not in RULE_FIELDS:
            raise ValueError("%s.%s: unknown field (known: %s)" % (where, k, ", ".join(RULE_FIELDS)))
    image = rule.get("image")
    if not isinstance(image, str) or not image.strip():
        raise ValueError("%s.image: expected a non-empty image id or URN" % where)
    out = {"image": image.strip()}
    for k in ("unusable", "startTaskFailed"):
        v = rule.get(k, 0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ValueError("%s.%s: must be a share between 0 and 1" % (where, k))
        out[k] = float(v)
    if out["unusable"] + out["startTaskFailed"] > 1 + 1e-9:
        raise ValueError("%s: unusable + startTaskFailed must not exceed 1" % where)
    for k in ("errorCode", "errorMessage"):
        if k in rule:
            if not isinstance(rule[k], str) or not rule[k]:
                raise ValueError("%s.%s: expected a non-empty string" % (where, k))
            out[k] = rule[k]
    if "errorDetails" in rule:
        det = rule["errorDetails"]
        if not isinstance(det, list) or not all(isinstance(d, dict) and isinstance(d.get("name"), str)
                                                and isinstance(d.get("value"), str) and len(d) == 2 for d in det):
            raise ValueError("%s.errorDetails: expected an array of {name, value} strings" % where)
        out["errorDetails"] = [dict(d) for d in det]
    if "exitCode" in rule:
        code = rule["exitCode"]
        if isinstance(code, bool) or not isinstance(code, int) or code == 0:
            raise ValueError("%s.exitCode: expected a non-zero integer" % where)
        out["exitCode"] = code
    return out


def check_rules(rules):
    if not isinstance(rules, list):
        raise ValueError("expected an array of rules")
    out, seen = [], set()
    for i, rule in enumerate(rules):
        r = check_rule(rule, "[%d]" % i)
        key = image_key(r["image"])
        if key in seen:
            raise ValueError("[%d].image: a second rule for %s" % (i, r["image"]))
        seen.add(key)
        out.append(r)
    return out


class Fate:
    """What becomes of one node after `starting`: kind 'unusable' or 'starttaskfailed'."""
    __slots__ = ("kind", "errors", "exit_code")

    def __init__(self, kind, errors=None, exit_code=1):
        self.kind, self.errors, self.exit_code = kind, errors, exit_code

    def start_task_info(self, start, end):
        return {"state": "completed", "startTime": start, "endTime": end, "exitCode": self.exit_code,
                "result": "failure", "retryCount": 0,
                "failureInfo": {"category": "usererror", "code": START_TASK_CODE, "message": START_TASK_MESSAGE,
                                "details": [{"name": "Message", "value": START_TASK_MESSAGE}]}}


def unusable(code=UNUSABLE_CODE, message=UNUSABLE_MESSAGE, details=None):
    return Fate("unusable", [{"code": code, "message": message,
                              "errorDetails": json.loads(json.dumps(details if details is not None
                                                                    else UNUSABLE_DETAILS))}])


class FailureRules:
    """The rules in force (world nodeFailures, changed by POST /_emulator/failures) and the seed."""

    def __init__(self, rules, seed=None):
        self.rules = list(rules)
        self.seed = seed if seed is not None else int.from_bytes(os.urandom(4), "big")

    def as_dict(self):
        return {"rules": [dict(r) for r in self.rules], "seed": self.seed}

    def upsert(self, rule):
        key = image_key(rule["image"])
        self.rules = [r for r in self.rules if image_key(r["image"]) != key]
        if rule["unusable"] or rule["startTaskFailed"]:
            self.rules.append(rule)

    def rule_for(self, keys):
        """The rule for the first of `keys` (most specific first) that has one, or None."""
        by_key = {image_key(r["image"]): r for r in self.rules}
        return next((by_key[k] for k in keys if k in by_key), None)

    def draw(self, account, pool_id, seq):
        digest = hashlib.sha256(("%s/%s/%s/%d" % (self.seed, account, pool_id.lower(), seq)).encode()).hexdigest()
        return int(digest[:13], 16) / float(16 ** 13)

    def fate(self, keys, account, pool_id, seq):
        """The Fate of node `seq` of a pool on an image known by `keys`, or None (it goes idle)."""
        rule = self.rule_for(keys)
        if rule is None:
            return None
        u = self.draw(account, pool_id, seq)
        if u < rule["unusable"]:
            return unusable(rule.get("errorCode", UNUSABLE_CODE), rule.get("errorMessage", UNUSABLE_MESSAGE),
                            rule.get("errorDetails"))
        if u < rule["unusable"] + rule["startTaskFailed"]:
            return Fate("starttaskfailed", exit_code=rule.get("exitCode", 1))
        return None
