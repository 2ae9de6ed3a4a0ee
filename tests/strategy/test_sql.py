"""The expression language and its NULL rules, each case run on Polars and on Python (``value``
asserts that the two agree). The Spark backend is held to the same cases in ``test_spark.py``."""

from __future__ import annotations

from datetime import date

import pytest

from creditfactory.strategy.ir import Op, Type, walk
from creditfactory.strategy.sql import lower

from .support import SCHEMA, typed, value

T, F, N = True, False, None
KLEENE = [
    # a, b, a AND b, a OR b
    (T, T, T, T),
    (T, F, F, T),
    (T, N, N, T),
    (F, F, F, F),
    (F, N, F, N),
    (N, N, N, N),
]


class TestNullLogic:
    @pytest.mark.parametrize(("a", "b", "conj", "disj"), KLEENE)
    def test_and_or_follow_three_valued_logic(
        self, a: bool | None, b: bool | None, conj: bool | None, disj: bool | None
    ) -> None:
        assert value("kyc AND flagged", kyc=a, flagged=b) is conj
        assert value("flagged AND kyc", kyc=a, flagged=b) is conj
        assert value("kyc OR flagged", kyc=a, flagged=b) is disj
        assert value("flagged OR kyc", kyc=a, flagged=b) is disj

    def test_not_null_is_null(self) -> None:
        assert value("NOT kyc", kyc=None) is None
        assert value("NOT kyc", kyc=False) is True

    def test_comparisons_with_null_are_null(self) -> None:
        for sql in ("age > 3", "age = 3", "age <> 3", "segment = 'farmer'", "opened < DATE '2020-01-01'"):
            assert value(sql) is None, sql

    def test_is_null_and_is_true(self) -> None:
        assert value("age IS NULL") is True
        assert value("age IS NOT NULL", age=1) is True
        assert value("kyc IS TRUE") is False
        assert value("kyc IS NOT TRUE") is True
        assert value("kyc IS FALSE", kyc=False) is True
        assert value("kyc IS NOT FALSE") is True

    def test_in_and_not_in_with_null(self) -> None:
        assert value("segment IN ('farmer', 'merchant')", segment="farmer") is True
        assert value("segment IN ('farmer', 'merchant')", segment="other") is False
        assert value("segment IN ('farmer')") is None
        assert value("segment NOT IN ('farmer')") is None
        assert value("age IN (18, 19.5)", age=19.5) is True

    def test_between_is_inclusive_and_null_stays_null(self) -> None:
        assert value("age BETWEEN 18 AND 60", age=18) is True
        assert value("age BETWEEN 18 AND 60", age=60) is True
        assert value("age BETWEEN 18 AND 60", age=60.0001) is False
        assert value("age NOT BETWEEN 18 AND 60") is None

    def test_case_and_if_treat_a_null_condition_as_not_true(self) -> None:
        assert value("CASE WHEN age > 18 THEN 'adult' ELSE 'other' END") == "other"
        assert value("CASE WHEN age > 18 THEN 'adult' END", age=3) is None
        assert value("IF(kyc, 1, 2)") == 2
        assert (
            value("CASE segment WHEN 'farmer' THEN 1 WHEN 'merchant' THEN 2 ELSE 0 END", segment="merchant")
            == 2
        )
        assert value("CASE segment WHEN 'farmer' THEN 1 ELSE 0 END") == 0

    def test_coalesce_and_nullif(self) -> None:
        assert value("COALESCE(age, income, 7)", income=5) == 5
        assert value("COALESCE(age, income)") is None
        assert value("NULLIF(age, 0)", age=0) is None
        assert value("NULLIF(age, 0)", age=4) == 4
        assert value("NULLIF(age, income)", age=4) == 4


