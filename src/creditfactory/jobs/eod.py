"""The end-of-day orchestrator: an ordered list of named steps that domains register.

``run_eod`` closes the open business date D: it runs every registered step for D in order,
each recorded in ``jobs_run`` under (step, D, "all"). A step processes its work set-based in
chunks that commit alone and move a watermark, so a step that dies half-way resumes where it
stopped; a completed step is never run again for D. When every step has completed, D is closed
and D+1 opened. Running a closed date again finds nothing to do and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from time import perf_counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from creditfactory.clock import Clock
from creditfactory.db.uow import UnitOfWork
from creditfactory.errors import DomainError
from creditfactory.jobs.business_date import BusinessDateNotOpen, close_and_open, current_business_date
from creditfactory.jobs.store import BusinessDateRow, JobRun, JobStatus


class EodStepFailed(DomainError):
    code = "eod_step_failed"
    http_status = 500
    title = "End-of-day step failed"


@dataclass(frozen=True, slots=True)
class StepContext:
    sessions: sessionmaker[Session]
    clock: Clock
    business_date: date
    chunk_size: int = 50_000
    services: dict[str, Any] = field(default_factory=dict)
    """Adapters a step may need (the PII vault, the lake directory …), by name."""

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions)


@dataclass(slots=True)
class StepResult:
    items: int = 0
    failed: int = 0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EodStep:
    name: str
    order: int
    run: Callable[[StepContext], StepResult]
    description: str = ""


class StepRegistry:
    def __init__(self) -> None:
        self._steps: dict[str, EodStep] = {}

    def register(self, step: EodStep) -> EodStep:
        existing = self._steps.get(step.name)
        if existing is not None and existing.run is not step.run:
            raise ValueError(f"end-of-day step {step.name!r} is registered twice")
        self._steps[step.name] = step
        return step

    def steps(self) -> list[EodStep]:
        return sorted(self._steps.values(), key=lambda s: (s.order, s.name))


registry = StepRegistry()


@dataclass(slots=True)
class StepOutcome:
    name: str
    status: str
    items: int
    failed: int
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EodReport:
    business_date: date
    steps: list[StepOutcome]
    next_date: date | None
    already_closed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "business_date": self.business_date.isoformat(),
            "next_date": self.next_date.isoformat() if self.next_date else None,
            "already_closed": self.already_closed,
            "steps": [
                {
                    "name": s.name,
                    "status": s.status,
                    "items": s.items,
                    "failed": s.failed,
                    "seconds": round(s.seconds, 3),
                    **s.details,
                }
                for s in self.steps
            ],
        }


def _run_row(session: Session, step: str, on: date) -> JobRun | None:
    return session.scalars(
        select(JobRun).where(JobRun.job == step, JobRun.business_date == on, JobRun.partition == "all")
    ).one_or_none()


def run_eod(
    *,
    sessions: sessionmaker[Session],
    clock: Clock,
    business_date: date | None = None,
    steps: list[EodStep] | None = None,
    chunk_size: int = 50_000,
    services: dict[str, Any] | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> EodReport:
    """Close the open business date (or check that ``business_date`` is it)."""
    steps = registry.steps() if steps is None else steps
    say = progress or (lambda *_: None)
    with UnitOfWork(sessions) as uow:
        row = uow.session.get(BusinessDateRow, "default")
        if row is None:
            current_business_date(uow.session)  # raises the clear "not open" error
        assert row is not None
        open_date = row.business_date
        last_closed = row.last_closed_date
    on = business_date or open_date
    if on != open_date:
        if last_closed is not None and on <= last_closed:
            return EodReport(business_date=on, steps=[], next_date=None, already_closed=True)
        raise BusinessDateNotOpen(
            f"the open business date is {open_date.isoformat()}; {on.isoformat()} cannot be closed now"
        )
    ctx = StepContext(
        sessions=sessions, clock=clock, business_date=on, chunk_size=chunk_size, services=services or {}
    )
    outcomes: list[StepOutcome] = []
    for step in steps:
        with UnitOfWork(sessions) as uow:
            run = _run_row(uow.session, step.name, on)
            if run is not None and run.status is JobStatus.COMPLETED:
                outcomes.append(StepOutcome(step.name, "done before", run.items, run.failed_items, 0.0))
                continue
            if run is None:
                run = JobRun(
                    job=step.name,
                    business_date=on,
                    partition="all",
                    status=JobStatus.RUNNING,
                    attempts=0,
                    started_at=clock.now(),
                )
                uow.session.add(run)
            run.status = JobStatus.RUNNING
            run.attempts += 1
            run.error = None
            uow.commit()
            run_id = run.id
        say(step.name, "start")
        t0 = perf_counter()
        try:
            result = step.run(ctx)
        except Exception as exc:
            with UnitOfWork(sessions) as uow:
                failed = uow.session.get(JobRun, run_id)
                assert failed is not None
                failed.status = JobStatus.FAILED
                failed.error = f"{type(exc).__name__}: {exc}"[:4000]
                failed.seconds += perf_counter() - t0
                uow.commit()
            raise EodStepFailed(
                f"end of day {on.isoformat()} stopped in step {step.name}: {exc}; fix the cause and run it "
                "again: completed steps are not repeated and this one resumes where it stopped",
                step=step.name,
            ) from exc
        seconds = perf_counter() - t0
        with UnitOfWork(sessions) as uow:
            done = uow.session.get(JobRun, run_id)
            assert done is not None
            done.status = JobStatus.COMPLETED
            done.items += result.items
            done.failed_items += result.failed
            done.seconds += seconds
            done.finished_at = clock.now()
            uow.commit()
        say(step.name, "done")
        outcomes.append(
            StepOutcome(step.name, "completed", result.items, result.failed, seconds, result.details)
        )
    with UnitOfWork(sessions) as uow:
        next_date = close_and_open(uow.session, closing=on, clock=clock)
        uow.commit()
    return EodReport(business_date=on, steps=outcomes, next_date=next_date)


def status(session: Session, *, business_date: date) -> list[JobRun]:
    return list(
        session.scalars(select(JobRun).where(JobRun.business_date == business_date).order_by(JobRun.id))
    )
