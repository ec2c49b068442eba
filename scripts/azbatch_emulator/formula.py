"""A small evaluator for Batch autoscale formulas.

Supported: statements `$Name = expr;` or `name = expr;` (newlines and `//` comments
allowed); numbers; the operators ?: || && == != < <= > >= + - * / % ! and unary -;
parentheses; min, max, avg, sum, abs, ceil, floor, round, count, len, time;
TimeInterval_* constants; bare words as string values (`taskcompletion`); and
service-defined variables such as $PendingTasks or $CurrentDedicatedNodes, whose
sampling methods (.GetSample, .GetSamplePercent, .Count, ...) see an idle pool:
no tasks, 100 percent of samples.  Results are printed like the service's
AutoScaleRun.results: "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue".
"""

import math
import re


class FormulaError(ValueError):
    pass


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


def _tokenize(text):
    text = re.sub(r"//[^\n]*", "", text)
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise FormulaError("unexpected character '%s' at position %d" % (text[pos:].lstrip()[:1], pos))
        pos = m.end()
        if m.group("num"):
            out.append(("num", float(m.group("num"))))
        elif m.group("name"):
            out.append(("name", m.group("name")))
        else:
            out.append(("op", m.group("op")))
    return out


class _Eval:
    def __init__(self, tokens, system):
        self.t, self.i, self.system, self.vars = tokens, 0, system, {}

    def peek(self, k=0):
        j = self.i + k
        return self.t[j] if j < len(self.t) else ("end", None)

    def op(self, *ops):
        tok = self.peek()
        if tok[0] == "op" and tok[1] in ops:
            self.i += 1
            return tok[1]
        return None

    def expect(self, o):
        if not self.op(o):
            raise FormulaError("expected '%s' near token %d" % (o, self.i + 1))

    def run(self):
        order = []
        while self.peek()[0] != "end":
            if self.op(";"):
                continue
            kind, name = self.peek()
            if kind != "name" or self.peek(1) != ("op", "="):
                raise FormulaError("expected an assignment '$Name = expression' near token %d" % (self.i + 1))
            self.i += 2
            value = self.ternary()
            if self.peek()[0] != "end" and not self.op(";"):
                raise FormulaError("expected ';' near token %d" % (self.i + 1))
            if name not in self.vars:
                order.append(name)
            self.vars[name] = value
        if not order:
            raise FormulaError("the formula assigns no variables")
        return self.vars, order

    def ternary(self):
        cond = self.binary(0)
        if self.op("?"):
            a = self.ternary()
            self.expect(":")
            b = self.ternary()
            return a if cond else b
        return cond

    _LEVELS = (("||",), ("&&",), ("==", "!="), ("<", "<=", ">", ">="), ("+", "-"), ("*", "/", "%"))

    def binary(self, level):
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            o = self.op(*self._LEVELS[level])
            if o is None:
                return left
            right = self.binary(level + 1)
            try:
                left = {
                    "||": lambda: 1.0 if (left or right) else 0.0, "&&": lambda: 1.0 if (left and right) else 0.0,
                    "==": lambda: 1.0 if left == right else 0.0, "!=": lambda: 1.0 if left != right else 0.0,
                    "<": lambda: 1.0 if left < right else 0.0, "<=": lambda: 1.0 if left <= right else 0.0,
                    ">": lambda: 1.0 if left > right else 0.0, ">=": lambda: 1.0 if left >= right else 0.0,
                    "+": lambda: left + right, "-": lambda: left - right, "*": lambda: left * right,
                    "/": lambda: left / right, "%": lambda: math.fmod(left, right),
                }[o]()
            except ZeroDivisionError:
                raise FormulaError("division by zero")
            except TypeError:
                raise FormulaError("operator '%s' cannot combine these values" % o)

    def unary(self):
        if self.op("-"):
            v = self.unary()
            if isinstance(v, str):
                raise FormulaError("cannot negate a string")
            return -v
        if self.op("!"):
            return 0.0 if self.unary() else 1.0
        return self.postfix(self.primary())

    def postfix(self, value):
        while self.op("."):
            kind, meth = self.peek()
            if kind != "name":
                raise FormulaError("expected a method name after '.'")
            self.i += 1
            self.args()
            value = 100.0 if meth == "GetSamplePercent" else (value if meth == "GetSample" and
                                                              not isinstance(value, str) else 0.0)
        return value

    def args(self):
        self.expect("(")
        out = []
        if self.op(")"):
            return out
        while True:
            out.append(self.ternary())
            if self.op(")"):
                return out
            self.expect(",")

    def primary(self):
        kind, val = self.peek()
        if kind == "num":
            self.i += 1
            return val
        if self.op("("):
            v = self.ternary()
            self.expect(")")
            return v
        if kind != "name":
            raise FormulaError("unexpected '%s' near token %d" % (val, self.i + 1))
        self.i += 1
        if self.peek() == ("op", "("):
            fn = _FUNCS.get(val.lower())
            if fn is None:
                raise FormulaError("unknown function '%s'" % val)
            args = self.args()
            try:
                return float(fn(*args)) if args or val.lower() == "time" else 0.0
            except (TypeError, ValueError, ZeroDivisionError):
                raise FormulaError("bad arguments to '%s'" % val)
        if val in self.vars:
            return self.vars[val]
        if val in _TIME:
            return float(_TIME[val])
        if val in self.system:
            return self.system[val]
        if val.startswith("$"):
            if val in _SAMPLED:
                return 0.0
            raise FormulaError("unknown variable '%s'" % val)
        return val        # a bare word is a string value, e.g. taskcompletion


