"""The generated sandbox bank: layout, determinism, the contract, calibration and rings."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from creditfactory.contract.tables import BY_NAME, TABLES
from creditfactory.sandbox import GenerateResult, SandboxConfig, SandboxError, generate
from creditfactory.sandbox import generator as generator_module
from creditfactory.sandbox.generator import CUSTOMER_TABLES

from .checks import problems
from .conftest import SMALL, read_table


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class TestLayout:
    def test_every_table_has_its_files_and_the_manifest_lists_them(self, sandbox: GenerateResult) -> None:
        root = sandbox.out_dir
        for name in ("branches", "staff", "negative_list"):
            assert (root / "extracts" / f"{name}.parquet").is_file()
        for name in CUSTOMER_TABLES:
            parts = sorted(p.name for p in (root / "extracts" / name).iterdir())
            assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"], name
        assert len(list((root / "truth" / "customers").iterdir())) == 3
        assert (root / "truth" / "rings.parquet").is_file()
        assert set(CUSTOMER_TABLES) | {"branches", "staff", "negative_list"} == set(BY_NAME)

        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["config"] == SMALL.to_dict()
        listed = {f["path"]: f for f in manifest["files"]}
        on_disk = _digests(root)
        on_disk.pop("manifest.json")
        assert set(listed) == set(on_disk)
        for path, entry in listed.items():
            assert entry["sha256"] == on_disk[path], path
            table = entry["table"]
            if not table.startswith("truth."):
                assert pl.read_parquet(root / path).height == entry["rows"], path
        assert manifest["tables"]["customers"] == SMALL.customers == sandbox.rows["customers"]

    def test_refuses_to_write_over_a_sandbox_unless_asked(self, tmp_path: Path) -> None:
        config = SandboxConfig(customers=200, seed=1)
        generate(config, tmp_path, workers=1)
        with pytest.raises(SandboxError, match="already holds a sandbox"):
            generate(config, tmp_path, workers=1)
        (tmp_path / "keep.txt").write_text("mine")
        generate(config, tmp_path, workers=1, overwrite=True)
        assert (tmp_path / "keep.txt").read_text() == "mine"

    def test_reports_progress_per_chunk(self, tmp_path: Path) -> None:
        seen: list[tuple[str, int, int]] = []
        generate(
            SandboxConfig(customers=450, seed=3, chunk_size=200),
            tmp_path,
            workers=1,
            progress=lambda stage, done, total: seen.append((stage, done, total)),
        )
        assert [s for s in seen if s[0] == "chunks"] == [("chunks", 1, 3), ("chunks", 2, 3), ("chunks", 3, 3)]
        assert seen[-1] == ("done", 1, 1)


class TestDeterminism:
    def test_same_config_same_bytes_whatever_the_processes(
        self, sandbox: GenerateResult, tmp_path: Path
    ) -> None:
        again = generate(SMALL, tmp_path / "again", workers=2)
        assert _digests(again.out_dir) == _digests(sandbox.out_dir)

    def test_another_seed_gives_other_bytes(self, sandbox: GenerateResult, tmp_path: Path) -> None:
        other = generate(dataclasses.replace(SMALL, seed=SMALL.seed + 1), tmp_path / "other", workers=1)
        mine, theirs = _digests(sandbox.out_dir), _digests(other.out_dir)
        assert mine.keys() == theirs.keys()
        changed = [p for p in mine if p != "manifest.json" and mine[p] != theirs[p]]
        assert len(changed) == len(mine) - 1

    def test_blocks_inside_a_chunk_stitch_deterministically(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(generator_module, "BLOCK", 300)
        config = SandboxConfig(customers=1000, seed=5)
        a = generate(config, tmp_path / "a", workers=1)
        b = generate(config, tmp_path / "b", workers=1)
        assert _digests(a.out_dir) == _digests(b.out_dir)
        flows = read_table(a.out_dir, "account_flows")
        assert flows.height == a.rows["account_flows"]
        assert flows["account_id"].is_sorted()
        for table in TABLES:
            assert problems(table, read_table(a.out_dir, table.name), as_of=config.as_of) == [], table.name


class TestContract:
    @pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
    def test_every_extract_conforms(self, tables: dict[str, pl.DataFrame], table: object) -> None:
        assert problems(table, tables[table.name], as_of=SMALL.as_of) == []  # type: ignore[attr-defined]

    def test_foreign_keys_resolve(self, tables: dict[str, pl.DataFrame]) -> None:
        for table in TABLES:
            for fk in table.foreign_keys:
                child = tables[table.name][fk.column].drop_nulls()
                parent = tables[fk.table][fk.ref_column]
                assert child.is_in(parent.implode()).all(), f"{table.name}.{fk.column} -> {fk.table}"

    def test_the_contract_validator_accepts_every_row(self, tables: dict[str, pl.DataFrame]) -> None:
        validate = pytest.importorskip("creditfactory.contract.validate").validate
        for table in TABLES:
            frame = tables[table.name].with_columns(
                pl.lit(table.name).alias("_file"),
                pl.int_range(1, tables[table.name].height + 1).alias("_row"),
            )
            checked = validate(table, frame, today=SMALL.as_of)
            assert checked.rejects.height == 0, (table.name, checked.rejects["_reasons"].head(3).to_list())

    def test_id_numbers_and_phones_belong_to_the_county_and_are_unique(
        self, tables: dict[str, pl.DataFrame]
    ) -> None:
        customers = tables["customers"]
        regions = customers["id_number"].str.slice(0, 6).value_counts(sort=True)
        assert regions["id_number"][0] == "341523"
        assert set(regions["id_number"]) <= {
            "341523",
            "340124",
            "340123",
            "341502",
            "341525",
            "340881",
            "340828",
        }
        assert customers["phone"].n_unique() == customers.height
        staff_phones = tables["staff"]["phone"].drop_nulls()
        assert not staff_phones.is_in(customers["phone"].implode()).any()
        ages = (SMALL.as_of - customers["birth_date"]).dt.total_days() / 365.25
        assert 18 <= ages.min() and ages.max() < 76
        assert set(tables["branches"]["region_code"]) == {"341523"}

    def test_flows_add_up_and_balances_roll_forward(self, tables: dict[str, pl.DataFrame]) -> None:
        flows = tables["account_flows"].sort("account_id", "month")
        rolled = flows.with_columns(
            prev=pl.col("end_balance").shift(1).over("account_id"),
            first=pl.col("month") == pl.col("month").min().over("account_id"),
        ).filter(~pl.col("first"))
        assert (rolled["prev"] + rolled["inflow"] - rolled["outflow"] == rolled["end_balance"]).all()
        accounts = tables["deposit_accounts"].join(
            flows.group_by("account_id").len(), on="account_id", how="left"
        )
        closed = accounts.filter(pl.col("status") == "closed")
        assert closed["closed_date"].is_not_null().all()
        per_customer = accounts.group_by("customer_id").len()["len"]
        assert per_customer.min() >= 1 and per_customer.max() <= 3
        months = flows.group_by("account_id").agg(pl.col("month").diff().dt.total_days().max().alias("gap"))
        assert months["gap"].drop_nulls().max() <= 31  # consecutive months, no holes
        segment = tables["customers"].select("customer_id", "segment")
        by_segment = (
            flows.join(tables["deposit_accounts"].select("account_id", "customer_id"), on="account_id")
            .join(segment, on="customer_id")
            .group_by("segment")
            .agg(
                (pl.col(c).cast(pl.Float64) > 0).mean() for c in ("payroll_in", "acquiring_in", "subsidy_in")
            )
        )
        shares = {r["segment"]: r for r in by_segment.iter_rows(named=True)}
        assert shares["salaried"]["payroll_in"] > 0.5 and shares["farmer"]["payroll_in"] == 0
        assert shares["merchant"]["acquiring_in"] > 0.5 and shares["salaried"]["acquiring_in"] == 0
        assert 0 < shares["farmer"]["subsidy_in"] < 0.5 and shares["merchant"]["subsidy_in"] == 0

    def test_loans_and_their_performance_agree(self, tables: dict[str, pl.DataFrame]) -> None:
        loans, perf = tables["loans"], tables["loan_performance"]
        borrowers = loans["customer_id"].n_unique() / SMALL.customers
        assert 0.2 < borrowers < 0.45
        last = perf.filter(pl.col("month") == pl.col("month").max()).join(loans, on="loan_id")
        assert (last.filter(pl.col("status") == "overdue")["dpd"] > 0).all()
        assert (last.filter(pl.col("status") == "active")["dpd"] == 0).all()
        assert last["status"].is_in(["active", "overdue"]).all()
        closed = loans.filter(pl.col("status").is_in(["settled", "written_off"]))
        assert closed["close_date"].is_not_null().all()
        assert loans.filter(pl.col("status").is_in(["active", "overdue"]))["close_date"].is_null().all()
        assert (perf["overdue_amount"].cast(pl.Float64) > 0).eq(perf["dpd"] > 0).all()
        assert (perf["balance"] <= perf.join(loans, on="loan_id")["principal"]).all()

    def test_records_start_after_the_relationship(self, tables: dict[str, pl.DataFrame]) -> None:
        opened = tables["customers"].select("customer_id", pl.col("opened_date").alias("since"))
        for table, column in (
            ("deposit_accounts", "opened_date"),
            ("loans", "open_date"),
            ("bureau_reports", "report_date"),
            ("devices", "first_seen_date"),
        ):
            joined = tables[table].join(opened, on="customer_id")
            assert (joined[column] >= joined["since"]).all(), table
        flows = tables["account_flows"].join(
            tables["deposit_accounts"].select("account_id", "customer_id", "opened_date"), on="account_id"
        )
        assert (flows["month"] >= flows["opened_date"].dt.month_start()).all()
        assets = tables["assets_monthly"].join(opened, on="customer_id")
        assert (assets["month"] >= assets["since"].dt.month_start()).all()

    def test_the_truth_stays_out_of_the_extracts(self, sandbox: GenerateResult) -> None:
        truth_only = {"pd_12m", "bad_12m", "risk_trait", "ring_id", "is_fraudster", "default_date"}
        for path in (sandbox.out_dir / "extracts").rglob("*.parquet"):
            assert truth_only.isdisjoint(pl.read_parquet_schema(path)), path


class TestCsv:
    def test_csv_holds_the_same_values_as_parquet(self, sandbox: GenerateResult, tmp_path: Path) -> None:
        config = dataclasses.replace(SMALL, format="csv")
        generate(config, tmp_path, workers=1)
        for table in TABLES:
            path = (
                tmp_path / "extracts" / f"{table.name}.csv"
                if table.name in ("branches", "staff", "negative_list")
                else tmp_path / "extracts" / table.name / "part-00001.csv"
            )
            parquet = (
                read_table(sandbox.out_dir, table.name)
                if table.name in ("branches", "staff", "negative_list")
                else pl.read_parquet(sandbox.out_dir / "extracts" / table.name / "part-00001.parquet")
            )
            text = pl.read_csv(path, infer_schema=False)
            assert text.columns == list(table.column_names)
            for col in table.columns:
                t = text[col.name]
                if col.type.value == "amount":
                    assert t.drop_nulls().str.contains(r"^\d+\.\d{2}$").all(), (table.name, col.name)
                if col.type.value == "bool":
                    assert set(t.drop_nulls()) <= {"true", "false"}
                if col.type.value in ("date", "month"):
                    assert t.drop_nulls().str.contains(r"^\d{4}-\d{2}-\d{2}$").all()
            typed = pl.read_csv(path, schema=parquet.schema)
            assert typed.equals(parquet), table.name


class TestCalibration:
    def test_default_bad_rate_is_realistic(
        self, tables: dict[str, pl.DataFrame], sandbox: GenerateResult
    ) -> None:
        truth = tables["truth"]
        assert truth["pd_12m"].mean() == pytest.approx(SMALL.bad_rate, abs=1e-9)
        assert 0.02 <= truth["bad_12m"].mean() <= 0.08
        assert sandbox.bad_rate == truth["bad_12m"].mean()
        assert (truth["default_date"].is_not_null() == truth["bad_12m"]).all()
        bad = truth.filter("bad_12m")
        days = (bad["default_date"] - SMALL.as_of).dt.total_days()
        assert days.min() >= 1 and days.max() <= 365

    @pytest.mark.parametrize("bad_rate", [0.02, 0.06, 0.08])
    def test_configured_bad_rate_is_met(self, tmp_path: Path, bad_rate: float) -> None:
        n = 12_000
        config = SandboxConfig(customers=n, seed=42, bad_rate=bad_rate, chunk_size=6_000)
        result = generate(config, tmp_path, workers=1)
        assert result.mean_pd == pytest.approx(bad_rate, abs=1e-9)
        sd = (bad_rate * (1 - bad_rate) / n) ** 0.5
        assert abs(result.bad_rate - bad_rate) < 4.5 * sd

    def test_riskier_traits_mean_higher_pd(self, tables: dict[str, pl.DataFrame]) -> None:
        truth = tables["truth"]
        assert truth.select(pl.corr("risk_trait", "pd_12m", method="spearman")).item() > 0.6
        assert truth.select(pl.corr("stability_trait", "pd_12m", method="spearman")).item() < 0


class TestRings:
    def test_ring_members_share_devices_and_list_each_other(self, tables: dict[str, pl.DataFrame]) -> None:
        truth, devices, contacts, customers = (
            tables["truth"],
            tables["devices"],
            tables["contacts"],
            tables["customers"],
        )
        members = truth.filter("is_fraudster").select("customer_id", "ring_id")
        assert members.height >= 3
        shared = (
            devices.join(members, on="customer_id")
            .group_by("ring_id", "fingerprint")
            .agg(pl.col("customer_id").n_unique().alias("n"))
        )
        per_ring = shared.group_by("ring_id").agg(pl.col("n").max())
        assert (per_ring["n"] >= 2).all()
        ring_phones = members.join(customers.select("customer_id", "phone"), on="customer_id")
        listed = (
            contacts.join(members, on="customer_id")
            .join(
                ring_phones.rename(
                    {"customer_id": "fellow", "phone": "contact_phone", "ring_id": "fellow_ring"}
                ),
                on="contact_phone",
            )
            .filter(pl.col("ring_id") == pl.col("fellow_ring"))
        )
        assert listed["customer_id"].n_unique() >= 0.9 * members.height
        outside = devices.join(members, on="customer_id", how="anti")
        assert (
            devices.join(members, on="customer_id")["is_emulator"].mean() > 5 * outside["is_emulator"].mean()
        )

    def test_ring_members_are_riskier_and_recent(self, tables: dict[str, pl.DataFrame]) -> None:
        truth = tables["truth"].join(
            tables["customers"].select("customer_id", "opened_date"), on="customer_id"
        )
        ring, rest = truth.filter("is_fraudster"), truth.filter(~pl.col("is_fraudster"))
        assert ring["pd_12m"].median() > 5 * rest["pd_12m"].median()
        assert ring["opened_date"].min() >= date(2024, 6, 30)

    def test_some_rings_are_on_the_negative_list(
        self, sandbox: GenerateResult, tables: dict[str, pl.DataFrame]
    ) -> None:
        rings = pl.read_parquet(sandbox.out_dir / "truth" / "rings.parquet")
        negative = tables["negative_list"]
        exposed = rings.filter("exposed").explode("fingerprints")["fingerprints"]
        hidden = rings.filter(~pl.col("exposed")).explode("fingerprints")["fingerprints"]
        devices = negative.filter(pl.col("kind") == "device")["value"]
        assert exposed.is_in(devices.implode()).all()
        assert not hidden.is_in(devices.implode()).any()
        assert set(negative["reason"]) >= {"fraud", "court_enforced", "default"}
