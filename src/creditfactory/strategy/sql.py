"""Parse one SQL expression with sqlglot and lower it to the typed tree of :mod:`.ir`.

Lowering is where an expression is checked: unknown columns (with a suggestion), functions
outside the supported list, and type errors (``age = 'x'``, ``income AND 3``). Every problem in
the expression is collected, not just the first. A sub-expression that already failed is
*poisoned*: the problems it causes further up are not reported again.

The supported language (see ``docs/strategy.md``):

* literals: numbers, ``'text'``, ``TRUE``/``FALSE``, ``NULL``, ``DATE 'YYYY-MM-DD'``;
* ``AND OR NOT``, ``= <> != < <= > >=``, ``+ - * /``, unary ``-``;
* ``x [NOT] BETWEEN a AND b``, ``x [NOT] IN (constants)``, ``x [NOT] LIKE 'pattern'``,
  ``x IS [NOT] NULL``, ``x IS [NOT] TRUE|FALSE``;
* ``CASE [x] WHEN … THEN … [ELSE …] END``, ``IF(c, a, b)``;
* the functions in :data:`FUNCTIONS`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from creditfactory.strategy.backends.python import compile_node
from creditfactory.strategy.ir import Call, Col, Lit, Node, Op, Type, walk

__all__ = ["FUNCTIONS", "Issue", "fold", "lower", "parse", "round_half_up"]

#: Supported functions: name -> (what it does, argument types, result type).
FUNCTIONS: dict[str, str] = {
    "LEAST(a, b, …)": "smallest non-NULL number; NULL only when all are NULL",
    "GREATEST(a, b, …)": "largest non-NULL number; NULL only when all are NULL",
    "COALESCE(a, b, …)": "first non-NULL argument (any type, all the same)",
    "NULLIF(a, b)": "NULL when a = b, else a",
    "IF(c, a, b)": "a when c is TRUE, else b (NULL c gives b)",
    "ABS(x)": "absolute value",
    "ROUND(x[, n])": "half up (towards +∞) to n decimal places (0 by default), n a constant -6..9",
    "FLOOR(x)": "largest whole number <= x",
    "CEIL(x) / CEILING(x)": "smallest whole number >= x",
    "LN(x)": "natural logarithm; NULL for x <= 0",
    "EXP(x)": "e to the power x; NULL when not finite",
    "POWER(x, y) / POW(x, y)": "x to the power y; NULL when not a finite number; a constant whole y "
    "from -8 to 8 multiplies (x·x·…), y = 0.5 is SQRT(x)",
    "SQRT(x)": "square root; NULL for x < 0",
    "DAYS_BETWEEN(start, end)": "end - start in days (dates)",
    "MONTHS_BETWEEN(start, end)": "whole months from start to end (dates)",
    "YEARS_BETWEEN(start, end)": "whole years from start to end (dates), as an age is counted",
}

_FUNCTION_NAMES = (
    "LEAST GREATEST COALESCE NULLIF IF ABS ROUND FLOOR CEIL CEILING LN EXP POWER POW SQRT "
    "DAYS_BETWEEN MONTHS_BETWEEN YEARS_BETWEEN"
).split()

_HINTS = {
    "DATEDIFF": "use DAYS_BETWEEN(start, end)",
    "DATE_DIFF": "use DAYS_BETWEEN(start, end)",
    "CURRENTDATE": "a strategy is pure: compare with the as_of column instead of today's date",
    "CURRENTTIMESTAMP": "a strategy is pure: compare with the as_of column instead of the clock",
    "CAST": "casts are not needed: numbers are numbers; write dates as DATE 'YYYY-MM-DD'",
    "MOD": "the remainder is not supported (engines disagree on negative numbers)",
    "LOG": "use LN(x), or LN(x) / LN(10) for base 10",
}


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem inside one expression (the caller adds file, line and rule)."""

    code: str
    message: str
    column: str | None = None
    line_offset: int = 0


