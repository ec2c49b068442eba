"""The OData subset list operations accept: $filter, $select, maxresults and paging.

$filter grammar (case-insensitive keywords):
    expr    := and ('or' and)*
    and     := unary ('and' unary)*
    unary   := 'not' unary | '(' expr ')' | func | compare
    func    := ('startswith' | 'endswith' | 'contains') '(' name ',' literal ')'
    compare := name ('eq'|'ne'|'gt'|'ge'|'lt'|'le') literal
    literal := 'text' (quote doubled to escape) | number | true | false | null
             | datetime'2025-01-01T00:00:00Z'
`name` is a top-level property of the listed item, or a path 'a/b'.  Strings compare
with strings, numbers with numbers and datetime literals with ISO 8601 values; any other
pairing is false for the order operators (never an error).  Nesting is limited to
MAX_DEPTH levels, so no filter can exhaust the parser's stack.
"""

import base64
import re

from .wire import ApiError, parse_iso

MAX_DEPTH = 32

_TOKEN = re.compile(r"\s*(?:(?P<date>datetime'[^']*')|(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)"
                    r"|(?P<name>[A-Za-z_$][\w$/.]*)|(?P<punct>[(),]))", re.I)


class DateTime(float):
    """A datetime'...' literal: epoch seconds."""



def bad_query(param, value, reason):
    return ApiError(400, "InvalidQueryParameterValue",
                    "Value for one of the query parameters specified in the request URI is invalid.",
                    [("QueryParameterName", param), ("QueryParameterValue", value), ("Reason", reason)])


def _tokenize(text):
    pos, out = 0, []
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError("unexpected character at position %d" % pos)
        pos = m.end()
        if m.group("date") is not None:
            when = parse_iso(m.group("date")[9:-1])
            if when is None:
                raise ValueError("%s is not an ISO 8601 date-time" % m.group("date"))
            out.append(("lit", DateTime(when)))
        elif m.group("str") is not None:
            out.append(("lit", m.group("str")[1:-1].replace("''", "'")))
        elif m.group("num") is not None:
            n = m.group("num")
            if len(n) > 30:
                raise ValueError("the number %s... is too long" % n[:30])
            out.append(("lit", float(n) if "." in n else int(n)))
        elif m.group("name") is not None:
            word = m.group("name")
            low = word.lower()
            if low in ("true", "false"):
                out.append(("lit", low == "true"))
            elif low == "null":
                out.append(("lit", None))
            else:
                out.append(("name", word))
        else:
            out.append(("punct", m.group("punct")))
    return out


