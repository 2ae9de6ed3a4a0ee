"""Pure rules of the decision facts: distances, the applicant, income cross-checks, the catalogue."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from creditfactory import portrait
from creditfactory.decisioning import FACTS, Applicant, Contact, FactSettings, fact_schema, haversine_km
from creditfactory.decisioning.model import (
    INCOME_FEATURES,
    EdgeKind,
    InvalidApplicant,
    distance_km,
    income_facts,
    observed_incomes,
)
from creditfactory.errors import InvalidInput

AT = datetime(2025, 7, 1, 2, 0, tzinfo=UTC)


def make(**kw: object) -> Applicant:
    values: dict[str, object] = {
        "id_number_token": "id-1",
        "phone_token": "phone-1",
        "applied_at": AT,
        "business_date": date(2025, 7, 1),
    }
    values.update(kw)
    return Applicant(**values)  # type: ignore[arg-type]


class TestHaversine:
    def test_worked_example_30n120e_to_31n121e(self) -> None:
        # phi1 = 30 deg = 0.5235988 rad, phi2 = 31 deg = 0.5410521 rad, dphi = dlambda = 0.0174533 rad
        # sin^2(dphi/2) = sin^2(0.00872665) = 0.00872654^2 = 7.61524e-5
        # cos(phi1) cos(phi2) = 0.8660254 x 0.8571673 = 0.7423360
        # a = 7.61524e-5 x (1 + 0.7423360) = 1.326830e-4
        # c = 2 asin(sqrt(a)) = 2 asin(0.01151881) = 0.02303814
        # d = 6371.0088 km x 0.02303814 = 146.776 km
        assert haversine_km(30.0, 120.0, 31.0, 121.0) == pytest.approx(146.776, abs=0.001)

    def test_one_degree_of_the_equator_is_the_radius_times_pi_over_180(self) -> None:
        assert haversine_km(0.0, 0.0, 0.0, 1.0) == pytest.approx(6371.0088 * math.pi / 180, rel=1e-12)
        assert haversine_km(0.0, 0.0, 1.0, 0.0) == pytest.approx(6371.0088 * math.pi / 180, rel=1e-12)

    def test_same_point_is_zero_and_order_does_not_matter(self) -> None:
        assert haversine_km(31.46, 116.95, 31.46, 116.95) == 0.0
        assert haversine_km(31.46, 116.95, 31.2, 117.3) == pytest.approx(
            haversine_km(31.2, 117.3, 31.46, 116.95)
        )

    def test_antipodes_are_half_the_circumference(self) -> None:
        assert haversine_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * 6371.0088)

    def test_missing_point_gives_none_not_zero(self) -> None:
        assert distance_km(None, None, 30.0, 120.0) is None
        assert distance_km(30.0, 120.0, None, 120.0) is None
        assert distance_km(30.0, 120.0, 31.0, 121.0) == 146.776


class TestApplicant:
    def test_naive_time_is_refused(self) -> None:
        with pytest.raises(InvalidApplicant, match="aware"):
            make(applied_at=datetime(2025, 7, 1, 10, 0))

    def test_other_time_zones_are_accepted(self) -> None:
        beijing = timezone(timedelta(hours=8))
        assert make(applied_at=datetime(2025, 7, 1, 10, 0, tzinfo=beijing)).applied_at == AT

    def test_half_a_location_is_refused(self) -> None:
        with pytest.raises(InvalidApplicant, match="both"):
            make(lat=31.0)
        with pytest.raises(InvalidApplicant, match="WGS-84"):
            make(lat=91.0, lon=0.0)

    def test_tokens_are_required_and_bounded(self) -> None:
        with pytest.raises(InvalidApplicant, match="ID-number token"):
            make(id_number_token="")
        with pytest.raises(InvalidApplicant, match="phone token"):
            make(phone_token=None)
        with pytest.raises(InvalidApplicant, match="device fingerprint"):
            make(device_fingerprint="x" * 65)

    def test_income_is_a_non_negative_decimal(self) -> None:
        with pytest.raises(InvalidApplicant, match="Decimal"):
            make(declared_annual_income=50000.0)
        with pytest.raises(InvalidApplicant, match="negative"):
            make(declared_annual_income=Decimal("-1"))
        assert make(declared_annual_income=Decimal("88000.00")).declared_annual_income == Decimal("88000.00")

    def test_links_skip_the_own_phone_and_repeated_contacts(self) -> None:
        app = make(
            device_fingerprint="fp",
            ip_address="1.2.3.4",
            address_token="addr",
            contacts=[Contact("phone-1"), Contact("phone-2", "spouse"), Contact("phone-2", "friend")],
        )
        assert app.contacts == (
            Contact("phone-1"),
            Contact("phone-2", "spouse"),
            Contact("phone-2", "friend"),
        )
        assert app.links() == [
            (EdgeKind.PHONE, "phone-1"),
            (EdgeKind.DEVICE, "fp"),
            (EdgeKind.IP, "1.2.3.4"),
            (EdgeKind.ADDRESS, "addr"),
            (EdgeKind.CONTACT, "phone-2"),
        ]


class TestSettings:
    @pytest.mark.parametrize(
        "bad",
        [{"max_hops": 0}, {"max_hops": 9}, {"neighbour_hops": 5}, {"degree_cap": 0}, {"income_factor": 0.5}],
    )
    def test_out_of_range_settings_are_refused(self, bad: dict[str, float]) -> None:
        with pytest.raises(InvalidInput):
            FactSettings(**bad)  # type: ignore[arg-type]


class TestIncome:
    ROW = {
        "as_of": date(2025, 6, 30),
        "payroll_avg_12m": 5000.0,
        "payroll_months_12m": 12,
        "social_base_avg_12m": 4500.0,
        "social_months_paid_12m": 12,
        "tax_revenue_12m": None,
        "tax_filings_12m": 0,
        "annual_income_est": 72000.0,
    }

    def test_sources_are_annualised(self) -> None:
        assert observed_incomes(self.ROW) == {
            "payroll": 60000.0,
            "social": 54000.0,
            "tax": None,
            "flows": 72000.0,
        }

    def test_tax_revenue_of_two_quarters_is_doubled(self) -> None:
        row = {"tax_revenue_12m": 30000.0, "tax_filings_12m": 2}
        assert observed_incomes(row)["tax"] == 60000.0

    def test_declared_against_the_highest_observation(self) -> None:
        out = income_facts(Decimal("150000"), self.ROW, factor=2.0)
        assert out["income_observed"] == 72000.0
        assert out["income_observed_source"] == "flows"
        assert out["income_sources"] == 3
        assert out["income_declared_to_observed"] == pytest.approx(150000 / 72000, abs=1e-6)
        assert out["income_declared_to_payroll"] == 2.5
        assert out["income_declared_to_social"] == pytest.approx(150000 / 54000, abs=1e-6)
        assert out["income_declared_to_tax"] is None
        assert out["income_overstated"] is True
        assert out["income_observed_as_of"] == date(2025, 6, 30)

    def test_factor_is_a_strict_bound(self) -> None:
        assert income_facts(Decimal("144000"), self.ROW, factor=2.0)["income_overstated"] is False
        assert income_facts(Decimal("144000.01"), self.ROW, factor=2.0)["income_overstated"] is True
        assert income_facts(Decimal("144000"), self.ROW, factor=1.5)["income_overstated"] is True

    def test_nothing_observed_gives_null_not_zero(self) -> None:
        empty = {"payroll_avg_12m": None, "payroll_months_12m": 0, "annual_income_est": 0.0, "as_of": None}
        for row in (None, empty):
            out = income_facts(Decimal("50000"), row, factor=2.0)
            assert out["income_observed"] is None
            assert out["income_declared_to_observed"] is None
            assert out["income_overstated"] is None
            assert out["income_sources"] == 0
            assert out["income_declared"] == 50000.0

    def test_nothing_declared_gives_null_ratios(self) -> None:
        out = income_facts(None, self.ROW, factor=2.0)
        assert out["income_declared"] is None
        assert out["income_observed"] == 72000.0
        assert out["income_declared_to_observed"] is None
        assert out["income_overstated"] is None

    def test_payroll_average_without_a_paid_month_is_ignored(self) -> None:
        row = {"payroll_avg_12m": 9000.0, "payroll_months_12m": 0}
        assert observed_incomes(row)["payroll"] is None

    def test_the_features_read_exist_in_the_portrait(self) -> None:
        names = {f.name for f in portrait.FEATURES}
        assert set(INCOME_FEATURES) <= names


class TestCatalogue:
    def test_schema_types_are_the_strategy_languages(self) -> None:
        schema = fact_schema()
        assert len(schema) == len(FACTS)
        assert set(schema.values()) <= {"number", "string", "bool", "date"}

    def test_named_facts_are_there(self) -> None:
        schema = fact_schema()
        for name in (
            "apps_per_id_24h",
            "apps_per_device_1h",
            "apps_per_ip_30d",
            "graph_hops_to_negative",
            "graph_component_size",
            "graph_negative_neighbours",
            "graph_declined_neighbours",
            "graph_defaulted_neighbours",
            "graph_shared_device_customers",
            "graph_shared_contact_customers",
            "distance_home_branch_km",
            "income_overstated",
        ):
            assert name in schema
        assert schema["device_first_seen_date"] == "date"
        assert schema["income_overstated"] == "bool"

    def test_no_fact_shadows_a_portrait_column(self) -> None:
        # A strategy reads the portrait row and the facts side by side.
        portrait_names = {c.name for c in portrait.COLUMNS} | {f.name for f in portrait.FEATURES}
        assert not set(fact_schema()) & portrait_names

    def test_every_fact_is_documented_with_its_type_and_null_rule(self) -> None:
        from pathlib import Path

        docs = (Path(__file__).resolve().parents[2] / "docs" / "decisioning.md").read_text(encoding="utf-8")
        for f in FACTS:
            assert f"| `{f.name}` | {f.type} | {f.meaning} | {f.null_when} |" in docs, f.name
