"""The emulator as a dependable tool: malformed input of every kind is a 4xx in
the service's shape, never a 500; unexpected exceptions answer 500 InternalError
without a traceback.  Uses the process and HTTP helpers of test_emulator.

    python3 -m unittest discover -s tests/emulator -v
"""

import contextlib
import io
import json
import os
import random
import socket
import subprocess
import sys
import time
import unittest

import test_emulator as T

sys.path.insert(0, os.path.join(T.ROOT, "scripts"))

from azbatch_emulator import core, server, world as emu_world  # noqa: E402
from azbatch_emulator.wire import Request  # noqa: E402

FILTER_WORDS = ["id", "state", "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "(", ")", ",", "'x'", "''",
                "'it''s'", "1", "-2.5", "true", "false", "null", "startswith", "endswith", "contains",
                "virtualMachineConfiguration", "metadata", "a/b/c", "datetime'2025-01-01T00:00:00Z'",
                "datetime'nope'", "'", "\u00e9", "$", "%", "&", "#", "9" * 40, "stats"]
FORMULA_WORDS = ["$TargetDedicatedNodes", "$TargetLowPriorityNodes", "$NodeDeallocationOption", "$X", "x", "=",
                 ";", "(", ")", "?", ":", "+", "-", "*", "/", "%", "!", "&&", "||", "==", "<", ">=", "1", "0",
                 "2.5", "1e400", "min", "max", "avg", "round", "ceil", ",", ".", "GetSample", "$PendingTasks",
                 "$CPUPercent", "TimeInterval_Minute", "taskcompletion", "requeue", "//", "\n", "\u00e9", "@",
                 "$Unknown", "unknownfn", "percentile"]
WRONG_VALUES = [None, True, False, -1, 0, 2 ** 40, 1.5, 1e308, "", "x", "\u00e9" * 3, "P" + "9" * 5000 + "D",
                [], [None], [1, "a"], {}, {"a": {"b": {}}}, "x" * 3000]


def nested(depth):
    v = []
    for _ in range(depth):
        v = [v]
    return v


def mutate(rng, value, depth=0):
    """`value` with one randomly chosen leaf or member replaced, added or removed."""
    if isinstance(value, dict) and value and depth < 4:
        v = dict(value)
        k = rng.choice(sorted(v))
        roll = rng.random()
        if roll < 0.15:
            del v[k]
        elif roll < 0.3:
            v[rng.choice(["bogus", k.upper(), k + "x"])] = rng.choice(WRONG_VALUES)
        elif roll < 0.6:
            v[k] = mutate(rng, v[k], depth + 1)
        else:
            v[k] = rng.choice(WRONG_VALUES)
        return v
    if isinstance(value, list) and value and depth < 4:
        v = list(value)
        i = rng.randrange(len(v))
        v[i] = mutate(rng, v[i], depth + 1) if rng.random() < 0.5 else rng.choice(WRONG_VALUES)
        return v
    return rng.choice(WRONG_VALUES)


