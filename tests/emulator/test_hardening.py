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
import sys
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

    def test_malformed_headers_never_500(self):
        self.steady_pool("p1")
        for name, value in (("If-Match", "\u00e9"), ("If-Match", ""), ("If-None-Match", ","),
                            ("If-Modified-Since", "Mon, 99 Jan 2024 00:00:00 GMT"),
                            ("If-Unmodified-Since", "Mon, 01 Jan 99999 00:00:00 GMT"), ("If-Modified-Since", "x"),
                            ("return-client-request-id", "\u00e9"), ("client-request-id", "\u00e9" * 100)):
            for method in ("GET", "HEAD", "DELETE"):
                r = self.c.batch(method, "/pools/p1", headers=[(name, value)])
                self.assertLess(r.status, 500, (method, name, value))
        for auth in ("SharedKey devbatch:\u00e9\u00e9", "SharedKey \u00e9:x", "SharedKey", "Bearer \u00e9.\u00e9.\u00e9",
                     "Bearer a.b.c", "Bearer " + "A" * 3000, "Basic x", "\u00e9"):
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
