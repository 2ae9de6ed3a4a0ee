"""Tables of the whitelist: versions and their published entries (the offers).

A version's every line (eligible and excluded, with reasons) lives in the lake
(``LAKE/whitelist/v<id>/``); the database holds the version and one entry per eligible customer,
which is what offer look-ups, campaigns and status changes use. Limits are ``BIGINT`` fen and
rates ``BIGINT`` at scale 1e-8 through ``ScaledInt``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    insert,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from creditfactory.db.base import Base
from creditfactory.db.types import Money, Rate, UTCDateTime, enum_column
from creditfactory.whitelist.model import EntryStatus, VersionStatus

_ID = BigInteger().with_variant(Integer, "sqlite")


class WhitelistVersion(Base):
    __tablename__ = "whitelist_version"
    __table_args__ = (Index("ix_whitelist_version_name_status", "name", "status"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    identity: Mapped[str] = mapped_column(String(64), unique=True)
    """Digest of (kind, name, as-of, strategy, models, input): the same inputs, the same version."""
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    """``mined`` by a strategy or ``imported`` from the Excel template."""
    status: Mapped[VersionStatus] = mapped_column(enum_column(VersionStatus, 16))
    as_of: Mapped[date] = mapped_column(Date())
    strategy_name: Mapped[str | None] = mapped_column(String(100))
    strategy_version: Mapped[str | None] = mapped_column(String(32))
    strategy_hash: Mapped[str] = mapped_column(String(64))
    models: Mapped[str] = mapped_column(Text(), default="{}")
    """JSON: segment -> ``name@version`` of the models that scored it."""
    input_fingerprint: Mapped[str] = mapped_column(String(64))
    engine: Mapped[str] = mapped_column(String(16), default="local")
    scored: Mapped[int] = mapped_column(BigInteger, default=0)
    eligible: Mapped[int] = mapped_column(BigInteger, default=0)
    excluded: Mapped[int] = mapped_column(BigInteger, default=0)
    total_limit: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    expiry_date: Mapped[date | None] = mapped_column(Date())
    summary: Mapped[str] = mapped_column(Text(), default="{}")
    """JSON: counts and limits by segment, grade and branch; exclusions by reason."""
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When it was superseded or retired."""


class WhitelistEntry(Base):
    """One pre-approved customer of a published version: the offer and its status."""

    __tablename__ = "whitelist_entry"
    __table_args__ = (
        Index("ix_whitelist_entry_customer", "customer_id", "version_id"),
        Index("ix_whitelist_entry_version_status", "version_id", "status"),
    )

    version_id: Mapped[int] = mapped_column(ForeignKey("whitelist_version.id"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    segment: Mapped[str | None] = mapped_column(String(16))
    branch_id: Mapped[str | None] = mapped_column(String(16))
    grade: Mapped[str | None] = mapped_column(String(8))
    score: Mapped[float | None] = mapped_column(Float)
    limit_amount: Mapped[Decimal] = mapped_column(Money)
    annual_rate: Mapped[Decimal] = mapped_column(Rate)
    expiry_date: Mapped[date] = mapped_column(Date())
    reasons: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[EntryStatus] = mapped_column(enum_column(EntryStatus, 16))
    status_date: Mapped[date] = mapped_column(Date())
    status_reason: Mapped[str | None] = mapped_column(String(200))


ENTRY_COLUMNS = (
    "version_id",
    "customer_id",
    "segment",
    "branch_id",
    "grade",
    "score",
    "limit_amount",
    "annual_rate",
    "expiry_date",
    "reasons",
    "status",
    "status_date",
    "status_reason",
)


def get(session: Session, version_id: int) -> WhitelistVersion | None:
    return session.get(WhitelistVersion, version_id)


def get_by_identity(session: Session, identity: str) -> WhitelistVersion | None:
    return session.scalars(
        select(WhitelistVersion).where(WhitelistVersion.identity == identity)
    ).one_or_none()


def list_versions(session: Session, *, limit: int = 50) -> Sequence[WhitelistVersion]:
    return session.scalars(select(WhitelistVersion).order_by(WhitelistVersion.id.desc()).limit(limit)).all()


def add_entries(session: Session, rows: Iterable[tuple[Any, ...]], *, chunk: int = 20_000) -> int:
    """Bulk insert entries given as tuples in :data:`ENTRY_COLUMNS` order (values already in
    their at-rest form: fen and rate integers, status strings).

    ``COPY`` on PostgreSQL, then ``ANALYZE``: the planner's statistics are those of the
    entries as published, not its guesses for a table it has never sampled (on which it read a
    customer's entries through the version-and-status index, every entry of the version, at each
    application: 150 buffers instead of 4; the role that owns the tables, as the migrations
    make them, may analyse them). The driver's ``executemany`` on SQLite.
    """
    conn = session.connection()
    table = WhitelistEntry.__table__
    names = ", ".join(ENTRY_COLUMNS)
    count = 0
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
                count += 1
        conn.exec_driver_sql(f"ANALYZE {table.name}")  # type: ignore[attr-defined]
        return count
    marks = ", ".join("?" for _ in ENTRY_COLUMNS)
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # type: ignore[attr-defined]
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(tuple(v.isoformat() if isinstance(v, date) else v for v in row))
        if len(batch) >= chunk:
            conn.exec_driver_sql(sql, batch)
            count += len(batch)
            batch = []
    if batch:
        conn.exec_driver_sql(sql, batch)
        count += len(batch)
    return count


def add_entry(session: Session, **values: Any) -> None:
    session.execute(insert(WhitelistEntry), [values])
