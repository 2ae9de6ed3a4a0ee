"""The checked, typed expression tree every backend compiles from.

SQL text is parsed by sqlglot and lowered here (:mod:`creditfactory.strategy.sql`) into three
node kinds: a column reference, a literal and a call of one of the operations in :class:`Op`.
Each node carries its type. Sugar is gone by then: ``BETWEEN`` is two comparisons, ``IF`` and
simple ``CASE`` are searched ``CASE``, ``NOT IN`` is ``NOT (… IN …)``. The Polars, Python and
Spark backends translate these nodes one for one; that is what keeps their answers the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

__all__ = ["Call", "Col", "Lit", "Node", "Op", "Type", "columns", "is_true", "like_regex", "walk"]


class Type(StrEnum):
    NUMBER = "number"
    STRING = "string"
    BOOL = "bool"
    DATE = "date"
    NULL = "null"  # the type of a bare NULL literal, until its context gives it one


class Op(StrEnum):
    AND = "and"
    OR = "or"
    NOT = "not"
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"
    NEG = "neg"
    IS_NULL = "is_null"
    IN = "in"  # args: value, then constant literals
    LIKE = "like"  # args: value, constant pattern
    CASE = "case"  # args: cond1, value1, cond2, value2, ..., else
    COALESCE = "coalesce"
    NULLIF = "nullif"
    LEAST = "least"
    GREATEST = "greatest"
    ABS = "abs"
    FLOOR = "floor"
    CEIL = "ceil"
    LN = "ln"
    EXP = "exp"
    POWER = "power"
    SQRT = "sqrt"
    DAYS_BETWEEN = "days_between"
    MONTHS_BETWEEN = "months_between"
    YEARS_BETWEEN = "years_between"
    ADD_DAYS = "add_days"  # args: date, constant whole days (used for offer expiry)
    # args: yuan amount, constant multiple (whole yuan), constant mode "down" | "nearest" | "up".
    # The amount is first rounded half up to the fen; the result is whole yuan. Used for limits,
    # whose amounts the plan keeps between -1 and the product maximum.
    ROUND_MULTIPLE = "round_multiple"


@dataclass(frozen=True, slots=True)
class Col:
    name: str
    type: Type


@dataclass(frozen=True, slots=True)
class Lit:
    value: float | str | bool | date | None
    type: Type


@dataclass(frozen=True, slots=True)
class Call:
    op: Op
    args: tuple[Node, ...]
    type: Type


Node = Col | Lit | Call


def walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Call):
        for arg in node.args:
            yield from walk(arg)


def columns(node: Node) -> list[str]:
    """Names of the columns an expression reads, in order of first use."""
    seen: dict[str, None] = {}
    for n in walk(node):
        if isinstance(n, Col):
            seen.setdefault(n.name, None)
    return list(seen)


def is_true(node: Node) -> Node:
    """``COALESCE(node, FALSE)``: TRUE stays TRUE, FALSE and NULL become FALSE."""
    return Call(Op.COALESCE, (node, Lit(False, Type.BOOL)), Type.BOOL)


_REGEX_SPECIAL = set("\\.^$|?*+()[]{}")


def like_regex(pattern: str) -> str:
    """The regular expression (to be matched against the whole text) of a LIKE pattern.

    ``%`` is any run of characters, ``_`` any one character (line breaks included); everything
    else stands for itself. Patterns have no escape character.
    """
    out = []
    for ch in pattern:
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)
