"""Worked examples: a small decision strategy, a frame of applicants, the outcome of each by hand.

The same rows go through the Polars batch path and the one-row path; both must give the table.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from creditfactory import strategy
from creditfactory.strategy import FactsError, Plan

WORKED = """
name: worked_example
kind: decision
version: 2
description: A small decision strategy whose answers are worked out by hand.
owner: tests
models:
  farmer: farmer_scorecard
  salaried: {name: salaried_scorecard, version: 4}
variables:
  monthly_income: annual_income_est / 12
rules:
  knockouts:
    - id: age_window
      when: age NOT BETWEEN 18 AND 60
      action: decline
      reason: {code: D_AGE, en: "Age outside 18 to 60", zh: "年龄不符"}
    - id: overdue
      when: current_dpd > 0
      action: decline
      reason: {code: D_OVERDUE, en: "Overdue", zh: "逾期"}
  review:
    - id: low_income
      when: monthly_income < 3000
      action: refer
      reason: {code: R_INCOME, en: "Low income", zh: "收入偏低"}
  watch:
    - id: no_bureau
      when: bureau_total_exposure IS NULL
      action: flag
      reason: {code: F_NO_BUREAU, en: "No bureau record", zh: "无征信记录"}
cutoffs:
  reason: {code: D_SCORE, en: "Score below cut-off", zh: "评分不足"}
  segments: {farmer: 600, salaried: 620}
grades:
  reason: {code: D_GRADE, en: "No grade", zh: "无评级"}
  bands:
    - {grade: A, from: 700}
    - {grade: B, from: 650, to: 700}
    - {grade: C, from: 600, to: 650}
limit:
  formula: annual_income_est * 0.5
  caps:
    - 200000 - COALESCE(bureau_total_exposure, 0)
  max: 100000
  min: 5000
  multiple: 1000
  reason: {code: D_LIMIT, en: "Limit below 5,000", zh: "额度不足"}
