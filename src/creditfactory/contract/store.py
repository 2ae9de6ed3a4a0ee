"""Database side of the contract: operational copies of extract tables and the ingestion log.

The operational tables (branches, staff, customers, negative list) are derived from their
declarations in :mod:`creditfactory.contract.tables`, so a column is declared once:

* key columns become the primary key, foreign keys become constraints;
* amounts are ``BIGINT`` fen, rates ``BIGINT`` at scale 1e-8 (through ``ScaledInt``);
* a personal-data column ``x`` becomes ``x_token`` (keyed hash, indexed, for look-ups and joins)
  and ``x_enc`` (AES-GCM ciphertext); the clear value is never stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from creditfactory.contract import tables as spec
from creditfactory.db.base import Base
from creditfactory.db.types import Rate, ScaledInt, UTCDateTime, enum_column

#: Database table name of each operational extract table (singular, domain-prefixed).
DB_NAMES: Mapping[str, str] = {
    "branches": "contract_branch",
    "staff": "contract_staff",
    "customers": "contract_customer",
    "negative_list": "contract_negative_entry",
}

_BOOKKEEPING = ("batch_id", "row_hash", "loaded_at")


def _sa_type(col: spec.Column) -> Any:
    t = spec.ColumnType
    match col.type:
        case t.STRING | t.CODE:
            return String(col.max_length or 64)
        case t.INT:
            return BigInteger()
        case t.FLOAT:
            return Float()
        case t.AMOUNT:
            return ScaledInt(2)
        case t.RATE:
            return Rate
        case t.DATE | t.MONTH:
            return Date()
        case t.BOOL:
            return Boolean()
        case _:
            return String(64)


def tokenised(table: spec.Table, col: spec.Column) -> bool:
    """Whether a personal-data column also gets a lookup token (ID numbers, phones, listed values)."""
    return col.type in (spec.ColumnType.ID_NUMBER, spec.ColumnType.PHONE) or (
        table.name == "negative_list" and col.name == "value"
    )


def db_columns(table: spec.Table) -> list[str]:
    """Column names of the operational table, in order (PII split into token and ciphertext)."""
    names: list[str] = []
    for col in table.columns:
        if col.pii:
            names += (
                [f"{col.name}_token", f"{col.name}_enc"] if tokenised(table, col) else [f"{col.name}_enc"]
            )
        else:
            names.append(col.name)
    return names


def _build(table: spec.Table) -> Table:
    cols: list[Any] = []
    for col in table.columns:
        nullable = not col.required
        if col.pii:
            if tokenised(table, col):
                cols.append(Column(f"{col.name}_token", String(64), nullable=nullable, index=True))
            cols.append(Column(f"{col.name}_enc", Text(), nullable=nullable))
        else:
            cols.append(Column(col.name, _sa_type(col), nullable=nullable and col.name not in table.key))
    cols += [
        Column("batch_id", BigInteger(), nullable=False),
        Column("row_hash", String(32), nullable=False),
        Column("loaded_at", UTCDateTime(), nullable=False),
    ]
    constraints: list[Any] = [PrimaryKeyConstraint(*table.key)]
    for fk in table.foreign_keys:
        if fk.table in DB_NAMES:
            constraints.append(ForeignKeyConstraint([fk.column], [f"{DB_NAMES[fk.table]}.{fk.ref_column}"]))
    for unique in table.unique:
        column = table.column(unique)
        constraints.append(UniqueConstraint(f"{unique}_token" if column.pii else unique))
    built = Table(DB_NAMES[table.name], Base.metadata, *cols, *constraints)
    for fk in table.foreign_keys:
        Index(f"ix_{DB_NAMES[table.name]}_{fk.column}", built.c[fk.column])
    return built


OPERATIONAL: dict[str, Table] = {t.name: _build(t) for t in spec.TABLES if t.operational}


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class FileStatus(StrEnum):
    LOADED = "loaded"
    UNCHANGED = "unchanged"
    FAILED = "failed"


class IngestRun(Base):
    __tablename__ = "contract_ingest_run"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source_dir: Mapped[str] = mapped_column(String(500))
    status: Mapped[RunStatus] = mapped_column(enum_column(RunStatus, 16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rows_loaded: Mapped[int] = mapped_column(BigInteger(), default=0)
    rows_rejected: Mapped[int] = mapped_column(BigInteger(), default=0)
    reject_dir: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)


class IngestFile(Base):
    __tablename__ = "contract_ingest_file"
    __table_args__ = (Index("ix_contract_ingest_file_table_sha", "table_name", "sha256"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger(), index=True)
    table_name: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[FileStatus] = mapped_column(enum_column(FileStatus, 16))
    rows_read: Mapped[int] = mapped_column(BigInteger(), default=0)
    rows_loaded: Mapped[int] = mapped_column(BigInteger(), default=0)
    rows_rejected: Mapped[int] = mapped_column(BigInteger(), default=0)
    seconds: Mapped[float] = mapped_column(Float(), default=0.0)


def loaded_file(session: Session, *, table_name: str, sha256: str) -> IngestFile | None:
    return session.scalars(
        select(IngestFile)
        .where(
            IngestFile.table_name == table_name,
            IngestFile.sha256 == sha256,
            IngestFile.status == FileStatus.LOADED,
        )
        .order_by(IngestFile.id)
        .limit(1)
    ).first()


def existing_hashes(session: Session, table_name: str, keys: Sequence[str]) -> dict[tuple[Any, ...], str]:
    table = OPERATIONAL[table_name]
    key_cols = [table.c[k] for k in keys]
    rows = session.execute(select(*key_cols, table.c.row_hash)).all()
    return {tuple(r[:-1]): r[-1] for r in rows}


def upsert_rows(
    session: Session,
    table_name: str,
    *,
    keys: Sequence[str],
    rows: Iterable[dict[str, Any]],
    chunk: int = 5_000,
    known: dict[tuple[Any, ...], str] | None = None,
) -> tuple[int, int, int]:
    """Insert new keys, update changed rows, leave identical rows alone.

    Returns (inserted, updated, unchanged). Rows carry ``row_hash``; equality of hashes means
    the row is unchanged, so a re-run writes nothing. ``known`` (key → hash, from
    :func:`existing_hashes`) lets a caller that upserts in slices read the table once.
    """
    table = OPERATIONAL[table_name]
    if known is None:
        known = existing_hashes(session, table_name, keys)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    unchanged = 0
    for row in rows:
        k = tuple(row[c] for c in keys)
        old = known.get(k)
        if old is None:
            inserts.append(row)
        elif old != row["row_hash"]:
            updates.append(row)
        else:
            unchanged += 1
    conn = session.connection()
    for i in range(0, len(inserts), chunk):
        _insert_many(conn, table, inserts[i : i + chunk])
    if updates:
        cols = [c for c in updates[0] if c not in keys]
        stmt = (
            update(table)
            .where(*[table.c[k] == bindparam(f"k_{k}") for k in keys])
            .values({c: bindparam(f"v_{c}") for c in cols})
        )
        params = [{**{f"k_{k}": r[k] for k in keys}, **{f"v_{c}": r[c] for c in cols}} for r in updates]
        for i in range(0, len(params), chunk):
            conn.execute(stmt, params[i : i + chunk])
    return len(inserts), len(updates), unchanged


def _insert_many(conn: Any, table: Table, rows: list[dict[str, Any]]) -> None:
    """Bulk insert. On SQLite the column types' own bind processors convert the values and the
    driver's ``executemany`` runs the statement, which spares the per-row statement bookkeeping
    (several times faster for a million customers); elsewhere a Core ``insert``."""
    if not rows:
        return
    dialect = conn.dialect
    if dialect.name != "sqlite":
        conn.execute(insert(table), rows)
        return
    names = list(rows[0])
    processors = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
    columns = []
    for name, proc in zip(names, processors, strict=True):
        values = [row[name] for row in rows]
        columns.append([None if v is None else proc(v) for v in values] if proc else values)
    params = list(zip(*columns, strict=True))
    cols = ", ".join(f'"{n}"' for n in names)
    marks = ", ".join("?" for _ in names)
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})', params)


def owners(session: Session, table_name: str, *, key: str, column: str) -> dict[Any, Any]:
    """Map of a unique column's stored values (tokens for personal data) to the key holding them."""
    table = OPERATIONAL[table_name]
    return {v: k for k, v in session.execute(select(table.c[key], table.c[column])) if v is not None}


def count_rows(session: Session, table_name: str) -> int:
    return int(session.scalar(select(func.count()).select_from(OPERATIONAL[table_name])) or 0)


def key_values(session: Session, table_name: str, column: str) -> list[Any]:
    table = OPERATIONAL[table_name]
    return list(session.scalars(select(table.c[column])))
