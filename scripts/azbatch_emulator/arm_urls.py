"""ARM's routes (moto's urls.py): method + path -> handler, with the checks every
ARM request goes through, in ARM's order: the route (404 InvalidResourceType),
the method (405 HttpMethodNotAllowed), api-version (400 MissingApiVersionParameter
/ NoRegisteredProviderFound), the subscription (404 SubscriptionNotFound, 403
AuthorizationFailed when the principal cannot see it) and the resource group
(404 ResourceGroupNotFound).  Literal segments match case-insensitively.
"""

from . import arm_responses as R
from . import world as W
from .wire import ApiError

SUBSCRIPTION_API = ("2022-12-01", "2021-01-01", "2020-01-01", "2019-11-01", "2019-06-01", "2016-06-01")
BATCH_API = ("2025-06-01", "2024-07-01", "2024-02-01", "2023-11-01", "2023-05-01", "2022-10-01", "2022-06-01")
STORAGE_API = ("2024-01-01", "2023-05-01", "2023-04-01", "2023-01-01", "2022-09-01", "2022-05-01", "2021-09-01",
               "2021-06-01", "2021-04-01", "2019-06-01")
SKU_API = ("2021-07-01", "2021-03-01", "2019-04-01", "2017-09-01")
GALLERY_API = ("2025-03-03", "2024-03-03", "2023-07-03", "2022-08-03", "2022-03-03", "2022-01-03", "2021-10-01")
IMAGE_API = ("2025-04-01", "2024-11-01", "2024-07-01", "2024-03-01", "2023-09-01", "2023-07-01", "2023-03-01",
             "2022-11-01", "2022-08-01", "2022-03-01", "2021-11-01")
OPERATION_API = tuple(sorted(set(GALLERY_API + IMAGE_API), reverse=True))

SUB = "subscriptions/{sub}"
RG = SUB + "/resourceGroups/{rg}"
GALLERY = RG + "/providers/Microsoft.Compute/galleries/{gallery}"
ROUTES = (
    ("subscriptions", {"GET": R.list_subscriptions}, SUBSCRIPTION_API, "subscriptions"),
    (SUB, {"GET": R.get_subscription}, SUBSCRIPTION_API, "subscriptions"),
    (SUB + "/providers/Microsoft.Batch/batchAccounts", {"GET": R.list_batch_accounts}, BATCH_API, "batchAccounts"),
    (RG + "/providers/Microsoft.Batch/batchAccounts", {"GET": R.list_batch_accounts}, BATCH_API, "batchAccounts"),
    (RG + "/providers/Microsoft.Batch/batchAccounts/{name}", {"GET": R.get_batch_account}, BATCH_API,
     "batchAccounts"),
    (SUB + "/providers/Microsoft.Storage/storageAccounts", {"GET": R.list_storage_accounts}, STORAGE_API,
     "storageAccounts"),
    (RG + "/providers/Microsoft.Storage/storageAccounts", {"GET": R.list_storage_accounts}, STORAGE_API,
     "storageAccounts"),
    (RG + "/providers/Microsoft.Storage/storageAccounts/{name}", {"GET": R.get_storage_account}, STORAGE_API,
     "storageAccounts"),
    (SUB + "/providers/Microsoft.Compute/skus", {"GET": R.list_skus}, SKU_API, "skus"),
    (SUB + "/providers/Microsoft.Compute/locations/{loc}/operations/{op}", {"GET": R.get_operation}, OPERATION_API,
     "locations/operations"),
    (SUB + "/providers/Microsoft.Compute/locations/{loc}/capsOperations/{op}", {"GET": R.get_operation},
     OPERATION_API, "locations/capsOperations"),
    (GALLERY, {"GET": R.get_gallery}, GALLERY_API, "galleries"),
    (GALLERY + "/images", {"GET": R.list_definitions}, GALLERY_API, "galleries/images"),
    (GALLERY + "/images/{image}", {"GET": R.get_definition, "PUT": R.put_definition}, GALLERY_API,
     "galleries/images"),
    (GALLERY + "/images/{image}/versions", {"GET": R.list_versions}, GALLERY_API, "galleries/images/versions"),
    (GALLERY + "/images/{image}/versions/{version}", {"GET": R.get_version, "PUT": R.put_version,
                                                      "PATCH": R.patch_version}, GALLERY_API,
     "galleries/images/versions"),
    (RG + "/providers/Microsoft.Compute/images/{name}", {"GET": R.get_managed_image, "PUT": R.put_managed_image},
     IMAGE_API, "images"),
)
_COMPILED = [(pattern.split("/"), methods, apis, rtype) for pattern, methods, apis, rtype in ROUTES]


def resolve(segments):
    """(methods, api-versions, type, params) for a path, or None."""
    for parts, methods, apis, rtype in _COMPILED:
        if len(parts) != len(segments):
            continue
        params = {}
        for part, seg in zip(parts, segments):
            if part.startswith("{"):
                params[part[1:-1]] = seg
            elif part.lower() != seg.lower():
                break
        else:
            return methods, apis, rtype, params
    return None


def _unknown(req, segs):
    if len(segs) >= 6 and segs[2].lower() == "resourcegroups" and segs[4].lower() == "providers":
        return ApiError(404, "InvalidResourceType", "The resource type '%s' could not be found in the namespace "
                                                    "'%s'." % ("/".join(segs[6:7]), segs[5]))
    return ApiError(404, "InvalidResourceType", "The resource type could not be found for the request URI '%s'."
                    % req.path)


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


def handle(emu, req, claims):
    """Route one authenticated ARM request (`claims` from its bearer token)."""
    now = emu.clock.now()
    world = emu.world
    segs = req.segments()
    found = resolve(segs)
    if found is None:
        raise _unknown(req, segs)
    methods, apis, rtype, params = found
    handler = methods.get(req.method)
    if handler is None:
        raise ApiError(405, "HttpMethodNotAllowed", "The requested resource does not support http method '%s'."
                       % req.method, headers=[("Allow", ", ".join(methods))])
    sub = params.get("sub")
    region = next((a["region"] for a in world["accounts"] if sub and W.same(a["subscriptionId"], sub)),
                  "westeurope")
    _api_version(req, apis, rtype, region)
    principal = claims.get("appid")
    if sub is not None:
        subscription = W.find_subscription(world, sub)
        if subscription is None:
            raise ApiError(404, "SubscriptionNotFound", "The subscription '%s' could not be found." % sub)
        if not W.sees_subscription(subscription, principal):
            raise R.authorization_failed(principal, "Microsoft.Resources/subscriptions/read", "/subscriptions/" + sub)
    if "rg" in params and not W.known_resource_group(world, sub, params["rg"]):
        raise ApiError(404, "ResourceGroupNotFound", "Resource group '%s' could not be found." % params["rg"])
    return handler(R.ArmCtx(emu, req, now, params, principal))
