"""Row validation of one batch of an extract table, vectorised with Polars (pure).

:func:`validate` takes a frame as read from a file (values as text or as native Parquet types,
plus ``_file`` and ``_row``), checks every column and rule of the table's declaration, and
returns the good rows as typed values at rest and the bad rows with their reasons. A reason
names the field (or rule) and what is wrong: ``birth_date: not a date ('1990-13-01')``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import polars as pl

from creditfactory.contract.tables import RATE_SCALE, Column, ColumnType, Table
from creditfactory.security.idcard import CHECK_CHARS, PROVINCE_CODES, WEIGHTS

META = ("_file", "_row")
_AMOUNT_TEXT = r"^[+-]?\d{1,16}(\.\d{0,2})?$"
_RATE_TEXT = r"^[+-]?\d{1,4}(\.\d{0,8})?$"
_TRUE = ["true", "t", "1", "y", "yes", "是", "1.0"]
_FALSE = ["false", "f", "0", "n", "no", "否", "0.0"]
_MIN_DATE = date(1900, 1, 1)
_PROVINCES = sorted(PROVINCE_CODES)


@dataclass(frozen=True, slots=True)
class Checked:
    good: pl.DataFrame
    """Typed rows at rest (amounts in fen, rates scaled, PII still clear and normalised)."""
    rejects: pl.DataFrame
    """``_file``, ``_row``, ``_reasons`` and the row's values as text."""


def _raw_text(name: str, dtype: pl.DataType) -> pl.Expr:
    c = pl.col(name)
    if dtype == pl.String:
        text = c.str.strip_chars()
        return pl.when(text == "").then(None).otherwise(text)
    if dtype.is_float():
        # Whole numbers that arrived as floats (Excel phones, counts) print without ".0".
        return (
            pl.when(c.is_finite() & (c == c.round(0)) & (c.abs() < 1e15))
            .then(c.cast(pl.Int64).cast(pl.String))
            .otherwise(c.cast(pl.String))
        )
    return c.cast(pl.String)


def _parse(col: Column, dtype: pl.DataType) -> tuple[pl.Expr, pl.Expr]:
    """(typed value at rest, text of the value) for one column."""
    c = pl.col(col.name)
    text = _raw_text(col.name, dtype)
    t = ColumnType
    match col.type:
        case t.STRING | t.CODE:
            return text, text
        case t.ID_NUMBER:
            return text.str.to_uppercase(), text
        case t.PHONE:
            digits = text.str.replace_all(r"[\s\-()]", "")
            digits = (
                pl.when(digits.str.starts_with("+86"))
                .then(digits.str.slice(3))
                .when(digits.str.starts_with("86") & (digits.str.len_chars() == 13))
                .then(digits.str.slice(2))
                .otherwise(digits)
            )
            return digits, text
        case t.INT:
            if dtype.is_integer():
                return c.cast(pl.Int64), text
            if dtype.is_float():
                return pl.when(c == c.round(0)).then(c.cast(pl.Int64, strict=False)), text
            return text.cast(pl.Int64, strict=False), text
        case t.FLOAT:
            if dtype.is_numeric():
                return c.cast(pl.Float64), text
            return text.cast(pl.Float64, strict=False), text
        case t.AMOUNT | t.RATE:
            scale = 2 if col.type is t.AMOUNT else RATE_SCALE
            pattern = _AMOUNT_TEXT if col.type is t.AMOUNT else _RATE_TEXT
            if isinstance(dtype, pl.Decimal):
                exact = c.cast(pl.Decimal(38, scale), strict=False)
                ok = exact.cast(pl.Decimal(38, max(dtype.scale or 0, scale))) == c
                return pl.when(ok).then((exact * (10**scale)).cast(pl.Int64, strict=False)), text
            if dtype.is_integer():
                return c.cast(pl.Int64) * (10**scale), text
            if dtype.is_float():
                # Excel keeps numbers as binary floats: accept one that is a whole number of
                # minor units to within 1e-6 of a unit.
                scaled = c * (10**scale)
                ok = (scaled - scaled.round(0)).abs() < 1e-6
                return pl.when(ok).then(scaled.round(0).cast(pl.Int64, strict=False)), text
            ok = text.str.contains(pattern)
            parsed = text.cast(pl.Decimal(38, scale), strict=False)
            return pl.when(ok).then((parsed * (10**scale)).cast(pl.Int64, strict=False)), text
        case t.DATE | t.MONTH:
            if dtype == pl.Date:
                return c, text
            if isinstance(dtype, pl.Datetime):
                return pl.when(c.dt.time() == pl.time(0)).then(c.dt.date()), text
            iso = text.str.replace_all("/", "-")
            if col.type is t.MONTH:
                iso = pl.when(iso.str.len_chars() == 7).then(iso + "-01").otherwise(iso)
            parsed = pl.coalesce(
                iso.str.strptime(pl.Date, "%Y-%m-%d", strict=False),
                text.str.strptime(pl.Date, "%Y%m%d", strict=False),
            )
            return parsed, text
        case t.BOOL:
            if dtype == pl.Boolean:
                return c, text
            low = text.str.to_lowercase()
            return pl.when(low.is_in(_TRUE)).then(True).when(low.is_in(_FALSE)).then(False), text
    raise AssertionError(col.type)


