"""Tables of the batch runtime: the business date and job runs."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Date, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from creditfactory.db.base import Base
from creditfactory.db.types import UTCDateTime, enum_column


class BusinessDateRow(Base):
    """The bank's business date: advanced only by the end-of-day close."""

    __tablename__ = "jobs_business_date"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    business_date: Mapped[date] = mapped_column(Date())
    last_closed_date: Mapped[date | None] = mapped_column(Date())
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __mapper_args__ = {"version_id_col": version}


class JobStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class JobRun(Base):
    """One run of a job for a business date and partition; a completed run is never redone."""

    __tablename__ = "jobs_run"
    __table_args__ = (UniqueConstraint("job", "business_date", "partition"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job: Mapped[str] = mapped_column(String(100))
    business_date: Mapped[date] = mapped_column(Date())
    partition: Mapped[str] = mapped_column(String(50), default="all")
    position: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus, 16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    items: Mapped[int] = mapped_column(BigInteger(), default=0)
    failed_items: Mapped[int] = mapped_column(BigInteger(), default=0)
    seconds: Mapped[float] = mapped_column(Float(), default=0.0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)


class JobRunItem(Base):
    """An item a job could not process: recorded with its error; the chunk went on."""

    __tablename__ = "jobs_run_item"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger(), index=True)
    item_id: Mapped[str] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
