"""Checks of a frame against its contract declaration, written from ``contract.tables`` alone."""

from __future__ import annotations

import re
from datetime import date

import polars as pl

from creditfactory.contract.tables import RATE_SCALE, ColumnType, Table
from creditfactory.security import idcard

PARQUET_TYPES: dict[ColumnType, pl.DataType] = {
    ColumnType.STRING: pl.String(),
    ColumnType.CODE: pl.String(),
    ColumnType.ID_NUMBER: pl.String(),
    ColumnType.PHONE: pl.String(),
    ColumnType.INT: pl.Int64(),
    ColumnType.FLOAT: pl.Float64(),
    ColumnType.AMOUNT: pl.Decimal(18, 2),
    ColumnType.RATE: pl.Decimal(12, RATE_SCALE),
    ColumnType.DATE: pl.Date(),
    ColumnType.MONTH: pl.Date(),
    ColumnType.BOOL: pl.Boolean(),
}
PHONE = re.compile(r"^1[3-9]\d{9}$")
#: Dates that may lie after the extract date.
FUTURE_DATES = {"maturity_date"}


def problems(table: Table, frame: pl.DataFrame, *, as_of: date) -> list[str]:
    """Every way ``frame`` breaks ``table``'s declaration (columns, types, values, key, rules)."""
    found: list[str] = []
    if tuple(frame.columns) != table.column_names:
        return [f"{table.name}: columns {frame.columns} != {list(table.column_names)}"]
    for col in table.columns:
        s = frame[col.name]
        where = f"{table.name}.{col.name}"
        if s.dtype != PARQUET_TYPES[col.type]:
            found.append(f"{where}: dtype {s.dtype} != {PARQUET_TYPES[col.type]}")
            continue
        if col.required and s.null_count():
            found.append(f"{where}: {s.null_count()} nulls in a required column")
        v = s.drop_nulls()
        if col.codes and not v.is_in(list(col.codes)).all():
            found.append(f"{where}: codes {sorted(set(v.to_list()) - set(col.codes))} not allowed")
        if col.max_length is not None and len(v) and v.str.len_chars().max() > col.max_length:
            found.append(f"{where}: longer than {col.max_length}")
        numeric = v.cast(pl.Float64) if col.type in (ColumnType.AMOUNT, ColumnType.RATE) else v
        if col.min is not None and len(v) and numeric.min() < col.min:
            found.append(f"{where}: {numeric.min()} below {col.min}")
        if col.max is not None and len(v) and numeric.max() > col.max:
            found.append(f"{where}: {numeric.max()} above {col.max}")
        if col.type is ColumnType.MONTH and len(v) and not (v.dt.day() == 1).all():
            found.append(f"{where}: not first days of months")
        if (
            col.type in (ColumnType.DATE, ColumnType.MONTH)
            and col.name not in FUTURE_DATES
            and len(v)
            and v.max() > as_of
        ):
            found.append(f"{where}: dates after {as_of}")
        if col.type is ColumnType.PHONE and not v.str.contains(PHONE.pattern).all():
            found.append(f"{where}: invalid mobile numbers")
        if col.type is ColumnType.ID_NUMBER:
            bad = [x for x in v.to_list() if not idcard.is_valid(x, as_of=as_of)]
            if bad:
                found.append(f"{where}: {len(bad)} invalid ID numbers, e.g. {bad[0]}")
    for cols in (table.key, *((u,) for u in table.unique)):
        dups = frame.select(pl.struct(list(cols)).is_duplicated().sum()).item()
        if dups:
            found.append(f"{table.name}: {dups} rows share a {'/'.join(cols)}")
    found += rule_problems(table, frame)
    return found


def rule_problems(table: Table, frame: pl.DataFrame) -> list[str]:
    checks: dict[str, pl.Expr] = {
        "id_matches_birth_date": pl.col("id_number").str.slice(6, 8).str.to_date("%Y%m%d")
        == pl.col("birth_date"),
        "id_matches_gender": pl.when(pl.col("id_number").str.slice(16, 1).cast(pl.Int64) % 2 == 1)
        .then(pl.lit("M"))
        .otherwise(pl.lit("F"))
        == pl.col("gender"),
        "closed_after_opened": pl.col("closed_date").is_null()
        | (pl.col("closed_date") >= pl.col("opened_date")),
        "inflow_covers_components": pl.col("payroll_in") + pl.col("acquiring_in") + pl.col("subsidy_in")
        <= pl.col("inflow"),
        "maturity_after_open": pl.col("maturity_date") > pl.col("open_date"),
    }
    found = []
    for rule in table.rules:
        if rule.name == "negative_value_matches_kind":
            ids = frame.filter(pl.col("kind") == "id_number")["value"].to_list()
            phones = frame.filter(pl.col("kind") == "phone")["value"]
            if not all(idcard.is_valid(x) for x in ids) or not phones.str.contains(PHONE.pattern).all():
                found.append(f"{table.name}: rule {rule.name} broken")
            continue
        broken = frame.select((~checks[rule.name]).fill_null(True).sum()).item()
        if broken:
            found.append(f"{table.name}: rule {rule.name} broken by {broken} rows")
    return found
