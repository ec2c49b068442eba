"""Request/response value types, the three error dialects and time formatting.

Batch data-plane errors use the OData BatchError shape, ARM errors the
CloudError shape, Entra ID errors the OAuth 2.0 shape.  Handlers raise
ApiError; the server renders it in the dialect of the route.
"""

import datetime
import email.utils
import json
import re
import urllib.parse
import uuid

BATCH_JSON = "application/json;odata=minimalmetadata"
PLAIN_JSON = "application/json; charset=utf-8"
ERROR_METADATA = "$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"


def iso(t):
    """Epoch seconds -> '2025-11-22T19:32:02.8155319Z' (7 fraction digits, like the service)."""
    dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + ".%06d0Z" % dt.microsecond


def rfc1123(t):
    return email.utils.formatdate(t, usegmt=True)


def parse_http_date(value):
    """RFC 1123 date -> epoch seconds, or None when it cannot be parsed."""
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


_ISO = re.compile(r"^(\d{4})-(\d\d)-(\d\d)(?:[Tt ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?"
                  r"(Z|z|[+-]\d\d:?\d\d)?$")


def parse_iso(value):
    """ISO 8601 date-time ('2025-01-01T10:00:00.1234567Z', '...+01:00', a date alone) ->
    epoch seconds, or None.  No offset means UTC."""
    m = _ISO.match(value.strip()) if isinstance(value, str) else None
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        dt = datetime.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
                               tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    t = dt.timestamp() + (float("0." + frac) if frac else 0.0)
    if tz and tz not in ("Z", "z"):
        sign = -1 if tz[0] == "+" else 1
        digits = tz[1:].replace(":", "")
        t += sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return t


class Request:
    """One HTTP request as received: raw path and query, headers in order, body bytes."""

    def __init__(self, method, target, headers, body, base_url, client_ip="127.0.0.1"):
        self.method = method.upper()
        path, _, query = target.partition("?")
        self.path = path or "/"                 # raw, as in the URI (Shared Key signs this)
        self.raw_query = query
        self.query = urllib.parse.parse_qsl(query, keep_blank_values=True)
        self.headers = list(headers)            # [(name, value)] exactly as parsed
        self.body = body
        self.base_url = base_url                # "http://127.0.0.1:PORT"
        self.client_ip = client_ip
        self.request_id = str(uuid.uuid4())
        self.auth_scheme = None                 # "SharedKey" or "Bearer" once authenticated
        self.principal = None                   # the bearer token's client id (appid), once authenticated

    def header(self, name, default=None):
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return default

    def header_all(self, name):
        lname = name.lower()
        return [v for k, v in self.headers if k.lower() == lname]

    def q(self, name, default=None):
        """First query value by case-insensitive name."""
        lname = name.lower()
        for k, v in self.query:
            if k.lower() == lname:
                return v
        return default

    def has_q(self, name):
        lname = name.lower()
        return any(k.lower() == lname for k, _ in self.query)

    def segments(self):
        return [urllib.parse.unquote(s) for s in self.path.strip("/").split("/") if s != ""]


class Response:
    def __init__(self, status, body=b"", headers=None, content_type=None):
        self.status = status
        self.headers = list(headers or [])
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":")).encode("utf-8")
            content_type = content_type or BATCH_JSON
        elif isinstance(body, str):
            body = body.encode("utf-8")
        self.body = body or b""
        if content_type and self.body:
            self.headers.append(("Content-Type", content_type))
        self.drop = False                       # close the connection without answering

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


class ApiError(Exception):
    """An error answer.  `values` is a list of (key, value) pairs (Batch) or ignored (ARM).
    `payload`, when set, is sent as the JSON body unchanged (Entra ID, IMDS)."""

    def __init__(self, status, code, message, values=None, headers=None, payload=None, target=None):
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.values = list(values or [])
        self.headers = list(headers or [])
        self.payload = payload
        self.target = target


def batch_error_body(req, err, now):
    body = {
        "odata.metadata": req.base_url + "/" + ERROR_METADATA,
        "code": err.code,
        "message": {
            "lang": "en-US",
            "value": "%s\nRequestId:%s\nTime:%s" % (err.message, req.request_id, iso(now)),
        },
    }
    if err.values:
        body["values"] = [{"key": k, "value": v} for k, v in err.values]
    return body


def arm_error_body(err):
    inner = {"code": err.code, "message": err.message}
    if err.target:
        inner["target"] = err.target
    inner["details"] = [{"code": k, "message": v} for k, v in err.values]
    return {"error": inner}


def render_error(req, err, plane, now):
    """ApiError -> Response in the dialect of `plane` ('batch', 'arm', 'entra', 'control')."""
    if err.payload is not None:
        resp = Response(err.status, err.payload, err.headers, PLAIN_JSON)
    elif err.status in (304,) or req.method == "HEAD":
        resp = Response(err.status, b"", err.headers)
    elif plane == "batch":
        resp = Response(err.status, batch_error_body(req, err, now), err.headers, BATCH_JSON)
    elif plane == "arm":
        resp = Response(err.status, arm_error_body(err), err.headers, PLAIN_JSON)
    elif plane == "control":
        resp = Response(err.status, {"error": err.message}, err.headers, PLAIN_JSON)
    else:                                   # Entra ID and IMDS: the OAuth 2.0 shape
        resp = Response(err.status, {"error": "invalid_request" if err.status < 500 else "server_error",
                                     "error_description": err.message}, err.headers, PLAIN_JSON)
    return resp
