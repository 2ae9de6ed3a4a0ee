"""The calendar of the portrait and the checks on the feature catalogue (no data, no lake)."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from creditfactory import portrait
from creditfactory.portrait import features as catalogue
from creditfactory.portrait.model import (
    Agg,
    AggKind,
    DefinitionError,
    DType,
    FeatureDef,
    add_months,
    month_end,
    month_index,
    months_elapsed,
    reference_month,
)
from creditfactory.portrait.plan import catalogue_plan, make_plan


class TestCalendar:
    @pytest.mark.parametrize(
        ("as_of", "ref"),
        [
            (date(2025, 6, 30), date(2025, 6, 1)),  # a month end: its own month has ended
            (date(2025, 6, 29), date(2025, 5, 1)),
            (date(2025, 1, 15), date(2024, 12, 1)),
            (date(2024, 2, 29), date(2024, 2, 1)),  # leap-year month end
        ],
    )
    def test_reference_month(self, as_of: date, ref: date) -> None:
        assert reference_month(as_of) == ref

    @pytest.mark.parametrize(
        ("start", "as_of", "months"),
        [
            (date(2024, 1, 15), date(2024, 2, 15), 1),
            (date(2024, 1, 15), date(2024, 2, 14), 0),
            (date(2024, 1, 31), date(2024, 2, 29), 0),
            (date(1990, 7, 1), date(2025, 6, 30), 419),
            (date(2025, 7, 1), date(2025, 6, 30), -1),
            (date(2025, 6, 30), date(2025, 6, 30), 0),
        ],
    )
    def test_months_elapsed(self, start: date, as_of: date, months: int) -> None:
        assert months_elapsed(start, as_of) == months

    def test_whole_months_are_never_negative_on_or_before_the_date(self) -> None:
        as_of = date(2025, 3, 15)
        for offset in range(0, 800, 7):
            start = date.fromordinal(as_of.toordinal() - offset)
            assert months_elapsed(start, as_of) >= 0
            assert months_elapsed(date.fromordinal(as_of.toordinal() + 1 + offset), as_of) < 0

    def test_month_helpers(self) -> None:
        assert month_index(date(2025, 1, 9)) - month_index(date(2024, 12, 31)) == 1
        assert month_end(date(2024, 2, 3)) == date(2024, 2, 29)
        assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
        assert add_months(date(2025, 2, 28), 1) == date(2025, 3, 31)  # month ends stay month ends
        assert add_months(date(2025, 6, 15), -1) == date(2025, 5, 15)


class TestCatalogue:
    def test_size_and_declarations(self) -> None:
        assert 60 <= len(portrait.FEATURES) <= 120
        for feat in portrait.FEATURES:
            assert feat.description and feat.label_zh and feat.group and feat.table
        assert len({f.name for f in portrait.FEATURES}) == len(portrait.FEATURES)

    def test_policy_facts_have_the_agreed_types(self) -> None:
        kinds = {f.name: f.dtype for f in portrait.FEATURES}
        expected = {
            "age": DType.INT,
            "kyc_complete": DType.BOOL,
            "marketing_consent": DType.BOOL,
            "on_negative_list": DType.BOOL,
            "current_dpd": DType.INT,
            "has_overdue": DType.BOOL,
            "existing_loan_balance": DType.FLOAT,
            "bureau_total_exposure": DType.FLOAT,
            "annual_income_est": DType.FLOAT,
            "months_since_open": DType.INT,
        }
        assert {name: kinds[name] for name in portrait.POLICY_FACTS} == expected
        assert portrait.KEY_COLUMNS == ("customer_id", "as_of", "segment", "branch_id", "lat", "lon")

    def test_covers_what_banks_use(self) -> None:
        groups = {f.group for f in portrait.FEATURES}
        assert {"deposits", "flows", "income", "merchant", "credit", "bureau", "farmer", "social"} <= groups
        kinds = {f.agg.kind for f in portrait.FEATURES if f.agg}
        assert {AggKind.MEAN, AggKind.SLOPE, AggKind.CV, AggKind.GROWTH, AggKind.MONTHS_SINCE} <= kinds
        windows = {f.window_months for f in portrait.FEATURES}
        assert {3, 6, 12, None} <= windows

    def test_the_built_in_catalogue_passes_its_checks(self) -> None:
        plan = catalogue_plan()
        assert "account_flows" in plan.tables and "customers" in plan.tables
        assert len(plan.derived) + sum(len(sp.features) for sp in plan.sources) == len(portrait.FEATURES)


def _with(feature: FeatureDef) -> tuple[FeatureDef, ...]:
    return (*catalogue.FEATURES, feature)


class TestCatalogueChecks:
    def _check(self, features: tuple[FeatureDef, ...]) -> str:
        with pytest.raises(DefinitionError) as exc:
            make_plan(base=catalogue.BASE, sources=catalogue.SOURCES, features=features)
        return str(exc.value)

    def test_duplicate_name(self) -> None:
        assert "declared twice" in self._check(_with(catalogue.BY_NAME["age"]))

    def test_unknown_source_and_column(self) -> None:
        base = catalogue.BY_NAME["balance_avg_3m"]
        assert "unknown source 'nope'" in self._check(
            _with(dataclasses.replace(base, name="x1", source="nope"))
        )
        bad_column = dataclasses.replace(base, name="x2", agg=Agg(AggKind.MEAN, "salary"))
        assert "has no column 'salary'" in self._check(_with(bad_column))

    def test_growth_needs_twice_its_half_window(self) -> None:
        base = catalogue.BY_NAME["invoice_growth_6m"]
        assert "window of 2k" in self._check(_with(dataclasses.replace(base, name="x3", window_months=6)))

    def test_static_sources_have_no_window_and_no_time(self) -> None:
        base = catalogue.BY_NAME["land_area_mu"]
        assert "static source has no window" in self._check(
            _with(dataclasses.replace(base, name="x4", window_months=3))
        )
        last = dataclasses.replace(base, name="x5", agg=Agg(AggKind.LAST, "land_area_mu"))
        assert "needs a source placed in time" in self._check(_with(last))

    def test_names_and_formulas(self) -> None:
        base = catalogue.BY_NAME["age"]
        assert "lower_snake_case" in self._check(_with(dataclasses.replace(base, name="Age2")))
        both = dataclasses.replace(catalogue.BY_NAME["balance_avg_3m"], name="x6", formula="1")
        assert "exactly one of" in self._check(_with(both))
        no_label = dataclasses.replace(base, name="x7", label_zh="")
        assert "Chinese label" in self._check(_with(no_label))
