"""``creditfactory strategy check`` and ``show`` through Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from creditfactory import strategy
from creditfactory.cli.strategy import app as strategy_app

from .test_plan import SCHEMA, WORKED

app = typer.Typer()


@app.callback()
def root() -> None:
    """Stand-in for the creditfactory root command."""


app.add_typer(strategy_app, name="strategy")

MINING = str(strategy.example_path("mining.yaml"))
DECISION = str(strategy.example_path("decision.yaml"))


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["strategy", *args], catch_exceptions=False, terminal_width=200)
    return result.exit_code, result.output


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def worked(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "worked.yaml"
    path.write_text(WORKED, encoding="utf-8")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
    return path, schema


class TestCheck:
    @pytest.mark.parametrize("file", [MINING, DECISION])
    def test_examples_are_ok_against_the_built_in_catalogue(self, file: str) -> None:
        code, out = run("check", file, "--json")
        assert code == 0, out
        assert out.startswith("ok: ")
        payload = last_json(out)
        assert payload["ok"] is True and payload["problems"] == []
        expected = {
            MINING: "the portrait's catalogue and the whitelist's facts",
            DECISION: "the built-in catalogue",
        }
        assert payload["schema"] == expected[file]
        models = {MINING: 4, DECISION: 5}  # the decision names a model for new_to_bank too
        assert payload["summary"]["models"] == models[file] and payload["summary"]["grades"] == 5

    def test_summary_line(self) -> None:
        code, out = run("check", MINING)
        assert code == 0
        assert "4 stages, 12 rules (+3 from cut-offs, grades and limit), 4 models, 5 grades" in " ".join(
            out.split()
        )

    def test_every_problem_at_once_with_exit_code_1(self, tmp_path: Path) -> None:
        bad = Path(MINING).read_text(encoding="utf-8")
        bad = bad.replace("current_dpd > 0 OR has_overdue", "curent_dpd > 0 OR has_overdue = 1")
        bad = bad.replace("{grade: C, from: 640, to: 680}", "{grade: C, from: 645, to: 680}")
        bad = bad.replace("    other: 600\n", "    other: 600\n    fisher: 620\n")
        path = tmp_path / "bad.yaml"
        path.write_text(bad, encoding="utf-8")
        code, out = run("check", str(path), "--json")
        assert code == 1
        payload = last_json(out)
        assert payload["ok"] is False
        found = [(p["code"], p["rule"], p["column"]) for p in payload["problems"]]
        assert found == [
            ("unknown_column", "current_overdue", "curent_dpd"),
            ("type_mismatch", "current_overdue", "has_overdue"),
            ("unknown_segment", "cutoffs", "segment"),
            ("grade_gap", "grades", None),
        ]
        assert all(p["file"] == str(path) and p["line"] for p in payload["problems"])
        flat = " ".join(out.split())
        assert "4 problems" in flat and "did you mean current_dpd" in flat

    def test_a_schema_file(self, worked: tuple[Path, Path]) -> None:
        path, schema = worked
        code, out = run("check", str(path), "--schema", str(schema))
        assert code == 0, out
        reduced = schema.parent / "reduced.json"
        reduced.write_text(json.dumps({"columns": {k: v for k, v in SCHEMA.items() if k != "current_dpd"}}))
        code, out = run("check", str(path), "--schema", str(reduced), "--json")
        assert code == 1
        assert [p["column"] for p in last_json(out)["problems"]] == ["current_dpd"]

    def test_features_from_parquet(self, worked: tuple[Path, Path], tmp_path: Path) -> None:
        path, _ = worked
        frame = pl.DataFrame(
            {
                "as_of": [None],
                "segment": ["farmer"],
                "age": [40],
                "current_dpd": [0],
                "annual_income_est": [1.0],
                "bureau_total_exposure": [2.0],
            },
            schema_overrides={"as_of": pl.Date},
        )
        frame.write_parquet(tmp_path / "features.parquet")
        code, out = run("check", str(path), "--features", str(tmp_path / "features.parquet"))
        assert code == 0, out
        code, out = run("check", str(path), "--features", str(tmp_path / "features.parquet"), "--json")
        assert last_json(out)["schema"] == str(tmp_path / "features.parquet")

    def test_yaml_syntax_and_missing_files(self, tmp_path: Path) -> None:
        broken = tmp_path / "broken.yaml"
        broken.write_text("name: x\nkind: [mining\n", encoding="utf-8")
        code, out = run("check", str(broken), "--json")
        assert code == 1 and last_json(out)["problems"][0]["code"] == "yaml_syntax"
        code, out = run("check", str(tmp_path / "missing.yaml"), "--json")
        assert code == 1 and last_json(out)["problems"][0]["code"] == "file_unreadable"

    def test_schema_and_features_together_is_an_error(self, worked: tuple[Path, Path]) -> None:
        path, schema = worked
        result = CliRunner().invoke(
            app, ["strategy", "check", str(path), "--schema", str(schema), "--features", str(schema)]
        )
        assert result.exit_code == 2
        assert "give one of --schema, --features or --as-of" in result.output

    def test_a_bad_schema_file(self, worked: tuple[Path, Path]) -> None:
        path, schema = worked
        schema.write_text("[1, 2]", encoding="utf-8")
        result = CliRunner().invoke(app, ["strategy", "check", str(path), "--schema", str(schema)])
        assert result.exit_code == 2 and "a schema is" in result.output


class TestShow:
    def test_prints_rules_bits_grades_limit_and_spark_sql(self) -> None:
        code, out = run("show", DECISION, "--json")
        assert code == 0, out
        flat = " ".join(out.split())
        assert "county_online_decision v1" in flat
        assert "D_NEGATIVE_LIST" in flat and "(added)" in flat
        assert "Spark SQL" in flat and "hit_mask =" in flat and "CASE WHEN" in flat
        assert "rounded down to a multiple of 100 yuan" in flat
        payload = last_json(out)
        assert [r["bit"] for r in payload["rules"]] == list(range(len(payload["rules"])))
        assert payload["spark"][-1]["column"] == "expires_on"

    def test_a_strategy_with_problems_is_not_shown(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.yaml"
        path.write_text(WORKED.replace("current_dpd > 0", "current_dpd > 'x'"), encoding="utf-8")
        schema = tmp_path / "schema.json"
        schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
        code, out = run("show", str(path), "--schema", str(schema))
        assert code == 1 and "type_mismatch" in out


def test_the_root_command_registers_strategy() -> None:
    from creditfactory.cli.main import app as root_app

    result = CliRunner().invoke(root_app, ["strategy", "check", MINING])
    assert result.exit_code == 0, result.output
