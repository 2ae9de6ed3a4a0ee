"""``creditfactory model ...`` through Typer's runner, on the real root command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.model_selection import train_test_split
from typer.testing import CliRunner

from creditfactory.cli.main import app
from creditfactory.modeling import encode_target, read_table
from tests.modeling.conftest import GERMAN, Split
from tests.modeling.test_model_scorecard import optbinning_pipeline_auc


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False, env=env)
    return result.exit_code, result.output


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def home(tmp_path: Path, db_url: str) -> list[str]:
    return ["--data-dir", str(tmp_path / "var"), "--database-url", db_url]


@pytest.fixture
def german_csv(tmp_path: Path) -> Path:
    path = tmp_path / "german_credit.csv"
    shutil.copyfile(GERMAN, path)
    return path


class TestTrain:
    def test_german_credit_as_good_as_optbinning_on_the_same_split(
        self, home: list[str], german_csv: Path, german_split: Split
    ) -> None:
        code, out = run(
            *home, "model", "train", "--data", str(german_csv), "--target", "class", "--kind", "scorecard",
            "--test-size", "0.3", "--seed", "42", "--by", "S001", "--json",
        )  # fmt: skip
        assert code == 0, out
        result = last_json(out)
        assert {"auc", "ks", "gini", "name", "version"} <= set(result)
        assert (result["name"], result["version"], result["status"]) == ("german_credit", 1, "draft")
        assert result["gini"] == pytest.approx(2 * result["auc"] - 1)
        assert result["auc"] >= optbinning_pipeline_auc(german_split) - 0.01
        assert "test AUC" in out and "KS" in out and "Gini" in out
        assert Path(result["report"]).is_file()

    def test_parquet_lightgbm_and_a_0_1_target(self, home: list[str], tmp_path: Path) -> None:
        frame = (
            read_table(GERMAN).with_columns((pl.col("class") == 2).cast(pl.Int8).alias("bad")).drop("class")
        )
        path = tmp_path / "applicants.parquet"
        frame.write_parquet(path)
        code, out = run(
            *home, "model", "train", "--data", str(path), "--target", "bad", "--kind", "lightgbm",
            "--monotone", "duration_months=1", "--name", "challenger", "--by", "S001", "--json",
        )  # fmt: skip
        assert code == 0, out
        result = last_json(out)
        assert result["kind"] == "lightgbm" and 0.7 < result["auc"] < 0.9
        manifest = json.loads((Path(result["path"]) / "manifest.json").read_text())
        assert manifest["lightgbm"]["monotone_constraints"] == {"duration_months": 1}

    def test_an_out_of_time_file(self, home: list[str], tmp_path: Path) -> None:
        frame = read_table(GERMAN)
        frame[:700].write_csv(tmp_path / "dev.csv")
        frame[700:].write_parquet(tmp_path / "later.parquet")
        code, out = run(
            *home, "model", "train", "--data", str(tmp_path / "dev.csv"), "--oot", str(tmp_path / "later.parquet"),
            "--target", "class", "--kind", "lightgbm", "--json",
        )  # fmt: skip
        assert code == 0, out
        result = last_json(out)
        assert 0.65 < result["oot_auc"] < 0.95 and "out-of-time AUC" in out
        manifest = json.loads((Path(result["path"]) / "manifest.json").read_text())
        assert manifest["split"]["rows"]["oot"] == 300 and manifest["metrics"]["headline"] == "oot"
        code, out = run(*home, "model", "show", "dev", "1")
        assert code == 0 and "gain importance" in out

    def test_the_split_is_sklearns_stratified_split(self, home: list[str], german_csv: Path) -> None:
        code, out = run(
            *home,
            "model",
            "train",
            "--data",
            str(german_csv),
            "--target",
            "class",
            "--seed",
            "7",
            "--test-size",
            "0.25",
            "--json",
        )
        assert code == 0, out
        frame = read_table(german_csv)
        y = encode_target(frame["class"], name="class")
        _, test = train_test_split(np.arange(1000), test_size=0.25, random_state=7, stratify=y)
        assert last_json(out)["rows"] == len(test) and last_json(out)["bads"] == int(y[test].sum())

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (["--target", "klass"], "column 'klass' not in the development data"),
            (["--kind", "forest"], "--kind 'forest': use scorecard or lightgbm"),
            (["--bad-value", "3"], "bad value 3 is not a value of target 'class'"),
            (["--monotone", "age"], "--monotone 'age': write COLUMN=1"),
        ],
    )
    def test_bad_options(self, home: list[str], german_csv: Path, change: list[str], message: str) -> None:
        args = ["model", "train", "--data", str(german_csv), "--target", "class", *change]
        if "--monotone" in change:
            args += ["--kind", "lightgbm"]
        code, out = run(*home, *args)
        assert code == 2 and message in out, out

    def test_one_class_and_unreadable_files(self, home: list[str], tmp_path: Path) -> None:
        one = tmp_path / "one.csv"
        read_table(GERMAN).filter(pl.col("class") == 1).write_csv(one)
        code, out = run(*home, "model", "train", "--data", str(one), "--target", "class")
        assert code == 2 and "target 'class' has only one value (1) in 700 rows" in out
        code, out = run(*home, "model", "train", "--data", str(tmp_path / "none.csv"), "--target", "class")
        assert code == 2 and "does not exist" in out
        odd = tmp_path / "data.xlsx"
        odd.write_bytes(b"PK")
        code, out = run(*home, "model", "train", "--data", str(odd), "--target", "class")
        assert code == 2 and "unknown format '.xlsx'" in out


class TestRegistryCommands:
    def test_an_analysts_round(self, home: list[str], german_csv: Path) -> None:
        env = {"CREDITFACTORY_STAFF_ID": "S001"}
        base = ["model", "train", "--data", str(german_csv), "--target", "class", "--name", "credit"]
        assert run(*home, *base, env=env)[0] == 0
        assert run(*home, *base, "--kind", "lightgbm", env=env)[0] == 0

        code, out = run(*home, "model", "list", "--json")
        assert code == 0
        versions = last_json(out)["versions"]
        assert [(v["version"], v["kind"], v["status"], v["trained_by"]) for v in versions] == [
            (1, "scorecard", "draft", "S001"),
            (2, "lightgbm", "draft", "S001"),
        ]

        code, out = run(*home, "model", "approve", "credit", "1", env=env)
        assert code == 2 and "another person must approve it" in out
        code, out = run(*home, "model", "approve", "credit", "1", "--by", "S002", "--json")
        assert code == 0 and last_json(out)["approved_by"] == "S002"

        code, out = run(*home, "model", "show", "credit", "1", "--json")
        assert code == 0 and "points" in out and "checking_status" in out
        assert last_json(out)["status"] == "approved"

        code, out = run(
            *home,
            "model",
            "compare",
            "credit:1",
            "credit:2",
            "--data",
            str(german_csv),
            "--target",
            "class",
            "--test-size",
            "0.3",
            "--json",
        )
        assert code == 0, out
        compared = last_json(out)
        assert compared["rows"] == 300 and [m["model"] for m in compared["models"]] == [
            "credit v1",
            "credit v2",
        ]

        copy = german_csv.parent / "out" / "report.html"
        code, out = run(*home, "model", "report", "credit", "2", "--out", str(copy))
        assert code == 0 and copy.read_text().startswith("<!DOCTYPE html>")

        code, out = run(*home, "model", "retire", "credit", "1", "--by", "S003", "--json")
        assert code == 0 and last_json(out)["status"] == "retired"
        code, out = run(*home, "model", "approve", "credit", "1", "--by", "S002")
        assert code == 2 and "credit v1 is retired" in out

    def test_approval_against_a_schema_file(self, home: list[str], german_csv: Path, tmp_path: Path) -> None:
        assert (
            run(
                *home,
                "model",
                "train",
                "--data",
                str(german_csv),
                "--target",
                "class",
                "--name",
                "credit",
                "--by",
                "S001",
            )[0]
            == 0
        )
        schema = tmp_path / "portrait_schema.json"
        schema.write_text(json.dumps({"schema": {"age": "number", "purpose": "string"}}))
        code, out = run(*home, "model", "approve", "credit", "1", "--by", "S002", "--schema", str(schema))
        assert (
            code == 2
            and "cannot be approved" in out
            and "'checking_status' (string) is not in the data" in out
        )

    def test_a_corrupt_model_directory(self, home: list[str], german_csv: Path, tmp_path: Path) -> None:
        assert (
            run(
                *home,
                "model",
                "train",
                "--data",
                str(german_csv),
                "--target",
                "class",
                "--name",
                "credit",
                "--by",
                "S001",
            )[0]
            == 0
        )
        (tmp_path / "var" / "models" / "credit" / "v1" / "points.json").write_text("{}")
        code, out = run(*home, "model", "show", "credit", "1")
        assert code == 2 and "points.json: content does not match the manifest" in out
        code, out = run(*home, "model", "show", "nothing")
        assert code == 2 and "no model named 'nothing'" in out


class TestScorecardOptions:
    def test_trend_and_special_codes(self, home: list[str], german_csv: Path, tmp_path: Path) -> None:
        code, out = run(
            *home, "model", "train", "--data", str(german_csv), "--target", "class", "--name", "credit",
            "--trend", "age=descending", "--special", "existing_credits=4", "--selection", "none", "--json",
        )  # fmt: skip
        assert code == 0, out
        points = json.loads((Path(last_json(out)["path"]) / "points.json").read_text())
        by_name = {f["name"]: f for f in points["features"]}
        age_rates = [b["bads"] / b["count"] for b in by_name["age"]["bins"] if b["kind"] == "interval"]
        assert age_rates == sorted(age_rates, reverse=True)
        special = [b for b in by_name["existing_credits"]["bins"] if b["kind"] == "special"]
        assert special and special[0]["values"] == [4.0] and special[0]["count"] > 0

    @pytest.mark.parametrize(
        ("option", "message"),
        [
            (["--trend", "age=sideways"], "--trend age=sideways: use one of"),
            (["--special", "age=old"], "codes must be numbers"),
            (["--trend", "salary=ascending"], "trend given for unknown feature(s): salary"),
        ],
    )
    def test_bad_values(self, home: list[str], german_csv: Path, option: list[str], message: str) -> None:
        code, out = run(*home, "model", "train", "--data", str(german_csv), "--target", "class", *option)
        assert code == 2 and message in out, out