class MalformedInputTests(T.EmulatorCase):
    """Every malformed request gets a 4xx in the Batch error shape (never a 500)."""
    ARGS = ("--time-scale", "1e-9")          # frozen: only control-API jumps move time

    def setUp(self):
        super().setUp()
        self.rng = random.Random(20261201)

    def tearDown(self):
        stats = self.emu.control("GET", "stats")[1]
        self.assertNotIn("500", stats["byStatus"], stats)
        super().tearDown()

    def assertBatch4xx(self, r, what):
        self.assertLess(r.status, 500, "%s -> %d %s" % (what, r.status, r.body[:300]))
        if r.status >= 400 and r.body:
            body = r.json
            self.assertIsInstance(body.get("code"), str, what)
            self.assertEqual(body["message"]["lang"], "en-US", what)
            self.assertNotIn("Traceback", r.body.decode("utf-8", "replace"), what)

    def steady_pool(self, pool_id, **extra):
        self.create(pool_id, **extra)
        self.advance(30)

    def test_malformed_filters_are_400_invalid_query_parameter_value(self):
        self.steady_pool("p1", targetDedicatedNodes=1)
        filters = [" ".join(self.rng.choice(FILTER_WORDS) for _ in range(self.rng.randint(1, 9)))
                   for _ in range(250)]
        filters += ["(" * 200 + "id eq 'a'" + ")" * 200, "not " * 300 + "id eq 'a'",
                    " and ".join(["id eq 'a'"] * 800), "id eq " + "9" * 5000, "id eq 'unterminated",
                    "startswith(id)", "startswith(id, 1)", "id eq datetime'2025-99-99T00:00:00Z'", "\u0000",
                    "id eq 'a' or", ")("]
        seen_400 = 0
        for flt in filters:
            for path in ("/pools", "/pools/p1/nodes", "/supportedimages", "/nodecounts"):
                r = self.c.batch("GET", path, [("$filter", flt)])
                self.assertBatch4xx(r, "%s $filter=%r" % (path, flt))
                if r.status == 400:
                    seen_400 += 1
                    self.assertEqual(r.json["code"], "InvalidQueryParameterValue", flt)
                    self.assertEqual(r.values()["QueryParameterName"], "$filter")
                    self.assertEqual(r.values()["QueryParameterValue"], flt)
                    self.assertIn("Reason", r.values())
                else:
                    self.assertEqual(r.status, 200, flt)
        self.assertGreater(seen_400, 500)

    def test_type_confused_comparisons_are_false_not_errors(self):
        self.steady_pool("p1", metadata=[{"name": "a", "value": "1"}])
        for flt, ids in (("virtualMachineConfiguration gt 1", []), ("metadata lt 'x'", []),
                         ("targetDedicatedNodes ge 'x'", []), ("enableAutoScale gt 0", []),
                         ("targetDedicatedNodes ge 0", ["p1"]), ("not (virtualMachineConfiguration le 1)", ["p1"]),
                         ("creationTime ge datetime'2000-01-01T00:00:00Z'", ["p1"]),
                         ("creationTime lt datetime'2000-01-01T00:00:00+01:00'", []),
                         ("id eq datetime'2000-01-01T00:00:00Z'", [])):
            r = self.c.batch("GET", "/pools", [("$filter", flt)])
            self.assertEqual(r.status, 200, (flt, r.body))
            self.assertEqual([p["id"] for p in r.json["value"]], ids, flt)

    def test_malformed_list_options_are_400(self):
        self.steady_pool("p1")
        cases = [("$select", "id,,bogus"), ("$select", "\u00e9"), ("$expand", "nodes"), ("$expand", "stats,x"),
                 ("maxresults", "-1"), ("maxresults", "1e3"), ("maxresults", "9" * 5000), ("maxresults", ""),
                 ("maxresults", "\u0661"), ("$skiptoken", "!!!"), ("$skiptoken", "\u00e9"), ("$skiptoken", "%%")]
        for name, value in cases:
            for path in ("/pools", "/pools/p1", "/pools/p1/nodes", "/supportedimages", "/nodecounts"):
                r = self.c.batch("GET", path, [(name, value)])
                self.assertBatch4xx(r, "%s %s=%r" % (path, name, value))
        r = self.c.batch("GET", "/pools", [("maxresults", "abc")])
        self.assertError(r, 400, "InvalidQueryParameterValue", QueryParameterName="maxresults",
                         QueryParameterValue="abc")
        r = self.c.batch("GET", "/pools", [("$skiptoken", "!!!")])
        self.assertError(r, 400, "InvalidQueryParameterValue", QueryParameterName="$skiptoken")

    def test_malformed_formulas_never_500(self):
        self.steady_pool("auto", enableAutoScale=True, autoScaleFormula="$TargetDedicatedNodes = 0;")
        self.advance(40)
        formulas = [" ".join(self.rng.choice(FORMULA_WORDS) for _ in range(self.rng.randint(1, 12)))
                    for _ in range(200)]
        formulas += ["$TargetDedicatedNodes = " + "(" * 300 + "1" + ")" * 300,
                     "$TargetDedicatedNodes = " + "-" * 4000 + "1", "$TargetDedicatedNodes = " + "9" * 8000,
                     "$TargetDedicatedNodes = 1e400 * 1e400;", "$TargetDedicatedNodes = round(1e400);",
                     "$TargetDedicatedNodes = 0 * 1e400;", "$TargetDedicatedNodes = 1 % 0;", "x" * 9000,
                     "$TargetDedicatedNodes = max(1, $PendingTasks.GetSample(1)); // fine"]
        outcomes = set()
        for f in formulas:
            r = self.c.batch("POST", "/pools/auto/evaluateautoscale", body={"autoScaleFormula": f})
            self.assertBatch4xx(r, "evaluate %r" % f)
            if r.status == 400:
                self.assertIn(r.json["code"], ("AutoScalingFormulaSyntaxError", "AutoScaleFormulaTooLong",
                                               "MissingRequiredProperty"), f)
                if r.json["code"] != "MissingRequiredProperty":
                    self.assertEqual(r.values()["PropertyName"], "autoScaleFormula")
                outcomes.add(r.json["code"])
            else:
                self.assertEqual(r.status, 200, f)
                outcomes.add("error" if "error" in r.json else "ok")
            r = self.c.batch("POST", "/pools", body=T.pool_body("fz", enableAutoScale=True, autoScaleFormula=f))
            self.assertBatch4xx(r, "create %r" % f)
            if r.status == 201:
                self.assertEqual(self.c.batch("DELETE", "/pools/fz").status, 202)
                self.advance(10)
        self.assertTrue({"AutoScalingFormulaSyntaxError", "AutoScaleFormulaTooLong", "error", "ok"} <= outcomes,
                        outcomes)

    def test_an_evaluation_error_is_an_autoscale_run_error(self):
        self.steady_pool("auto", enableAutoScale=True, autoScaleFormula="$TargetDedicatedNodes = 1;")
        self.assertEqual(self.get("auto")["targetDedicatedNodes"], 1)
        bad = "n = 0;\n$TargetDedicatedNodes = 10 / n;"
        r = self.c.batch("POST", "/pools/auto/evaluateautoscale", body={"autoScaleFormula": bad})
        self.assertEqual(r.status, 200, r.body)
        err = r.json["error"]
        self.assertEqual((err["code"], err["message"]),
                         ("AutoScalingFormulaEvaluationError",
                          "Autoscale evaluation failed due to an error in the formula"))
        self.assertEqual(err["values"], [{"name": "Message", "value": "Line 2, Col 28: division by zero"}])
        self.assertEqual(r.json["results"], "$NodeDeallocationOption=requeue;$n=0")
        self.advance(31)
        r = self.c.batch("POST", "/pools/auto/enableautoscale", body={"autoScaleFormula": bad})
        self.assertEqual(r.status, 200, r.body)
        p = self.get("auto")
        self.assertEqual((p["autoScaleFormula"], p["targetDedicatedNodes"]), (bad, 1))      # formula set, targets kept
        self.assertEqual(p["autoScaleRun"]["error"]["code"], "AutoScalingFormulaEvaluationError")
        r = self.c.batch("POST", "/pools", body=T.pool_body("fresh", enableAutoScale=True, autoScaleFormula=bad))
        self.assertEqual(r.status, 201, r.body)
        p = self.get("fresh")
        self.assertEqual((p["targetDedicatedNodes"], p["autoScaleRun"]["error"]["code"]),
                         (0, "AutoScalingFormulaEvaluationError"))
        self.assertError(self.c.batch("POST", "/pools/auto/evaluateautoscale", body={"autoScaleFormula": "x" * 8193}),
                         400, "AutoScaleFormulaTooLong", PropertyName="autoScaleFormula")
        r = self.c.batch("POST", "/pools/auto/evaluateautoscale", body={"autoScaleFormula": "$T = (1;"})
        body = self.assertError(r, 400, "AutoScalingFormulaSyntaxError", PropertyName="autoScaleFormula")
        self.assertEqual(r.values()["Reason"], "Line 1, Col 8: expected ')'", body)

    def test_malformed_bodies_never_500(self):
        self.steady_pool("p1", targetDedicatedNodes=1)
        self.steady_pool("auto", enableAutoScale=True, autoScaleFormula="$TargetDedicatedNodes = 0;")
        node = self.c.batch("GET", "/pools/p1/nodes").json["value"][0]["id"]
        valid = {
            ("POST", "/pools"): T.pool_body("new", targetDedicatedNodes=1, metadata=[{"name": "a", "value": "b"}],
                                            startTask={"commandLine": "true", "maxTaskRetryCount": 1},
                                            taskSchedulingPolicy={"nodeFillType": "pack"},
                                            userAccounts=[{"name": "u", "password": "p"}]),
            ("PATCH", "/pools/p1"): {"metadata": [{"name": "a", "value": "b"}], "startTask": {"commandLine": "x"}},
            ("POST", "/pools/p1/resize"): {"targetDedicatedNodes": 1, "resizeTimeout": "PT10M",
                                           "nodeDeallocationOption": "requeue"},
            ("POST", "/pools/p1/removenodes"): {"nodeList": [node], "resizeTimeout": "PT10M"},
            ("POST", "/pools/p1/updateproperties"): {"applicationPackageReferences": [], "metadata": []},
            ("POST", "/pools/auto/enableautoscale"): {"autoScaleFormula": "$TargetDedicatedNodes = 0;",
                                                      "autoScaleEvaluationInterval": "PT5M"},
            ("POST", "/pools/auto/evaluateautoscale"): {"autoScaleFormula": "$TargetDedicatedNodes = 0;"},
        }
        raw = [b"{", b"[]", b"null", b"1", b'"x"', b"{\"a\":}", b"\xff\xfe", b"[" * 5000 + b"]" * 5000,
               b'{"a":' * 3000 + b"1" + b"}" * 3000, json.dumps({"metadata": nested(100)}).encode(),
               b'{"targetDedicatedNodes": NaN}', b'{"targetDedicatedNodes": 1' + b"0" * 5000 + b"}"]
        for (method, path), body in sorted(valid.items()):
            for data in raw:
                r = self.c.batch(method, path, raw_body=data)
                self.assertBatch4xx(r, "%s %s %r" % (method, path, data[:40]))
            for _ in range(60):
                mutated = mutate(self.rng, body)
                r = self.c.batch(method, path, body=mutated)
                self.assertBatch4xx(r, "%s %s %s" % (method, path, json.dumps(mutated)[:300]))
                if r.status < 300 and path == "/pools":
                    self.c.batch("DELETE", "/pools/new")
                    self.advance(10)
                self.advance(40)          # out of resizing and past the 30 s enable-autoscale rule
        r = self.c.batch("POST", "/pools", raw_body=b"[" * 5000 + b"]" * 5000)
        self.assertError(r, 400, "InvalidRequestBody")
        r = self.c.batch("POST", "/pools", body=T.pool_body("deep", metadata=[{"name": "a", "value": nested(80)}]))
        self.assertError(r, 400, "InvalidRequestBody")

    def test_malformed_job_bodies_never_500(self):
        self.steady_pool("p1", targetDedicatedNodes=1)
        full = {"id": "j0", "displayName": "d", "priority": 1, "maxParallelTasks": 2, "allowTaskPreemption": False,
                "constraints": {"maxWallClockTime": "PT1H", "maxTaskRetryCount": 1}, "poolInfo": {"poolId": "p1"},
                "onAllTasksComplete": "noaction", "onTaskFailure": "noaction", "usesTaskDependencies": False,
                "metadata": [{"name": "a", "value": "b"}], "jobManagerTask": {"id": "m", "commandLine": "x"}}
        self.assertEqual(self.c.batch("POST", "/jobs", body=full).status, 201)
        valid = {("POST", "/jobs"): dict(full, id="new"),
                 ("PATCH", "/jobs/j0"): {"priority": 2, "constraints": {"maxTaskRetryCount": 2},
                                         "metadata": [{"name": "a", "value": "c"}]},
                 ("PUT", "/jobs/j0"): {"priority": 3, "poolInfo": {"poolId": "p1"}},
                 ("POST", "/jobs/j0/disable"): {"disableTasks": "requeue"}}
        for (method, path), body in sorted(valid.items()):
            for data in (b"{", b"[]", b"null", b"\xff", b"[" * 5000 + b"]" * 5000):
                self.assertBatch4xx(self.c.batch(method, path, raw_body=data), "%s %s %r" % (method, path, data[:20]))
            for _ in range(60):
                mutated = mutate(self.rng, body)
                r = self.c.batch(method, path, body=mutated)
                self.assertBatch4xx(r, "%s %s %s" % (method, path, json.dumps(mutated)[:300]))
                if r.status < 300 and path == "/jobs":
                    self.c.batch("DELETE", "/jobs/new")
                    self.advance(5)
                if path.endswith("/disable"):
                    self.c.batch("POST", "/jobs/j0/enable")
                    self.advance(5)

    def test_malformed_arm_writes_and_failure_rules_never_500(self):
        token = self.bearer(T.ARM_SCOPE)
        image = T.GALLERY + "/images/ubuntu2204"
        valid = {
            ("PUT", T.GALLERY + "/images/fuzz", "2025-03-03"): {
                "location": "westeurope", "tags": {"a": "b"}, "properties": {
                    "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2", "architecture": "x64",
                    "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
                    "features": [{"name": "a", "value": "b"}],
                    "endOfLifeDate": "2030-01-01T00:00:00Z"}},
            ("PUT", image + "/versions/7.0.0", "2025-03-03"): {
                "location": "westeurope", "tags": {"a": "b"}, "properties": {
                    "publishingProfile": {"targetRegions": [{"name": "westeurope", "regionalReplicaCount": 1,
                                                             "storageAccountType": "Standard_LRS"}],
                                          "replicaCount": 1, "excludeFromLatest": False,
                                          "endOfLifeDate": "2030-01-01T00:00:00Z"},
                    "storageProfile": {"source": {"id": T.MANAGED_IMAGE}}}},
            ("PATCH", image + "/versions/1.1.0", "2025-03-03"): {
                "tags": {}, "properties": {"publishingProfile": {"targetRegions": [{"name": "westeurope"}]}}},
            ("PUT", T.MANAGED_IMAGE.replace("ubuntu-managed", "fuzz"), "2024-07-01"): {
                "location": "westeurope", "properties": {"hyperVGeneration": "V2", "storageProfile": {"osDisk": {
                    "osType": "Linux", "osState": "Generalized",
                    "blobUri": "https://azbatchdevstore.blob.core.windows.net/vhds/ubuntu-2204.vhd"}}}},
        }
        for (method, path, api), body in sorted(valid.items()):
            for _ in range(60):
                mutated = mutate(self.rng, body)
                r = self.c.arm(method, path, token, api=api, body=mutated)
                what = "%s %s %s -> %d %s" % (method, path, json.dumps(mutated)[:200], r.status, r.body[:200])
                self.assertLess(r.status, 500, what)
                if r.status >= 400:
                    self.assertIsInstance(r.json["error"]["code"], str, what)
                    self.assertIsInstance(r.json["error"]["details"], list, what)
        rule = {"image": "Canonical:o:s", "unusable": 0.5, "startTaskFailed": 0.1, "errorCode": "X",
                "errorMessage": "m", "errorDetails": [{"name": "a", "value": "b"}], "exitCode": 2}
        for _ in range(80):
            status, answer = self.emu.control("POST", "failures", mutate(self.rng, rule))
            self.assertIn(status, (200, 400), answer)
        for _ in range(20):
            status, answer = self.emu.control("POST", "jobs/j0/tasks", mutate(self.rng, {"count": 1}))
            self.assertIn(status, (200, 400, 404), answer)

    def test_malformed_headers_never_500(self):
        self.steady_pool("p1")
        for name, value in (("If-Match", "\u00e9"), ("If-Match", ""), ("If-None-Match", ","),
                            ("If-Modified-Since", "Mon, 99 Jan 2024 00:00:00 GMT"),
                            ("If-Unmodified-Since", "Mon, 01 Jan 99999 00:00:00 GMT"), ("If-Modified-Since", "x"),
                            ("return-client-request-id", "\u00e9"), ("client-request-id", "\u00e9" * 100)):
            for method in ("GET", "HEAD", "DELETE"):
                r = self.c.batch(method, "/pools/p1", headers=[(name, value)])
                self.assertLess(r.status, 500, (method, name, value))
        for auth in ("SharedKey devbatch:\u00e9\u00e9", "SharedKey \u00e9:x", "SharedKey",
                     "Bearer \u00e9.\u00e9.\u00e9", "Bearer a.b.c", "Bearer " + "A" * 3000, "Basic x", "\u00e9"):
            r = self.c.send("GET", "/pools?api-version=" + T.API, [("Authorization", auth)])
            self.assertIn(r.status, (401, 403), auth)
            self.assertEqual(r.json["code"], "AuthenticationFailed", auth)
        r = self.c.send("GET", "/pools?api-version=" + T.API, [("Authorization", "SharedKey devbatch:x"),
                                                              ("ocp-date", "\u00e9")])
        self.assertEqual(r.status, 403)

    def test_malformed_control_and_arm_bodies_are_400(self):
        conn_body = b"[" * 5000 + b"]" * 5000
        r = self.c.send("POST", "/_emulator/faults", [("Content-Type", "application/json"),
                                                       ("Content-Length", str(len(conn_body)))], conn_body)
        self.assertEqual(r.status, 400)
        self.assertIn("invalid JSON body", r.json["error"])
        token = self.bearer(T.ARM_SCOPE)
        for data in (conn_body, b"\xff", b"{"):
            r = self.c.send("PUT", T.MANAGED_IMAGE.replace("ubuntu-managed", "x") + "?api-version=2024-07-01",
                            [("Authorization", "Bearer " + token), ("Content-Type", "application/json"),
                             ("Content-Length", str(len(data)))], data)
            self.assertEqual((r.status, r.json["error"]["code"]), (400, "InvalidRequestContent"))


