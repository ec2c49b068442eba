"""The Batch data plane's routes (moto's urls.py): method + path -> handler, for
pools, nodes, supported images, node counts, usage metrics and jobs.

Literal segments match case-insensitively, `{name}` segments become the handler's
path parameters (URL-decoded).  A path that matches no route is 400 InvalidUri; a
route without the method is 405 UnsupportedHttpVerb with `Allow`.
"""

from . import batch_responses as R
from . import job_responses as J
from .wire import ApiError

ROUTES = (
    ("pools", {"GET": R.list_pools, "POST": R.create_pool}),
    ("pools/{poolId}", {"GET": R.get_pool, "HEAD": R.get_pool, "PATCH": R.patch_pool, "DELETE": R.delete_pool}),
    ("pools/{poolId}/resize", {"POST": R.resize_pool}),
    ("pools/{poolId}/stopresize", {"POST": R.stop_resize_pool}),
    ("pools/{poolId}/enableautoscale", {"POST": R.enable_autoscale}),
    ("pools/{poolId}/disableautoscale", {"POST": R.disable_autoscale}),
    ("pools/{poolId}/evaluateautoscale", {"POST": R.evaluate_autoscale}),
    ("pools/{poolId}/updateproperties", {"POST": R.update_properties}),
    ("pools/{poolId}/removenodes", {"POST": R.remove_nodes}),
    ("pools/{poolId}/nodes", {"GET": R.list_nodes}),
    ("pools/{poolId}/nodes/{nodeId}", {"GET": R.get_node}),
    ("supportedimages", {"GET": R.list_supported_images}),
    ("nodecounts", {"GET": R.list_node_counts}),
    ("poolusagemetrics", {"GET": R.list_pool_usage_metrics}),
    ("jobs", {"GET": J.list_jobs, "POST": J.create_job}),
    ("jobs/{jobId}", {"GET": J.get_job, "PATCH": J.patch_job, "PUT": J.replace_job, "DELETE": J.delete_job}),
    ("jobs/{jobId}/disable", {"POST": J.disable_job}),
    ("jobs/{jobId}/enable", {"POST": J.enable_job}),
    ("jobs/{jobId}/taskcounts", {"GET": J.job_task_counts}),
)
_COMPILED = [(pattern.split("/"), methods) for pattern, methods in ROUTES]


def invalid_uri():
    return ApiError(400, "InvalidUri", "The requested URI does not represent any resource on the server.")


def resolve(method, segments):
    """(handler, params) for a request; raises InvalidUri or UnsupportedHttpVerb."""
    for parts, methods in _COMPILED:
        if len(parts) != len(segments):
            continue
        params = {}
        for part, seg in zip(parts, segments):
            if part.startswith("{"):
                params[part[1:-1]] = seg
            elif part != seg.lower():
                break
        else:
            handler = methods.get(method)
            if handler is None:
                allowed = list(methods)
                raise ApiError(405, "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb.",
                               [("HttpVerb", method)], headers=[("Allow", ", ".join(allowed))])
            return handler, params
    raise invalid_uri()


def handle(emu, req, account):
    """Route one authenticated data-plane request (api-version already checked)."""
    now = emu.clock.now()
    emu.batch.tick(account, now)
    emu.jobs.tick(account, now)
    handler, params = resolve(req.method, req.segments())
    return handler(R.Ctx(emu, req, account, now, params))
