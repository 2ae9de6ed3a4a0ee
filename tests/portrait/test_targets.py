"""Targets: bad within twelve months of the as-of date, and when the outcome can be observed."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from creditfactory import portrait
from creditfactory.contract import lake as contract_lake
from creditfactory.errors import InvalidInput
from tests.portrait.lakes import customer, flow, months, write_lake

AS_OF = date(2024, 6, 30)


def _loan(
    loan: str, cid: str, opened: str, *, status: str = "active", closed: str | None = None
) -> dict[str, Any]:
    return {
        "loan_id": loan,
        "customer_id": cid,
        "product": "consumer",
        "open_date": opened,
        "maturity_date": "2027-01-01",
        "principal": 10000,
        "annual_rate": "0.06",
        "guarantee_type": "credit",
        "status": status,
        "close_date": closed,
    }


def _perf(loan: str, first: str, last: str, dpd: dict[str, int] | None = None) -> list[dict[str, Any]]:
    dpd = dpd or {}
    return [
        {"loan_id": loan, "month": m, "balance": 5000, "dpd": dpd.get(f"{m:%Y-%m}", 0), "overdue_amount": 0}
        for m in months(first, last)
    ]


def target_lake(lake: Path, *, history_to: str = "2025-06") -> Path:
    """Eight borrowers (or not) whose outcome after 2024-06-30 is known by construction."""
    ids = ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8"]
    perf = (
        _perf("L1", "2023-01", history_to, {"2025-02": 95})  # 90+ inside the window
        + _perf("L2", "2023-01", "2024-12", {"2024-12": 60})  # written off in January 2025
        + _perf("L3", "2023-01", history_to)  # always current
        + _perf(
            "L5", "2023-01", history_to, {"2024-05": 90, "2024-06": 120, "2024-07": 150}
        )  # in default at the as-of date
        + _perf("L6", "2023-01", "2024-02")  # settled before the as-of date
        + _perf("L7", "2024-10", history_to, {"2025-06": 90})  # a new loan, bad in the last month
        + _perf("L8", "2023-01", history_to, {"2024-06": 30})  # 30 DPD at the as-of date, then cured
    )
    loans = [
        _loan("L1", "T1", "2023-01-10"),
        _loan("L2", "T2", "2023-01-10", status="written_off", closed="2025-01-15"),
        _loan("L3", "T3", "2023-01-10"),
        _loan("L5", "T5", "2023-01-10", status="overdue"),
        _loan("L6", "T6", "2023-01-10", status="settled", closed="2024-03-01"),
        _loan("L7", "T7", "2024-10-01", status="overdue"),
        _loan("L8", "T8", "2023-01-10"),
    ]
    return write_lake(
        lake,
        {
            "customers": [customer(c, opened_date="2020-01-01") for c in ids],
            "deposit_accounts": [
                {
                    "account_id": "A1",
                    "customer_id": "T1",
                    "product": "savings",
                    "opened_date": "2020-01-01",
                    "closed_date": None,
                    "status": "active",
                }
            ],
            "account_flows": [
                flow("A1", m, inflow=100, end_balance=100) for m in months("2023-07", history_to)
            ],
            "loans": loans,
            "loan_performance": perf,
        },
    )


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    lake = target_lake(tmp_path_factory.mktemp("targets") / "lake")
    result = portrait.build_targets(lake, as_of=AS_OF)
    assert result.history_end == date(2025, 6, 1)
    frame = portrait.read_targets(lake, as_of=AS_OF).collect()
    return {row["customer_id"]: row for row in frame.iter_rows(named=True)}


class TestBad12m:
    @pytest.mark.parametrize(
        ("cid", "bad", "observable", "reason"),
        [
            ("T1", 1, True, None),  # 95 DPD in February 2025
            ("T2", 1, True, None),  # written off on 2025-01-15
            ("T3", 0, True, None),
            ("T4", 0, False, "no_exposure"),  # never borrowed
            ("T5", 1, False, "in_default"),  # already 120 DPD at the as-of date
            ("T6", 0, False, "no_exposure"),  # repaid before the as-of date
            ("T7", 1, True, None),  # loan taken in the window, 90 DPD in its last month
            ("T8", 0, True, None),  # 30 DPD at the as-of date is not a default
        ],
    )
    def test_outcome_by_customer(
        self, targets: dict[str, dict[str, Any]], cid: str, bad: int, observable: bool, reason: str | None
    ) -> None:
        row = targets[cid]
        assert (row["bad_12m"], row["observable"], row["unobservable_reason"]) == (bad, observable, reason)
        assert row["as_of"] == AS_OF

    def test_types(self, tmp_path: Path) -> None:
        lake = target_lake(tmp_path / "lake")
        portrait.build_targets(lake, as_of=AS_OF)
        schema = portrait.read_targets(lake, as_of=AS_OF).collect_schema()
        assert schema["bad_12m"] == pl.Int8 and schema["observable"] == pl.Boolean


class TestObservability:
    def test_a_history_shorter_than_the_window_observes_nobody(self, tmp_path: Path) -> None:
        lake = target_lake(tmp_path / "lake", history_to="2025-05")
        result = portrait.build_targets(lake, as_of=AS_OF)
        frame = portrait.read_targets(lake, as_of=AS_OF).collect()
        assert result.observable == 0 and result.unobservable == {"history": 8}
        assert frame["observable"].to_list() == [False] * 8

    def test_a_shorter_horizon_is_named_in_the_column(self, tmp_path: Path) -> None:
        lake = target_lake(tmp_path / "lake")
        result = portrait.build_targets(lake, as_of=AS_OF, horizon_months=6)
        frame = portrait.read_targets(lake, as_of=AS_OF).collect()
        assert "bad_6m" in frame.columns
        assert dict(zip(frame["customer_id"], frame["bad_6m"], strict=True))["T1"] == 0  # 95 DPD in month 8
        assert result.horizon_months == 6

    def test_summary(self, tmp_path: Path) -> None:
        lake = target_lake(tmp_path / "lake")
        result = portrait.build_targets(lake, as_of=AS_OF)
        assert (result.rows, result.observable, result.bad) == (8, 5, 3)
        assert result.bad_rate == pytest.approx(3 / 5)
        assert portrait.targets_available(lake) == [AS_OF]

    def test_an_empty_outcome_window_is_refused(self, tmp_path: Path) -> None:
        lake = target_lake(tmp_path / "lake")
        with pytest.raises(InvalidInput, match="at least one month"):
            portrait.build_targets(lake, as_of=AS_OF, horizon_months=0)


class TestAgainstTheSandbox:
    def test_bad_12m_agrees_with_a_direct_reading_of_the_loans(self, sandbox_copy: Path) -> None:
        """An independent computation from the raw loan tables, customer by customer."""
        result = portrait.build_targets(sandbox_copy, as_of=AS_OF)
        got = portrait.read_targets(sandbox_copy, as_of=AS_OF).collect()
        loans = pl.read_parquet(contract_lake.files(sandbox_copy, "loans")).rows(named=True)
        perf = pl.read_parquet(contract_lake.files(sandbox_copy, "loan_performance")).rows(named=True)
        owner = {loan["loan_id"]: loan["customer_id"] for loan in loans}
        window = (date(2024, 7, 1), date(2025, 6, 1))
        bad = {owner[p["loan_id"]] for p in perf if window[0] <= p["month"] <= window[1] and p["dpd"] >= 90}
        bad |= {
            loan["customer_id"]
            for loan in loans
            if loan["status"] == "written_off" and AS_OF < loan["close_date"] <= date(2025, 6, 30)
        }
        expected = {cid: int(cid in bad) for cid in got["customer_id"]}
        assert dict(zip(got["customer_id"], got["bad_12m"], strict=True)) == expected
        assert result.observable > 0 and 0 < result.bad < result.observable
