"""The /_emulator/ control API (tests and prototyping): health, stats, reset,
faults and the simulated clock.  No authentication, so it answers loopback
clients only.  Answers are plain JSON; errors are {"error": "..."}.
"""

import ipaddress

from . import __version__
from .validate import parse_json
from .wire import Response, PLAIN_JSON, iso


def _answer(status, body):
    return Response(status, body, [], PLAIN_JSON)


def _loopback_client(client_ip):
    try:
        ip = ipaddress.ip_address(client_ip.split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


def stats_json(emu):
    return {"requests": emu.stats["requests"], "byStatus": dict(emu.stats["byStatus"]),
            "connections": emu.stats["connections"], "faults": dict(emu.stats["faults"]),
            "timeouts": dict(emu.stats["timeouts"]),
            "pools": emu.batch.count(), "simTime": iso(emu.clock.now()), "timeScale": emu.clock.scale}


def _stats(emu, body):
    return _answer(200, stats_json(emu))


def _reset(emu, body):
    emu.reset()
    return _answer(200, {"reset": True})


def _health(emu, body):
    return _answer(200, {"status": "ok", "version": __version__})


def _get_faults(emu, body):
    return _answer(200, emu.faults.as_dict())


def _set_faults(emu, body):
    old = emu.faults.as_dict()
    try:
        emu.faults.update(body)
    except ValueError as e:
        emu.faults.update(old)
        return _answer(400, {"error": str(e)})
    return _answer(200, emu.faults.as_dict())


def _clock(emu, body):
    try:
        for k in body:
            if k not in ("advance", "timeScale"):
                raise ValueError("unknown clock setting '%s' (known: advance, timeScale)" % k)
        adv, scale = body.get("advance", 0), body.get("timeScale")
        if isinstance(adv, bool) or not isinstance(adv, (int, float)) or adv < 0:
            raise ValueError("advance must be a non-negative number of seconds")
        if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale <= 0):
            raise ValueError("timeScale must be a positive number")
    except ValueError as e:
        return _answer(400, {"error": str(e)})
    if scale is not None:
        emu.clock.set_scale(scale)
    emu.clock.advance(adv)
    return _answer(200, {"simTime": iso(emu.clock.now()), "timeScale": emu.clock.scale})


ROUTES = {
    ("GET", "stats"): _stats,
    ("POST", "reset"): _reset,
    ("GET", "health"): _health,
    ("GET", "faults"): _get_faults,
    ("POST", "faults"): _set_faults,
    ("GET", "clock"): _clock,
    ("POST", "clock"): _clock,
}


def handle(emu, req):
    """Answer one /_emulator/ request."""
    if not _loopback_client(req.client_ip):
        return _answer(403, {"error": "the control API answers loopback clients only"})
    try:
        body = parse_json(req.body) if req.body.strip() else {}
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
    except ValueError as e:
        return _answer(400, {"error": "invalid JSON body: %s" % e})
    name = "/".join(s.lower() for s in req.segments()[1:])
    handler = ROUTES.get((req.method, name))
    if handler is None:
        return _answer(404, {"error": "unknown control endpoint %s %s" % (req.method, req.path)})
    with emu.lock:
        return handler(emu, body)
