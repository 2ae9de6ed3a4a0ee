"""Frames in, arrays out: feature types, the target's coding, fingerprints, reading a table.

Models take Polars frames (pandas frames and dicts are converted). A feature is a ``number``
(any integer or float column), a ``string`` (text, categorical) or a ``bool``; the same words
describe a feature schema (``{"age": "number", "segment": "string"}``), so that a model's
manifest can be checked against the data it will score.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from creditfactory.modeling.errors import (
    ColumnMissing,
    DataFileError,
    TargetHasOneClass,
    TrainingDataError,
)

NUMBER = "number"
STRING = "string"
BOOL = "bool"
DATE = "date"
FEATURE_TYPES = (NUMBER, STRING, BOOL)

#: Values read as missing from CSV files.
NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None"]


def as_frame(X: Any) -> pl.DataFrame:
    """A Polars frame from a Polars frame or lazy frame, a pandas frame or a dict of columns."""
    if isinstance(X, pl.DataFrame):
        return X
    if isinstance(X, pl.LazyFrame):
        return X.collect()
    if isinstance(X, Mapping):
        return pl.DataFrame(dict(X))
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is installed with optbinning
        pd = None
    if pd is not None and isinstance(X, pd.DataFrame):
        return pl.from_pandas(X)
    raise TypeError(f"expected a Polars or pandas DataFrame, got {type(X).__name__}")


def type_of(dtype: pl.DataType) -> str:
    """The schema word for a Polars dtype: number, string, bool or date."""
    if dtype == pl.Boolean:
        return BOOL
    if dtype.is_numeric():
        return NUMBER
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum | pl.Categorical):
        return STRING
    if dtype.is_temporal():
        return DATE
    return str(dtype)


def schema_of(df: pl.DataFrame | pl.LazyFrame) -> dict[str, str]:
    """Column -> number/string/bool/date for a frame."""
    schema = df.collect_schema() if isinstance(df, pl.LazyFrame) else df.schema
    return {name: type_of(dtype) for name, dtype in schema.items()}


def require_columns(df: pl.DataFrame, columns: Iterable[str], *, what: str = "the data") -> None:
    present = set(df.columns)
    missing = [c for c in columns if c not in present]
    if missing:
        shown = ", ".join(df.columns[:30]) + (" ..." if df.width > 30 else "")
        names = ", ".join(repr(c) for c in missing)
        raise ColumnMissing(
            f"{'column' if len(missing) == 1 else 'columns'} {names} not in {what} (it has: {shown})",
            missing=missing,
        )


def feature_types(
    df: pl.DataFrame, features: Sequence[str], *, categorical: Iterable[str] = ()
) -> dict[str, str]:
    """Each feature's column type (number, string or bool); refuses dates and other types.

    ``categorical`` names features to be binned as categories; they keep their column type here.
    """
    require_columns(df, features)
    forced = set(categorical)
    unknown = forced - set(features)
    if unknown:
        raise ColumnMissing(
            f"categorical column(s) {', '.join(sorted(unknown))} are not among the features",
            missing=sorted(unknown),
        )
    out: dict[str, str] = {}
    for name in features:
        kind = type_of(df.schema[name])
        if kind not in FEATURE_TYPES:
            raise TrainingDataError(
                f"feature {name!r} is a {df.schema[name]} column; a model takes numbers, text or "
                "true/false (derive a number such as months since the date)",
                column=name,
            )
        out[name] = kind
    return out


def numeric_values(series: pl.Series) -> np.ndarray:
    """Float64 values with NaN for missing (booleans as 0/1)."""
    if series.dtype != pl.Float64:
        series = series.cast(pl.Float64, strict=False)
    return series.to_numpy(allow_copy=True).astype(np.float64, copy=False)


def string_values(series: pl.Series) -> pl.Series:
    """Text values as Polars writes them (``1``, ``2.5``, ``true``); nulls stay null."""
    return series if series.dtype == pl.String else series.cast(pl.String)


def default_bad_value(values: Sequence[Any]) -> Any:
    """The code of a bad outcome when none is given: 1 of {0, 1}, 2 of {1, 2}, 'bad'."""
    present = set(values)
    if present <= {0, 1}:
        return 1
    if present <= {1, 2}:
        return 2
    if present <= {False, True}:
        return True
    lowered = {str(v).lower(): v for v in present}
    for word in ("bad", "default", "yes", "y", "1"):
        if word in lowered:
            return lowered[word]
    return None


def encode_target(values: Any, *, name: str = "target", bad_value: Any = None) -> np.ndarray:
    """1 for bad, 0 for good. Refuses missing values, more than two codes and a single class."""
    series = values if isinstance(values, pl.Series) else pl.Series(name, np.asarray(values))
    n = series.len()
    if n == 0:
        raise TrainingDataError(f"target {name!r} has no rows")
    nulls = series.null_count()
    if series.dtype.is_float():
        nulls += int(series.is_nan().sum())
    if nulls:
        raise TrainingDataError(
            f"target {name!r} is missing in {nulls} of {n} rows; drop or label those rows first",
            column=name,
        )
    distinct = series.unique().sort().to_list()
    if series.dtype.is_float() and all(float(v).is_integer() for v in distinct):
        series = series.cast(pl.Int64)
        distinct = [int(v) for v in distinct]
    if len(distinct) == 1:
        raise TargetHasOneClass(
            f"target {name!r} has only one value ({distinct[0]!r}) in {n} rows: "
            "a model needs both good and bad outcomes",
            column=name,
        )
    if len(distinct) > 2:
        shown = ", ".join(repr(v) for v in distinct[:8]) + (" ..." if len(distinct) > 8 else "")
        raise TrainingDataError(
            f"target {name!r} has {len(distinct)} values ({shown}); it must have two (good and bad)",
            column=name,
        )
    if bad_value is None:
        bad_value = default_bad_value(distinct)
        if bad_value is None:
            raise TrainingDataError(
                f"target {name!r} has values {distinct[0]!r} and {distinct[1]!r}: say which one is "
                "bad (--bad-value)",
                column=name,
            )
    else:
        bad_value = _coerce_like(bad_value, distinct)
        if bad_value not in distinct:
            raise TrainingDataError(
                f"bad value {bad_value!r} is not a value of target {name!r} "
                f"(it has {distinct[0]!r} and {distinct[1]!r})",
                column=name,
            )
    return (series == bad_value).to_numpy().astype(np.int8)


def _coerce_like(value: Any, distinct: Sequence[Any]) -> Any:
    """A bad value typed on a command line ('2', 'true') as the target's own type."""
    if not isinstance(value, str):
        return value
    sample = distinct[0]
    if isinstance(sample, bool):
        return value.strip().lower() in ("1", "true", "yes")
    if isinstance(sample, int):
        try:
            return int(value)
        except ValueError:
            return value
    if isinstance(sample, float):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def binary_labels(y: Any) -> np.ndarray:
    """``y`` for an estimator: 0/1 (1 = bad) or booleans, both classes present."""
    arr = np.asarray(y.to_numpy() if isinstance(y, pl.Series) else y)
    if arr.ndim != 1:
        raise TrainingDataError(f"y must be one column of 0/1 labels, got shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.int8)
    if arr.size == 0:
        raise TrainingDataError("y is empty")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise TrainingDataError(f"y is missing in {int(np.isnan(arr).sum())} rows")
    values = np.unique(arr)
    if not set(values.tolist()) <= {0, 1}:
        raise TrainingDataError(
            f"y must be 0/1 with 1 = bad, got values {values[:8].tolist()} "
            "(use encode_target to code another target)"
        )
    if values.size < 2:
        raise TargetHasOneClass(
            f"y has only one class ({int(values[0])}) in {arr.size} rows: a model needs both good and bad"
        )
    return arr.astype(np.int8)


def fingerprint(df: pl.DataFrame) -> str:
    """SHA-256 of the frame's contents as CSV (column order and row order included)."""
    digest = hashlib.sha256()
    for lo in range(0, max(df.height, 1), 200_000):
        digest.update(df.slice(lo, 200_000).write_csv(include_header=lo == 0).encode())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_table(path: Path) -> pl.DataFrame:
    """A CSV or Parquet file as a frame (a column with an empty header is a row index: dropped)."""
    if not path.exists():
        raise DataFileError(f"data file {path} does not exist", path=str(path))
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            df = pl.read_parquet(path)
        elif suffix in (".csv", ".txt", ".tsv"):
            df = pl.read_csv(
                path,
                separator="\t" if suffix == ".tsv" else ",",
                null_values=NULL_VALUES,
                infer_schema_length=20_000,
            )
        else:
            raise DataFileError(
                f"data file {path}: unknown format {suffix!r} (use .csv or .parquet)", path=str(path)
            )
    except DataFileError:
        raise
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataFileError(f"data file {path} could not be read: {first}", path=str(path)) from None
    unnamed = [c for c in df.columns if not c.strip() or c.startswith("__UNNAMED__")]
    if unnamed:
        df = df.drop(unnamed)
    if df.height == 0:
        raise DataFileError(f"data file {path} has no rows", path=str(path))
    return df
