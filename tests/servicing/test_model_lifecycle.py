"""Credit line and loan lifecycles: every legal move, and every illegal one refused."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from itertools import product

import pytest

from creditfactory.servicing.model import (
    CREDIT_LINE,
    LOAN,
    CreditLineEvent,
    CreditLineStatus,
    IllegalTransition,
    LoanEvent,
    LoanStatus,
    dry_run,
    next_state,
)

L, LE = CreditLineStatus, CreditLineEvent
S, E = LoanStatus, LoanEvent

# The lifecycles as the business states them, written out independently of the model's tables.
CREDIT_LINE_MOVES = {
    (L.PENDING, LE.ACTIVATE): L.ACTIVE,
    (L.PENDING, LE.CLOSE): L.CLOSED,
    (L.ACTIVE, LE.FREEZE): L.FROZEN,
    (L.FROZEN, LE.UNFREEZE): L.ACTIVE,
    (L.ACTIVE, LE.EXPIRE): L.EXPIRED,
    (L.FROZEN, LE.EXPIRE): L.EXPIRED,
    (L.ACTIVE, LE.CLOSE): L.CLOSED,
    (L.FROZEN, LE.CLOSE): L.CLOSED,
    (L.EXPIRED, LE.CLOSE): L.CLOSED,
}
LOAN_MOVES = {
    (S.APPROVED, E.DISBURSE): S.ACTIVE,
    (S.APPROVED, E.CANCEL): S.CANCELLED,
    (S.ACTIVE, E.FALL_OVERDUE): S.OVERDUE,
    (S.OVERDUE, E.CURE): S.ACTIVE,
    (S.ACTIVE, E.RESTRUCTURE): S.RESTRUCTURED,
    (S.OVERDUE, E.RESTRUCTURE): S.RESTRUCTURED,
    (S.RESTRUCTURED, E.FALL_OVERDUE): S.OVERDUE,
    (S.RESTRUCTURED, E.COMPLETE_OBSERVATION): S.ACTIVE,
    (S.ACTIVE, E.SETTLE): S.SETTLED,
    (S.OVERDUE, E.SETTLE): S.SETTLED,
    (S.RESTRUCTURED, E.SETTLE): S.SETTLED,
    (S.OVERDUE, E.WRITE_OFF): S.WRITTEN_OFF,
    (S.RESTRUCTURED, E.WRITE_OFF): S.WRITTEN_OFF,
}

ALL_LINE = list(product(CreditLineStatus, CreditLineEvent))
ALL_LOAN = list(product(LoanStatus, LoanEvent))


def ids(pairs: list[tuple[StrEnum, StrEnum]]) -> list[str]:
    return [f"{s.value}-{e.value}" for s, e in pairs]


class TestCreditLine:
    @pytest.mark.parametrize(("state", "event"), ALL_LINE, ids=ids(ALL_LINE))
    def test_every_move(self, state: CreditLineStatus, event: CreditLineEvent) -> None:
        expected = CREDIT_LINE_MOVES.get((state, event))
        preview = dry_run(state, event)
        if expected is None:
            with pytest.raises(IllegalTransition) as info:
                next_state(state, event)
            assert f"cannot {event.value} a credit line that is {state.value}" in info.value.message
            assert info.value.details["state"] == state.value and info.value.details["event"] == event.value
            assert not preview.allowed and preview.target is None and preview.message == info.value.message
        else:
            assert next_state(state, event) is expected
            assert preview.allowed and preview.target is expected

    def test_closed_is_final(self) -> None:
        assert CREDIT_LINE.final_states == (L.CLOSED,)
        with pytest.raises(IllegalTransition, match=r"nothing \(final status\)"):
            CREDIT_LINE.next_state(L.CLOSED, LE.ACTIVATE)


class TestLoan:
    @pytest.mark.parametrize(("state", "event"), ALL_LOAN, ids=ids(ALL_LOAN))
    def test_every_move(self, state: LoanStatus, event: LoanEvent) -> None:
        expected = LOAN_MOVES.get((state, event))
        preview = LOAN.dry_run(state, event)
        if expected is None:
            with pytest.raises(IllegalTransition) as info:
                LOAN.next_state(state, event)
            assert f"cannot {event.value} a loan that is {state.value}" in info.value.message
            allowed = [e.value for (s, e) in LOAN_MOVES if s is state]
            assert sorted(info.value.details["allowed"]) == sorted(allowed)
            assert info.value.http_status == 409 and info.value.code == "illegal_transition"
            assert not preview.allowed
        else:
            assert LOAN.next_state(state, event) is expected
            assert preview.allowed and preview.target is expected

    def test_final_states(self) -> None:
        assert set(LOAN.final_states) == {S.SETTLED, S.WRITTEN_OFF, S.CANCELLED}

    def test_apply_records_who_when_why_and_the_event_name(self) -> None:
        t = LOAN.apply(
            S.APPROVED,
            E.DISBURSE,
            actor="teller-0042",
            business_date=date(2025, 7, 1),
            reason="drawdown 2025-000123",
        )
        assert (t.source, t.target, t.event) == (S.APPROVED, S.ACTIVE, E.DISBURSE)
        assert t.event_name == "servicing.loan.disbursed"
        assert t.actor == "teller-0042" and t.business_date == date(2025, 7, 1)
        frozen = CREDIT_LINE.apply(L.ACTIVE, LE.FREEZE, actor="risk-bot", business_date=date(2025, 7, 1))
        assert frozen.event_name == "servicing.credit_line.frozen"

    def test_apply_raises_on_illegal_moves_and_needs_an_actor(self) -> None:
        with pytest.raises(IllegalTransition):
            LOAN.apply(S.SETTLED, E.DISBURSE, actor="x", business_date=date(2025, 7, 1))
        with pytest.raises(ValueError, match="actor"):
            LOAN.apply(S.APPROVED, E.DISBURSE, actor="", business_date=date(2025, 7, 1))

    def test_mixing_lifecycles_is_a_type_error(self) -> None:
        with pytest.raises(TypeError, match="LoanEvent"):
            LOAN.next_state(S.ACTIVE, LE.FREEZE)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="no lifecycle"):
            next_state("active", E.CURE)  # type: ignore[arg-type]
