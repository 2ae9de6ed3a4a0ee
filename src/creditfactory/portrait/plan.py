"""What both engines need to know about the catalogue, worked out once.

:func:`catalogue_plan` checks the declarations and returns, for each source, the features
computed from it and the unit of each of its columns; the derived features in the order they
are evaluated; and the lake tables a build reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache

from creditfactory import contract
from creditfactory.portrait import features as catalogue
from creditfactory.portrait.model import (
    Col,
    FeatureDef,
    Source,
    Unit,
    check_catalogue,
    month_index,
    reference_month,
)

_CONTRACT_UNITS = {contract.ColumnType.AMOUNT: Unit.AMOUNT, contract.ColumnType.RATE: Unit.RATE}


def lake_columns(table: contract.Table) -> tuple[str, ...]:
    """A contract table's columns as stored in the lake (ID numbers and phones as tokens)."""
    out: list[str] = []
    for col in table.columns:
        if col.type in (contract.ColumnType.ID_NUMBER, contract.ColumnType.PHONE) or (
            col.pii and table.name == "negative_list"
        ):
            out.append(f"{col.name}_token")
        elif not col.pii:
            out.append(col.name)
    return tuple(out)


def column_unit(source: Source, col: Col) -> Unit | None:
    """The unit of a source column: declared, or the contract's for a direct column reference."""
    if col.unit is not None:
        return col.unit
    if col.expr is not None:
        return None
    table = contract.get_table(source.table)
    try:
        return _CONTRACT_UNITS.get(table.column(col.name).type)
    except KeyError:
        return None


@dataclass(frozen=True, slots=True)
class SourcePlan:
    source: Source
    features: tuple[FeatureDef, ...]
    units: Mapping[str, Unit | None]


@dataclass(frozen=True, slots=True)
class CataloguePlan:
    base: Source
    sources: tuple[SourcePlan, ...]
    derived: tuple[FeatureDef, ...]
    features: tuple[FeatureDef, ...]
    tables: tuple[str, ...]
    """Every lake table a build reads, in contract order."""


@dataclass(frozen=True, slots=True)
class AsOf:
    """The as-of date and the numbers both engines derive from it."""

    as_of: date
    ref_month: date
    ref_index: int

    @classmethod
    def at(cls, as_of: date) -> AsOf:
        ref = reference_month(as_of)
        return cls(as_of=as_of, ref_month=ref, ref_index=month_index(ref))


@cache
def catalogue_plan() -> CataloguePlan:
    """The checked plan of the built-in catalogue (:mod:`creditfactory.portrait.features`)."""
    return make_plan(base=catalogue.BASE, sources=catalogue.SOURCES, features=catalogue.FEATURES)


def make_plan(
    *, base: Source, sources: tuple[Source, ...], features: tuple[FeatureDef, ...]
) -> CataloguePlan:
    tables = {t.name: lake_columns(t) for t in contract.TABLES}
    check_catalogue(base=base, sources=sources, columns=catalogue.COLUMNS, features=features, tables=tables)
    per_source = tuple(
        SourcePlan(
            source=src,
            features=tuple(f for f in features if f.source == src.name),
            units={c.name: column_unit(src, c) for c in src.columns},
        )
        for src in sources
    )
    used: set[str] = {base.table}
    for sp in per_source:
        if sp.features:
            used.add(sp.source.table)
            if sp.source.link is not None:
                used.add(sp.source.link.table)
    return CataloguePlan(
        base=base,
        sources=tuple(sp for sp in per_source if sp.features),
        derived=tuple(f for f in features if f.derived),
        features=features,
        tables=tuple(t.name for t in contract.TABLES if t.name in used),
    )
