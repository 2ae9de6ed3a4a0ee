"""``creditfactory bench eod`` end to end on a small SQLite book: the book is built, the naive
loop and every end-of-day step run, and the figures come back as one JSON line."""

from __future__ import annotations

import json
import platform
from pathlib import Path

from typer.testing import CliRunner

from creditfactory.cli.main import app


def test_the_benchmark_closes_a_small_book_and_reports_every_step(tmp_path: Path) -> None:
    args = ["--data-dir", str(tmp_path / "var"), "bench", "eod", "--loans", "600", "--sample", "50"]
    args += ["--postgres-url", "", "--workdir", str(tmp_path / "work"), "--json"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["loans"] == 600
    assert figures["sqlite_loans_per_s"] > 0 and figures["sqlite_naive_loans_per_s"] > 0
    for step in ("accrue_interest", "mark_overdue", "classify", "reconcile", "trial_balance"):
        assert step in result.output
    assert not (tmp_path / "work").exists()  # the scratch books are removed
    # the machine's pace, taken before and after, beside the figures
    assert set(figures["pace_ms"]) == {"before", "after"}
    assert all(0 < ms < 10_000 for ms in figures["pace_ms"].values())
    assert "machine pace: before" in result.output
    # and the Python that ran it
    assert figures["python"]["version"] == platform.python_version()
    assert f"python: {platform.python_implementation()} {platform.python_version()}" in result.output
