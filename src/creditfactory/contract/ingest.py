"""Ingestion of a bank's extracts: validate every row, load the good, write the bad with reasons.

One run takes a directory of extract files (see :mod:`creditfactory.contract.sources`):

1. every file's header is checked first; a missing column or an unreadable file stops the run
   with one error naming all such problems, before anything is loaded;
2. tables are loaded in dependency order, each file in batches; every row is checked against
   the table's declaration (types, required values, codes, ranges, ID check digits, phones,
   dates, cross-column rules, foreign keys, duplicate keys);
3. good rows go to the Parquet lake (all tables) and to the database (operational tables),
   rejected rows go to ``<data>/rejects/run-<id>/<table>.csv`` with the file, the row and the
   reasons; the counts are recorded per file.

A file already loaded (same table, same SHA-256) is skipped, so running the same extracts
again changes nothing. Lake files become visible only when a table is complete, and database
rows are upserted by key with a content hash, so a run that dies half-way can simply be run
again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from time import perf_counter
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy.orm import Session, sessionmaker

from creditfactory.clock import Clock
from creditfactory.contract import lake as lake_mod
from creditfactory.contract import sources as src
from creditfactory.contract import store
from creditfactory.contract.tables import BY_NAME, TABLES, ColumnType, Table
from creditfactory.contract.validate import META, validate
from creditfactory.db.uow import UnitOfWork
from creditfactory.security.pii import PiiVault

Progress = Callable[[str, str, int, int | None], None]
"""``progress(stage, table, rows_done, rows_total)``; stage is "start", "rows" or "done"."""


@dataclass(slots=True)
class TableResult:
    table: str
    files: int = 0
    unchanged_files: int = 0
    rows_read: int = 0
    loaded: int = 0
    rejected: int = 0
    inserted: int = 0
    updated: int = 0
    seconds: float = 0.0
    reject_file: str | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class IngestResult:
    run_id: int
    source_dir: str
    tables: dict[str, TableResult] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    reject_dir: str | None = None
    seconds: float = 0.0

    @property
    def loaded(self) -> int:
        return sum(t.loaded for t in self.tables.values())

    @property
    def rejected(self) -> int:
        return sum(t.rejected for t in self.tables.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "loaded": self.loaded,
            "rejected": self.rejected,
            "seconds": round(self.seconds, 3),
            "reject_dir": self.reject_dir,
            "ignored": self.ignored,
            "tables": {
                name: {
                    "loaded": t.loaded,
                    "rejected": t.rejected,
                    "files": t.files,
                    "unchanged_files": t.unchanged_files,
                    "rows_per_second": round(t.rows_per_second),
                    "reject_file": t.reject_file,
                }
                for name, t in self.tables.items()
            },
        }


@dataclass(frozen=True, slots=True)
class IngestSettings:
    lake: Path
    reject_root: Path
    batch_rows: int = 2_000_000
    timezone: str = "Asia/Shanghai"
    """The bank's time zone: dates after its current day are in the future."""


# ------------------------------------------------------------------ helpers


def _token_kind(table: Table, column: str) -> str | None:
    col = table.column(column)
    if col.type is ColumnType.ID_NUMBER:
        return "id_number"
    if col.type is ColumnType.PHONE:
        return "phone"
    return None


def tokens_for(table: Table, good: pl.DataFrame, *, vault: PiiVault) -> dict[str, list[str | None]]:
    """Lookup tokens of the table's tokenised columns (values already validated and normalised)."""
    out: dict[str, list[str | None]] = {}
    for col in table.columns:
        if not col.pii:
            continue
        kind = _token_kind(table, col.name)
        if kind is not None:
            out[col.name] = vault.tokens(good[col.name].to_list(), kind=kind, normalised=True)
        elif table.name == "negative_list" and col.name == "value":
            out[col.name] = _negative_tokens(good, vault)
    return out


