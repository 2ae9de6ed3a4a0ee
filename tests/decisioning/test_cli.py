"""The decision commands as an operator types them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from creditfactory.cli.main import app
from creditfactory.decisioning import fact_schema
from tests.decisioning.conftest import write_world


def run(data: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--data-dir", str(data), *args], catch_exceptions=False)
    return result.exit_code, result.output


def last_json(output: str) -> dict:  # type: ignore[type-arg]
    return json.loads(output.strip().splitlines()[-1])


class TestGraphCommands:
    def test_build_then_status(self, tmp_path: Path) -> None:
        data = tmp_path / "var"
        write_world(data / "lake")
        code, out = run(data, "decision", "graph", "build", "--json")
        assert code == 0, out
        figures = last_json(out)
        # 16 customers, 2 listed phones and ID numbers already among them; devices dB, dC, dI,
        # dJ1, dJ2, dK, dS1..dS5; IPs 10.0.0.9, 10.0.0.8, 10.9.9.9.
        assert figures["nodes_by_kind"] == {"device": 11, "ip": 3, "person": 16, "phone": 16}
        assert figures["edges_by_kind"] == {"contact": 1, "device": 13, "ip": 9, "phone": 16}
        assert figures["negative_nodes"] == 6
        assert figures["defaulted_people"] == 2
        assert figures["groups"]["largest_people"] == 5  # S1..S5 on one IP
        assert figures["components"]["largest_people"] == 5
        assert figures["super_nodes"] == 0
        code, out = run(data, "decision", "graph", "status", "--json")
        assert code == 0, out
        status = last_json(out)
        assert status["nodes_by_kind"] == figures["nodes_by_kind"]
        assert status["last_build"]["nodes"] == 46
        assert "last built" in out

    def test_the_degree_cap_is_an_option(self, tmp_path: Path) -> None:
        data = tmp_path / "var"
        write_world(data / "lake")
        code, out = run(data, "decision", "graph", "build", "--degree-cap", "4", "--json")
        assert code == 0, out
        figures = last_json(out)
        assert figures["super_nodes"] == 2  # the IP shared by five, and J with five links
        assert figures["max_degree"] == 5
        assert figures["groups"]["largest_people"] == 3  # C, D and G on the tablet

    def test_build_without_extracts_says_what_to_do(self, tmp_path: Path) -> None:
        code, out = run(tmp_path / "var", "decision", "graph", "build")
        assert code == 2
        assert "ingest the bank's extracts first" in out

    def test_status_before_any_build(self, tmp_path: Path) -> None:
        code, out = run(tmp_path / "var", "decision", "graph", "status")
        assert code == 0
        assert "never built" in out


class TestFactsCommand:
    def test_lists_the_schema(self, tmp_path: Path) -> None:
        code, out = run(tmp_path / "var", "decision", "facts", "--json")
        assert code == 0, out
        assert last_json(out)["facts"] == fact_schema()
        assert "graph_hops_to_negative" in out


class TestTruthCommand:
    def test_rings_against_everyone_else(self, tmp_path: Path) -> None:
        import polars as pl

        data = tmp_path / "var"
        write_world(data / "lake")
        bank = tmp_path / "bank"
        (bank / "truth" / "customers").mkdir(parents=True)
        people = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "S1", "S2", "S3", "S4", "S5"]
        rings = {"C": "R1", "D": "R1", "G": "R1", "B": "R2"}
        pl.DataFrame({"customer_id": people, "ring_id": [rings.get(p) for p in people]}).write_parquet(
            bank / "truth" / "customers" / "part-00000.parquet"
        )
        pl.DataFrame({"ring_id": ["R1", "R2"], "exposed": [False, True]}).write_parquet(
            bank / "truth" / "rings.parquet"
        )
        assert run(data, "decision", "graph", "build")[0] == 0
        code, out = run(data, "decision", "graph", "truth", "--sandbox", str(bank), "--json")
        assert code == 0, out
        measures = last_json(out)
        ring = measures["labelled"]
        assert ring["people"] == 4
        # B: 1 hop (its device); C, G: 3 hops; D: 1 hop (its phone).
        assert ring["within_hops"] == {"0": 0.0, "1": 0.5, "2": 0.5, "3": 1.0, "4": 1.0}
        # C, D, G share the tablet; B is alone in its ring.
        assert ring["grouped_with_label"] == 0.75
        assert measures["by_stratum"]["exposed"]["people"] == 1
        assert measures["unlabelled"]["people"] == 12
        assert "against the planted fraud rings" in out

    def test_a_folder_without_truth(self, tmp_path: Path) -> None:
        code, out = run(tmp_path / "var", "decision", "graph", "truth", "--sandbox", str(tmp_path))
        assert code == 2
        assert "no sandbox truth" in out
