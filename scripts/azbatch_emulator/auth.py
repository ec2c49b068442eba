"""Authentication: Batch Shared Key, bearer tokens, the Entra ID token endpoint
and the managed identity (IMDS) endpoint.

Tokens are JWT-shaped (header.payload.signature, base64url) and signed with
HMAC-SHA256 under a random per-process secret, so only tokens this emulator
issued verify.  Nothing here ever logs or returns a key, a secret, a token or
an expected signature.
"""

import base64
import hashlib
import hmac
import json
import os
import time
import urllib.parse
import uuid

from .wire import ApiError, Response, PLAIN_JSON, parse_http_date

BATCH_RESOURCE = "https://batch.core.windows.net/"
ARM_RESOURCES = ("https://management.azure.com/", "https://management.azure.com",
                 "https://management.core.windows.net/", "https://management.core.windows.net")
KNOWN_RESOURCES = (BATCH_RESOURCE,) + ARM_RESOURCES
MANAGED_IDENTITY_CLIENT_ID = "00000000-0000-0000-0000-0000000000d1"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_CLOCK_SKEW = 15 * 60

SIGNED_HEADERS = ("Content-Encoding", "Content-Language", "Content-Length", "Content-MD5",
                  "Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match",
                  "If-Unmodified-Since", "Range")

AUTH_FAILED = ("Server failed to authenticate the request. Make sure the value of Authorization "
               "header is formed correctly including the signature.")


# {===================================================================
# Shared Key
# ====================================================================

def canonical_headers(headers):
    """'name:value\\n' for every ocp-* header, names lower-cased and sorted, values trimmed."""
    found = {}
    for name, value in headers:
        lname = name.lower()
        if lname.startswith("ocp-"):
            found.setdefault(lname, []).append(value.strip())
    return "".join("%s:%s\n" % (n, ",".join(found[n])) for n in sorted(found))


def canonical_resource(account, raw_path, raw_query, skip_blank=False):
    """'/{account}{raw path}' then '\\n{name}:{values}' per query parameter (decoded, sorted).
    With `skip_blank`, parameters with an empty value are left out, as the Python SDK
    (azure-batch, used by az) signs them: `$filter=` is sent but not signed."""
    out = "/" + account + (raw_path or "/")
    params = {}
    for name, value in urllib.parse.parse_qsl(raw_query or "", keep_blank_values=True):
        if skip_blank and value == "":
            continue
        params.setdefault(name.lower(), []).append(value)
    for name in sorted(params):
        out += "\n%s:%s" % (name, ",".join(sorted(params[name])))
    return out


def string_to_sign(method, raw_path, raw_query, headers, account, content_length=None, skip_blank=False):
    """The Batch Shared Key string to sign.  `headers` is [(name, value)] as sent.
    `content_length`, when given, replaces the Content-Length line, and `skip_blank` drops
    empty query values (for the SDK variants)."""
    first = {}
    for name, value in headers:
        first.setdefault(name.lower(), value)
    lines = [method.upper()]
    for h in SIGNED_HEADERS:
        if h == "Content-Length" and content_length is not None:
            lines.append(content_length)
        else:
            lines.append(first.get(h.lower(), ""))
    return "\n".join(lines) + "\n" + canonical_headers(headers) + canonical_resource(account, raw_path, raw_query,
                                                                               skip_blank)


