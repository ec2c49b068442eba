"""Tests for scripts/azbatch-emulator.

Each test class starts the emulator as a subprocess on a free loopback port,
talks HTTP to it with http.client (requests signed by the small, independent
Shared Key signer below) and stops it with SIGTERM, checking exit code 0.

    python3 -m unittest discover -s tests/emulator -v
"""

import base64
import collections
import copy
import email.utils
import hashlib
import hmac
import http.client
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "azbatch-emulator")
WORLD_FILE = os.path.join(ROOT, "scripts", "emulator-world.json")
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from azbatch_emulator import auth as emu_auth  # noqa: E402
from azbatch_emulator import world as emu_world  # noqa: E402

ACCOUNT = "devbatch"
KEY = "YXpiYXRjaC1lbXVsYXRvci13ZWxsLWtub3duLWRldmVsb3BtZW50LWtleS1ub3QtYS1zZWNyZXQtMDEyMzQ1Ng=="
SUB = "00000000-0000-0000-0000-000000000001"
RG = "azbatch-dev"
TENANT = "00000000-0000-0000-0000-0000000000aa"
CLIENT_ID = "00000000-0000-0000-0000-0000000000c1"
CLIENT_SECRET = "dev-client-secret"
API = "2025-06-01"
BATCH_SCOPE = "https://batch.core.windows.net//.default"
ARM_SCOPE = "https://management.azure.com/.default"
GALLERY = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/galleries/devgallery" % (SUB, RG)
GALLERY_IMAGE = GALLERY + "/images/ubuntu2204"
MANAGED_IMAGE = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/images/ubuntu-managed" % (SUB, RG)
BATCH_ACCOUNT = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Batch/batchAccounts/devbatch" % (SUB, RG)
UBUNTU = {"imageReference": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"},
          "nodeAgentSKUId": "batch.node.ubuntu 22.04"}
SIGNED = ("Content-Encoding", "Content-Language", "Content-Length", "Content-MD5", "Content-Type", "Date",
          "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range")


# {===================================================================
# An independent Shared Key signer (not the emulator's)
# ====================================================================

def string_to_sign(method, path, query, headers, account):
    """query: [(name, value)] decoded; headers: [(name, value)] as sent."""
    h = {}
    for k, v in headers:
        h.setdefault(k.lower(), v)
    lines = [method] + [h.get(name.lower(), "") for name in SIGNED]
    ocp = sorted((k.lower(), v.strip()) for k, v in headers if k.lower().startswith("ocp-"))
    canon = "".join("%s:%s\n" % kv for kv in ocp)
    res = "/" + account + path
    params = {}
    for k, v in query:
        params.setdefault(k.lower(), []).append(v)
    for k in sorted(params):
        res += "\n%s:%s" % (k, ",".join(sorted(params[k])))
    return "\n".join(lines) + "\n" + canon + res


def signature(key, sts):
    return base64.b64encode(hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest()).decode()


def pool_body(pool_id, **extra):
    body = {"id": pool_id, "vmSize": "Standard_D2s_v3", "virtualMachineConfiguration": copy.deepcopy(UBUNTU)}
    body.update(extra)
    return body


# {===================================================================
# Process and HTTP helpers
# ====================================================================

_BARE = {}


def bare_world_file():
    """The dev world without the pools and jobs it starts with (most tests want an empty account)."""
    if "path" not in _BARE:
        with open(WORLD_FILE) as f:
            w = json.load(f)
        w.pop("pools", None)
        w.pop("jobs", None)
        _BARE["dir"] = tempfile.TemporaryDirectory()
        _BARE["path"] = os.path.join(_BARE["dir"].name, "bare-world.json")
        with open(_BARE["path"], "w") as f:
            json.dump(w, f)
    return _BARE["path"]


