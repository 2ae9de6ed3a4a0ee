"""The declarative language of the portrait: sources, aggregates, features, and the calendar.

A **source** says how rows of one lake table reach a customer and which of them were known at
the as-of date. An **aggregate** reduces a customer's rows of one source to one value over a
window of months. A **feature** is either an aggregate of a source or a formula (a SQL
expression) over the customer's base columns and features declared before it.

Column expressions, row filters and formulas are SQL expressions: the Polars engine compiles
them with ``polars.sql_expr``, the Spark engine with ``pyspark.sql.functions.expr``, so one
definition runs on both. Aggregates are compiled by each engine from the :class:`Agg` below.

Point in time, with ``as_of`` the as-of date and the **reference month** the latest month whose
last day is on or before ``as_of``:

* ``monthly`` sources keep rows whose month is at most the reference month; ``m`` is the number
  of months before the reference month (0 = the reference month itself);
* ``dated`` sources keep rows whose date is on or before ``as_of``; ``m`` is the number of whole
  months from that date to ``as_of``;
* ``static`` sources have no date: their rows are taken as the latest extract says.

A window of ``N`` months keeps the rows with ``m < N``; no window keeps all history known at
``as_of``. Windows longer than the history simply see fewer months: coverage features (months
observed) tell a model how much there was.

Exactness: amounts are aggregated as integer fen (sums, squares in 128-bit integers) and turned
into yuan only at the end, so results do not depend on the order in which an engine adds rows:
the same lake gives the same bytes, on every run and on both engines.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Literal

# ------------------------------------------------------------------ calendar


def month_index(day: date) -> int:
    """Months since year 0 (``2025-06-xx`` -> 2025 * 12 + 5): consecutive months differ by one."""
    return day.year * 12 + day.month - 1


def month_of(index: int) -> date:
    """The first day of the month with :func:`month_index` ``index``."""
    return date(index // 12, index % 12 + 1, 1)


def month_end(day: date) -> date:
    return date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def reference_month(as_of: date) -> date:
    """The latest month whose last day is on or before ``as_of`` (its first day).

    On a month end that is the as-of month itself; on any other day, the month before: the
    month-end balance of a month that has not ended is not known yet.
    """
    if as_of == month_end(as_of):
        return as_of.replace(day=1)
    return month_of(month_index(as_of) - 1)


def months_elapsed(start: date, as_of: date) -> int:
    """Whole months from ``start`` to ``as_of`` (negative when ``start`` is after ``as_of``).

    ``2024-01-31 -> 2024-02-29`` is 0 months, ``2024-01-15 -> 2024-02-15`` is 1.
    """
    return month_index(as_of) - month_index(start) - (1 if start.day > as_of.day else 0)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clipped to the month's last day (month ends stay month ends)."""
    index = month_index(day) + months
    first = month_of(index)
    last = calendar.monthrange(first.year, first.month)[1]
    if day == month_end(day):
        return first.replace(day=last)
    return first.replace(day=min(day.day, last))


# ------------------------------------------------------------------ declarations


class Unit(StrEnum):
    """How an integer column at rest becomes a value in the portrait."""

    AMOUNT = "amount"  # int64 fen -> float yuan
    RATE = "rate"  # int64 at scale 1e-8 -> float fraction


UNIT_SCALE: Mapping[Unit, float] = {Unit.AMOUNT: 100.0, Unit.RATE: 100_000_000.0}


class Kind(StrEnum):
    MONTHLY = "monthly"
    DATED = "dated"
    STATIC = "static"