def _id_problem(v: pl.Expr) -> pl.Expr:
    """Reason text for an invalid ID number (null when valid); ``v`` is upper-cased text."""
    shape_ok = v.str.contains(r"^\d{17}[\dX]$")
    total = pl.sum_horizontal(
        [v.str.slice(i, 1).cast(pl.Int32, strict=False) * w for i, w in enumerate(WEIGHTS)]
    )
    expected = (total % 11).replace_strict(dict(enumerate(CHECK_CHARS)), default=None, return_dtype=pl.String)
    born = v.str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False)
    return (
        pl.when(v.str.len_chars() != 18)
        .then(pl.format("must be 18 characters, got {}", v.str.len_chars()))
        .when(~shape_ok)
        .then(pl.lit("must be 17 digits followed by a digit or X"))
        .when(~v.str.slice(0, 2).is_in(_PROVINCES))
        .then(pl.format("unknown province code {}", v.str.slice(0, 2)))
        .when(born.is_null())
        .then(pl.format("birth date {} is not a calendar date", v.str.slice(6, 8)))
        .when(v.str.slice(17, 1) != expected)
        .then(pl.format("check character is {}, expected {}", v.str.slice(17, 1), expected))
    )


def id_birth_date(v: pl.Expr) -> pl.Expr:
    return v.str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False)


def id_gender(v: pl.Expr) -> pl.Expr:
    """``M`` for an odd sex digit, ``F`` for an even one, null when it is not a digit."""
    digit = v.str.slice(16, 1).cast(pl.Int32, strict=False)
    return pl.when(digit % 2 == 1).then(pl.lit("M")).when(digit % 2 == 0).then(pl.lit("F"))


def _quoted(text: pl.Expr) -> pl.Expr:
    return pl.format("'{}'", text.str.slice(0, 40))


Check = tuple[pl.Expr, pl.Expr]
"""(row is bad, reason text). The flag is computed for every row; the text only for bad rows."""


def _present(col: Column, dtype: pl.DataType) -> pl.Expr:
    c = pl.col(col.name)
    if dtype == pl.String:
        return c.is_not_null() & (c.str.strip_chars() != "")
    return c.is_not_null()