price: {A: 0.05, B: 0.06, C: 0.08}
expiry_days: 30
"""

SCHEMA = {
    "as_of": "date",
    "segment": "string",
    "age": "number",
    "current_dpd": "number",
    "annual_income_est": "number",
    "bureau_total_exposure": "number",
}

AS_OF = date(2025, 6, 30)
BASE: dict[str, Any] = {
    "as_of": AS_OF,
    "segment": "farmer",
    "age": 40,
    "current_dpd": 0,
    "annual_income_est": 60000.0,
    "bureau_total_exposure": 10000.0,
    "score": 710.0,
}

# (what the row shows, changes to BASE, outcome, reason_code, rules hit, grade, limit, price)
# fmt: off
CASES = [
    ("a good farmer", {}, "approve", None, [], "A", 30000, "0.05"),
    ("too young", {"age": 17}, "decline", "D_AGE", ["age_window"], None, None, None),
    ("too old and overdue: the first rule decides", {"age": 70, "current_dpd": 5}, "decline", "D_AGE",
     ["age_window", "overdue"], None, None, None),
    ("low income is referred, with the offer kept", {"annual_income_est": 30000.0, "score": 660.0}, "refer",
     "R_INCOME", ["low_income"], "B", 15000, "0.06"),
    ("unknown age and DPD fire no rule", {"age": None, "current_dpd": None}, "approve", None, [], "A", 30000, "0.05"),
    ("no score: below every cut-off and in no band", {"score": None}, "decline", "D_SCORE",
     ["cutoffs", "grades"], None, None, None),
    ("salaried below their own cut-off", {"segment": "salaried", "score": 610.0}, "decline", "D_SCORE",
     ["cutoffs"], None, None, None),
    ("a segment without a cut-off", {"segment": "merchant"}, "decline", "D_SCORE", ["cutoffs"], None, None, None),
    ("limit rounded down to the thousand", {"annual_income_est": 123457.0}, "approve", None, [], "A", 61000, "0.05"),
    ("capped by the bureau exposure", {"bureau_total_exposure": 175000.0}, "approve", None, [], "A", 25000, "0.05"),
    ("capped by the product maximum", {"annual_income_est": 500000.0}, "approve", None, [], "A", 100000, "0.05"),
    ("limit under the minimum: decline beats refer", {"annual_income_est": 9000.0}, "decline", "D_LIMIT",
     ["low_income", "limit"], None, None, None),
    ("no bureau record is only a flag", {"bureau_total_exposure": None}, "approve", None, ["no_bureau"], "A",
     30000, "0.05"),
    ("just below the cut-off", {"score": 599.999}, "decline", "D_SCORE", ["cutoffs", "grades"], None, None, None),
    ("exactly on the cut-off: grade C", {"score": 600.0}, "approve", None, [], "C", 30000, "0.08"),
    ("a band's lower bound belongs to it", {"score": 700.0}, "approve", None, [], "A", 30000, "0.05"),
    ("just under a band's upper bound", {"score": 699.99}, "approve", None, [], "B", 30000, "0.06"),
    ("bureau exposure above the cap: negative limit", {"bureau_total_exposure": 250000.0}, "decline", "D_LIMIT",
     ["limit"], None, None, None),
]
# fmt: on


@pytest.fixture(scope="module")
def plan() -> Plan:
    return strategy.compile(strategy.load(WORKED), SCHEMA)


def _rows() -> list[dict[str, Any]]:
    return [{**BASE, **changes} for _, changes, *_ in CASES]


class TestWorkedExample:
    def test_batch_gives_the_table(self, plan: Plan) -> None:
        frame = pl.DataFrame(_rows(), schema_overrides={"age": pl.Int64, "current_dpd": pl.Int64})
        out = plan.apply(frame, reason_codes=True).collect()
        for row, (what, _, outcome, code, hits, grade, limit, price) in zip(
            out.iter_rows(named=True), CASES, strict=True
        ):
            assert row["outcome"] == outcome, what
            assert row["reason_code"] == code, what
            codes = [r.reason.code for r in plan.rules if r.id in hits]
            assert row["reason_codes"] == codes, what
            assert row["grade"] == grade, what
            assert row["limit"] == limit, what
            assert row["price"] == (float(price) if price else None), what
            assert row["expires_on"] == (date(2025, 7, 30) if outcome != "decline" else None), what

    @pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
    def test_one_row_gives_the_table(self, plan: Plan, case: tuple[Any, ...]) -> None:
        what, changes, outcome, code, hits, grade, limit, price = case
        result = plan.evaluate_one({**BASE, **changes})
        assert (result.outcome, result.reason_code, list(result.rule_hits)) == (outcome, code, hits)
        assert result.grade == grade
        assert result.limit == (Decimal(limit) if limit is not None else None)
        assert result.price == (Decimal(price) if price else None)
        assert result.variables["monthly_income"] == (BASE | changes)["annual_income_est"] / 12

    def test_reasons_carry_both_texts_and_the_decisive_one(self, plan: Plan) -> None:
        result = plan.evaluate_one({**BASE, "age": 70, "current_dpd": 5})
        assert [(r.code, r.en, r.zh) for r in result.reasons] == [
            ("D_AGE", "Age outside 18 to 60", "年龄不符"),
            ("D_OVERDUE", "Overdue", "逾期"),
        ]
        assert result.reason is not None and result.reason.code == "D_AGE"
        assert result.hit_mask == (0b11,)
        assert result.to_dict()["reasons"][1]["zh"] == "逾期"

    def test_the_polars_one_row_path_agrees(self, plan: Plan) -> None:
        for row in _rows():
            assert plan.evaluate_one_polars(row) == plan.evaluate_one(row)


class TestPlanShape:
    def test_inputs_models_and_outputs(self, plan: Plan) -> None:
        assert set(plan.inputs) == {
            "annual_income_est",
            "age",
            "current_dpd",
            "bureau_total_exposure",
            "segment",
            "score",
            "as_of",
        }
        assert plan.model_refs == {
            "farmer": ("farmer_scorecard", None),
            "salaried": ("salaried_scorecard", 4),
        }
        assert plan.outputs() == (
            "monthly_income",
            "hit_mask",
            "outcome",
            "reason_code",
            "grade",
            "limit",
            "price",
            "expires_on",
        )
        assert [r.id for r in plan.rules] == [
            "age_window",
            "overdue",
            "low_income",
            "no_bureau",
            "cutoffs",
            "grades",
            "limit",
        ]

    def test_apply_keeps_input_columns_and_adds_outputs(self, plan: Plan) -> None:
        frame = pl.DataFrame([BASE | {"customer_id": "C1"}])
        out = plan.apply(frame.lazy()).collect()
        assert out.columns == [*frame.columns, *plan.outputs()]
        assert out.schema["limit"] == pl.Int64 and out.schema["hit_mask"] == pl.Int64
        assert out.schema["price"] == pl.Float64 and out.schema["expires_on"] == pl.Date

    def test_decode_names_the_rules_of_a_mask(self, plan: Plan) -> None:
        assert [r.id for r in plan.decode([0b1000101])] == ["age_window", "low_income", "limit"]

    def test_a_missing_or_mistyped_column_is_named(self, plan: Plan) -> None:
        frame = pl.DataFrame([BASE]).drop("age").with_columns(pl.col("segment").cast(pl.Int8, strict=False))
        with pytest.raises(FactsError) as err:
            plan.apply(frame)
        assert "column age (number) is missing" in err.value.message
        assert "column segment is Int8, the strategy reads it as string" in err.value.message

    def test_missing_and_mistyped_facts_are_named(self, plan: Plan) -> None:
        facts = {**BASE, "age": "forty", "as_of": "2025-13-01"}
        del facts["score"]
        with pytest.raises(FactsError) as err:
            plan.evaluate_one(facts)
        assert err.value.problems == (
            "as_of: '2025-13-01' is not a date (YYYY-MM-DD)",
            "age: expected a number, got str",
            "score (number) is missing",
        ) or set(err.value.problems) == {
            "as_of: '2025-13-01' is not a date (YYYY-MM-DD)",
            "age: expected a number, got str",
            "score (number) is missing",
        }

    def test_facts_accept_ints_decimals_iso_dates_and_nan(self, plan: Plan) -> None:
        facts = {
            **BASE,
            "annual_income_est": Decimal("60000"),
            "as_of": "2025-06-30",
            "bureau_total_exposure": float("nan"),
        }
        result = plan.evaluate_one(facts)
        assert result.outcome == "approve" and result.rule_hits == ("no_bureau",)
        assert result.expires_on == date(2025, 7, 30)

    def test_frames_accept_categorical_text_float32_and_datetimes(self, plan: Plan) -> None:
        frame = pl.DataFrame([BASE, {**BASE, "score": float("nan")}]).with_columns(
            pl.col("segment").cast(pl.Categorical),
            pl.col("annual_income_est").cast(pl.Float32),
            pl.col("as_of").cast(pl.Datetime("us")),
        )
        out = plan.apply(frame).collect()
        assert out["outcome"].to_list() == ["approve", "decline"]
        assert out["reason_code"].to_list() == [None, "D_SCORE"]  # NaN is NULL
        assert out["expires_on"].to_list() == [date(2025, 7, 30), None]


class TestManyRules:
    def test_more_than_63_rules_spill_into_a_second_mask(self) -> None:
        rules = "\n".join(
            f"""    - id: r{i}
      when: age = {i}
      action: {"flag" if i % 2 else "decline"}
      reason: {{code: C_{i}, en: "rule {i}", zh: "规则{i}"}}"""
            for i in range(70)
        )
        text = WORKED.replace("rules:\n  knockouts:", "rules:\n  many:\n" + rules + "\n  knockouts:")
        plan = strategy.compile(strategy.load(text), SCHEMA)
        assert plan.hit_columns == ("hit_mask", "hit_mask_2")
        # odd rules only flag; age_window (outside 18..60) now sits in the second word
        rows = [{**BASE, "age": a} for a in (3, 64, 66, 69, 41)]
        out = plan.apply(pl.DataFrame(rows), reason_codes=True).collect()
        assert out["reason_code"].to_list() == ["D_AGE", "C_64", "C_66", "D_AGE", None]
        assert out["outcome"].to_list() == ["decline", "decline", "decline", "decline", "approve"]
        assert out["reason_codes"][4].to_list() == ["C_41"]
        assert out["reason_codes"][2].to_list() == ["C_66", "D_AGE"]
        for row, got in zip(rows, out.iter_rows(named=True), strict=True):
            one = plan.evaluate_one(row)
            assert one.hit_mask == (got["hit_mask"], got["hit_mask_2"])
            assert (one.outcome, one.reason_code) == (got["outcome"], got["reason_code"])


class TestLimitRounding:
    """Limits are whole yuan: the amount is rounded half up to the fen, then to the multiple."""

    @staticmethod
    def plan(rounding: str, multiple: int = 1000, caps: bool = True) -> Plan:
        text = WORKED.replace("  multiple: 1000\n", f"  multiple: {multiple}\n  rounding: {rounding}\n")
        text = text.replace("  min: 5000\n", f"  min: {multiple * 5}\n")
        if not caps:
            text = text.replace("  caps:\n    - 200000 - COALESCE(bureau_total_exposure, 0)\n", "")
        return strategy.compile(strategy.load(text), SCHEMA)

    @pytest.mark.parametrize(
        ("rounding", "income", "limit"),
        [
            ("down", 123457.0, 61000),  # 61,728.50
            ("up", 123457.0, 62000),
            ("nearest", 123457.0, 62000),
            ("nearest", 121000.0, 61000),  # 60,500.00: a half goes up
            ("nearest", 120998.0, 60000),  # 60,499.00
            ("down", 122000.0, 61000),  # exactly a multiple stays
            ("up", 122000.0, 61000),
            ("down", 60000.006, 30000),  # 30,000.003: fen first, so no 29,000
        ],
    )
    def test_modes(self, rounding: str, income: float, limit: int) -> None:
        plan = self.plan(rounding)
        row = {**BASE, "annual_income_est": income}
        assert plan.evaluate_one(row).limit == Decimal(limit)
        assert plan.apply(pl.DataFrame([row])).collect()["limit"].item() == limit

    def test_to_the_fen_before_the_multiple(self) -> None:
        # 0.3 * 100000 is 29999.999999999996 in binary; the limit is still 30,000 (multiple of 10,000)
        text = WORKED.replace("formula: annual_income_est * 0.5", "formula: annual_income_est * 0.3")
        text = text.replace("  multiple: 1000\n", "  multiple: 10000\n").replace("min: 5000", "min: 10000")
        plan = strategy.compile(strategy.load(text), SCHEMA)
        row = {**BASE, "annual_income_est": 100000.0}
        assert plan.evaluate_one(row).limit == Decimal(30000)
        assert plan.apply(pl.DataFrame([row])).collect()["limit"].item() == 30000

    def test_an_unknown_formula_never_becomes_the_maximum(self) -> None:
        plan = self.plan("down", caps=False)
        result = plan.evaluate_one({**BASE, "annual_income_est": None})
        assert (result.outcome, result.reason_code, result.limit) == ("decline", "D_LIMIT", None)

    def test_one_yuan_multiples(self) -> None:
        plan = self.plan("down", multiple=1)
        assert plan.evaluate_one({**BASE, "annual_income_est": 12345.678}).limit == Decimal(6172)