class Emulator:
    """The emulator as a subprocess: the first stdout line gives its URL.  Unless told `dev=True`
    or given a --world, it runs the dev world without its pools and jobs (bare_world_file)."""

    def __init__(self, *args, dev=False):
        if "--world" not in args and not dev:
            args = ("--world", bare_world_file()) + tuple(args)
        self.proc = subprocess.Popen([sys.executable, SCRIPT, "--port", "0"] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = read_line(self.proc.stdout, 15)
        m = re.match(r"^listening on http://(127\.0\.0\.1|\[::1\]):(\d+)\n$", line)
        if not m:
            self.proc.kill()
            raise AssertionError("unexpected first line %r; stderr: %s" % (line, self.proc.stderr.read()))
        self.host, self.port = m.group(1).strip("[]"), int(m.group(2))

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("emulator did not stop on %s" % sig)
        self.stderr = self.proc.stderr.read().decode()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc

    def control(self, method, path, body=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, "/_emulator/" + path, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        r = conn.getresponse()
        out = (r.status, json.loads(r.read() or b"null"))
        conn.close()
        return out


def read_line(stream, timeout):
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    buf = b""
    deadline = time.time() + timeout
    while not buf.endswith(b"\n"):
        if not sel.select(max(0.0, deadline - time.time())):
            break
        chunk = os.read(stream.fileno(), 1)
        if not chunk:
            break
        buf += chunk
    sel.close()
    return buf.decode()


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def values(self):
        return {v["key"]: v["value"] for v in self.json.get("values", [])}


class Client:
    def __init__(self, emu, account=ACCOUNT, key=KEY):
        self.host, self.port, self.account, self.key = emu.host, emu.port, account, key
        self.conn = None

    def __del__(self):
        self.close()

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def send(self, method, target, headers, body=b"", host=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=15)
        try:
            self.conn.putrequest(method, target, skip_host=host is not None, skip_accept_encoding=True)
            if host is not None:
                self.conn.putheader("Host", host)
            for k, v in headers:
                self.conn.putheader(k, v)
            self.conn.endheaders(body or None)
            r = self.conn.getresponse()
            data = r.read()
        except Exception:
            self.close()
            raise
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        return Resp(r.status, r.getheaders(), data)

    def batch(self, method, path, query=None, body=None, headers=None, auth="key", api=API, raw_body=None,
              content_type="application/json; odata=minimalmetadata", sign_length=None, host=None):
        query = list(query or [])
        if api is not None:
            query.insert(0, ("api-version", api))
        target = path + ("?" + "&".join("%s=%s" % (urllib.parse.quote(k, safe="$"), urllib.parse.quote(v, safe=""))
                                         for k, v in query) if query else "")
        return self.signed(method, target, body, headers, auth, raw_body, content_type, sign_length, host)

    def signed(self, method, target, body=None, headers=None, auth="key", raw_body=None,
               content_type="application/json; odata=minimalmetadata", sign_length=None, host=None):
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else b"")
        hdrs = [("ocp-date", email.utils.formatdate(usegmt=True))]
        if data:
            hdrs += [("Content-Type", content_type), ("Content-Length", str(len(data)))]
        elif method in ("POST", "PUT", "PATCH"):
            hdrs.append(("Content-Length", "0"))
        hdrs += list(headers or [])
        if auth == "key":
            path, _, qs = target.partition("?")
            signed_hdrs = hdrs
            if sign_length is not None:
                signed_hdrs = [(k, v) for k, v in hdrs if k.lower() != "content-length"] + \
                              ([("Content-Length", sign_length)] if sign_length != "" else [])
            sts = string_to_sign(method, path, urllib.parse.parse_qsl(qs, keep_blank_values=True), signed_hdrs,
                                 self.account)
            hdrs.append(("Authorization", "SharedKey %s:%s" % (self.account, signature(self.key, sts))))
        elif auth:
            hdrs.append(("Authorization", "Bearer " + auth))
        return self.send(method, target, hdrs, data, host)

    def token(self, scope=BATCH_SCOPE, secret=CLIENT_SECRET, client_id=CLIENT_ID, tenant=TENANT, extra=None):
        form = {"grant_type": "client_credentials", "client_id": client_id, "scope": scope}
        if secret is not None:
            form["client_secret"] = secret
        form.update(extra or {})
        data = urllib.parse.urlencode(form).encode()
        return self.send("POST", "/%s/oauth2/v2.0/token" % tenant,
                         [("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", str(len(data)))],
                         data)

    def arm(self, method, path, token, api="2025-03-03", query=None, body=None):
        q = ([("api-version", api)] if api else []) + list(query or [])
        target = path + ("?" + urllib.parse.urlencode(q) if q else "")
        data = json.dumps(body).encode() if body is not None else b""
        hdrs = [("Authorization", "Bearer " + token)] if token else []
        if data:
            hdrs += [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        return self.send(method, target, hdrs, data)


class EmulatorCase(unittest.TestCase):
    ARGS = ()
    DEV_WORLD = False           # True: the built-in dev world, with its pools and jobs

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(*cls.ARGS, dev=cls.DEV_WORLD)

    @classmethod
    def tearDownClass(cls):
        rc = cls.emu.stop()
        assert rc == 0, "emulator exited with %r: %s" % (rc, cls.emu.stderr)

    def setUp(self):
        status, _ = self.emu.control("POST", "reset")
        self.assertEqual(status, 200)
        self.c = Client(self.emu)

    def tearDown(self):
        self.c.close()

    def advance(self, seconds):
        status, _ = self.emu.control("POST", "clock", {"advance": seconds})
        self.assertEqual(status, 200)

    def assertError(self, resp, status, code, **values):
        self.assertEqual(resp.status, status, resp.body)
        body = resp.json
        self.assertEqual(body["code"], code, body)
        self.assertTrue(body["odata.metadata"].endswith(
            "$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"))
        self.assertEqual(body["message"]["lang"], "en-US")
        self.assertRegex(body["message"]["value"], r"\nRequestId:[0-9a-f-]{36}\nTime:\d{4}-\d\d-\d\dT")
        self.assertIn("RequestId:" + resp.headers["request-id"], body["message"]["value"])
        got = resp.values()
        for k, v in values.items():
            self.assertEqual(got.get(k), v, body)
        return body

    def create(self, pool_id, **extra):
        r = self.c.batch("POST", "/pools", body=pool_body(pool_id, **extra))
        self.assertEqual(r.status, 201, r.body)
        return r

    def get(self, pool_id):
        r = self.c.batch("GET", "/pools/" + pool_id)
        self.assertEqual(r.status, 200, r.body)
        return r.json

    def bearer(self, scope=BATCH_SCOPE):
        r = self.c.token(scope=scope)
        self.assertEqual(r.status, 200, r.body)
        return r.json["access_token"]


# {===================================================================
# Signing
# ====================================================================

class SigningTests(unittest.TestCase):
    VECTOR_KEY = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
    EXPECTED = "SharedKey testacct:SLkGVYTyz67hj+kRSOZYBe+v54Xe5TFuEOgTevz8rnI="
    HEADERS = [("ocp-date", "Mon, 01 Jan 2024 00:00:00 GMT")]

    def test_known_vector_with_the_test_signer(self):
        sts = string_to_sign("GET", "/pools/mypool", [("api-version", "2024-07-01.20.0")], self.HEADERS, "testacct")
        self.assertEqual("SharedKey testacct:" + signature(self.VECTOR_KEY, sts), self.EXPECTED)

    def test_known_vector_with_the_emulator_signer(self):
        got = emu_auth.authorization_header("testacct", self.VECTOR_KEY, "GET",
                                            "/pools/mypool?api-version=2024-07-01.20.0", self.HEADERS)
        self.assertEqual(got, self.EXPECTED)

    def test_one_byte_off_changes_the_signature(self):
        got = emu_auth.authorization_header("testacct", self.VECTOR_KEY, "GET",
                                            "/pools/mypool?api-version=2024-07-01.20.1", self.HEADERS)
        self.assertNotEqual(got, self.EXPECTED)

    def test_query_is_decoded_lowercased_and_sorted(self):
        sts = emu_auth.string_to_sign("GET", "/pools", "%24filter=state%20eq%20%27active%27&Api-Version=x&b=2&b=1",
                                      [], "a")
        self.assertTrue(sts.endswith("/a/pools\n$filter:state eq 'active'\napi-version:x\nb:1,2"), sts)


# {===================================================================
# The process: command line, signals, world file
# ====================================================================

class ProcessTests(unittest.TestCase):
    def run_emulator(self, *args):
        return subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True, text=True, timeout=20)

    def test_first_line_then_sigterm_exits_0(self):
        emu = Emulator()
        self.assertEqual(emu.control("GET", "health")[0], 200)
        self.assertEqual(emu.stop(signal.SIGTERM), 0)

    def test_sigint_exits_0_with_an_idle_keep_alive_connection_open(self):
        emu = Emulator()
        c = Client(emu)
        self.assertEqual(c.batch("GET", "/pools").status, 200)
        self.assertEqual(emu.stop(signal.SIGINT), 0)
        c.close()

    def test_fixed_port(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        emu = Emulator("--port", str(port))
        self.assertEqual(emu.port, port)
        self.assertEqual(emu.stop(), 0)

    def test_non_loopback_host_is_refused(self):
        for host in ("0.0.0.0", "192.0.2.1", "emulator.invalid", "::"):        # 192.0.2.0/24: documentation
            r = self.run_emulator("--host", host)
            self.assertEqual(r.returncode, 2, host)
            self.assertIn("loopback", r.stderr)
            self.assertEqual(r.stdout, "")

    def test_bad_flags_are_refused(self):
        for args in (("--fault-429", "2"), ("--key", "not base64!"), ("--time-scale", "0"),
                     ("--fault-500", "0.6", "--fault-503", "0.6"), ("--port", "70000"), ("--account", "Bad_Name")):
            r = self.run_emulator(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("azbatch-emulator", r.stderr)

    def test_the_built_in_world_is_the_world_file(self):
        self.assertEqual(emu_world.WORLD_FILE, WORLD_FILE)
        with open(WORLD_FILE) as f:
            data = json.load(f)
        self.assertEqual(emu_world.default_world(), emu_world.validate_world(data))
        self.assertFalse(hasattr(emu_world, "DEFAULT_WORLD"))          # one copy: the file
        self.assertEqual(data["accounts"][0]["name"], ACCOUNT)
        self.assertEqual(data["accounts"][0]["key"], KEY)
        emu = Emulator("--world", WORLD_FILE)
        self.assertEqual(Client(emu).batch("GET", "/supportedimages").status, 200)
        self.assertEqual(emu.stop(), 0)

    def test_a_changed_world_file_changes_the_built_in_world(self):
        with tempfile.TemporaryDirectory() as d:
            shutil.copytree(os.path.join(ROOT, "scripts", "azbatch_emulator"), os.path.join(d, "azbatch_emulator"),
                            ignore=shutil.ignore_patterns("__pycache__"))
            shutil.copy(SCRIPT, os.path.join(d, "azbatch-emulator"))
            with open(WORLD_FILE) as f:
                data = json.load(f)
            data["accounts"][0]["name"] = "otheracct"
            with open(os.path.join(d, "emulator-world.json"), "w") as f:
                json.dump(data, f)
            proc = subprocess.Popen([sys.executable, os.path.join(d, "azbatch-emulator"), "--port", "0"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                m = re.match(r"^listening on http://127\.0\.0\.1:(\d+)\n$", read_line(proc.stdout, 15))
                self.assertTrue(m)
                fake = type("E", (), {"host": "127.0.0.1", "port": int(m.group(1))})
                self.assertEqual(Client(fake, "otheracct", KEY).batch("GET", "/pools").status, 200)
                self.assertEqual(Client(fake, ACCOUNT, KEY).batch("GET", "/pools").status, 403)
            finally:
                proc.terminate()
                self.assertEqual(proc.wait(10), 0)
                proc.stdout.close()
                proc.stderr.close()
            os.remove(os.path.join(d, "emulator-world.json"))
            r = subprocess.run([sys.executable, os.path.join(d, "azbatch-emulator")], capture_output=True,
                               text=True, timeout=20)
            self.assertEqual((r.returncode, r.stdout), (2, ""))
            self.assertIn("emulator-world.json", r.stderr)

    def test_bad_world_files_name_the_problem(self):
        with tempfile.TemporaryDirectory() as d:
            cases = [("{not json", "invalid JSON"), ('{"accounts": []}', "world.accounts"),
                     ('{"accounts": [{"name": "abc"}]}', "world.accounts[0].key"),
                     ('{"accounts": [], "typo": 1}', "world.typo")]
            for i, (text, expect) in enumerate(cases):
                path = os.path.join(d, "w%d.json" % i)
                with open(path, "w") as f:
                    f.write(text)
                r = self.run_emulator("--world", path)
                self.assertEqual(r.returncode, 2, text)
                self.assertIn(expect, r.stderr)
            r = self.run_emulator("--world", os.path.join(d, "missing.json"))
            self.assertEqual(r.returncode, 2)

    def test_account_and_key_override(self):
        other = base64.b64encode(b"another-key-for-the-override-test").decode()
        emu = Emulator("--account", "myacct", "--key", other)
        self.assertEqual(Client(emu, "myacct", other).batch("GET", "/pools").status, 200)
        r = Client(emu, ACCOUNT, KEY).batch("GET", "/pools")
        self.assertEqual(r.status, 403)
        self.assertEqual(emu.stop(), 0)

    def test_verbose_logs_requests_but_no_secrets(self):
        emu = Emulator("--verbose")
        c = Client(emu)
        r = c.batch("GET", "/pools")
        self.assertEqual(r.status, 200)
        tok = c.token()
        self.assertEqual(tok.status, 200)
        bad = c.token(secret="wrong")
        self.assertEqual(bad.status, 401)
        c.close()
        self.assertEqual(emu.stop(), 0)
        self.assertIn("GET /pools?api-version=2025-06-01", emu.stderr)
        for secret in (KEY, CLIENT_SECRET, tok.json["access_token"], "SharedKey"):
            self.assertNotIn(secret, emu.stderr)


# {===================================================================
# Data plane
# ====================================================================

class DataPlaneTests(EmulatorCase):
    def test_create_returns_201_with_the_service_headers(self):
        r = self.c.batch("POST", "/pools", body=pool_body("p1", targetDedicatedNodes=2),
                         headers=[("client-request-id", "9c4d50ee-2d56-4cd3-8152-34347dc9f2b0"),
                                  ("return-client-request-id", "true")])
        self.assertEqual(r.status, 201)
        self.assertEqual(r.body, b"")
        self.assertRegex(r.headers["etag"], r"^0x[0-9A-F]{15}$")
        self.assertIn("GMT", r.headers["last-modified"])
        uuid.UUID(r.headers["request-id"])
        self.assertEqual(r.headers["client-request-id"], "9c4d50ee-2d56-4cd3-8152-34347dc9f2b0")
        self.assertTrue(r.headers["dataserviceid"].endswith("/pools/p1"))
        self.assertTrue(r.headers["location"].endswith("/pools/p1"))
        self.assertEqual(r.headers["dataserviceversion"], "3.0")
        r = self.c.batch("GET", "/pools/p1", headers=[("client-request-id", "abc")])
        self.assertNotIn("client-request-id", r.headers)
        self.assertEqual(r.headers["content-type"], "application/json;odata=minimalmetadata")

    def test_get_pool_has_every_required_field(self):
        self.create("p1", targetDedicatedNodes=2, metadata=[{"name": "k", "value": "v"}])
        p = self.get("p1")
        for field in ("id", "url", "eTag", "lastModified", "creationTime", "state", "stateTransitionTime",
                      "allocationState", "allocationStateTransitionTime", "vmSize", "currentDedicatedNodes",
                      "currentLowPriorityNodes", "targetDedicatedNodes", "targetLowPriorityNodes", "resizeTimeout",
                      "enableAutoScale", "taskSlotsPerNode", "taskSchedulingPolicy", "virtualMachineConfiguration",
                      "enableInterNodeCommunication", "metadata"):
            self.assertIn(field, p)
        self.assertEqual(p["state"], "active")
        self.assertEqual(p["allocationState"], "resizing")
        self.assertEqual(p["resizeTimeout"], "PT15M")
        self.assertEqual(p["taskSchedulingPolicy"], {"nodeFillType": "spread"})
        self.assertEqual(p["virtualMachineConfiguration"]["imageReference"]["version"], "latest")
        self.assertTrue(p["odata.metadata"].endswith("$metadata#pools/@Element"))
        self.assertRegex(p["creationTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")

    def test_allocation_state_machine_with_the_clock(self):
        self.emu.control("POST", "clock", {"timeScale": 1e-9})      # all but frozen: only jumps move time
        self.addCleanup(self.emu.control, "POST", "clock", {"timeScale": 1})
        self.create("p1", targetDedicatedNodes=3)
        nodes = self.c.batch("GET", "/pools/p1/nodes").json["value"]
        self.assertEqual([n["state"] for n in nodes], ["creating"])       # the rest are still to come
        self.advance(4.1)       # nodes were allocated at 0, 0.2 and 0.4 s; creating lasts 4 s
        states = sorted(n["state"] for n in self.c.batch("GET", "/pools/p1/nodes").json["value"])
        self.assertEqual(states, ["creating", "creating", "starting"])
        self.assertEqual(self.get("p1")["allocationState"], "resizing")
        self.advance(10)
        p = self.get("p1")
        self.assertEqual((p["allocationState"], p["currentDedicatedNodes"]), ("steady", 3))
        self.assertNotIn("resizeErrors", p)
        self.assertEqual({n["state"] for n in self.c.batch("GET", "/pools/p1/nodes").json["value"]}, {"idle"})

    def test_get_missing_pool_is_404_with_the_error_shape(self):
        r = self.c.batch("GET", "/pools/nope")
        self.assertError(r, 404, "PoolNotFound")
        self.assertEqual(r.headers["content-type"], "application/json;odata=minimalmetadata")

    def test_head_reports_existence(self):
        self.create("p1")
        r = self.c.batch("HEAD", "/pools/p1")
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertIn("etag", r.headers)
        r = self.c.batch("HEAD", "/pools/nope")
        self.assertEqual((r.status, r.body), (404, b""))

    def test_select_and_expand_stats(self):
        self.create("p1")
        r = self.c.batch("GET", "/pools/p1", [("$select", "id,virtualMachineConfiguration")])
        self.assertEqual(set(r.json) - {"odata.metadata"}, {"id", "virtualMachineConfiguration"})
        r = self.c.batch("GET", "/pools/p1", [("$expand", "stats")])
        self.assertIn("dedicatedCoreTime", r.json["stats"]["usageStats"])
        self.assertError(self.c.batch("GET", "/pools/p1", [("$expand", "nodes")]), 400,
                         "InvalidQueryParameterValue", QueryParameterName="$expand")
        self.assertError(self.c.batch("GET", "/pools/p1", [("$select", "id,bogus")]), 400,
                         "InvalidQueryParameterValue", QueryParameterName="$select")

    def test_conditional_get(self):
        etag = self.create("p1").headers["etag"]
        r = self.c.batch("GET", "/pools/p1", headers=[("If-None-Match", etag)])
        self.assertEqual((r.status, r.body), (304, b""))
        r = self.c.batch("GET", "/pools/p1", headers=[("If-Match", "0x8D000000000000")])
        self.assertError(r, 412, "ConditionNotMet")
        self.assertEqual(self.c.batch("GET", "/pools/p1", headers=[("If-Match", etag)]).status, 200)

    def test_list_pages_with_next_link(self):
        for i in range(5):
            self.create("pool-%d" % i)
        r = self.c.batch("GET", "/pools", [("maxresults", "2")])
        self.assertEqual(r.status, 200)
        ids = [p["id"] for p in r.json["value"]]
        self.assertTrue(r.json["odata.metadata"].endswith("$metadata#pools"))
        link = r.json["odata.nextLink"]
        self.assertTrue(link.startswith("http://127.0.0.1:%d/pools?" % self.emu.port), link)
        while link:
            r = self.c.signed("GET", link[link.index("/pools"):])
            self.assertEqual(r.status, 200, r.body)
            self.assertLessEqual(len(r.json["value"]), 2)
            ids += [p["id"] for p in r.json["value"]]
            link = r.json.get("odata.nextLink")
        self.assertEqual(ids, ["pool-%d" % i for i in range(5)])
        self.assertError(self.c.batch("GET", "/pools", [("maxresults", "0")]), 400, "OutOfRangeQueryParameterValue")
        self.assertError(self.c.batch("GET", "/pools", [("maxresults", "1001")]), 400, "OutOfRangeQueryParameterValue")
        self.assertError(self.c.batch("GET", "/pools", [("maxresults", "x")]), 400, "InvalidQueryParameterValue")

    def test_list_filter_and_select(self):
        for pid in ("alpha-1", "alpha-2", "beta"):
            self.create(pid)
        def ids(flt):
            r = self.c.batch("GET", "/pools", [("$filter", flt), ("$select", "id,state")])
            self.assertEqual(r.status, 200, r.body)
            for p in r.json["value"]:
                self.assertEqual(set(p), {"id", "state"})
            return [p["id"] for p in r.json["value"]]
        self.assertEqual(ids("startswith(id,'alpha')"), ["alpha-1", "alpha-2"])
        self.assertEqual(ids("id eq 'beta'"), ["beta"])
        self.assertEqual(ids("state eq 'active' and not startswith(id, 'alpha')"), ["beta"])
        self.assertEqual(ids("state eq 'deleting'"), [])
        self.assertError(self.c.batch("GET", "/pools", [("$filter", "id eq")]), 400, "InvalidQueryParameterValue",
                         QueryParameterName="$filter")

    def test_patch_with_if_match(self):
        etag = self.create("p1", metadata=[{"name": "a", "value": "1"}]).headers["etag"]
        r = self.c.batch("PATCH", "/pools/p1", body={"metadata": [{"name": "b", "value": "2"}]},
                         headers=[("If-Match", etag)])
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertNotEqual(r.headers["etag"], etag)
        self.assertEqual(self.get("p1")["metadata"], [{"name": "b", "value": "2"}])
        r = self.c.batch("PATCH", "/pools/p1", body={"metadata": []}, headers=[("If-Match", etag)])
        self.assertError(r, 412, "ConditionNotMet")
        self.assertError(self.c.batch("PATCH", "/pools/p1", body={"targetDedicatedNodes": 3}), 400,
                         "UnsupportedProperty", PropertyName="targetDedicatedNodes")
        self.assertError(self.c.batch("PATCH", "/pools/nope", body={"metadata": []}), 404, "PoolNotFound")

    def test_patch_restricted_property_needs_an_empty_pool(self):
        self.create("p1", targetDedicatedNodes=1)
        self.advance(15)
        self.assertError(self.c.batch("PATCH", "/pools/p1", body={"vmSize": "Standard_D4s_v5"}), 409,
                         "OperationInvalidForCurrentState", PropertyName="vmSize")
        self.create("empty")
        self.advance(5)
        self.assertEqual(self.c.batch("PATCH", "/pools/empty", body={"vmSize": "Standard_D4s_v5"}).status, 200)
        self.assertEqual(self.get("empty")["vmSize"], "Standard_D4s_v5")

    def test_delete_lifecycle(self):
        self.create("p1", targetDedicatedNodes=1)
        r = self.c.batch("DELETE", "/pools/p1")
        self.assertEqual((r.status, r.body), (202, b""))
        p = self.get("p1")
        self.assertEqual(p["state"], "deleting")
        self.assertError(self.c.batch("DELETE", "/pools/p1"), 409, "PoolBeingDeleted")
        self.assertError(self.c.batch("PATCH", "/pools/p1", body={"metadata": []}), 409, "PoolBeingDeleted")
        self.assertError(self.c.batch("POST", "/pools/p1/resize", body={"targetDedicatedNodes": 0}), 409,
                         "PoolBeingDeleted")
        self.assertError(self.c.batch("POST", "/pools", body=pool_body("P1")), 409, "PoolBeingDeleted")
        self.advance(10)
        self.assertError(self.c.batch("GET", "/pools/p1"), 404, "PoolNotFound")
        self.assertError(self.c.batch("DELETE", "/pools/p1"), 404, "PoolNotFound")
        self.create("p1")

    def test_duplicate_id_is_case_insensitive(self):
        self.create("Pool1")
        self.assertError(self.c.batch("POST", "/pools", body=pool_body("pool1")), 409, "PoolExists")

    def test_create_validation(self):
        def err(body, status, code, **values):
            return self.assertError(self.c.batch("POST", "/pools", body=body), status, code, **values)
        base = pool_body("ok")
        for field in ("id", "vmSize", "virtualMachineConfiguration"):
            b = dict(base)
            del b[field]
            err(b, 400, "MissingRequiredProperty", PropertyName=field)
        for field in ("imageReference", "nodeAgentSKUId"):
            b = copy.deepcopy(base)
            del b["virtualMachineConfiguration"][field]
            err(b, 400, "MissingRequiredProperty", PropertyName=field)
        b = copy.deepcopy(base)
        del b["virtualMachineConfiguration"]["imageReference"]["sku"]
        err(b, 400, "MissingRequiredProperty", PropertyName="sku")
        err(pool_body("bad id!"), 400, "InvalidPropertyValue", PropertyName="id")
        err(pool_body("x" * 65), 400, "InvalidPropertyValue", PropertyName="id")
        err(pool_body("p", targetDedicatedNodes=-1), 400, "InvalidPropertyValue", PropertyName="targetDedicatedNodes")
        err(pool_body("p", targetLowPriorityNodes="2"), 400, "InvalidPropertyValue",
            PropertyName="targetLowPriorityNodes")
        err(pool_body("p", resizeTimeout="PT4M"), 400, "InvalidPropertyValue", PropertyName="resizeTimeout")
        err(pool_body("p", resizeTimeout="15 minutes"), 400, "InvalidPropertyValue", PropertyName="resizeTimeout")
        err(pool_body("p", enableAutoScale=True, autoScaleFormula="$TargetDedicatedNodes=1;", targetDedicatedNodes=1),
            400, "InvalidPropertyValue", PropertyName="targetDedicatedNodes")
        err(pool_body("p", enableAutoScale=True), 400, "MissingRequiredProperty", PropertyName="autoScaleFormula")
        err(pool_body("p", autoScaleFormula="$TargetDedicatedNodes=1;"), 400, "InvalidPropertyValue",
            PropertyName="autoScaleFormula")
        err(pool_body("p", taskSlotsPerNode=9), 400, "InvalidPropertyValue", PropertyName="taskSlotsPerNode")
        err(pool_body("p", startTask={"waitForSuccess": True}), 400, "MissingRequiredProperty",
            PropertyName="commandLine")
        err(pool_body("p", vmsize="typo"), 400, "UnsupportedProperty", PropertyName="vmsize")
        b = pool_body("p")
        b["virtualMachineConfiguration"]["nodeAgentSKUId"] = "batch.node.centos 7"
        err(b, 400, "InvalidPropertyValue", PropertyName="nodeAgentSKUId")
        b["virtualMachineConfiguration"]["nodeAgentSKUId"] = "batch.node.windows amd64"
        err(b, 400, "InvalidPropertyValue", PropertyName="nodeAgentSKUId")
        r = self.c.batch("POST", "/pools", raw_body=b'{"id": "p",')
        self.assertError(r, 400, "InvalidRequestBody")
        r = self.c.batch("POST", "/pools", raw_body=b"[1, 2]")
        self.assertError(r, 400, "InvalidRequestBody")
        r = self.c.batch("POST", "/pools", body=pool_body("p"), content_type="text/plain")
        self.assertError(r, 400, "InvalidHeaderValue", HeaderName="Content-Type")
        self.assertEqual(self.emu.control("GET", "stats")[1]["pools"], 0)

    def test_resize_and_its_errors(self):
        self.create("p1", targetDedicatedNodes=1)
        self.assertError(self.c.batch("POST", "/pools/p1/resize", body={"targetDedicatedNodes": 2}), 409,
                         "PoolBeingResized")
        self.advance(15)
        r = self.c.batch("POST", "/pools/p1/resize", body={"targetDedicatedNodes": 3, "targetLowPriorityNodes": 1,
                                                           "resizeTimeout": "PT10M"})
        self.assertEqual((r.status, r.body), (202, b""))
        p = self.get("p1")
        self.assertEqual((p["allocationState"], p["targetDedicatedNodes"], p["targetLowPriorityNodes"],
                          p["resizeTimeout"]), ("resizing", 3, 1, "PT10M"))
        self.advance(15)
        p = self.get("p1")
        self.assertEqual((p["allocationState"], p["currentDedicatedNodes"], p["currentLowPriorityNodes"]),
                         ("steady", 3, 1))
        self.assertEqual(self.c.batch("POST", "/pools/p1/resize", body={"targetDedicatedNodes": 1,
                                                                        "targetLowPriorityNodes": 0}).status, 202)
        states = [n["state"] for n in self.c.batch("GET", "/pools/p1/nodes").json["value"]]
        self.assertEqual(sorted(states), ["idle", "leavingpool", "leavingpool", "leavingpool"])
        self.advance(5)
        p = self.get("p1")
        self.assertEqual((p["allocationState"], p["currentDedicatedNodes"], p["currentLowPriorityNodes"]),
                         ("steady", 1, 0))
        for body, prop in (({"resizeTimeout": "PT1M"}, "resizeTimeout"), ({"targetDedicatedNodes": -2},
                                                                          "targetDedicatedNodes"),
                           ({"nodeDeallocationOption": "later"}, "nodeDeallocationOption")):
            self.assertError(self.c.batch("POST", "/pools/p1/resize", body=body), 400, "InvalidPropertyValue",
                             PropertyName=prop)
        self.assertError(self.c.batch("POST", "/pools/nope/resize", body={}), 404, "PoolNotFound")
        self.assertError(self.c.batch("GET", "/pools/p1/resize"), 405, "UnsupportedHttpVerb")

    def test_stop_resize(self):
        self.create("p1", targetDedicatedNodes=50)
        r = self.c.batch("POST", "/pools/p1/stopresize")
        self.assertEqual((r.status, r.body), (202, b""))
        p = self.get("p1")
        self.assertEqual(p["allocationState"], "stopping")
        self.advance(5)
        p = self.get("p1")
        self.assertEqual(p["allocationState"], "steady")
        self.assertLess(p["currentDedicatedNodes"], 50)
        self.assertEqual(p["targetDedicatedNodes"], 50)
        self.assertEqual([e["code"] for e in p["resizeErrors"]], ["ResizeStopped"])
        self.assertEqual(self.c.batch("POST", "/pools/p1/resize", body={"targetDedicatedNodes": 1}).status, 202)
        self.advance(15)
        self.assertNotIn("resizeErrors", self.get("p1"))

    def test_autoscale_enable_evaluate_disable(self):
        self.create("p1")
        self.advance(5)
        r = self.c.batch("POST", "/pools/p1/enableautoscale",
                         body={"autoScaleFormula": "$TargetDedicatedNodes = 2; $TargetLowPriorityNodes = 1;",
                               "autoScaleEvaluationInterval": "PT8M"})
        self.assertEqual((r.status, r.body), (200, b""))
        p = self.get("p1")
        self.assertTrue(p["enableAutoScale"])
        self.assertEqual(p["autoScaleEvaluationInterval"], "PT8M")
        self.assertEqual(p["autoScaleRun"]["results"],
                         "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=1;$NodeDeallocationOption=requeue")
        self.assertEqual((p["targetDedicatedNodes"], p["targetLowPriorityNodes"]), (2, 1))
        self.assertError(self.c.batch("POST", "/pools/p1/resize", body={"targetDedicatedNodes": 1}), 409,
                         "AutoScalingEnabled")
        self.assertError(self.c.batch("POST", "/pools/p1/enableautoscale",
                                      body={"autoScaleFormula": "$TargetDedicatedNodes=1;"}), 409,
                         "TooManyEnableAutoScaleRequests")
        r = self.c.batch("POST", "/pools/p1/evaluateautoscale", body={"autoScaleFormula": "$TargetDedicated=5"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["results"], "$TargetDedicated=5;$NodeDeallocationOption=requeue")
        self.assertIn("timestamp", r.json)
        self.assertEqual(self.get("p1")["targetDedicatedNodes"], 2)     # evaluation does not apply
        self.assertError(self.c.batch("POST", "/pools/p1/evaluateautoscale", body={"autoScaleFormula": "$X = ;"}),
                         400, "AutoScalingFormulaSyntaxError")
        self.assertError(self.c.batch("POST", "/pools/p1/evaluateautoscale", body={}), 400,
                         "MissingRequiredProperty", PropertyName="autoScaleFormula")
        self.advance(31)
        self.assertError(self.c.batch("POST", "/pools/p1/enableautoscale", body={"autoScaleFormula": "oops"}), 400,
                         "AutoScalingFormulaSyntaxError")
        r = self.c.batch("POST", "/pools/p1/disableautoscale")
        self.assertEqual((r.status, r.body), (200, b""))
        p = self.get("p1")
        self.assertFalse(p["enableAutoScale"])
        self.assertNotIn("autoScaleFormula", p)
        self.assertError(self.c.batch("POST", "/pools/p1/evaluateautoscale",
                                      body={"autoScaleFormula": "$TargetDedicatedNodes=1;"}), 409,
                         "AutoScalingNotEnabled")

    def test_create_with_autoscale(self):
        self.create("auto", enableAutoScale=True,
                    autoScaleFormula="$TargetDedicatedNodes = min(3, 10);\n$NodeDeallocationOption = taskcompletion;")
        p = self.get("auto")
        self.assertEqual((p["enableAutoScale"], p["targetDedicatedNodes"]), (True, 3))
        self.assertEqual(p["autoScaleEvaluationInterval"], "PT15M")
        self.assertIn("$NodeDeallocationOption=taskcompletion", p["autoScaleRun"]["results"])

    def test_update_properties(self):
        self.create("p1", startTask={"commandLine": "/bin/sh -c true"}, metadata=[{"name": "a", "value": "1"}])
        r = self.c.batch("POST", "/pools/p1/updateproperties",
                         body={"applicationPackageReferences": [], "metadata": [{"name": "b", "value": "2"}]})
        self.assertEqual((r.status, r.body), (204, b""))
        p = self.get("p1")
        self.assertNotIn("startTask", p)
        self.assertEqual(p["metadata"], [{"name": "b", "value": "2"}])
        self.assertError(self.c.batch("POST", "/pools/p1/updateproperties", body={"metadata": []}), 400,
                         "MissingRequiredProperty", PropertyName="applicationPackageReferences")
        self.assertError(self.c.batch("POST", "/pools/p1/updateproperties",
                                      body={"applicationPackageReferences": []}), 400,
                         "MissingRequiredProperty", PropertyName="metadata")

    def test_remove_nodes(self):
        self.create("p1", targetDedicatedNodes=3)
        nodes = [n["id"] for n in self.c.batch("GET", "/pools/p1/nodes").json["value"]]
        self.assertError(self.c.batch("POST", "/pools/p1/removenodes", body={"nodeList": nodes[:1]}), 409,
                         "PoolBeingResized")
        self.advance(15)
        nodes = [n["id"] for n in self.c.batch("GET", "/pools/p1/nodes").json["value"]]
        self.assertError(self.c.batch("POST", "/pools/p1/removenodes", body={"nodeList": ["n"] * 101}), 400,
                         "InvalidPropertyValue", PropertyName="nodeList")
        self.assertError(self.c.batch("POST", "/pools/p1/removenodes", body={}), 400, "MissingRequiredProperty",
                         PropertyName="nodeList")
        self.assertError(self.c.batch("POST", "/pools/p1/removenodes", body={"nodeList": ["tvmps_nope_d"]}), 404,
                         "NodeNotFound")
        r = self.c.batch("POST", "/pools/p1/removenodes", body={"nodeList": nodes[:1]})
        self.assertEqual((r.status, r.body), (202, b""))
        self.assertEqual(self.get("p1")["allocationState"], "resizing")
        self.advance(5)
        p = self.get("p1")
        self.assertEqual((p["allocationState"], p["currentDedicatedNodes"], p["targetDedicatedNodes"]),
                         ("steady", 2, 2))
        left = [n["id"] for n in self.c.batch("GET", "/pools/p1/nodes").json["value"]]
        self.assertNotIn(nodes[0], left)

    def test_list_and_get_nodes(self):
        self.create("p1", targetDedicatedNodes=2, targetLowPriorityNodes=1,
                    startTask={"commandLine": "/bin/sh -c true"})
        self.advance(15)
        r = self.c.batch("GET", "/pools/p1/nodes", [("maxresults", "2")])
        self.assertEqual(len(r.json["value"]), 2)
        link = r.json["odata.nextLink"]
        rest = self.c.signed("GET", link[link.index("/pools"):]).json
        self.assertEqual(len(rest["value"]), 1)
        self.assertNotIn("odata.nextLink", rest)
        node = r.json["value"][0]
        self.assertRegex(node["id"], r"^tvmps_[0-9a-f]{64}_[dp]$")
        for field in ("url", "state", "schedulingState", "stateTransitionTime", "allocationTime", "ipAddress",
                      "vmSize", "totalTasksRun", "isDedicated", "virtualMachineInfo", "startTaskInfo"):
            self.assertIn(field, node)
        self.assertEqual(node["virtualMachineInfo"]["imageReference"]["exactVersion"], "latest")
        dedicated = self.c.batch("GET", "/pools/p1/nodes", [("$filter", "isDedicated eq true"),
                                                            ("$select", "id,isDedicated")]).json["value"]
        self.assertEqual(len(dedicated), 2)
        self.assertEqual(set(dedicated[0]), {"id", "isDedicated"})
        self.assertEqual(len(self.c.batch("GET", "/pools/p1/nodes", [("$filter", "state eq 'idle'")]).json["value"]),
                         3)
        one = self.c.batch("GET", "/pools/p1/nodes/" + node["id"])
        self.assertEqual((one.status, one.json["id"]), (200, node["id"]))
        self.assertError(self.c.batch("GET", "/pools/p1/nodes/tvmps_x_d"), 404, "NodeNotFound")
        self.assertError(self.c.batch("GET", "/pools/nope/nodes"), 404, "PoolNotFound")

    def test_supported_images(self):
        r = self.c.batch("GET", "/supportedimages")
        self.assertTrue(r.json["odata.metadata"].endswith("$metadata#supportedimages"))
        skus = {i["nodeAgentSKUId"] for i in r.json["value"]}
        self.assertTrue({"batch.node.ubuntu 22.04", "batch.node.ubuntu 20.04", "batch.node.windows amd64"} <= skus)
        eol = [i for i in r.json["value"] if i["nodeAgentSKUId"] == "batch.node.ubuntu 20.04"][0]
        self.assertEqual(eol["batchSupportEndOfLife"], "2025-04-30T00:00:00Z")
        verified = self.c.batch("GET", "/supportedimages", [("$filter", "verificationType eq 'verified'")]).json
        self.assertTrue(verified["value"])
        self.assertTrue(all(i["verificationType"] == "verified" for i in verified["value"]))
        page = self.c.batch("GET", "/supportedimages", [("maxresults", "1")]).json
        self.assertEqual(len(page["value"]), 1)
        self.assertIn("odata.nextLink", page)

    def test_node_counts(self):
        self.create("p1", targetDedicatedNodes=2, targetLowPriorityNodes=1)
        self.create("p2")
        self.advance(15)
        r = self.c.batch("GET", "/nodecounts")
        self.assertEqual(r.status, 200)
        counts = {c["poolId"]: c for c in r.json["value"]}
        self.assertEqual(set(counts), {"p1", "p2"})
        self.assertEqual(len(counts["p1"]["dedicated"]), 17)
        self.assertEqual((counts["p1"]["dedicated"]["idle"], counts["p1"]["dedicated"]["total"]), (2, 2))
        self.assertEqual(counts["p1"]["lowPriority"]["total"], 1)
        r = self.c.batch("GET", "/nodecounts", [("$filter", "poolId eq 'p2'"), ("maxresults", "1")])
        self.assertEqual([c["poolId"] for c in r.json["value"]], ["p2"])

    def test_api_version_checks(self):
        self.assertError(self.c.batch("GET", "/pools", api=None), 400, "MissingRequiredQueryParameter",
                         QueryParameterName="api-version")
        for bad in ("2021-06-01.14.0", "2026-10-01", "2024-07-01", "latest"):
            self.assertError(self.c.batch("GET", "/pools", api=bad), 400, "InvalidQueryParameterValue",
                             QueryParameterName="api-version", QueryParameterValue=bad)
        for good in ("2022-10-01.16.0", "2023-05-01.17.0", "2024-07-01.20.0"):
            self.assertEqual(self.c.batch("GET", "/pools", api=good).status, 200, good)

    def test_old_api_version_fields_are_accepted_and_echoed(self):
        body = pool_body("legacy", certificateReferences=[], targetNodeCommunicationMode="default",
                         resourceTags={"team": "x"})
        r = self.c.batch("POST", "/pools", body=body, api="2022-10-01.16.0")
        self.assertEqual(r.status, 201, r.body)
        p = self.c.batch("GET", "/pools/legacy", api="2022-10-01.16.0").json
        self.assertEqual((p["certificateReferences"], p["targetNodeCommunicationMode"], p["resourceTags"]),
                         ([], "default", {"team": "x"}))

    def test_unknown_path_and_wrong_verb(self):
        self.assertError(self.c.batch("GET", "/jobschedules"), 400, "InvalidUri")
        self.assertError(self.c.batch("GET", "/pools/p1/bogus"), 400, "InvalidUri")
        r = self.c.batch("PUT", "/pools", body={})
        self.assertError(r, 405, "UnsupportedHttpVerb")
        self.assertIn("POST", r.headers["allow"])

    def test_gallery_pool_refuses_shared_key(self):
        body = pool_body("gal")
        body["virtualMachineConfiguration"]["imageReference"] = {"virtualMachineImageId": GALLERY_IMAGE}
        r = self.c.batch("POST", "/pools", body=body)
        self.assertError(r, 403, "AuthenticationFailed", AuthenticationErrorDetail=(
            "The specified type of authentication SharedKey is not allowed when external resources of type "
            "Compute are linked."))
        token = self.bearer()
        r = self.c.batch("POST", "/pools", body=dict(body, targetDedicatedNodes=1), auth=token)
        self.assertEqual(r.status, 201, r.body)
        node = self.c.batch("GET", "/pools/gal/nodes", auth=token).json["value"][0]
        self.assertEqual(node["virtualMachineInfo"]["imageReference"],
                         {"virtualMachineImageId": GALLERY_IMAGE, "exactVersion": "1.1.0"})
        self.assertEqual(self.c.batch("GET", "/pools/gal").status, 200)

    def test_custom_image_checks(self):
        token = self.bearer()
        def err(image_id, prop="virtualMachineImageId", agent="batch.node.ubuntu 22.04"):
            body = pool_body("img")
            body["virtualMachineConfiguration"] = {"imageReference": {"virtualMachineImageId": image_id},
                                                   "nodeAgentSKUId": agent}
            r = self.c.batch("POST", "/pools", body=body, auth=token)
            self.assertError(r, 400, "InvalidPropertyValue", PropertyName=prop)
        err(GALLERY + "/images/missing")
        err(GALLERY_IMAGE + "/versions/9.9.9")
        err(GALLERY_IMAGE.replace(SUB, "00000000-0000-0000-0000-0000000000ff"))
        err("/not/an/arm/id")
        err(GALLERY_IMAGE, prop="nodeAgentSKUId", agent="batch.node.windows amd64")
        body = pool_body("managed")
        body["virtualMachineConfiguration"]["imageReference"] = {"virtualMachineImageId": MANAGED_IMAGE}
        self.assertEqual(self.c.batch("POST", "/pools", body=body, auth=token).status, 201)
        body = pool_body("pinned")
        body["virtualMachineConfiguration"]["imageReference"] = {"virtualMachineImageId": GALLERY_IMAGE +
                                                                 "/versions/1.0.0"}
        self.assertEqual(self.c.batch("POST", "/pools", body=body, auth=token).status, 201)

    def test_keep_alive_reuses_one_connection(self):
        before = self.emu.control("GET", "stats")[1]["connections"]
        for _ in range(5):
            self.assertEqual(self.c.batch("GET", "/pools").status, 200)
        self.assertEqual(self.emu.control("GET", "stats")[1]["connections"] - before, 1 + 1)   # client + control


# {===================================================================
# Authentication
# ====================================================================

class AuthTests(EmulatorCase):
    def test_bad_signature_is_403_without_leaking_the_key(self):
        r = Client(self.emu, ACCOUNT, base64.b64encode(b"wrong key").decode()).batch("GET", "/pools")
        body = self.assertError(r, 403, "AuthenticationFailed")
        detail = r.values()["AuthenticationErrorDetail"]
        self.assertIn("The MAC signature found in the HTTP request", detail)
        self.assertIn("is not the same as any computed signature", detail)
        good = Client(self.emu)
        target = "/pools?api-version=" + API
        self.assertNotIn(KEY.encode(), r.body)
        self.assertTrue(body["message"]["value"].startswith("Server failed to authenticate the request."))
        hdrs = [("ocp-date", email.utils.formatdate(usegmt=True))]
        expected = emu_auth.authorization_header(ACCOUNT, KEY, "GET", target, hdrs).split(":", 1)[1]
        self.assertNotIn(expected.encode(), r.body)
        good.close()

    def test_one_byte_off_fails(self):
        date = email.utils.formatdate(usegmt=True)
        target = "/pools?api-version=" + API
        hdrs = [("ocp-date", date)]
        auth = emu_auth.authorization_header(ACCOUNT, KEY, "GET", target, hdrs)
        ok = self.c.send("GET", target, hdrs + [("Authorization", auth)])
        self.assertEqual(ok.status, 200)
        for method, tgt, h in (("GET", target + "&maxresults=5", hdrs),            # query not signed
                               ("GET", "/Pools?api-version=" + API, hdrs),          # path case differs
                               ("GET", target, [("ocp-date", date + " ")] + [("ocp-x", "1")]),  # extra ocp header
                               ("HEAD", target, hdrs)):                            # verb differs
            r = self.c.send(method, tgt, h + [("Authorization", auth)])
            self.assertEqual(r.status, 403, (method, tgt, h))

    def test_date_checks(self):
        old = email.utils.formatdate(time.time() - 20 * 60, usegmt=True)
        r = self.c.batch("GET", "/pools", headers=[("ocp-date", old)])   # a second ocp-date header: first wins
        self.assertEqual(r.status, 403)
        target = "/pools?api-version=" + API
        for hdrs, fragment in (([("ocp-date", old)], "too old"),
                               ([("ocp-date", email.utils.formatdate(time.time() + 20 * 60, usegmt=True))],
                                "future"),
                               ([], "date header not specified"), ([("ocp-date", "yesterday")], "not a valid")):
            sts = string_to_sign("GET", "/pools", [("api-version", API)], hdrs, ACCOUNT)
            r = self.c.send("GET", target, hdrs + [("Authorization", "SharedKey %s:%s" % (ACCOUNT,
                                                                                           signature(KEY, sts)))])
            self.assertError(r, 403, "AuthenticationFailed")
            self.assertIn(fragment, r.values()["AuthenticationErrorDetail"])
        date_only = [("Date", email.utils.formatdate(usegmt=True))]
        sts = string_to_sign("GET", "/pools", [("api-version", API)], date_only, ACCOUNT)
        r = self.c.send("GET", target, date_only + [("Authorization", "SharedKey %s:%s" % (ACCOUNT,
                                                                                         signature(KEY, sts)))])
        self.assertEqual(r.status, 200, r.body)

    def test_missing_malformed_and_unknown_account(self):
        r = self.c.batch("GET", "/pools", auth=None)
        self.assertError(r, 401, "AuthenticationFailed")
        self.assertIn("Bearer authorization_uri=", r.headers["www-authenticate"])
        self.assertIn(TENANT, r.headers["www-authenticate"])
        target = "/pools?api-version=" + API
        date = [("ocp-date", email.utils.formatdate(usegmt=True))]
        self.assertError(self.c.send("GET", target, date + [("Authorization", "SharedKey devbatch")]), 403,
                         "AuthenticationFailed")
        self.assertError(self.c.send("GET", target, date + [("Authorization", "Basic abc")]), 401,
                         "AuthenticationFailed")
        self.assertError(Client(self.emu, "nosuch", KEY).batch("GET", "/pools"), 403, "AuthenticationFailed")

    def test_content_length_variants(self):
        self.create("p1")
        # Exactly what was sent ("0"), the .NET variant (empty for 0), and a wrong one.
        self.assertEqual(self.c.batch("POST", "/pools/p1/stopresize", sign_length="0").status, 202)
        self.assertEqual(self.c.batch("POST", "/pools/p1/stopresize", sign_length="").status, 202)
        self.assertEqual(self.c.batch("POST", "/pools/p1/stopresize", sign_length="1").status, 403)
        # A POST with a body must sign its real length.
        r = self.c.batch("POST", "/pools", body=pool_body("p2"), sign_length="")
        self.assertEqual(r.status, 403)

    def test_blank_query_values_signed_either_way(self):
        # Found by tests/interop: `az batch pool list --filter ""` sends `$filter=`, and the
        # Python SDK's SharedKeyAuth leaves blank values out of the string to sign, while the
        # JS SDK and this suite's signer keep them as '$filter:'.  Both are accepted.
        self.create("p1")
        date = [("ocp-date", email.utils.formatdate(usegmt=True))]
        target = "/pools?api-version=%s&%%24filter=&%%24select=&maxresults=1000" % API
        kept = [("api-version", API), ("$filter", ""), ("$select", ""), ("maxresults", "1000")]
        for query in (kept, [kv for kv in kept if kv[1] != ""]):
            sts = string_to_sign("GET", "/pools", query, date, ACCOUNT)
            r = self.c.send("GET", target, date + [("Authorization", "SharedKey %s:%s" % (ACCOUNT,
                                                                                        signature(KEY, sts)))])
            self.assertEqual(r.status, 200, r.body)
            # An empty $filter and an empty $select mean none: whole pools come back.
            self.assertEqual([p["id"] for p in r.json["value"]], ["p1"])
            self.assertIn("vmSize", r.json["value"][0])
        # Leaving out a parameter whose value is not blank still fails.
        target2 = "/pools?api-version=%s&maxresults=5" % API
        sts = string_to_sign("GET", "/pools", [("api-version", API)], date, ACCOUNT)
        r = self.c.send("GET", target2, date + [("Authorization", "SharedKey %s:%s" % (ACCOUNT, signature(KEY, sts)))])
        self.assertError(r, 403, "AuthenticationFailed")

    def test_token_endpoint(self):
        r = self.c.token()
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["token_type"], "Bearer")
        self.assertEqual((r.json["expires_in"], r.json["ext_expires_in"]), (3599, 3599))
        self.assertEqual(len(r.json["access_token"].split(".")), 3)
        payload = json.loads(base64.urlsafe_b64decode(r.json["access_token"].split(".")[1] + "=="))
        self.assertEqual((payload["aud"], payload["tid"], payload["appid"]),
                         ("https://batch.core.windows.net/", TENANT, CLIENT_ID))

    def test_token_endpoint_errors(self):
        def err(resp, status, error, code):
            self.assertEqual(resp.status, status, resp.body)
            self.assertEqual(resp.json["error"], error)
            self.assertEqual(resp.json["error_codes"], [code])
            self.assertIn("AADSTS%d:" % code, resp.json["error_description"])
            for k in ("timestamp", "trace_id", "correlation_id", "error_uri"):
                self.assertIn(k, resp.json)
        bad = self.c.token(secret="not-the-secret")
        err(bad, 401, "invalid_client", 7000215)
        self.assertNotIn(b"not-the-secret", bad.body)
        self.assertNotIn(CLIENT_SECRET.encode(), bad.body)
        err(self.c.token(client_id="00000000-0000-0000-0000-0000000000ff"), 400, "unauthorized_client", 700016)
        err(self.c.token(tenant="00000000-0000-0000-0000-0000000000bb"), 400, "invalid_request", 90002)
        err(self.c.token(scope="https://batch.core.windows.net/user_impersonation"), 400, "invalid_scope", 1002012)
        err(self.c.token(scope="https://batch.core.windows.net/.default"), 400, "invalid_resource", 500011)
        err(self.c.token(scope=""), 400, "invalid_request", 900144)
        err(self.c.token(secret=None), 401, "invalid_client", 7000216)
        err(self.c.token(extra={"grant_type": "password"}), 400, "unsupported_grant_type", 70003)

    def test_workload_identity_assertion(self):
        r = self.c.token(secret=None, extra={
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": "eyJhbGciOi.federated.token"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.c.batch("GET", "/pools", auth=r.json["access_token"]).status, 200)
        r = self.c.token(secret=None, extra={"client_assertion_type": "urn:other", "client_assertion": "x"})
        self.assertEqual(r.status, 400)

    def test_bearer_verification(self):
        token = self.bearer()
        self.assertEqual(self.c.batch("GET", "/pools", auth=token).status, 200)
        arm_token = self.bearer(ARM_SCOPE)
        r = self.c.batch("GET", "/pools", auth=arm_token)
        self.assertError(r, 401, "AuthenticationFailed")
        self.assertIn('error="invalid_token"', r.headers["www-authenticate"])
        self.assertIn("wrong audience", r.values()["AuthenticationErrorDetail"])
        head, payload, sig = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["exp"] += 3600
        forged = head + "." + base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode() + "." + sig
        self.assertError(self.c.batch("GET", "/pools", auth=forged), 401, "AuthenticationFailed")
        self.assertError(self.c.batch("GET", "/pools", auth="garbage"), 401, "AuthenticationFailed")

    def test_managed_identity_endpoint(self):
        path = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + \
               urllib.parse.quote("https://batch.core.windows.net/", safe="")
        r = self.c.send("GET", path, [])
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json["error"], "invalid_request")
        r = self.c.send("GET", path, [("Metadata", "true")])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.json["expires_in"], r.json["token_type"], r.json["resource"]),
                         ("86399", "Bearer", "https://batch.core.windows.net/"))
        self.assertTrue(r.json["expires_on"].isdigit())
        self.assertEqual(self.c.batch("GET", "/pools", auth=r.json["access_token"]).status, 200)
        r = self.c.send("GET", path.replace("batch.core", "nothing.core"), [("Metadata", "true")])
        self.assertEqual((r.status, r.json["error"]), (400, "invalid_resource"))


class TokenExpiryTests(EmulatorCase):
    ARGS = ("--token-lifetime", "1")

    def test_tokens_expire(self):
        r = self.c.token()
        self.assertEqual(r.json["expires_in"], 1)
        token = r.json["access_token"]
        arm_token = self.bearer(ARM_SCOPE)
        self.assertEqual(self.c.batch("GET", "/pools", auth=token).status, 200)
        time.sleep(1.2)
        r = self.c.batch("GET", "/pools", auth=token)
        self.assertError(r, 401, "AuthenticationFailed")
        self.assertIn("expired", r.headers["www-authenticate"])
        r = self.c.arm("GET", GALLERY_IMAGE, arm_token)
        self.assertEqual((r.status, r.json["error"]["code"]), (401, "ExpiredAuthenticationToken"))


# {===================================================================
# ARM
# ====================================================================

class ArmTests(EmulatorCase):
    def setUp(self):
        super().setUp()
        self.token = self.bearer(ARM_SCOPE)

    def arm_error(self, resp, status, code):
        self.assertEqual(resp.status, status, resp.body)
        self.assertEqual(resp.json["error"]["code"], code, resp.body)
        self.assertTrue(resp.json["error"]["message"])

    def test_gallery_image_definition(self):
        r = self.c.arm("GET", GALLERY_IMAGE, self.token)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.json["name"], r.json["type"], r.json["location"]),
                         ("ubuntu2204", "Microsoft.Compute/galleries/images", "westeurope"))
        props = r.json["properties"]
        self.assertEqual((props["osType"], props["osState"], props["hyperVGeneration"], props["provisioningState"]),
                         ("Linux", "Generalized", "V2", "Succeeded"))
        self.assertEqual(set(props["identifier"]), {"publisher", "offer", "sku"})
        self.assertTrue(r.json["id"].endswith("/galleries/devgallery/images/ubuntu2204"))
        lower = GALLERY_IMAGE.replace("resourceGroups", "resourcegroups").replace("Microsoft.Compute",
                                                                                  "microsoft.compute")
        self.assertEqual(self.c.arm("GET", lower.upper().replace("/SUBSCRIPTIONS", "/subscriptions"),
                                    self.token).status, 200)

    def test_gallery_versions(self):
        r = self.c.arm("GET", GALLERY_IMAGE + "/versions/1.0.0", self.token)
        self.assertEqual(r.status, 200, r.body)
        props = r.json["properties"]
        self.assertNotIn("replicationStatus", props)
        regions = {t["name"]: t["regionalReplicaCount"] for t in props["publishingProfile"]["targetRegions"]}
        self.assertEqual(regions, {"westeurope": 2, "northeurope": 1})
        r = self.c.arm("GET", GALLERY_IMAGE + "/versions/1.0.0", self.token, query=[("$expand", "ReplicationStatus")])
        self.assertEqual(r.json["properties"]["replicationStatus"]["aggregatedState"], "Completed")
        self.assertEqual(len(r.json["properties"]["replicationStatus"]["summary"]), 2)
        r = self.c.arm("GET", GALLERY_IMAGE + "/versions", self.token)
        self.assertEqual([v["name"] for v in r.json["value"]], ["0.9.0", "1.0.0", "1.0.1", "1.1.0"])   # page size 4
        nxt = r.json["nextLink"]
        r = self.c.send("GET", nxt[nxt.index("/subscriptions"):], [("Authorization", "Bearer " + self.token)])
        self.assertEqual(([v["name"] for v in r.json["value"]], r.json.get("nextLink")), (["1.2.0"], None))
        self.arm_error(self.c.arm("GET", GALLERY_IMAGE + "/versions/9.9.9", self.token), 404, "ResourceNotFound")
        self.arm_error(self.c.arm("GET", GALLERY + "/images/nope", self.token), 404, "GalleryImageNotFound")
        self.arm_error(self.c.arm("GET", GALLERY.replace("devgallery", "other") + "/images/x", self.token), 404,
                       "ResourceNotFound")

    def test_managed_image_and_batch_account(self):
        r = self.c.arm("GET", MANAGED_IMAGE, self.token, api="2024-07-01")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["properties"]["storageProfile"]["osDisk"]["osType"], "Linux")
        self.assertEqual(r.json["properties"]["provisioningState"], "Succeeded")
        self.arm_error(self.c.arm("GET", MANAGED_IMAGE + "x", self.token, api="2024-07-01"), 404, "ResourceNotFound")
        r = self.c.arm("GET", BATCH_ACCOUNT, self.token, api="2025-06-01")
        self.assertEqual(r.status, 200, r.body)
        props = r.json["properties"]
        self.assertEqual(r.json["location"], "westeurope")
        self.assertEqual(props["accountEndpoint"], "devbatch.westeurope.batch.azure.com")
        self.assertEqual((props["poolAllocationMode"], props["dedicatedCoreQuota"], props["lowPriorityCoreQuota"],
                          props["poolQuota"]), ("BatchService", 500, 100, 100))
        self.assertIn("AAD", props["allowedAuthenticationModes"])
        self.arm_error(self.c.arm("GET", BATCH_ACCOUNT + "x", self.token, api="2025-06-01"), 404, "ResourceNotFound")

    def test_arm_errors(self):
        self.arm_error(self.c.arm("GET", GALLERY_IMAGE, self.token, api=None), 400, "MissingApiVersionParameter")
        self.arm_error(self.c.arm("GET", GALLERY_IMAGE, self.token, api="2015-01-01"), 400, "NoRegisteredProviderFound")
        self.arm_error(self.c.arm("GET", GALLERY_IMAGE, None), 401, "AuthenticationFailed")
        self.arm_error(self.c.arm("GET", GALLERY_IMAGE, self.bearer()), 401, "InvalidAuthenticationTokenAudience")
        self.arm_error(self.c.arm("GET", GALLERY_IMAGE, "x.y.z"), 401, "InvalidAuthenticationToken")
        self.arm_error(self.c.arm("GET", GALLERY_IMAGE.replace(SUB, "11111111-0000-0000-0000-000000000000"),
                                  self.token), 404, "SubscriptionNotFound")
        self.arm_error(self.c.arm("GET", GALLERY_IMAGE.replace(RG, "other-rg"), self.token), 404,
                       "ResourceGroupNotFound")
        self.arm_error(self.c.arm("DELETE", GALLERY_IMAGE, self.token), 405, "HttpMethodNotAllowed")

    def test_managed_image_put_is_a_long_running_operation(self):
        path = MANAGED_IMAGE.replace("ubuntu-managed", "from-vhd")
        body = {"location": "westeurope", "properties": {"hyperVGeneration": "V2", "storageProfile": {"osDisk": {
            "osType": "Linux", "osState": "Generalized",
            "blobUri": "https://azbatchdevstore.blob.core.windows.net/vhds/ubuntu-2204.vhd"}}}}
        r = self.c.arm("PUT", path, self.token, api="2024-07-01", body=body)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.json["properties"]["provisioningState"], "Creating")
        op = r.headers["azure-asyncoperation"]
        self.assertTrue(op.startswith("http://127.0.0.1:%d/subscriptions/" % self.emu.port), op)
        op_target = op[op.index("/subscriptions"):]
        poll = self.c.send("GET", op_target, [("Authorization", "Bearer " + self.token)])
        self.assertEqual((poll.status, poll.json["status"]), (200, "InProgress"))
        self.advance(30)
        poll = self.c.send("GET", op_target, [("Authorization", "Bearer " + self.token)])
        self.assertEqual(poll.json["status"], "Succeeded")
        self.assertIn("endTime", poll.json)
        r = self.c.arm("GET", path, self.token, api="2024-07-01")
        self.assertEqual(r.json["properties"]["provisioningState"], "Succeeded")
        self.assertEqual(self.c.arm("PUT", path, self.token, api="2024-07-01", body=body).status, 200)
        # The new image can back a pool.
        pool = pool_body("fromvhd")
        pool["virtualMachineConfiguration"]["imageReference"] = {"virtualMachineImageId": path}
        self.assertEqual(self.c.batch("POST", "/pools", body=pool, auth=self.bearer()).status, 201)

    def test_managed_image_put_validation(self):
        path = MANAGED_IMAGE.replace("ubuntu-managed", "bad")
        disk = {"osType": "Linux", "osState": "Generalized",
                "blobUri": "https://azbatchdevstore.blob.core.windows.net/vhds/ubuntu-2204.vhd"}
        def put(body):
            return self.c.arm("PUT", path, self.token, api="2024-07-01", body=body)
        self.arm_error(put({"properties": {"storageProfile": {"osDisk": disk}}}), 400, "LocationRequired")
        no_type = dict(disk)
        del no_type["osType"]
        r = put({"location": "westeurope", "properties": {"storageProfile": {"osDisk": no_type}}})
        self.arm_error(r, 400, "InvalidParameter")
        self.assertEqual(r.json["error"]["target"], "osDisk.osType")
        r = put({"location": "westeurope", "properties": {"storageProfile": {"osDisk": dict(
            disk, blobUri="http://example.com/x.vhd")}}})
        self.arm_error(r, 400, "InvalidParameter")
        self.arm_error(self.c.arm("GET", path, self.token, api="2024-07-01"), 404, "ResourceNotFound")


# {===================================================================
# Limits: quotas and timeouts (a custom world)
# ====================================================================

def limits_world():
    with open(WORLD_FILE) as f:
        w = json.load(f)
    w.pop("pools", None)
    w.pop("jobs", None)
    acct = w["accounts"][0]
    acct.update(poolQuota=4, dedicatedCoreQuota=10, lowPriorityCoreQuota=4)
    w["allocation"]["nodesPerSecond"] = 0.02          # one node every 50 simulated seconds
    usersub = dict(acct, name="usersub", poolAllocationMode="UserSubscription")
    del usersub["allowedAuthenticationModes"]
    w["accounts"].append(usersub)
    return w


class LimitsTests(EmulatorCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        path = os.path.join(cls.tmp.name, "world.json")
        with open(path, "w") as f:
            json.dump(limits_world(), f)
        cls.ARGS = ("--world", path)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.tmp.cleanup()

    def test_core_quota_resize_error(self):
        self.create("big", vmSize="Standard_D4s_v5", targetDedicatedNodes=5)   # 20 cores > 10
        self.advance(100)
        p = self.get("big")
        self.assertEqual((p["allocationState"], p["currentDedicatedNodes"], p["targetDedicatedNodes"]),
                         ("steady", 2, 5))
        err = p["resizeErrors"][0]
        self.assertEqual(err["code"], "AccountCoreQuotaReached")
        self.assertIn({"name": "CoreQuota", "value": "10"}, err["values"])
        self.create("lowpri", targetLowPriorityNodes=3)                      # 6 cores > 4
        self.advance(100)
        p = self.get("lowpri")
        self.assertEqual(p["currentLowPriorityNodes"], 2)
        self.assertEqual(p["resizeErrors"][0]["code"], "AccountLowPriorityCoreQuotaReached")
        self.assertEqual(self.c.batch("POST", "/pools/big/resize", body={"targetDedicatedNodes": 1}).status, 202)
        self.advance(10)
        p = self.get("big")
        self.assertEqual(p["currentDedicatedNodes"], 1)
        self.assertNotIn("resizeErrors", p)

    def test_allocation_timeout(self):
        self.create("slow", vmSize="Standard_A1_v2", targetDedicatedNodes=10, resizeTimeout="PT5M")
        self.advance(200)
        self.assertEqual(self.get("slow")["allocationState"], "resizing")
        self.advance(200)
        p = self.get("slow")
        self.assertEqual(p["allocationState"], "steady")
        self.assertEqual([e["code"] for e in p["resizeErrors"]], ["AllocationTimedout"])
        self.assertEqual(p["resizeErrors"][0]["message"],
                         "Desired number of dedicated nodes could not be allocated as the resize timeout was reached")
        self.assertEqual(p["currentDedicatedNodes"], 7)                     # allocated at 0, 50, ..., 300 s

    def test_pool_quota(self):
        for i in range(4):
            self.create("p%d" % i)
        self.assertError(self.c.batch("POST", "/pools", body=pool_body("p4")), 409, "PoolQuotaReached")

    def test_user_subscription_account_refuses_shared_key(self):
        r = Client(self.emu, "usersub", KEY).batch("GET", "/pools")
        self.assertError(r, 403, "AuthenticationFailed")
        self.assertIn("SharedKey is not allowed", r.values()["AuthenticationErrorDetail"])
        token = self.bearer()
        host = "usersub.westeurope.batch.azure.com"
        self.assertEqual(self.c.batch("POST", "/pools", body=pool_body("u", targetDedicatedNodes=1), auth=token,
                                      host=host).status, 201)
        node = self.c.batch("GET", "/pools/u/nodes", auth=token, host=host).json["value"][0]
        self.assertIn("scaleSetVmResourceId", node["virtualMachineInfo"])
        self.assertError(self.c.batch("GET", "/pools/u", auth=token), 404, "PoolNotFound")   # devbatch has none


class SimulatedTimeTests(EmulatorCase):
    ARGS = ("--time-scale", "100")

    def test_pool_reaches_steady_and_nodes_idle_in_accelerated_time(self):
        self.create("fast", targetDedicatedNodes=2)
        seen = set()
        deadline = time.time() + 5
        while time.time() < deadline:
            p = self.get("fast")
            seen.add(p["allocationState"])
            if p["allocationState"] == "steady":
                break
            time.sleep(0.01)
        self.assertEqual(seen, {"resizing", "steady"})
        time.sleep(0.1)
        self.assertEqual({n["state"] for n in self.c.batch("GET", "/pools/fast/nodes").json["value"]}, {"idle"})
        self.assertEqual(self.c.batch("DELETE", "/pools/fast").status, 202)
        time.sleep(0.15)
        self.assertEqual(self.c.batch("GET", "/pools/fast").status, 404)
        self.assertEqual(self.emu.control("GET", "stats")[1]["timeScale"], 100.0)


# {===================================================================
# Pool usage metrics
# ====================================================================

def parse_iso(text):
    """'2026-12-01T19:00:00.0000000Z' -> epoch seconds (the emulator's 7-digit form)."""
    import datetime
    whole, _, frac = text.rstrip("Z").partition(".")
    dt = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def iso_hour(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def iso(t):
    """A whole second in the emulator's form: '2026-12-01T19:00:00.0000000Z'."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".0000000Z"


class UsageMetricsTests(EmulatorCase):
    ARGS = ("--time-scale", "1e-9")          # frozen: only control-API jumps move time

    def now(self):
        return parse_iso(self.emu.control("GET", "clock")[1]["simTime"])

    def metrics(self, query=(), api=API):
        r = self.c.batch("GET", "/poolusagemetrics", query, api=api)
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.json["odata.metadata"].endswith("$metadata#poolusagemetrics"))
        return r.json

    def core_hours(self, spans, h0):
        """Expected core hours in [h0, h0 + 1 h) for (cores, allocated, gone) spans."""
        return round(sum(c * max(0.0, min(t1, h0 + 3600) - max(t0, h0)) for c, t0, t1 in spans) / 3600.0, 6)

    def test_usage_is_reported_per_pool_and_whole_hour(self):
        self.create("alpha", targetDedicatedNodes=2)                       # Standard_D2s_v3: 2 cores
        self.create("beta", vmSize="Standard_D4s_v5")                      # no nodes
        created = parse_iso(self.get("alpha")["creationTime"])
        self.advance(1)                                                     # the second node comes 0.2 s later
        allocs = [parse_iso(n["allocationTime"]) for n in self.c.batch("GET", "/pools/alpha/nodes").json["value"]]
        self.assertEqual(len(allocs), 2)
        h = created - created % 3600
        self.advance(h + 2 * 3600 + 60 - self.now())                     # one minute into the third hour
        last = self.metrics()["value"]                                     # no times: the last whole hour only
        self.assertEqual(sorted((m["poolId"], m["startTime"], m["endTime"], m["vmSize"], m["totalCoreHours"])
                                for m in last),
                         [("alpha", iso(h + 3600), iso(h + 7200), "Standard_D2s_v3", 4.0),
                          ("beta", iso(h + 3600), iso(h + 7200), "Standard_D4s_v5", 0.0)])
        first = [m for m in self.metrics([("starttime", iso_hour(h)), ("endtime", iso_hour(h + 3600))])["value"]]
        self.assertEqual([(m["poolId"], m["startTime"]) for m in first], [("alpha", iso(h)), ("beta", iso(h))])
        self.assertEqual(first[0]["totalCoreHours"], self.core_hours([(2, t, h + 3600) for t in allocs], h))
        self.assertGreater(first[0]["totalCoreHours"], 0)
        self.assertEqual(len(self.metrics([("starttime", iso_hour(h))])["value"]), 4)     # runs to the last hour

        self.assertEqual(self.c.batch("DELETE", "/pools/alpha").status, 202)
        deleted = self.now()
        self.advance(3 * 3600)
        rows = self.metrics([("startTime", iso_hour(h))])["value"]                 # the 2025-06-01 spelling
        alpha = [m for m in rows if m["poolId"] == "alpha"]
        hd = deleted - deleted % 3600
        self.assertEqual([m["startTime"] for m in alpha], [iso(t) for t in range(int(h), int(hd) + 1, 3600)])
        gone = deleted + 2                                                   # leavingSeconds
        self.assertEqual(alpha[-1]["totalCoreHours"], self.core_hours([(2, t, gone) for t in allocs], hd))
        beta = [m for m in rows if m["poolId"] == "beta"]
        self.assertGreater(len(beta), len(alpha))                           # beta lives on
        self.assertEqual({m["totalCoreHours"] for m in beta}, {0.0})

        only = self.metrics([("starttime", iso_hour(h)), ("$filter", "poolId eq 'alpha'")])["value"]
        self.assertEqual(only, alpha)
        since = self.metrics([("starttime", iso_hour(h)),
                              ("$filter", "startTime ge datetime'%s'" % iso_hour(h + 3600))])["value"]
        self.assertEqual(len(since), len(rows) - 2)
        self.assertEqual(self.metrics([("starttime", iso_hour(h)), ("$filter", "totalCoreHours gt 1")])["value"],
                         [m for m in alpha if m["totalCoreHours"] > 1])

        paged, link = [], None
        r = self.metrics([("starttime", iso_hour(h)), ("maxresults", "3")])
        while True:
            paged += r["value"]
            link = r.get("odata.nextLink")
            if not link:
                break
            r = self.c.signed("GET", link[link.index("/poolusagemetrics"):]).json
        self.assertEqual(paged, rows)

    def test_every_supported_api_version_serves_it(self):
        for api in ("2022-10-01.16.0", "2024-07-01.20.0", API):
            self.assertEqual(self.metrics(api=api)["value"], [], api)
        self.assertError(self.c.batch("GET", "/poolusagemetrics", api="2021-06-01.14.0"), 400,
                         "InvalidQueryParameterValue", QueryParameterName="api-version")
        r = self.c.batch("POST", "/poolusagemetrics", body={})
        self.assertError(r, 405, "UnsupportedHttpVerb")
        self.assertEqual(r.headers["allow"], "GET")

    def test_re_created_pools_are_one_entry_per_hour(self):
        self.create("again", targetDedicatedNodes=1)
        self.advance(30)
        self.assertEqual(self.c.batch("DELETE", "/pools/again").status, 202)
        self.advance(10)
        self.create("AGAIN", targetDedicatedNodes=1)
        self.advance(3 * 3600)
        rows = self.metrics([("starttime", iso_hour(self.now() - 4 * 3600))])["value"]
        starts = [m["startTime"] for m in rows]
        self.assertEqual(len(starts), len(set(starts)))
        self.assertEqual({m["poolId"].lower() for m in rows}, {"again"})

    def test_bad_times_are_400(self):
        for name, value in (("starttime", "yesterday"), ("endtime", "2025-13-01T00:00:00Z"),
                            ("startTime", "1735689600")):
            self.assertError(self.c.batch("GET", "/poolusagemetrics", [(name, value)]), 400,
                             "InvalidQueryParameterValue", QueryParameterName=name, QueryParameterValue=value)
        r = self.c.batch("GET", "/poolusagemetrics", [("starttime", "2025-01-02T00:00:00Z"),
                                                      ("endtime", "2025-01-01T00:00:00Z")])
        self.assertError(r, 400, "InvalidQueryParameterValue", QueryParameterName="endtime",
                         Reason="The end time must be later than the start time.")
        self.assertError(self.c.batch("GET", "/poolusagemetrics", [("$filter", "poolId eq")]), 400,
                         "InvalidQueryParameterValue", QueryParameterName="$filter")


# {===================================================================
# Repeated mutating calls (a retry after a lost answer) get the service's answers
# ====================================================================

class RepeatedCallTests(EmulatorCase):
    ARGS = ("--time-scale", "1e-9")          # frozen: only control-API jumps move time

    def steady(self, pool_id, **extra):
        self.create(pool_id, **extra)
        self.advance(30)
        self.assertEqual(self.get(pool_id)["allocationState"], "steady")

    def test_create_twice(self):
        self.create("p1")
        self.assertError(self.c.batch("POST", "/pools", body=pool_body("p1")), 409, "PoolExists")
        self.assertEqual(self.c.batch("DELETE", "/pools/p1").status, 202)
        self.assertError(self.c.batch("POST", "/pools", body=pool_body("p1")), 409, "PoolBeingDeleted")

    def test_delete_twice(self):
        self.steady("p1", targetDedicatedNodes=1)
        etag = self.get("p1")["eTag"]
        self.assertEqual(self.c.batch("DELETE", "/pools/p1").status, 202)
        self.assertError(self.c.batch("DELETE", "/pools/p1"), 409, "PoolBeingDeleted")
        # a retry that carries the first attempt's If-Match meets the ETag the delete changed
        self.assertError(self.c.batch("DELETE", "/pools/p1", headers=[("If-Match", etag)]), 412, "ConditionNotMet")
        self.advance(10)
        self.assertError(self.c.batch("DELETE", "/pools/p1"), 404, "PoolNotFound")
        self.assertError(self.c.batch("DELETE", "/pools/never"), 404, "PoolNotFound")

    def test_resize_twice(self):
        self.steady("p1")
        body = {"targetDedicatedNodes": 2}
        self.assertEqual(self.c.batch("POST", "/pools/p1/resize", body=body).status, 202)
        r = self.c.batch("POST", "/pools/p1/resize", body=body)
        self.assertError(r, 409, "PoolBeingResized", AllocationState="resizing")
        self.advance(30)
        self.assertEqual(self.c.batch("POST", "/pools/p1/resize", body=body).status, 202)   # steady again: accepted
        self.advance(30)
        p = self.get("p1")
        self.assertEqual((p["currentDedicatedNodes"], p["targetDedicatedNodes"]), (2, 2))

    def test_stop_resize_twice_and_on_a_steady_pool(self):
        self.create("p1", targetDedicatedNodes=50)
        self.advance(1)
        self.assertEqual(self.c.batch("POST", "/pools/p1/stopresize").status, 202)
        etag = self.get("p1")["eTag"]
        r = self.c.batch("POST", "/pools/p1/stopresize")                   # while stopping: nothing changes
        self.assertEqual((r.status, r.headers["etag"]), (202, etag))
        p = self.get("p1")
        self.assertEqual((p["allocationState"], p["eTag"]), ("stopping", etag))
        self.advance(5)
        p = self.get("p1")
        self.assertEqual([e["code"] for e in p["resizeErrors"]], ["ResizeStopped"])     # once, not twice
        r = self.c.batch("POST", "/pools/p1/stopresize")                   # steady: nothing to stop
        self.assertEqual((r.status, r.headers["etag"]), (202, etag))
        self.assertEqual(self.get("p1")["resizeErrors"], p["resizeErrors"])
        self.assertEqual(self.c.batch("DELETE", "/pools/p1").status, 202)
        self.assertError(self.c.batch("POST", "/pools/p1/stopresize"), 409, "PoolBeingDeleted")

    def test_enable_autoscale_twice(self):
        self.steady("p1")
        one = {"autoScaleFormula": "$TargetDedicatedNodes = 1;"}
        self.assertEqual(self.c.batch("POST", "/pools/p1/enableautoscale", body=one).status, 200)
        self.assertError(self.c.batch("POST", "/pools/p1/enableautoscale", body=one), 409,
                         "TooManyEnableAutoScaleRequests")
        self.advance(30)
        two = {"autoScaleFormula": "$TargetDedicatedNodes = 2;"}
        self.assertEqual(self.c.batch("POST", "/pools/p1/enableautoscale", body=two).status, 200)
        self.assertEqual(self.get("p1")["autoScaleFormula"], two["autoScaleFormula"])   # an update, allowed

    def test_disable_autoscale_twice(self):
        self.steady("p1", enableAutoScale=True, autoScaleFormula="$TargetDedicatedNodes = 0;")
        r = self.c.batch("POST", "/pools/p1/disableautoscale")
        self.assertEqual(r.status, 200)
        etag = r.headers["etag"]
        r = self.c.batch("POST", "/pools/p1/disableautoscale")             # already disabled: nothing changes
        self.assertEqual((r.status, r.headers["etag"]), (200, etag))
        self.assertFalse(self.get("p1")["enableAutoScale"])

    def test_remove_nodes_twice(self):
        self.steady("p1", targetDedicatedNodes=2)
        node = self.c.batch("GET", "/pools/p1/nodes").json["value"][0]["id"]
        body = {"nodeList": [node]}
        self.assertEqual(self.c.batch("POST", "/pools/p1/removenodes", body=body).status, 202)
        self.assertError(self.c.batch("POST", "/pools/p1/removenodes", body=body), 409, "PoolBeingResized")
        self.advance(10)
        self.assertError(self.c.batch("POST", "/pools/p1/removenodes", body=body), 404, "NodeNotFound",
                         NodeId=node)
        p = self.get("p1")
        self.assertEqual((p["currentDedicatedNodes"], p["targetDedicatedNodes"]), (1, 1))   # removed once

    def test_patch_and_update_properties_twice(self):
        self.steady("p1")
        body = {"metadata": [{"name": "k", "value": "v"}]}
        first = self.c.batch("PATCH", "/pools/p1", body=body)
        second = self.c.batch("PATCH", "/pools/p1", body=body)
        self.assertEqual((first.status, second.status), (200, 200))
        self.assertNotEqual(first.headers["etag"], second.headers["etag"])
        self.assertEqual(self.get("p1")["metadata"], body["metadata"])
        r = self.c.batch("PATCH", "/pools/p1", body=body, headers=[("If-Match", first.headers["etag"])])
        self.assertError(r, 412, "ConditionNotMet")                      # the retry's ETag is stale
        repl = {"applicationPackageReferences": [], "metadata": [{"name": "a", "value": "b"}]}
        for _ in range(2):
            self.assertEqual(self.c.batch("POST", "/pools/p1/updateproperties", body=repl).status, 204)
        self.assertEqual(self.get("p1")["metadata"], repl["metadata"])


class FaultMethodTests(unittest.TestCase):
    def with_emulator(self, *args):
        emu = Emulator(*args)
        self.addCleanup(lambda: self.assertEqual(emu.stop(), 0))
        return emu, Client(emu)

    def test_drop_only_writes(self):
        emu, c = self.with_emulator("--fault-drop", "1", "--fault-methods", "post,DELETE")
        self.assertEqual(c.batch("GET", "/pools").status, 200)
        with self.assertRaises((http.client.HTTPException, ConnectionError)):
            c.batch("POST", "/pools", body=pool_body("p1"))
        stats = emu.control("GET", "stats")[1]
        self.assertEqual((stats["pools"], stats["faults"]), (0, {"drop": 1}))    # dropped before applied
        self.assertEqual(emu.control("GET", "faults")[1]["methods"], ["DELETE", "POST"])

    def test_drop_after_commit_of_one_method_at_runtime(self):
        emu, c = self.with_emulator()
        self.assertEqual(emu.control("POST", "faults", {"dropAfterCommit": 1, "methods": ["DELETE"]})[0], 200)
        self.assertEqual(c.batch("POST", "/pools", body=pool_body("p1")).status, 201)   # not a DELETE: answered
        with self.assertRaises((http.client.HTTPException, ConnectionError)):
            c.batch("DELETE", "/pools/p1")
        r = c.batch("DELETE", "/pools/p1")                                # the retry meets the applied delete
        self.assertEqual((r.status, r.json["code"]), (409, "PoolBeingDeleted"))
        self.assertEqual(emu.control("GET", "stats")[1]["faults"], {"dropAfterCommit": 1})
        self.assertEqual(emu.control("POST", "faults", {"methods": None})[1]["methods"], None)

    def test_bad_methods_are_refused(self):
        emu, _ = self.with_emulator()
        for bad in ("POST", ["FETCH"], [1], {"POST": 1}):
            status, body = emu.control("POST", "faults", {"methods": bad})
            self.assertEqual(status, 400, bad)
            self.assertIn("methods", body["error"])
        for args in (("--fault-methods", "FETCH"), ("--fault-methods", ",")):
            r = subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("--fault-methods", r.stderr)


# {===================================================================
# Faults and the control API
# ====================================================================

class FaultFlagTests(unittest.TestCase):
    def with_emulator(self, *args):
        emu = Emulator(*args)
        self.addCleanup(lambda: self.assertEqual(emu.stop(), 0))
        return emu, Client(emu)

    def test_fault_429(self):
        emu, c = self.with_emulator("--fault-429", "1", "--retry-after", "7")
        r = c.batch("GET", "/pools")
        self.assertEqual((r.status, r.headers["retry-after"], r.json["code"]), (429, "7", "TooManyRequests"))
        self.assertIn("request-id", r.headers)
        self.assertEqual(c.token().status, 200)                 # token endpoints are spared without --fault-auth
        self.assertEqual(emu.control("GET", "stats")[1]["faults"], {"429": 1})

    def test_fault_500(self):
        _, c = self.with_emulator("--fault-500", "1")
        r = c.batch("GET", "/pools")
        self.assertEqual((r.status, r.json["code"]), (500, "InternalError"))

    def test_fault_503(self):
        _, c = self.with_emulator("--fault-503", "1")
        r = c.batch("GET", "/pools")
        self.assertEqual((r.status, r.json["code"], r.headers["retry-after"]), (503, "ServerBusy", "1"))

    def test_fault_drop(self):
        emu, c = self.with_emulator("--fault-drop", "1")
        with self.assertRaises((http.client.HTTPException, ConnectionError)):
            c.batch("POST", "/pools", body=pool_body("p1"))
        stats = emu.control("GET", "stats")[1]
        self.assertEqual((stats["pools"], stats["faults"], stats["byStatus"]), (0, {"drop": 1}, {"drop": 1}))

    def test_fault_drop_after_commit(self):
        emu, c = self.with_emulator("--fault-drop-after-commit", "1")
        self.assertEqual(c.batch("GET", "/pools").status, 200)   # reads are never dropped after commit
        with self.assertRaises((http.client.HTTPException, ConnectionError)):
            c.batch("POST", "/pools", body=pool_body("p1"))
        self.assertEqual(emu.control("GET", "stats")[1]["pools"], 1)
        r = c.batch("POST", "/pools", body=pool_body("p1"))          # the idempotent retry sees the commit
        self.assertEqual((r.status, r.json["code"]), (409, "PoolExists"))
        self.assertEqual(c.batch("GET", "/pools/p1").status, 200)

    def test_latency(self):
        _, c = self.with_emulator("--latency-ms", "150")
        t = time.time()
        self.assertEqual(c.batch("GET", "/pools").status, 200)
        self.assertGreaterEqual(time.time() - t, 0.15)

    def test_fault_auth_reaches_the_token_endpoints(self):
        _, c = self.with_emulator("--fault-503", "1", "--fault-auth")
        r = c.token()
        self.assertEqual((r.status, r.json["error"]), (503, "temporarily_unavailable"))
        r = c.send("GET", "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x", [("Metadata", "true")])
        self.assertEqual(r.status, 503)

    def test_seed_makes_faults_deterministic(self):
        runs = []
        for _ in range(2):
            emu, c = self.with_emulator("--fault-429", "0.5", "--seed", "42")
            runs.append([c.batch("GET", "/pools").status for _ in range(16)])
        self.assertEqual(runs[0], runs[1])
        self.assertEqual(set(runs[0]), {200, 429})


class ControlApiTests(EmulatorCase):
    def test_faults_at_runtime(self):
        status, f = self.emu.control("POST", "faults", {"p500": 1})
        self.assertEqual((status, f["p500"]), (200, 1.0))
        self.assertEqual(self.c.batch("GET", "/pools").status, 500)
        self.emu.control("POST", "faults", {"p500": 0, "p429": 1, "retryAfter": 3})
        r = self.c.batch("GET", "/pools")
        self.assertEqual((r.status, r.headers["retry-after"]), (429, "3"))
        self.emu.control("POST", "faults", {"p429": 0, "retryAfter": 1})
        self.assertEqual(self.c.batch("GET", "/pools").status, 200)
        self.assertEqual(self.emu.control("POST", "faults", {"p500": 2})[0], 400)
        self.assertEqual(self.emu.control("POST", "faults", {"bogus": 1})[0], 400)
        self.assertEqual(self.emu.control("GET", "faults")[1]["p500"], 0.0)

    def test_stats_reset_and_clock(self):
        self.create("p1")
        self.c.batch("GET", "/pools/nope")
        stats = self.emu.control("GET", "stats")[1]
        self.assertEqual((stats["requests"], stats["byStatus"], stats["pools"]), (2, {"201": 1, "404": 1}, 1))
        before = self.emu.control("GET", "clock")[1]["simTime"]
        after = self.emu.control("POST", "clock", {"advance": 3600})[1]["simTime"]
        self.assertGreater(after, before)
        self.assertEqual(self.emu.control("POST", "clock", {"advance": -1})[0], 400)
        self.assertEqual(self.emu.control("POST", "reset")[0], 200)
        self.assertEqual(self.emu.control("GET", "stats")[1]["pools"], 0)
        self.assertEqual(self.emu.control("GET", "nothing")[0], 404)


if __name__ == "__main__":
    unittest.main()


class JournalTests(EmulatorCase):
    ARGS = ("--time-scale", "1e-9")

    def journal(self):
        status, body = self.emu.control("GET", "journal")
        self.assertEqual(status, 200)
        return body["value"]

    def test_records_applied_writes_answered_or_dropped_and_nothing_else(self):
        self.create("p1")
        self.c.batch("POST", "/pools", body=pool_body("p1"))                  # 409: not applied
        self.c.batch("GET", "/pools/p1")                                       # a read
        self.emu.control("POST", "faults", {"dropAfterCommit": 1.0, "methods": ["PATCH"]})
        with self.assertRaises(Exception):                                     # the answer never comes
            self.c.batch("PATCH", "/pools/p1", body={"metadata": [{"name": "a", "value": "1"}]},
                         headers=[("client-request-id", "11111111-2222-3333-4444-555555555555")])
        self.c.close()
        self.emu.control("POST", "faults", {"dropAfterCommit": 0.0, "methods": None})
        got = self.journal()
        self.assertEqual([(e["method"], e["path"], e["status"], e["answered"]) for e in got],
                         [("POST", "/pools", 201, True), ("PATCH", "/pools/p1", 200, False)])
        self.assertEqual(got[1]["clientRequestId"], "11111111-2222-3333-4444-555555555555")
        self.assertEqual(self.get("p1")["metadata"], [{"name": "a", "value": "1"}])
        self.emu.control("POST", "reset")
        self.assertEqual(self.journal(), [])


class JournalFromTests(EmulatorCase):
    ARGS = ("--time-scale", "1e-9")

    def test_from_gives_only_what_came_after_and_next_carries_on(self):
        status, body = self.emu.control("GET", "journal")
        self.assertEqual((status, body), (200, {"value": [], "next": 0, "missed": 0}))
        self.create("p1")
        self.create("p2")
        status, body = self.emu.control("GET", "journal?from=0")
        self.assertEqual([e["path"] for e in body["value"]], ["/pools", "/pools"])
        self.assertEqual((body["next"], body["missed"]), (2, 0))
        self.c.batch("DELETE", "/pools/p1")
        status, body = self.emu.control("GET", "journal?from=2")
        self.assertEqual([(e["method"], e["path"]) for e in body["value"]], [("DELETE", "/pools/p1")])
        self.assertEqual(body["next"], 3)
        self.assertEqual(self.emu.control("GET", "journal?from=3")[1], {"value": [], "next": 3, "missed": 0})
        for bad in ("-1", "x", "1.5", ""):
            status, body = self.emu.control("GET", "journal?from=" + bad)
            self.assertEqual(status, 400, bad)
            self.assertIn("from must be a non-negative integer", body["error"])
        self.emu.control("POST", "reset")
        self.assertEqual(self.emu.control("GET", "journal?from=3")[1], {"value": [], "next": 0, "missed": 0})

    def test_entries_no_longer_kept_are_counted_as_missed(self):
        from azbatch_emulator.control import journal_since
        kept = collections.deque([{"n": 7}, {"n": 8}, {"n": 9}], maxlen=3)    # 10 appended, the last 3 kept
        self.assertEqual(journal_since(kept, 10, 0), {"value": list(kept), "next": 10, "missed": 7})
        self.assertEqual(journal_since(kept, 10, 8), {"value": [{"n": 8}, {"n": 9}], "next": 10, "missed": 0})
        self.assertEqual(journal_since(kept, 10, 10), {"value": [], "next": 10, "missed": 0})
        self.assertEqual(journal_since(kept, 10, 12), {"value": [], "next": 10, "missed": 0})
