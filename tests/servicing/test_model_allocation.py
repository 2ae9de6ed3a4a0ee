"""Repayment allocation: worked examples and the waterfall's invariants."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditfactory.servicing.model import (
    DEFAULT_ALLOCATION_ORDER,
    AllocationError,
    AllocationLine,
    AllocationStrategy,
    Component,
    Due,
    allocate_repayment,
    outstanding_after,
)

D = Decimal
P, F, INT, PR = Component.PENALTY, Component.FEE, Component.INTEREST, Component.PRINCIPAL

# Two overdue instalments of a 等额本息 loan, the older one with penalty interest.
MARCH = Due(2, date(2025, 3, 15), principal=D("8198.10"), interest=D("332.89"), penalty=D("18.50"))
APRIL = Due(
    3, date(2025, 4, 15), principal=D("8227.82"), interest=D("303.17"), fee=D("5.00"), penalty=D("2.10")
)


class TestAllocateRepayment:
    def test_oldest_instalment_first_then_component_order(self) -> None:
        result = allocate_repayment(D("9000"), [APRIL, MARCH])  # given out of order on purpose
        assert result.lines == (
            AllocationLine(2, P, D("18.50")),
            AllocationLine(2, INT, D("332.89")),
            AllocationLine(2, PR, D("8198.10")),
            AllocationLine(3, P, D("2.10")),
            AllocationLine(3, F, D("5.00")),
            AllocationLine(3, INT, D("303.17")),
            AllocationLine(3, PR, D("140.24")),
        )
        assert result.excess == 0 and result.total == D("9000")

    def test_component_first_pays_every_penalty_and_interest_before_principal(self) -> None:
        result = allocate_repayment(D("1000"), [MARCH, APRIL], strategy="component_first")
        assert result.by_component() == {P: D("20.60"), F: D("5.00"), INT: D("636.06"), PR: D("338.34")}
        assert result.paid(3, PR) == 0 and result.paid(2, PR) == D("338.34")

    def test_a_product_order_can_put_interest_before_penalty(self) -> None:
        result = allocate_repayment(D("340"), [MARCH], order=[INT, P, F, PR])
        assert result.lines[:2] == (AllocationLine(2, INT, D("332.89")), AllocationLine(2, P, D("7.11")))

    def test_overpayment_is_excess(self) -> None:
        result = allocate_repayment(D("20000"), [MARCH, APRIL])
        assert result.allocated == MARCH.total + APRIL.total
        assert result.excess == D("20000") - MARCH.total - APRIL.total
        assert all(d.total == 0 for d in outstanding_after([MARCH, APRIL], result))

    def test_zero_payment_allocates_nothing(self) -> None:
        result = allocate_repayment(D("0"), [MARCH])
        assert result.lines == () and result.excess == 0

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"amount": D("-1")}, "amount must be zero or more"),
            ({"order": [P, INT, PR]}, "each of penalty, fee, interest, principal once"),
            ({"order": [P, INT, PR, "tax"]}, "allocation order"),
            ({"strategy": "newest_first"}, "unknown allocation strategy"),
            ({"dues": [MARCH, MARCH]}, "same instalment number"),
        ],
    )
    def test_bad_input_is_refused(self, kwargs: dict[str, object], message: str) -> None:
        args: dict[str, object] = {"amount": D("10"), "dues": [MARCH, APRIL], **kwargs}
        amount, dues = args.pop("amount"), args.pop("dues")
        with pytest.raises(AllocationError, match=message):
            allocate_repayment(amount, dues, **args)  # type: ignore[arg-type]

    def test_due_refuses_negative_and_float_amounts(self) -> None:
        with pytest.raises(AllocationError):
            Due(1, date(2025, 1, 1), principal=D("-1"))
        with pytest.raises(TypeError):
            Due(1, date(2025, 1, 1), interest=1.5)  # type: ignore[arg-type]
        assert Due.of(1, date(2025, 1, 1), {"interest": D("3")}).interest == D("3")


amounts = st.decimals(min_value=D("0"), max_value=D("20000"), places=2)


@st.composite
def dues_lists(draw: st.DrawFn) -> list[Due]:
    n = draw(st.integers(0, 6))
    numbers = draw(st.permutations(range(1, n + 1)))
    return [
        Due(
            k,
            date(2025, 1, 15) + timedelta(days=30 * k),
            principal=draw(amounts),
            interest=draw(amounts),
            fee=draw(amounts),
            penalty=draw(amounts),
        )
        for k in numbers
    ]


class TestAllocationProperties:
    @settings(max_examples=200, deadline=None)
    @given(
        payment=st.decimals(min_value=D("0"), max_value=D("150000"), places=2),
        dues=dues_lists(),
        order=st.permutations(list(Component)),
        strategy=st.sampled_from(AllocationStrategy),
    )
    def test_sums_to_the_payment_and_never_over_pays(
        self, payment: Decimal, dues: list[Due], order: list[Component], strategy: AllocationStrategy
    ) -> None:
        result = allocate_repayment(payment, dues, order=order, strategy=strategy)
        assert result.allocated + result.excess == payment
        assert all(line.amount > 0 for line in result.lines)
        left = outstanding_after(dues, result)
        assert all(d.amount(c) >= 0 for d in left for c in Component)
        owed = sum((d.total for d in dues), D(0))
        assert result.excess == max(payment - owed, D(0))

    @settings(max_examples=150, deadline=None)
    @given(payment=st.decimals(min_value=D("0"), max_value=D("150000"), places=2), dues=dues_lists())
    def test_oldest_first_touches_a_newer_instalment_only_when_older_ones_are_paid(
        self, payment: Decimal, dues: list[Due]
    ) -> None:
        result = allocate_repayment(payment, dues, order=DEFAULT_ALLOCATION_ORDER)
        left = {d.number: d for d in outstanding_after(dues, result)}
        by_age = sorted(dues, key=lambda d: d.due_date)
        for newer_index, newer in enumerate(by_age):
            if any(line.number == newer.number for line in result.lines):
                assert all(left[older.number].total == 0 for older in by_age[:newer_index])