def _column_checks(col: Column, *, today: date) -> list[Check]:
    name = col.name
    value = pl.col(name)
    text = pl.col(f"__text_{name}")
    present_raw = pl.col(f"__present_{name}")
    checks: list[Check] = []
    t = ColumnType
    if col.required:
        checks.append((~present_raw, pl.lit(f"{name}: required value is missing")))
    type_words = {
        t.INT: "not a whole number",
        t.FLOAT: "not a number",
        t.AMOUNT: "not an amount in yuan with at most 2 decimals",
        t.RATE: "not a rate (a decimal fraction with at most 8 places)",
        t.DATE: "not a date (YYYY-MM-DD)",
        t.MONTH: "not a month (YYYY-MM or YYYY-MM-01)",
        t.BOOL: "not true/false",
    }
    if col.type in type_words:
        checks.append(
            (
                present_raw & value.is_null(),
                pl.format(f"{name}: {type_words[col.type]} ({{}})", _quoted(text)),
            )
        )
    present = value.is_not_null()
    if col.type is t.CODE:
        allowed = ", ".join(col.codes)
        checks.append(
            (
                present & ~value.is_in(list(col.codes)),
                pl.format(f"{name}: unknown code {{}} (allowed: {allowed})", _quoted(text)),
            )
        )
    if col.type in (t.STRING, t.CODE) and col.max_length:
        checks.append(
            (
                present & (value.str.len_chars() > col.max_length),
                pl.lit(f"{name}: longer than {col.max_length} characters"),
            )
        )
    if col.type is t.ID_NUMBER:
        problem = _id_problem(value)
        checks.append((present & problem.is_not_null(), pl.format(f"{name}: {{}}", problem)))
    if col.type is t.PHONE:
        checks.append(
            (
                present & ~value.str.contains(r"^1[3-9]\d{9}$"),
                pl.format(f"{name}: not an 11-digit mainland mobile number ({{}})", _quoted(text)),
            )
        )
    if col.type in (t.INT, t.FLOAT, t.AMOUNT, t.RATE):
        unit = {t.AMOUNT: 100, t.RATE: 10**RATE_SCALE}.get(col.type, 1)
        if col.min is not None:
            checks.append(
                (
                    present & (value < col.min * unit),
                    pl.format(f"{name}: {{}} is below the minimum {col.min:g}", _quoted(text)),
                )
            )
        if col.max is not None:
            checks.append(
                (
                    present & (value > col.max * unit),
                    pl.format(f"{name}: {{}} is above the maximum {col.max:g}", _quoted(text)),
                )
            )
    if col.type in (t.DATE, t.MONTH):
        checks.append((present & (value < _MIN_DATE), pl.lit(f"{name}: date before 1900-01-01")))
        if not col.allow_future:
            checks.append(
                (
                    present & (value > today),
                    pl.format(
                        f"{name}: date {{}} is after the load date {today.isoformat()}", value.cast(pl.String)
                    ),
                )
            )
        if col.type is t.MONTH:
            checks.append(
                (
                    present & (value.dt.day() != 1),
                    pl.format(
                        f"{name}: a month must be given as its first day, got {{}}", value.cast(pl.String)
                    ),
                )
            )
    return checks


def _rule_checks(table: Table) -> list[Check]:
    """Vectorised implementations of the declared cross-column rules."""
    v = pl.col
    out: list[Check] = []
    for rule in table.rules:
        msg = f"rule {rule.name} failed: {rule.description}"
        match rule.name:
            case "id_matches_birth_date":
                bad = v("birth_date").is_not_null() & (id_birth_date(v("id_number")) != v("birth_date"))
            case "id_matches_gender":
                bad = v("gender").is_not_null() & (id_gender(v("id_number")) != v("gender"))
            case "closed_after_opened":
                bad = v("closed_date").is_not_null() & (v("closed_date") < v("opened_date"))
            case "inflow_covers_components":
                bad = (v("payroll_in") + v("acquiring_in") + v("subsidy_in")) > v("inflow")
            case "maturity_after_open":
                bad = v("maturity_date") <= v("open_date")
            case "negative_value_matches_kind":
                bad = (
                    (v("kind") == "id_number") & _id_problem(v("value").str.to_uppercase()).is_not_null()
                ) | ((v("kind") == "phone") & ~v("value").str.contains(r"^1[3-9]\d{9}$"))
            case _:
                raise KeyError(f"table {table.name}: rule {rule.name!r} has no implementation")
        out.append((bad.fill_null(False), pl.lit(msg)))
    return out


def _duplicated(frame: pl.DataFrame, cols: list[str]) -> pl.Series:
    """Exact mask of rows whose non-null key occurs more than once.

    A cheap hash of the key finds candidates; the exact comparison runs on the candidates only.
    """
    if frame.height == 0:
        return pl.Series(dtype=pl.Boolean)
    hashed = pl.col(cols[0]).hash(seed=0)
    for i, c in enumerate(cols[1:], start=1):
        hashed = hashed.xor(pl.col(c).hash(seed=i))
    not_null = pl.all_horizontal(pl.col(cols).is_not_null())
    candidates = frame.select(hashed.is_duplicated() & not_null).to_series()
    mask = pl.repeat(False, frame.height, eager=True)
    if not candidates.any():
        return mask
    idx = candidates.arg_true()
    exact = frame[idx].select(pl.struct(cols).is_duplicated()).to_series()
    return mask.scatter(idx.filter(exact), True)


