"""Turning NumPy arrays into contract-shaped Polars frames, and writing them.

Types in the files (Parquet; CSV prints the same values as text):

=========================  ===============================================
contract type              column
=========================  ===============================================
string, code, id, phone    Utf8
int                        Int64
float                      Float64
amount                     Decimal(18, 2), from int64 fen, exact
rate                       Decimal(12, 8), from int64 at scale 1e-8, exact
date, month                Date
bool                       Boolean
=========================  ===============================================
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from creditfactory.contract.tables import RATE_SCALE, ColumnType, Table
from creditfactory.sandbox.config import SandboxError

POLARS_TYPES: dict[ColumnType, pl.DataType] = {
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

Values = np.ndarray | pl.Series


def scaled_decimal(values: np.ndarray, *, scale: int, precision: int) -> pl.Series:
    """Decimals whose unscaled integers are ``values`` (123 at scale 2 is 1.23); no float on the way."""
    v = np.ascontiguousarray(values, dtype=np.int64)
    arr = pa.Array.from_buffers(pa.decimal64(precision, scale), len(v), [None, pa.py_buffer(v)])
    return pl.Series(pl.from_arrow(arr))


def ascii_strings(chars: np.ndarray) -> pl.Series:
    """One string per row of an ``(n, width)`` uint8 matrix of ASCII codes."""
    chars = np.ascontiguousarray(chars, dtype=np.uint8)
    n, width = chars.shape
    offsets = (np.arange(n + 1, dtype=np.int64) * width).astype(np.int32)
    arr = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chars)])
    return pl.Series(pl.from_arrow(arr))


def digit_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII digits of non-negative integers, zero-padded to ``width``: shape ``(n, width)``."""
    v = np.asarray(values, dtype=np.int64).copy()
    out = np.empty((len(v), width), dtype=np.uint8)
    for j in range(width - 1, -1, -1):
        out[:, j] = 48 + (v % 10)
        v //= 10
    return out


def prefixed_ids(prefix: str, values: np.ndarray, width: int) -> pl.Series:
    """``prefix`` followed by ``values`` zero-padded to ``width`` digits (``C0000000001``)."""
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    chars = np.empty((len(values), len(head) + width), dtype=np.uint8)
    chars[:, : len(head)] = head
    chars[:, len(head) :] = digit_matrix(values, width)
    return ascii_strings(chars)


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_strings(words: np.ndarray) -> pl.Series:
    """Lower-case hex of the uint64 words of each row: ``(n, w)`` words give ``16 w`` characters."""
    w = np.ascontiguousarray(np.atleast_2d(words), dtype=">u8")
    b = w.view(np.uint8).reshape(w.shape[0], w.shape[1] * 8)
    chars = np.empty((b.shape[0], b.shape[1] * 2), dtype=np.uint8)
    chars[:, 0::2] = _HEX[b >> 4]
    chars[:, 1::2] = _HEX[b & 15]
    return ascii_strings(chars)


def pick(options: Sequence[str], index: np.ndarray) -> pl.Series:
    """``options[index]`` as a string series."""
    return pl.Series(values=list(options), dtype=pl.String).gather(np.asarray(index, dtype=np.int64))


def concat(*parts: pl.Series | str) -> pl.Series:
    """Row-wise concatenation of string series and literals."""
    return pl.select(pl.concat_str([pl.lit(p) for p in parts])).to_series()


def with_nulls(series: pl.Series, null: np.ndarray) -> pl.Series:
    """``series`` with the rows where ``null`` is true set to null."""
    idx = np.flatnonzero(null)
    if len(idx) == 0:
        return series
    return series.scatter(idx, None)


#: Amounts and rates are held as their scaled integers (fen, 1e-8) until written: half the
#: memory of Polars' 128-bit decimals, and exact.
_SCALED = {ColumnType.AMOUNT: (2, 18), ColumnType.RATE: (RATE_SCALE, 12)}


def _as_series(name: str, col_type: ColumnType, values: Values) -> pl.Series:
    dtype = pl.Int64() if col_type in _SCALED else POLARS_TYPES[col_type]
    if isinstance(values, pl.Series):
        series = values.alias(name)
        if series.dtype != dtype:
            series = series.cast(dtype)
        return series
    arr = np.asarray(values)
    if col_type in _SCALED:
        return pl.Series(name, arr.astype(np.int64, copy=False), dtype=pl.Int64)
    if col_type in (ColumnType.DATE, ColumnType.MONTH):
        return pl.Series(name, arr.astype(np.int32), dtype=pl.Int32).cast(pl.Date)
    if col_type is ColumnType.BOOL:
        return pl.Series(name, arr.astype(bool, copy=False), dtype=pl.Boolean)
    if col_type is ColumnType.INT:
        return pl.Series(name, arr.astype(np.int64, copy=False), dtype=pl.Int64)
    if col_type is ColumnType.FLOAT:
        return pl.Series(name, arr.astype(np.float64, copy=False), dtype=pl.Float64)
    return pl.Series(name, arr, dtype=pl.String)


def contract_frame(table: Table, columns: Mapping[str, Values]) -> pl.DataFrame:
    """A frame with exactly the contract's columns, in its order and types.

    Amount and rate columns stay scaled Int64 here; :func:`finalise` makes them decimals.
    """
    declared = table.column_names
    missing = [c for c in declared if c not in columns]
    extra = [c for c in columns if c not in declared]
    if missing or extra:
        raise SandboxError(f"table {table.name}: missing columns {missing}, unexpected columns {extra}")
    series = [_as_series(col.name, col.type, columns[col.name]) for col in table.columns]
    lengths = {len(s) for s in series}
    if len(lengths) > 1:
        raise SandboxError(f"table {table.name}: columns differ in length {sorted(lengths)}")
    return pl.DataFrame(series)


def finalise(table: Table, frame: pl.DataFrame) -> pl.DataFrame:
    """The frame as written: scaled Int64 amounts and rates become exact decimals."""
    out = []
    for col in table.columns:
        series = frame.get_column(col.name)
        if col.type in _SCALED and series.dtype == pl.Int64:
            scale, precision = _SCALED[col.type]
            series = scaled_decimal(series.to_numpy(), scale=scale, precision=precision).alias(col.name)
        out.append(series)
    return pl.DataFrame(out)


def encode(frame: pl.DataFrame, fmt: str) -> bytes:
    """The file bytes of ``frame`` (Parquet with zstd, or UTF-8 CSV with a header)."""
    buf = io.BytesIO()
    if fmt == "parquet":
        frame.write_parquet(buf, compression="zstd", statistics=True)
    elif fmt == "csv":
        frame.write_csv(buf, include_header=True, null_value="", date_format="%Y-%m-%d")
    else:
        raise SandboxError(f"unknown format {fmt!r}")
    return buf.getvalue()


def write_file(frame: pl.DataFrame, path: Path, fmt: str, table: Table | None = None) -> str:
    """Write ``frame`` (finalised for ``table`` when given) to ``path``; return the sha256 of the bytes."""
    data = encode(finalise(table, frame) if table is not None else frame, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()