class DType(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STRING = "string"

    @property
    def family(self) -> str:
        """The portrait schema's type names: ``number``, ``bool``, ``string``."""
        return "number" if self in (DType.FLOAT, DType.INT) else self.value


@dataclass(frozen=True, slots=True)
class Col:
    """A column a source offers its aggregates: ``expr`` is SQL over the table's columns.

    A direct reference to an amount or rate column takes that unit from the contract; an
    expression over amounts (``inflow - outflow``) declares ``unit`` itself.
    """

    name: str
    expr: str | None = None
    unit: Unit | None = None

    @property
    def sql(self) -> str:
        return self.expr if self.expr is not None else self.name


@dataclass(frozen=True, slots=True)
class Link:
    """Rows reach their customer through another table: ``source.left_on = table.right_on``.

    ``known``: a date column of the linked table; only its rows dated on or before the as-of date
    are used (an account opened later, a device first seen later).
    """

    table: str
    left_on: str
    right_on: str
    known: str | None = None


CombineHow = Literal["sum", "max"]


@dataclass(frozen=True, slots=True)
class Source:
    """Rows of one lake table, brought to the customer, as known at the as-of date.

    ``time``: the month column (``monthly``) or the date (``dated``) that places a row in time.
    ``dates``: date columns offered to expressions as ``<name>_days`` and ``<name>_months``
    (days and whole months from the date to the as-of date; negative when after it).
    ``combine``: for monthly sources reached through a link (several accounts or loans of one
    customer), how one customer-month is made of its rows (``sum`` or ``max`` per column; a sum
    counts a missing value as zero).
    ``where``: SQL filter on the rows.
    """

    name: str
    table: str
    kind: Kind
    description: str
    columns: tuple[Col, ...]
    time: str | None = None
    link: Link | None = None
    dates: tuple[str, ...] = ()
    combine: Mapping[str, CombineHow] = field(default_factory=dict)
    where: str | None = None

    def column(self, name: str) -> Col:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"source {self.name!r} has no column {name!r}")


class AggKind(StrEnum):
    MEAN = "mean"  # mean of the monthly (or row) values in the window
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    STD = "std"  # sample standard deviation
    CV = "cv"  # coefficient of variation: std / mean
    SLOPE = "slope"  # least-squares slope per month (positive = rising)
    GROWTH = "growth"  # mean of the latest k months / mean of the k before - 1
    COUNT = "count"  # rows (months, events, entities) in the window matching ``where``
    ANY = "any"  # at least one row with a true ``column``
    LAST = "last"  # value of the latest row in the window
    VALUE = "value"  # the value of a one-row-per-customer table
    MONTHS_SINCE = "months_since"  # smallest m among rows matching ``where``


#: Aggregates that add values up: their column must be whole numbers (fen, counts).
ADDITIVE = frozenset({AggKind.MEAN, AggKind.SUM, AggKind.STD, AggKind.CV, AggKind.SLOPE, AggKind.GROWTH})


@dataclass(frozen=True, slots=True)
class Agg:
    kind: AggKind
    column: str | None = None
    where: str | None = None
    k: int | None = None
    """For ``growth``: months in each half."""


@dataclass(frozen=True, slots=True)
class FeatureDef:
    """One portrait column, declared once.

    Exactly one of ``agg`` (with ``source``) or ``formula`` is set. ``fill`` replaces a missing
    value (a customer with no rows in the source): 0 for counts, ``False`` for flags.
    """

    name: str
    description: str
    label_zh: str
    table: str
    window_months: int | None
    dtype: DType
    group: str
    source: str | None = None
    agg: Agg | None = None
    formula: str | None = None
    fill: float | int | bool | None = None

    @property
    def derived(self) -> bool:
        return self.formula is not None

    def how(self) -> str:
        """One line saying how the value is computed (for the catalogue)."""
        if self.formula is not None:
            return f"`{self.formula}`"
        assert self.agg is not None
        agg = self.agg
        what = agg.kind.value
        if agg.column:
            what += f"({agg.column})"
        elif agg.kind in (AggKind.COUNT, AggKind.MONTHS_SINCE):
            what += "()"
        if agg.k:
            what += f", {agg.k} vs {agg.k} months"
        if agg.where:
            what += f" where `{agg.where}`"
        return f"{what} over `{self.source}`"


@dataclass(frozen=True, slots=True)
class ColumnDef:
    """A column every portrait row carries before the features (who and where)."""

    name: str
    description: str
    label_zh: str
    dtype: str  # polars-level: "string", "date", "float"
    expr: str | None = None


# ------------------------------------------------------------------ checks

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


class DefinitionError(ValueError):
    """A feature catalogue that cannot be compiled (raised when the catalogue is checked)."""


