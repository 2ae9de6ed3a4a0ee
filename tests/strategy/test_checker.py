"""Every problem the loader and the checker report: its code, line, rule and column.

Each test breaks the worked example in one way (or several) and reads the problems back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from creditfactory import strategy
from creditfactory.strategy import Problem, StrategyError

from .test_plan import SCHEMA, WORKED


def problems(text: str, schema: dict[str, str] | None = None) -> list[Problem]:
    return strategy.check(strategy.load(text, strict=False), SCHEMA if schema is None else schema)


def brief(
    text: str, schema: dict[str, str] | None = None
) -> list[tuple[str, int | None, str | None, str | None]]:
    return [(p.code, p.line, p.rule, p.column) for p in problems(text, schema)]


def line_of(text: str, fragment: str) -> int:
    for n, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            return n
    raise AssertionError(fragment)


def edit(old: str, new: str, text: str = WORKED) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


class TestTheExamplesAreClean:
    @pytest.mark.parametrize("name", ["mining.yaml", "decision.yaml"])
    def test_shipped_examples_check_against_the_default_schema(self, name: str) -> None:
        loaded = strategy.load(strategy.example_path(name))
        assert strategy.check(loaded, strategy.default_schema()) == []

    def test_worked_example_is_clean(self) -> None:
        assert problems(WORKED) == []


class TestExpressions:
    def test_unknown_column_names_rule_column_and_line_with_a_suggestion(self) -> None:
        text = edit("when: current_dpd > 0", "when: curent_dpd > 0")
        [p] = problems(text)
        assert (p.code, p.line, p.rule, p.column) == (
            "unknown_column",
            line_of(text, "curent_dpd"),
            "overdue",
            "curent_dpd",
        )
        assert "did you mean current_dpd" in p.message
        assert p.file == "<text>"
        assert str(p) == f"<text>:{p.line}: {p.message} [unknown_column]"
        assert p.message == "rule overdue: unknown column curent_dpd (did you mean current_dpd?)"

    def test_unknown_function(self) -> None:
        text = edit("annual_income_est / 12", "SOFTMAX(annual_income_est)")
        [p] = problems(text)
        assert (p.code, p.rule) == ("unknown_function", "variables.monthly_income")
        assert "SOFTMAX" in p.message and "LEAST" in p.message

    def test_function_hints(self) -> None:
        text = edit("annual_income_est / 12", "DATEDIFF(as_of, as_of)")
        [p] = problems(text)
        assert p.code == "unknown_function" and "DAYS_BETWEEN" in p.message
        [p] = problems(edit("annual_income_est / 12", "LOG10(annual_income_est)"))
        assert p.code == "unknown_function" and "LN(x)" in p.message

    def test_comparing_a_number_with_text(self) -> None:
        text = edit("age NOT BETWEEN 18 AND 60", "age = 'x'")
        [p] = problems(text)
        assert (p.code, p.rule, p.column) == ("type_mismatch", "age_window", "age")
        assert "column age (number)" in p.message

    def test_and_on_a_number(self) -> None:
        text = edit("current_dpd > 0", "annual_income_est AND 3")
        found = problems(text)
        assert [(p.code, p.column) for p in found] == [("type_mismatch", "annual_income_est")]
        assert "must be a truth value, but column annual_income_est is a number" in found[0].message

    def test_a_condition_must_be_a_truth_value(self) -> None:
        text = edit("current_dpd > 0", "current_dpd + 1")
        [p] = problems(text)
        assert (p.code, p.rule, p.column) == ("not_boolean", "overdue", "current_dpd")

    def test_comparison_with_null(self) -> None:
        text = edit("current_dpd > 0", "current_dpd = NULL")
        [p] = problems(text)
        assert p.code == "null_comparison" and "IS NULL" in p.message

    def test_syntax_error_and_its_line_inside_a_block(self) -> None:
        text = edit("when: current_dpd > 0", "when: |\n        current_dpd > 0\n        AND AND age > 3")
        [p] = problems(text)
        assert p.code == "sql_syntax"
        assert p.line == line_of(text, "AND AND")

    def test_queries_casts_and_qualified_names_are_refused(self) -> None:
        for sql, hint in [
            ("age IN (SELECT 1)", "not a query"),
            ("CAST(age AS INT) > 3", "casts are not needed"),
            ("t.age > 3", "without a table"),
            ("segment IN (segment, 'x')", "list of constants"),
            ("segment LIKE 'a\\\\b'", "backslash"),
            ("ROUND(age, age) > 1", "whole-number constant"),
        ]:
            [p] = problems(edit("current_dpd > 0", sql.replace("\\\\", "\\")))
            assert p.code == "unsupported_sql", sql
            assert hint in p.message, (sql, p.message)

    def test_every_problem_in_one_expression(self) -> None:
        text = edit("current_dpd > 0", "foo(age) > 1 OR agee > 2 OR segment = 3")
        assert [p.code for p in problems(text)] == ["unknown_function", "unknown_column", "type_mismatch"]

    def test_a_broken_variable_is_reported_once(self) -> None:
        text = edit("annual_income_est / 12", "annual_incom / 12")
        assert [(p.code, p.rule) for p in problems(text)] == [("unknown_column", "variables.monthly_income")]

    def test_a_variable_is_known_only_after_its_definition(self) -> None:
        text = edit(
            "  monthly_income: annual_income_est / 12",
            "  early: monthly_income * 2\n  monthly_income: annual_income_est / 12",
        )
        [p] = problems(text)
        assert (p.code, p.rule, p.column) == ("unknown_column", "variables.early", "monthly_income")

    def test_a_variable_may_not_take_a_column_or_output_name(self) -> None:
        text = edit(
            "  monthly_income: annual_income_est / 12",
            "  monthly_income: annual_income_est / 12\n  age: 3\n  limit: 4",
        )
        assert [(p.code, p.column) for p in problems(text)] == [
            ("duplicate_id", "age"),
            ("duplicate_id", "limit"),
        ]


class TestRules:
    def test_duplicate_rule_ids(self) -> None:
        text = edit("- id: overdue", "- id: age_window")
        [p] = problems(text)
        assert (p.code, p.line, p.rule) == ("duplicate_id", line_of(text, "id: age_window") + 4, "age_window")

    def test_missing_reason(self) -> None:
        text = edit('      reason: {code: D_OVERDUE, en: "Overdue", zh: "逾期"}\n', "")
        [p] = problems(text)
        assert (p.code, p.rule, p.line) == ("missing_reason", "overdue", line_of(text, "id: overdue"))

    def test_reason_needs_code_and_both_texts(self) -> None:
        text = edit('{code: D_OVERDUE, en: "Overdue", zh: "逾期"}', "{code: d-overdue, en: Overdue}")
        assert [p.code for p in problems(text)] == ["missing_field", "bad_reason_code"]

    def test_same_code_with_other_words(self) -> None:
        text = edit(
            '{code: D_OVERDUE, en: "Overdue", zh: "逾期"}', '{code: D_AGE, en: "Overdue", zh: "逾期"}'
        )
        [p] = problems(text)
        assert (p.code, p.rule) == ("reason_conflict", "overdue")

    def test_rules_after_an_unconditional_decline_are_unreachable(self) -> None:
        text = edit("age NOT BETWEEN 18 AND 60", "TRUE")
        found = brief(text)
        assert [(code, rule) for code, _, rule, _ in found] == [
            ("unreachable_rule", "overdue"),
            ("unreachable_rule", "low_income"),
            ("unreachable_rule", "no_bureau"),
        ]

    def test_a_constant_true_by_arithmetic_counts_too(self) -> None:
        text = edit("monthly_income < 3000", "1 + 1 = 2")
        text = edit("action: refer", "action: decline", text)
        assert [p.rule for p in problems(text)] == ["no_bureau"]

    def test_a_rule_that_never_fires(self) -> None:
        text = edit("current_dpd > 0", "1 = 2")
        assert [(p.code, p.rule) for p in problems(text)] == [("never_fires", "overdue")]

    def test_action_must_suit_the_kind(self) -> None:
        text = edit("action: refer", "action: exclude")
        [p] = problems(text)
        assert (p.code, p.rule) == ("wrong_action", "low_income") and "decision" in p.message

    def test_unknown_action(self) -> None:
        text = edit("action: refer", "action: reject")
        [p] = problems(text)
        assert p.code == "bad_value" and "exclude, decline, refer, flag" in p.message


class TestSections:
    def test_cutoff_for_an_unknown_segment_and_a_missing_one(self) -> None:
        text = edit("segments: {farmer: 600, salaried: 620}", "segments: {farmer: 600, fisher: 620}")
        assert [(p.code, p.column) for p in problems(text)] == [
            ("unknown_segment", "segment"),
            ("missing_cutoff", "segment"),
        ]
        assert "salaried" in problems(text)[1].message

    def test_grade_bands_overlap(self) -> None:
        text = edit("{grade: B, from: 650, to: 700}", "{grade: B, from: 650, to: 710}")
        [p] = problems(text)
        assert (p.code, p.line) == ("grade_overlap", line_of(text, "grade: A"))
        assert "B (650 to 710) and A (700 to +∞) overlap" in p.message

    def test_grade_bands_gap(self) -> None:
        text = edit("{grade: C, from: 600, to: 650}", "{grade: C, from: 600, to: 640}")
        [p] = problems(text)
        assert p.code == "grade_gap" and "640 to 650" in p.message

    def test_empty_and_duplicate_bands(self) -> None:
        text = edit("{grade: C, from: 600, to: 650}", "{grade: B, from: 650, to: 600}")
        codes = [p.code for p in problems(text)]
        assert "empty_band" in codes and "duplicate_id" in codes

    def test_grades_on_a_text_column(self) -> None:
        text = edit("grades:\n", "grades:\n  column: segment\n")
        [p] = problems(text)
        assert (p.code, p.rule, p.column) == ("not_numeric", "grades", "segment")

    def test_limit_formula_must_be_a_number(self) -> None:
        text = edit("formula: annual_income_est * 0.5", "formula: annual_income_est > 0.5")
        [p] = problems(text)
        assert (p.code, p.rule) == ("not_numeric", "limit.formula")

    def test_limit_bounds(self) -> None:
        text = edit("max: 100000", "max: 4000")
        text = edit("min: 5000", "min: 5500", text)
        assert [p.message for p in problems(text)] == [
            "limit.max 4000 is below limit.min 5500",
            "limit.min 5500 is not a multiple of limit.multiple 1000",
        ]

    def test_limit_needs_a_product_maximum(self) -> None:
        [p] = problems(edit("  max: 100000\n", ""))
        assert (p.code, p.rule) == ("missing_field", "limit.max")

    def test_prices(self) -> None:
        text = edit("price: {A: 0.05, B: 0.06, C: 0.08}", "price: {A: 4.35, B: 0.06, Z: 0.08}")
        assert [(p.code, p.rule) for p in problems(text)] == [
            ("bad_value", "price"),
            ("unknown_grade", "price"),
            ("missing_price", "price"),
        ]

    def test_expiry_needs_an_as_of_date(self) -> None:
        schema = {k: v for k, v in SCHEMA.items() if k != "as_of"}
        [p] = problems(WORKED, schema)
        assert (p.code, p.rule, p.column) == ("unknown_column", "expiry_days", "as_of")

    def test_cutoff_action_must_stop_or_refer(self) -> None:
        text = edit("cutoffs:\n", "cutoffs:\n  action: flag\n")
        [p] = problems(text)
        assert (p.code, p.rule) == ("wrong_action", "cutoffs")

    def test_bad_schema_types(self) -> None:
        [p] = problems(WORKED, {**SCHEMA, "age": "integer"})
        assert p.code == "bad_schema" and p.column == "age"


class TestLoading:
    def test_yaml_syntax_error_has_a_line(self) -> None:
        with pytest.raises(StrategyError) as err:
            strategy.load("name: x\nkind: [decision\n")
        [p] = err.value.problems
        assert p.code == "yaml_syntax" and p.line is not None

    def test_unknown_and_duplicate_fields(self) -> None:
        text = edit("expiry_days: 30", "expiry_days: 30\ncutofs: {}\nname: again")
        assert [(p.code, p.line) for p in problems(text)] == [
            ("duplicate_key", line_of(text, "name: again")),
            ("unknown_field", line_of(text, "cutofs")),
        ]

    def test_header_fields(self) -> None:
        text = edit("kind: decision\nversion: 2\n", "kind: loan\nversion: two\n")
        assert [(p.code, p.rule) for p in problems(text)] == [
            ("bad_value", "header"),
            ("bad_value", "header"),
        ]

    def test_missing_sections(self) -> None:
        text = WORKED.split("cutoffs:")[0]
        codes = [(p.code, p.rule) for p in problems(text)]
        assert ("missing_field", "grades") in codes and ("missing_field", "limit") in codes
        assert ("missing_field", "price") in codes

    def test_strict_load_raises_with_every_problem(self) -> None:
        text = edit("kind: decision", "kind: loan")
        text = edit("max: 100000", "max: lots", text)
        with pytest.raises(StrategyError) as err:
            strategy.load(text)
        assert len(err.value.problems) == 2
        assert err.value.code == "strategy_invalid"
        assert err.value.to_problem()["details"]["problems"][0]["code"] == "bad_value"

    def test_compile_refuses_a_strategy_with_problems(self) -> None:
        text = edit("current_dpd > 0", "current_dpd > 'x'")
        with pytest.raises(StrategyError) as err:
            strategy.compile(strategy.load(text), SCHEMA)
        assert [p.code for p in err.value.problems] == ["type_mismatch"]

    def test_a_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(StrategyError) as err:
            strategy.load(tmp_path / "nope.yaml")
        assert err.value.problems[0].code == "file_unreadable"

    def test_a_file_is_named_in_problems(self, tmp_path: Path) -> None:
        path = tmp_path / "policy.yaml"
        path.write_text(edit("current_dpd > 0", "current_dpd > 'x'"), encoding="utf-8")
        [p] = strategy.check(strategy.load(path), SCHEMA)
        assert p.file == str(path)

    def test_many_problems_at_once(self) -> None:
        text = edit("current_dpd > 0", "curent_dpd > 0")
        text = edit("{grade: C, from: 600, to: 650}", "{grade: C, from: 600, to: 640}", text)
        text = edit("segments: {farmer: 600, salaried: 620}", "segments: {farmer: 600, fisher: 620}", text)
        text = edit('      reason: {code: R_INCOME, en: "Low income", zh: "收入偏低"}\n', "", text)
        codes = sorted(p.code for p in problems(text))
        assert codes == ["grade_gap", "missing_cutoff", "missing_reason", "unknown_column", "unknown_segment"]

    def test_a_path_given_as_text(self, tmp_path: Path) -> None:
        path = tmp_path / "policy.txt"
        path.write_text(WORKED, encoding="utf-8")
        assert strategy.load(str(path)).source == str(path)
        assert strategy.load(WORKED).source == "<text>"

    def test_fingerprint_follows_the_text(self) -> None:
        a = strategy.load(WORKED)
        b = strategy.load(WORKED + "\n# a comment\n")
        assert a.fingerprint != b.fingerprint and len(a.fingerprint) == 64
