"""The model registry table and its queries.

One row per model version: who trained it and when, its status (draft, approved, retired) with
who approved or retired it and when, where its artefacts are (relative to the models directory)
and the SHA-256 of its manifest. The artefacts themselves live in files; the row is what says
which version may be used.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Float,
    Index,
    Integer,
    String,
    UniqueConstraint,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from creditfactory.db import reference
from creditfactory.db.base import Base
from creditfactory.db.types import UTCDateTime, enum_column
from creditfactory.db.uow import flush_pending
from creditfactory.modeling.model.lifecycle import ModelStatus

_ID = BigInteger().with_variant(Integer, "sqlite")


class ModelVersion(Base):
    __tablename__ = "modeling_model_version"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        Index("ix_modeling_model_version_status", "name", "status"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    segment: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[ModelStatus] = mapped_column(enum_column(ModelStatus, 16))
    trained_by: Mapped[str] = mapped_column(String(64))
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime())
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retired_by: Mapped[str | None] = mapped_column(String(64))
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    artefact_path: Mapped[str] = mapped_column(String(200))
    """Directory of the artefacts, relative to the models directory (``<name>/v<version>``)."""
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    auc: Mapped[float | None] = mapped_column(Float())
    """Headline AUC (out-of-time if there was such a sample, else the in-time test)."""
    ks: Mapped[float | None] = mapped_column(Float())

    @property
    def ref(self) -> str:
        return f"{self.name} v{self.version}"


def get(session: Session, name: str, version: int) -> ModelVersion | None:
    return session.scalars(
        select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
    ).one_or_none()


def get_newest_approved(session: Session, name: str) -> ModelVersion | None:
    return session.scalars(
        select(ModelVersion)
        .where(ModelVersion.name == name, ModelVersion.status == ModelStatus.APPROVED)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    ).one_or_none()


def next_version(session: Session, name: str) -> int:
    current = session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.name == name))
    return int(current or 0) + 1


def list_versions(
    session: Session, name: str | None = None, status: ModelStatus | None = None
) -> Sequence[ModelVersion]:
    query = select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version)
    if name is not None:
        query = query.where(ModelVersion.name == name)
    if status is not None:
        query = query.where(ModelVersion.status == status)
    return session.scalars(query).all()


def newest_approved(session: Session, name: str) -> int | None:
    """The highest approved version of a model (one look-up of the ``(name, status)`` index;
    asked on every decision that names no version, so built once and run on the connection).

    A model version added or changed in this session and not yet written is written first
    (:func:`creditfactory.db.flush_pending`); a decision's pending application, events and
    messages wait for their own flush."""
    flush_pending(session, ModelVersion)
    conn = session.connection()
    version: int | None = reference.cached(
        conn,
        ("modeling.newest_approved", name),
        lambda: conn.execute(_NEWEST_APPROVED, {"name": name}).scalar(),
    )
    return version


_NEWEST_APPROVED = select(func.max(ModelVersion.version)).where(
    ModelVersion.name == bindparam("name"), ModelVersion.status == ModelStatus.APPROVED
)


def add(session: Session, row: ModelVersion) -> ModelVersion:
    session.add(row)
    session.flush()
    return row


def save_status(
    session: Session,
    row: ModelVersion,
    *,
    expected: ModelStatus,
    status: ModelStatus,
    by: str,
    at: datetime,
) -> bool:
    """Move ``row`` from ``expected`` to ``status`` in one conditional UPDATE; False if it moved first."""
    values: dict[str, object] = {"status": status}
    if status is ModelStatus.APPROVED:
        values.update(approved_by=by, approved_at=at)
    elif status is ModelStatus.RETIRED:
        values.update(retired_by=by, retired_at=at)
    result = session.execute(
        update(ModelVersion)
        .where(ModelVersion.id == row.id, ModelVersion.status == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    reference.wrote(session.connection())
    session.flush()
    session.refresh(row)
    return bool(result.rowcount)
