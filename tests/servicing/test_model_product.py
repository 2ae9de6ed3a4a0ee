"""Loan products: validation, defaults and loading from YAML."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from creditfactory.clock import DayCount
from creditfactory.money import RoundingMode
from creditfactory.servicing.model import (
    Component,
    LoanProduct,
    ProductError,
    RepaymentMethod,
    load_products,
    sample_products_dir,
)

BASE = {
    "code": "test_loan",
    "name": "测试贷",
    "min_amount": "1000",
    "max_amount": "50000",
    "min_term": 3,
    "max_term": 24,
    "methods": ["equal_installment"],
    "annual_rate": "0.0435",
}


def product(**changes: object) -> LoanProduct:
    """A valid product with ``changes``; a change to ``None`` removes that setting."""
    data = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    return LoanProduct.model_validate(data)


class TestLoanProduct:
    def test_defaults_follow_house_conventions(self) -> None:
        p = product()
        assert p.penalty_rate is None  # unset: each loan's penalty is 1.5 × its own rate
        assert p.effective_penalty_rate == Decimal("0.06525")  # 1.5 × the product's 4.35%
        assert p.allocation_order == (
            Component.PENALTY,
            Component.FEE,
            Component.INTEREST,
            Component.PRINCIPAL,
        )
        assert p.rounding is RoundingMode.HALF_UP
        assert p.day_count is DayCount.THIRTY_E_360
        assert p.rounding_policy.mode is RoundingMode.HALF_UP

    def test_an_unset_penalty_rate_follows_the_loans_own_rate(self) -> None:
        """No penalty rate on the product: a loan on a line at 8% pays 1.5 × 8% = 12%, and a rate
        of 0.04350001 gives 1.5 × 0.04350001 = 0.065250015, kept to 1e-8 with the product's
        half-up: 0.06525002 (down: 0.06525001). A product's own penalty rate is fixed."""
        unset = product()
        assert unset.penalty_rate_for(Decimal("0.08")) == Decimal("0.12")
        assert unset.penalty_rate_for(Decimal("0.04350001")) == Decimal("0.06525002")
        assert product(rounding="down").penalty_rate_for(Decimal("0.04350001")) == Decimal("0.06525001")
        fixed = product(penalty_rate="0.0725")
        assert fixed.penalty_rate_for(Decimal("0.08")) == fixed.effective_penalty_rate == Decimal("0.0725")

    def test_a_single_method_may_be_given_as_method(self) -> None:
        p = product(methods=None, method="bullet")
        assert p.methods == (RepaymentMethod.BULLET,)

    def test_is_frozen(self) -> None:
        with pytest.raises(ValidationError):
            product().annual_rate = Decimal("0.05")  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"annual_rate": 0.0435}, "float"),
            ({"min_amount": "60000"}, "min_amount 60000 is above max_amount"),
            ({"min_term": 30}, "min_term 30 is above max_term"),
            ({"max_amount": "100.001"}, "more than 2 decimal places"),
            ({"allocation_order": ["interest", "principal"]}, "missing: penalty, fee"),
            ({"allocation_order": ["fee", "fee", "interest", "principal"]}, "listed more than once"),
            ({"revolving": True}, "needs line_limit and line_term_months"),
            ({"line_limit": "100000"}, "revolving products only"),
            ({"annual_rate": "-0.01"}, "greater than or equal to 0"),
            ({"methods": ["balloon"]}, "equal_installment"),
            ({"name": "farm\x00loan"}, "name"),  # a name is one line of text
        ],
    )
    def test_refuses_inconsistent_settings(self, changes: dict[str, object], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            product(**changes)

    def test_revolving_line_needs_max_amount_within_the_limit(self) -> None:
        with pytest.raises(ValidationError, match="above line_limit"):
            product(revolving=True, line_limit="30000", line_term_months=36)
        line = product(revolving=True, line_limit="50000", line_term_months=36, max_drawdowns=10)
        assert line.line_limit == Decimal("50000")

    def test_check_loan_names_what_does_not_fit(self) -> None:
        p = product()
        assert p.check_loan(amount=Decimal("5000"), term=12, method="equal_installment") is (
            RepaymentMethod.EQUAL_INSTALLMENT
        )
        with pytest.raises(ProductError, match="amount 999 is outside 1000..50000"):
            p.check_loan(amount=Decimal("999"), term=12, method="equal_installment")
        with pytest.raises(ProductError, match="term 25 months"):
            p.check_loan(amount=Decimal("5000"), term=25, method="equal_installment")
        with pytest.raises(ProductError, match="does not offer bullet"):
            p.check_loan(amount=Decimal("5000"), term=12, method="bullet")

    def test_schedule_uses_the_product_settings(self) -> None:
        p = product(instalment_multiple="1")
        s = p.schedule(principal=Decimal("12000"), term=12, start=date(2025, 1, 15))
        assert s.level_instalment == Decimal("1024.00")  # 1023.80 rounded half-up to the yuan
        assert s.total_principal == Decimal("12000")


class TestLoadProducts:
    def test_sample_products_load_with_exact_decimals(self) -> None:
        products = load_products(sample_products_dir())
        assert set(products) == {
            "farmer_revolving_line",
            "consumer_equal_installment",
            "merchant_interest_only",
            "seasonal_bullet",
        }
        line = products["farmer_revolving_line"]
        assert line.revolving and line.line_limit == Decimal("300000.00")
        assert line.annual_rate == Decimal("0.0395")  # read from the text, not through a float
        assert products["seasonal_bullet"].methods == (RepaymentMethod.BULLET,)
        assert products["merchant_interest_only"].day_count is DayCount.ACTUAL_360

    def test_a_file_may_hold_a_list_of_products(self, tmp_path: Path) -> None:
        f = tmp_path / "many.yaml"
        f.write_text(
            "products:\n"
            "  - {code: a, name: A, min_amount: 1, max_amount: 2, min_term: 1, max_term: 2,"
            " method: bullet, annual_rate: 0.05}\n"
            "  - {code: b, name: B, min_amount: 1, max_amount: 2, min_term: 1, max_term: 2,"
            " method: bullet, annual_rate: 0.06}\n",
            encoding="utf-8",
        )
        assert sorted(load_products(f)) == ["a", "b"]

    def test_rates_are_read_from_their_text_and_a_rate_that_is_not_a_number_is_refused(
        self, tmp_path: Path
    ) -> None:
        head = "code: r\nname: R\nmin_amount: 1\nmax_amount: 2\nmin_term: 1\nmax_term: 2\nmethod: bullet\n"
        f = tmp_path / "r.yaml"
        f.write_text(head + "annual_rate: 0.043_5\n", encoding="utf-8")
        assert load_products(f)["r"].annual_rate == Decimal("0.0435")
        for not_finite in (".nan", ".inf", "-.inf"):
            f.write_text(head + f"annual_rate: {not_finite}\n", encoding="utf-8")
            with pytest.raises(ProductError, match="not valid YAML: not a finite number"):
                load_products(f)
        f.write_text(head + "annual_rate: [0.04\n", encoding="utf-8")
        with pytest.raises(ProductError, match="r.yaml: not valid YAML"):
            load_products(f)

    def test_error_names_file_product_and_field(self, tmp_path: Path) -> None:
        f = tmp_path / "bad.yaml"
        f.write_text(
            "code: bad_rate\nname: x\nmin_amount: 1\nmax_amount: 2\nmin_term: 1\nmax_term: 2\n"
            "method: bullet\nannual_rate: abc\n",
            encoding="utf-8",
        )
        with pytest.raises(ProductError) as info:
            load_products(tmp_path)
        message = info.value.message
        assert str(f) in message and "'bad_rate'" in message and "'annual_rate'" in message
        assert info.value.details["field"] == "annual_rate"

    def test_unknown_field_is_refused(self, tmp_path: Path) -> None:
        f = tmp_path / "typo.yaml"
        f.write_text(
            "code: typo\nname: x\nmin_amount: 1\nmax_amount: 2\nmin_term: 1\nmax_term: 2\n"
            "method: bullet\nannual_rate: 0.04\ngrace_dayz: 3\n",
            encoding="utf-8",
        )
        with pytest.raises(ProductError, match="'typo': field 'grace_dayz'"):
            load_products(f)

    def test_a_code_defined_twice_is_refused(self, tmp_path: Path) -> None:
        text = (
            "code: twin\nname: x\nmin_amount: 1\nmax_amount: 2\nmin_term: 1\nmax_term: 2\n"
            "method: bullet\nannual_rate: 0.04\n"
        )
        (tmp_path / "a.yaml").write_text(text, encoding="utf-8")
        (tmp_path / "b.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(ProductError, match="'twin' is already defined in .*a.yaml"):
            load_products(tmp_path)

    def test_missing_path_and_broken_yaml(self, tmp_path: Path) -> None:
        with pytest.raises(ProductError, match="no such product file"):
            load_products(tmp_path / "nope.yaml")
        broken = tmp_path / "broken.yaml"
        broken.write_text("code: [unclosed\n", encoding="utf-8")
        with pytest.raises(ProductError, match="broken.yaml: not valid YAML"):
            load_products(broken)