def validate(
    table: Table,
    frame: pl.DataFrame,
    *,
    today: date,
    known_keys: Mapping[str, pl.Series] | None = None,
    check_duplicates: bool = True,
) -> Checked:
    """Check every row of ``frame`` against ``table``'s declaration.

    Flags are computed for every row; reason texts (and the row's text for the reject file) only
    for the rows found bad, so a clean batch costs little more than parsing it.
    """
    known_keys = known_keys or {}
    schema = frame.schema
    missing = [c for c in table.columns if c.name not in schema]
    if missing:
        frame = frame.with_columns([pl.lit(None, dtype=pl.String).alias(c.name) for c in missing])
        schema = frame.schema
    values: list[pl.Expr] = []
    presents: list[pl.Expr] = []
    for col in table.columns:
        value, _text = _parse(col, schema[col.name])
        values.append(value.alias(col.name))
        presents.append(_present(col, schema[col.name]).alias(f"__present_{col.name}"))
    parsed = frame.select(pl.col(META), *values, *presents)

    checks: list[Check] = []
    for col in table.columns:
        checks += _column_checks(col, today=today)
    checks += _rule_checks(table)
    for fk in table.foreign_keys:
        keys = known_keys.get(fk.table)
        if keys is None:
            continue
        checks.append(
            (
                pl.col(fk.column).is_not_null() & ~pl.col(fk.column).is_in(keys.implode()),
                pl.format(f"{fk.column}: {{}} not found in {fk.table}", _quoted(pl.col(fk.column))),
            )
        )
    if check_duplicates:
        for k, (cols, what) in enumerate(
            ((table.key, "key"), *(((u,), "unique value") for u in table.unique))
        ):
            parsed = parsed.with_columns(_duplicated(parsed, list(cols)).alias(f"__dup_{k}"))
            label = ", ".join(cols)
            checks.append(
                (
                    pl.col(f"__dup_{k}"),
                    pl.format(
                        f"duplicate {what} ({label}) {{}}: appears {{}} times in this load",
                        pl.concat_str([pl.col(c).cast(pl.String) for c in cols], separator="/"),
                        pl.len().over(list(cols)),
                    ),
                )
            )
    flags = parsed.select([bad.fill_null(False).alias(f"__bad_{i}") for i, (bad, _) in enumerate(checks)])
    is_bad = (
        flags.select(pl.any_horizontal(pl.all()).alias("bad")).to_series()
        if checks
        else pl.repeat(False, parsed.height, eager=True)
    )
    good = parsed.filter(~is_bad).select(pl.col(META), pl.col(list(table.column_names)))
    if not is_bad.any():
        empty = pl.DataFrame(
            schema={
                "_file": pl.String,
                "_row": pl.Int64,
                "_reasons": pl.String,
                **{c: pl.String for c in table.column_names},
            }
        )
        return Checked(good=good, rejects=empty)
    raw_bad = frame.filter(is_bad)
    texts = raw_bad.select(
        [_parse(col, schema[col.name])[1].alias(f"__text_{col.name}") for col in table.columns]
    )
    bad_rows = pl.concat([parsed.filter(is_bad), flags.filter(is_bad), texts], how="horizontal")
    reasons = pl.concat_str(
        [pl.when(pl.col(f"__bad_{i}")).then(msg) for i, (_, msg) in enumerate(checks)],
        separator="; ",
        ignore_nulls=True,
    )
    rejects = bad_rows.select(
        pl.col("_file"),
        pl.col("_row"),
        reasons.alias("_reasons"),
        *[pl.col(f"__text_{c}").alias(c) for c in table.column_names],
    )
    return Checked(good=good, rejects=rejects)


def duplicate_reason(keys: tuple[str, ...]) -> str:
    return f"duplicate key ({', '.join(keys)}): appears in more than one file of this load"
