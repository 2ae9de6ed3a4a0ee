"""A sandbox bank through the contract: clean load, corrupted copy, re-run."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from creditfactory.contract import IngestSettings, ingest_directory, scan, table_counts
from creditfactory.sandbox import SandboxConfig, generate

CUSTOMERS = 3_000


@pytest.fixture(scope="module")
def sandbox_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sandbox") / "bank"
    generate(SandboxConfig(customers=CUSTOMERS, seed=11, chunk_size=1_000, format="csv"), out)
    return out


def _ingest(container, directory: Path, batch_rows: int = 50_000):  # type: ignore[no-untyped-def]
    return ingest_directory(
        directory=directory,
        uow_factory=container.sessions,
        clock=container.clock,
        vault=container.vault,
        settings=IngestSettings(
            lake=container.lake_dir, reject_root=container.reject_dir, batch_rows=batch_rows
        ),
    )


def _rows(directory: Path, table: str) -> pl.DataFrame:
    root = directory / "extracts"
    files = sorted((root / table).glob("*.csv")) if (root / table).is_dir() else [root / f"{table}.csv"]
    return pl.concat([pl.read_csv(f, infer_schema=False) for f in files])


class TestCleanSandbox:
    def test_every_row_loads_and_a_rerun_changes_nothing(self, container, sandbox_csv: Path) -> None:  # type: ignore[no-untyped-def]
        first = _ingest(container, sandbox_csv)
        assert first.rejected == 0
        expected = {t: _rows(sandbox_csv, t).height for t in first.tables}
        assert {t: r.loaded for t, r in first.tables.items()} == expected
        counts = table_counts(lake=container.lake_dir)
        lake_files = sorted(p.relative_to(container.lake_dir) for p in container.lake_dir.rglob("*.parquet"))

        again = _ingest(container, sandbox_csv)
        assert again.loaded == 0 and again.rejected == 0
        assert all(t.unchanged_files == t.files for t in again.tables.values())
        assert table_counts(lake=container.lake_dir) == counts
        assert (
            sorted(p.relative_to(container.lake_dir) for p in container.lake_dir.rglob("*.parquet"))
            == lake_files
        )


class TestCorruptedCopy:
    def test_loads_exactly_the_good_rows_and_reports_exactly_the_bad(  # type: ignore[no-untyped-def]
        self, container, sandbox_csv: Path, tmp_path: Path
    ) -> None:
        copy = tmp_path / "bank"
        shutil.copytree(sandbox_csv / "extracts", copy / "extracts")
        part = sorted((copy / "extracts" / "customers").glob("*.csv"))[0]
        customers = pl.read_csv(part, infer_schema=False)

        broken: dict[str, str] = {}  # customer_id -> the field its reason must name
        rows = customers.to_dicts()
        # wrong check digit
        for r in rows[0:3]:
            r["id_number"] = r["id_number"][:17] + ("0" if r["id_number"][17] != "0" else "1")
            broken[r["customer_id"]] = "id_number"
        # unknown branch
        for r in rows[3:5]:
            r["branch_id"] = "NOPE"
            broken[r["customer_id"]] = "branch_id"
        # wrong type
        rows[5]["birth_date"] = "31/02/1990"
        broken[rows[5]["customer_id"]] = "birth_date"
        # unknown code
        rows[6]["segment"] = "astronaut"
        broken[rows[6]["customer_id"]] = "segment"
        # duplicate key: a second row for customer 7 -> both rejected
        dup = dict(rows[7])
        dup["phone"] = "13700000000"
        rows.append(dup)
        broken[rows[7]["customer_id"]] = "duplicate key"
        pl.DataFrame(rows, schema=customers.schema).write_csv(part)

        # account flows: an amount with three decimals and a negative outflow
        flow_part = sorted((copy / "extracts" / "account_flows").glob("*.csv"))[-1]
        flows = pl.read_csv(flow_part, infer_schema=False)
        flows = flows.with_columns(
            pl.when(pl.int_range(pl.len()) == 10)
            .then(pl.lit("12.345"))
            .otherwise(pl.col("inflow"))
            .alias("inflow"),
            pl.when(pl.int_range(pl.len()) == 20)
            .then(pl.lit("-1.00"))
            .otherwise(pl.col("outflow"))
            .alias("outflow"),
        )
        flows.write_csv(flow_part)
        bad_flow_rows = {10 + 2, 20 + 2}  # spreadsheet rows (header = 1)

        result = _ingest(container, copy, batch_rows=5_000)

        # customers: exactly the broken ones
        rej = pl.read_csv(Path(result.reject_dir) / "customers.csv", infer_schema=False)
        assert set(rej["customer_id"]) == set(broken)
        assert rej.height == len(broken) + 1  # both rows of the duplicated key
        for row in rej.iter_rows(named=True):
            assert broken[row["customer_id"]] in row["_reasons"], row
            assert row["_file"] == part.name and int(row["_row"]) >= 2
        assert result.tables["customers"].loaded == CUSTOMERS - len(broken)

        # their accounts fail the foreign key, and nothing else does
        accounts = _rows(sandbox_csv, "deposit_accounts")
        orphan_accounts = accounts.filter(pl.col("customer_id").is_in(list(broken)))
        acc_rej = pl.read_csv(Path(result.reject_dir) / "deposit_accounts.csv", infer_schema=False)
        assert set(acc_rej["account_id"]) == set(orphan_accounts["account_id"])
        assert all("not found in customers" in r for r in acc_rej["_reasons"])

        # flows: the orphans' flows plus the two broken rows
        all_flows = _rows(sandbox_csv, "account_flows")
        orphan_flows = all_flows.filter(
            pl.col("account_id").is_in(orphan_accounts["account_id"].implode())
        ).height
        flow_rej = pl.read_csv(Path(result.reject_dir) / "account_flows.csv", infer_schema=False)
        direct = flow_rej.filter(pl.col("_file") == flow_part.name).filter(
            pl.col("_row").cast(pl.Int64).is_in(list(bad_flow_rows))
        )
        assert direct.height == 2
        assert any("inflow: not an amount" in r for r in direct["_reasons"])
        assert any("outflow: '-1.00' is below the minimum 0" in r for r in direct["_reasons"])
        assert (
            flow_rej.height
            == orphan_flows
            + 2
            - direct.filter(pl.col("account_id").is_in(orphan_accounts["account_id"].implode())).height
        )
        assert result.tables["account_flows"].loaded == all_flows.height - flow_rej.height

        # the lake holds exactly the good customers
        lake_ids = set(scan(container.lake_dir, "customers").select("customer_id").collect()["customer_id"])
        assert lake_ids == set(_rows(sandbox_csv, "customers")["customer_id"]) - set(broken)
