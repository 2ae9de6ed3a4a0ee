"""Property tests: the Polars batch path and the one-row path give the same answers.

Two levels: whole strategies (both shipped examples) on random applicants, and random
well-typed expressions over every operation of the language on random rows.
"""

from __future__ import annotations

import functools
import math
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditfactory import strategy
from creditfactory.strategy import Outcome, Plan

from .support import GOOD, frame_of, on_polars, on_python, pools, random_rows, typed


def _plan(name: str) -> Plan:
    return strategy.compile(strategy.load(strategy.example_path(name)), strategy.default_schema())


PLANS = {name: _plan(name) for name in ("mining.yaml", "decision.yaml")}


def assert_same(plan: Plan, batch: dict[str, Any], one: Outcome) -> None:
    """A batch output row and a one-row outcome are the same answer."""
    assert batch["outcome"] == one.outcome
    assert batch["reason_code"] == one.reason_code
    assert tuple(batch[c] for c in plan.hit_columns) == one.hit_mask
    assert batch["grade"] == one.grade
    assert batch["limit"] == (None if one.limit is None else int(one.limit))
    assert batch["price"] == (None if one.price is None else float(one.price))
    assert batch["expires_on"] == one.expires_on
    for name, _ in plan.variables:
        assert batch[name] == one.variables[name], name


def _row_strategy(plan: Plan) -> st.SearchStrategy[dict[str, Any]]:
    choices = pools(plan)

    def values(name: str) -> st.SearchStrategy[Any]:
        t = plan.input_types[name].value
        extra: list[st.SearchStrategy[Any]] = [st.sampled_from(choices[name])]
        if t == "number":
            extra.append(st.floats(min_value=-1e7, max_value=1e7, allow_nan=False))
            extra.append(st.sampled_from([float("nan"), float("inf")]))
        if t == "date":
            extra.append(st.dates(min_value=date(1950, 1, 1), max_value=date(2030, 12, 31)))
        return st.one_of(*extra)

    names = sorted(plan.input_types)

    @st.composite
    def row(draw: st.DrawFn) -> dict[str, Any]:
        changed = draw(st.sets(st.sampled_from(names), max_size=5))
        return {n: draw(values(n)) if n in changed else GOOD[n] for n in names}

    return row()


@pytest.mark.parametrize("name", sorted(PLANS))
def test_batch_and_one_row_agree_on_random_applicants(name: str) -> None:
    plan = PLANS[name]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows=st.lists(_row_strategy(plan), min_size=1, max_size=25))
    def check(rows: list[dict[str, Any]]) -> None:
        out = plan.apply(frame_of(plan, rows)).collect()
        for row, batch in zip(rows, out.iter_rows(named=True), strict=True):
            assert_same(plan, batch, plan.evaluate_one(row))

    check()


@pytest.mark.parametrize("name", sorted(PLANS))
def test_batch_and_one_row_agree_on_many_rows(name: str) -> None:
    plan = PLANS[name]
    rows = random_rows(plan, 3000, seed=11)
    out = plan.apply(frame_of(plan, rows), reason_codes=True).collect()
    outcomes = set()
    for row, batch in zip(rows, out.iter_rows(named=True), strict=True):
        one = plan.evaluate_one(row)
        assert_same(plan, batch, one)
        assert batch["reason_codes"] == [r.code for r in one.reasons]
        outcomes.add(one.outcome)
    assert outcomes == set(plan.kind.outcomes)  # every path was taken


def test_limits_are_whole_multiples_within_bounds() -> None:
    plan = PLANS["mining.yaml"]
    out = plan.apply(frame_of(plan, random_rows(plan, 3000, seed=5))).collect()
    limits = out.filter(pl.col("outcome") == "eligible")["limit"]
    assert limits.len() > 500
    assert (limits % 1000 == 0).all() and limits.min() >= 5000 and limits.max() <= 300000
    assert (
        out.filter(pl.col("outcome") == "excluded")["limit"].null_count()
        == out.filter(pl.col("outcome") == "excluded").height
    )


# ---------------------------------------------------------------------- random expressions

NUM_COLS = ["age", "income", "debt"]
small = st.sampled_from(["0", "1", "2", "3", "0.5", "12", "100", "1000", "2.5", "-1", "600", "0.1"])


@functools.cache
def _number(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(NUM_COLS), small)
    if depth == 0:
        return leaf
    sub, cond = _number(depth - 1), _bool(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda a: f"-({a})"),
        st.tuples(st.sampled_from(["ABS", "FLOOR", "CEIL", "LN", "EXP", "SQRT"]), sub).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
        st.tuples(sub, st.integers(-3, 3)).map(lambda t: f"ROUND({t[0]}, {t[1]})"),
        st.tuples(sub, st.sampled_from(["-1", "0.5", "2", "3"])).map(lambda t: f"POWER({t[0]}, {t[1]})"),
        st.tuples(
            st.sampled_from(["LEAST", "GREATEST", "COALESCE"]), st.lists(sub, min_size=1, max_size=3)
        ).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(sub, sub).map(lambda t: f"NULLIF({t[0]}, {t[1]})"),
        st.tuples(cond, sub, sub).map(lambda t: f"CASE WHEN {t[0]} THEN {t[1]} ELSE {t[2]} END"),
        st.tuples(cond, sub).map(lambda t: f"CASE WHEN {t[0]} THEN {t[1]} END"),
        st.tuples(cond, sub, sub).map(lambda t: f"IF({t[0]}, {t[1]}, {t[2]})"),
        st.sampled_from(["DAYS_BETWEEN", "MONTHS_BETWEEN", "YEARS_BETWEEN"]).flatmap(
            lambda f: st.sampled_from(
                [f"{f}(opened, as_of)", f"{f}(as_of, opened)", f"{f}(opened, DATE '2024-02-29')"]
            )
        ),
    )


