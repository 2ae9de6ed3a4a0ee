"""Finding and reading extract files: CSV (UTF-8 or GBK), Parquet and Excel.

A source directory holds, for each contract table, either one file ``<table>.<ext>`` or a folder
``<table>/`` of part files; an Excel workbook may instead hold one sheet per table. Files are
read in batches so that the large monthly tables never sit whole in memory. Each batch carries
``_file`` and ``_row``: the row as a person would find it (the spreadsheet row for CSV and
Excel, header = row 1; the record number for Parquet).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from creditfactory.contract.tables import BY_NAME, Table
from creditfactory.errors import InvalidInput

SUFFIXES = (".parquet", ".csv", ".xlsx")


class SourceError(InvalidInput):
    code = "extract_unreadable"
    title = "Extract file cannot be used"


@dataclass(frozen=True, slots=True)
class Source:
    table: Table
    path: Path
    sheet: str | None = None

    @property
    def label(self) -> str:
        return f"{self.path}" + (f" [sheet {self.sheet}]" if self.sheet else "")

    @property
    def kind(self) -> str:
        return self.path.suffix.lower().lstrip(".")


@dataclass(slots=True)
class Discovery:
    sources: dict[str, list[Source]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def discover(directory: Path) -> Discovery:
    """Find the extract files under ``directory`` (or its ``extracts/`` folder)."""
    if not directory.exists():
        raise SourceError(f"extract directory {directory} does not exist")
    if not directory.is_dir():
        raise SourceError(f"{directory} is not a directory")
    root = directory / "extracts" if (directory / "extracts").is_dir() else directory
    found = Discovery()
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "_", "~$")):
            continue
        stem = entry.stem if entry.is_file() else entry.name
        if entry.is_file() and entry.suffix.lower() == ".xlsx" and stem not in BY_NAME:
            for sheet in _sheet_names(entry):
                if sheet in BY_NAME:
                    found.sources.setdefault(sheet, []).append(Source(BY_NAME[sheet], entry, sheet))
                else:
                    found.ignored.append(f"{entry.name} [sheet {sheet}]: not a contract table")
            continue
        if stem not in BY_NAME:
            found.ignored.append(f"{entry.name}: not a contract table")
            continue
        table = BY_NAME[stem]
        if entry.is_dir():
            parts = sorted(p for p in entry.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
            others = sorted(p for p in entry.iterdir() if p.is_file() and p.suffix.lower() not in SUFFIXES)
            found.ignored += [f"{entry.name}/{p.name}: not a CSV, Parquet or Excel file" for p in others]
            found.sources.setdefault(stem, []).extend(Source(table, p) for p in parts)
        elif entry.suffix.lower() in SUFFIXES:
            found.sources.setdefault(stem, []).append(Source(table, entry))
        else:
            found.ignored.append(f"{entry.name}: not a CSV, Parquet or Excel file")
    if not found.sources:
        raise SourceError(f"no extract files for any contract table in {root}")
    return found


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- headers


_SAMPLE_BYTES = 1 << 16


def _csv_encoding(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(_SAMPLE_BYTES)
        whole = not fh.read(1)
    for encoding in ("utf-8", "gb18030"):
        # A character cut in two by the end of the sample is not an error; one at the end of
        # the file is.
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=whole)
        except UnicodeDecodeError:
            continue
        return encoding
    raise SourceError(f"{path}: neither UTF-8 nor GBK text")


def _csv_header(path: Path) -> list[str]:
    encoding = _csv_encoding(path)
    with path.open(encoding=encoding, newline="") as fh:
        first = fh.readline()
    if not first.strip():
        raise SourceError(f"{path}: the file is empty (no header row)")
    return [h.strip().lstrip("\ufeff") for h in next(csv.reader(io.StringIO(first)))]


def _sheet_names(path: Path) -> list[str]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True)
    except Exception as exc:
        raise SourceError(f"{path}: not a readable Excel workbook ({exc})") from None
    try:
        return list(wb.sheetnames)
    finally:
        wb.close()


def header(source: Source) -> list[str]:
    """Column names of a source, or a :class:`SourceError` naming the file."""
    try:
        match source.kind:
            case "csv":
                return _csv_header(source.path)
            case "parquet":
                return list(pq.read_schema(source.path).names)
            case "xlsx":
                return _excel_rows(source)[0]
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(f"{source.label}: cannot be read ({type(exc).__name__}: {exc})") from None
    raise SourceError(f"{source.label}: unsupported file type")


def check_header(source: Source) -> list[str]:
    """Problems with a source's header: missing required columns, unnamed or repeated ones."""
    names = header(source)
    problems: list[str] = []
    blanks = [i + 1 for i, n in enumerate(names) if not n]
    if blanks:
        problems.append(f"{source.label}: header has unnamed columns at positions {blanks}")
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        problems.append(f"{source.label}: header repeats columns {repeated}")
    missing = [c for c in source.table.required_columns if c not in names]
    if missing:
        problems.append(f"{source.label}: missing required column(s) {', '.join(missing)}")
    return problems