class _Poison(Exception):
    """A sub-expression that already produced an issue."""


@dataclass
class _Lowering:
    env: Mapping[str, Type | None]
    issues: list[Issue] = field(default_factory=list)

    def fail(self, code: str, message: str, column: str | None = None) -> _Poison:
        self.issues.append(Issue(code, message, column))
        return _Poison()

    # -------------------------------------------------------------- entry
    def lower(self, e: exp.Expression) -> Node:
        handler = _HANDLERS.get(type(e))
        if handler is None:
            raise self._unsupported(e)
        _check_args(self, e)
        return handler(self, e)

    def _unsupported(self, e: exp.Expression) -> _Poison:
        if isinstance(e, exp.Func):
            name = e.name.upper() if isinstance(e, exp.Anonymous) else e.sql_name()
            hint = _HINTS.get(name.replace("_", "") if name.startswith("CURRENT") else name)
            return self.fail(
                "unknown_function",
                f"unknown function {name}"
                + (f": {hint}" if hint else f" (supported: {', '.join(_FUNCTION_NAMES)})"),
            )
        text = e.sql()
        if isinstance(e, exp.Query | exp.Subquery):
            return self.fail(
                "unsupported_sql", f"{text!r}: a strategy expression is one expression, not a query"
            )
        hint = _HINTS.get(type(e).__name__.upper())
        return self.fail("unsupported_sql", f"{text!r} is not supported here" + (f": {hint}" if hint else ""))

    def each(self, items: list[exp.Expression]) -> list[Node]:
        """Lower every item, collecting issues from all of them before giving up."""
        out: list[Node] = []
        poisoned = False
        for item in items:
            try:
                out.append(self.lower(item))
            except _Poison:
                poisoned = True
        if poisoned:
            raise _Poison()
        return out

    # -------------------------------------------------------------- typing helpers
    def want(self, node: Node, want: Type, what: str, e: exp.Expression) -> Node:
        if node.type == want:
            return node
        if node.type == Type.NULL:
            return _retype(node, want)
        raise self.fail(
            "type_mismatch",
            f"{e.sql()!r}: {what} must be {_a(want)}, but {_describe(node)} is {_a(node.type)}",
            _column(node),
        )

    def same(self, nodes: list[Node], what: str, e: exp.Expression) -> tuple[list[Node], Type]:
        types = {n.type for n in nodes} - {Type.NULL}
        if len(types) > 1:
            described = ", ".join(f"{_describe(n)} ({n.type})" for n in nodes if n.type != Type.NULL)
            raise self.fail(
                "type_mismatch",
                f"{e.sql()!r}: {what} must have the same type, got {described}",
                next((c for c in map(_column, nodes) if c), None),
            )
        if not types:
            return nodes, Type.NULL
        (t,) = types
        return [_retype(n, t) for n in nodes], t


def _a(t: Type) -> str:
    return {
        "number": "a number",
        "string": "text",
        "bool": "a truth value",
        "date": "a date",
        "null": "NULL",
    }[t.value]


def _describe(node: Node) -> str:
    if isinstance(node, Col):
        return f"column {node.name}"
    if isinstance(node, Lit):
        if node.type == Type.NULL:
            return "NULL"
        return f"{node.value:g}" if isinstance(node.value, float) else repr(node.value)
    return f"the {node.op.value.upper()} result"


def _column(node: Node) -> str | None:
    if isinstance(node, Col):
        return node.name
    if isinstance(node, Call):
        for arg in node.args:
            found = _column(arg)
            if found:
                return found
    return None


def _retype(node: Node, t: Type) -> Node:
    if node.type != Type.NULL:
        return node
    if isinstance(node, Lit):
        return Lit(None, t)
    if isinstance(node, Call):
        return Call(node.op, tuple(_retype(a, t) for a in node.args), t)
    return node


# ------------------------------------------------------------------ handlers

