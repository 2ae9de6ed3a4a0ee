"""The portrait of the hand-made bank in ``lakes.worked_lake``, worked out by hand.

Slopes and standard deviations are checked against Python's ``statistics`` module on the same
monthly totals; every other value is written out below with the arithmetic that gives it.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest

from creditfactory import portrait
from tests.portrait.lakes import AS_OF

#: C1's month-end balance over all accounts, July 2024 to June 2025: account A1 climbs by 100 a
#: month from 1 000; account A3, opened in May 2025, adds 300 and then 500.
C1_BALANCES = [1000 + 100 * i for i in range(10)] + [2000 + 300, 2100 + 500]


@pytest.fixture(scope="module")
def rows(worked: Path) -> dict[str, dict[str, Any]]:
    frame = portrait.read(worked, as_of=AS_OF).collect()
    return {row["customer_id"]: row for row in frame.iter_rows(named=True)}


def exact(value: float) -> Any:
    return pytest.approx(value, rel=1e-12, abs=0)


class TestWhoIsInThePortrait:
    def test_customers_known_at_the_as_of_date_only(self, rows: dict[str, dict[str, Any]]) -> None:
        assert sorted(rows) == ["C1", "C2", "C4"]  # C3 became a customer on 2025-07-10

    def test_identity_columns(self, rows: dict[str, dict[str, Any]]) -> None:
        assert rows["C1"]["segment"] == "salaried"
        assert rows["C1"]["as_of"] == AS_OF
        assert rows["C1"]["branch_id"] == "B01"
        assert rows["C4"]["lat"] is None and rows["C4"]["lon"] is None


class TestProfile:
    def test_age_in_whole_years(self, rows: dict[str, dict[str, Any]]) -> None:
        assert rows["C1"]["age"] == 34  # born 1990-07-01: 35 only the day after the as-of date
        assert rows["C2"]["age"] == 50  # born 1975-06-30: 50 on the as-of date itself

    def test_months_since_open(self, rows: dict[str, dict[str, Any]]) -> None:
        assert rows["C1"]["months_since_open"] == 63  # 2020-03-15 -> 2025-06-15 is 63 months
        assert rows["C2"]["months_since_open"] == 184  # 2010-01-31 -> 2025-05-31; June has no 31st
        assert rows["C4"]["months_since_open"] == 7  # 2024-11-20 -> 2025-06-20

    def test_policy_flags(self, rows: dict[str, dict[str, Any]]) -> None:
        assert (rows["C1"]["kyc_complete"], rows["C1"]["marketing_consent"]) == (True, True)
        assert (rows["C4"]["kyc_complete"], rows["C4"]["marketing_consent"]) == (False, False)
        assert rows["C1"]["is_married"] is True and rows["C2"]["is_married"] is False
        assert rows["C1"]["education_level"] == 4 and rows["C2"]["education_level"] is None


class TestDeposits:
    def test_balances_over_all_accounts(self, rows: dict[str, dict[str, Any]]) -> None:
        c1 = rows["C1"]
        assert c1["balance_current"] == 2600.0
        assert c1["balance_avg_3m"] == exact((1900 + 2300 + 2600) / 3)
        assert c1["balance_avg_12m"] == exact(19400 / 12)  # 1000 + ... + 1900 + 2300 + 2600
        assert c1["balance_min_6m"] == 1600.0  # January 2025

    def test_trend_and_volatility_agree_with_the_statistics_module(
        self, rows: dict[str, dict[str, Any]]
    ) -> None:
        slope = statistics.linear_regression(range(12), C1_BALANCES).slope
        cv = statistics.stdev(C1_BALANCES) / statistics.mean(C1_BALANCES)
        assert rows["C1"]["balance_slope_12m"] == exact(slope)
        assert rows["C1"]["balance_cv_12m"] == exact(cv)

    def test_flows(self, rows: dict[str, dict[str, Any]]) -> None:
        c1 = rows["C1"]
        assert c1["inflow_avg_3m"] == exact((5000 + 5300 + 5200) / 3)
        assert c1["months_no_income_12m"] == 1  # February 2025
        assert c1["months_no_income_6m"] == 1
        assert c1["months_net_outflow_12m"] == 1  # February: 4 900 out, nothing in
        assert c1["annual_income_est"] == 55500.0  # 12 x (11 x 5 000 + 300 + 200) / 12

    def test_payroll_regularity(self, rows: dict[str, dict[str, Any]]) -> None:
        c1 = rows["C1"]
        assert (c1["payroll_months_12m"], c1["payroll_avg_12m"], c1["payroll_cv_12m"]) == (11, 5000.0, 0.0)
        assert c1["months_since_payroll"] == 0
        assert rows["C2"]["payroll_months_12m"] == 0 and rows["C2"]["months_since_payroll"] is None

    def test_coverage_when_the_history_is_shorter_than_the_window(
        self, rows: dict[str, dict[str, Any]]
    ) -> None:
        assert rows["C1"]["flow_months_12m"] == 12
        assert rows["C2"]["flow_months_12m"] == 6  # flows only from January 2025
        assert rows["C4"]["flow_months_12m"] == 8  # a customer since November 2024
        assert rows["C2"]["acquiring_avg_12m"] == 1250.0  # over the six months there are

    def test_products(self, rows: dict[str, dict[str, Any]]) -> None:
        c1 = rows["C1"]
        assert c1["accounts_open"] == 2  # the time deposit closed in March
        assert c1["time_deposits_open"] == 0
        assert c1["accounts_opened_12m"] == 1  # A3 in May 2025
        assert c1["oldest_account_months"] == 63
        assert c1["product_count"] == 3  # two accounts and a loan


class TestCredit:
    def test_exposure_and_delinquency_at_the_as_of_date(self, rows: dict[str, dict[str, Any]]) -> None:
        c1 = rows["C1"]
        assert c1["existing_loan_balance"] == 34490.65  # 60 000 - 17 x 1 500.55
        assert c1["current_dpd"] == 35
        assert c1["overdue_amount_current"] == 1200.5
        assert c1["has_overdue"] is True

    def test_history_stops_at_the_as_of_date(self, rows: dict[str, dict[str, Any]]) -> None:
        c1 = rows["C1"]
        assert c1["worst_dpd_12m"] == 45 and c1["worst_dpd_ever"] == 45  # 120 DPD comes in August
        assert c1["months_dpd30_12m"] == 2  # April (45) and June (35)
        assert c1["months_delinquent_24m"] == 3
        assert c1["months_since_delinquency"] == 0

    def test_a_status_counts_only_from_its_close_date(self, rows: dict[str, dict[str, Any]]) -> None:
        c1 = rows["C1"]
        # L1 is written off on 2025-09-30: at the as-of date it is an open loan
        assert (c1["loans_open"], c1["loans_total"], c1["loans_written_off"]) == (1, 2, 0)
        assert c1["ever_default"] is False
        assert c1["loan_principal_open"] == 60000.0
        assert c1["loan_rate_max_open"] == 0.0435
        assert c1["months_since_last_loan"] == 17  # 2024-01-15

    def test_no_loans_means_zero_exposure(self, rows: dict[str, dict[str, Any]]) -> None:
        c2 = rows["C2"]
        assert (c2["existing_loan_balance"], c2["current_dpd"], c2["has_overdue"]) == (0.0, 0, False)
        assert c2["months_since_delinquency"] is None and c2["loans_open"] == 0

    def test_latest_bureau_report_before_the_as_of_date(self, rows: dict[str, dict[str, Any]]) -> None:
        c1 = rows["C1"]
        assert c1["bureau_inquiries_12m"] == 4  # 2025-06-10; the July report does not count
        assert c1["bureau_card_utilisation"] == 0.75
        assert c1["bureau_total_exposure"] == 80000.25
        assert (c1["bureau_reports_24m"], c1["bureau_report_age_months"]) == (2, 0)
        assert c1["debt_to_income"] == exact((34490.65 + 80000.25) / 55500.0)
        assert rows["C2"]["bureau_total_exposure"] is None and rows["C2"]["bureau_reports_24m"] == 0


class TestMerchants:
    def test_acquiring_and_invoices(self, rows: dict[str, dict[str, Any]]) -> None:
        c2 = rows["C2"]
        assert c2["acquiring_avg_3m"] == 1500.0
        assert c2["acquiring_growth_6m"] is None  # no six months before the last six
        assert c2["acquiring_share_12m"] == exact(1250 / 1750)
        assert c2["invoice_growth_6m"] == exact(3000 / 2000 - 1)
        assert c2["invoice_amount_avg_12m"] == 2500.0

    def test_tax(self, rows: dict[str, dict[str, Any]]) -> None:
        c2 = rows["C2"]
        assert c2["tax_revenue_12m"] == 48000.0  # four quarters to 2025-06-30 at 12 000
        assert c2["tax_filings_12m"] == 4
        assert c2["tax_revenue_growth_12m"] == exact(12000 / 10000 - 1)
        assert c2["tax_grade_score"] == 3  # B in the latest quarter


class TestFarmersSocialDigital:
    def test_farmland(self, rows: dict[str, dict[str, Any]]) -> None:
        c4 = rows["C4"]
        assert (c4["land_area_mu"], c4["machinery_count"], c4["machinery_value"]) == (12.5, 2, 36000.0)
        assert c4["main_crop"] == "grain" and c4["cooperative_member"] is True
        assert c4["machinery_value_per_mu"] == 2880.0
        assert c4["subsidy_sum_12m"] == 1375.0
        assert rows["C1"]["land_area_mu"] is None

    def test_social_security_continuity(self, rows: dict[str, dict[str, Any]]) -> None:
        c1 = rows["C1"]
        assert c1["social_months_paid_12m"] == 11
        assert c1["social_months_since_unpaid"] == 8  # October 2024
        assert c1["social_paid_current"] is True
        assert rows["C2"]["social_paid_current"] is None

    def test_devices_and_contacts_known_at_the_as_of_date(self, rows: dict[str, dict[str, Any]]) -> None:
        c1 = rows["C1"]
        assert (c1["device_count"], c1["device_rooted"]) == (1, False)  # the rooted phone came in August
        assert (c1["contact_count"], c1["contact_family_count"]) == (2, 1)

    def test_negative_list_as_listed_by_the_as_of_date(self, rows: dict[str, dict[str, Any]]) -> None:
        assert rows["C1"]["on_negative_list"] is False  # C1's phone is listed only on 2025-07-15
        assert (rows["C2"]["negative_id_hits"], rows["C2"]["on_negative_list"]) == (1, True)


class TestMissingOptionalTable:
    def test_features_of_an_absent_table_are_empty_and_the_manifest_says_so(
        self, worked: Path, rows: dict[str, dict[str, Any]]
    ) -> None:
        assert rows["C1"]["assets_current"] is None and rows["C1"]["wealth_months_12m"] == 0
        assert portrait.manifest(worked, as_of=AS_OF)["missing_tables"] == ["assets_monthly"]
