"""Compile the typed tree to Spark SQL text, through sqlglot's Spark dialect.

Numbers are DOUBLE everywhere (input columns are cast, literals written as ``1.5D``), so that
Spark does the same IEEE arithmetic as Polars and Python rather than DECIMAL arithmetic. Input
numbers that are NaN or infinite are read as NULL, as in the other backends. Every guard the
other backends apply (division by zero, LN and SQRT outside their domain, results that are not
finite) is written out as a ``CASE``, so the text does not depend on Spark's ANSI setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot import exp, parse_one

from creditfactory.strategy.ir import Call, Col, Lit, Node, Op, Type

__all__ = ["compile_node", "project", "to_sql"]

_SPARK_TYPES = {
    Type.NUMBER: "DOUBLE",
    Type.STRING: "STRING",
    Type.BOOL: "BOOLEAN",
    Type.DATE: "DATE",
}

#: Doubles at or beyond 2**52 are whole numbers already (and FLOOR would turn them into BIGINT).
_WHOLE = 4503599627370496.0


def _cast(e: exp.Expression, t: str) -> exp.Expression:
    return exp.Cast(this=e, to=exp.DataType.build(t))


def _fn(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


_SELF_CONTAINED = (
    exp.Column,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Cast,
    exp.Case,
    exp.Anonymous,
    exp.Abs,
    exp.Ln,
    exp.Exp,
    exp.Sqrt,
    exp.Coalesce,
    exp.Nullif,
)


def _p(e: exp.Expression) -> exp.Expression:
    """Parenthesise an operand unless it prints as an atom or a call (sqlglot prints the tree as
    built, so ``NOT (a AND b)`` needs its parentheses in the tree)."""
    return e if isinstance(e, _SELF_CONTAINED) else exp.Paren(this=e)


def _double(value: float) -> exp.Expression:
    text = repr(value)
    literal = exp.Literal.number(text.lstrip("-") + "D")
    return exp.Neg(this=literal) if text.startswith("-") else literal


def _lit(node: Lit) -> exp.Expression:
    if node.value is None:
        t = _SPARK_TYPES.get(node.type)
        return _cast(exp.Null(), t) if t else exp.Null()
    if node.type == Type.NUMBER:
        assert isinstance(node.value, float)
        return _double(node.value)
    if node.type == Type.BOOL:
        return exp.Boolean(this=bool(node.value))
    if node.type == Type.DATE:
        return _cast(exp.Literal.string(str(node.value)), "DATE")
    return exp.Literal.string(str(node.value))


def input_column(name: str, t: Type) -> exp.Expression:
    """An input column read as the strategy's type (numbers as DOUBLE; NaN and infinities as NULL)."""
    col = exp.column(name, quoted=True)
    if t == Type.NUMBER:
        return _finite(_cast(col, "DOUBLE"))
    if t == Type.DATE:
        return _cast(col, "DATE")
    return col


def compile_node(
    node: Node, inputs: Mapping[str, Type], inline: Mapping[str, Node] | None = None
) -> exp.Expression:
    """sqlglot's tree for ``node``; ``inputs`` are read with :func:`input_column`, ``inline``
    names intermediate columns whose trees are written in place."""
    if isinstance(node, Col):
        if inline and node.name in inline:
            return _p(compile_node(inline[node.name], inputs, inline))
        if node.name in inputs:
            return input_column(node.name, inputs[node.name])
        return exp.column(node.name, quoted=True)
    if isinstance(node, Lit):
        return _lit(node)
    return _call(node, inputs, inline)


def to_sql(e: exp.Expression) -> str:
    return e.sql(dialect="spark")


def _null_double() -> exp.Expression:
    return _cast(exp.Null(), "DOUBLE")


def _finite(value: exp.Expression) -> exp.Expression:
    """NULL for NaN and ±infinity, the value otherwise (the value is written once)."""
    not_nan = _fn("NANVL", value, _null_double())
    for text in ("Infinity", "-Infinity"):
        not_nan = exp.Nullif(this=not_nan, expression=_cast(exp.Literal.string(text), "DOUBLE"))
    return not_nan


def _whole(name: str, x: exp.Expression) -> exp.Expression:
    small = exp.LT(this=exp.Abs(this=x), expression=_double(_WHOLE))
    return exp.Case(ifs=[exp.If(this=small, true=_cast(_fn(name, x), "DOUBLE"))], default=x)


def _forward_months(start: exp.Expression, end: exp.Expression) -> exp.Expression:
    def index(d: exp.Expression) -> exp.Expression:
        return exp.Add(
            this=exp.Mul(this=_fn("YEAR", d), expression=exp.Literal.number(12)), expression=_fn("MONTH", d)
        )

    earlier_day = exp.Case(
        ifs=[
            exp.If(
                this=exp.LT(this=_fn("DAY", end), expression=_fn("DAY", start)), true=exp.Literal.number(1)
            )
        ],
        default=exp.Literal.number(0),
    )
    return _cast(
        exp.Sub(
            this=exp.Sub(this=index(end), expression=exp.Paren(this=index(start))), expression=earlier_day
        ),
        "DOUBLE",
    )


def _months_between(start: exp.Expression, end: exp.Expression) -> exp.Expression:
    return exp.Case(
        ifs=[exp.If(this=exp.GTE(this=end, expression=start), true=_forward_months(start, end))],
        default=exp.Neg(this=exp.Paren(this=_forward_months(end, start))),
    )


_BINARY: dict[Op, type[exp.Expression]] = {
    Op.AND: exp.And,
    Op.OR: exp.Or,
    Op.EQ: exp.EQ,
    Op.NE: exp.NEQ,
    Op.LT: exp.LT,
    Op.LE: exp.LTE,
    Op.GT: exp.GT,
    Op.GE: exp.GTE,
    Op.ADD: exp.Add,
    Op.SUB: exp.Sub,
    Op.MUL: exp.Mul,
}