def check_catalogue(
    *,
    base: Source,
    sources: tuple[Source, ...],
    columns: tuple[ColumnDef, ...],
    features: tuple[FeatureDef, ...],
    tables: Mapping[str, tuple[str, ...]],
) -> None:
    """Structural checks that need no data: names, references, windows, kinds.

    ``tables`` maps each lake table to its column names. Expression-level checks (unknown
    columns inside SQL) are made by compiling against an empty lake (``tests/portrait``).
    """
    problems: list[str] = []
    by_source = {s.name: s for s in sources}
    if len(by_source) != len(sources):
        problems.append("two sources share a name")
    for src in (base, *sources):
        if src.table not in tables:
            problems.append(f"source {src.name}: unknown table {src.table!r}")
            continue
        if src.kind is not Kind.STATIC and src.time is None:
            problems.append(f"source {src.name}: a {src.kind} source needs a time column")
        if src.time and src.time not in tables[src.table]:
            problems.append(f"source {src.name}: time column {src.time!r} not in {src.table}")
        if src.link is not None:
            if src.link.table not in tables:
                problems.append(f"source {src.name}: unknown link table {src.link.table!r}")
            elif src.link.right_on not in tables[src.link.table]:
                problems.append(f"source {src.name}: {src.link.right_on!r} not in {src.link.table}")
        elif "customer_id" not in tables[src.table]:
            problems.append(f"source {src.name}: {src.table} has no customer_id and no link")
        if src.combine and src.kind is not Kind.MONTHLY:
            problems.append(f"source {src.name}: only monthly sources combine rows")
        names = [c.name for c in src.columns]
        for name in src.combine:
            if name not in names:
                problems.append(f"source {src.name}: combine names unknown column {name!r}")
        if src.link is not None and src.kind is Kind.MONTHLY and set(src.combine) != set(names):
            problems.append(f"source {src.name}: a linked monthly source must combine every column")
    seen: set[str] = {c.name for c in columns} | {"customer_id", "as_of"}
    for feat in features:
        if not _IDENT.match(feat.name):
            problems.append(f"feature {feat.name!r}: names are lower_snake_case")
        if feat.name in seen:
            problems.append(f"feature {feat.name}: declared twice")
        seen.add(feat.name)
        if (feat.agg is None) == (feat.formula is None):
            problems.append(f"feature {feat.name}: needs exactly one of an aggregate or a formula")
            continue
        if not feat.description or not feat.label_zh:
            problems.append(f"feature {feat.name}: needs a description and a Chinese label")
        if feat.window_months is not None and feat.window_months < 1:
            problems.append(f"feature {feat.name}: window must be at least one month")
        if feat.agg is None:
            continue
        src = by_source.get(feat.source or "")
        if src is None:
            problems.append(f"feature {feat.name}: unknown source {feat.source!r}")
            continue
        if feat.table != src.table:
            problems.append(f"feature {feat.name}: owner table {feat.table} is not its source's {src.table}")
        agg = feat.agg
        if agg.column is not None and agg.column not in {c.name for c in src.columns}:
            problems.append(f"feature {feat.name}: source {src.name} has no column {agg.column!r}")
        needs_column = agg.kind not in (AggKind.COUNT, AggKind.MONTHS_SINCE)
        if needs_column and agg.column is None:
            problems.append(f"feature {feat.name}: {agg.kind} needs a column")
        if agg.kind is AggKind.GROWTH:
            if not agg.k or feat.window_months != 2 * agg.k:
                problems.append(f"feature {feat.name}: growth over k months needs a window of 2k")
        timed = (AggKind.SLOPE, AggKind.GROWTH, AggKind.LAST, AggKind.MONTHS_SINCE)
        if agg.kind in timed and src.kind is Kind.STATIC:
            problems.append(f"feature {feat.name}: {agg.kind} needs a source placed in time")
        if feat.window_months is not None and src.kind is Kind.STATIC:
            problems.append(f"feature {feat.name}: a static source has no window")
        if agg.kind is AggKind.VALUE and src.kind is not Kind.STATIC:
            problems.append(f"feature {feat.name}: value is for one-row-per-customer tables")
    if problems:
        raise DefinitionError("the feature catalogue has problems:\n  " + "\n  ".join(problems))
