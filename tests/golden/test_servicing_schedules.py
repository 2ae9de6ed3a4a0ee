"""Repayment schedules checked against references that owe nothing to our code.

- Apache Fineract's published EMI scenarios (``servicing/fineract_emi_calculation.yaml``).
- The Chinese bank worked example of 等额本息 and 等额本金 (``servicing/chinese_bank_worked_examples.yaml``),
  plus an exact rational re-computation of the bank formulas written out here.
- numpy-financial's ``pmt``, ``ipmt`` and ``ppmt`` for 30/360 equal instalments.
"""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy_financial as npf
import pytest
import yaml

from creditfactory.clock import DayCount
from creditfactory.money import RoundingMode, RoundingPolicy
from creditfactory.servicing.model import RepaymentMethod, generate_schedule

DATA = Path(__file__).parent / "servicing"
HALF_UP = RoundingPolicy()


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((DATA / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------
# Apache Fineract


FINERACT = load("fineract_emi_calculation.yaml")["cases"]


class TestFineractEmiScenarios:
    """Source: apache/fineract EMICalculation.feature (scenario ids in the data file)."""

    @pytest.mark.parametrize("mode", [RoundingMode.HALF_UP, RoundingMode.HALF_EVEN])
    @pytest.mark.parametrize("case", FINERACT, ids=[c["scenario"].split()[0] for c in FINERACT])
    def test_schedule_matches_fineract_row_by_row(self, case: dict[str, Any], mode: RoundingMode) -> None:
        schedule = generate_schedule(
            principal=Decimal(case["principal"]),
            annual_rate=Decimal(case["annual_rate"]),
            term=case["term"],
            method=RepaymentMethod.EQUAL_INSTALLMENT,
            start=case["start"],
            day_count=DayCount(case["day_count"]),
            policy=RoundingPolicy(mode),
        )
        got = [
            [i.number, i.due_date, str(i.principal), str(i.interest), str(i.total), str(i.balance_after)]
            for i in schedule.instalments
        ]
        assert got == case["rows"]
        assert str(schedule.total_interest) == case["total_interest"]


# --------------------------------------------------------------------------------------------
# Chinese bank worked example and exact bank formulas


WORKED = load("chinese_bank_worked_examples.yaml")


def fen_half_up(x: Fraction) -> Fraction:
    return Fraction(math.floor(x * 100 + Fraction(1, 2)), 100)


def bank_equal_installment(
    principal: Fraction, annual_rate: Fraction, n: int
) -> list[tuple[Fraction, Fraction]]:
    """等额本息 by the bank formula in exact fractions: (principal, interest) per month."""
    r = annual_rate / 12
    payment = fen_half_up(principal * r * (1 + r) ** n / ((1 + r) ** n - 1))
    rows, balance = [], principal
    for k in range(n):
        interest = fen_half_up(balance * r)
        part = balance if k == n - 1 else payment - interest
        rows.append((part, interest))
        balance -= part
    return rows


def bank_equal_principal(
    principal: Fraction, annual_rate: Fraction, n: int
) -> list[tuple[Fraction, Fraction]]:
    """等额本金 by the bank formula in exact fractions: (principal, interest) per month."""
    r = annual_rate / 12
    part = fen_half_up(principal / n)
    rows, balance = [], principal
    for k in range(n):
        interest = fen_half_up(balance * r)
        this = balance if k == n - 1 else part
        rows.append((this, interest))
        balance -= this
    return rows


def as_fractions(schedule: Any) -> list[tuple[Fraction, Fraction]]:
    return [(Fraction(i.principal), Fraction(i.interest)) for i in schedule.instalments]


class TestChineseBankWorkedExample:
    """Source: the bank formulas for 等额本息/等额本金; figures hand-checked (see the data file)."""

    def schedule(self, method: RepaymentMethod) -> Any:
        return generate_schedule(
            principal=Decimal(WORKED["principal"]),
            annual_rate=Decimal(WORKED["annual_rate"]),
            term=WORKED["term"],
            method=method,
            start=WORKED["start"],
            day_count=DayCount.THIRTY_E_360,
            policy=HALF_UP,
        )

    def test_equal_installment_100000_at_4_35_for_12_months(self) -> None:
        expected = WORKED["equal_installment"]
        s = self.schedule(RepaymentMethod.EQUAL_INSTALLMENT)
        assert s.level_instalment == Decimal(expected["payment"])
        assert {i.total for i in s.instalments[:-1]} == {Decimal(expected["payment"])}
        first, second, last = s.instalments[0], s.instalments[1], s.instalments[-1]
        assert first.interest == Decimal(expected["first_interest"])
        assert first.principal == Decimal(expected["first_principal"])
        assert second.interest == Decimal(expected["second_interest"])
        assert last.total == Decimal(expected["last_total"])
        assert 12 * s.level_instalment - s.principal == Decimal(expected["textbook_total_interest"])
        assert s.total_interest == Decimal(expected["schedule_total_interest"])

    def test_equal_principal_100000_at_4_35_for_12_months(self) -> None:
        expected = WORKED["equal_principal"]
        s = self.schedule(RepaymentMethod.EQUAL_PRINCIPAL)
        assert [i.principal for i in s.instalments[:-1]] == [Decimal(expected["principal_part"])] * 11
        assert s.instalments[-1].principal == Decimal(expected["last_principal"])
        assert s.instalments[0].total == Decimal(expected["first_total"])
        assert s.instalments[1].total == Decimal(expected["second_total"])
        assert s.instalments[-1].total == Decimal(expected["last_total"])
        assert s.total_interest == Decimal(expected["schedule_total_interest"])
        # Rounding each month's interest moves the total by at most half a fen a month.
        assert abs(s.total_interest - Decimal(expected["formula_total_interest"])) <= Decimal("0.005") * 12

    @pytest.mark.parametrize(
        ("principal", "rate", "term"),
        [
            ("100000", "0.0435", 12),
            ("300000", "0.049", 60),
            ("1000000", "0.041", 360),
            ("8888.88", "0.1599", 24),
        ],
    )
    def test_whole_tables_equal_the_exact_bank_formulas(self, principal: str, rate: str, term: int) -> None:
        for method, reference in (
            (RepaymentMethod.EQUAL_INSTALLMENT, bank_equal_installment),
            (RepaymentMethod.EQUAL_PRINCIPAL, bank_equal_principal),
        ):
            s = generate_schedule(
                principal=Decimal(principal),
                annual_rate=Decimal(rate),
                term=term,
                method=method,
                start=date(2025, 3, 10),
                day_count=DayCount.THIRTY_E_360,
                policy=HALF_UP,
            )
            assert as_fractions(s) == reference(Fraction(principal), Fraction(rate), term), method


# --------------------------------------------------------------------------------------------
# numpy-financial


NPF_CASES = [
    (100_000, "0.0435", 12),
    (100_000, "0.0435", 36),
    (300_000, "0.049", 60),
    (1_000_000, "0.041", 360),
    (5_000, "0.18", 24),
    (100, "0.12", 6),
]


class TestNumpyFinancial:
    """Source: numpy-financial ``pmt``/``ipmt``/``ppmt`` (monthly rate = annual / 12, 30/360)."""

    @pytest.mark.parametrize(("principal", "rate", "term"), NPF_CASES)
    def test_instalment_is_pmt_rounded_and_periods_follow_ipmt_ppmt(
        self, principal: int, rate: str, term: int
    ) -> None:
        s = generate_schedule(
            principal=Decimal(principal),
            annual_rate=Decimal(rate),
            term=term,
            method=RepaymentMethod.EQUAL_INSTALLMENT,
            start=date(2025, 1, 15),
            day_count=DayCount.THIRTY_E_360,
            policy=HALF_UP,
        )
        r = float(rate) / 12
        pmt = -float(npf.pmt(r, term, principal))
        assert s.level_instalment == Decimal(repr(pmt)).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")

        # Our schedule rounds the instalment once and each period's interest, so its balance walks
        # away from the unrounded annuity by at most a fen per period, compounded at r.
        drift = 0.0
        periods = list(range(1, term + 1))
        ipmt = -npf.ipmt(r, periods, term, principal)
        ppmt = -npf.ppmt(r, periods, term, principal)
        for inst, exact_interest, exact_principal in zip(s.instalments[:-1], ipmt, ppmt, strict=False):
            tolerance = 0.005 + r * drift + 1e-6
            assert abs(float(inst.interest) - exact_interest) <= tolerance, inst.number
            assert abs(float(inst.principal) - exact_principal) <= tolerance + 0.005, inst.number
            drift = drift * (1 + r) + 0.01
        assert abs(float(s.instalments[-1].total) - pmt) <= drift + 0.01
        assert s.total_principal == Decimal(principal)
