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


def test_the_fixed_work_takes_milliseconds_and_gives_its_known_answer() -> None:
    from creditfactory.cli.bench import _pace_work

    # the work is fixed: other work would make today's paces incomparable with those recorded
    # (300 keys read back ten times; the ids 7 to 19,999 of the rows whose amount is over 10)
    assert _pace_work() == 10 * 300 + sum(range(7, 20_000))
    assert 0.5 < machine_pace_ms(repeat=2) < 2_000


def test_the_interpreter_is_named_as_this_process_runs_it() -> None:
    import os
    import platform
    import sys

    from creditfactory.cli.bench import interpreter

    python = interpreter()
    assert python["implementation"] == platform.python_implementation()
    assert python["version"] == platform.python_version()
    # the build as sys.version gives it (which compiler, when), on one line
    assert platform.python_compiler() in python["build"] and "\n" not in python["build"]
    # a virtualenv's python followed to the interpreter it runs
    assert python["executable"] == os.path.realpath(sys.executable)
    assert not os.path.islink(python["executable"])
