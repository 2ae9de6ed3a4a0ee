"""The pure decision: the example strategy on hand-made rows, bounded by product and offer."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditfactory import decisioning, strategy
from creditfactory.decisioning.evaluate import Terms, evaluate, plain, plain_values

D = Decimal
PLAN = strategy.compile(strategy.load(strategy.example_path("decision.yaml")), decisioning.decision_schema())
PRODUCT = {"min_amount": D("1000"), "max_amount": D("200000"), "min_rate": D("0.03"), "max_rate": D("0.18")}

#: An applicant who passes every rule: farmer, score 700 (grade B), income 86,000.
GOOD: dict[str, Any] = {
    "as_of": "2025-06-30",
    "applicant_segment": "farmer",
    "applicant_age": 41,
    "has_portrait": True,
    "on_negative_list": False,
    "current_dpd": 0,
    "existing_loan_balance": 20000.0,
    "bureau_total_exposure": 15000.0,
    "annual_income_est": 86000.0,
    "income_observed": 84000.0,
    "income_declared": 90000.0,
    "income_overstated": False,
    "requested_amount": 30000.0,
    "id_matches_customer": True,
    "name_matches_customer": True,
    "phone_matches_customer": True,
    "device_is_emulator": False,
    "device_is_rooted": False,
    "device_negative": False,
    "apps_per_device_1h": 0,
    "device_applicants_30d": 0,
    "apps_per_id_24h": 0,
    "apps_per_phone_30d": 0,
    "distance_home_branch_km": 3.5,
    "graph_hops_to_negative": None,
    "graph_declined_neighbours": 0,
    "graph_defaulted_neighbours": 0,
    "score": 700.0,
    "pd": 0.03,
}


def row(**changes: Any) -> dict[str, Any]:
    out = {name: GOOD.get(name) for name in PLAN.inputs}
    out.update(changes)
    return out


def terms(offer: tuple[str, str] | None = None, **product: str) -> Terms:
    p = {**PRODUCT, **{k: D(v) for k, v in product.items()}}
    return Terms(
        min_amount=p["min_amount"],
        max_amount=p["max_amount"],
        min_rate=p["min_rate"],
        max_rate=p["max_rate"],
        offer_limit=None if offer is None else D(offer[0]),
        offer_rate=None if offer is None else D(offer[1]),
    )


class TestEvaluate:
    def test_an_approval_without_an_offer(self) -> None:
        v = evaluate(PLAN, row(), terms=terms())
        # limit: min(84,000 x 0.4 = 33,600, asked 30,000) -> 30,000; grade B (680..720) -> 5.20%
        assert (v.outcome, v.grade, v.limit, v.annual_rate) == ("approve", "B", D("30000.00"), D("0.0520"))
        assert v.reasons == ()

    def test_the_offer_s_price_and_cap(self) -> None:
        v = evaluate(PLAN, row(), terms=terms(("25000", "0.0435")))
        assert (v.limit, v.annual_rate) == (D("25000.00"), D("0.0435"))
        assert [r["code"] for r in v.reasons] == ["W_OFFER_LIMIT_CAP", "W_OFFER_PRICE"]

    def test_asking_less_than_the_offer_is_not_a_change(self) -> None:
        v = evaluate(PLAN, row(requested_amount=10000.0), terms=terms(("50000", "0.0435")))
        assert v.limit == D("10000.00") and "W_LIMIT_BELOW_OFFER" not in [r["code"] for r in v.reasons]

    def test_a_lower_income_since_the_offer_lowers_the_limit_and_says_so(self) -> None:
        v = evaluate(PLAN, row(income_observed=50000.0), terms=terms(("50000", "0.0435")))
        assert v.limit == D("20000.00")  # 50,000 x 0.4
        assert "W_LIMIT_BELOW_OFFER" in [r["code"] for r in v.reasons]

    def test_the_product_maximum(self) -> None:
        v = evaluate(PLAN, row(), terms=terms(max_amount="25000"))
        assert v.limit == D("25000.00") and [r["code"] for r in v.reasons] == ["P_MAX_AMOUNT_CAP"]

    def test_a_limit_below_the_product_minimum_declines(self) -> None:
        v = evaluate(PLAN, row(), terms=terms(min_amount="50000"))
        assert (v.outcome, v.reason_code, v.limit, v.annual_rate) == (
            "decline",
            "D_BELOW_PRODUCT_MIN",
            None,
            None,
        )

    def test_a_grade_price_outside_the_product_is_brought_within(self) -> None:
        v = evaluate(PLAN, row(), terms=terms(min_rate="0.06"))
        assert v.annual_rate == D("0.06") and [r["code"] for r in v.reasons] == ["P_PRICE_FLOOR"]

    @pytest.mark.parametrize(
        ("changes", "outcome", "code"),
        [
            ({"applicant_age": 61}, "decline", "D_AGE"),
            ({"name_matches_customer": False}, "decline", "D_NAME_MISMATCH"),
            ({"device_is_rooted": True}, "decline", "D_DEVICE"),
            ({"graph_hops_to_negative": 1}, "decline", "D_GRAPH"),
            ({"score": 540.0}, "decline", "D_SCORE"),
            ({"graph_hops_to_negative": 2}, "refer", "R_GRAPH"),
            ({"has_portrait": False, "applicant_segment": "new_to_bank"}, "refer", "R_NEW_TO_BANK"),
            ({"score": 590.0}, "refer", "R_SCORE"),
        ],
    )
    def test_a_whitelisted_applicant_who_changed_keeps_the_reason(
        self, changes: dict[str, Any], outcome: str, code: str
    ) -> None:
        v = evaluate(PLAN, row(**changes), terms=terms(("50000", "0.0435")))
        assert (v.outcome, v.reason_code) == (outcome, code)
        codes = [r["code"] for r in v.reasons]
        assert codes[0] == code and codes[-1] == "W_OFFER_NOT_HONOURED"
        assert v.limit is None and v.annual_rate is None
        assert all(r["en"] and r["zh"] for r in v.reasons)

    def test_plain_values_read_back_the_same(self) -> None:
        from datetime import date

        assert plain({"d": date(2025, 6, 30), "x": D("1.50"), "n": float("nan"), "t": (1, True)}) == {
            "d": "2025-06-30",
            "x": 1.5,
            "n": None,
            "t": [1, True],
        }

    @given(
        values=st.dictionaries(
            st.text(max_size=5),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.text(max_size=5),
                st.floats(allow_nan=True, allow_infinity=True),
                st.decimals(allow_nan=True, allow_infinity=True),
                st.dates(),
                st.lists(st.floats(allow_nan=True), max_size=3),
            ),
            max_size=12,
        )
    )
    @settings(max_examples=200, deadline=None)
    def test_plain_values_of_a_mapping_are_plain_of_each(self, values: dict[str, Any]) -> None:
        import math

        def same(a: Any, b: Any) -> bool:
            if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
                return True
            return type(a) is type(b) and a == b

        got, want = plain_values(values), plain(values)
        assert got.keys() == want.keys() and all(same(got[k], want[k]) for k in got)


class TestStoredInputs:
    @given(seed=st.integers(0, 2**31 - 1), offer=st.booleans())
    @settings(max_examples=60, deadline=None)
    def test_a_verdict_from_stored_inputs_is_the_verdict(self, seed: int, offer: bool) -> None:
        """Replay's premise: inputs written as the record keeps them (plain values through JSON)
        give the same verdict as the values the decision had, on any row."""
        import json

        from tests.strategy.support import random_rows

        (raw,) = random_rows(PLAN, 1, seed)
        t = terms(("40000", "0.0435") if offer else None)
        stored = json.loads(json.dumps(plain(raw)))
        first, again = (
            evaluate(PLAN, raw, terms=t),
            evaluate(PLAN, stored, terms=Terms.from_json(t.to_json())),
        )
        assert first == again