def sign(key_b64, sts):
    mac = hmac.new(base64.b64decode(key_b64), sts.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def authorization_header(account, key_b64, method, target, headers):
    """'SharedKey account:signature' for a request to `target` ('/path?query')."""
    path, _, query = target.partition("?")
    return "SharedKey %s:%s" % (account, sign(key_b64, string_to_sign(method, path, query, headers, account)))


def _auth_error(detail, status=403, headers=None):
    return ApiError(status, "AuthenticationFailed", AUTH_FAILED,
                    [("AuthenticationErrorDetail", detail)], headers)


def _content_length_variants(req):
    """The Content-Length lines a correct client may have signed.  Exactly what was sent
    comes first; a sent '0' may also be signed empty (.NET); an unsent length on a
    request with a body verb may be signed '0' (Python SDK)."""
    sent = req.header("Content-Length")
    variants = [sent if sent is not None else ""]
    if sent is not None and sent.strip() == "0":
        variants.append("")
    if sent is None and req.method not in ("GET", "HEAD"):
        variants.append("0")
    return variants


def verify_shared_key(req, accounts, wall_now):
    """Check `Authorization: SharedKey name:sig`; returns the account dict or raises ApiError."""
    value = req.header("Authorization", "")
    creds = value[len("SharedKey "):].strip()
    name, sep, sig = creds.partition(":")
    if not sep or not name or not sig:
        raise _auth_error("The Authorization header is not of the form 'SharedKey {account}:{signature}'.")
    account = next((a for a in accounts if a["name"] == name), None)
    if account is None:
        raise _auth_error("The account '%s' named in the Authorization header does not exist." % name)
    date_value = req.header("ocp-date")
    date_name = "ocp-date"
    if date_value is None:
        date_value, date_name = req.header("Date"), "Date"
    if date_value is None:
        raise _auth_error("Request date header not specified: send ocp-date (or Date).")
    when = parse_http_date(date_value)
    if when is None:
        raise _auth_error("The %s header value '%s' is not a valid RFC 1123 date." % (date_name, date_value))
    if when < wall_now - MAX_CLOCK_SKEW:
        raise _auth_error("Request date header too old: '%s'." % date_value)
    if when > wall_now + MAX_CLOCK_SKEW:
        raise _auth_error("Request date header is too far in the future: '%s'." % date_value)
    first_sts = None
    # An empty query value (`$filter=`) is signed as '$filter:' by most clients and left
    # out by the Python SDK (azure-batch's SharedKeyAuth, used by az): accept both.
    blank_variants = [False]
    if any(v == "" for _, v in req.query):
        blank_variants.append(True)
    variants = [(cl, skip) for cl in _content_length_variants(req) for skip in blank_variants]
    for cl, skip_blank in variants:
        sts = string_to_sign(req.method, req.path, req.raw_query, req.headers, name, cl, skip_blank)
        first_sts = first_sts or sts
        if hmac.compare_digest(sign(account["key"], sts).encode(), sig.encode("utf-8", "replace")):
            if "SharedKey" not in account.get("allowedAuthenticationModes", ["SharedKey"]):
                raise _auth_error("The specified type of authentication SharedKey is not allowed "
                                  "for this account.")
            return account
    raise _auth_error("The MAC signature found in the HTTP request '%s' is not the same as any computed "
                      "signature. Server used following string to sign: '%s'." % (sig, first_sts))


# {===================================================================
# Bearer tokens
# ====================================================================

def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenError(Exception):
    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class TokenService:
    """Issues and verifies the emulator's JWT-shaped access tokens (wall-clock expiry)."""

    def __init__(self):
        self._secret = os.urandom(32)

    def issue(self, audience, tenant, client_id, lifetime, now=None):
        now = int(now if now is not None else time.time())
        header = {"typ": "JWT", "alg": "HS256", "kid": "azbatch-emulator"}
        payload = {"aud": audience, "iss": "https://sts.windows.net/%s/" % tenant, "iat": now,
                   "nbf": now, "exp": now + int(lifetime), "appid": client_id, "oid": client_id,
                   "sub": client_id, "tid": tenant, "idtyp": "app", "ver": "1.0"}
        body = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(payload).encode())
        sig = hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).digest()
        return body + "." + _b64url(sig), payload["exp"]

    def verify(self, token, audiences, now=None):
        """Claims of a valid token for one of `audiences`; raises TokenError otherwise."""
        now = now if now is not None else time.time()
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("InvalidAuthenticationToken", "The access token is not a valid JWT.")
        try:
            sig = _unb64url(parts[2])
            claims = json.loads(_unb64url(parts[1]))
            signed = (parts[0] + "." + parts[1]).encode("ascii")
        except (ValueError, TypeError, RecursionError):
            raise TokenError("InvalidAuthenticationToken", "The access token is malformed.")
        good = hmac.new(self._secret, signed, hashlib.sha256).digest()
        if not hmac.compare_digest(sig, good) or not isinstance(claims, dict):
            raise TokenError("InvalidAuthenticationToken", "The access token signature is invalid.")
        if now >= claims.get("exp", 0):
            raise TokenError("ExpiredAuthenticationToken", "The access token has expired.")
        if claims.get("aud") not in audiences:
            raise TokenError("InvalidAuthenticationTokenAudience",
                             "The access token has been obtained for wrong audience or resource '%s'. "
                             "It should exactly match with one of the allowed audiences '%s'."
                             % (claims.get("aud"), "','".join(audiences)))
        return claims


