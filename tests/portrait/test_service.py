"""Building, publishing and reading portraits: the output, the manifest, and every clear error."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from creditfactory import portrait
from creditfactory.portrait import store
from tests.portrait.lakes import AS_OF, write_table


def _published(lake: Path) -> list[str]:
    root = lake / store.PORTRAIT
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


class TestOutput:
    def test_layout_and_columns(self, worked: Path) -> None:
        folder = worked / "portrait" / "as_of=2025-06-30"
        assert sorted(p.name for p in folder.iterdir()) == ["_manifest.json", "part-00000.parquet"]
        frame = portrait.read(worked, as_of=AS_OF)
        schema = frame.collect_schema()
        assert list(schema)[:6] == ["customer_id", "as_of", "segment", "branch_id", "lat", "lon"]
        assert list(schema)[6:] == [f.name for f in portrait.FEATURES]
        assert (schema["customer_id"], schema["as_of"], schema["lat"]) == (pl.String, pl.Date, pl.Float64)
        assert (schema["age"], schema["kyc_complete"], schema["existing_loan_balance"]) == (
            pl.Int64,
            pl.Boolean,
            pl.Float64,
        )

    def test_parts_split_a_large_portrait(self, worked_copy: Path) -> None:
        result = portrait.build(worked_copy, as_of=AS_OF, part_rows=2)
        assert [p.name for p in store.parts(result.path)] == ["part-00000.parquet", "part-00001.parquet"]
        assert portrait.read(worked_copy, as_of=AS_OF).select(pl.len()).collect().item() == 3

    def test_manifest(self, worked: Path) -> None:
        manifest = portrait.manifest(worked, as_of=AS_OF)
        assert (manifest["as_of"], manifest["rows"], manifest["engine"]) == ("2025-06-30", 3, "local")
        assert manifest["features"] == len(portrait.FEATURES)
        assert manifest["by_segment"] == {"farmer": 1, "merchant": 1, "salaried": 1}
        age = next(c for c in manifest["columns"] if c["name"] == "age")
        assert age["type"] == "number" and age["description"].startswith("Age in whole years")
        assert age["label_zh"] == "年龄"
        tables = manifest["input"]["tables"]
        assert tables["account_flows"]["files"] == [
            {
                "file": "b00000001-00000.parquet",
                "bytes": (worked / "account_flows" / "b00000001-00000.parquet").stat().st_size,
            }
        ]
        assert tables["account_flows"]["batches"] == [1]
        assert len(manifest["input"]["sha256"]) == 64 and manifest["seconds"] > 0

    def test_schema_and_available(self, worked: Path) -> None:
        schema = portrait.schema(worked, as_of=AS_OF)
        assert (schema["customer_id"], schema["as_of"], schema["lat"]) == ("string", "date", "number")
        assert (schema["age"], schema["kyc_complete"], schema["main_crop"]) == ("number", "bool", "string")
        assert portrait.available(worked) == [AS_OF]

    def test_one_customer(self, worked: Path) -> None:
        row = portrait.customer(worked, as_of=AS_OF, customer_id="C2")
        assert row["segment"] == "merchant" and row["on_negative_list"] is True
        with pytest.raises(portrait.CustomerNotInPortrait):
            portrait.customer(worked, as_of=AS_OF, customer_id="C3")

    def test_progress_reports_every_step(self, worked_copy: Path) -> None:
        seen: list[tuple[str, int, int]] = []
        portrait.build(worked_copy, as_of=AS_OF, progress=lambda *a: seen.append(a))
        stages = [s for s, _, _ in seen]
        assert stages[0] == "customers" and stages[-1] == "done"
        assert "flows" in stages and "write" in stages
        assert seen[-1][1] == seen[-1][2]


class TestPublishing:
    def test_a_rebuild_replaces_the_portrait(self, worked_copy: Path) -> None:
        portrait.build(worked_copy, as_of=AS_OF)
        write_table(
            worked_copy,
            "farmland",
            [
                {
                    "customer_id": "C4",
                    "land_area_mu": 20.0,
                    "main_crop": "tea",
                    "machinery_count": 0,
                    "machinery_value": 0,
                    "cooperative_member": False,
                }
            ],
            batch=2,
        )
        portrait.build(worked_copy, as_of=AS_OF)
        row = portrait.customer(worked_copy, as_of=AS_OF, customer_id="C4")
        assert row["land_area_mu"] == 20.0  # the newer batch's row wins
        assert _published(worked_copy) == ["as_of=2025-06-30"]

    def test_a_build_that_fails_while_writing_leaves_nothing_visible(
        self, worked_copy: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        written: list[Any] = []
        real = pl.DataFrame.write_parquet

        def fail_on_second_part(self: pl.DataFrame, file: Any, **kw: Any) -> None:
            if written:
                raise OSError("disk full")
            written.append(file)
            real(self, file, **kw)

        monkeypatch.setattr(pl.DataFrame, "write_parquet", fail_on_second_part)
        with pytest.raises(OSError, match="disk full"):
            portrait.build(worked_copy, as_of=AS_OF, part_rows=1)
        assert written  # one part had been written
        assert _published(worked_copy) == []
        assert portrait.available(worked_copy) == []

    def test_a_failed_rebuild_keeps_the_previous_portrait(self, worked_copy: Path) -> None:
        portrait.build(worked_copy, as_of=AS_OF)
        before = [p.read_bytes() for p in store.parts(store.folder(worked_copy, store.PORTRAIT, AS_OF))]

        def crash(stage: str, done: int, total: int) -> None:
            if stage == "write":
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            portrait.build(worked_copy, as_of=AS_OF, progress=crash)
        after = [p.read_bytes() for p in store.parts(store.folder(worked_copy, store.PORTRAIT, AS_OF))]
        assert after == before
        assert _published(worked_copy) == ["as_of=2025-06-30"]

    def test_leftovers_of_a_killed_build_are_ignored_then_cleaned(self, worked_copy: Path) -> None:
        leftover = worked_copy / store.PORTRAIT / "_staging-deadbeef"
        leftover.mkdir(parents=True)
        (leftover / "part-00000.parquet").write_bytes(b"half a file")
        assert portrait.available(worked_copy) == []
        portrait.build(worked_copy, as_of=AS_OF)
        assert _published(worked_copy) == ["as_of=2025-06-30"]

    def test_a_folder_without_its_manifest_is_not_a_portrait(self, worked_copy: Path) -> None:
        portrait.build(worked_copy, as_of=AS_OF)
        (store.folder(worked_copy, store.PORTRAIT, AS_OF) / store.MANIFEST).unlink()
        assert portrait.available(worked_copy) == []
        with pytest.raises(portrait.PortraitNotFound):
            portrait.read(worked_copy, as_of=AS_OF)


class TestErrors:
    def test_reading_a_portrait_never_built(self, worked_copy: Path) -> None:
        with pytest.raises(portrait.PortraitNotFound) as exc:
            portrait.read(worked_copy, as_of=AS_OF)
        assert exc.value.code == "portrait_not_found" and exc.value.http_status == 404
        assert "creditfactory portrait build --as-of 2025-06-30" in exc.value.message
        with pytest.raises(portrait.PortraitNotFound):
            portrait.read_targets(worked_copy, as_of=AS_OF)
        with pytest.raises(portrait.PortraitNotFound):
            portrait.schema(worked_copy, as_of=AS_OF)

    def test_names_the_built_dates(self, worked: Path) -> None:
        with pytest.raises(portrait.PortraitNotFound, match="built: 2025-06-30"):
            portrait.read(worked, as_of=date(2025, 5, 31))

    @pytest.mark.parametrize(
        ("as_of", "words"),
        [
            (date(2009, 12, 31), "no customer"),  # before anyone became a customer
            (date(2015, 6, 30), "holds months 2024-07 to 2025-07"),  # before the flows begin
            (date(2026, 3, 31), "needs the account flows of 2026-03"),  # after the lake ends
        ],
    )
    def test_an_as_of_date_with_no_data(self, worked_copy: Path, as_of: date, words: str) -> None:
        with pytest.raises(portrait.NoDataAtAsOf, match=words) as exc:
            portrait.build(worked_copy, as_of=as_of)
        assert exc.value.code == "portrait_no_data"
        assert _published(worked_copy) == []

    def test_a_lake_without_the_needed_tables(self, worked_copy: Path, tmp_path: Path) -> None:
        shutil.rmtree(worked_copy / "loan_performance")
        shutil.rmtree(worked_copy / "account_flows")
        with pytest.raises(portrait.MissingTables, match="no account_flows, loan_performance") as exc:
            portrait.build(worked_copy, as_of=AS_OF)
        assert exc.value.code == "portrait_missing_tables"
        assert exc.value.details["missing"] == ["account_flows", "loan_performance"]
        with pytest.raises(portrait.MissingTables):
            portrait.build(tmp_path / "empty", as_of=AS_OF)

    def test_an_unknown_engine(self, worked_copy: Path) -> None:
        with pytest.raises(portrait.UnknownEngine, match="local, spark"):
            portrait.build(worked_copy, as_of=AS_OF, engine="duckdb")

    def test_errors_are_problem_details(self, worked_copy: Path) -> None:
        with pytest.raises(portrait.PortraitNotFound) as exc:
            portrait.read(worked_copy, as_of=AS_OF)
        problem = exc.value.to_problem()
        assert problem["code"] == "portrait_not_found" and problem["status"] == 404
        json.dumps(problem)