class _Parser:
    OPS = ("eq", "ne", "gt", "ge", "lt", "le")
    FUNCS = ("startswith", "endswith", "contains")

    def __init__(self, tokens):
        self.t = tokens
        self.i = 0
        self.depth = 0

    def nest(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ValueError("the expression nests deeper than %d levels" % MAX_DEPTH)

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else (None, None)

    def take(self, kind=None, value=None):
        tok = self.peek()
        if tok[0] is None or (kind and tok[0] != kind) or (value and str(tok[1]).lower() != value):
            raise ValueError("expected %s near token %d" % (value or kind, self.i + 1))
        self.i += 1
        return tok

    def is_word(self, word):
        k, v = self.peek()
        return k == "name" and v.lower() == word

    def parse(self):
        node = self.expr()
        if self.i != len(self.t):
            raise ValueError("unexpected token '%s'" % (self.t[self.i][1],))
        return node

    def expr(self):
        terms = [self.conj()]
        while self.is_word("or"):
            self.i += 1
            terms.append(self.conj())
        return terms[0] if len(terms) == 1 else ("or", terms)

    def conj(self):
        terms = [self.unary()]
        while self.is_word("and"):
            self.i += 1
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else ("and", terms)

    def unary(self):
        if self.is_word("not"):
            self.i += 1
            self.nest()
            node = ("not", self.unary())
            self.depth -= 1
            return node
        if self.peek() == ("punct", "("):
            self.i += 1
            self.nest()
            node = self.expr()
            self.take("punct", ")")
            self.depth -= 1
            return node
        k, v = self.take("name")
        if v.lower() in self.FUNCS and self.peek() == ("punct", "("):
            self.i += 1
            field = self.take("name")[1]
            self.take("punct", ",")
            lit = self.take("lit")[1]
            self.take("punct", ")")
            if not isinstance(lit, str):
                raise ValueError("%s needs a string literal" % v)
            return (v.lower(), field, lit)
        op = self.take("name")[1].lower()
        if op not in self.OPS:
            raise ValueError("unknown operator '%s'" % op)
        return (op, v, self.take("lit")[1])


def _lookup(item, path):
    cur = item
    for part in path.split("/"):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _eval(node, item):
    kind = node[0]
    if kind == "or":
        return any(_eval(n, item) for n in node[1])
    if kind == "and":
        return all(_eval(n, item) for n in node[1])
    if kind == "not":
        return not _eval(node[1], item)
    val = _lookup(item, node[1])
    lit = node[2]
    if kind in ("startswith", "endswith", "contains"):
        if not isinstance(val, str):
            return False
        return {"startswith": val.startswith, "endswith": val.endswith,
                "contains": lambda x: x in val}[kind](lit)
    if isinstance(lit, DateTime):
        val = parse_iso(val) if isinstance(val, str) else None
        if val is None:
            return kind == "ne"
    if kind == "eq":
        return val == lit
    if kind == "ne":
        return val != lit
    if not _comparable(val, lit):
        return False
    return {"gt": val > lit, "ge": val >= lit, "lt": val < lit, "le": val <= lit}[kind]


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _comparable(a, b):
    return (isinstance(a, str) and isinstance(b, str)) or (_number(a) and _number(b))


def compile_filter(text):
    """$filter text -> predicate(item) (None when there is no filter); raises ApiError."""
    if text is None or text.strip() == "":
        return None
    try:
        node = _Parser(_tokenize(text)).parse()
    except ValueError as e:
        raise bad_query("$filter", text, "The filter expression is not valid: %s." % e)
    return lambda item: bool(_eval(node, item))


def parse_select(req, allowed):
    """$select -> list of property names (None when absent or empty, like an empty
    $filter); unknown names are a 400."""
    raw = req.q("$select")
    if raw is None or raw.strip() == "":
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for n in names:
        if n not in allowed:
            raise bad_query("$select", raw, "The property '%s' does not exist on the returned type." % n)
    return names


def apply_select(obj, names, keep=("odata.metadata",)):
    if names is None:
        return obj
    return {k: v for k, v in obj.items() if k in names or k in keep}


def parse_maxresults(req):
    raw = req.q("maxresults")
    if raw is None:
        return 1000
    try:
        n = int(raw)
    except ValueError:
        raise bad_query("maxresults", raw, "maxresults must be an integer.")
    if n < 1 or n > 1000:
        raise ApiError(400, "OutOfRangeQueryParameterValue",
                       "One of the query parameters specified in the request URI is outside the "
                       "permissible range.",
                       [("QueryParameterName", "maxresults"), ("QueryParameterValue", raw),
                        ("Reason", "maxresults must be between 1 and 1000.")])
    return n


def encode_token(key):
    return base64.urlsafe_b64encode(key.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_token(req):
    raw = req.q("$skiptoken")
    if raw is None:
        return None
    try:
        std = raw.replace("-", "+").replace("_", "/")
        return base64.b64decode(std + "=" * (-len(std) % 4), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise bad_query("$skiptoken", raw, "The continuation token is not valid.")


def page(req, keyed, metadata):
    """One page of `keyed` ([(sort key, item)], sorted) as a list-result body with odata.nextLink."""
    from urllib.parse import quote
    limit = parse_maxresults(req)
    after = decode_token(req)
    if after is not None:
        keyed = [(k, i) for k, i in keyed if k > after]
    body = {"odata.metadata": metadata, "value": [i for _, i in keyed[:limit]]}
    if len(keyed) > limit:
        kept = "&".join("%s=%s" % (quote(k, safe="$-_.~"), quote(v, safe="-_.~"))
                        for k, v in req.query if k.lower() != "$skiptoken")
        body["odata.nextLink"] = "%s%s?%s%s$skiptoken=%s" % (
            req.base_url, req.path, kept, "&" if kept else "", encode_token(keyed[limit - 1][0]))
    return body
