"""``creditfactory bench eod`` end to end on a small SQLite book: the book is built, the naive
loop and every end-of-day step run, and the figures come back as one JSON line."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import pytest
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


@pytest.mark.postgres
def test_on_postgresql_the_scratch_database_is_dropped_after_the_run(
    tmp_path: Path, postgres_server: Any
) -> None:
    """The run's PostgreSQL database goes with its scratch files: a million-loan book left on the
    server after every run would fill its disk."""
    base = postgres_server.url.render_as_string(hide_password=False)
    args = ["--data-dir", str(tmp_path / "var"), "bench", "eod", "--loans", "300", "--sample", "20"]
    args += ["--postgres-url", base, "--workdir", str(tmp_path / "work"), "--json"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["postgresql_loans_per_s"] > 0  # it ran there
    assert not _databases(postgres_server, "cf_bench_eod")


@pytest.mark.postgres
def test_a_scratch_database_is_made_empty_and_dropped(postgres_server: Any) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    from creditfactory.cli.bench import drop_scratch_database, scratch_database

    base = postgres_server.url.render_as_string(hide_password=False)
    name = "cf_test_scratch_bench"
    url = scratch_database(base, name)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE left_behind (id integer)"))
        held = engine.connect()  # a session of a run that did not end well
        held.execute(text("SELECT 1"))
        assert scratch_database(base, name) == url  # the next run: made anew, the session ended
        with pytest.raises(OperationalError):
            held.execute(text("SELECT 1"))
        held.close()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('left_behind')")).scalar() is None
    finally:
        engine.dispose()
        drop_scratch_database(base, name)
    assert not _databases(postgres_server, name)
    drop_scratch_database(base, name)  # dropping what is not there is no error


def _databases(server: Any, name: str) -> list[str]:
    from sqlalchemy import text

    with server.admin.connect() as conn:
        return list(
            conn.execute(text("SELECT datname FROM pg_database WHERE datname = :n"), {"n": name}).scalars()
        )
