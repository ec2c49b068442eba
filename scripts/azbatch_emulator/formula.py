"""A small evaluator for Batch autoscale formulas.

Supported: statements `$Name = expr;` or `name = expr;` (newlines and `//` comments
allowed); numbers; the operators ?: || && == != < <= > >= + - * / % ! and unary -;
parentheses; min, max, avg, sum, abs, ceil, floor, round, count, len, time;
TimeInterval_* constants; bare words as string values (`taskcompletion`); and
service-defined variables such as $PendingTasks or $CurrentDedicatedNodes, whose
sampling methods (.GetSample, .GetSamplePercent, .Count, ...) see an idle pool:
no tasks, 100 percent of samples.  Results are printed like the service's
AutoScaleRun.results: "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue".

Three kinds of failure, as the service distinguishes them:
  FormulaTooLong         more than 8192 characters (400 AutoScaleFormulaTooLong)
  FormulaSyntaxError     the formula cannot be parsed, or names an unknown function or
                         service variable (400 AutoScalingFormulaSyntaxError)
  FormulaEvaluationError the formula parses but a value cannot be computed: division by
                         zero, a string where a number is needed, a target out of range
                         (AutoScaleRun.error; the request itself succeeds)
Only the branch a `?:` takes is evaluated, so `x > 0 ? 10 / x : 0` is fine.  Nesting is
limited to MAX_DEPTH levels.
"""

import math
import re


class FormulaError(ValueError):
    pass


class FormulaTooLong(FormulaError):
    pass


class FormulaSyntaxError(FormulaError):
    pass


class FormulaEvaluationError(FormulaError):
    """`results` holds the variables that did evaluate, in the AutoScaleRun format."""

    def __init__(self, message, results=""):
        super().__init__(message)
        self.results = results


MAX_LENGTH = 8192
MAX_DEPTH = 32
MAX_TARGET = 2 ** 31 - 1
DEALLOCATION = ("requeue", "terminate", "taskcompletion", "retaineddata")
TARGET_NAMES = ("$TargetDedicatedNodes", "$TargetDedicated", "$TargetLowPriorityNodes", "$NodeDeallocationOption")

_TIME = {"TimeInterval_Zero": 0, "TimeInterval_100ns": 1e-7, "TimeInterval_Microsecond": 1e-6,
         "TimeInterval_Millisecond": 1e-3, "TimeInterval_Second": 1, "TimeInterval_Minute": 60,
         "TimeInterval_Hour": 3600, "TimeInterval_Day": 86400, "TimeInterval_Week": 604800}

_SAMPLED = ("$CPUPercent", "$WallClockSeconds", "$MemoryBytes", "$DiskBytes", "$DiskReadBytes",
            "$DiskWriteBytes", "$DiskReadOps", "$DiskWriteOps", "$NetworkInBytes", "$NetworkOutBytes",
            "$SampleNodeCount", "$ActiveTasks", "$RunningTasks", "$PendingTasks", "$SucceededTasks",
            "$FailedTasks", "$TaskSlotsPerNode", "$CurrentDedicatedNodes", "$CurrentLowPriorityNodes",
            "$PreemptedNodeCount", "$UsableNodeCount")

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<name>\$?[A-Za-z_]\w*)"
                    r"|(?P<op>\|\||&&|==|!=|<=|>=|[-+*/%<>!?:(),.=;]))")

_FUNCS = {
    "min": lambda *a: min(a), "max": lambda *a: max(a), "avg": lambda *a: sum(a) / len(a),
    "sum": lambda *a: sum(a), "abs": abs, "ceil": math.ceil, "floor": math.floor, "round": round,
    "count": lambda *a: len(a), "len": lambda *a: len(a), "time": lambda *a: 0,
    "percentile": lambda v, p: v, "std": lambda *a: 0, "median": lambda *a: sum(a) / len(a),
}

_BINARY = {
    "||": lambda a, b: 1.0 if (a or b) else 0.0, "&&": lambda a, b: 1.0 if (a and b) else 0.0,
    "==": lambda a, b: 1.0 if a == b else 0.0, "!=": lambda a, b: 1.0 if a != b else 0.0,
    "<": lambda a, b: 1.0 if a < b else 0.0, "<=": lambda a, b: 1.0 if a <= b else 0.0,
    ">": lambda a, b: 1.0 if a > b else 0.0, ">=": lambda a, b: 1.0 if a >= b else 0.0,
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "%": math.fmod,
}
_NUMERIC_ONLY = ("<", "<=", ">", ">=", "+", "-", "*", "/", "%")


class _Failed:
    """The value of an expression whose evaluation failed (the first failure is kept)."""

    def __repr__(self):
        return "<failed>"