@functools.cache
def _bool(depth: int) -> st.SearchStrategy[str]:
    leaf = st.sampled_from(["kyc", "flagged", "TRUE", "FALSE", "segment = 'farmer'", "opened < as_of"])
    if depth == 0:
        return leaf
    sub, num = _bool(depth - 1), _number(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(num, st.sampled_from(["=", "<>", "<", "<=", ">", ">="]), num).map(
            lambda t: f"{t[0]} {t[1]} {t[2]}"
        ),
        st.tuples(sub, st.sampled_from(["AND", "OR"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda a: f"NOT ({a})"),
        st.tuples(num, st.sampled_from(["IS NULL", "IS NOT NULL"])).map(lambda t: f"({t[0]}) {t[1]}"),
        st.tuples(sub, st.sampled_from(["IS TRUE", "IS NOT TRUE", "IS FALSE", "IS NOT FALSE"])).map(
            lambda t: f"({t[0]}) {t[1]}"
        ),
        st.tuples(num, num, num, st.booleans()).map(
            lambda t: f"{t[0]} {'NOT ' if t[3] else ''}BETWEEN {t[1]} AND {t[2]}"
        ),
        st.tuples(num, st.booleans()).map(lambda t: f"{t[0]} {'NOT ' if t[1] else ''}IN (1, 2.5, 600)"),
        st.sampled_from(
            ["name LIKE 'W%'", "name LIKE '_a%'", "name NOT LIKE '%.%'", "segment IN ('farmer', 'other')"]
        ),
    )


ROW_VALUES = {
    "age": st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.5, 600.0, -1.0]), st.floats(-1e4, 1e4)),
    "income": st.one_of(st.none(), st.sampled_from([0.0, 12.0, 1000.0]), st.floats(-1e6, 1e6)),
    "debt": st.one_of(st.none(), st.sampled_from([0.0, 0.5, 100.0]), st.floats(-1e3, 1e3)),
    "segment": st.sampled_from([None, "farmer", "other", "salaried"]),
    "name": st.sampled_from([None, "Wang", "xa.b", "", "Wa", "张"]),
    "kyc": st.sampled_from([None, True, False]),
    "flagged": st.sampled_from([None, True, False]),
    "opened": st.one_of(st.none(), st.dates(date(2020, 1, 1), date(2025, 12, 31))),
    "as_of": st.one_of(st.none(), st.just(date(2025, 6, 30)), st.just(date(2024, 2, 29))),
}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b) and type(a) is type(b) or (a is None and b is None)


@settings(
    max_examples=int(__import__("os").environ.get("CF_EXPR_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    sql=st.one_of(_number(3), _bool(3)),
    rows=st.lists(st.fixed_dictionaries(ROW_VALUES), min_size=1, max_size=8),
)
def test_random_expressions_agree_on_polars_and_python(sql: str, rows: list[dict[str, Any]]) -> None:
    node = typed(sql)
    got_polars = on_polars(node, rows)
    got_python = on_python(node, rows)
    for row, a, b in zip(rows, got_polars, got_python, strict=True):
        assert _same(a, b), (sql, row, a, b)


def test_the_one_row_path_is_the_same_code_as_the_plan() -> None:
    """evaluate_one uses the plan's own trees: changing a tree changes both answers."""
    plan = PLANS["decision.yaml"]
    facts = {**GOOD, "current_dpd": 12.0}
    assert plan.evaluate_one(facts).outcome == "refer"
    assert plan.evaluate_one({**facts, "as_of": date(2025, 6, 30) + timedelta(days=1)}).expires_on == date(
        2025, 7, 31
    )
    assert plan.evaluate_one(GOOD).limit == Decimal(30000)


@pytest.mark.parametrize("name", sorted(PLANS))
@pytest.mark.parametrize("fill", ["all NULL", "all the good customer"])
def test_frames_where_a_whole_column_is_constant(name: str, fill: str) -> None:
    """Every branch of a CASE can be constant over a frame (Polars then shortcuts); answers stay per row."""
    plan = PLANS[name]
    row = (
        {c: None for c in plan.input_types} if fill == "all NULL" else {c: GOOD[c] for c in plan.input_types}
    )
    rows = [row] * 3
    out = plan.apply(frame_of(plan, rows), reason_codes=True).collect()
    assert out.height == 3
    one = plan.evaluate_one(row)
    for batch in out.iter_rows(named=True):
        assert_same(plan, batch, one)


def test_a_single_rule_that_fires_nowhere() -> None:
    text = (strategy.example_path("mining.yaml")).read_text(encoding="utf-8")
    start, end = text.index("rules:"), text.index("cutoffs:")
    text = (
        text[:start]
        + (
            "rules:\n  only:\n    - id: never_here\n      when: age > 200\n      action: exclude\n"
            "      reason: {code: X_OLD, en: Old, zh: 老}\n"
        )
        + text[end:]
    )
    plan = strategy.compile(strategy.load(text), strategy.default_schema())
    out = plan.apply(frame_of(plan, [GOOD, GOOD])).collect()
    assert out["hit_mask"].to_list() == [0, 0] and out["outcome"].to_list() == ["eligible", "eligible"]


def test_reason_lists_with_few_distinct_masks() -> None:
    plan = PLANS["mining.yaml"]
    rows = [GOOD, GOOD, {**GOOD, "age": 70.0}, GOOD, {**GOOD, "age": 70.0, "on_negative_list": True}]
    out = plan.apply(frame_of(plan, rows), reason_codes=True).collect()
    assert out["reason_codes"].to_list() == [[], [], ["X_AGE"], [], ["X_AGE", "X_NEGATIVE_LIST"]]
    assert out.columns[-1] == "reason_codes"