_ALLOWED_ARGS: dict[type[exp.Expression], set[str]] = {
    exp.Between: {"this", "low", "high"},
    exp.Greatest: {"this", "expressions", "ignore_nulls"},
    exp.Least: {"this", "expressions", "ignore_nulls"},
    exp.Div: {"this", "expression", "typed", "safe"},
    exp.Round: {"this", "decimals"},
    exp.Floor: {"this"},
    exp.Ceil: {"this"},
    exp.Like: {"this", "expression", "negate"},
    exp.In: {"this", "expressions", "is_global", "query", "unnest"},
    exp.Case: {"this", "ifs", "default"},
    exp.If: {"this", "true", "false"},
    exp.Cast: {"this", "to", "_type"},
}


def _check_args(lw: _Lowering, e: exp.Expression) -> None:
    allowed = _ALLOWED_ARGS.get(type(e))
    if allowed is None:
        return
    extra = [k for k, v in e.args.items() if v not in (None, False, []) and k not in allowed]
    if extra:
        raise lw.fail("unsupported_sql", f"{e.sql()!r}: {', '.join(extra)} is not supported here")


def _column_ref(lw: _Lowering, e: exp.Expression) -> Node:
    assert isinstance(e, exp.Column)
    if e.table:
        raise lw.fail("unsupported_sql", f"{e.sql()!r}: write the column name alone, without a table", e.name)
    name = e.name
    if name not in lw.env:
        close = difflib.get_close_matches(name, list(lw.env), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise lw.fail("unknown_column", f"unknown column {name}{hint}", name)
    t = lw.env[name]
    if t is None:  # a variable whose own expression failed: reported there
        raise _Poison()
    return Col(name, t)


def _literal(lw: _Lowering, e: exp.Expression) -> Node:
    assert isinstance(e, exp.Literal)
    if e.is_string:
        return Lit(e.this, Type.STRING)
    value = float(e.this)
    if not math.isfinite(value):
        raise lw.fail("bad_literal", f"number {e.this} is too large")
    return Lit(value, Type.NUMBER)


def _boolean(lw: _Lowering, e: exp.Expression) -> Node:
    return Lit(bool(e.this), Type.BOOL)


def _null(lw: _Lowering, e: exp.Expression) -> Node:
    return Lit(None, Type.NULL)


def _paren(lw: _Lowering, e: exp.Expression) -> Node:
    return lw.lower(e.this)


def _cast(lw: _Lowering, e: exp.Expression) -> Node:
    assert isinstance(e, exp.Cast)
    if e.to.is_type(exp.DataType.Type.DATE) and isinstance(e.this, exp.Literal) and e.this.is_string:
        try:
            return Lit(date.fromisoformat(e.this.this), Type.DATE)
        except ValueError:
            raise lw.fail("bad_literal", f"{e.sql()!r}: not a date (YYYY-MM-DD)") from None
    raise lw.fail("unsupported_sql", f"{e.sql()!r}: {_HINTS['CAST']}")


def _not(lw: _Lowering, e: exp.Expression) -> Node:
    inner = lw.lower(e.this)
    return Call(Op.NOT, (lw.want(inner, Type.BOOL, "the operand of NOT", e),), Type.BOOL)


def _neg(lw: _Lowering, e: exp.Expression) -> Node:
    inner = lw.lower(e.this)
    inner = lw.want(inner, Type.NUMBER, "the operand of unary -", e)
    if isinstance(inner, Lit) and isinstance(inner.value, float):
        return Lit(-inner.value, Type.NUMBER)
    return Call(Op.NEG, (inner,), Type.NUMBER)


def _logic(op: Op) -> Callable[[_Lowering, exp.Expression], Node]:
    def handle(lw: _Lowering, e: exp.Expression) -> Node:
        left, right = lw.each([e.this, e.expression])
        what = f"each side of {op.value.upper()}"
        return Call(op, (lw.want(left, Type.BOOL, what, e), lw.want(right, Type.BOOL, what, e)), Type.BOOL)

    return handle


def _arith(op: Op, symbol: str) -> Callable[[_Lowering, exp.Expression], Node]:
    def handle(lw: _Lowering, e: exp.Expression) -> Node:
        left, right = lw.each([e.this, e.expression])
        if Type.DATE in (left.type, right.type) and op is Op.SUB:
            raise lw.fail(
                "type_mismatch",
                f"{e.sql()!r}: dates cannot be subtracted; use DAYS_BETWEEN(start, end)",
                _column(left) or _column(right),
            )
        what = f"each side of {symbol}"
        return Call(
            op, (lw.want(left, Type.NUMBER, what, e), lw.want(right, Type.NUMBER, what, e)), Type.NUMBER
        )

    return handle


def _compare(op: Op, symbol: str) -> Callable[[_Lowering, exp.Expression], Node]:
    def handle(lw: _Lowering, e: exp.Expression) -> Node:
        left, right = lw.each([e.this, e.expression])
        if Type.NULL in (left.type, right.type) and (isinstance(left, Lit) or isinstance(right, Lit)):
            raise lw.fail(
                "null_comparison",
                f"{e.sql()!r} is never TRUE: a comparison with NULL is NULL; write IS NULL or IS NOT NULL",
                _column(left) or _column(right),
            )
        (left, right), t = lw.same([left, right], f"both sides of {symbol}", e)
        if t == Type.BOOL and op not in (Op.EQ, Op.NE):
            raise lw.fail("type_mismatch", f"{e.sql()!r}: truth values can only be compared with = or <>")
        return Call(op, (left, right), Type.BOOL)

    return handle


def _between(lw: _Lowering, e: exp.Expression) -> Node:
    value, low, high = lw.each([e.this, e.args["low"], e.args["high"]])
    (value, low, high), t = lw.same([value, low, high], "the value and bounds of BETWEEN", e)
    if t == Type.BOOL:
        raise lw.fail("type_mismatch", f"{e.sql()!r}: BETWEEN needs numbers, text or dates")
    return Call(
        Op.AND, (Call(Op.GE, (value, low), Type.BOOL), Call(Op.LE, (value, high), Type.BOOL)), Type.BOOL
    )


def _in(lw: _Lowering, e: exp.Expression) -> Node:
    if e.args.get("query") is not None or e.args.get("unnest") is not None:
        raise lw.fail("unsupported_sql", f"{e.sql()!r}: IN takes a list of constants, not a query")
    value = lw.lower(e.this)
    items = lw.each(list(e.expressions))
    if not items:
        raise lw.fail("unsupported_sql", f"{e.sql()!r}: IN needs at least one value")
    for item in items:
        if not isinstance(item, Lit):
            raise lw.fail("unsupported_sql", f"{e.sql()!r}: IN takes a list of constants", _column(item))
        if item.type == Type.NULL:
            raise lw.fail(
                "null_comparison", f"{e.sql()!r}: NULL in an IN list never matches; test IS NULL separately"
            )
    nodes, t = lw.same([value, *items], "the value and the IN list", e)
    return Call(Op.IN, tuple(nodes), Type.BOOL)


def _like(lw: _Lowering, e: exp.Expression) -> Node:
    value, pattern = lw.each([e.this, e.expression])
    value = lw.want(value, Type.STRING, "the left side of LIKE", e)
    if not (isinstance(pattern, Lit) and pattern.type == Type.STRING):
        raise lw.fail("unsupported_sql", f"{e.sql()!r}: the LIKE pattern must be a text constant")
    if "\\" in str(pattern.value):
        raise lw.fail("unsupported_sql", f"{e.sql()!r}: a LIKE pattern may not contain a backslash")
    node: Node = Call(Op.LIKE, (value, pattern), Type.BOOL)
    return Call(Op.NOT, (node,), Type.BOOL) if e.args.get("negate") else node


def _is(lw: _Lowering, e: exp.Expression) -> Node:
    value = lw.lower(e.this)
    target = e.expression
    if isinstance(target, exp.Null):
        return Call(Op.IS_NULL, (value,), Type.BOOL)
    if isinstance(target, exp.Boolean):
        value = lw.want(value, Type.BOOL, f"the left side of IS {'TRUE' if target.this else 'FALSE'}", e)
        tested = value if target.this else Call(Op.NOT, (value,), Type.BOOL)
        return Call(Op.COALESCE, (tested, Lit(False, Type.BOOL)), Type.BOOL)
    raise lw.fail("unsupported_sql", f"{e.sql()!r}: IS takes NULL, TRUE or FALSE")


def _case(lw: _Lowering, e: exp.Expression) -> Node:
    subject_expr = e.args.get("this")
    ifs: list[exp.Expression] = list(e.args.get("ifs") or [])
    default = e.args.get("default")
    parts = [subject_expr] if subject_expr is not None else []
    for branch in ifs:
        parts += [branch.this, branch.args["true"]]
    if default is not None:
        parts.append(default)
    nodes = lw.each(parts)
    subject = nodes.pop(0) if subject_expr is not None else None
    conds, values = nodes[0 : 2 * len(ifs) : 2], nodes[1 : 2 * len(ifs) : 2]
    otherwise = nodes[-1] if default is not None else Lit(None, Type.NULL)
    if subject is not None:
        conds = [_compare(Op.EQ, "=")(lw, exp.EQ(this=subject_expr, expression=b.this)) for b in ifs]
    else:
        conds = [lw.want(c, Type.BOOL, "a WHEN condition", e) for c in conds]
    typed, t = lw.same([*values, otherwise], "the THEN and ELSE values", e)
    args: list[Node] = []
    for cond, value in zip(conds, typed[:-1], strict=True):
        args += [cond, value]
    args.append(typed[-1])
    return Call(Op.CASE, tuple(args), t)


def _if(lw: _Lowering, e: exp.Expression) -> Node:
    parts = [e.this, e.args["true"]] + ([e.args["false"]] if e.args.get("false") is not None else [])
    nodes = lw.each(parts)
    cond = lw.want(nodes[0], Type.BOOL, "the condition of IF", e)
    otherwise = nodes[2] if len(nodes) == 3 else Lit(None, Type.NULL)
    (then, otherwise), t = lw.same([nodes[1], otherwise], "the two values of IF", e)
    return Call(Op.CASE, (cond, then, otherwise), t)


def _variadic(op: Op, name: str, numeric: bool) -> Callable[[_Lowering, exp.Expression], Node]:
    def handle(lw: _Lowering, e: exp.Expression) -> Node:
        nodes = lw.each([e.this, *e.expressions])
        if numeric:
            nodes = [lw.want(n, Type.NUMBER, f"each argument of {name}", e) for n in nodes]
            return Call(op, tuple(nodes), Type.NUMBER)
        typed, t = lw.same(nodes, f"the arguments of {name}", e)
        return Call(op, tuple(typed), t)

    return handle


def _nullif(lw: _Lowering, e: exp.Expression) -> Node:
    nodes = lw.each([e.this, e.expression])
    typed, t = lw.same(nodes, "the arguments of NULLIF", e)
    return Call(Op.NULLIF, tuple(typed), t)


def _unary_number(op: Op, name: str) -> Callable[[_Lowering, exp.Expression], Node]:
    def handle(lw: _Lowering, e: exp.Expression) -> Node:
        value = lw.want(lw.lower(e.this), Type.NUMBER, f"the argument of {name}", e)
        return Call(op, (value,), Type.NUMBER)

    return handle


def _power(lw: _Lowering, e: exp.Expression) -> Node:
    base, exponent = lw.each([e.this, e.expression])
    what = "each argument of POWER"
    base = lw.want(base, Type.NUMBER, what, e)
    exponent = lw.want(exponent, Type.NUMBER, what, e)
    if isinstance(exponent, Lit) and isinstance(exponent.value, float):
        n = exponent.value
        if n == 0.5:
            return Call(Op.SQRT, (base,), Type.NUMBER)
        if n.is_integer() and 1 <= abs(n) <= 8:
            # x·x·…·x, so that every engine does the same multiplications (maths libraries and
            # Polars' own integer powers differ from one another in the last binary place)
            product: Node = base
            for _ in range(int(abs(n)) - 1):
                product = Call(Op.MUL, (product, base), Type.NUMBER)
            if n < 0:
                product = Call(Op.DIV, (Lit(1.0, Type.NUMBER), product), Type.NUMBER)
            return product
    return Call(Op.POWER, (base, exponent), Type.NUMBER)


def _round(lw: _Lowering, e: exp.Expression) -> Node:
    """``ROUND(x, n)`` is ``FLOOR(x * 10^n + 0.5) / 10^n``: half up, the same on every engine."""
    value = lw.want(lw.lower(e.this), Type.NUMBER, "the argument of ROUND", e)
    digits = 0
    if e.args.get("decimals") is not None:
        node = lw.lower(e.args["decimals"])
        if not (isinstance(node, Lit) and isinstance(node.value, float) and node.value.is_integer()):
            raise lw.fail("unsupported_sql", f"{e.sql()!r}: ROUND's places must be a whole-number constant")
        digits = int(node.value)
        if not -6 <= digits <= 9:
            raise lw.fail("unsupported_sql", f"{e.sql()!r}: ROUND's places must be between -6 and 9")
    return round_half_up(value, digits)


def round_half_up(value: Node, digits: int) -> Node:
    """The tree of ``ROUND(value, digits)``: scale, add a half, floor, scale back."""
    half = Lit(0.5, Type.NUMBER)
    if digits >= 0:
        scale = Lit(float(10**digits), Type.NUMBER)
        scaled = Call(Op.MUL, (value, scale), Type.NUMBER) if digits else value
        floored = Call(Op.FLOOR, (Call(Op.ADD, (scaled, half), Type.NUMBER),), Type.NUMBER)
        return Call(Op.DIV, (floored, scale), Type.NUMBER) if digits else floored
    scale = Lit(float(10**-digits), Type.NUMBER)
    scaled = Call(Op.DIV, (value, scale), Type.NUMBER)
    floored = Call(Op.FLOOR, (Call(Op.ADD, (scaled, half), Type.NUMBER),), Type.NUMBER)
    return Call(Op.MUL, (floored, scale), Type.NUMBER)


_DATE_FUNCTIONS = {
    "DAYS_BETWEEN": Op.DAYS_BETWEEN,
    "MONTHS_BETWEEN": Op.MONTHS_BETWEEN,
    "YEARS_BETWEEN": Op.YEARS_BETWEEN,
}


def _anonymous(lw: _Lowering, e: exp.Expression) -> Node:
    name = e.name.upper()
    op = _DATE_FUNCTIONS.get(name)
    if op is None:
        raise lw._unsupported(e)
    nodes = lw.each(list(e.expressions))
    if len(nodes) != 2:
        raise lw.fail("unsupported_sql", f"{e.sql()!r}: {name} takes two dates (start, end)")
    nodes = [lw.want(n, Type.DATE, f"each argument of {name}", e) for n in nodes]
    return Call(op, tuple(nodes), Type.NUMBER)


def _monthsbetween(lw: _Lowering, e: exp.Expression) -> Node:
    return _anonymous(lw, exp.Anonymous(this="MONTHS_BETWEEN", expressions=[e.this, e.expression]))


_HANDLERS: dict[type[exp.Expression], Callable[[_Lowering, exp.Expression], Node]] = {
    exp.Column: _column_ref,
    exp.Literal: _literal,
    exp.Boolean: _boolean,
    exp.Null: _null,
    exp.Paren: _paren,
    exp.Cast: _cast,
    exp.Not: _not,
    exp.Neg: _neg,
    exp.And: _logic(Op.AND),
    exp.Or: _logic(Op.OR),
    exp.Add: _arith(Op.ADD, "+"),
    exp.Sub: _arith(Op.SUB, "-"),
    exp.Mul: _arith(Op.MUL, "*"),
    exp.Div: _arith(Op.DIV, "/"),
    exp.EQ: _compare(Op.EQ, "="),
    exp.NEQ: _compare(Op.NE, "<>"),
    exp.LT: _compare(Op.LT, "<"),
    exp.LTE: _compare(Op.LE, "<="),
    exp.GT: _compare(Op.GT, ">"),
    exp.GTE: _compare(Op.GE, ">="),
    exp.Between: _between,
    exp.In: _in,
    exp.Like: _like,
    exp.Is: _is,
    exp.Case: _case,
    exp.If: _if,
    exp.Coalesce: _variadic(Op.COALESCE, "COALESCE", numeric=False),
    exp.Least: _variadic(Op.LEAST, "LEAST", numeric=True),
    exp.Greatest: _variadic(Op.GREATEST, "GREATEST", numeric=True),
    exp.Nullif: _nullif,
    exp.Abs: _unary_number(Op.ABS, "ABS"),
    exp.Floor: _unary_number(Op.FLOOR, "FLOOR"),
    exp.Ceil: _unary_number(Op.CEIL, "CEIL"),
    exp.Round: _round,
    exp.Ln: _unary_number(Op.LN, "LN"),
    exp.Exp: _unary_number(Op.EXP, "EXP"),
    exp.Sqrt: _unary_number(Op.SQRT, "SQRT"),
    exp.Pow: _power,
    exp.Anonymous: _anonymous,
}
if hasattr(exp, "MonthsBetween"):  # sqlglot names this one itself
    _HANDLERS[exp.MonthsBetween] = _monthsbetween


def parse(text: str) -> tuple[exp.Expression | None, Issue | None]:
    """sqlglot's tree for one expression, or the syntax problem (with its line within the text)."""
    try:
        tree = sqlglot.parse_one(text)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        offset = max(0, int(first.get("line") or 1) - 1)
        col = first.get("col")
        near = first.get("highlight") or ""
        where = f" at column {col}" if col else ""
        return None, Issue(
            "sql_syntax",
            f"SQL syntax error{where}"
            + (f" near {near!r}" if near else "")
            + f": {first.get('description', exc)}",
            line_offset=offset,
        )
    except TokenError as exc:
        return None, Issue("sql_syntax", f"SQL syntax error: {exc} (an unclosed quote?)")
    if tree is None:
        return None, Issue("sql_syntax", "empty expression")
    return tree, None


def lower(text: str, env: Mapping[str, Type | None]) -> tuple[Node | None, list[Issue]]:
    """Parse and type one expression against ``env`` (column -> type; ``None`` = known but broken).

    Returns the typed tree (``None`` when there were issues) and every issue found.
    """
    tree, syntax = parse(text)
    if syntax is not None:
        return None, [syntax]
    assert tree is not None
    lw = _Lowering(env)
    try:
        node = lw.lower(tree)
    except _Poison:
        return None, lw.issues
    if lw.issues:
        return None, lw.issues
    return fold(node), []


def fold(node: Node) -> Node:
    """Replace every sub-expression that reads no column by its value.

    The value is computed by the Python backend, whose rules are the language's; the engines then
    see only literals there (and Polars never divides one constant by another).
    """
    if not isinstance(node, Call):
        return node
    if not any(isinstance(n, Col) for n in walk(node)):
        return Lit(compile_node(node)({}), node.type)
    return Call(node.op, tuple(fold(a) for a in node.args), node.type)
