"""Audit of staff access to customers' personal data.

Every read of a customer's record by staff (API, console, export) writes one row: who, with
which roles, what (subject and fields), why (purpose), when, and the request id. The rows are
append-only; ``creditfactory audit list`` and ``GET /v1/audit`` read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from creditfactory.db.base import Base
from creditfactory.db.types import UTCDateTime
from creditfactory.security.roles import Principal


class AccessRecord(Base):
    __tablename__ = "security_audit"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    principal_id: Mapped[str] = mapped_column(String(64), index=True)
    roles: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    fields: Mapped[str] = mapped_column(String(400))
    unmasked: Mapped[bool] = mapped_column(default=False)
    purpose: Mapped[str] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(64))


def record_access(
    session: Session,
    *,
    principal: Principal,
    action: str,
    subject_type: str,
    subject_id: str,
    fields: Iterable[str],
    unmasked: bool,
    purpose: str,
    now: datetime,
    request_id: str | None = None,
) -> AccessRecord:
    row = AccessRecord(
        at=now,
        principal_id=principal.id,
        roles=",".join(sorted(r.value for r in principal.roles)),
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        fields=",".join(fields),
        unmasked=unmasked,
        purpose=purpose,
        request_id=request_id,
    )
    session.add(row)
    session.flush()
    return row


def list_access(
    session: Session, *, subject_id: str | None = None, principal_id: str | None = None, limit: int = 100
) -> Sequence[AccessRecord]:
    query = select(AccessRecord).order_by(AccessRecord.id.desc()).limit(limit)
    if subject_id is not None:
        query = query.where(AccessRecord.subject_id == subject_id)
    if principal_id is not None:
        query = query.where(AccessRecord.principal_id == principal_id)
    return session.scalars(query).all()
