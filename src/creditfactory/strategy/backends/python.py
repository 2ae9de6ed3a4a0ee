"""Compile the typed tree to Python closures: one row, no frame, a few microseconds.

A compiled node is a function of the row (a dict of column -> value, ``None`` for NULL) that
returns the value. Numbers are floats, dates :class:`datetime.date`. The rules for NULL, for
division by zero and for results that are not finite numbers are those of the Polars and Spark
backends; the parity tests compare them row by row.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Any

from creditfactory.strategy.ir import Call, Col, Lit, Node, Op, like_regex

__all__ = ["Fn", "compile_node", "floor", "months_between"]

Fn = Callable[[Mapping[str, Any]], Any]

#: Doubles at or beyond 2**52 are whole numbers already.
_WHOLE = 2.0**52


def floor(x: float) -> float:
    return float(math.floor(x)) if abs(x) < _WHOLE else x


def ceil(x: float) -> float:
    return float(math.ceil(x)) if abs(x) < _WHOLE else x


def _forward_months(start: date, end: date) -> int:
    months = (end.year * 12 + end.month) - (start.year * 12 + start.month)
    return months - (1 if end.day < start.day else 0)


def months_between(start: date, end: date) -> float:
    """Whole months from ``start`` to ``end`` (negative when ``end`` is earlier)."""
    if end >= start:
        return float(_forward_months(start, end))
    return -float(_forward_months(end, start))


def years_between(start: date, end: date) -> float:
    m = months_between(start, end)
    return float(m // 12) if m >= 0 else -float(-m // 12)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _pow(a: float, b: float) -> float | None:
    try:
        return _finite(math.pow(a, b))
    except (OverflowError, ValueError, ZeroDivisionError):
        return None


def _exp(a: float) -> float | None:
    try:
        return _finite(math.exp(a))
    except OverflowError:
        return None


_COMPARE: dict[Op, Callable[[Any, Any], bool]] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}

_ARITH: dict[Op, Callable[[float, float], float]] = {
    Op.ADD: operator.add,
    Op.SUB: operator.sub,
    Op.MUL: operator.mul,
}

_UNARY: dict[Op, Callable[[Any], Any]] = {
    Op.NEG: operator.neg,
    Op.ABS: abs,
    Op.FLOOR: floor,
    Op.CEIL: ceil,
    Op.LN: lambda x: math.log(x) if x > 0 else None,
    Op.SQRT: lambda x: math.sqrt(x) if x >= 0 else None,
    Op.EXP: _exp,
}

_UNITS: dict[str, Callable[[int, int], int]] = {
    "down": lambda fen, step: fen // step,
    "up": lambda fen, step: -(-fen // step),
    "nearest": lambda fen, step: (2 * fen + step) // (2 * step),
}

_DATES: dict[Op, Callable[[date, date], float]] = {
    Op.DAYS_BETWEEN: lambda a, b: float((b - a).days),
    Op.MONTHS_BETWEEN: months_between,
    Op.YEARS_BETWEEN: years_between,
}


def compile_node(node: Node) -> Fn:
    """A function of one row that computes ``node``."""
    if isinstance(node, Col):
        name = node.name
        return lambda row: row[name]
    if isinstance(node, Lit):
        value = node.value
        return lambda row: value
    return _call(node)


def _call(node: Call) -> Fn:
    op = node.op
    args = [compile_node(a) for a in node.args]
    if op is Op.AND:
        fa, fb = args

        def and_(row: Mapping[str, Any]) -> bool | None:
            a = fa(row)
            if a is False:
                return False
            b = fb(row)
            if b is False:
                return False
            return None if a is None or b is None else True

        return and_
    if op is Op.OR:
        fa, fb = args

        def or_(row: Mapping[str, Any]) -> bool | None:
            a = fa(row)
            if a is True:
                return True
            b = fb(row)
            if b is True:
                return True
            return None if a is None or b is None else False

        return or_
    if op is Op.NOT:
        (fa,) = args
        return lambda row: None if (a := fa(row)) is None else not a
    if op in _COMPARE or op in _ARITH:
        fn = _COMPARE.get(op) or _ARITH[op]
        fa, fb = args
        left, right = node.args
        if isinstance(left, Col) and isinstance(right, Lit) and right.value is not None:
            # the commonest shape (``age > 60``), without a call per side
            name, constant = left.name, right.value

            def column_constant(row: Mapping[str, Any]) -> Any:
                a = row[name]
                return None if a is None else fn(a, constant)

            return column_constant

        def binary(row: Mapping[str, Any]) -> Any:
            a = fa(row)
            if a is None:
                return None
            b = fb(row)
            return None if b is None else fn(a, b)

        return binary
    if op is Op.DIV:
        fa, fb = args

        def div(row: Mapping[str, Any]) -> float | None:
            a, b = fa(row), fb(row)
            if a is None or b is None or b == 0:
                return None
            return float(a / b)

        return div
    if op in _UNARY:
        fn1 = _UNARY[op]
        (fa,) = args
        return lambda row: None if (a := fa(row)) is None else fn1(a)
    if op is Op.POWER:
        fa, fb = args

        def power(row: Mapping[str, Any]) -> float | None:
            a, b = fa(row), fb(row)
            return None if a is None or b is None else _pow(a, b)

        return power
    if op is Op.IS_NULL:
        (fa,) = args
        return lambda row: fa(row) is None
    if op is Op.IN:
        fa = args[0]
        values = frozenset(a.value for a in node.args[1:] if isinstance(a, Lit))
        return lambda row: None if (a := fa(row)) is None else a in values
    if op is Op.LIKE:
        fa = args[0]
        pattern = node.args[1]
        assert isinstance(pattern, Lit) and isinstance(pattern.value, str)
        match = re.compile(like_regex(pattern.value), re.DOTALL).fullmatch
        return lambda row: None if (a := fa(row)) is None else match(a) is not None
    if op is Op.CASE:
        pairs = list(zip(args[0:-1:2], args[1:-1:2], strict=True))
        otherwise = args[-1]

        def case(row: Mapping[str, Any]) -> Any:
            for cond, value in pairs:
                if cond(row) is True:
                    return value(row)
            return otherwise(row)

        return case
    if op is Op.COALESCE:

        def coalesce(row: Mapping[str, Any]) -> Any:
            for fn_ in args:
                value = fn_(row)
                if value is not None:
                    return value
            return None

        return coalesce
    if op is Op.NULLIF:
        fa, fb = args

        def nullif(row: Mapping[str, Any]) -> Any:
            a = fa(row)
            b = fb(row)
            return None if a is not None and b is not None and a == b else a

        return nullif
    if op in (Op.LEAST, Op.GREATEST):
        pick = min if op is Op.LEAST else max

        def extreme(row: Mapping[str, Any]) -> Any:
            values = [v for fn_ in args if (v := fn_(row)) is not None]
            return pick(values) if values else None

        return extreme
    if op in _DATES:
        fd = _DATES[op]
        fa, fb = args

        def between(row: Mapping[str, Any]) -> float | None:
            a, b = fa(row), fb(row)
            return None if a is None or b is None else fd(a, b)

        return between
    if op is Op.ROUND_MULTIPLE:
        fa = args[0]
        multiple, mode = node.args[1], node.args[2]
        assert isinstance(multiple, Lit) and isinstance(multiple.value, float) and isinstance(mode, Lit)
        m = int(multiple.value)
        step = m * 100
        units = _UNITS[str(mode.value)]

        def round_multiple(row: Mapping[str, Any]) -> float | None:
            a = fa(row)
            if a is None:
                return None
            fen = math.floor(a * 100.0 + 0.5)
            return float(units(fen, step) * m)

        return round_multiple
    if op is Op.ADD_DAYS:
        fa = args[0]
        days = node.args[1]
        assert isinstance(days, Lit) and isinstance(days.value, float)
        delta = timedelta(days=int(days.value))
        return lambda row: None if (a := fa(row)) is None else a + delta
    raise ValueError(f"no Python translation for {op}")  # pragma: no cover - every Op is handled above
