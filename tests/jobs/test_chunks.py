"""Chunks of an end-of-day step run one after the other or a few at once, with the same outcome."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime

import pytest

from creditfactory.clock import FixedClock
from creditfactory.jobs import StepContext


def context(workers: int) -> StepContext:
    return StepContext(
        sessions=None,  # type: ignore[arg-type]
        clock=FixedClock(datetime(2025, 7, 1, tzinfo=UTC)),
        business_date=date(2025, 7, 1),
        workers=workers,
    )


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_come_back_in_the_chunks_order(workers: int) -> None:
    def work(n: int) -> int:
        time.sleep(0.001 * ((7 * n) % 5))  # finish out of order
        return n * n

    assert context(workers).each_chunk(range(20), work) == [n * n for n in range(20)]


def test_two_workers_overlap_and_the_first_chunk_runs_alone() -> None:
    running = {"now": 0, "most": 0, "first_alone": None}
    lock = threading.Lock()

    def work(n: int) -> int:
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
            if n == 0:
                running["first_alone"] = running["now"] == 1
        time.sleep(0.01)
        with lock:
            running["now"] -= 1
        return n

    context(2).each_chunk(range(8), work)
    assert running["first_alone"] is True
    assert running["most"] == 2


def test_a_failing_chunk_stops_new_chunks_and_raises_its_error() -> None:
    started: list[int] = []

    def work(n: int) -> int:
        started.append(n)
        if n == 3:
            raise RuntimeError("chunk 3 failed")
        time.sleep(0.005)
        return n

    with pytest.raises(RuntimeError, match="chunk 3 failed"):
        context(2).each_chunk(range(100), work)
    assert max(started) < 10  # no new chunk after the failure was seen


def test_no_chunks_no_work() -> None:
    assert context(2).each_chunk([], lambda n: n) == []
