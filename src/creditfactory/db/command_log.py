"""Idempotency: the command log.

Every repeatable write (an API call with an ``Idempotency-Key``, a CLI command given
``--idempotency-key``) is recorded as (principal, operation, key, request hash). A repeat with
the same body returns the stored result; a repeat while the first is still running is a
conflict (409); the same key with a different body is refused (422).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Mapped, Session, mapped_column

from creditfactory.db import reads
from creditfactory.db.append_only import LastWrite
from creditfactory.db.base import Base
from creditfactory.db.reads import Along
from creditfactory.db.types import UTCDateTime, enum_column
from creditfactory.errors import Conflict, DomainError


class CommandStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"


class CommandLog(Base):
    __tablename__ = "command_log"
    __table_args__ = (UniqueConstraint("principal_id", "operation", "idempotency_key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(128))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[CommandStatus] = mapped_column(enum_column(CommandStatus, 16))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CommandInProgress(Conflict):
    code = "idempotency_in_progress"
    title = "The same request is still being processed"


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    http_status = 422
    title = "Idempotency key reused with a different request"


@dataclass(frozen=True, slots=True)
class StoredResult:
    status: int
    body: Any


def request_hash(payload: Any) -> str:
    """A stable hash of a request body (JSON-normalised when possible)."""
    if isinstance(payload, bytes | bytearray):
        try:
            payload = json.loads(payload or b"null")
        except ValueError:
            return hashlib.sha256(bytes(payload)).hexdigest()
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


_TABLE = CommandLog.__table__
# Built once: a statement built per call pays for its construction and its cache key each time.
_CLAIM = {
    name: dialect.insert(_TABLE)
    .on_conflict_do_nothing(index_elements=["principal_id", "operation", "idempotency_key"])
    .returning(_TABLE.c.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_CLAIM_FIELDS = ("principal_id", "operation", "idempotency_key", "request_hash", "status", "created_at")
#: The claim as a data-modifying ``WITH`` clause, its value the id of the row it added (``NULL``
#: when the key was there): PostgreSQL's statement of a claim with reads along.
_CLAIMED = select(
    _CLAIM["postgresql"]
    .values({name: bindparam(name, type_=_TABLE.c[name].type) for name in _CLAIM_FIELDS})
    .cte("claimed")
    .c.id
).scalar_subquery()
_COMPLETE = (
    update(_TABLE)
    .where(
        _TABLE.c.principal_id == bindparam("p_principal_id"),
        _TABLE.c.operation == bindparam("p_operation"),
        _TABLE.c.idempotency_key == bindparam("p_key"),
    )
    .values(
        {
            name: bindparam(f"v_{name}", type_=_TABLE.c[name].type)
            for name in ("status", "response_status", "response_body", "completed_at")
        }
    )
)


def begin(
    session: Session,
    *,
    principal_id: str,
    operation: str,
    key: str,
    req_hash: str,
    now: datetime,
    along: Along | None = None,
) -> StoredResult | None:
    """Claim the key. Returns the stored result for a completed repeat, ``None`` to proceed.

    The claim is committed by the caller's boundary together with (or before) the work; a
    concurrent duplicate hits the unique constraint and gets :class:`CommandInProgress`.
    On PostgreSQL ``along`` (a read the work asks first) goes in the claim's statement, its row
    given to its ``keep``: the first statement of the transaction brings both. The read sees
    what had committed when that statement started: when the claim waited on a concurrent
    claim of the same key (which then failed), from before that wait, as a read a moment
    earlier would. Its parameters must not be named as the claim's.
    """
    # One statement when the key is new (the common case); a concurrent claim of the same key
    # waits for the other transaction (the claim commits at once) and then inserts nothing.
    conn = session.connection()
    params = {
        "principal_id": principal_id,
        "operation": operation,
        "idempotency_key": key,
        "request_hash": req_hash,
        "status": CommandStatus.RUNNING,
        "created_at": now,
    }
    if along is not None and conn.dialect.name == "postgresql":
        if along.params.keys() & params.keys():
            raise ValueError(
                f"a read along with a claim names claim parameters: {sorted(along.params.keys() & params.keys())}"
            )
        claimed, (row,) = reads.after(conn, _CLAIMED, [along.read], {**along.params, **params})
        along.keep(conn, row)
    else:
        claimed = conn.execute(_CLAIM[conn.dialect.name], params).first()
    if claimed is not None:
        return None
    existing = session.scalars(
        select(CommandLog).where(
            CommandLog.principal_id == principal_id,
            CommandLog.operation == operation,
            CommandLog.idempotency_key == key,
        )
    ).one_or_none()
    if existing is None:  # claimed meanwhile and released again: the other request failed
        raise CommandInProgress(
            f"a request with idempotency key {key!r} for {operation} is already being processed",
            key=key,
        )
    if existing.request_hash != req_hash:
        raise IdempotencyKeyReused(
            f"idempotency key {key!r} was first used for {operation} with a different request body",
            key=key,
        )
    if existing.status is CommandStatus.RUNNING:
        raise CommandInProgress(
            f"a request with idempotency key {key!r} for {operation} is still being processed", key=key
        )
    body = json.loads(existing.response_body) if existing.response_body else None
    return StoredResult(status=existing.response_status or 200, body=body)


def completion(
    *,
    principal_id: str,
    operation: str,
    key: str,
    status: int,
    body: Any,
    now: datetime,
    rendered: str | None = None,
) -> LastWrite:
    """The write that stores the response of a claimed command: ``body``, or its JSON text
    already ``rendered``. Given to the commit (``UnitOfWork.commit(last=…)``), it is written in
    the commit's own statement on PostgreSQL, with the rows only ever added (see
    :mod:`creditfactory.db.append_only`): the claim's row depends on none of what the work wrote.
    A claim that is not there to complete fails the commit (``NoResultFound``); written at once
    instead, ``append_only.write_now`` fails the same way."""
    return LastWrite(
        statement=_COMPLETE,
        params={
            "p_principal_id": principal_id,
            "p_operation": operation,
            "p_key": key,
            "v_status": CommandStatus.COMPLETED,
            "v_response_status": status,
            "v_response_body": rendered
            if rendered is not None
            else json.dumps(body, default=str, ensure_ascii=False),
            "v_completed_at": now,
        },
        rows=1,
        refused=lambda: NoResultFound(f"no claim of idempotency key {key!r} for {operation} to complete"),
    )


def release(session: Session, *, principal_id: str, operation: str, key: str) -> None:
    """Drop a claim whose work failed, so that a retry with the same key runs the work again.

    A completed command is kept: its stored result is what every repeat gets.
    """
    session.execute(
        delete(CommandLog).where(
            CommandLog.principal_id == principal_id,
            CommandLog.operation == operation,
            CommandLog.idempotency_key == key,
            CommandLog.status == CommandStatus.RUNNING,
        )
    )
    session.flush()
