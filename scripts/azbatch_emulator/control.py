"""The /_emulator/ control API (tests and prototyping): health, stats, reset,
faults, the journal, the simulated clock, node failure rules and simulated
job tasks.  It has no authentication, so it answers only
requests that can only come from this machine: a loopback client, a `Host` that
names a loopback address (127.0.0.0/8, [::1] or localhost, any port) and, when
an `Origin` is sent, a loopback origin.  The Host rule stops DNS rebinding (a
web page whose name resolves to 127.0.0.1); the Origin rule stops a browser
page on another site from posting to it.  Answers are plain JSON; errors are
{"error": "..."}.
"""

import ipaddress
import itertools
import re
import urllib.parse

from . import __version__, failures
from . import world as W
from .validate import parse_json
from .wire import ApiError, Response, PLAIN_JSON, iso


def _answer(status, body):
    return Response(status, body, [], PLAIN_JSON)


def _loopback_client(client_ip):
    try:
        ip = ipaddress.ip_address(client_ip.split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


_PORT = re.compile(r"^[0-9]{1,5}$")


def loopback_authority(value):
    """True when `value` (a Host header, or an origin's host[:port]) names a loopback
    address: 127.0.0.0/8, [::1] (or an IPv4-mapped loopback) or localhost, with any port."""
    if not value:
        return False
    if value.startswith("["):
        end = value.find("]")
        name, rest = (value[1:end], value[end + 1:]) if end > 0 else ("", "")
        if rest and not (rest[:1] == ":" and _PORT.match(rest[1:])):
            return False
        try:
            ip = ipaddress.IPv6Address(name)
        except ValueError:
            return False
        return ip.is_loopback or (ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)
    name, sep, port = value.rpartition(":")
    if not sep:
        name = value
    elif not _PORT.match(port):
        return False
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.IPv4Address(name).is_loopback
    except ValueError:
        return False


def loopback_origin(value):
    """True for an Origin like http://127.0.0.1:8080 or https://localhost ('null' is not)."""
    try:
        u = urllib.parse.urlsplit(value.strip())
    except ValueError:
        return False
    return (u.scheme in ("http", "https") and not u.path and not u.query and not u.fragment
            and "@" not in u.netloc and loopback_authority(u.netloc))


def refusal(req):
    """Why the control API refuses `req`, or None."""
    if not _loopback_client(req.client_ip):
        return "the control API answers loopback clients only"
    host = req.header("Host")
    if not loopback_authority((host or "").strip()):
        return ("the control API answers only requests whose Host is a loopback address (127.0.0.0/8, [::1] "
                "or localhost); got %s" % ("no Host" if host is None else "Host '%s'" % host))
    origin = req.header("Origin")
    if origin is not None and not loopback_origin(origin):
        return "the control API refuses cross-site requests; got Origin '%s'" % origin
    return None


def stats_json(emu):
    return {"requests": emu.stats["requests"], "byStatus": dict(emu.stats["byStatus"]),
            "connections": emu.stats["connections"], "faults": dict(emu.stats["faults"]),
            "timeouts": dict(emu.stats["timeouts"]),
            "pools": emu.batch.count(), "simTime": iso(emu.clock.now()), "timeScale": emu.clock.scale}


def _stats(emu, body, req):
    return _answer(200, stats_json(emu))


def _reset(emu, body, req):
    emu.reset()
    return _answer(200, {"reset": True})


def _health(emu, body, req):
    return _answer(200, {"status": "ok", "version": __version__})


def _get_faults(emu, body, req):
    return _answer(200, emu.faults.as_dict())


def _set_faults(emu, body, req):
    old = emu.faults.as_dict()
    try:
        emu.faults.update(body)
    except ValueError as e:
        emu.faults.update(old)
        return _answer(400, {"error": str(e)})
    return _answer(200, emu.faults.as_dict())


def _clock(emu, body, req):
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


def journal_since(journal, total, start):
    """The entries of `journal` (a deque holding the last ones of `total` appended) from the
    `start`-th on, as {"value", "next", "missed"}: `next` is the `start` of a call that wants only
    what comes after; `missed` counts the asked-for entries no longer kept."""
    first = total - len(journal)                      # the number of the oldest entry kept
    return {"value": list(itertools.islice(journal, max(0, start - first), None)), "next": total,
            "missed": max(0, first - start)}


def _journal(emu, body, req):
    text = req.q("from", "0")
    if not re.fullmatch(r"[0-9]{1,15}", text):
        return _answer(400, {"error": "from must be a non-negative integer, got %r" % (text,)})
    return _answer(200, journal_since(emu.journal, emu.journal_total, int(text)))


def _get_failures(emu, body, req):
    return _answer(200, emu.failures.as_dict())


def _set_failures(emu, body, req):
    """{"image", "unusable", "startTaskFailed", ...}: one rule (a rule with both shares 0 removes it);
    {"rules": [...]}: every rule; {"seed": N}: the seed of the draws.  Nodes allocated from now on."""
    try:
        keys = set(body)
        if keys & {"rules", "seed"} and keys - {"rules", "seed"}:
            raise ValueError("give either one rule, or 'rules' and/or 'seed'")
        if not keys:
            raise ValueError("the body must be a rule, or {\"rules\": [...]} or {\"seed\": N}")
        seed = body.get("seed", emu.failures.seed)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError("seed must be an integer")
        if "rules" in body:
            rules = failures.check_rules(body["rules"])
        elif "seed" in body:
            rules = None
        else:
            rule = failures.check_rule(body)
    except ValueError as e:
        return _answer(400, {"error": str(e)})
    if "rules" in body:
        emu.failures.rules = rules
    elif "seed" not in body:
        emu.failures.upsert(rule)
    emu.failures.seed = seed
    return _answer(200, emu.failures.as_dict())


def _add_tasks(emu, body, job_id):
    """{"count": N[, "account": NAME]}: N more simulated tasks for a job."""
    count = body.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100000:
        return _answer(400, {"error": "count must be an integer from 1 to 100000"})
    name = body.get("account", emu.world["accounts"][0]["name"])
    account = next((a for a in emu.world["accounts"] if isinstance(name, str) and W.same(a["name"], name)), None)
    if account is None:
        return _answer(404, {"error": "no account named %r" % (name,)})
    try:
        emu.jobs.tick(account, emu.clock.now())
        job = emu.jobs.get(account, job_id)
        emu.jobs.add_tasks(job, count)
    except ApiError as e:
        return _answer(e.status, {"error": e.message})
    return _answer(200, {"jobId": job.id, "tasks": job.queued})


ROUTES = {
    ("GET", "journal"): _journal,
    ("GET", "stats"): _stats,
    ("POST", "reset"): _reset,
    ("GET", "health"): _health,
    ("GET", "faults"): _get_faults,
    ("POST", "faults"): _set_faults,
    ("GET", "clock"): _clock,
    ("POST", "clock"): _clock,
    ("GET", "failures"): _get_failures,
    ("POST", "failures"): _set_failures,
}


def handle(emu, req):
    """Answer one /_emulator/ request."""
    why = refusal(req)
    if why:
        return _answer(403, {"error": why})
    try:
        body = parse_json(req.body) if req.body.strip() else {}
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
    except ValueError as e:
        return _answer(400, {"error": "invalid JSON body: %s" % e})
    segs = req.segments()[1:]
    name = "/".join(s.lower() for s in segs)
    if req.method == "POST" and len(segs) == 3 and segs[0].lower() == "jobs" and segs[2].lower() == "tasks":
        with emu.lock:
            return _add_tasks(emu, body, segs[1])
    handler = ROUTES.get((req.method, name))
    if handler is None:
        return _answer(404, {"error": "unknown control endpoint %s %s" % (req.method, req.path)})
    with emu.lock:
        return handler(emu, body, req)
