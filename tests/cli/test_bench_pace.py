"""The machine's pace that every benchmark reports: the shortest of a few runs of fixed work."""

from __future__ import annotations

import time

from creditfactory.cli.bench import machine_pace_ms


def test_the_pace_is_the_shortest_run_in_milliseconds() -> None:
    spans = iter([0.005, 0.030, 0.010, 0.020])
    pace = machine_pace_ms(repeat=3, work=lambda: time.sleep(next(spans)))
    # the 10 ms run: the first, untimed, only warms up; the slower two measured what else went on
    assert 10 <= pace < 20
    assert next(spans, None) is None  # four runs in all


def test_the_fixed_work_takes_milliseconds_and_gives_the_same_answer() -> None:
    from creditfactory.cli.bench import _pace_work

    assert _pace_work() == _pace_work()  # the same work every time
    assert 0.5 < machine_pace_ms(repeat=2) < 2_000
