"""Spark parity: the Spark SQL compiled from a plan gives the Polars answers, NULLs, boundaries
and rounding included. Runs on a local[2] session (marker ``spark``)."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from creditfactory import strategy
from creditfactory.strategy import Plan
from creditfactory.strategy.backends import spark as sb
from creditfactory.strategy.ir import Type

from .support import SCHEMA, frame_of, on_python, random_rows, typed
from .test_plan import BASE, CASES, WORKED
from .test_plan import SCHEMA as WORKED_SCHEMA

pytestmark = pytest.mark.spark

OUTCOME_COLUMNS = ("outcome", "reason_code", "reason_codes", "grade", "limit", "price", "expires_on")


def _spark_type(t: Type) -> Any:
    from pyspark.sql import types as T

    return {
        Type.NUMBER: T.DoubleType(),
        Type.STRING: T.StringType(),
        Type.BOOL: T.BooleanType(),
        Type.DATE: T.DateType(),
    }[t]


def spark_frame(spark: Any, types: dict[str, Type], rows: list[dict[str, Any]]) -> Any:
    from pyspark.sql import types as T

    schema = T.StructType(
        [T.StructField("row_id", T.LongType(), False)]
        + [T.StructField(name, _spark_type(t), True) for name, t in types.items()]
    )

    def cell(value: Any, t: Type) -> Any:
        return float(value) if t == Type.NUMBER and value is not None else value

    data = [(i, *(cell(row.get(name), t) for name, t in types.items())) for i, row in enumerate(rows)]
    return spark.createDataFrame(data, schema=schema)


def run_spark(spark: Any, plan: Plan, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    df = plan.apply_spark(spark_frame(spark, plan.input_types, rows), reason_codes=True)
    return [r.asDict() for r in sorted(df.collect(), key=lambda r: r["row_id"])]


def same_number(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    # LN, EXP and POWER come from each engine's maths library: the last binary place may differ
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)


def assert_frames_agree(
    plan: Plan, polars_rows: list[dict[str, Any]], spark_rows: list[dict[str, Any]]
) -> None:
    assert len(polars_rows) == len(spark_rows)
    for p, s in zip(polars_rows, spark_rows, strict=True):
        for column in (*plan.hit_columns, *OUTCOME_COLUMNS):
            assert p[column] == s[column], (column, p, s)
        for name, _ in plan.variables:  # plain arithmetic: the same IEEE operations, the same bits
            assert p[name] == s[name], (name, p[name], s[name])


@pytest.mark.parametrize("name", ["mining.yaml", "decision.yaml"])
def test_examples_give_the_same_outcomes_on_spark_and_polars(spark: Any, name: str) -> None:
    plan = strategy.compile(strategy.load(strategy.example_path(name)), strategy.default_schema())
    rows = random_rows(plan, 1500, seed=23)
    polars_rows = list(plan.apply(frame_of(plan, rows), reason_codes=True).collect().iter_rows(named=True))
    spark_rows = run_spark(spark, plan, rows)
    assert_frames_agree(plan, polars_rows, spark_rows)
    outcomes = {r["outcome"] for r in spark_rows}
    assert outcomes == set(plan.kind.outcomes)
    assert len({r["limit"] for r in spark_rows}) > 5  # many different limits, all rounded alike


def test_worked_example_on_spark(spark: Any) -> None:
    plan = strategy.compile(strategy.load(WORKED), WORKED_SCHEMA)
    rows = [{**BASE, **changes} for _, changes, *_ in CASES]
    got = run_spark(spark, plan, rows)
    for row, (what, _, outcome, code, _hits, grade, limit, price) in zip(got, CASES, strict=True):
        assert (row["outcome"], row["reason_code"], row["grade"], row["limit"]) == (
            outcome,
            code,
            grade,
            limit,
        ), what
        assert row["price"] == (float(Decimal(price)) if price else None), what
        assert row["expires_on"] == (date(2025, 7, 30) if outcome != "decline" else None), what


def test_integer_and_nan_inputs_on_spark(spark: Any) -> None:
    from pyspark.sql import functions as F

    plan = strategy.compile(strategy.load(WORKED), WORKED_SCHEMA)
    rows = [BASE, {**BASE, "score": float("nan")}, {**BASE, "score": float("inf")}]
    df = spark_frame(spark, plan.input_types, rows).withColumn("age", F.col("age").cast("bigint"))
    got = [r.asDict() for r in sorted(plan.apply_spark(df).collect(), key=lambda r: r["row_id"])]
    assert [r["outcome"] for r in got] == ["approve", "decline", "decline"]
    assert [r["reason_code"] for r in got] == [None, "D_SCORE", "D_SCORE"]


EXPRESSIONS = [
    "kyc AND flagged",
    "kyc OR flagged",
    "NOT kyc",
    "age > 18",
    "segment = 'farmer'",
    "age NOT BETWEEN 18 AND 60",
    "segment IN ('farmer', 'merchant')",
    "segment NOT IN ('farmer')",
    "name LIKE 'W_ng%'",
    "name LIKE '%.%'",
    "kyc IS NOT TRUE",
    "age IS NULL",
    "income / debt",
    "income / 3",
    "income / 0",
    "LEAST(age, income, 7)",
    "GREATEST(age, income)",
    "COALESCE(age, income, 7)",
    "NULLIF(age, 0)",
    "IF(kyc, age, income)",
    "CASE segment WHEN 'farmer' THEN 1 WHEN 'merchant' THEN 2 END",
    "CASE WHEN age > 30 THEN 'old' ELSE 'young' END",
    "ROUND(income, 2)",
    "ROUND(income)",
    "ROUND(income, -3)",
    "FLOOR(income)",
    "CEIL(income)",
    "ABS(income)",
    "LN(income)",
    "EXP(age)",
    "POWER(income, 3)",
    "POWER(age, 1.5)",
    "POWER(income, -1)",
    "SQRT(income)",
    "DAYS_BETWEEN(opened, as_of)",
    "MONTHS_BETWEEN(opened, as_of)",
    "MONTHS_BETWEEN(as_of, opened)",
    "YEARS_BETWEEN(opened, as_of)",
    "YEARS_BETWEEN(as_of, opened)",
    "opened < DATE '2024-02-29'",
    "-income + 1000 * age",
]

EDGE_ROWS: list[dict[str, Any]] = [
    {
        "age": None,
        "income": None,
        "debt": None,
        "segment": None,
        "name": None,
        "kyc": None,
        "flagged": None,
        "opened": None,
        "as_of": None,
    },
    {
        "age": 18.0,
        "income": 2.5,
        "debt": 0.0,
        "segment": "farmer",
        "name": "Wang",
        "kyc": True,
        "flagged": None,
        "opened": date(2024, 1, 31),
        "as_of": date(2024, 2, 29),
    },
    {
        "age": 60.0,
        "income": -2.5,
        "debt": 4.0,
        "segment": "merchant",
        "name": "a.b",
        "kyc": False,
        "flagged": False,
        "opened": date(1990, 7, 1),
        "as_of": date(2025, 7, 1),
    },
    {
        "age": 60.5,
        "income": 1.005,
        "debt": -3.0,
        "segment": "other",
        "name": "Wung",
        "kyc": None,
        "flagged": True,
        "opened": date(2025, 3, 15),
        "as_of": date(2025, 1, 20),
    },
    {
        "age": 17.0,
        "income": 1250.0,
        "debt": 7.0,
        "segment": "salaried",
        "name": "张三",
        "kyc": True,
        "flagged": True,
        "opened": date(2024, 2, 29),
        "as_of": date(2025, 2, 28),
    },
    {
        "age": 800.0,
        "income": 123456.789,
        "debt": None,
        "segment": "farmer",
        "name": "",
        "kyc": False,
        "flagged": None,
        "opened": date(2020, 12, 31),
        "as_of": date(2021, 1, 1),
    },
    {
        "age": 0.1,
        "income": 0.0,
        "debt": 3.0,
        "segment": None,
        "name": "x",
        "kyc": None,
        "flagged": False,
        "opened": None,
        "as_of": date(2025, 6, 30),
    },
]


def test_each_operation_agrees_with_the_python_backend(spark: Any) -> None:
    df = spark_frame(spark, SCHEMA, EDGE_ROWS)
    inputs = dict(SCHEMA)
    selects = [
        f"{sb.to_sql(sb.compile_node(typed(sql), inputs))} AS `e{i}`" for i, sql in enumerate(EXPRESSIONS)
    ]
    got = sorted(df.selectExpr("row_id", *selects).collect(), key=lambda r: r["row_id"])
    for i, sql in enumerate(EXPRESSIONS):
        expected = on_python(typed(sql), EDGE_ROWS)
        for row, want in zip(got, expected, strict=True):
            have = row[f"e{i}"]
            if any(f in sql for f in ("LN(", "EXP(", "POWER(age, 1.5)")):
                assert same_number(have, want), (sql, row["row_id"], have, want)
            else:
                assert have == want, (sql, row["row_id"], have, want)


def test_spark_columns_read_inputs_and_earlier_columns_only(spark: Any) -> None:
    plan = strategy.compile(strategy.load(strategy.example_path("decision.yaml")), strategy.default_schema())
    pairs = plan.spark_columns()
    assert [name for name, _ in pairs] == list(plan.outputs())
    df = spark_frame(spark, plan.input_types, random_rows(plan, 5, seed=1))
    for name, sql in pairs:  # each in turn, as a caller without apply_spark would
        df = df.selectExpr("*", f"{sql} AS `{name}`")
    assert df.count() == 5


def test_polars_frames_reach_spark_through_arrow(spark: Any) -> None:
    plan = strategy.compile(strategy.load(WORKED), WORKED_SCHEMA)
    frame = frame_of(plan, [BASE]).with_columns(pl.lit(7, pl.Int64).alias("row_id"))
    df = spark.createDataFrame(frame.to_arrow(compat_level=pl.CompatLevel.oldest()))
    [row] = plan.apply_spark(df).collect()
    assert (row["outcome"], row["limit"], row["grade"]) == ("approve", 30000, "A")


def _projections(df: Any) -> int:
    return str(df._jdf.queryExecution().analyzed().treeString()).count("Project [")


def test_plan_columns_are_added_in_one_projection_per_dependency_level(spark: Any) -> None:
    plan = strategy.compile(strategy.load(strategy.example_path("mining.yaml")), strategy.default_schema())
    rows = random_rows(plan, 50, seed=5)
    df = spark_frame(spark, plan.input_types, rows)
    layered = plan.apply_spark(df)
    pairs = plan.spark_columns()
    one_by_one = df
    for name, sql in pairs:
        one_by_one = one_by_one.selectExpr("*", f"{sql} AS `{name}`")
    # total_debt and income_multiple; total_debt_to_income; hit_mask; outcome and reason_code;
    # grade, limit and expires_on; price: six projections for ten columns
    assert (len(pairs), _projections(layered) - _projections(df)) == (10, 6)

    def rows(frame: Any) -> list[dict[str, Any]]:
        return sorted((r.asDict() for r in frame.collect()), key=lambda r: r["row_id"])

    assert set(layered.columns) == set(one_by_one.columns)
    assert rows(layered) == rows(one_by_one)


def test_a_derived_column_may_replace_an_input(spark: Any) -> None:
    df = spark.createDataFrame([(1.0, 2.0), (3.0, None)], "x double, y double")
    out = sb.project(df, [("y", "COALESCE(y, 0D) + x"), ("z", "y * 10D")])
    assert out.columns == ["x", "y", "z"]
    assert [tuple(r) for r in out.orderBy("x").collect()] == [(1.0, 3.0, 30.0), (3.0, 3.0, 30.0)]
