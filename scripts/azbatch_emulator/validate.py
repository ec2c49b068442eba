"""Request validation for the Batch data plane: the service's 4xx error
builders, the api-version check, JSON bodies and property values.  The checks
on a pool's image (marketplace, gallery and managed images) are in images.
"""

import json
import re

from . import auth, world as W
from .wire import ApiError

API_VERSION = "2025-06-01"
OLDEST_SUFFIXED = "2022-10-01"
POOL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# {===================================================================
# Errors
# ====================================================================

def missing(name):
    return ApiError(400, "MissingRequiredProperty", "A required property was not specified in the request body.",
                    [("PropertyName", name)])


def invalid(name, reason):
    return ApiError(400, "InvalidPropertyValue",
                    "The value provided for one of the properties in the request body is invalid.",
                    [("PropertyName", name), ("Reason", reason)])


def conflict(code, message, values=None):
    return ApiError(409, code, message, values)


def pool_not_found():
    return ApiError(404, "PoolNotFound", "The specified pool does not exist.")


def being_deleted():
    return conflict("PoolBeingDeleted", "The specified pool has been marked for deletion and is being reclaimed.")


def check_api_version(req):
    value = req.q("api-version")
    if value is None:
        raise ApiError(400, "MissingRequiredQueryParameter",
                       "A query parameter that's mandatory for this request is not specified.",
                       [("QueryParameterName", "api-version")])
    m = re.match(r"^(\d{4}-\d{2}-\d{2})\.(\d+)\.(\d+)$", value)
    if value == API_VERSION or (m and OLDEST_SUFFIXED <= m.group(1) < API_VERSION):
        return value
    raise ApiError(400, "InvalidQueryParameterValue",
                   "Value for one of the query parameters specified in the request URI is invalid.",
                   [("QueryParameterName", "api-version"), ("QueryParameterValue", value),
                    ("Reason", "The specified api version is not supported. Use %s or an older "
                               "version from %s.16.0 onward." % (API_VERSION, OLDEST_SUFFIXED))])


MAX_JSON_DEPTH = 64


def parse_json(data):
    """Bytes -> a JSON value nested at most MAX_JSON_DEPTH levels; raises ValueError."""
    try:
        value = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError("the JSON value nests too deeply")
    except UnicodeDecodeError as e:
        raise ValueError("the body is not UTF-8: %s" % e)
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise ValueError("the JSON value nests deeper than %d levels" % MAX_JSON_DEPTH)
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return value


def read_json(req):
    if not req.body.strip():
        raise ApiError(400, "InvalidRequestBody", "The request body is missing.")
    ctype = (req.header("Content-Type") or "").lower()
    if "json" not in ctype:
        raise ApiError(400, "InvalidHeaderValue",
                       "The value for one of the HTTP headers is not in the correct format.",
                       [("HeaderName", "Content-Type"), ("HeaderValue", req.header("Content-Type") or ""),
                        ("Reason", "Request bodies must be application/json; odata=minimalmetadata.")])
    try:
        body = parse_json(req.body)
    except ValueError as e:
        raise ApiError(400, "InvalidRequestBody", "The specified request body is not syntactically valid.",
                       [("Reason", str(e))])
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidRequestBody", "The specified request body is not syntactically valid.",
                       [("Reason", "The request body must be a JSON object.")])
    return body


# {===================================================================
# Value checks
# ====================================================================

def reject_unknown(body, allowed):
    for k in body:
        if k not in allowed and k != "odata.metadata":
            raise ApiError(400, "UnsupportedProperty",
                           "One of the properties specified in the request body is not supported.",
                           [("PropertyName", k)])


def int_field(body, name, low=None, high=None):
    v = body.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise invalid(name, "The value must be an integer.")
    if low is not None and v < low:
        raise invalid(name, "The value must be at least %d." % low)
    if high is not None and v > high:
        raise invalid(name, "The value must be at most %d." % high)
    return v


def bool_field(body, name):
    v = body.get(name)
    if v is not None and not isinstance(v, bool):
        raise invalid(name, "The value must be a boolean.")
    return v


def str_field(body, name, required=False, maxlen=None):
    v = body.get(name)
    if v is None:
        if required:
            raise missing(name)
        return None
    if not isinstance(v, str):
        raise invalid(name, "The value must be a string.")
    if required and not v.strip():
        raise missing(name)
    if maxlen is not None and len(v) > maxlen:
        raise invalid(name, "The value must be at most %d characters long." % maxlen)
    return v


def duration_field(body, name, minimum=None, maximum=None):
    raw = body.get(name)
    if raw is None:
        return None
    secs = W.parse_duration(raw)
    if secs is None:
        raise invalid(name, "The value is not a valid ISO 8601 duration.")
    if minimum is not None and secs < minimum:
        raise invalid(name, "The value must be at least %s." % W.format_duration(minimum))
    if maximum is not None and secs > maximum:
        raise invalid(name, "The value must be at most %s." % W.format_duration(maximum))
    return secs


def list_field(body, name, maxlen=None):
    v = body.get(name)
    if v is None:
        return None
    if not isinstance(v, list):
        raise invalid(name, "The value must be an array.")
    if maxlen is not None and len(v) > maxlen:
        raise invalid(name, "The array can contain at most %d items." % maxlen)
    return v


def check_common(body):
    """Checks shared by create and patch for the fields they have in common."""
    str_field(body, "displayName", maxlen=1024)
    if "vmSize" in body:
        size = str_field(body, "vmSize", required=True)
        if size.lower() in ("standard_a0", "extrasmall"):
            raise invalid("vmSize", "The VM size %s is not supported by Azure Batch." % size)
    bool_field(body, "enableInterNodeCommunication")
    st = body.get("startTask")
    if st is not None:
        if not isinstance(st, dict):
            raise invalid("startTask", "The value must be an object.")
        str_field(st, "commandLine", required=True)
        int_field(st, "maxTaskRetryCount", low=-1)
    for item in list_field(body, "metadata") or []:
        if not isinstance(item, dict):
            raise invalid("metadata", "Each metadata item must be an object.")
        str_field(item, "name", required=True)
        if "value" not in item:
            raise missing("value")
    for ref in list_field(body, "applicationPackageReferences", maxlen=10) or []:
        if not isinstance(ref, dict):
            raise invalid("applicationPackageReferences", "Each reference must be an object.")
        str_field(ref, "applicationId", required=True)
    for ua in list_field(body, "userAccounts") or []:
        if not isinstance(ua, dict):
            raise invalid("userAccounts", "Each user account must be an object.")
        str_field(ua, "name", required=True, maxlen=20)
        str_field(ua, "password", required=True)
    tsp = body.get("taskSchedulingPolicy")
    if tsp is not None:
        if not isinstance(tsp, dict):
            raise invalid("taskSchedulingPolicy", "The value must be an object.")
        fill = str_field(tsp, "nodeFillType", required=True)
        if fill not in ("spread", "pack"):
            raise invalid("nodeFillType", "The value must be one of 'spread', 'pack'.")


def refuse_shared_key_for_compute(req, body):
    vmc = body.get("virtualMachineConfiguration")
    if req.auth_scheme == "SharedKey" and isinstance(vmc, dict) and isinstance(vmc.get("imageReference"), dict) \
            and vmc["imageReference"].get("virtualMachineImageId"):
        raise ApiError(403, "AuthenticationFailed", auth.AUTH_FAILED,
                       [("AuthenticationErrorDetail", "The specified type of authentication SharedKey is not "
                                                      "allowed when external resources of type Compute are linked.")])
