"""The Parquet lake: where the large analytical tables live.

Layout: ``LAKE/<table>/b<run>-<part>.parquet``. Every file belongs to one ingestion run
(``_batch`` column = run id). Files are first written under ``LAKE/<table>/_staging-<run>/``
and moved into place only when the whole table of the run has been checked, so a reader never
sees half a load, and a crashed run leaves nothing visible. When a key was delivered by more than
one run, the latest run's row wins (:func:`scan`).

At rest: amounts are int64 fen, rates int64 at scale 1e-8, ID numbers and phones are replaced
by keyed tokens (``id_number_token``), names and addresses are not kept (the database holds them
encrypted).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from creditfactory.contract.tables import ColumnType, Table, get_table
from creditfactory.errors import Conflict

_FILE = re.compile(r"^b(\d{8})-(\d{5})\.parquet$")


def table_dir(lake: Path, table: str) -> Path:
    return lake / table


def staging_dir(lake: Path, table: str, run_id: int) -> Path:
    return table_dir(lake, table) / f"_staging-{run_id:08d}"


def staged_name(run_id: int, seq: int) -> str:
    return f"b{run_id:08d}-{seq:05d}.parquet"


def files(lake: Path, table: str) -> list[Path]:
    d = table_dir(lake, table)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_file() and _FILE.match(p.name))


def batches(lake: Path, table: str) -> list[int]:
    return sorted({int(m.group(1)) for p in files(lake, table) if (m := _FILE.match(p.name))})


def publish(lake: Path, table: str, run_id: int) -> int:
    """Move a run's staged files into the table; returns the number of files published."""
    staging = staging_dir(lake, table, run_id)
    if not staging.is_dir():
        return 0
    moved = 0
    for part in sorted(staging.glob("*.parquet")):
        part.replace(table_dir(lake, table) / part.name)
        moved += 1
    shutil.rmtree(staging)
    return moved


class LakeBusy(Conflict):
    code = "ingestion_running"
    title = "Another ingestion is running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def ingest_lock(lake: Path) -> Iterator[None]:
    """One ingestion at a time per lake (a lock file naming the holder's process id).

    A lock left by a process that no longer runs is taken over.
    """
    lake.mkdir(parents=True, exist_ok=True)
    path = lake / ".ingest.lock"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = int(path.read_text().strip() or "0")
            except (OSError, ValueError):
                holder = 0
            if holder and holder != os.getpid() and _alive(holder):
                raise LakeBusy(
                    f"another ingestion (process {holder}) is loading into {lake}; try again when it ends"
                ) from None
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        break
    else:
        raise LakeBusy(f"could not take the ingestion lock {path}")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def discard_staging(lake: Path, *, keep_run: int | None = None) -> list[Path]:
    """Remove staging folders left by runs that did not finish."""
    removed: list[Path] = []
    if not lake.is_dir():
        return removed
    for d in lake.glob("*/_staging-*"):
        if keep_run is not None and d.name == f"_staging-{keep_run:08d}":
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


def exists(lake: Path, table: str) -> bool:
    return bool(files(lake, table))


def key_columns(table: Table) -> list[str]:
    """The table's key as stored in the lake: an ID number or phone in the key is its token."""
    tokenised = (ColumnType.ID_NUMBER, ColumnType.PHONE)
    return [f"{k}_token" if table.column(k).type in tokenised else k for k in table.key]


def scan(lake: Path, table: str | Table, *, latest: bool = True) -> pl.LazyFrame:
    """Lazily read a lake table; with ``latest`` keep only the newest run's row for each key."""
    spec = get_table(table) if isinstance(table, str) else table
    paths = files(lake, spec.name)
    if not paths:
        raise FileNotFoundError(f"the lake at {lake} has no data for table {spec.name!r}; ingest it first")
    frame = pl.scan_parquet(paths)
    if latest and len(batches(lake, spec.name)) > 1:
        frame = frame.sort("_batch", maintain_order=True).unique(
            subset=key_columns(spec), keep="last", maintain_order=True
        )
    return frame


def row_count(lake: Path, table: str) -> int:
    if not exists(lake, table):
        return 0
    return int(scan(lake, table).select(pl.len()).collect().item())
