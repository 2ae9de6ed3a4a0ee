"""Tables of the decisions themselves: the published decision strategies and the decision records.

* ``decisioning_strategy`` — every decision strategy file published: its text (so that a replay
  years later runs exactly what decided), name, version, SHA-256, the role it was published in
  (``champion`` or ``challenger``), the challenger's traffic share and mode (``shadow``: recorded
  only; ``live``: its outcome is the application's), and whether it is still active.
* ``decisioning_decision`` — one row per strategy that decided an application: the inputs (the
  application's fields, the portrait row used and its as-of, the facts), the strategy and model
  versions, scores, rule hits with reasons, outcome, grade, limit and price, the role and whether
  this record moved the application, and the time each stage took.

JSON columns hold plain values only (numbers, text, booleans, ISO dates), so that what is read
back is exactly what was evaluated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    insert,
    select,
    update,
)

from creditfactory.db import reference
from creditfactory.db.base import Base
from creditfactory.db.types import ScaledInt, UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")

strategy_table = Table(
    "decisioning_strategy",
    Base.metadata,
    Column("id", _ID, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("version", Integer()),
    Column("sha256", String(64), nullable=False),
    Column("text", Text(), nullable=False),
    Column("source", String(500), nullable=False),
    Column("role", String(16), nullable=False),
    Column("share_bp", Integer(), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("active", Boolean(), nullable=False),
    Column("published_at", UTCDateTime(), nullable=False),
    Column("published_by", String(64), nullable=False),
    Column("retired_at", UTCDateTime()),
    Index("ix_decisioning_strategy_active_role", "active", "role"),
)

decision_table = Table(
    "decisioning_decision",
    Base.metadata,
    Column("id", _ID, primary_key=True),
    Column("application_id", BigInteger(), nullable=False),
    Column("customer_id", String(20), nullable=False),
    Column("strategy_id", _ID, ForeignKey("decisioning_strategy.id"), nullable=False),
    Column("strategy_name", String(100), nullable=False),
    Column("strategy_version", Integer()),
    Column("strategy_sha256", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("applied", Boolean(), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason_code", String(64)),
    Column("grade", String(16)),
    Column("limit", ScaledInt(2)),
    Column("annual_rate", ScaledInt(8)),
    Column("segment", String(64)),
    Column("score", Float()),
    Column("pd", Float()),
    Column("business_date", Date(), nullable=False),
    Column("decided_at", UTCDateTime(), nullable=False),
    Column("portrait_as_of", Date()),
    Column("whitelisted", Boolean(), nullable=False),
    Column("inputs", Text(), nullable=False),
    Column("models", Text(), nullable=False),
    Column("hits", Text(), nullable=False),
    Column("reasons", Text(), nullable=False),
    Column("variables", Text(), nullable=False),
    Column("timings", Text(), nullable=False),
    Column("total_ms", Float(), nullable=False),
    UniqueConstraint("application_id", "role"),
    Index("ix_decisioning_decision_business_date", "business_date"),
)

_JSON = ("inputs", "models", "hits", "reasons", "variables", "timings")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# ------------------------------------------------------------------ strategies


def add_strategy(conn: Connection, **values: Any) -> int:
    added = int(
        conn.execute(insert(strategy_table).values(**values).returning(strategy_table.c.id)).scalar_one()
    )
    reference.wrote(conn)
    return added


def retire_active(conn: Connection, *, role: str, at: datetime) -> int:
    """Deactivate the active strategies of a role; returns how many."""
    result = conn.execute(
        update(strategy_table)
        .where(strategy_table.c.active.is_(True), strategy_table.c.role == role)
        .values(active=False, retired_at=at)
    )
    reference.wrote(conn)
    return int(result.rowcount or 0)


def active_strategies(conn: Connection) -> list[Mapping[str, Any]]:
    """The active strategies without their text (asked on every decision: a strategy's text
    never changes once published, so it is read only where it is compiled, by
    :func:`strategy_text`). Kept in memory while the reference data's stamp is unchanged
    (:mod:`creditfactory.db.reference`)."""
    return list(reference.cached(conn, _ACTIVE_KEY, lambda: tuple(conn.execute(_ACTIVE).mappings())))


def strategy_text(conn: Connection, strategy_id: int) -> str | None:
    text: str | None = conn.execute(_TEXT, {"id": strategy_id}).scalar()
    return text


def list_strategies(conn: Connection) -> list[Mapping[str, Any]]:
    return list(conn.execute(select(strategy_table).order_by(strategy_table.c.id)).mappings())


def get_strategy(conn: Connection, strategy_id: int) -> Mapping[str, Any] | None:
    return conn.execute(select(strategy_table).where(strategy_table.c.id == strategy_id)).mappings().first()


# ------------------------------------------------------------------ decisions


# Built once: a statement built per call pays for its construction and its cache key each time.
_ADD_DECISION = insert(decision_table).returning(decision_table.c.id)
_ACTIVE = (
    select(*(c for c in strategy_table.c if c.key != "text"))
    .where(strategy_table.c.active.is_(True))
    .order_by(strategy_table.c.id)
)
_TEXT = select(strategy_table.c.text).where(strategy_table.c.id == bindparam("id"))
_ACTIVE_KEY = "decisioning.active_strategies"


def add_decision(conn: Connection, **values: Any) -> int:
    row = {k: (dumps(v) if k in _JSON else v) for k, v in values.items()}
    return int(conn.execute(_ADD_DECISION, row).scalar_one())


def decoded_copy(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values as written, with the JSON columns as a read gives them back."""
    return {k: (json.loads(dumps(v)) if k in _JSON else v) for k, v in values.items()}


def _decoded(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: (json.loads(v) if k in _JSON else v) for k, v in row.items()}


def get_decision(conn: Connection, decision_id: int) -> dict[str, Any] | None:
    return _decoded(
        conn.execute(select(decision_table).where(decision_table.c.id == decision_id)).mappings().first()
    )


def decisions_of(conn: Connection, application_id: int) -> list[dict[str, Any]]:
    stmt = (
        select(decision_table)
        .where(decision_table.c.application_id == application_id)
        .order_by(decision_table.c.id)
    )
    return [d for d in (_decoded(r) for r in conn.execute(stmt).mappings()) if d is not None]


def list_decisions(
    conn: Connection,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    role: str | None = None,
    outcome: str | None = None,
    after_id: int | None = None,
    limit: int | None = 50,
    full: bool = False,
) -> list[dict[str, Any]]:
    """Decisions in id order; ``full`` reads the JSON columns too (a back-test needs the inputs)."""
    t = decision_table
    cols: Sequence[Any] = [t] if full else [c for c in t.c if c.name not in _JSON or c.name == "timings"]
    stmt = select(*cols).order_by(t.c.id)
    if date_from is not None:
        stmt = stmt.where(t.c.business_date >= date_from)
    if date_to is not None:
        stmt = stmt.where(t.c.business_date <= date_to)
    if role is not None:
        stmt = stmt.where(t.c.role == role)
    if outcome is not None:
        stmt = stmt.where(t.c.outcome == outcome)
    if after_id is not None:
        stmt = stmt.where(t.c.id > after_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [d for d in (_decoded(r) for r in conn.execute(stmt).mappings()) if d is not None]


__all__ = [
    "add_decision",
    "add_strategy",
    "active_strategies",
    "decision_table",
    "decoded_copy",
    "decisions_of",
    "dumps",
    "get_decision",
    "get_strategy",
    "list_decisions",
    "list_strategies",
    "retire_active",
    "strategy_table",
]
