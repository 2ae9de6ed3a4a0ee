"""The end-of-day orchestrator: an ordered list of named steps that domains register.

``run_eod`` closes the open business date D: it runs every registered step for D in order,
each recorded in ``jobs_run`` under (step, D, "all"). A step processes its work set-based in
chunks that commit alone and move a watermark, so a step that dies half-way resumes where it
stopped; a completed step is never run again for D. When every step has completed, D is closed
and D+1 opened. Running a closed date again finds nothing to do and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime
from time import perf_counter
from typing import Any, TypeVar

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from creditfactory.clock import Clock
from creditfactory.db.uow import UnitOfWork
from creditfactory.errors import DomainError
from creditfactory.jobs.business_date import BusinessDateNotOpen, close_and_open, current_business_date
from creditfactory.jobs.store import BusinessDateRow, JobRun, JobStatus

C = TypeVar("C")
R = TypeVar("R")


def default_workers(sessions: sessionmaker[Session]) -> int:
    """Chunks run at once by default: two on PostgreSQL (a server process per connection), one
    on SQLite (one writer at a time)."""
    bind = sessions.kw.get("bind")
    return 2 if bind is not None and bind.dialect.name == "postgresql" else 1


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
    workers: int = 1
    """Chunks a step may run at once, each in its own transaction on its own connection
    (:meth:`each_chunk`); 1 runs them one after the other."""

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions)

    def each_chunk(self, chunks: Iterable[C], work: Callable[[C], R]) -> list[R]:
        """``work(chunk)`` for every chunk, ``workers`` at a time, results in the chunks' order.

        Each call must do its chunk in a transaction of its own (``with ctx.uow()``) on rows no
        other chunk touches (an id range). With two or more workers the database works on one
        chunk while Python computes the next: on PostgreSQL each connection has its own server
        process, so both cores work. The first chunk runs alone. If a chunk fails, the chunks already running finish (each
        commits or rolls back alone), no new one starts, and the first error is raised: the
        step resumes from its watermarks like a step that failed one chunk at a time.
        """
        if self.workers <= 1:
            return [work(chunk) for chunk in chunks]
        iterator = enumerate(chunks)
        first = next(iterator, None)
        if first is None:
            return []
        # The first chunk runs alone: it creates what the step creates on first use (a journal
        # account, say), so that two chunks never race to insert it.
        results: dict[int, R] = {0: work(first[1])}
        failure: BaseException | None = None
        with ThreadPoolExecutor(self.workers, thread_name_prefix="eod-chunk") as pool:
            pending: dict[Future[R], int] = {}
            while True:
                while failure is None and len(pending) < self.workers:
                    item = next(iterator, None)
                    if item is None:
                        break
                    pending[pool.submit(work, item[1])] = item[0]
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    position = pending.pop(future)
                    error = future.exception()
                    if error is not None:
                        failure = failure or error
                    else:
                        results[position] = future.result()
        if failure is not None:
            raise failure
        return [results[k] for k in sorted(results)]


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


_RUN = JobRun.__table__


def _start_statement(dialect: Any) -> Any:
    ins = dialect.insert(_RUN)
    return ins.on_conflict_do_update(
        index_elements=[_RUN.c.job, _RUN.c.business_date, _RUN.c.partition],
        set_={"status": JobStatus.RUNNING, "attempts": _RUN.c.attempts + 1, "error": None},
        where=_RUN.c.status != JobStatus.COMPLETED,
    ).returning(_RUN.c.id)


_STARTS = {
    name: _start_statement(dialect) for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def _start(conn: Connection, step: str, on: date, now: datetime) -> int | None:
    """Mark ``step``'s run for ``on`` running, its attempts counted: a new row, or the one a
    failed or interrupted attempt left, in one statement. None when the run had completed (the
    row is left as it was). The other columns take their defaults (partition "all", no items)."""
    values = {"job": step, "business_date": on, "status": JobStatus.RUNNING, "attempts": 1, "started_at": now}
    return conn.execute(_STARTS[conn.dialect.name].values(values)).scalar_one_or_none()


def _completed(session: Session, step: str, on: date) -> JobRun:
    return session.scalars(
        select(JobRun).where(JobRun.job == step, JobRun.business_date == on, JobRun.partition == "all")
    ).one()


def _finish(conn: Connection, run_id: int, seconds: float, **values: Any) -> None:
    """One attempt's end written on its run: ``values`` set, the seconds added."""
    conn.execute(update(_RUN).where(_RUN.c.id == run_id).values(seconds=_RUN.c.seconds + seconds, **values))


def run_eod(
    *,
    sessions: sessionmaker[Session],
    clock: Clock,
    business_date: date | None = None,
    steps: list[EodStep] | None = None,
    chunk_size: int = 50_000,
    services: dict[str, Any] | None = None,
    progress: Callable[[str, str], None] | None = None,
    workers: int | None = None,
) -> EodReport:
    """Close the open business date (or check that ``business_date`` is it).

    ``workers`` chunks of a step run at once (default :func:`default_workers`: two on
    PostgreSQL, one on SQLite)."""
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
        sessions=sessions,
        clock=clock,
        business_date=on,
        chunk_size=chunk_size,
        services=services or {},
        workers=default_workers(sessions) if workers is None else max(1, workers),
    )
    outcomes: list[StepOutcome] = []
    for step in steps:
        # Two statements a step: its start (a new run, or the failed one's attempts counted)
        # and its end, each committed alone, so that a crash leaves the run as it stood.
        with UnitOfWork(sessions) as uow:
            run_id = _start(uow.session.connection(), step.name, on, clock.now())
            if run_id is None:
                done = _completed(uow.session, step.name, on)
                outcomes.append(StepOutcome(step.name, "done before", done.items, done.failed_items, 0.0))
                continue
            uow.commit()
        say(step.name, "start")
        t0 = perf_counter()
        try:
            result = step.run(ctx)
        except Exception as exc:
            with UnitOfWork(sessions) as uow:
                _finish(
                    uow.session.connection(),
                    run_id,
                    perf_counter() - t0,
                    status=JobStatus.FAILED,
                    error=f"{type(exc).__name__}: {exc}"[:4000],
                )
                uow.commit()
            raise EodStepFailed(
                f"end of day {on.isoformat()} stopped in step {step.name}: {exc}; fix the cause and run it "
                "again: completed steps are not repeated and this one resumes where it stopped",
                step=step.name,
            ) from exc
        seconds = perf_counter() - t0
        with UnitOfWork(sessions) as uow:
            _finish(
                uow.session.connection(),
                run_id,
                seconds,
                status=JobStatus.COMPLETED,
                items=_RUN.c["items"] + result.items,  # (.items is the collection's own method)
                failed_items=_RUN.c.failed_items + result.failed,
                finished_at=clock.now(),
            )
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