def to_lake(
    table: Table,
    good: pl.DataFrame,
    *,
    vault: PiiVault,
    run_id: int,
    tokens: dict[str, list[str | None]] | None = None,
) -> pl.DataFrame:
    """Rows at rest for the lake: PII replaced by tokens, names and addresses left out.

    The lineage columns ``_file`` and ``_row`` (where the row came from) and ``_batch`` (the
    ingestion run) travel with every row.
    """
    if tokens is None:
        tokens = tokens_for(table, good, vault=vault)
    exprs: list[pl.Expr | pl.Series] = [pl.col(m) for m in META if m in good.columns]
    for col in table.columns:
        if not col.pii:
            exprs.append(pl.col(col.name))
        elif col.name in tokens:
            exprs.append(pl.Series(f"{col.name}_token", tokens[col.name], dtype=pl.String))
    return good.select(*exprs).with_columns(pl.lit(run_id, dtype=pl.Int64).alias("_batch"))


def _negative_tokens(good: pl.DataFrame, vault: PiiVault) -> list[str | None]:
    out: list[str | None] = []
    for kind, value in zip(good["kind"].to_list(), good["value"].to_list(), strict=True):
        if kind == "id_number":
            out.append(vault.token(value.upper(), kind="id_number"))
        elif kind == "phone":
            out.append(vault.token(value, kind="phone"))
        else:
            out.append(value)  # a device fingerprint is not personal data; kept for joins
    return out


def _row_hashes(frame: pl.DataFrame, columns: Iterable[str], vault: PiiVault) -> list[str]:
    """A keyed hash of each row's content: a plain hash of a row would let anyone who reads the
    table guess the personal data it covers (a listed phone number) by trying candidates."""
    joined = frame.select(
        pl.concat_str([pl.col(c).cast(pl.String).fill_null("\x00") for c in columns], separator="\x1f")
    ).to_series()
    return vault.digests(joined.to_list())


def to_db_rows(
    table: Table,
    good: pl.DataFrame,
    *,
    vault: PiiVault,
    run_id: int,
    now: Any,
    tokens: dict[str, list[str | None]] | None = None,
) -> list[dict[str, Any]]:
    """Rows for the operational table: PII as token + ciphertext, with a content hash."""
    if tokens is None:
        tokens = tokens_for(table, good, vault=vault)
    hashes = _row_hashes(good, table.column_names, vault)
    columns: dict[str, list[Any]] = {}
    for col in table.columns:
        values = good[col.name].to_list()
        if col.pii:
            if col.name in tokens:
                columns[f"{col.name}_token"] = tokens[col.name]
            columns[f"{col.name}_enc"] = vault.encrypt_many(values)
        else:
            columns[col.name] = values
    n = good.height
    columns["batch_id"] = [run_id] * n
    columns["row_hash"] = hashes
    columns["loaded_at"] = [now] * n
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


class _Rejects:
    """Appends rejected rows of one table to its CSV reject file."""

    def __init__(self, directory: Path, table: Table) -> None:
        self.path = directory / f"{table.name}.csv"
        self.count = 0

    def write(self, rejects: pl.DataFrame) -> None:
        if rejects.height == 0:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = rejects.with_columns(pl.all().cast(pl.String))
        if self.count == 0:
            with self.path.open("wb") as fh:
                fh.write("\ufeff".encode())  # so that Excel opens the Chinese text correctly
                text.write_csv(fh)
        else:
            with self.path.open("ab") as fh:
                text.write_csv(fh, include_header=False)
        self.count += rejects.height


def _text_of_lake_rows(table: Table, frame: pl.DataFrame) -> pl.DataFrame:
    """Values at rest back to the text a bank would have sent (for rejects found after staging)."""
    exprs = []
    for col in table.columns:
        c = pl.col(col.name)
        if col.type is ColumnType.AMOUNT:
            exprs.append((c.cast(pl.Decimal(20, 2)) / 100).cast(pl.String).alias(col.name))
        elif col.type is ColumnType.RATE:
            exprs.append((c.cast(pl.Decimal(24, 8)) / 10**8).cast(pl.String).alias(col.name))
        else:
            exprs.append(c.cast(pl.String).alias(col.name))
    return frame.select(*exprs)


# ------------------------------------------------------------------ the run