def bearer_token(req):
    value = req.header("Authorization", "")
    if value[:7].lower() != "bearer ":
        return None
    return value[7:].strip()


def www_authenticate(req, tenant, error=None, description=None):
    v = 'Bearer authorization_uri="%s/%s", resource_id="%s"' % (req.base_url, tenant, BATCH_RESOURCE)
    if error:
        v += ', error="%s", error_description="%s"' % (error, description)
    return v


def authenticate_batch(req, emu):
    """Authenticate a data-plane request; returns the account. Sets req.auth_scheme."""
    world = emu.world
    tenant = world["entra"]["tenantId"]
    value = req.header("Authorization")
    if not value:
        raise _auth_error("The request does not carry an Authorization header.", 401,
                          [("WWW-Authenticate", www_authenticate(req, tenant))])
    scheme = value.split(" ", 1)[0].lower()
    if scheme == "sharedkey":
        account = verify_shared_key(req, world["accounts"], time.time())
        req.auth_scheme = "SharedKey"
        return account
    token = bearer_token(req)
    if scheme != "bearer" or not token:
        raise _auth_error("The Authorization scheme is not supported; use SharedKey or Bearer.", 401,
                          [("WWW-Authenticate", www_authenticate(req, tenant))])
    try:
        claims = emu.tokens.verify(token, (BATCH_RESOURCE,))
    except TokenError as e:
        raise _auth_error(e.reason, 401, [("WWW-Authenticate",
                                           www_authenticate(req, tenant, "invalid_token", e.reason))])
    if claims.get("tid") != tenant:
        raise _auth_error("The access token is from the wrong issuer.", 401,
                          [("WWW-Authenticate", www_authenticate(req, tenant, "invalid_token", "wrong issuer"))])
    account = emu.account_for_host(req.header("Host", ""))
    if "AAD" not in account.get("allowedAuthenticationModes", ["AAD"]):
        raise _auth_error("The specified type of authentication AAD is not allowed for this account.")
    req.auth_scheme = "Bearer"
    req.principal = claims.get("appid")
    return account


def authenticate_arm(req, emu):
    """Authenticate an ARM request (bearer token for the ARM audience); returns the claims."""
    token = bearer_token(req)
    hdr = [("WWW-Authenticate", 'Bearer authorization_uri="%s/%s", error="invalid_token"'
            % (req.base_url, emu.world["entra"]["tenantId"]))]
    if req.header("Authorization") is None:
        raise ApiError(401, "AuthenticationFailed",
                       "Authentication failed. The 'Authorization' header is missing.", headers=hdr)
    if not token:
        raise ApiError(401, "AuthenticationFailed",
                       "Authentication failed. The 'Authorization' header is provided in an invalid format.",
                       headers=hdr)
    try:
        return emu.tokens.verify(token, ARM_RESOURCES)
    except TokenError as e:
        raise ApiError(401, e.code, e.reason, headers=hdr)


# {===================================================================
# Entra ID token endpoint and IMDS
# ====================================================================

def _entra_error(status, error, aadsts, text):
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return ApiError(status, error, text, payload={
        "error": error,
        "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s"
                             % (aadsts, text, trace, corr, stamp),
        "error_codes": [aadsts],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": "https://login.microsoftonline.com/error?code=%d" % aadsts,
    })