class TestArithmetic:
    def test_null_propagates(self) -> None:
        assert value("age + 1") is None
        assert value("-age") is None

    def test_division_by_zero_is_null(self) -> None:
        assert value("income / debt", income=10, debt=0) is None
        assert value("income / debt", income=10, debt=4) == 2.5
        assert value("income / 0", income=10) is None

    def test_least_and_greatest_skip_nulls(self) -> None:
        assert value("LEAST(age, income, 7)", income=5) == 5
        assert value("GREATEST(age, income, 7)", income=5) == 7
        assert value("LEAST(age, income)") is None

    @pytest.mark.parametrize(
        ("sql", "x", "expected"),
        [
            ("ROUND(age)", 2.5, 3.0),
            ("ROUND(age)", -2.5, -2.0),  # half up means towards +infinity
            ("ROUND(age, 2)", 1.125, 1.13),  # 112.5 exactly: up
            ("ROUND(age, 2)", 1.005, 1.0),  # 1.005 * 100 is 100.49999999999999 in binary: down
            ("ROUND(age, -2)", 1250.0, 1300.0),
            ("ROUND(age, -3)", 12345.0, 12000.0),
            ("FLOOR(age)", -1.5, -2.0),
            ("CEIL(age)", -1.5, -1.0),
            ("FLOOR(age)", 1e300, 1e300),
            ("ABS(age)", -3.0, 3.0),
            ("POWER(age, 2)", 1.5, 2.25),
            ("SQRT(age)", 16.0, 4.0),
        ],
    )
    def test_functions(self, sql: str, x: float, expected: float) -> None:
        assert value(sql, age=x) == expected

    def test_results_outside_the_domain_are_null(self) -> None:
        assert value("LN(age)", age=0) is None
        assert value("LN(age)", age=-1) is None
        assert value("SQRT(age)", age=-1) is None
        assert value("POWER(age, -1)", age=0) is None
        assert value("POWER(age, 0.5)", age=-8) is None
        assert value("EXP(age)", age=1000) is None
        assert value("POWER(age, 2.5)", age=1e200) is None
        assert value("POWER(age, -2)", age=0) is None

    def test_logs_and_powers(self) -> None:
        assert value("EXP(LN(age))", age=5) == pytest.approx(5)
        assert value("POWER(2, age)", age=10) == 1024


class TestTextAndDates:
    def test_like(self) -> None:
        assert value("name LIKE 'Wang%'", name="Wang Wei") is True
        assert value("name LIKE 'W_ng%'", name="Wung") is True
        assert value("name LIKE 'a.c'", name="abc") is False  # a dot is just a dot
        assert value("name LIKE 'a.c'", name="a.c") is True
        assert value("name LIKE '%(x)%'", name="a (x) b") is True
        assert value("name NOT LIKE '%x%'", name="abc") is True
        assert value("name LIKE '%'") is None
        assert value("name LIKE '张%'", name="张三") is True

    def test_text_comparison_is_by_code_point(self) -> None:
        assert value("name < segment", name="B", segment="a") is True

    def test_days_months_years_between(self) -> None:
        d = {"opened": date(2024, 1, 31), "as_of": date(2024, 2, 29)}
        assert value("DAYS_BETWEEN(opened, as_of)", **d) == 29
        assert value("MONTHS_BETWEEN(opened, as_of)", **d) == 0  # the 31st has not come round
        assert value("MONTHS_BETWEEN(opened, as_of)", opened=date(2024, 1, 31), as_of=date(2024, 3, 31)) == 2
        assert value("MONTHS_BETWEEN(as_of, opened)", opened=date(2024, 1, 15), as_of=date(2024, 3, 14)) == -1
        assert value("YEARS_BETWEEN(opened, as_of)", opened=date(1990, 7, 1), as_of=date(2025, 6, 30)) == 34
        assert value("YEARS_BETWEEN(opened, as_of)", opened=date(1990, 7, 1), as_of=date(2025, 7, 1)) == 35
        assert value("YEARS_BETWEEN(as_of, opened)", opened=date(1990, 7, 1), as_of=date(2025, 7, 1)) == -35
        assert value("DAYS_BETWEEN(opened, as_of)", opened=date(2024, 1, 1)) is None

    def test_date_literals(self) -> None:
        assert value("opened >= DATE '2024-01-01'", opened=date(2024, 1, 1)) is True


class TestLowering:
    def test_sugar_is_gone(self) -> None:
        node = typed("age NOT BETWEEN 18 AND 60 OR IF(kyc, 1, 2) > 1 OR ROUND(age, 1) > 2")
        ops = {n.op for n in walk(node) if hasattr(n, "op")}
        assert Op.CASE in ops and Op.FLOOR in ops and Op.GE in ops

    def test_null_takes_the_type_of_its_context(self) -> None:
        node = typed("COALESCE(age, NULL)")
        assert node.type == Type.NUMBER
        node = typed("CASE WHEN kyc THEN NULL ELSE 'x' END")
        assert node.type == Type.STRING

    def test_all_issues_of_an_expression(self) -> None:
        node, issues = lower("foo(1) + agee + (segment * 2)", SCHEMA)
        assert node is None
        assert [i.code for i in issues] == ["unknown_function", "unknown_column", "type_mismatch"]

    def test_dates_cannot_be_subtracted(self) -> None:
        _, issues = lower("as_of - opened > 3", SCHEMA)
        assert "DAYS_BETWEEN" in issues[0].message

    def test_mixed_case_arguments(self) -> None:
        _, issues = lower("CASE WHEN kyc THEN 1 ELSE 'x' END", SCHEMA)
        assert issues[0].code == "type_mismatch" and "THEN and ELSE" in issues[0].message

    def test_booleans_only_compare_for_equality(self) -> None:
        _, issues = lower("kyc < flagged", SCHEMA)
        assert issues[0].code == "type_mismatch"