class Ingestion:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        clock: Clock,
        vault: PiiVault,
        settings: IngestSettings,
        progress: Progress | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.vault = vault
        self.settings = settings
        self.progress = progress or (lambda *_: None)
        self.lake = settings.lake

    def run(self, directory: Path, *, today: date | None = None) -> IngestResult:
        with lake_mod.ingest_lock(self.lake):
            return self._run(directory, today=today)

    def _run(self, directory: Path, *, today: date | None = None) -> IngestResult:
        started = perf_counter()
        found = src.discover(directory)
        problems: list[str] = []
        for sources in found.sources.values():
            for source in sources:
                try:
                    problems += src.check_header(source)
                except src.SourceError as exc:  # unreadable: named with the others
                    problems.append(exc.message)
        if problems:
            raise src.SourceError(
                "the extracts cannot be loaded; nothing was loaded:\n  " + "\n  ".join(problems),
                problems=problems,
            )
        # The load date is the bank's calendar day, not UTC's.
        today = today or self.clock.now().astimezone(ZoneInfo(self.settings.timezone)).date()
        lake_mod.discard_staging(self.lake)
        with UnitOfWork(self.sessions) as uow:
            run = store.IngestRun(
                source_dir=str(directory),
                status=store.RunStatus.RUNNING,
                started_at=self.clock.now(),
            )
            uow.session.add(run)
            uow.commit()
            run_id = run.id
        reject_dir = self.settings.reject_root / f"run-{run_id:08d}"
        result = IngestResult(run_id=run_id, source_dir=str(directory), ignored=found.ignored)
        known: dict[str, pl.Series] = {}
        try:
            for table in TABLES:
                if any(fk.table == table.name for t in TABLES for fk in t.foreign_keys):
                    known[table.name] = self._lake_keys(table)
                sources = found.sources.get(table.name)
                if not sources:
                    continue
                tr = self._load_table(
                    table, sources, run_id=run_id, today=today, known=known, reject_dir=reject_dir
                )
                result.tables[table.name] = tr
                if table.name in known:
                    known[table.name] = self._lake_keys(table)
        except BaseException as exc:
            with UnitOfWork(self.sessions) as uow:
                failed = uow.session.get(store.IngestRun, run_id)
                assert failed is not None
                failed.status = store.RunStatus.FAILED
                failed.finished_at = self.clock.now()
                failed.error = f"{type(exc).__name__}: {exc}"[:4000]
                uow.commit()
            lake_mod.discard_staging(self.lake)
            raise
        result.seconds = perf_counter() - started
        if result.rejected:
            result.reject_dir = str(reject_dir)
            (reject_dir / "summary.json").write_text(
                json.dumps(result.to_json(), indent=2, ensure_ascii=False)
            )
        with UnitOfWork(self.sessions) as uow:
            done = uow.session.get(store.IngestRun, run_id)
            assert done is not None
            done.status = store.RunStatus.COMPLETED
            done.finished_at = self.clock.now()
            done.rows_loaded = result.loaded
            done.rows_rejected = result.rejected
            done.reject_dir = result.reject_dir
            uow.commit()
        return result

    def _lake_keys(self, table: Table) -> pl.Series:
        if not lake_mod.exists(self.lake, table.name):
            return pl.Series(table.key[0], [], dtype=pl.String)
        return (
            lake_mod.scan(self.lake, table, latest=False).select(table.key[0]).unique().collect().to_series()
        )

    def _load_table(
        self,
        table: Table,
        sources: list[src.Source],
        *,
        run_id: int,
        today: date,
        known: dict[str, pl.Series],
        reject_dir: Path,
    ) -> TableResult:
        t0 = perf_counter()
        tr = TableResult(table=table.name)
        rejects = _Rejects(reject_dir, table)
        staging = lake_mod.staging_dir(self.lake, table.name, run_id)
        staging.mkdir(parents=True, exist_ok=True)
        file_rows: list[dict[str, Any]] = []
        held: list[pl.DataFrame] = []  # good rows of small tables, checked across files at the end
        seq = 0
        per_file: dict[str, list[int]] = {}
        self.progress("start", table.name, 0, None)
        with UnitOfWork(self.sessions) as uow:
            already = {
                s.path: store.loaded_file(uow.session, table_name=table.name, sha256=src.sha256(s.path))
                for s in sources
            }
            digests = {s.path: src.sha256(s.path) for s in sources}
        for source in sources:
            tr.files += 1
            name = source.path.name if source.sheet is None else f"{source.path.name}[{source.sheet}]"
            if already[source.path] is not None:
                tr.unchanged_files += 1
                file_rows.append(
                    self._file_row(source, run_id, digests[source.path], store.FileStatus.UNCHANGED, 0, 0, 0)
                )
                continue
            counts = per_file.setdefault(name, [0, 0, 0])
            for frame in src.batches(source, batch_rows=self.settings.batch_rows):
                checked = validate(table, frame, today=today, known_keys=known)
                rejects.write(checked.rejects)
                counts[0] += frame.height
                counts[2] += checked.rejects.height
                tr.rows_read += frame.height
                if table.large:
                    good = to_lake(table, checked.good, vault=self.vault, run_id=run_id)
                    good.write_parquet(
                        staging / lake_mod.staged_name(run_id, seq), compression="zstd", compression_level=1
                    )
                    seq += 1
                else:
                    held.append(checked.good)
                self.progress("rows", table.name, tr.rows_read, None)
            file_rows.append(
                self._file_row(source, run_id, digests[source.path], store.FileStatus.LOADED, counts[0], 0, 0)
            )

        if table.large:
            self._reject_cross_batch_duplicates(table, staging, rejects, per_file)
        elif held:
            good = pl.concat(held, how="vertical_relaxed")
            dup_keys = [(table.key, "key"), *(((u,), "unique value") for u in table.unique)]
            reasons = [
                pl.when(pl.struct(list(cols)).is_duplicated()).then(
                    pl.format(
                        f"duplicate {what} ({', '.join(cols)}) {{}}: appears in more than one file of this load",
                        pl.concat_str([pl.col(c).cast(pl.String) for c in cols], separator="/"),
                    )
                )
                for cols, what in dup_keys
            ]
            good = good.with_columns(
                pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias("_reasons")
            )
            bad = pl.col("_reasons").is_not_null() & (pl.col("_reasons") != "")
            dups = good.filter(bad)
            if dups.height:
                rejects.write(
                    dups.select(
                        pl.col("_file"),
                        pl.col("_row"),
                        pl.col("_reasons"),
                        *[pl.col(c).cast(pl.String) for c in table.column_names],
                    )
                )
                for fname, n in dups.group_by("_file").len().iter_rows():
                    per_file[fname][2] += n
            good = good.filter(~bad).drop("_reasons")
            if good.height and table.operational and table.unique:
                good = self._reject_taken_unique_values(table, good, rejects, per_file)
            if good.height:
                tokens = tokens_for(table, good, vault=self.vault)
                lake_rows = to_lake(table, good, vault=self.vault, run_id=run_id, tokens=tokens)
                lake_rows.write_parquet(
                    staging / lake_mod.staged_name(run_id, 0), compression="zstd", compression_level=1
                )
                if table.operational:
                    tr.inserted, tr.updated = self._upsert(
                        table, good.drop(META), run_id=run_id, tokens=tokens
                    )

        lake_mod.publish(self.lake, table.name, run_id)
        for row in file_rows:
            counts = per_file.get(row["_name"])
            if counts and row["status"] is store.FileStatus.LOADED:
                row["rows_read"], row["rows_rejected"] = counts[0], counts[2]
                row["rows_loaded"] = counts[0] - counts[2]
        tr.rejected = sum(c[2] for c in per_file.values())
        tr.loaded = tr.rows_read - tr.rejected
        tr.seconds = perf_counter() - t0
        tr.reject_file = str(rejects.path) if rejects.count else None
        with UnitOfWork(self.sessions) as uow:
            for row in file_rows:
                row.pop("_name")
                uow.session.add(store.IngestFile(**row, seconds=tr.seconds))
            uow.commit()
        self.progress("done", table.name, tr.rows_read, tr.rows_read)
        return tr

    def _upsert(
        self, table: Table, good: pl.DataFrame, *, run_id: int, tokens: dict[str, list[str | None]]
    ) -> tuple[int, int]:
        """Write the table's good rows to the database in slices (bounded memory, one transaction)."""
        inserted = updated = 0
        step = 50_000
        now = self.clock.now()
        with UnitOfWork(self.sessions) as uow:
            known = store.existing_hashes(uow.session, table.name, table.key)
            for start in range(0, good.height, step):
                part = good.slice(start, step)
                part_tokens = {k: v[start : start + step] for k, v in tokens.items()}
                rows = to_db_rows(table, part, vault=self.vault, run_id=run_id, now=now, tokens=part_tokens)
                i, u, _ = store.upsert_rows(uow.session, table.name, keys=table.key, rows=rows, known=known)
                inserted += i
                updated += u
            uow.commit()
        return inserted, updated

    def _reject_taken_unique_values(
        self, table: Table, good: pl.DataFrame, rejects: _Rejects, per_file: dict[str, list[int]]
    ) -> pl.DataFrame:
        """Rows whose unique value (an ID number) already belongs to another key in the database."""
        key = table.key[0]
        for unique in table.unique:
            col = table.column(unique)
            kind = _token_kind(table, unique)
            db_col = f"{unique}_token" if col.pii else unique
            with UnitOfWork(self.sessions) as uow:
                owners = store.owners(uow.session, table.name, key=key, column=db_col)
            if not owners:
                continue
            mine = (
                self.vault.tokens(good[unique].to_list(), kind=kind, normalised=True)
                if kind is not None
                else good[unique].to_list()
            )
            taken = [owners.get(t) not in (None, k) for t, k in zip(mine, good[key].to_list(), strict=True)]
            clash = pl.Series("_clash", taken, dtype=pl.Boolean)
            if not clash.any():
                continue
            owner_ids = [owners.get(t) if c else None for t, c in zip(mine, taken, strict=True)]
            hit = good.filter(clash).with_columns(
                pl.format(
                    f"{unique}: already belongs to {key} {{}} from an earlier load",
                    pl.Series([o for o in owner_ids if o is not None], dtype=pl.String),
                ).alias("_reasons")
            )
            rejects.write(
                hit.select(
                    pl.col("_file"),
                    pl.col("_row"),
                    pl.col("_reasons"),
                    *[pl.col(c).cast(pl.String) for c in table.column_names],
                )
            )
            for fname, n in hit.group_by("_file").len().iter_rows():
                per_file[fname][2] += n
            good = good.filter(~clash)
        return good

    def _file_row(
        self,
        source: src.Source,
        run_id: int,
        digest: str,
        status: store.FileStatus,
        read: int,
        loaded: int,
        rejected: int,
    ) -> dict[str, Any]:
        name = source.path.name if source.sheet is None else f"{source.path.name}[{source.sheet}]"
        return {
            "_name": name,
            "run_id": run_id,
            "table_name": source.table.name,
            "path": source.label,
            "sha256": digest,
            "status": status,
            "rows_read": read,
            "rows_loaded": loaded,
            "rows_rejected": rejected,
        }

    def _reject_cross_batch_duplicates(
        self, table: Table, staging: Path, rejects: _Rejects, per_file: dict[str, list[int]]
    ) -> None:
        """Rows whose key appears in more than one batch of this load are all rejected."""
        parts = sorted(staging.glob("*.parquet"))
        if len(parts) < 2:
            return
        keys = list(table.key)
        # A 64-bit hash of each key finds candidates cheaply; keys are compared exactly only
        # for the candidates, so a clean table costs one pass over its key columns.
        hashed = pl.col(keys[0]).hash(seed=0)
        for i, c in enumerate(keys[1:], start=1):
            hashed = hashed.xor(pl.col(c).hash(seed=i))
        hashes = pl.scan_parquet(parts).select(hashed.alias("_h")).collect().to_series()
        suspects = hashes.filter(hashes.is_duplicated()).unique()
        if suspects.len() == 0:
            return
        dup = (
            pl.scan_parquet(parts)
            .filter(hashed.is_in(suspects.implode()))
            .group_by(keys)
            .agg(pl.len().alias("_n"))
            .filter(pl.col("_n") > 1)
            .select(keys)
            .collect()
        )
        if dup.height == 0:
            return
        for part in parts:
            frame = pl.read_parquet(part)
            hit = frame.join(dup, on=keys, how="semi")
            if hit.height == 0:
                continue
            frame.join(dup, on=keys, how="anti").write_parquet(part, compression="zstd", compression_level=1)
            text = _text_of_lake_rows(table, hit).with_columns(hit["_file"], hit["_row"])
            reason = pl.format(
                "duplicate key ({}) {}: appears in more than one batch of this load",
                pl.lit(", ".join(keys)),
                pl.concat_str([pl.col(c).cast(pl.String) for c in keys], separator="/"),
            )
            rejects.write(
                text.select(pl.col("_file"), pl.col("_row"), reason.alias("_reasons"), *table.column_names)
            )
            for fname, n in hit.group_by("_file").len().iter_rows():
                per_file[fname][2] += n


def table_names() -> list[str]:
    return list(BY_NAME)
