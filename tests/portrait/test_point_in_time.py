"""No look-ahead: whatever the lake learns after the as-of date, the portrait stays the same bytes.

The sandbox bank's lake is copied, its portrait built, and then every row dated after the
as-of date is changed and new ones are added in every table (new customers, accounts, months
of flows, loans and their performance, bureau reports, tax quarters, devices, negative-list
entries naming existing customers; loans closed later get another fate). The portrait built
again must be byte-for-byte the same.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from creditfactory import portrait
from creditfactory.contract import lake as contract_lake
from creditfactory.portrait import store
from creditfactory.portrait.model import month_index, reference_month

#: Monthly tables: rows of months after the reference month are in the future.
MONTHLY = ("account_flows", "assets_monthly", "loan_performance", "invoices", "social_security")
#: Dated tables: rows dated after the as-of date are in the future.
DATED = {
    "customers": "opened_date",
    "deposit_accounts": "opened_date",
    "loans": "open_date",
    "bureau_reports": "report_date",
    "tax_records": "period_end",
    "devices": "first_seen_date",
    "negative_list": "listed_date",
}


def _read(lake: Path, table: str) -> pl.DataFrame:
    return pl.read_parquet(contract_lake.files(lake, table))


def _write(lake: Path, table: str, frame: pl.DataFrame) -> None:
    for path in contract_lake.files(lake, table):
        path.unlink()
    frame.write_parquet(lake / table / "b00000001-00000.parquet")


def _spoil_numbers(frame: pl.DataFrame, future: pl.Expr) -> pl.DataFrame:
    changes = []
    for name, dtype in frame.schema.items():
        if name.startswith("_") or name.endswith("_id") or name.endswith("_token"):
            continue
        if dtype == pl.Int64:
            changes.append(pl.when(future).then(pl.col(name) * 3 + 7).otherwise(pl.col(name)).alias(name))
        elif dtype == pl.Boolean:
            changes.append(pl.when(future).then(~pl.col(name)).otherwise(pl.col(name)).alias(name))
        elif dtype == pl.Float64:
            changes.append(pl.when(future).then(pl.col(name) + 1.5).otherwise(pl.col(name)).alias(name))
    return frame.with_columns(changes)


def _month_idx(col: str) -> pl.Expr:
    return pl.col(col).dt.year().cast(pl.Int64) * 12 + pl.col(col).dt.month().cast(pl.Int64) - 1


def spoil_the_future(lake: Path, as_of: date) -> None:
    """Change every row dated after ``as_of`` and add new ones, in every table."""
    ref = month_index(reference_month(as_of))
    later = as_of + timedelta(days=3)
    for table in MONTHLY:
        frame = _read(lake, table)
        future = _month_idx("month") > ref
        changed = _spoil_numbers(frame, future)
        shifted = changed.filter(future).with_columns(pl.col("month").dt.offset_by("36mo"))
        if table == "loan_performance":
            shifted = shifted.with_columns(pl.lit(200, dtype=pl.Int64).alias("dpd"))
        assert changed.filter(future).height > 0, f"{table} has no rows after {as_of}"
        _write(lake, table, pl.concat([changed, shifted]))
    for table, column in DATED.items():
        frame = _read(lake, table)
        future = pl.col(column) > as_of
        changed = _spoil_numbers(frame, future)
        if table == "loans":
            closes_later = pl.col("close_date") > as_of
            changed = changed.with_columns(
                pl.when(closes_later).then(pl.lit("written_off")).otherwise(pl.col("status")).alias("status"),
                pl.when(closes_later).then(pl.lit(later)).otherwise(pl.col("close_date")).alias("close_date"),
            )
        if table == "deposit_accounts":
            changed = changed.with_columns(
                pl.when(pl.col("closed_date") > as_of)
                .then(pl.lit(later))
                .otherwise(pl.col("closed_date"))
                .alias("closed_date")
            )
        _write(lake, table, changed)
    _add_future_rows(lake, later)


def _add_future_rows(lake: Path, later: date) -> None:
    customers = _read(lake, "customers")
    old = customers.filter(pl.col("opened_date") < later).head(40)
    newcomers = old.with_columns(
        ("Z" + pl.col("customer_id")).alias("customer_id"),
        ("z" + pl.col("id_number_token")).alias("id_number_token"),
        ("z" + pl.col("phone_token")).alias("phone_token"),
        pl.lit(later).alias("opened_date"),
    )
    _write(lake, "customers", pl.concat([customers, newcomers]))

    accounts = _read(lake, "deposit_accounts")
    new_accounts = accounts.head(60).with_columns(
        ("Z" + pl.col("account_id")).alias("account_id"),
        pl.lit(later).alias("opened_date"),
        pl.lit(None, dtype=pl.Date).alias("closed_date"),
    )
    _write(lake, "deposit_accounts", pl.concat([accounts, new_accounts]))
    flows = _read(lake, "account_flows")
    new_flows = (
        flows.filter(pl.col("account_id").is_in(new_accounts["account_id"].str.slice(1).implode()))
        .with_columns(
            ("Z" + pl.col("account_id")).alias("account_id"), (pl.col("inflow") * 9).alias("inflow")
        )
        .filter(pl.col("month") > later)
    )
    month_after = date(later.year + (later.month // 12), later.month % 12 + 1, 1)
    first_months = (
        flows.group_by("account_id")
        .agg(pl.all().first())
        .with_columns(("Z" + pl.col("account_id")).alias("account_id"), pl.lit(month_after).alias("month"))
    )
    first_months = first_months.filter(pl.col("account_id").is_in(new_accounts["account_id"].implode()))
    _write(lake, "account_flows", pl.concat([flows, new_flows, first_months.select(flows.columns)]))

    loans = _read(lake, "loans")
    new_loans = loans.head(30).with_columns(
        ("Z" + pl.col("loan_id")).alias("loan_id"),
        pl.lit(later).alias("open_date"),
        pl.lit("overdue").alias("status"),
        pl.lit(None, dtype=pl.Date).alias("close_date"),
    )
    _write(lake, "loans", pl.concat([loans, new_loans]))
    perf = _read(lake, "loan_performance")
    new_perf = (
        perf.group_by("loan_id")
        .agg(pl.all().first())
        .with_columns(
            ("Z" + pl.col("loan_id")).alias("loan_id"),
            pl.lit(month_after).alias("month"),
            pl.lit(95, dtype=pl.Int64).alias("dpd"),
        )
    )
    new_perf = new_perf.filter(pl.col("loan_id").is_in(new_loans["loan_id"].implode())).select(perf.columns)
    _write(lake, "loan_performance", pl.concat([perf, new_perf]))

    for table, column in (("bureau_reports", "report_date"), ("tax_records", "period_end")):
        frame = _read(lake, table)
        extra = frame.group_by("customer_id").agg(pl.all().last()).select(frame.columns)
        extra = extra.with_columns(pl.lit(later + timedelta(days=30)).alias(column))
        extra = _spoil_numbers(extra, pl.lit(True))
        _write(lake, table, pl.concat([frame, extra]))

    devices = _read(lake, "devices")
    new_devices = devices.head(50).with_columns(
        ("Z" + pl.col("device_id")).alias("device_id"),
        ("z" + pl.col("fingerprint")).alias("fingerprint"),
        pl.lit(True).alias("is_rooted"),
        pl.lit(later).alias("first_seen_date"),
    )
    _write(lake, "devices", pl.concat([devices, new_devices]))

    negative = _read(lake, "negative_list")
    template = negative.head(1)
    old_customers = customers.filter(pl.col("opened_date") < later).head(30)
    entries = [
        template.with_columns(
            pl.lit(f"Z{kind}{i}").alias("entry_id"),
            pl.lit(kind).alias("kind"),
            pl.lit(value).alias("value_token"),
            pl.lit(later).alias("listed_date"),
        )
        for i, (kind, value) in enumerate(
            [("id_number", t) for t in old_customers["id_number_token"]]
            + [("phone", t) for t in old_customers["phone_token"]]
            + [("device", f) for f in devices["fingerprint"].head(30)]
            + [("device", f) for f in new_devices["fingerprint"]]
        )
    ]
    _write(lake, "negative_list", pl.concat([negative, *entries]))


def _part_bytes(lake: Path, as_of: date) -> list[bytes]:
    return [p.read_bytes() for p in store.parts(store.folder(lake, store.PORTRAIT, as_of))]


class TestNoLookAhead:
    @pytest.mark.parametrize(
        "as_of", [date(2024, 12, 31), date(2024, 12, 15)], ids=["month-end", "mid-month"]
    )
    def test_rows_after_the_as_of_date_change_nothing(self, sandbox_copy: Path, as_of: date) -> None:
        first = portrait.build(sandbox_copy, as_of=as_of)
        before = _part_bytes(sandbox_copy, as_of)
        assert first.rows > 0

        spoil_the_future(sandbox_copy, as_of)
        second = portrait.build(sandbox_copy, as_of=as_of)

        assert second.fingerprint != first.fingerprint  # the lake did change
        assert _part_bytes(sandbox_copy, as_of) == before

    def test_the_same_lake_gives_the_same_bytes(self, sandbox_copy: Path) -> None:
        as_of = date(2025, 3, 31)
        portrait.build(sandbox_copy, as_of=as_of)
        first = _part_bytes(sandbox_copy, as_of)
        portrait.build(sandbox_copy, as_of=as_of)
        assert _part_bytes(sandbox_copy, as_of) == first

    def test_a_month_counts_once_it_has_ended(self, worked_copy: Path) -> None:
        """On 2025-06-15 June's month-end figures are not known: the reference month is May."""
        as_of = date(2025, 6, 15)
        result = portrait.build(worked_copy, as_of=as_of)
        row = (
            portrait.read(worked_copy, as_of=as_of)
            .filter(pl.col("customer_id") == "C1")
            .collect()
            .row(0, named=True)
        )
        assert result.rows == 3
        assert row["balance_current"] == 2300.0  # May's balance, not June's 2 600
        assert row["current_dpd"] == 0  # May was current; June's 35 DPD is not known yet
        assert row["bureau_inquiries_12m"] == 4  # the report of 2025-06-10 is known on the 15th
