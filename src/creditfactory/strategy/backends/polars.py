"""Compile the typed tree to Polars expressions (vectorised, no Python per row).

Input columns are read through ``refs``: the plan builds one expression per input column that
brings it to the strategy's type (numbers to Float64, with NaN and infinities as NULL; categoricals to text,
datetimes to dates), so that the translation below sees only four types. Variables and the
plan's own intermediate columns are plain ``pl.col`` references.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from creditfactory.strategy.ir import Call, Col, Lit, Node, Op, Type, columns, like_regex

__all__ = ["DTYPES", "compile_node", "input_ref"]

DTYPES: dict[Type, pl.DataType] = {
    Type.NUMBER: pl.Float64(),
    Type.STRING: pl.String(),
    Type.BOOL: pl.Boolean(),
    Type.DATE: pl.Date(),
    Type.NULL: pl.Null(),
}

_NUMERIC = (
    pl.Int8,
    pl.Int16,
    pl.Int32,
    pl.Int64,
    pl.UInt8,
    pl.UInt16,
    pl.UInt32,
    pl.UInt64,
    pl.Float32,
    pl.Float64,
    pl.Decimal,
)


def input_ref(name: str, want: Type, dtype: pl.DataType) -> pl.Expr | str:
    """The expression that reads input column ``name`` as type ``want``, or why it cannot."""
    col = pl.col(name)
    if dtype == pl.Null:
        return col.cast(DTYPES[want])
    if want == Type.NUMBER:
        if dtype == pl.Float64:
            return pl.when(col.is_finite()).then(col)
        if dtype == pl.Float32:
            as64 = col.cast(pl.Float64)
            return pl.when(as64.is_finite()).then(as64)
        if isinstance(dtype, _NUMERIC) or dtype in _NUMERIC:
            return col.cast(pl.Float64)
    elif want == Type.STRING:
        if dtype == pl.String:
            return col
        if isinstance(dtype, pl.Categorical | pl.Enum) or dtype in (pl.Categorical, pl.Enum):
            return col.cast(pl.String)
    elif want == Type.BOOL:
        if dtype == pl.Boolean:
            return col
    elif want == Type.DATE:
        if dtype == pl.Date:
            return col
        if isinstance(dtype, pl.Datetime) or dtype == pl.Datetime:
            return col.dt.date()
    return f"column {name} is {dtype}, the strategy reads it as {want.value}"


def _lit(node: Lit) -> pl.Expr:
    return pl.lit(node.value, dtype=DTYPES[node.type])


def compile_node(node: Node, refs: Mapping[str, pl.Expr]) -> pl.Expr:
    """The Polars expression of ``node``; input columns come from ``refs``, others by name."""
    if isinstance(node, Col):
        ref = refs.get(node.name)
        return ref if ref is not None else pl.col(node.name)
    if isinstance(node, Lit):
        return _lit(node)
    return _call(node, refs)


def _nonzero_constant(node: Node) -> bool:
    return isinstance(node, Lit) and isinstance(node.value, float) and node.value != 0


def _typed_null(t: Type) -> pl.Expr:
    return pl.lit(None, dtype=DTYPES[t])


def _forward_months(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    months = (end.dt.year().cast(pl.Int64) * 12 + end.dt.month().cast(pl.Int64)) - (
        start.dt.year().cast(pl.Int64) * 12 + start.dt.month().cast(pl.Int64)
    )
    return (months - (end.dt.day() < start.dt.day()).cast(pl.Int64)).cast(pl.Float64)


def _months_between(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    return pl.when(end >= start).then(_forward_months(start, end)).otherwise(-_forward_months(end, start))


_MIRROR = {Op.EQ: Op.EQ, Op.NE: Op.NE, Op.LT: Op.GT, Op.LE: Op.GE, Op.GT: Op.LT, Op.GE: Op.LE}


def _call(node: Call, refs: Mapping[str, pl.Expr]) -> pl.Expr:
    op = node.op
    if op in _MIRROR and not columns(node.args[0]) and columns(node.args[1]):
        # ``3 < x`` is written ``x > 3``: with a constant on the left, Polars (2.1) gives a result
        # of length 1 when the right side is a CASE whose branches are all constant in the frame.
        return _call(Call(_MIRROR[op], (node.args[1], node.args[0]), node.type), refs)
    a = [compile_node(arg, refs) for arg in node.args]
    match op:
        case Op.AND:
            return a[0] & a[1]
        case Op.OR:
            return a[0] | a[1]
        case Op.NOT:
            return ~a[0]
        case Op.EQ:
            return a[0] == a[1]
        case Op.NE:
            return a[0] != a[1]
        case Op.LT:
            return a[0] < a[1]
        case Op.LE:
            return a[0] <= a[1]
        case Op.GT:
            return a[0] > a[1]
        case Op.GE:
            return a[0] >= a[1]
        case Op.ADD:
            return a[0] + a[1]
        case Op.SUB:
            return a[0] - a[1]
        case Op.MUL:
            return a[0] * a[1]
        case Op.DIV:
            if _nonzero_constant(node.args[1]):
                # Polars divides by a scalar by multiplying with its reciprocal, which can be one
                # unit in the last place away from the true quotient; ``a * 0 + c`` makes the
                # divisor a column, so that the division is IEEE division as on Spark and Python.
                return a[0] / (a[0] * 0.0 + a[1])
            return pl.when(a[1] != 0).then(a[0] / a[1]).otherwise(_typed_null(Type.NUMBER))
        case Op.NEG:
            return -a[0]
        case Op.IS_NULL:
            return a[0].is_null()
        case Op.IN:
            values = [arg.value for arg in node.args[1:] if isinstance(arg, Lit)]
            return a[0].is_in(pl.Series(values, dtype=DTYPES[node.args[0].type]).implode())
        case Op.LIKE:
            pattern = node.args[1]
            assert isinstance(pattern, Lit) and isinstance(pattern.value, str)
            return a[0].str.contains("(?s)^" + like_regex(pattern.value) + "$")
        case Op.CASE:
            pairs = list(zip(a[0:-1:2], a[1:-1:2], strict=True))
            chain = pl.when(pairs[0][0]).then(pairs[0][1])
            for cond, value in pairs[1:]:
                chain = chain.when(cond).then(value)  # type: ignore[assignment]
            return chain.otherwise(a[-1])
        case Op.COALESCE:
            return pl.coalesce(a)
        case Op.NULLIF:
            same = _call(Call(Op.EQ, node.args, Type.BOOL), refs)
            return pl.when(same).then(_typed_null(node.type)).otherwise(a[0])
        case Op.LEAST:
            return pl.min_horizontal(a)
        case Op.GREATEST:
            return pl.max_horizontal(a)
        case Op.ABS:
            return a[0].abs()
        case Op.FLOOR:
            return a[0].floor()
        case Op.CEIL:
            return a[0].ceil()
        case Op.LN:
            return pl.when(a[0] > 0).then(a[0].log()).otherwise(_typed_null(Type.NUMBER))
        case Op.SQRT:
            return pl.when(a[0] >= 0).then(a[0].sqrt()).otherwise(_typed_null(Type.NUMBER))
        case Op.EXP:
            r = a[0].exp()
            return pl.when(r.is_finite()).then(r).otherwise(_typed_null(Type.NUMBER))
        case Op.POWER:
            r = a[0].pow(a[1])
            return pl.when(r.is_finite()).then(r).otherwise(_typed_null(Type.NUMBER))
        case Op.DAYS_BETWEEN:
            return (a[1] - a[0]).dt.total_days().cast(pl.Float64)
        case Op.MONTHS_BETWEEN:
            return _months_between(a[0], a[1])
        case Op.YEARS_BETWEEN:
            m = _months_between(a[0], a[1])
            return pl.when(m >= 0).then((m / 12).floor()).otherwise(-((-m) / 12).floor())
        case Op.ROUND_MULTIPLE:
            multiple, mode = node.args[1], node.args[2]
            assert isinstance(multiple, Lit) and isinstance(multiple.value, float) and isinstance(mode, Lit)
            m = int(multiple.value)
            step = m * 100
            fen = (a[0] * 100.0 + 0.5).floor().cast(pl.Int64)
            if mode.value == "down":
                units = fen // step
            elif mode.value == "up":
                units = -((-fen) // step)
            else:
                units = (fen * 2 + step) // (2 * step)
            return (units * m).cast(pl.Float64)
        case Op.ADD_DAYS:
            days = node.args[1]
            assert isinstance(days, Lit) and isinstance(days.value, float)
            return a[0] + pl.duration(days=int(days.value))
    raise ValueError(f"no Polars translation for {op}")  # pragma: no cover - every Op is handled above