def _fmt(v):
    if isinstance(v, str):
        return v
    if v == int(v):
        return str(int(v))
    return repr(v)


def evaluate(formula, current_dedicated=0, current_low_priority=0, target_dedicated=0, target_low_priority=0):
    """Evaluate `formula`; returns (target_dedicated, target_low_priority, results string).
    Raises FormulaError with a reason when the formula cannot be parsed or evaluated."""
    if not isinstance(formula, str) or not formula.strip():
        raise FormulaError("the formula is empty")
    if len(formula) > 8192:
        raise FormulaError("the formula is longer than 8192 characters")
    system = {"$CurrentDedicatedNodes": float(current_dedicated),
              "$CurrentLowPriorityNodes": float(current_low_priority),
              "$TargetDedicatedNodes": float(target_dedicated), "$TargetDedicated": float(target_dedicated),
              "$TargetLowPriorityNodes": float(target_low_priority), "$NodeDeallocationOption": "requeue"}
    variables, order = _Eval(_tokenize(formula), system).run()

    def target(*names, default):
        for n in names:
            if n in variables:
                v = variables[n]
                if isinstance(v, str):
                    raise FormulaError("%s must be a number" % n)
                return max(0, int(v))
        return default

    ded = target("$TargetDedicatedNodes", "$TargetDedicated", default=int(target_dedicated))
    low = target("$TargetLowPriorityNodes", default=int(target_low_priority))
    dealloc = variables.get("$NodeDeallocationOption", "requeue")
    if dealloc not in ("requeue", "terminate", "taskcompletion", "retaineddata"):
        raise FormulaError("$NodeDeallocationOption must be requeue, terminate, taskcompletion or retaineddata")
    parts = []
    for n in TARGET_NAMES:
        if n in variables:
            parts.append("%s=%s" % (n, _fmt(variables[n])))
    if "$NodeDeallocationOption" not in variables:
        parts.append("$NodeDeallocationOption=requeue")
    for n in sorted((n for n in order if n not in TARGET_NAMES), key=str.lower):
        parts.append("%s%s=%s" % ("" if n.startswith("$") else "$", n, _fmt(variables[n])))
    return ded, low, ";".join(parts)