# ---------------------------------------------------------------- batches


def batches(source: Source, *, batch_rows: int) -> Iterator[pl.DataFrame]:
    """Yield the source's rows in frames of at most ``batch_rows`` rows with ``_file``/``_row``."""
    wanted = set(source.table.column_names)
    name = source.path.name if source.sheet is None else f"{source.path.name}[{source.sheet}]"
    try:
        if source.kind == "parquet":
            yield from _parquet_batches(source.path, wanted, name, batch_rows)
        elif source.kind == "csv":
            yield from _csv_batches(source.path, wanted, name, batch_rows)
        else:
            yield from _excel_batches(source, wanted, name, batch_rows)
    except SourceError:
        raise
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{source.label}: cannot be read ({type(exc).__name__}: {exc})") from None


def _with_meta(frame: pl.DataFrame, name: str, first_row: int) -> pl.DataFrame:
    return frame.with_columns(
        pl.lit(name).alias("_file"),
        (pl.int_range(0, pl.len(), dtype=pl.Int64) + first_row).alias("_row"),
    )


def _parquet_batches(path: Path, wanted: set[str], name: str, batch_rows: int) -> Iterator[pl.DataFrame]:
    """Polars' own reader (multi-threaded, native decimals), a slice of rows at a time; the
    slice is pushed down to the row groups, so a file larger than a batch is never read whole."""
    meta = pq.ParquetFile(path)
    columns = [c for c in meta.schema_arrow.names if c in wanted]
    total = meta.metadata.num_rows
    for offset in range(0, max(total, 1), batch_rows):
        frame = pl.scan_parquet(path).select(columns).slice(offset, batch_rows).collect()
        if frame.height == 0 and offset:
            break
        yield _with_meta(frame, name, offset + 1)


def _csv_batches(path: Path, wanted: set[str], name: str, batch_rows: int) -> Iterator[pl.DataFrame]:
    names = _csv_header(path)
    encoding = _csv_encoding(path)
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            column_names=names, skip_rows=1, encoding=encoding, block_size=max(1 << 20, batch_rows * 64)
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            include_columns=[n for n in names if n in wanted],
            strings_can_be_null=True,
            null_values=[""],
        ),
        parse_options=pacsv.ParseOptions(newlines_in_values=False),
    )
    offset = 2
    for batch in reader:
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        yield _with_meta(frame, name, offset)
        offset += frame.height


def _cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        # Excel keeps 15 significant digits; a cell showing 0.3 may hold 0.30000000000000004.
        text = f"{value:.15g}"
        return format(Decimal(text), "f") if "e" in text and math.isfinite(value) else text
    text = str(value).strip()
    return text or None


def _excel_rows(source: Source) -> tuple[list[str], int, list[list[str | None]]]:
    """(header, spreadsheet row of the header, data rows as text) of a sheet.

    Title rows above the header (a caption merged across the columns) are skipped; merged
    cells inside the header itself are a clear error naming the range.
    """
    from openpyxl import load_workbook

    try:
        wb = load_workbook(source.path, read_only=False, data_only=True)
    except Exception as exc:
        raise SourceError(f"{source.label}: not a readable Excel workbook ({exc})") from None
    try:
        ws = wb[source.sheet] if source.sheet else wb.worksheets[0]
        required = set(source.table.required_columns)
        header_row = None
        for idx, row in enumerate(ws.iter_rows(min_row=1, max_row=20, values_only=True), start=1):
            texts = {_cell_text(v) for v in row}
            if required & texts or set(source.table.key) <= texts:
                header_row = idx
                break
        if header_row is None:
            raise SourceError(
                f"{source.label}: no header row with the table's columns in the first 20 rows "
                f"(expected {', '.join(source.table.required_columns)})"
            )
        for rng in ws.merged_cells.ranges:
            if rng.min_row <= header_row <= rng.max_row:
                raise SourceError(
                    f"{source.label}: header cells {rng.coord} are merged; unmerge them so that every "
                    "column has its own name in one header row"
                )
        rows = ws.iter_rows(min_row=header_row, values_only=True)
        head = [(_cell_text(v) or "") for v in next(rows)]
        while head and head[-1] == "":
            head.pop()
        data = [[_cell_text(v) for v in r[: len(head)]] for r in rows]
        while data and all(v is None for v in data[-1]):
            data.pop()
        return head, header_row, data
    finally:
        wb.close()


def _excel_batches(source: Source, wanted: set[str], name: str, batch_rows: int) -> Iterator[pl.DataFrame]:
    head, header_row, data = _excel_rows(source)
    keep = [i for i, h in enumerate(head) if h in wanted]
    columns = {head[i]: [r[i] if i < len(r) else None for r in data] for i in keep}
    frame = pl.DataFrame(columns, schema={head[i]: pl.String for i in keep})
    for start in range(0, max(frame.height, 1), batch_rows):
        part = frame.slice(start, batch_rows)
        if part.height:
            yield _with_meta(part, name, header_row + 1 + start)