def _call(node: Call, inputs: Mapping[str, Type], inline: Mapping[str, Node] | None) -> exp.Expression:
    op = node.op
    a = [_p(compile_node(arg, inputs, inline)) for arg in node.args]
    if op in _BINARY:
        return _BINARY[op](this=a[0], expression=a[1])
    match op:
        case Op.NOT:
            return exp.Not(this=a[0])
        case Op.NEG:
            return exp.Neg(this=a[0])
        case Op.DIV:
            divisor = node.args[1]
            if isinstance(divisor, Lit) and isinstance(divisor.value, float) and divisor.value != 0:
                return exp.Div(this=a[0], expression=a[1])
            return exp.Div(this=a[0], expression=exp.Nullif(this=a[1], expression=_double(0.0)))
        case Op.IS_NULL:
            return exp.Is(this=a[0], expression=exp.Null())
        case Op.IN:
            return exp.In(this=a[0], expressions=a[1:])
        case Op.LIKE:
            return exp.Like(this=a[0], expression=a[1])
        case Op.CASE:
            ifs = [exp.If(this=c, true=v) for c, v in zip(a[0:-1:2], a[1:-1:2], strict=True)]
            return exp.Case(ifs=ifs, default=a[-1])
        case Op.COALESCE:
            return exp.Coalesce(this=a[0], expressions=a[1:])
        case Op.NULLIF:
            return exp.Nullif(this=a[0], expression=a[1])
        case Op.LEAST:
            return _fn("LEAST", *a)
        case Op.GREATEST:
            return _fn("GREATEST", *a)
        case Op.ABS:
            return exp.Abs(this=a[0])
        case Op.FLOOR:
            return _whole("FLOOR", a[0])
        case Op.CEIL:
            return _whole("CEIL", a[0])
        case Op.LN:
            return exp.Ln(this=a[0])  # NULL for x <= 0 on Spark, with or without ANSI mode
        case Op.SQRT:
            return _fn("NANVL", exp.Sqrt(this=a[0]), _null_double())
        case Op.EXP:
            return _finite(exp.Exp(this=a[0]))
        case Op.POWER:
            return _finite(_fn("POWER", a[0], a[1]))
        case Op.DAYS_BETWEEN:
            return _cast(_fn("DATEDIFF", a[1], a[0]), "DOUBLE")
        case Op.MONTHS_BETWEEN:
            return _months_between(a[0], a[1])
        case Op.YEARS_BETWEEN:
            m = exp.Paren(this=_months_between(a[0], a[1]))
            twelve = _double(12.0)
            up = _whole("FLOOR", exp.Div(this=m, expression=twelve))
            down = exp.Neg(
                this=exp.Paren(
                    this=_whole("FLOOR", exp.Div(this=exp.Paren(this=exp.Neg(this=m)), expression=twelve))
                )
            )
            return exp.Case(
                ifs=[exp.If(this=exp.GTE(this=m, expression=_double(0.0)), true=up)], default=down
            )
        case Op.ROUND_MULTIPLE:
            multiple, mode = node.args[1], node.args[2]
            assert isinstance(multiple, Lit) and isinstance(multiple.value, float) and isinstance(mode, Lit)
            m = int(multiple.value)
            step = _double(float(m * 100))
            fen = _cast(
                _fn(
                    "FLOOR",
                    exp.Add(this=exp.Mul(this=a[0], expression=_double(100.0)), expression=_double(0.5)),
                ),
                "DOUBLE",
            )
            if mode.value == "down":
                units = _fn("FLOOR", exp.Div(this=fen, expression=step))
            elif mode.value == "up":
                units = _fn("CEIL", exp.Div(this=fen, expression=step))
            else:
                doubled = exp.Add(this=exp.Mul(this=_double(2.0), expression=fen), expression=step)
                units = _fn(
                    "FLOOR", exp.Div(this=exp.Paren(this=doubled), expression=_double(float(2 * m * 100)))
                )
            return _cast(exp.Mul(this=units, expression=exp.Literal.number(m)), "DOUBLE")
        case Op.ADD_DAYS:
            days = node.args[1]
            assert isinstance(days, Lit) and isinstance(days.value, float)
            return _fn("DATE_ADD", a[0], exp.Literal.number(int(days.value)))
    raise ValueError(f"no Spark translation for {op}")  # pragma: no cover - every Op is handled above


def _references(sql: str) -> set[str]:
    return {c.name for c in parse_one(sql, dialect="spark").find_all(exp.Column)}


def project(df: Any, derived: Sequence[tuple[str, str]]) -> Any:
    """``df`` with the ``derived`` (column, Spark SQL) pairs added, each of which may read the
    columns of ``df`` and of the pairs before it, in as few projections as their dependencies
    allow: every projection copies the row, so one per column would copy it a dozen times.

    A pair that redefines a column already there is added in order, in a projection of its own."""
    existing = set(df.columns)
    names = [n for n, _ in derived]
    if len(set(names)) < len(names) or existing & set(names):
        for name, sql in derived:
            kept = [f"`{c}`" for c in df.columns if c != name]
            df = df.selectExpr(*kept, f"{sql} AS `{name}`")
        return df
    depth: dict[str, int] = {}
    for name, sql in derived:
        depth[name] = 1 + max((depth[r] for r in _references(sql) if r in depth), default=0)
    for level in range(1, max(depth.values(), default=0) + 1):
        added = [f"{sql} AS `{name}`" for name, sql in derived if depth[name] == level]
        df = df.selectExpr(*[f"`{c}`" for c in df.columns], *added)
    return df