FAILED = _Failed()


def _position(text, pos):
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return "Line %d, Col %d" % (line, col)


def _tokenize(text):
    """[(kind, value, position)]; comments are blanked out so positions stay true."""
    text = re.sub(r"//[^\n]*", lambda m: " " * len(m.group(0)), text)
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            at = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise FormulaSyntaxError("%s: unexpected character '%s'" % (_position(text, at), text[at]))
        start = m.start(m.lastgroup)
        pos = m.end()
        if m.group("num"):
            value = float(m.group("num"))
            out.append(("num", value, start))
        elif m.group("name"):
            out.append(("name", m.group("name"), start))
        else:
            out.append(("op", m.group("op"), start))
    return out


def _number(v):
    return isinstance(v, float)


class _Eval:
    def __init__(self, text, tokens, system):
        self.text, self.t, self.i, self.system, self.vars = text, tokens, 0, system, {}
        self.depth = 0
        self.dry = 0                 # > 0 while parsing a `?:` branch that is not taken
        self.failure = None          # the first evaluation failure, with its position

    # -- tokens

    def peek(self, k=0):
        j = self.i + k
        return self.t[j] if j < len(self.t) else ("end", None, len(self.text))

    def here(self):
        return _position(self.text, self.peek()[2])

    def syntax(self, what):
        return FormulaSyntaxError("%s: %s" % (self.here(), what))

    def op(self, *ops):
        tok = self.peek()
        if tok[0] == "op" and tok[1] in ops:
            self.i += 1
            return tok[1]
        return None

    def expect(self, o):
        if not self.op(o):
            raise self.syntax("expected '%s'" % o)

    def nest(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.syntax("the expression nests deeper than %d levels" % MAX_DEPTH)

    def fail(self, what, at):
        """An evaluation failure at token `at`: remembered (unless in a branch not taken)."""
        if self.dry:
            return 0.0
        if self.failure is None:
            self.failure = "%s: %s" % (_position(self.text, at[2]), what)
        return FAILED

    # -- statements

    def run(self):
        order = []
        while self.peek()[0] != "end":
            if self.op(";"):
                continue
            kind, name, _ = self.peek()
            if kind != "name" or self.peek(1)[:2] != ("op", "="):
                raise self.syntax("expected an assignment '$Name = expression'")
            self.i += 2
            value = self.ternary()
            if self.peek()[0] != "end" and not self.op(";"):
                raise self.syntax("expected ';'")
            if name not in self.vars:
                order.append(name)
            self.vars[name] = value
        if not order:
            raise FormulaSyntaxError("the formula assigns no variables")
        return self.vars, order

    # -- expressions

    def branch(self, taken):
        if not taken:
            self.dry += 1
        try:
            return self.ternary()
        finally:
            if not taken:
                self.dry -= 1

    def ternary(self):
        self.nest()
        cond = self.binary(0)
        if self.op("?"):
            take_first = cond is not FAILED and bool(cond)
            a = self.branch(take_first)
            self.expect(":")
            b = self.branch(not take_first and cond is not FAILED)
            cond = FAILED if cond is FAILED else (a if take_first else b)
        self.depth -= 1
        return cond

    _LEVELS = (("||",), ("&&",), ("==", "!="), ("<", "<=", ">", ">="), ("+", "-"), ("*", "/", "%"))

    def binary(self, level):
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            at = self.peek()
            o = self.op(*self._LEVELS[level])
            if o is None:
                return left
            right = self.binary(level + 1)
            left = self.apply(o, left, right, at)

    def apply(self, o, left, right, at):
        if left is FAILED or right is FAILED:
            return FAILED
        if o in _NUMERIC_ONLY and not (_number(left) and _number(right)):
            return self.fail("operator '%s' needs two numbers" % o, at)
        if o in ("/", "%") and right == 0:
            return self.fail("division by zero", at)
        try:
            return float(_BINARY[o](left, right))
        except (ArithmeticError, ValueError, TypeError):
            return self.fail("operator '%s' cannot combine these values" % o, at)

    def unary(self):
        at = self.peek()
        if self.op("-", "!"):
            self.nest()
            v = self.unary()
            self.depth -= 1
            if v is FAILED:
                return FAILED
            if at[1] == "!":
                return 0.0 if v else 1.0
            if not _number(v):
                return self.fail("cannot negate a string", at)
            return -v
        return self.postfix(self.primary())

    def postfix(self, value):
        while self.op("."):
            kind, meth, _ = self.peek()
            if kind != "name":
                raise self.syntax("expected a method name after '.'")
            self.i += 1
            self.args()
            if value is FAILED:
                continue
            value = 100.0 if meth == "GetSamplePercent" else (value if meth == "GetSample" and
                                                              _number(value) else 0.0)
        return value

    def args(self):
        self.expect("(")
        out = []
        if self.op(")"):
            return out
        self.nest()
        while True:
            out.append(self.ternary())
            if self.op(")"):
                self.depth -= 1
                return out
            self.expect(",")

    def primary(self):
        tok = self.peek()
        kind, val, _ = tok
        if kind == "num":
            self.i += 1
            return val
        if self.op("("):
            self.nest()
            v = self.ternary()
            self.expect(")")
            self.depth -= 1
            return v
        if kind != "name":
            raise self.syntax("unexpected '%s'" % (val if val is not None else "end of formula"))
        self.i += 1
        if self.peek()[:2] == ("op", "("):
            fn = _FUNCS.get(val.lower())
            if fn is None:
                raise FormulaSyntaxError("%s: unknown function '%s'" % (_position(self.text, tok[2]), val))
            args = self.args()
            if any(a is FAILED for a in args):
                return FAILED
            if not args and val.lower() != "time":
                return 0.0
            if val.lower() not in ("count", "len") and not all(_number(a) for a in args):
                return self.fail("'%s' needs numbers" % val, tok)
            try:
                return float(fn(*args))
            except (ArithmeticError, ValueError, TypeError):
                return self.fail("bad arguments to '%s'" % val, tok)
        if val in self.vars:
            return self.vars[val]
        if val in _TIME:
            return float(_TIME[val])
        if val in self.system:
            return self.system[val]
        if val.startswith("$"):
            if val in _SAMPLED:
                return 0.0
            raise FormulaSyntaxError("%s: unknown variable '%s'" % (_position(self.text, tok[2]), val))
        return val        # a bare word is a string value, e.g. taskcompletion


def _fmt(v):
    if isinstance(v, str):
        return v
    if not math.isfinite(v):
        return repr(v)
    if v == int(v):
        return str(int(v))
    return repr(v)


def _results(variables, order):
    parts = []
    for n in TARGET_NAMES:
        if n in variables and variables[n] is not FAILED:
            parts.append("%s=%s" % (n, _fmt(variables[n])))
    if "$NodeDeallocationOption" not in variables:
        parts.append("$NodeDeallocationOption=requeue")
    for n in sorted((n for n in order if n not in TARGET_NAMES), key=str.lower):
        if variables[n] is not FAILED:
            parts.append("%s%s=%s" % ("" if n.startswith("$") else "$", n, _fmt(variables[n])))
    return ";".join(parts)


def evaluate(formula, current_dedicated=0, current_low_priority=0, target_dedicated=0, target_low_priority=0):
    """Evaluate `formula`; returns (target_dedicated, target_low_priority, results string).
    Raises FormulaTooLong, FormulaSyntaxError or FormulaEvaluationError (all FormulaError)."""
    if not isinstance(formula, str) or not formula.strip():
        raise FormulaSyntaxError("the formula is empty")
    if len(formula) > MAX_LENGTH:
        raise FormulaTooLong("the formula is longer than %d characters" % MAX_LENGTH)
    system = {"$CurrentDedicatedNodes": float(current_dedicated),
              "$CurrentLowPriorityNodes": float(current_low_priority),
              "$TargetDedicatedNodes": float(target_dedicated), "$TargetDedicated": float(target_dedicated),
              "$TargetLowPriorityNodes": float(target_low_priority), "$NodeDeallocationOption": "requeue"}
    ev = _Eval(formula, _tokenize(formula), system)
    variables, order = ev.run()
    if ev.failure is not None:
        raise FormulaEvaluationError(ev.failure, _results(variables, order))

    def target(*names, default):
        for n in names:
            if n in variables:
                v = variables[n]
                if not _number(v) or not math.isfinite(v) or v > MAX_TARGET:
                    raise FormulaEvaluationError("%s must be a number from 0 to %d, got %s" % (n, MAX_TARGET, _fmt(v)),
                                                 _results(variables, order))
                return max(0, int(v))
        return default

    ded = target("$TargetDedicatedNodes", "$TargetDedicated", default=int(target_dedicated))
    low = target("$TargetLowPriorityNodes", default=int(target_low_priority))
    dealloc = variables.get("$NodeDeallocationOption", "requeue")
    if dealloc not in DEALLOCATION:
        raise FormulaEvaluationError("$NodeDeallocationOption must be requeue, terminate, taskcompletion or "
                                     "retaineddata", _results(variables, order))
    return ded, low, _results(variables, order)
