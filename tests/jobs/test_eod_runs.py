"""The end of day's record of its steps (``jobs_run``), on SQLite and PostgreSQL: a failed step is
kept with its error and attempts, a run again completes it and leaves the completed steps alone,
and each step costs two statements of bookkeeping."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import event

from creditfactory.bootstrap import Container
from creditfactory.jobs import JobStatus, current_business_date, open_business_date, run_eod
from creditfactory.jobs.eod import EodStep, EodStepFailed, StepContext, StepResult, status

DAY = date(2025, 3, 3)


@pytest.fixture
def opened(container: Container) -> Container:
    with container.uow() as uow:
        open_business_date(uow.session, on=DAY, clock=container.clock)
        uow.commit()
    return container


def _steps(calls: list[str], fail_first: set[str]) -> list[EodStep]:
    def make(name: str, items: int) -> EodStep:
        def run(ctx: StepContext) -> StepResult:
            assert ctx.business_date == DAY
            calls.append(name)
            if name in fail_first and calls.count(name) == 1:
                raise RuntimeError(f"{name} broke")
            return StepResult(items=items, failed=1 if name == "b" else 0)

        return EodStep(name, order=len(name), run=run)

    return [make("a", 3), make("b", 5), make("c", 7)]


def _runs(c: Container) -> dict[str, tuple[str, int, int, int, str | None, bool]]:
    with c.uow() as uow:
        return {
            r.job: (r.status, r.attempts, r.items, r.failed_items, r.error, r.finished_at is not None)
            for r in status(uow.session, business_date=DAY)
        }


def test_a_failed_step_is_kept_with_its_error_and_completes_when_run_again(opened: Container) -> None:
    c = opened
    calls: list[str] = []
    steps = _steps(calls, fail_first={"b"})
    with pytest.raises(EodStepFailed, match="stopped in step b: b broke"):
        run_eod(sessions=c.sessions, clock=c.clock, steps=steps)
    assert _runs(c) == {
        "a": (JobStatus.COMPLETED, 1, 3, 0, None, True),
        "b": (JobStatus.FAILED, 1, 0, 0, "RuntimeError: b broke", False),
    }

    report = run_eod(sessions=c.sessions, clock=c.clock, steps=steps)

    assert calls == ["a", "b", "b", "c"]  # a is not run again
    assert [(s.name, s.status, s.items) for s in report.steps] == [
        ("a", "done before", 3),
        ("b", "completed", 5),
        ("c", "completed", 7),
    ]
    assert _runs(c) == {
        "a": (JobStatus.COMPLETED, 1, 3, 0, None, True),
        "b": (JobStatus.COMPLETED, 2, 5, 1, None, True),
        "c": (JobStatus.COMPLETED, 1, 7, 0, None, True),
    }
    with c.uow() as uow:
        assert current_business_date(uow.session) == date(2025, 3, 4)
        seconds = {r.job: r.seconds for r in status(uow.session, business_date=DAY)}
    assert all(s >= 0 for s in seconds.values())


def test_each_step_costs_a_statement_to_start_and_one_to_end(opened: Container) -> None:
    c = opened
    sent: list[str] = []

    @event.listens_for(c.engine, "before_cursor_execute")
    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if "jobs_run" in statement:
            sent.append(statement.split()[0].upper())

    run_eod(sessions=c.sessions, clock=c.clock, steps=_steps([], fail_first=set()))

    assert sent == ["INSERT", "UPDATE"] * 3