def token_endpoint(req, emu, tenant):
    """POST /{tenant}/oauth2/v2.0/token (client credentials, secret or federated assertion)."""
    entra = emu.world["entra"]
    if req.method != "POST":
        raise _entra_error(400, "invalid_request", 900561, "The endpoint only accepts POST requests. "
                           "Received a %s request." % req.method)
    if tenant.lower() != entra["tenantId"].lower():
        raise _entra_error(400, "invalid_request", 90002,
                           "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are "
                           "signing into the correct cloud." % tenant)
    form = dict(urllib.parse.parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
    for field in ("grant_type", "client_id", "scope"):
        if not form.get(field):
            raise _entra_error(400, "invalid_request", 900144,
                               "The request body must contain the following parameter: '%s'." % field)
    if form["grant_type"] != "client_credentials":
        raise _entra_error(400, "unsupported_grant_type", 70003,
                           "The app requested an unsupported grant type '%s'." % form["grant_type"])
    client = next((c for c in entra["clients"] if c["clientId"].lower() == form["client_id"].lower()), None)
    if client is None:
        raise _entra_error(400, "unauthorized_client", 700016,
                           "Application with identifier '%s' was not found in the directory '%s'. This can "
                           "happen if the application has not been installed by the administrator of the "
                           "tenant or consented to by any user in the tenant. You may have sent your "
                           "authentication request to the wrong tenant." % (form["client_id"], tenant))
    if "client_assertion" in form or "client_assertion_type" in form:
        if form.get("client_assertion_type") != JWT_BEARER:
            raise _entra_error(400, "invalid_request", 50027,
                               "The client_assertion_type must be '%s'." % JWT_BEARER)
        if not form.get("client_assertion"):
            raise _entra_error(401, "invalid_client", 7000216,
                               "'client_assertion', 'client_secret' or 'request' is required for the "
                               "'client_credentials' grant type.")
    elif "client_secret" in form:
        if not hmac.compare_digest(form["client_secret"].encode(), client["clientSecret"].encode()):
            raise _entra_error(401, "invalid_client", 7000215,
                               "Invalid client secret provided. Ensure the secret being sent in the request "
                               "is the client secret value, not the client secret ID, for a secret added to "
                               "app '%s'." % client["clientId"])
    else:
        raise _entra_error(401, "invalid_client", 7000216,
                           "'client_assertion', 'client_secret' or 'request' is required for the "
                           "'client_credentials' grant type.")
    scopes = form["scope"].split()
    defaults = [s for s in scopes if s.endswith("/.default")]
    if len(defaults) != 1 or len(scopes) != 1:
        raise _entra_error(400, "invalid_scope", 1002012,
                           "The provided value for scope %s is not valid. Client credential flows must have a "
                           "scope value with /.default suffixed to the resource identifier (application ID "
                           "URI)." % form["scope"])
    resource = defaults[0][:-len("/.default")]
    if resource not in KNOWN_RESOURCES:
        raise _entra_error(400, "invalid_resource", 500011,
                           "The resource principal named %s was not found in the tenant named %s. This can "
                           "happen if the application has not been installed by the administrator of the "
                           "tenant or consented to by any user in the tenant. You might have sent your "
                           "authentication request to the wrong tenant." % (resource, tenant))
    lifetime = emu.settings.token_lifetime or 3599
    token, _ = emu.tokens.issue(resource, entra["tenantId"], client["clientId"], lifetime)
    return Response(200, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                          "access_token": token}, [("Cache-Control", "no-store, no-cache"),
                                                   ("Pragma", "no-cache")], PLAIN_JSON)


def imds_endpoint(req, emu):
    """GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=... with Metadata: true."""
    def bad(error, text):
        return ApiError(400, error, text, payload={"error": error, "error_description": text})
    if req.method != "GET":
        raise ApiError(405, "invalid_request", "method", payload={
            "error": "invalid_request", "error_description": "Only GET is supported"})
    if (req.header("Metadata") or "").lower() != "true":
        raise bad("invalid_request", "Required metadata header not specified")
    if not req.q("api-version"):
        raise bad("invalid_request", "Required query variable 'api-version' is missing")
    resource = req.q("resource")
    if not resource:
        raise bad("invalid_request", "Required query variable 'resource' is missing")
    if resource not in KNOWN_RESOURCES:
        raise bad("invalid_resource", "AADSTS500011: The resource principal named %s was not found in the "
                                      "tenant named %s." % (resource, emu.world["entra"]["tenantId"]))
    lifetime = emu.settings.token_lifetime or 86399
    now = int(time.time())
    token, exp = emu.tokens.issue(resource, emu.world["entra"]["tenantId"], MANAGED_IDENTITY_CLIENT_ID,
                                  lifetime, now)
    return Response(200, {"access_token": token, "client_id": MANAGED_IDENTITY_CLIENT_ID,
                          "expires_in": str(lifetime), "expires_on": str(exp),
                          "ext_expires_in": str(lifetime), "not_before": str(now),
                          "resource": resource, "token_type": "Bearer"}, [], PLAIN_JSON)
