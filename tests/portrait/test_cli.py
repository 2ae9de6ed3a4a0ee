"""``creditfactory portrait ...`` through Typer's runner, on the worked-example lake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from creditfactory.cli.main import app
from creditfactory.portrait.docs import render_markdown
from tests.portrait.lakes import worked_lake


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def last_json(output: str) -> dict:  # type: ignore[type-arg]
    return json.loads(output.strip().splitlines()[-1])


class TestPortraitCommands:
    def test_build_list_show(self, tmp_path: Path) -> None:
        data = tmp_path / "var"
        worked_lake(data / "lake")
        code, out = run("--data-dir", str(data), "portrait", "build", "--as-of", "2025-06-30", "--json")
        assert code == 0, out
        summary = last_json(out)
        assert (summary["customers"], summary["features"]) == (3, 111)
        assert summary["by_segment"] == {"farmer": 1, "merchant": 1, "salaried": 1}
        assert summary["targets"]["unobservable"] == {"history": 3}  # the lake ends in August 2025

        code, out = run("--data-dir", str(data), "portrait", "list", "--json")
        assert code == 0, out
        assert last_json(out)["portraits"] == [
            {"as_of": "2025-06-30", "rows": 3, "features": 111, "engine": "local",
             "seconds": summary["seconds"], "targets": True}
        ]  # fmt: skip

        code, out = run("--data-dir", str(data), "portrait", "show", "C1", "--as-of", "2025-06-30", "--json")
        assert code == 0, out
        row = last_json(out)
        assert (row["customer_id"], row["current_dpd"], row["as_of"]) == ("C1", 35, "2025-06-30")
        assert "existing_loan_balance" in out and "本行贷款余额" in out

    def test_summary_without_json_and_without_targets(self, tmp_path: Path) -> None:
        data = tmp_path / "var"
        worked_lake(data / "lake")
        code, out = run("--data-dir", str(data), "portrait", "build", "--as-of", "2025-06-30", "--no-targets")
        assert code == 0, out
        assert "3 customers x 111 features" in out and "salaried" in out
        assert "targets:" not in out and not (data / "lake" / "portrait_target").exists()

    def test_errors_are_one_line_and_exit_2(self, tmp_path: Path) -> None:
        data = tmp_path / "var"
        worked_lake(data / "lake")
        code, out = run("--data-dir", str(data), "portrait", "show", "C1", "--as-of", "2025-06-30")
        assert code == 2 and "no portrait at 2025-06-30" in out
        code, out = run("--data-dir", str(data), "portrait", "build", "--as-of", "30/06/2025")
        assert code == 2 and "YYYY-MM-DD" in out
        code, out = run(
            "--data-dir", str(data), "portrait", "build", "--as-of", "2025-06-30", "--engine", "x"
        )
        assert code == 2 and "unknown engine" in out

    def test_catalogue(self) -> None:
        code, out = run("portrait", "features", "--markdown")
        assert code == 0 and out == render_markdown()
        code, out = run("portrait", "features", "--group", "farmer")
        assert code == 0 and "land_area_mu" in out and "balance_avg_3m" not in out
        code, out = run("portrait", "features", "--group", "nope")
        assert code == 2 and "groups:" in out


@pytest.mark.slow
class TestBenchmark:
    def test_bench_portrait_on_an_existing_lake(self, tmp_path: Path) -> None:
        lake = worked_lake(tmp_path / "lake")
        code, out = run("--data-dir", str(tmp_path / "var"), "bench", "portrait", "--lake", str(lake))
        assert code == 0, out
        figures = last_json(out)
        assert (figures["customers"], figures["features"], figures["engine"]) == (3, 111, "local")
        assert figures["input_rows"] > 100 and figures["portrait_seconds"] > 0
        assert figures["portrait_peak_mb"] > 0 and figures["baseline_rows_per_s"] > 0
        assert "portrait vs baseline" in out