# {===================================================================
# HTTP limits: body and header caps, idle and stalled connections
# ====================================================================

def raw_exchange(emu, data, timeout=5.0, wait_close=True):
    """Send `data` on a fresh connection; returns (status, headers, body, closed) of the answer."""
    s = socket.create_connection((emu.host, emu.port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return None, {}, b"", True
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(body) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        closed = False
        if wait_close:
            try:
                closed = s.recv(1) == b""
            except ConnectionError:
                closed = True
            except socket.timeout:
                closed = False
        return status, headers, body, closed
    finally:
        s.close()


def closed_within(sock, seconds):
    """True when the peer closes `sock` within `seconds` (without sending anything)."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except ConnectionError:
        return True
    except socket.timeout:
        return False


def threads_of(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


class HttpLimitsTests(T.EmulatorCase):
    ARGS = ("--max-body", "1024", "--max-header-bytes", "2048", "--idle-timeout", "1", "--request-timeout", "1")

    def post(self, path, extra_headers, body=b""):
        head = "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n" % (path, self.emu.port, "".join(
            "%s: %s\r\n" % kv for kv in extra_headers))
        return raw_exchange(self.emu, head.encode("utf-8") + body)

    def assertPlumbing(self, answer, status, code, **values):
        got_status, headers, body, closed = answer
        self.assertEqual(got_status, status, body)
        doc = json.loads(body)
        self.assertEqual(doc["code"], code, doc)
        self.assertTrue(doc["odata.metadata"].endswith("Container.errors/@Element"))
        self.assertEqual(headers.get("connection"), "close")
        self.assertTrue(closed, "the emulator keeps the connection open")
        got = {v["key"]: v["value"] for v in doc.get("values", [])}
        for k, v in values.items():
            self.assertEqual(got.get(k), v, doc)
        return doc

    def test_a_body_over_the_cap_is_413_before_it_is_read(self):
        # No body follows the headers: an emulator that waited for it would time out and close
        # without an answer.
        answer = self.post("/pools?api-version=" + T.API, [("Content-Length", "10000000"),
                                                           ("Content-Type", "application/json")])
        self.assertPlumbing(answer, 413, "RequestEntityTooLarge", MaxRequestBodySize="1024")
        r = self.c.batch("POST", "/pools", raw_body=b" " * 1025)
        self.assertError(r, 413, "RequestEntityTooLarge")
        r = self.c.batch("POST", "/pools", raw_body=b" " * 1024)         # at the cap: read and judged
        self.assertError(r, 400, "InvalidRequestBody")
        self.assertEqual(self.emu.control("GET", "stats")[1]["pools"], 0)

    def test_a_large_body_sent_anyway_still_gets_the_413(self):
        s = socket.create_connection((self.emu.host, self.emu.port), timeout=5)
        head = ("POST /pools?api-version=%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 300000\r\n\r\n" % T.API).encode()
        s.sendall(head + b"x" * 300000)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            self.assertTrue(chunk, "closed without an answer")
            data += chunk
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413 "), data[:100])

    def test_chunked_bodies_are_capped_too(self):
        ok = json.dumps({"advance": 0}).encode()
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(ok), ok)
        status, _, body, _ = self.post("/_emulator/clock", [("Transfer-Encoding", "chunked"),
                                                            ("Content-Type", "application/json")], chunked)
        self.assertEqual(status, 200, body)
        self.assertIn("simTime", json.loads(body))
        big = b"".join(b"100\r\n" + b"x" * 256 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
        status, headers, body, closed = self.post("/_emulator/clock", [("Transfer-Encoding", "chunked")], big)
        self.assertEqual((status, headers.get("connection"), closed), (413, "close", True))
        self.assertIn("too large", json.loads(body)["error"])
        answer = self.post("/pools?api-version=" + T.API, [("Transfer-Encoding", "chunked")],
                           b"zz\r\nxx\r\n0\r\n\r\n")
        self.assertPlumbing(answer, 400, "InvalidHeaderValue", HeaderName="Transfer-Encoding")

    def test_a_content_length_that_is_not_a_plain_integer_is_400(self):
        for value in ("12abc", "-1", "+5", "1_0", " ", "0x10", "1e3", "\u0661"):
            answer = self.post("/pools?api-version=" + T.API, [("Content-Length", value)])
            self.assertPlumbing(answer, 400, "InvalidHeaderValue", HeaderName="Content-Length")
        answer = self.post("/pools?api-version=" + T.API, [("Content-Length", "2"), ("Content-Length", "3")],
                           b"{}")
        self.assertPlumbing(answer, 400, "InvalidHeaderValue", HeaderName="Content-Length")
        answer = self.post("/pools?api-version=" + T.API, [("Content-Length", "2"),
                                                           ("Transfer-Encoding", "chunked")], b"{}")
        self.assertPlumbing(answer, 400, "InvalidHeaderValue", HeaderName="Transfer-Encoding")
        answer = self.post("/pools?api-version=" + T.API, [("Transfer-Encoding", "gzip")], b"{}")
        self.assertPlumbing(answer, 400, "InvalidHeaderValue", HeaderName="Transfer-Encoding")

    def test_the_request_line_and_the_header_block_are_capped(self):
        answer = raw_exchange(self.emu, b"GET /pools?x=" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertPlumbing(answer, 414, "RequestUriTooLong")
        answer = raw_exchange(self.emu, b"GET /pools HTTP/1.1\r\n" + b"".join(
            b"X-Pad-%d: %s\r\n" % (i, b"v" * 100) for i in range(30)) + b"\r\n")
        doc = self.assertPlumbing(answer, 431, "RequestHeaderFieldsTooLarge")
        self.assertTrue(doc["message"]["value"].startswith("The request's header block is larger than 2048 bytes."))
        answer = raw_exchange(self.emu, b"GET /pools HTTP/1.1\r\n" + b"".join(
            b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n")           # small, but more than 100 headers
        doc = self.assertPlumbing(answer, 431, "RequestHeaderFieldsTooLarge")
        self.assertTrue(doc["message"]["value"].startswith("The request has more than 100 headers."))
        answer = raw_exchange(self.emu, b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X: " +
                              b"v" * 3000 + b"\r\n\r\n")
        status, headers, body, closed = answer
        self.assertEqual((status, json.loads(body), closed),
                         (431, {"error": "The request's header block is larger than 2048 bytes."}, True))
        answer = raw_exchange(self.emu, b"FOO /pools HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertPlumbing(answer, 501, "NotImplemented")
        answer = raw_exchange(self.emu, b"GET /pools HTTP/2.0\r\nHost: x\r\n\r\n")
        self.assertPlumbing(answer, 505, "UnsupportedHttpVersion")
        for line in (b"GET /pools HTTP/1.1 extra", b"GET /pools", b"GET /pools HTTP/x"):
            answer = raw_exchange(self.emu, line + b"\r\nHost: x\r\n\r\n")
            self.assertPlumbing(answer, 400, "InvalidInput")
        self.assertEqual(self.c.batch("GET", "/pools").status, 200)      # and it still serves

    def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(self):
        s = socket.create_connection((self.emu.host, self.emu.port), timeout=5)
        self.addCleanup(s.close)
        request = b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        for _ in range(4):                  # used every 0.4 s: the idle clock restarts each time
            s.sendall(request)
            self.assertIn(b"200 OK", s.recv(4096))
            time.sleep(0.4)
        t = time.time()
        self.assertTrue(closed_within(s, 5))
        self.assertLess(time.time() - t, 2.5)
        self.assertGreaterEqual(self.emu.control("GET", "stats")[1]["timeouts"].get("idle", 0), 1)

    def test_a_stalled_or_trickling_request_is_cut_off_unapplied(self):
        body = json.dumps(T.pool_body("stalled")).encode()
        partial = [b"GET /pools HTTP/1.1\r\nHost: x\r\n",              # headers never end
                   b"GET /pools HTTP/1.",                               # the request line never ends
                   ("POST /pools?api-version=%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n" % (T.API, len(body))).encode() + body[:10]]
        for data in partial:
            s = socket.create_connection((self.emu.host, self.emu.port), timeout=5)
            s.sendall(data)
            t = time.time()
            self.assertTrue(closed_within(s, 5), data)
            self.assertLess(time.time() - t, 3.0, data)
            s.close()
        s = socket.create_connection((self.emu.host, self.emu.port), timeout=5)
        t = time.time()
        closed = False
        for ch in b"GET /pools HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 200:   # one byte every 50 ms
            try:
                s.sendall(bytes([ch]))
            except OSError:
                closed = True
                break
            if closed_within(s, 0.05):
                closed = True
                break
        s.close()
        self.assertTrue(closed)
        self.assertLess(time.time() - t, 3.0)          # a trickle does not keep the request alive
        stats = self.emu.control("GET", "stats")[1]
        self.assertEqual(stats["pools"], 0)            # the cut-off create was never applied
        self.assertEqual(stats["requests"], 0)
        self.assertGreaterEqual(stats["timeouts"].get("request", 0), 2)       # the headers, the body
        self.assertEqual(sum(stats["timeouts"].values()), 4)         # the request lines: the idle timer

    def test_stalled_connections_do_not_keep_threads(self):
        baseline = threads_of(self.emu.proc.pid)
        socks = []
        for _ in range(20):
            s = socket.create_connection((self.emu.host, self.emu.port), timeout=5)
            s.sendall(b"GET /pools HTTP/1.1\r\n")
            socks.append(s)
        peak, deadline = 0, time.time() + 0.9
        while time.time() < deadline and peak < baseline + 15:        # one thread per stalled connection
            peak = max(peak, threads_of(self.emu.proc.pid))
            time.sleep(0.02)
        self.assertGreaterEqual(peak, baseline + 15)
        deadline = time.time() + 5
        while time.time() < deadline and threads_of(self.emu.proc.pid) > baseline:
            time.sleep(0.1)
        self.assertLessEqual(threads_of(self.emu.proc.pid), baseline)
        for s in socks:
            self.assertTrue(closed_within(s, 1))
            s.close()


class LimitFlagTests(unittest.TestCase):
    def test_limit_flags_must_be_positive(self):
        for args in (("--max-body", "0"), ("--max-body", "x"), ("--max-header-bytes", "-1"),
                     ("--idle-timeout", "0"), ("--request-timeout", "nan"), ("--idle-timeout", "inf")):
            r = subprocess.run([sys.executable, T.SCRIPT] + list(args), capture_output=True, text=True, timeout=20)
            self.assertEqual((r.returncode, r.stdout), (2, ""), args)
            self.assertIn(args[0], r.stderr)

    def test_the_default_body_cap_is_one_mebibyte(self):
        emu = T.Emulator()
        try:
            c = T.Client(emu)
            self.assertEqual(c.batch("POST", "/pools", raw_body=b" " * (1 << 20)).json["code"], "InvalidRequestBody")
            r = c.batch("POST", "/pools", raw_body=b" " * ((1 << 20) + 1))
            self.assertEqual((r.status, r.json["code"]), (413, "RequestEntityTooLarge"))
            c.close()
        finally:
            self.assertEqual(emu.stop(), 0)


# {===================================================================
# The control API answers only what can come from this machine
# ====================================================================

class ControlApiOriginTests(T.EmulatorCase):
    def control(self, method, path, host=None, origin=None, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        hdrs = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))] if data else []
        if origin is not None:
            hdrs.append(("Origin", origin))
        return self.c.send(method, "/_emulator/" + path, hdrs, data,
                           host=host if host is not None else "127.0.0.1:%d" % self.emu.port)

    def test_a_host_that_is_not_loopback_is_refused(self):
        for host in ("attacker.invalid", "attacker.invalid:%d" % self.emu.port, "127.0.0.1.attacker.invalid",
                     "localhost.attacker.invalid", "[::1].attacker.invalid", "127.0.0.1:port", "", "127.1",
                     "[::1]x", "localhost:"):
            r = self.control("GET", "health", host=host)
            self.assertEqual(r.status, 403, host)
            self.assertIn("Host is a loopback address", r.json["error"])
            self.assertIn("'%s'" % host, r.json["error"])
        for host in ("127.0.0.1", "127.0.0.1:1", "127.9.8.7:65535", "localhost", "LocalHost:8080", "[::1]",
                     "[::1]:%d" % self.emu.port):
            r = self.control("GET", "health", host=host)
            self.assertEqual((r.status, r.json["status"]), (200, "ok"), host)

    def test_a_request_without_host_is_refused(self):
        status, _, body, _ = raw_exchange(self.emu, b"GET /_emulator/health HTTP/1.1\r\n\r\n",
                                          wait_close=False)
        self.assertEqual((status, json.loads(body)["error"][-7:]), (403, "no Host"))

    def test_an_origin_that_is_not_loopback_is_refused(self):
        for origin in ("http://attacker.invalid", "https://attacker.invalid:443", "null", "file://",
                       "http://localhost.attacker.invalid", "http://user@127.0.0.1", "ftp://127.0.0.1",
                       "http://127.0.0.1/path", ""):
            r = self.control("GET", "health", origin=origin)
            self.assertEqual(r.status, 403, origin)
            self.assertEqual(r.json["error"], "the control API refuses cross-site requests; got Origin '%s'"
                             % origin)
        for origin in ("http://127.0.0.1:%d" % self.emu.port, "https://localhost", "http://[::1]:5"):
            self.assertEqual(self.control("GET", "health", origin=origin).status, 200, origin)

    def test_a_refused_request_changes_nothing(self):
        self.create("kept")
        r = self.control("POST", "reset", host="attacker.invalid")
        self.assertEqual(r.status, 403)
        r = self.control("POST", "faults", origin="http://attacker.invalid", body={"p500": 1})
        self.assertEqual(r.status, 403)
        r = self.control("POST", "clock", host="attacker.invalid", body={"advance": 3600})
        self.assertEqual(r.status, 403)
        self.assertEqual(self.get("kept")["allocationState"], "resizing")     # the clock did not jump
        self.assertEqual(self.emu.control("GET", "faults")[1]["p500"], 0.0)
        status, _, _, _ = raw_exchange(self.emu, b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                                       b"X: " + b"v" * 40000 + b"\r\n\r\n")
        self.assertEqual(status, 431)
        stats = self.emu.control("GET", "stats")[1]
        self.assertEqual((stats["pools"], stats["requests"]), (1, 2))      # create, get: control is not counted

    def test_the_data_plane_is_not_affected_by_host_or_origin(self):
        r = self.c.batch("GET", "/pools", headers=[("Origin", "http://attacker.invalid")])
        self.assertEqual(r.status, 200)
        r = self.c.batch("GET", "/pools", host="devbatch.westeurope.batch.azure.com")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.json["odata.metadata"].startswith("http://devbatch.westeurope.batch.azure.com/"))


class InternalErrorTests(unittest.TestCase):
    """A bug in a handler answers 500 InternalError in the Batch shape; the traceback goes
    to stderr only with --verbose."""

    def answer(self, verbose):
        world = emu_world.default_world()
        emu = core.Emulator(world, emu_world.SimClock(1), core.Settings(verbose=verbose), server.Faults())

        def broken(req, plane):
            raise KeyError("a bug")
        emu.route = broken
        req = Request("GET", "/pools?api-version=2025-06-01", [("Host", "127.0.0.1:1")], b"", "http://127.0.0.1:1")
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            resp = server.serve(emu, req)
        return resp, err.getvalue()

    def test_the_answer_has_no_traceback(self):
        for verbose in (False, True):
            resp, _ = self.answer(verbose)
            body = json.loads(resp.body)
            self.assertEqual((resp.status, body["code"]), (500, "InternalError"))
            self.assertTrue(body["message"]["value"].startswith("Server encountered an internal error."))
            self.assertNotIn("Traceback", resp.body.decode())
            self.assertNotIn("a bug", resp.body.decode())
            self.assertIn(("DataServiceVersion", "3.0"), resp.headers)

    def test_the_traceback_goes_to_stderr_only_with_verbose(self):
        _, quiet = self.answer(False)
        self.assertEqual(quiet, "azbatch-emulator: internal error in GET /pools (--verbose shows the traceback)\n")
        _, loud = self.answer(True)
        self.assertIn("Traceback (most recent call last)", loud)
        self.assertIn("KeyError: 'a bug'", loud)


if __name__ == "__main__":
    unittest.main()
